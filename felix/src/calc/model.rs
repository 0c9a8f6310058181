//! The calc graph's parsed views of pools and nodes: only the fields routing needs, parsed once
//! when the resource arrives (bad values are dropped with a warning, never an error).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fabric_api::ippool::{IPIPMode, VXLANMode};
use fabric_api::node::NodeSpec;
use fabric_api::{IPPool, Node};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::dataplane::{IpFamily, MacAddr};

/// A pool as the calc graph sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    /// The pool's CIDR (masked).
    pub cidr: IpNet,
    /// `ipipMode` (`Never` when unset).
    pub ipip_mode: IPIPMode,
    /// `vxlanMode` (`Never` when unset).
    pub vxlan_mode: VXLANMode,
    /// `natOutgoing`.
    pub nat_outgoing: bool,
    /// `disabled`: no new allocations, but existing blocks are still routed.
    pub disabled: bool,
}

impl PoolInfo {
    /// A pool with the given CIDR and modes (tests and tables).
    pub fn new(cidr: IpNet, ipip_mode: IPIPMode, vxlan_mode: VXLANMode) -> PoolInfo {
        PoolInfo {
            cidr: cidr.trunc(),
            ipip_mode,
            vxlan_mode,
            nat_outgoing: false,
            disabled: false,
        }
    }

    /// Parses a stored pool; `Err` names the field and why it cannot be used.
    pub fn from_pool(pool: &IPPool) -> Result<PoolInfo, String> {
        let s = &pool.spec;
        let cidr: IpNet = s
            .cidr
            .parse()
            .map_err(|_| format!("spec.cidr {:?} is not a CIDR", s.cidr))?;
        Ok(PoolInfo {
            cidr: cidr.trunc(),
            ipip_mode: s.effective_ipip_mode(),
            vxlan_mode: s.effective_vxlan_mode(),
            nat_outgoing: s.nat_outgoing,
            disabled: s.disabled,
        })
    }

    /// The pool's address family.
    pub fn family(&self) -> IpFamily {
        IpFamily::of_net(&self.cidr)
    }

    /// Whether IPIP applies: an IPv4 pool with `ipipMode` other than `Never`.
    pub fn uses_ipip(&self) -> bool {
        self.family() == IpFamily::V4 && self.ipip_mode != IPIPMode::Never
    }

    /// Whether VXLAN applies (`vxlanMode` other than `Never`).
    pub fn uses_vxlan(&self) -> bool {
        self.vxlan_mode != VXLANMode::Never
    }

    /// Whether the pool asks for any encapsulation (then felix owns its cluster routes).
    pub fn is_encapsulated(&self) -> bool {
        self.uses_ipip() || self.uses_vxlan()
    }
}

/// A remote (or our own) VXLAN tunnel endpoint of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vtep {
    /// The tunnel address (`ipv4VXLANTunnelAddr` / `ipv6VXLANTunnelAddr`).
    pub address: IpAddr,
    /// The VTEP MAC (`vxlanTunnelMACAddr` / `vxlanTunnelMACAddrV6`).
    pub mac: MacAddr,
    /// The node's underlay address of the same family.
    pub underlay: IpAddr,
}

/// A node as the calc graph sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// `spec.bgp.ipv4Address` with its prefix (a bare address is a /32): the prefix defines
    /// the node's subnet for CrossSubnet.
    pub ipv4: Option<Ipv4Net>,
    /// `spec.bgp.ipv6Address` with its prefix.
    pub ipv6: Option<Ipv6Net>,
    /// `spec.bgp.ipv4IPIPTunnelAddr`.
    pub ipip_tunnel_address: Option<Ipv4Addr>,
    /// `spec.ipv4VXLANTunnelAddr`.
    pub vxlan_v4_address: Option<Ipv4Addr>,
    /// `spec.vxlanTunnelMACAddr`.
    pub vxlan_v4_mac: Option<MacAddr>,
    /// `spec.ipv6VXLANTunnelAddr`.
    pub vxlan_v6_address: Option<Ipv6Addr>,
    /// `spec.vxlanTunnelMACAddrV6`.
    pub vxlan_v6_mac: Option<MacAddr>,
}

impl NodeInfo {
    /// A node with only an IPv4 address and prefix (tests and tables).
    pub fn with_ipv4(address: Ipv4Net) -> NodeInfo {
        NodeInfo {
            ipv4: Some(address),
            ..NodeInfo::default()
        }
    }

    /// Parses a stored node; unusable fields are dropped and reported in the second value
    /// (`"spec.bgp.ipv4Address \"x\" is not an address or CIDR"`).
    pub fn from_node(node: &Node) -> (NodeInfo, Vec<String>) {
        NodeInfo::from_spec(&node.spec)
    }

