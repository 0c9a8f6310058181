//! Tunnel links: `vxlan.calico`, `vxlan-v6.calico` and `tunl0` (created, repaired, addressed),
//! with IPIP as a detected capability rather than a crash.

mod kernel;

pub mod fake;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

pub use kernel::{
    KernelLink, LinkChange, LinkKernel, LinkKindSpec, LinkSpec, NetlinkLinkKernel, VxlanParams,
};

use super::Reconciler;
use super::addr::{IpFamily, MacAddr, check_interface_name};
use super::netlink::{KernelErrno, NetlinkError};
use super::routes::{IPIP_DEVICE, VXLAN_DEVICE, VXLAN_V6_DEVICE};
use super::status::{ApplyReport, DataplaneError, Health, InvalidInput, WriteOp};

/// Calico's VXLAN VNI.
pub const VXLAN_VNI: u32 = 4096;
/// Calico's VXLAN UDP port.
pub const VXLAN_PORT: u16 = 4789;
/// The health reason when the kernel cannot create `tunl0`.
pub const IPIP_UNSUPPORTED: &str = "IPIP unsupported by this kernel";

/// A desired VXLAN device (`nolearning`, up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanLink {
    /// Device name (`vxlan.calico` or `vxlan-v6.calico`).
    pub name: String,
    /// VNI (Calico: 4096).
    pub vni: u32,
    /// UDP destination port (Calico: 4789).
    pub port: u16,
    /// The node's underlay address; its family is the device's family.
    pub local: IpAddr,
    /// The underlay interface, if the device should be bound to one.
    pub parent: Option<String>,
    /// The VTEP MAC (Calico stores it on the Node); `None` keeps whatever the kernel chose.
    pub mac: Option<MacAddr>,
    /// MTU (Calico: network MTU - 50 for IPv4, - 70 for IPv6); `None` keeps the kernel's.
    pub mtu: Option<u32>,
    /// The VTEP tunnel address, installed as a /32 or /128.
    pub address: Option<IpAddr>,
}

impl VxlanLink {
    /// Calico's device for the family of `local`: name, VNI 4096, port 4789.
    pub fn calico(local: IpAddr, address: Option<IpAddr>) -> VxlanLink {
        VxlanLink {
            name: match IpFamily::of(local) {
                IpFamily::V4 => VXLAN_DEVICE.to_string(),
                IpFamily::V6 => VXLAN_V6_DEVICE.to_string(),
            },
            vni: VXLAN_VNI,
            port: VXLAN_PORT,
            local,
            parent: None,
            mac: None,
            mtu: None,
            address,
        }
    }

    fn validate(&self, path: &str) -> Result<(), InvalidInput> {
        check_interface_name(&format!("{path}.name"), &self.name)?;
        if self.vni == 0 || self.vni > 0xff_ffff {
            return Err(InvalidInput::new(
                format!("{path}.vni"),
                self.vni,
                "a VNI is between 1 and 16777215",
            ));
        }
        if self.port == 0 {
            return Err(InvalidInput::new(
                format!("{path}.port"),
                0,
                "the port must not be 0",
            ));
        }
        if self.local.is_unspecified() || self.local.is_multicast() {
            return Err(InvalidInput::new(
                format!("{path}.local"),
                self.local,
                "the local underlay address must be a unicast address",
            ));
        }
        if let Some(p) = &self.parent {
            check_interface_name(&format!("{path}.parent"), p)?;
        }
        if let Some(mac) = self.mac
            && (mac.is_zero() || mac.is_multicast())
        {
            return Err(InvalidInput::new(
                format!("{path}.mac"),
                mac,
                "the VTEP MAC must be a unicast address",
            ));
        }
        if let Some(a) = self.address
            && IpFamily::of(a) != IpFamily::of(self.local)
        {
            return Err(InvalidInput::new(
                format!("{path}.address"),
                a,
                format!(
                    "the tunnel address must be {} like the local address",
                    IpFamily::of(self.local)
                ),
            ));
        }
        check_mtu(&format!("{path}.mtu"), self.mtu, IpFamily::of(self.local))
    }

    fn params(&self, parent: Option<u32>) -> VxlanParams {
        VxlanParams {
            vni: self.vni,
            port: self.port,
            local: Some(self.local),
            parent,
            learning: false,
        }
    }
}

