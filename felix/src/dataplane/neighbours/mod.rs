//! VXLAN neighbours: per remote VTEP a permanent ARP/ND entry (tunnel address to MAC) and an
//! FDB entry (MAC to underlay address) on our VXLAN device, and nowhere else.

mod kernel;

pub mod fake;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

pub use kernel::{
    KernelFdb, KernelNeighbour, NeighbourKernel, NeighbourWrite, NetlinkNeighbourKernel,
};

use super::Reconciler;
use super::addr::{IpFamily, MacAddr, check_interface_name};
use super::status::{ApplyReport, DataplaneError, Health, InvalidInput, WriteOp, error_chain};

/// A remote VXLAN tunnel endpoint (one per remote node in VXLAN mode).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VtepNeighbour {
    /// The remote node's tunnel address (`ipv4VXLANTunnelAddr`).
    pub tunnel_address: IpAddr,
    /// The remote VTEP's MAC (`vxlanTunnelMACAddr`).
    pub mac: MacAddr,
    /// The remote node's underlay address.
    pub underlay: IpAddr,
}

/// Our entries on the device: neighbours (address to MAC) and FDB (MAC to remotes).
type OwnEntries = (
    HashMap<IpAddr, Option<MacAddr>>,
    BTreeMap<MacAddr, Vec<IpAddr>>,
);

/// Keeps the permanent neighbour and FDB entries on one VXLAN device equal to the desired VTEPs.
///
/// Ours are: permanent ARP/ND entries on the device, and permanent `self` FDB entries with a
/// remote address on the device. Entries on other devices, and entries the kernel made
/// (non-permanent, device addresses), are never touched.
#[derive(Debug)]
pub struct NeighbourReconciler<K: NeighbourKernel> {
    kernel: K,
    device: String,
    family: IpFamily,
    batch_size: usize,
    /// Tunnel address to MAC.
    desired_neighbours: BTreeMap<IpAddr, MacAddr>,
    /// MAC to underlay address.
    desired_fdb: BTreeMap<MacAddr, IpAddr>,
    dirty: bool,
    in_sync: bool,
    health: Health,
}

impl<K: NeighbourKernel> NeighbourReconciler<K> {
    /// A reconciler for the VXLAN device `device` carrying `family` tunnel addresses.
    pub fn new(
        kernel: K,
        device: &str,
        family: IpFamily,
    ) -> Result<NeighbourReconciler<K>, InvalidInput> {
        check_interface_name("neighbours.device", device)?;
        Ok(NeighbourReconciler {
            kernel,
            device: device.to_string(),
            family,
            batch_size: 500,
            desired_neighbours: BTreeMap::new(),
            desired_fdb: BTreeMap::new(),
            dirty: true,
            in_sync: false,
            health: Health::healthy(),
        })
    }

    /// Sets the remote VTEPs. Rejects (changing nothing) a VTEP of the wrong family, a
    /// non-unicast MAC, or two VTEPs sharing a tunnel address or a MAC. No I/O.
    pub fn set_desired(
        &mut self,
        vteps: impl IntoIterator<Item = VtepNeighbour>,
    ) -> Result<(), InvalidInput> {
        let mut neighbours = BTreeMap::new();
        let mut fdb = BTreeMap::new();
        for v in vteps {
            let path = format!("vteps[{}]", v.tunnel_address);
            for (field, addr) in [
                ("tunnel_address", v.tunnel_address),
                ("underlay", v.underlay),
            ] {
                if IpFamily::of(addr) != self.family {
                    return Err(InvalidInput::new(
                        format!("{path}.{field}"),
                        addr,
                        format!("{} carries {} VTEPs", self.device, self.family),
                    ));
                }
            }
            if v.mac.is_zero() || v.mac.is_multicast() {
                return Err(InvalidInput::new(
                    format!("{path}.mac"),
                    v.mac,
                    "a VTEP MAC must be a unicast address",
                ));
            }
            if neighbours.insert(v.tunnel_address, v.mac).is_some() {
                return Err(InvalidInput::new(
                    format!("{path}.tunnel_address"),
                    v.tunnel_address,
                    "two VTEPs share this tunnel address",
                ));
            }
            if fdb.insert(v.mac, v.underlay).is_some() {
                return Err(InvalidInput::new(
                    format!("{path}.mac"),
                    v.mac,
                    "two VTEPs share this MAC",
                ));
            }
        }
        if neighbours != self.desired_neighbours || fdb != self.desired_fdb {
            self.desired_neighbours = neighbours;
            self.desired_fdb = fdb;
            self.dirty = true;
        }
        Ok(())
    }

