//! The small, whole-state outputs: tunnel devices, remote VTEPs, sysctls and NAT pools. Each is
//! rebuilt (cheaply) only when one of its inputs changed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::input::HostInterface;
use super::model::{NodeInfo, PoolInfo, Vtep};
use super::settings::Settings;
use crate::dataplane::routes::{IPIP_DEVICE, VXLAN_DEVICE, VXLAN_V6_DEVICE};
use crate::dataplane::{
    DesiredLinks, IpFamily, IpipLink, NatPool, SysctlSet, VtepNeighbour, VxlanLink,
};

/// IPv4 VXLAN overhead (Calico: network MTU - 50).
const VXLAN_V4_OVERHEAD: u32 = 50;
/// IPv6 VXLAN overhead (network MTU - 70).
const VXLAN_V6_OVERHEAD: u32 = 70;
/// IPIP overhead (network MTU - 20).
const IPIP_OVERHEAD: u32 = 20;

/// The VXLAN device name of `family`.
pub fn vxlan_device(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => VXLAN_DEVICE,
        IpFamily::V6 => VXLAN_V6_DEVICE,
    }
}

/// Whether VXLAN of `family` is on: `vxlanEnabled` if set, else any pool of the family uses it.
pub(crate) fn vxlan_enabled<'a>(
    settings: &Settings,
    pools: impl Iterator<Item = &'a PoolInfo>,
    family: IpFamily,
) -> bool {
    let any = pools
        .filter(|p| p.family() == family)
        .any(PoolInfo::uses_vxlan);
    settings.vxlan_enabled.unwrap_or(any)
}

/// Whether IPIP is on: `ipipEnabled` if set, else any IPv4 pool uses it.
pub(crate) fn ipip_enabled<'a>(
    settings: &Settings,
    mut pools: impl Iterator<Item = &'a PoolInfo>,
) -> bool {
    settings
        .ipip_enabled
        .unwrap_or_else(|| pools.any(PoolInfo::uses_ipip))
}

/// The tunnel devices this node wants.
pub(crate) fn desired_links(
    me: Option<&NodeInfo>,
    pools: &BTreeMap<String, PoolInfo>,
    settings: &Settings,
    host: Option<&HostInterface>,
) -> DesiredLinks {
    let mut links = DesiredLinks::default();
    let Some(me) = me else {
        return links;
    };
    let tunnel_mtu = |configured: Option<u32>, overhead: u32, min: u32| {
        configured
            .or_else(|| host.map(|h| h.mtu.saturating_sub(overhead)))
            .filter(|m| *m >= min)
    };
    for family in [IpFamily::V4, IpFamily::V6] {
        if family == IpFamily::V6 && !settings.ipv6_support {
            continue;
        }
        if !vxlan_enabled(settings, pools.values(), family) {
            continue;
        }
        let Some(local) = me.address(family) else {
            continue;
        };
        let (address, mac, mtu) = match family {
            IpFamily::V4 => (
                me.vxlan_v4_address.map(IpAddr::V4),
                me.vxlan_v4_mac,
                tunnel_mtu(settings.vxlan_mtu, VXLAN_V4_OVERHEAD, 68),
            ),
            IpFamily::V6 => (
                me.vxlan_v6_address.map(IpAddr::V6),
                me.vxlan_v6_mac,
                tunnel_mtu(settings.vxlan_mtu_v6, VXLAN_V6_OVERHEAD, 1280),
            ),
        };
        let link = VxlanLink {
            name: vxlan_device(family).to_string(),
            vni: settings.vxlan_vni,
            port: settings.vxlan_port,
            local,
            // No parent: the kernel routes the underlay by the local address, and a device
            // bound to a parent would have to be recreated (dropping traffic) whenever the
            // underlay interface is detected or renamed.
            parent: None,
            mac,
            mtu,
            address,
        };
        match family {
            IpFamily::V4 => links.vxlan_v4 = Some(link),
            IpFamily::V6 => links.vxlan_v6 = Some(link),
        }
    }
    if ipip_enabled(settings, pools.values()) {
        links.ipip = Some(IpipLink {
            name: IPIP_DEVICE.to_string(),
            mtu: tunnel_mtu(settings.ipip_mtu, IPIP_OVERHEAD, 68),
            address: me.ipip_tunnel_address,
        });
    }
    links
}

/// The remote VTEPs of `family`, one per node (not `me`) that has a complete VTEP. A node
/// whose tunnel address or MAC repeats an earlier node's (by name) is left out and reported:
/// the kernel cannot hold both, and one bad Node must not stop the others.
pub(crate) fn remote_vteps(
    nodes: &BTreeMap<String, NodeInfo>,
    me: &str,
    family: IpFamily,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Vtep> {
    let mut out = BTreeMap::new();
    let mut addresses: BTreeMap<IpAddr, &str> = BTreeMap::new();
    let mut macs: BTreeMap<String, &str> = BTreeMap::new();
    if let Some(mine) = nodes.get(me).and_then(|n| n.vtep(family)) {
        addresses.insert(mine.address, me);
        macs.insert(mine.mac.to_string(), me);
    }
    for (name, node) in nodes {
        if name == me {
            continue;
        }
        let Some(vtep) = node.vtep(family) else {
            continue;
        };
        if let Some(first) = addresses.get(&vtep.address) {
            problems.push(format!(
                "node {name}: VXLAN tunnel address {} is also node {first}'s; its VTEP is ignored",
                vtep.address
            ));
            continue;
        }
        if let Some(first) = macs.get(&vtep.mac.to_string()) {
            problems.push(format!(
                "node {name}: VXLAN MAC {} is also node {first}'s; its VTEP is ignored",
                vtep.mac
            ));
            continue;
        }
        addresses.insert(vtep.address, name);
        macs.insert(vtep.mac.to_string(), name);
        out.insert(name.clone(), vtep);
    }
    out
}

/// The neighbour reconciler's input for a VTEP map, sorted by tunnel address.
pub(crate) fn vtep_neighbours(vteps: &BTreeMap<String, Vtep>) -> Vec<VtepNeighbour> {
    let mut out: Vec<VtepNeighbour> = vteps
        .values()
        .map(|v| VtepNeighbour {
            tunnel_address: v.address,
            mac: v.mac,
            underlay: v.underlay,
        })
        .collect();
    out.sort_by_key(|v| v.tunnel_address);
    out
}

/// Node forwarding plus each workload interface's settings.
pub(crate) fn desired_sysctls(
    interfaces: &BTreeMap<String, (bool, bool)>,
    ipv6: bool,
    problems: &mut Vec<String>,
) -> SysctlSet {
    let mut set = SysctlSet::node(true, ipv6);
    for (name, (v4, v6)) in interfaces {
        if let Err(e) = set.add_workload_interface(name, *v4, *v6 && ipv6) {
            problems.push(e.to_string());
        }
    }
    set
}

/// The NAT reconciler's pools of `family`, sorted by CIDR.
pub(crate) fn nat_pools(pools: &BTreeMap<String, PoolInfo>, family: IpFamily) -> Vec<NatPool> {
    let mut out: Vec<NatPool> = pools
        .values()
        .filter(|p| p.family() == family)
        .map(|p| NatPool {
            cidr: p.cidr,
            nat_outgoing: p.nat_outgoing,
        })
        .collect();
    out.sort_by_key(|p| p.cidr);
    out.dedup_by_key(|p| p.cidr);
    out
}