/// The desired IPIP device (`tunl0`), configured where the kernel has IPIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpipLink {
    /// Device name (`tunl0`).
    pub name: String,
    /// MTU (Calico: network MTU - 20); `None` keeps the kernel's.
    pub mtu: Option<u32>,
    /// The node's IPIP tunnel address, installed as a /32.
    pub address: Option<Ipv4Addr>,
}

impl IpipLink {
    /// Calico's `tunl0` with `address`.
    pub fn calico(address: Option<Ipv4Addr>) -> IpipLink {
        IpipLink {
            name: IPIP_DEVICE.to_string(),
            mtu: None,
            address,
        }
    }
}

/// Every tunnel device the node wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredLinks {
    /// `vxlan.calico`.
    pub vxlan_v4: Option<VxlanLink>,
    /// `vxlan-v6.calico`.
    pub vxlan_v6: Option<VxlanLink>,
    /// `tunl0`.
    pub ipip: Option<IpipLink>,
}

/// Which link names are ours (the marker for links is the name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// Names this reconciler owns; such a device that is not desired is stale.
    pub owned_names: Vec<String>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            owned_names: vec![
                VXLAN_DEVICE.to_string(),
                VXLAN_V6_DEVICE.to_string(),
                IPIP_DEVICE.to_string(),
            ],
        }
    }
}

/// What we know about IPIP support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpipStatus {
    /// IPIP was not asked for (or not tried yet).
    NotRequested,
    /// The IPIP device exists and is configured.
    Ready,
    /// The kernel cannot create the IPIP device; the reason is the kernel's answer.
    Unsupported(String),
}

fn check_mtu(path: &str, mtu: Option<u32>, family: IpFamily) -> Result<(), InvalidInput> {
    let min = match family {
        IpFamily::V4 => 68,
        IpFamily::V6 => 1280,
    };
    match mtu {
        Some(m) if !(min..=65535).contains(&m) => Err(InvalidInput::new(
            path,
            m,
            format!("an {family} tunnel MTU is between {min} and 65535"),
        )),
        _ => Ok(()),
    }
}

/// The kernel's answer to creating a link of a type it was built without.
fn is_unsupported(k: &KernelErrno) -> bool {
    k.is(libc::EOPNOTSUPP) || k.message.as_deref() == Some("Unknown device type")
}

/// Keeps the tunnel devices, their parameters and addresses as desired.
///
/// A device with wrong creation-time parameters (kind, VNI, port, local address, parent,
/// learning) is deleted and recreated; MTU, MAC and admin state are changed in place. Creating a
/// device drops the routes through the old one: after an apply that created or updated a
/// device, tell the route reconciler (`interfaces_changed`).
#[derive(Debug)]
pub struct LinkReconciler<K: LinkKernel> {
    kernel: K,
    config: LinkConfig,
    desired: DesiredLinks,
    dirty: bool,
    in_sync: bool,
    ipip: IpipStatus,
    macs: HashMap<String, MacAddr>,
    health: Health,
}

impl<K: LinkKernel> LinkReconciler<K> {
    /// A reconciler over `kernel`.
    pub fn new(kernel: K, config: LinkConfig) -> LinkReconciler<K> {
        LinkReconciler {
            kernel,
            config,
            desired: DesiredLinks::default(),
            dirty: true,
            in_sync: false,
            ipip: IpipStatus::NotRequested,
            macs: HashMap::new(),
            health: Health::healthy(),
        }
    }

    /// Sets the desired devices. Rejects (changing nothing) invalid parameters, a device of the
    /// wrong family, or a name this reconciler does not own. No I/O.
    pub fn set_desired(&mut self, desired: DesiredLinks) -> Result<(), InvalidInput> {
        for (path, link, family) in [
            ("links.vxlan_v4", &desired.vxlan_v4, IpFamily::V4),
            ("links.vxlan_v6", &desired.vxlan_v6, IpFamily::V6),
        ] {
            if let Some(v) = link {
                v.validate(path)?;
                if IpFamily::of(v.local) != family {
                    return Err(InvalidInput::new(
                        format!("{path}.local"),
                        v.local,
                        format!("this device is {family}"),
                    ));
                }
                self.check_owned(&format!("{path}.name"), &v.name)?;
            }
        }
        if let Some(i) = &desired.ipip {
            check_interface_name("links.ipip.name", &i.name)?;
            self.check_owned("links.ipip.name", &i.name)?;
            check_mtu("links.ipip.mtu", i.mtu, IpFamily::V4)?;
        }
        if desired != self.desired {
            if desired.ipip != self.desired.ipip {
                self.ipip = IpipStatus::NotRequested;
            }
            self.desired = desired;
            self.dirty = true;
        }
        Ok(())
    }