    /// [`NodeInfo::from_node`] on the spec.
    pub fn from_spec(spec: &NodeSpec) -> (NodeInfo, Vec<String>) {
        let mut problems = Vec::new();
        let mut info = NodeInfo::default();
        let mut field = |path: &str, text: &str| -> Option<IpNet> {
            if text.is_empty() {
                return None;
            }
            let parsed = if text.contains('/') {
                text.parse::<IpNet>().ok()
            } else {
                text.parse::<IpAddr>().ok().map(IpNet::from)
            };
            if parsed.is_none() {
                problems.push(format!("{path} {text:?} is not an address or CIDR"));
            }
            parsed
        };
        if let Some(bgp) = &spec.bgp {
            info.ipv4 = match field("spec.bgp.ipv4Address", &bgp.ipv4_address) {
                Some(IpNet::V4(n)) => Some(n),
                _ => None,
            };
            info.ipv6 = match field("spec.bgp.ipv6Address", &bgp.ipv6_address) {
                Some(IpNet::V6(n)) => Some(n),
                _ => None,
            };
            info.ipip_tunnel_address =
                match field("spec.bgp.ipv4IPIPTunnelAddr", &bgp.ipv4_ipip_tunnel_addr) {
                    Some(IpNet::V4(n)) => Some(n.addr()),
                    _ => None,
                };
        }
        info.vxlan_v4_address =
            match field("spec.ipv4VXLANTunnelAddr", &spec.ipv4_vxlan_tunnel_addr) {
                Some(IpNet::V4(n)) => Some(n.addr()),
                _ => None,
            };
        info.vxlan_v6_address =
            match field("spec.ipv6VXLANTunnelAddr", &spec.ipv6_vxlan_tunnel_addr) {
                Some(IpNet::V6(n)) => Some(n.addr()),
                _ => None,
            };
        let mut mac = |path: &str, text: &str| -> Option<MacAddr> {
            if text.is_empty() {
                return None;
            }
            match text.parse::<MacAddr>() {
                Ok(m) if !m.is_zero() && !m.is_multicast() => Some(m),
                _ => {
                    problems.push(format!("{path} {text:?} is not a unicast MAC address"));
                    None
                }
            }
        };
        info.vxlan_v4_mac = mac("spec.vxlanTunnelMACAddr", &spec.vxlan_tunnel_mac_addr);
        info.vxlan_v6_mac = mac("spec.vxlanTunnelMACAddrV6", &spec.vxlan_tunnel_mac_addr_v6);
        (info, problems)
    }

    /// The node's underlay address of `family`.
    pub fn address(&self, family: IpFamily) -> Option<IpAddr> {
        match family {
            IpFamily::V4 => self.ipv4.map(|n| IpAddr::V4(n.addr())),
            IpFamily::V6 => self.ipv6.map(|n| IpAddr::V6(n.addr())),
        }
    }

    /// Whether `addr` lies in this node's subnet of its family (the prefix of `ipv4Address` /
    /// `ipv6Address`).
    pub fn same_subnet(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.ipv4.is_some_and(|n| n.trunc().contains(&a)),
            IpAddr::V6(a) => self.ipv6.is_some_and(|n| n.trunc().contains(&a)),
        }
    }

    /// The node's VTEP of `family`, when it has a tunnel address, a MAC and an underlay address.
    pub fn vtep(&self, family: IpFamily) -> Option<Vtep> {
        let (address, mac) = match family {
            IpFamily::V4 => (self.vxlan_v4_address.map(IpAddr::V4), self.vxlan_v4_mac),
            IpFamily::V6 => (self.vxlan_v6_address.map(IpAddr::V6), self.vxlan_v6_mac),
        };
        Some(Vtep {
            address: address?,
            mac: mac?,
            underlay: self.address(family)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_api::node::NodeBGPSpec;

    #[test]
    fn a_node_spec_is_parsed_and_bad_fields_are_reported_not_fatal() {
        let spec = NodeSpec {
            bgp: Some(NodeBGPSpec {
                ipv4_address: "172.16.0.1/24".into(),
                ipv6_address: "nonsense".into(),
                ipv4_ipip_tunnel_addr: "10.65.0.1".into(),
                ..NodeBGPSpec::default()
            }),
            ipv4_vxlan_tunnel_addr: "10.65.0.0".into(),
            vxlan_tunnel_mac_addr: "66:00:00:00:00:01".into(),
            ..NodeSpec::default()
        };
        let (info, problems) = NodeInfo::from_spec(&spec);
        assert_eq!(info.ipv4, Some("172.16.0.1/24".parse().unwrap()));
        assert_eq!(info.ipv6, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("spec.bgp.ipv6Address"), "{problems:?}");
        let vtep = info.vtep(IpFamily::V4).unwrap();
        assert_eq!(vtep.address, "10.65.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(vtep.underlay, "172.16.0.1".parse::<IpAddr>().unwrap());
        assert!(info.same_subnet("172.16.0.200".parse().unwrap()));
        assert!(!info.same_subnet("172.16.1.2".parse().unwrap()));
    }

    #[test]
    fn a_bare_node_address_is_a_subnet_of_one() {
        let (info, _) = NodeInfo::from_spec(&NodeSpec {
            bgp: Some(NodeBGPSpec {
                ipv4_address: "172.16.0.1".into(),
                ..NodeBGPSpec::default()
            }),
            ..NodeSpec::default()
        });
        assert!(info.same_subnet("172.16.0.1".parse().unwrap()));
        assert!(!info.same_subnet("172.16.0.2".parse().unwrap()));
    }
}
