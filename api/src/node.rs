//! `Node`: a Calico node, its BGP identity (address, AS, route-reflector cluster) and tunnel
//! addresses.

use serde::{Deserialize, Serialize};

use crate::bgp::{ASNumber, check_as_number};
use crate::error::{Errors, index, join};
use crate::resource::{Rules, resource};
use crate::validate::check_one_of;
use crate::validate::cidr::{Cidr, check_cidr, check_cidr_family, check_ip_family};
use crate::validate::names::{check_name, is_mac};

resource!(
    /// A Calico node.
    Node,
    NodeSpec,
    status: NodeStatus
);

/// `Node.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    /// BGP identity (omit rather than leave empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBGPSpec>,
    /// IPv4 address of the VXLAN device.
    #[serde(
        default,
        rename = "ipv4VXLANTunnelAddr",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_vxlan_tunnel_addr: String,
    /// MAC address of the VXLAN device.
    #[serde(
        default,
        rename = "vxlanTunnelMACAddr",
        skip_serializing_if = "String::is_empty"
    )]
    pub vxlan_tunnel_mac_addr: String,
    /// IPv6 address of the IPv6 VXLAN device.
    #[serde(
        default,
        rename = "ipv6VXLANTunnelAddr",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_vxlan_tunnel_addr: String,
    /// MAC address of the IPv6 VXLAN device.
    #[serde(
        default,
        rename = "vxlanTunnelMACAddrV6",
        skip_serializing_if = "String::is_empty"
    )]
    pub vxlan_tunnel_mac_addr_v6: String,
    /// Orchestrator references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orch_refs: Vec<OrchRef>,
    /// WireGuard interface addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<NodeWireguardSpec>,
    /// Addresses the node can be reached at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    /// Interfaces of the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<NodeInterface>,
}

/// `Node.spec.bgp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeBGPSpec {
    /// The node's AS number (the cluster's when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<ASNumber>,
    /// IPv4 address with its subnet (`10.0.0.11/24`); the subnet defines CrossSubnet.
    #[serde(
        default,
        rename = "ipv4Address",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_address: String,
    /// IPv6 address with its subnet.
    #[serde(
        default,
        rename = "ipv6Address",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_address: String,
    /// IPv4 address of `tunl0`.
    #[serde(
        default,
        rename = "ipv4IPIPTunnelAddr",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_ipip_tunnel_addr: String,
    /// Route-reflector cluster ID (an IPv4 address); makes the node a route reflector.
    #[serde(
        default,
        rename = "routeReflectorClusterID",
        skip_serializing_if = "String::is_empty"
    )]
    pub route_reflector_cluster_id: String,
}

impl NodeBGPSpec {
    /// The IPv4 address and subnet, when set and valid.
    pub fn ipv4_cidr(&self) -> Option<Cidr> {
        Cidr::parse_or_ip(&self.ipv4_address)
            .ok()
            .filter(Cidr::is_ipv4)
    }

    /// The IPv6 address and subnet, when set and valid.
    pub fn ipv6_cidr(&self) -> Option<Cidr> {
        Cidr::parse_or_ip(&self.ipv6_address)
            .ok()
            .filter(|c| !c.is_ipv4())
    }
}

/// An orchestrator's name for the node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrchRef {
    /// Name of the node in the orchestrator.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    /// The orchestrator (`k8s`).
    #[serde(default)]
    pub orchestrator: String,
}

/// `Node.spec.wireguard`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeWireguardSpec {
    /// IPv4 address of the WireGuard interface.
    #[serde(
        default,
        rename = "interfaceIPv4Address",
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_ipv4_address: String,
    /// IPv6 address of the WireGuard interface.
    #[serde(
        default,
        rename = "interfaceIPv6Address",
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_ipv6_address: String,
}

/// An address of the node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddress {
    /// Address or CIDR.
    #[serde(default)]
    pub address: String,
    /// `CalicoNodeIP`, `InternalIP` or `ExternalIP`.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub address_type: String,
}