    fn check_owned(&self, path: &str, name: &str) -> Result<(), InvalidInput> {
        if self.config.owned_names.iter().any(|n| n == name) {
            Ok(())
        } else {
            Err(InvalidInput::new(
                path,
                name,
                format!(
                    "the name must be one this reconciler owns ({:?})",
                    self.config.owned_names
                ),
            ))
        }
    }

    /// What we know about IPIP support.
    pub fn ipip_status(&self) -> &IpipStatus {
        &self.ipip
    }

    /// The MAC of an own device as last read (Calico publishes the VXLAN MAC on the Node).
    pub fn mac(&self, name: &str) -> Option<MacAddr> {
        self.macs.get(name).copied()
    }

    /// The kernel access (tests use it to tamper with a fake kernel).
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    fn read(&mut self) -> Result<KernelLinks, DataplaneError> {
        let links = self.kernel.links().map_err(|source| DataplaneError::Read {
            what: "links",
            source,
        })?;
        let addrs = self
            .kernel
            .addresses()
            .map_err(|source| DataplaneError::Read {
                what: "addresses",
                source,
            })?;
        Ok((
            links.into_iter().map(|l| (l.name.clone(), l)).collect(),
            addrs,
        ))
    }

    fn index_of(&mut self, name: &str) -> Result<Option<u32>, DataplaneError> {
        let (links, _) = self.read()?;
        Ok(links.get(name).map(|l| l.index))
    }

    fn run(&mut self, report: &mut ApplyReport) -> Result<(), DataplaneError> {
        let (links, addrs) = self.read()?;
        report.resynced = true;
        let vxlans: Vec<VxlanLink> = [&self.desired.vxlan_v4, &self.desired.vxlan_v6]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for v in &vxlans {
            if let Some(index) = self.ensure_vxlan(v, &links, report)? {
                let want: BTreeSet<IpNet> = v
                    .address
                    .map(|a| IpNet::new(a, IpFamily::of(a).host_len()))
                    .and_then(Result::ok)
                    .into_iter()
                    .collect();
                self.ensure_addresses(&v.name, index, &want, &addrs, report);
            }
        }
        if let Some(ipip) = self.desired.ipip.clone()
            && let Some(index) = self.ensure_ipip(&ipip, &links, report)
        {
            let want: BTreeSet<IpNet> = ipip
                .address
                .map(|a| IpNet::new(IpAddr::V4(a), 32))
                .and_then(Result::ok)
                .into_iter()
                .collect();
            self.ensure_addresses(&ipip.name, index, &want, &addrs, report);
        }
        self.sweep_stale(&links, &addrs, report);
        let (links, _) = self.read()?;
        self.macs = links
            .values()
            .filter(|l| self.config.owned_names.contains(&l.name))
            .filter_map(|l| Some((l.name.clone(), l.mac?)))
            .collect();
        Ok(())
    }

