//! `show`-style data for calicoctl: address usage per pool and per block (total, in use,
//! reserved, free) and the borrowed addresses (IP, borrowing node, block, block owner, type,
//! allocated to).

use std::collections::BTreeMap;
use std::net::IpAddr;

use fabric_api::IPPool;
use fabric_datastore::ipam_model::{AffinityState, AllocationBlock};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Ipam;
use crate::blocks::{Reservations, net_size};
use crate::error::IpamError;
use crate::pools::{self, pool_net};

/// Usage of one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockUsage {
    /// The block.
    pub cidr: IpNet,
    /// The node it is affine to, if any.
    pub node: Option<String>,
    /// The state of that node's affinity (`None`: no affinity object).
    pub affinity_state: Option<AffinityState>,
    /// Addresses in the block.
    pub total: u128,
    /// Allocated addresses.
    pub in_use: u128,
    /// Reserved (IPReservation) addresses that are not allocated.
    pub reserved: u128,
    /// Addresses left to hand out.
    pub free: u128,
    /// Allocated addresses whose node is not the block's node.
    pub borrowed: u128,
}

/// Usage of one pool, with its blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolUsage {
    /// The pool's name.
    pub name: String,
    /// Its CIDR.
    pub cidr: IpNet,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Addresses in the pool.
    pub total: u128,
    /// Allocated addresses.
    pub in_use: u128,
    /// Reserved addresses that are not allocated.
    pub reserved: u128,
    /// Addresses left.
    pub free: u128,
    /// Its blocks, by CIDR.
    pub blocks: Vec<BlockUsage>,
}

/// An address in a block of another node (or of none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BorrowedAddress {
    /// The address.
    pub ip: IpAddr,
    /// The node using it (attribute `node`).
    pub borrowing_node: String,
    /// Its block.
    pub block: IpNet,
    /// The block's node (`None`: unaffine).
    pub block_owner: Option<String>,
    /// Attribute `type`; `pod` for a pod's address without one (as calicoctl shows it).
    #[serde(rename = "type")]
    pub kind: String,
    /// `namespace/pod`, or the handle.
    pub allocated_to: String,
}

fn block_usage(
    b: &AllocationBlock,
    reserved: &Reservations,
    states: &BTreeMap<(String, IpNet), AffinityState>,
) -> BlockUsage {
    let total = net_size(&b.cidr);
    let in_use = b.in_use_count() as u128;
    let reserved_free = b
        .unallocated
        .iter()
        .filter_map(|&o| b.address(o))
        .filter(|ip| reserved.contains(*ip))
        .count() as u128;
    let node = b.host().map(str::to_string);
    let borrowed = b
        .in_use()
        .filter(|(_, _, a)| {
            let user = a.and_then(|a| a.active_owner_attrs.get("node"));
            user.is_some_and(|u| Some(u) != node.as_ref())
        })
        .count() as u128;
    BlockUsage {
        cidr: b.cidr,
        affinity_state: node
            .as_ref()
            .and_then(|n| states.get(&(n.clone(), b.cidr)).copied()),
        node,
        total,
        in_use,
        reserved: reserved_free,
        free: total.saturating_sub(in_use + reserved_free),
        borrowed,
    }
}

fn pool_usage(
    pool: &IPPool,
    blocks: &[AllocationBlock],
    reserved: &Reservations,
    states: &BTreeMap<(String, IpNet), AffinityState>,
) -> Option<PoolUsage> {
    let cidr = pool_net(pool)?;
    let inside: Vec<BlockUsage> = blocks
        .iter()
        .filter(|b| cidr.contains(&b.cidr))
        .map(|b| block_usage(b, reserved, states))
        .collect();
    let total = net_size(&cidr);
    let in_use: u128 = inside.iter().map(|b| b.in_use).sum();
    let reserved_in_use: u128 = blocks
        .iter()
        .filter(|b| cidr.contains(&b.cidr))
        .flat_map(|b| b.in_use())
        .filter(|(_, ip, _)| reserved.contains(*ip))
        .count() as u128;
    let reserved_free = reserved.count_within(&cidr).saturating_sub(reserved_in_use);
    Some(PoolUsage {
        name: pool.metadata.name_str().to_string(),
        cidr,
        disabled: pool.spec.disabled,
        total,
        in_use,
        reserved: reserved_free,
        free: total.saturating_sub(in_use.saturating_add(reserved_free)),
        blocks: inside,
    })
}

