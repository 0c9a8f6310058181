//! What this node originates: its confirmed blocks, a host route per borrowed address used on
//! it, and the service ranges, with the communities of `prefixAdvertisements`; never anything
//! from a pool with `disableBGPExport`.

use std::collections::BTreeSet;

use bgp_wire::{Community, LargeCommunity};
use fabric_api::bgp::CommunityValue;
use fabric_api::bgp::config::BGPConfigurationSpec;
use ipnet::IpNet;

use super::{BgpSettings, FabricInput, FabricWarning};
use crate::config::OriginateConfig;

/// A pool as the policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolNet {
    pub name: String,
    pub cidr: IpNet,
    pub disable_bgp_export: bool,
}

/// The export side of the fabric.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exports {
    pub originate: Vec<OriginateConfig>,
    pub own_blocks: Vec<IpNet>,
    pub service_ranges: Vec<IpNet>,
    pub pools: Vec<PoolNet>,
}

pub(crate) fn pool_nets(input: &FabricInput) -> Vec<PoolNet> {
    input
        .pools
        .iter()
        .filter_map(|(name, p)| {
            let cidr: IpNet = p.spec.cidr.parse().ok()?;
            Some(PoolNet {
                name: name.clone(),
                cidr: cidr.trunc(),
                disable_bgp_export: p.spec.disable_bgp_export,
            })
        })
        .collect()
}

/// The pool holding `net` (the most specific one).
fn pool_of<'a>(pools: &'a [PoolNet], net: &IpNet) -> Option<&'a PoolNet> {
    pools
        .iter()
        .filter(|p| p.cidr.contains(net))
        .max_by_key(|p| p.cidr.prefix_len())
}

pub(crate) fn compute(
    input: &FabricInput,
    bgp: &BgpSettings<'_>,
    warnings: &mut Vec<FabricWarning>,
) -> Exports {
    let pools = pool_nets(input);
    let me = input.node_name.as_str();
    let mut prefixes: BTreeSet<IpNet> = BTreeSet::new();
    let mut own_blocks = Vec::new();

    for (cidr, affinity) in &input.affinities {
        if !affinity.is_confirmed() {
            continue;
        }
        if let Some(block) = input.blocks.get(cidr)
            && block.host() != Some(me)
        {
            warnings.push(FabricWarning::new(
                format!("IPAM block {cidr}"),
                "affinity",
                format!(
                    "this node's affinity is confirmed but the block is affine to {:?}; not advertised",
                    block.affinity.as_deref().unwrap_or("nobody")
                ),
            ));
            continue;
        }
        own_blocks.push(*cidr);
        match pool_of(&pools, cidr) {
            Some(p) if p.disable_bgp_export => {}
            Some(_) => {
                prefixes.insert(*cidr);
            }
            None => warnings.push(FabricWarning::new(
                format!("IPAM block {cidr}"),
                "",
                "the block is in no IP pool; not advertised (Calico exports pool ranges only)",
            )),
        }
    }

    // Addresses used on this node from blocks affine to another node (or to none).
    for block in input.blocks.values() {
        if block.host() == Some(me) {
            continue;
        }
        for (_, ip, attr) in block.in_use() {
            let on_me = attr
                .and_then(|a| a.active_owner_attrs.get("node"))
                .is_some_and(|n| n == me);
            if !on_me {
                continue;
            }
            let host = IpNet::from(ip);
            match pool_of(&pools, &host) {
                Some(p) if !p.disable_bgp_export => {
                    prefixes.insert(host);
                }
                _ => {}
            }
        }
    }

    let mut service_ranges = Vec::new();
    let d = bgp.default;
    for (field, blocks) in [
        ("spec.serviceClusterIPs", &d.service_cluster_ips),
        ("spec.serviceExternalIPs", &d.service_external_ips),
        ("spec.serviceLoadBalancerIPs", &d.service_load_balancer_ips),
    ] {
        for (i, b) in blocks.iter().enumerate() {
            match b.cidr.parse::<IpNet>() {
                Ok(net) => {
                    let net = net.trunc();
                    if !service_ranges.contains(&net) {
                        service_ranges.push(net);
                    }
                    prefixes.insert(net);
                }
                Err(_) => warnings.push(FabricWarning::new(
                    "BGPConfiguration/default",
                    format!("{field}[{i}].cidr"),
                    format!("{:?} is not a CIDR; not advertised", b.cidr),
                )),
            }
        }
    }

    let adv = bgp.advertisements();
    let adv_name = if std::ptr::eq(adv, bgp.default) {
        "BGPConfiguration/default".to_string()
    } else {
        format!("BGPConfiguration/node.{me}")
    };
    let originate = prefixes
        .into_iter()
        .map(|prefix| {
            let mut o = OriginateConfig::new(prefix);
            add_communities(&mut o, adv, &adv_name, warnings);
            o
        })
        .collect();
    Exports {
        originate,
        own_blocks,
        service_ranges,
        pools,
    }
}

/// Attaches the communities of every `prefixAdvertisements` entry whose CIDR holds the prefix
/// (names resolved through `communities`).
fn add_communities(
    o: &mut OriginateConfig,
    spec: &BGPConfigurationSpec,
    resource: &str,
    warnings: &mut Vec<FabricWarning>,
) {
    for (i, pa) in spec.prefix_advertisements.iter().enumerate() {
        let Ok(cidr) = pa.cidr.parse::<IpNet>() else {
            continue;
        };
        if !cidr.trunc().contains(&o.prefix) {
            continue;
        }
        for (j, c) in pa.communities.iter().enumerate() {
            let value = spec
                .communities
                .iter()
                .find(|d| &d.name == c)
                .map_or(c.as_str(), |d| d.value.as_str());
            match CommunityValue::parse(value) {
                Ok(CommunityValue::Standard(a, b)) => {
                    let c = Community((u32::from(a) << 16) | u32::from(b));
                    if !o.communities.contains(&c) {
                        o.communities.push(c);
                    }
                }
                Ok(CommunityValue::Large(a, b, c)) => {
                    let l = LargeCommunity {
                        global_admin: a,
                        local_data_1: b,
                        local_data_2: c,
                    };
                    if !o.large_communities.contains(&l) {
                        o.large_communities.push(l);
                    }
                }
                Err(rule) => warnings.push(FabricWarning::new(
                    resource,
                    format!("spec.prefixAdvertisements[{i}].communities[{j}]"),
                    format!("{c:?} {rule}; not attached"),
                )),
            }
        }
    }
}