    /// Creates, recreates or fixes one VXLAN device; returns its index when it exists.
    fn ensure_vxlan(
        &mut self,
        v: &VxlanLink,
        links: &HashMap<String, KernelLink>,
        report: &mut ApplyReport,
    ) -> Result<Option<u32>, DataplaneError> {
        let parent = match &v.parent {
            None => None,
            Some(p) => match links.get(p) {
                Some(l) => Some(l.index),
                None => {
                    tracing::debug!(device = %v.name, parent = %p, "VXLAN parent missing; waiting");
                    report.waiting += 1;
                    return Ok(None);
                }
            },
        };
        let params = v.params(parent);
        let spec = LinkSpec {
            name: v.name.clone(),
            mtu: v.mtu,
            mac: v.mac,
            kind: LinkKindSpec::Vxlan(params.clone()),
        };
        match links.get(&v.name) {
            Some(l) if l.kind.as_deref() == Some("vxlan") && l.vxlan.as_ref() == Some(&params) => {
                let change = LinkChange {
                    mtu: v.mtu.filter(|m| *m != l.mtu),
                    mac: v.mac.filter(|m| Some(*m) != l.mac),
                    up: !l.up,
                };
                if change != LinkChange::default() {
                    match self.kernel.change_link(l.index, &change) {
                        Ok(()) => report.updated += 1,
                        Err(source) => {
                            report
                                .errors
                                .push(request_error(WriteOp::Replace, &v.name, source));
                        }
                    }
                }
                Ok(Some(l.index))
            }
            Some(l) => {
                tracing::info!(device = %v.name, found = ?l.vxlan, kind = ?l.kind, "device has the wrong creation parameters; recreating");
                if let Err(source) = self.kernel.delete_link(l.index) {
                    report
                        .errors
                        .push(request_error(WriteOp::Replace, &v.name, source));
                    return Ok(None);
                }
                if let Err(source) = self.kernel.create_link(&spec) {
                    report
                        .errors
                        .push(request_error(WriteOp::Replace, &v.name, source));
                    return Ok(None);
                }
                report.updated += 1;
                self.index_of(&v.name)
            }
            None => {
                if let Err(source) = self.kernel.create_link(&spec) {
                    report
                        .errors
                        .push(request_error(WriteOp::Create, &v.name, source));
                    return Ok(None);
                }
                report.created += 1;
                self.index_of(&v.name)
            }
        }
    }

    /// Configures `tunl0` where it exists, or tries to create it; returns its index.
    fn ensure_ipip(
        &mut self,
        ipip: &IpipLink,
        links: &HashMap<String, KernelLink>,
        report: &mut ApplyReport,
    ) -> Option<u32> {
        if let Some(l) = links.get(&ipip.name) {
            let change = LinkChange {
                mtu: ipip.mtu.filter(|m| *m != l.mtu),
                mac: None,
                up: !l.up,
            };
            if change != LinkChange::default() {
                if let Err(source) = self.kernel.change_link(l.index, &change) {
                    report
                        .errors
                        .push(request_error(WriteOp::Replace, &ipip.name, source));
                    return None;
                }
                report.updated += 1;
            }
            self.ipip = IpipStatus::Ready;
            return Some(l.index);
        }
        let spec = LinkSpec {
            name: ipip.name.clone(),
            mtu: ipip.mtu,
            mac: None,
            kind: LinkKindSpec::Ipip,
        };
        match self.kernel.create_link(&spec) {
            Ok(()) => {
                report.created += 1;
                self.ipip = IpipStatus::Ready;
                self.index_of(&ipip.name).ok().flatten()
            }
            Err(NetlinkError::Kernel(source)) if is_unsupported(&source) => {
                if !matches!(self.ipip, IpipStatus::Unsupported(_)) {
                    tracing::warn!(device = %ipip.name, error = %source, "{IPIP_UNSUPPORTED}; IPIP pools cannot be served by this node");
                }
                self.ipip = IpipStatus::Unsupported(source.to_string());
                report.errors.push(DataplaneError::Unsupported {
                    name: ipip.name.clone(),
                    kind: "ipip".to_string(),
                    source,
                });
                None
            }
            Err(source) => {
                report
                    .errors
                    .push(request_error(WriteOp::Create, &ipip.name, source));
                None
            }
        }
    }

