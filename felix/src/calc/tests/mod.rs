//! Calc graph tests: fixtures shared by the route tables and the order-independence property.

mod order;
mod scenarios;

use std::collections::BTreeMap;

use fabric_api::endpoint::WorkloadEndpointSpec;
use fabric_api::felix::FelixConfigurationSpec;
use fabric_api::ippool::{IPIPMode, VXLANMode};
use fabric_api::meta::ObjectMeta;
use fabric_api::node::{NodeBGPSpec, NodeSpec};
use fabric_api::{FelixConfiguration, IPPool, IPPoolSpec, Node, WorkloadEndpoint};
use fabric_datastore::ipam_model::{
    AffinityState, AllocationAttribute, AllocationBlock, BlockAffinity,
};
use ipnet::IpNet;

use super::{CalcGraph, CalcInput, ConfigOverrides, HostInterface, LearnedRoute};

pub(super) fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub(super) fn pool(name: &str, cidr: &str, ipip: IPIPMode, vxlan: VXLANMode) -> CalcInput {
    CalcInput::Pool {
        name: name.into(),
        pool: Some(Box::new(IPPool {
            metadata: ObjectMeta::named(name),
            spec: IPPoolSpec {
                cidr: cidr.into(),
                ipip_mode: Some(ipip),
                vxlan_mode: Some(vxlan),
                ..IPPoolSpec::default()
            },
            status: None,
        })),
    }
}

pub(super) fn pool_deleted(name: &str) -> CalcInput {
    CalcInput::Pool {
        name: name.into(),
        pool: None,
    }
}

/// A node with an IPv4 address/prefix, and (by index `n`) a VTEP `10.99.0.<n>` with MAC
/// `66:00:00:00:00:<n>` and an IPIP tunnel address `10.98.0.<n>`.
pub(super) fn node(name: &str, ipv4: &str, n: u8) -> CalcInput {
    CalcInput::Node {
        name: name.into(),
        node: Some(Box::new(Node {
            metadata: ObjectMeta::named(name),
            spec: NodeSpec {
                bgp: Some(NodeBGPSpec {
                    ipv4_address: ipv4.into(),
                    ipv4_ipip_tunnel_addr: format!("10.98.0.{n}"),
                    ..NodeBGPSpec::default()
                }),
                ipv4_vxlan_tunnel_addr: format!("10.99.0.{n}"),
                vxlan_tunnel_mac_addr: format!("66:00:00:00:00:{n:02x}"),
                ..NodeSpec::default()
            },
            status: None,
        })),
    }
}

pub(super) fn node_deleted(name: &str) -> CalcInput {
    CalcInput::Node {
        name: name.into(),
        node: None,
    }
}

pub(super) fn wep(node: &str, pod: &str, iface: &str, ip: &str) -> CalcInput {
    CalcInput::Endpoint {
        key: format!("/wep/{node}/{pod}"),
        endpoint: Some(Box::new(WorkloadEndpoint {
            metadata: ObjectMeta::namespaced("default", pod),
            spec: WorkloadEndpointSpec {
                node: node.into(),
                pod: pod.into(),
                interface_name: iface.into(),
                ip_networks: vec![format!("{ip}/32")],
                ..WorkloadEndpointSpec::default()
            },
        })),
    }
}

pub(super) fn wep_deleted(node: &str, pod: &str) -> CalcInput {
    CalcInput::Endpoint {
        key: format!("/wep/{node}/{pod}"),
        endpoint: None,
    }
}

/// A block whose listed ordinals are used on the given nodes.
pub(super) fn block(cidr: &str, used: &[(usize, &str)]) -> CalcInput {
    let cidr = net(cidr);
    let size = 1usize << (32 - cidr.prefix_len());
    let mut allocations = vec![None; size];
    let mut attributes = Vec::new();
    for (ordinal, node) in used {
        allocations[*ordinal] = Some(attributes.len());
        let mut a = AllocationAttribute::default();
        a.active_owner_attrs.insert("node".into(), node.to_string());
        attributes.push(a);
    }
    CalcInput::Block {
        cidr,
        block: Some(Box::new(AllocationBlock {
            cidr,
            affinity: None,
            affinity_claim_time: None,
            strict_affinity: false,
            allocations,
            unallocated: Vec::new(),
            attributes,
            sequence_number: 1,
            sequence_number_for_allocation: BTreeMap::new(),
            deleted: false,
        })),
    }
}

pub(super) fn affinity(node: &str, cidr: &str, state: Option<AffinityState>) -> CalcInput {
    CalcInput::Affinity {
        node: node.into(),
        cidr: net(cidr),
        affinity: state.map(|state| BlockAffinity {
            state,
            deleted: false,
        }),
    }
}

pub(super) fn confirmed(node: &str, cidr: &str) -> CalcInput {
    affinity(node, cidr, Some(AffinityState::Confirmed))
}

pub(super) fn learned(prefix: &str, hops: &[&str]) -> CalcInput {
    CalcInput::Learned(LearnedRoute::new(
        net(prefix),
        hops.iter().map(|h| h.parse().unwrap()).collect(),
    ))
}

pub(super) fn host(name: &str, mtu: u32) -> CalcInput {
    CalcInput::HostInterface(Some(HostInterface {
        name: name.into(),
        mtu,
    }))
}

pub(super) fn felix_config(name: &str, spec: FelixConfigurationSpec) -> CalcInput {
    CalcInput::FelixConfig {
        name: name.into(),
        config: Some(Box::new(FelixConfiguration {
            metadata: ObjectMeta::named(name),
            spec,
        })),
    }
}

/// A graph for `me` fed `inputs` and the in-sync marker, flushed once.
pub(super) fn graph(me: &str, inputs: impl IntoIterator<Item = CalcInput>) -> CalcGraph {
    let mut g = CalcGraph::new(me, ConfigOverrides::default());
    for i in inputs {
        g.update(i);
    }
    g.update(CalcInput::DatastoreInSync);
    g.flush();
    g
}