    /// The kernel access (tests use it to tamper with a fake kernel).
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    /// Reads our entries on the device: permanent neighbours, permanent `self` FDB entries with
    /// a remote address and a unicast MAC.
    fn read(&mut self, ifindex: u32) -> Result<OwnEntries, DataplaneError> {
        let neighbours = self
            .kernel
            .neighbours(ifindex, self.family)
            .map_err(|source| DataplaneError::Read {
                what: "neighbours",
                source,
            })?
            .into_iter()
            .filter(|n| n.ifindex == ifindex && n.permanent)
            .map(|n| (n.address, n.mac))
            .collect();
        let mut fdb: BTreeMap<MacAddr, Vec<IpAddr>> = BTreeMap::new();
        let entries = self
            .kernel
            .fdb(ifindex)
            .map_err(|source| DataplaneError::Read {
                what: "fdb",
                source,
            })?;
        for e in entries {
            if e.ifindex != ifindex || !e.permanent || !e.own_table {
                continue;
            }
            if let (Some(dst), false) = (e.dst, e.mac.is_zero() || e.mac.is_multicast()) {
                fdb.entry(e.mac).or_default().push(dst);
            }
        }
        Ok((neighbours, fdb))
    }

    /// The writes that bring our entries to the desired state (deletes only once in sync).
    fn plan(
        &self,
        ifindex: u32,
        neighbours: &HashMap<IpAddr, Option<MacAddr>>,
        fdb: &BTreeMap<MacAddr, Vec<IpAddr>>,
        report: &mut ApplyReport,
    ) -> Vec<NeighbourWrite> {
        let mut writes = Vec::new();
        // FDB first: the neighbour entry is useless without it. A unicast MAC has one remote,
        // so a replace moves it (no delete of the old remote needed).
        for (mac, dst) in &self.desired_fdb {
            let have = fdb.get(mac).map(Vec::as_slice).unwrap_or(&[]);
            if have != [*dst] {
                writes.push(NeighbourWrite::SetFdb {
                    ifindex,
                    mac: *mac,
                    dst: *dst,
                });
            }
        }
        for (mac, dsts) in fdb {
            if self.desired_fdb.contains_key(mac) {
                continue;
            }
            for dst in dsts {
                let (mac, dst) = (*mac, *dst);
                if self.in_sync {
                    writes.push(NeighbourWrite::DeleteFdb { ifindex, mac, dst });
                } else {
                    report.deferred_deletes += 1;
                }
            }
        }
        for (address, mac) in &self.desired_neighbours {
            if neighbours.get(address) != Some(&Some(*mac)) {
                writes.push(NeighbourWrite::SetNeighbour {
                    ifindex,
                    address: *address,
                    mac: *mac,
                });
            }
        }
        for address in neighbours.keys() {
            if self.desired_neighbours.contains_key(address) {
                continue;
            }
            if self.in_sync {
                writes.push(NeighbourWrite::DeleteNeighbour {
                    ifindex,
                    address: *address,
                });
            } else {
                report.deferred_deletes += 1;
            }
        }
        writes
    }

    fn run(&mut self, report: &mut ApplyReport) -> Result<bool, DataplaneError> {
        let ifindex =
            self.kernel
                .link_index(&self.device)
                .map_err(|source| DataplaneError::Read {
                    what: "links",
                    source,
                })?;
        let Some(ifindex) = ifindex else {
            // Nothing to do without the device; with entries to write, they wait for it.
            report.waiting = self.desired_fdb.len();
            return Ok(true);
        };
        let (neighbours, fdb) = self.read(ifindex)?;
        report.resynced = true;
        let writes = self.plan(ifindex, &neighbours, &fdb, report);
        let mut clean = true;
        for chunk in writes.chunks(self.batch_size) {
            report.batches += 1;
            let verdicts = match self.kernel.write_neighbours(chunk) {
                Ok(v) => v,
                Err(source) => {
                    report.errors.push(DataplaneError::Batch {
                        what: "neighbour",
                        count: chunk.len(),
                        source,
                    });
                    clean = false;
                    continue;
                }
            };
            for (write, verdict) in chunk.iter().zip(verdicts) {
                let delete = matches!(
                    write,
                    NeighbourWrite::DeleteFdb { .. } | NeighbourWrite::DeleteNeighbour { .. }
                );
                match verdict {
                    Ok(()) if delete => report.deleted += 1,
                    Ok(()) => report.created += 1,
                    Err(e) if delete && e.is(libc::ENOENT) => report.deleted += 1,
                    Err(source) => {
                        clean = false;
                        tracing::warn!(device = %self.device, entry = %write.describe(), error = %source, "neighbour write failed");
                        report.errors.push(DataplaneError::Write {
                            op: if delete {
                                WriteOp::Delete
                            } else {
                                WriteOp::Create
                            },
                            object: format!("{} on {}", write.describe(), self.device),
                            source,
                        });
                    }
                }
            }
        }
        Ok(clean)
    }
}

impl<K: NeighbourKernel> Reconciler for NeighbourReconciler<K> {
    fn name(&self) -> &'static str {
        "neighbours"
    }

    fn apply(&mut self) -> ApplyReport {
        let mut report = ApplyReport::default();
        if !self.dirty {
            return report;
        }
        match self.run(&mut report) {
            Ok(clean) => self.dirty = !clean || report.waiting > 0,
            Err(e) => report.errors.push(e),
        }
        self.health = Health::from_reasons(report.errors.iter().map(|e| error_chain(e)).collect());
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