    /// Adds missing addresses; removes other (non-link-local) addresses once in sync.
    fn ensure_addresses(
        &mut self,
        name: &str,
        index: u32,
        want: &BTreeSet<IpNet>,
        addrs: &[(u32, IpNet)],
        report: &mut ApplyReport,
    ) {
        let have: BTreeSet<IpNet> = addrs
            .iter()
            .filter(|(i, a)| *i == index && !is_link_local(a))
            .map(|(_, a)| *a)
            .collect();
        for a in want.difference(&have) {
            match self.kernel.add_address(index, *a) {
                Ok(()) => report.created += 1,
                Err(e) if e.errno().is_some_and(|k| k.is(libc::EEXIST)) => {}
                Err(source) => report.errors.push(request_error(
                    WriteOp::Create,
                    &format!("address {a} on {name}"),
                    source,
                )),
            }
        }
        for a in have.difference(want) {
            if !self.in_sync {
                report.deferred_deletes += 1;
                continue;
            }
            match self.kernel.delete_address(index, *a) {
                Ok(()) => report.deleted += 1,
                Err(e) if e.errno().is_some_and(|k| k.is(libc::EADDRNOTAVAIL)) => {
                    report.deleted += 1
                }
                Err(source) => report.errors.push(request_error(
                    WriteOp::Delete,
                    &format!("address {a} on {name}"),
                    source,
                )),
            }
        }
    }

    /// Own devices that are not desired: deleted once in sync (`tunl0` is unaddressed instead,
    /// the kernel's fallback device cannot be deleted).
    fn sweep_stale(
        &mut self,
        links: &HashMap<String, KernelLink>,
        addrs: &[(u32, IpNet)],
        report: &mut ApplyReport,
    ) {
        let desired: Vec<&str> = [&self.desired.vxlan_v4, &self.desired.vxlan_v6]
            .into_iter()
            .flatten()
            .map(|v| v.name.as_str())
            .chain(self.desired.ipip.as_ref().map(|i| i.name.as_str()))
            .collect();
        let stale: Vec<KernelLink> = self
            .config
            .owned_names
            .iter()
            .filter(|n| !desired.contains(&n.as_str()))
            .filter_map(|n| links.get(n).cloned())
            .collect();
        for link in stale {
            if link.kind.as_deref() == Some("ipip") {
                self.ensure_addresses(&link.name, link.index, &BTreeSet::new(), addrs, report);
                continue;
            }
            if !self.in_sync {
                report.deferred_deletes += 1;
                continue;
            }
            match self.kernel.delete_link(link.index) {
                Ok(()) => report.deleted += 1,
                Err(e) if e.errno().is_some_and(|k| k.is(libc::ENODEV)) => report.deleted += 1,
                Err(source) => {
                    report
                        .errors
                        .push(request_error(WriteOp::Delete, &link.name, source))
                }
            }
        }
    }

    fn update_health(&mut self, report: &ApplyReport) {
        let mut reasons: Vec<String> = report
            .errors
            .iter()
            .filter(|e| !matches!(e, DataplaneError::Unsupported { .. }))
            .map(|e| super::status::error_chain(e))
            .collect();
        if self.desired.ipip.is_some() && matches!(self.ipip, IpipStatus::Unsupported(_)) {
            reasons.push(IPIP_UNSUPPORTED.to_string());
        }
        self.health = Health::from_reasons(reasons);
    }
}

/// Links by name, and every address with its interface index.
type KernelLinks = (HashMap<String, KernelLink>, Vec<(u32, IpNet)>);

fn is_link_local(a: &IpNet) -> bool {
    match a.addr() {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(v4) => v4.is_link_local(),
    }
}

fn request_error(op: WriteOp, object: &str, source: NetlinkError) -> DataplaneError {
    DataplaneError::Request {
        op,
        object: format!("link {object}"),
        source,
    }
}

impl<K: LinkKernel> Reconciler for LinkReconciler<K> {
    fn name(&self) -> &'static str {
        "links"
    }

    fn apply(&mut self) -> ApplyReport {
        let mut report = ApplyReport::default();
        if !self.dirty {
            return report;
        }
        if let Err(e) = self.run(&mut report) {
            report.errors.push(e);
        }
        // Anything but an unsupported kernel feature is retried on the next apply.
        self.dirty = report
            .errors
            .iter()
            .any(|e| !matches!(e, DataplaneError::Unsupported { .. }))
            || report.waiting > 0;
        self.update_health(&report);
        report
    }

    fn resync(&mut self) -> ApplyReport {
        self.dirty = true;
        self.apply()
    }

    fn set_in_sync(&mut self, in_sync: bool) {
        if in_sync && !self.in_sync {
            self.dirty = true;
        }
        self.in_sync = in_sync;
    }

    fn health(&self) -> Health {
        self.health.clone()
    }
}