/// An interface of the node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInterface {
    /// Interface name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

/// `Node.status` (written by Calico components).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeStatus {
    /// IPv4 WireGuard public key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wireguard_public_key: String,
    /// IPv6 WireGuard public key.
    #[serde(
        default,
        rename = "wireguardPublicKeyV6",
        skip_serializing_if = "String::is_empty"
    )]
    pub wireguard_public_key_v6: String,
    /// The Kubernetes node's pod CIDRs.
    #[serde(default, rename = "podCIDRs", skip_serializing_if = "Vec::is_empty")]
    pub pod_cidrs: Vec<String>,
}

impl Rules for Node {
    fn defaults(&mut self) {}

    fn check(&self, errs: &mut Errors) {
        check_name(errs, "metadata.name", self.metadata.name_str());
        let s = &self.spec;
        if let Some(b) = &s.bgp {
            if b == &NodeBGPSpec::default() {
                errs.rule("spec.bgp", "must not be empty; omit it instead");
            }
            check_as_number(errs, "spec.bgp.asNumber", b.as_number);
            if !b.ipv4_address.is_empty() {
                check_cidr_family(errs, "spec.bgp.ipv4Address", &b.ipv4_address, 4);
            }
            if !b.ipv6_address.is_empty() {
                check_cidr_family(errs, "spec.bgp.ipv6Address", &b.ipv6_address, 6);
            }
            for (field, v) in [
                ("spec.bgp.ipv4IPIPTunnelAddr", &b.ipv4_ipip_tunnel_addr),
                (
                    "spec.bgp.routeReflectorClusterID",
                    &b.route_reflector_cluster_id,
                ),
            ] {
                if !v.is_empty() {
                    check_ip_family(errs, field, v, 4);
                }
            }
        }
        let addrs = [
            ("spec.ipv4VXLANTunnelAddr", &s.ipv4_vxlan_tunnel_addr, 4u8),
            ("spec.ipv6VXLANTunnelAddr", &s.ipv6_vxlan_tunnel_addr, 6),
        ];
        for (field, v, fam) in addrs {
            if !v.is_empty() {
                check_ip_family(errs, field, v, fam);
            }
        }
        for (field, mac) in [
            ("spec.vxlanTunnelMACAddr", &s.vxlan_tunnel_mac_addr),
            ("spec.vxlanTunnelMACAddrV6", &s.vxlan_tunnel_mac_addr_v6),
        ] {
            if !mac.is_empty() && !is_mac(mac) {
                errs.add(field, mac.as_str(), "is not a MAC address");
            }
        }
        if let Some(w) = &s.wireguard {
            if !w.interface_ipv4_address.is_empty() {
                check_ip_family(
                    errs,
                    "spec.wireguard.interfaceIPv4Address",
                    &w.interface_ipv4_address,
                    4,
                );
            }
            if !w.interface_ipv6_address.is_empty() {
                check_ip_family(
                    errs,
                    "spec.wireguard.interfaceIPv6Address",
                    &w.interface_ipv6_address,
                    6,
                );
            }
        }
        for (i, a) in s.addresses.iter().enumerate() {
            let f = index("spec.addresses", i);
            // Calico's own KDD conversion writes addresses such as 10.0.0.11/24 here, so any
            // CIDR or address is accepted (its validator would demand a strictly masked one).
            if a.address.is_empty() {
                errs.rule(join(&f, "address"), "is required");
            } else {
                check_cidr(errs, &join(&f, "address"), &a.address);
            }
            if !a.address_type.is_empty() {
                check_one_of(
                    errs,
                    &join(&f, "type"),
                    &a.address_type,
                    &["CalicoNodeIP", "InternalIP", "ExternalIP"],
                );
            }
        }
        for (i, iface) in s.interfaces.iter().enumerate() {
            if !iface.name.is_empty() {
                check_name(
                    errs,
                    &join(&index("spec.interfaces", i), "name"),
                    &iface.name,
                );
            }
        }
    }
}