impl Ipam {
    /// Usage of every pool and its blocks (`calicoctl ipam show [--show-blocks]`).
    pub async fn usage(&self) -> Result<Vec<PoolUsage>, IpamError> {
        let env = pools::load_env(self.backend.as_ref()).await?;
        let blocks = self.blocks().await?;
        let states: BTreeMap<(String, IpNet), AffinityState> = self
            .affinities(None)
            .await?
            .into_iter()
            .map(|a| ((a.node, a.block), a.state))
            .collect();
        Ok(env
            .pools
            .iter()
            .filter_map(|p| pool_usage(p, &blocks, &env.reservations, &states))
            .collect())
    }

    /// Usage of the blocks that lie in no pool (their pool was deleted while they still held
    /// addresses), for `calicoctl ipam show --show-blocks`.
    pub async fn usage_outside_pools(&self) -> Result<Vec<BlockUsage>, IpamError> {
        let env = pools::load_env(self.backend.as_ref()).await?;
        let nets: Vec<IpNet> = env.pools.iter().filter_map(pool_net).collect();
        let states: BTreeMap<(String, IpNet), AffinityState> = self
            .affinities(None)
            .await?
            .into_iter()
            .map(|a| ((a.node, a.block), a.state))
            .collect();
        Ok(self
            .blocks()
            .await?
            .iter()
            .filter(|b| !nets.iter().any(|n| n.contains(&b.cidr)))
            .map(|b| block_usage(b, &env.reservations, &states))
            .collect())
    }

    /// Every borrowed address (`calicoctl ipam show --show-borrowed`): allocated to a node
    /// other than its block's node.
    pub async fn borrowed(&self) -> Result<Vec<BorrowedAddress>, IpamError> {
        let mut out = Vec::new();
        for b in self.blocks().await? {
            let owner = b.host().map(str::to_string);
            for (_, ip, attr) in b.in_use() {
                let Some(attr) = attr else {
                    continue;
                };
                let get = |k: &str| attr.active_owner_attrs.get(k).cloned();
                let Some(node) = get("node") else {
                    continue;
                };
                if Some(&node) == owner.as_ref() {
                    continue;
                }
                let allocated_to = match (get("namespace"), get("pod")) {
                    (Some(ns), Some(pod)) => format!("{ns}/{pod}"),
                    _ => attr.handle_id.clone().unwrap_or_default(),
                };
                out.push(BorrowedAddress {
                    ip,
                    borrowing_node: node,
                    block: b.cidr,
                    block_owner: owner.clone(),
                    kind: get("type")
                        .or_else(|| get("pod").map(|_| "pod".to_string()))
                        .unwrap_or_default(),
                    allocated_to,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use fabric_api::ObjectMeta;
    use fabric_api::ippool::IPPoolSpec;
    use fabric_datastore::ipam_model::AllocationAttribute;

    use super::*;
    use crate::blocks::{allocate, new_block};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn pool_usage_adds_up_in_use_reserved_and_free() {
        let pool = IPPool {
            metadata: ObjectMeta::named("p"),
            spec: IPPoolSpec {
                cidr: "10.0.0.0/24".into(),
                ..IPPoolSpec::default()
            },
            status: None,
        };
        let reserved = Reservations::from_nets(vec![net("10.0.0.0/30"), net("10.0.0.200/32")]);
        let attr = AllocationAttribute {
            handle_id: Some("h".into()),
            active_owner_attrs: BTreeMap::from([("node".into(), "other".into())]),
            ..AllocationAttribute::default()
        };
        let b = new_block(net("10.0.0.0/26"), Some("n1"), None, 1);
        let (b, got) = allocate(&b, 3, attr, &reserved).unwrap();
        assert_eq!(got.len(), 3);
        let usage = pool_usage(&pool, &[b], &reserved, &BTreeMap::new()).unwrap();
        assert_eq!(usage.total, 256);
        assert_eq!(usage.in_use, 3);
        assert_eq!(usage.reserved, 5);
        assert_eq!(usage.free, 248);
        let block = &usage.blocks[0];
        assert_eq!(
            (
                block.total,
                block.in_use,
                block.reserved,
                block.free,
                block.borrowed
            ),
            (64, 3, 4, 57, 3)
        );
    }
}
