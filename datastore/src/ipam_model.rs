//! The stored IPAM objects in Calico's JSON shapes: allocation blocks, block affinities and
//! handles, kept under the `/calico/ipam/v2/` keys of [`crate::keys`].
//!
//! This module only says what is stored; the allocation rules live in the `fabric-ipam` crate.
//! felix and the BGP fabric read blocks and affinities through these types too.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The `affinity` value of a block owned by a host: `host:<node>`.
pub const HOST_AFFINITY_PREFIX: &str = "host:";

/// An allocation block: one block-sized subnet of a pool, with one slot per address.
///
/// `allocations[ordinal]` is `Some(i)` when the address is in use, `i` indexing `attributes`;
/// `unallocated` lists the free ordinals, the next one handed out first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationBlock {
    /// The block's subnet.
    pub cidr: IpNet,
    /// `host:<node>` for a block affine to a node; `None` for an unaffine block.
    #[serde(default)]
    pub affinity: Option<String>,
    /// When the affinity was claimed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_claim_time: Option<String>,
    /// Deprecated in Calico; kept for the shape.
    #[serde(default)]
    pub strict_affinity: bool,
    /// One entry per ordinal: the index into `attributes`, or `None` when free.
    pub allocations: Vec<Option<usize>>,
    /// Free ordinals, in hand-out order.
    pub unallocated: Vec<usize>,
    /// Who holds each allocation.
    #[serde(default)]
    pub attributes: Vec<AllocationAttribute>,
    /// Increases on every write; a new block starts from the creation time in nanoseconds,
    /// so a recreated block never repeats a sequence number.
    #[serde(default)]
    pub sequence_number: u64,
    /// The block's sequence number when each in-use ordinal was allocated (ordinal as text).
    #[serde(default)]
    pub sequence_number_for_allocation: BTreeMap<String, u64>,
    /// Soft-delete marker; readers treat a deleted block as absent.
    #[serde(default)]
    pub deleted: bool,
}

/// The holder of one allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationAttribute {
    /// The handle the allocation belongs to.
    #[serde(rename = "handle_id", default, skip_serializing_if = "Option::is_none")]
    pub handle_id: Option<String>,
    /// Owner attributes: `node`, `pod`, `namespace`, `type` (e.g. `vxlanTunnelAddress`), ...
    #[serde(
        rename = "secondary",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub active_owner_attrs: BTreeMap<String, String>,
    /// Attributes of a second owner during a hand-over (Calico's `alternate`).
    #[serde(
        rename = "alternate",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub alternate_owner_attrs: BTreeMap<String, String>,
}

impl AllocationBlock {
    /// The node this block is affine to, if any.
    pub fn host(&self) -> Option<&str> {
        self.affinity
            .as_deref()
            .and_then(|a| a.strip_prefix(HOST_AFFINITY_PREFIX))
    }

    /// How many addresses the block spans.
    pub fn size(&self) -> usize {
        self.allocations.len()
    }

    /// The address at `ordinal`, if inside the block.
    pub fn address(&self, ordinal: usize) -> Option<IpAddr> {
        if ordinal >= self.size() {
            return None;
        }
        Some(match self.cidr.network() {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a).wrapping_add(ordinal as u32)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_add(ordinal as u128)).into()),
        })
    }

    /// The ordinal of `ip`, if it is inside the block.
    pub fn ordinal(&self, ip: IpAddr) -> Option<usize> {
        if !self.cidr.contains(&ip) {
            return None;
        }
        let offset = match (self.cidr.network(), ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u128::from(u32::from(a) - u32::from(n)),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) - u128::from(n),
            _ => return None,
        };
        usize::try_from(offset).ok().filter(|&o| o < self.size())
    }

    /// The allocations in use: ordinal, address and holder.
    pub fn in_use(&self) -> impl Iterator<Item = (usize, IpAddr, Option<&AllocationAttribute>)> {
        self.allocations
            .iter()
            .enumerate()
            .filter_map(|(ord, a)| a.map(|idx| (ord, idx)))
            .filter_map(|(ord, idx)| Some((ord, self.address(ord)?, self.attributes.get(idx))))
    }

    /// How many addresses are in use.
    pub fn in_use_count(&self) -> usize {
        self.allocations.iter().filter(|a| a.is_some()).count()
    }
}

/// The state of a node's claim on a block (two-phase: pending, then confirmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AffinityState {
    /// Claimed, block not yet confirmed as ours: treat as absent.
    Pending,
    /// The node owns the block.
    Confirmed,
    /// Being released: treat as absent.
    PendingDeletion,
}

/// A node's affinity to a block, stored at `/calico/ipam/v2/host/<node>/ipv4/block/<cidr>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAffinity {
    /// The claim's state.
    pub state: AffinityState,
    /// Soft-delete marker.
    #[serde(default)]
    pub deleted: bool,
}

impl BlockAffinity {
    /// Whether the node owns the block (confirmed and not deleted).
    pub fn is_confirmed(&self) -> bool {
        self.state == AffinityState::Confirmed && !self.deleted
    }
}

/// A handle: which blocks hold how many addresses for one owner (a pod, a tunnel), stored at
/// `/calico/ipam/v2/handle/<id>` so release by handle needs no scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpamHandle {
    /// The handle id (also the key's last segment).
    #[serde(rename = "handleID", default)]
    pub handle_id: String,
    /// Block CIDR (text) -> number of addresses held in it.
    #[serde(default)]
    pub block: BTreeMap<String, usize>,
    /// Soft-delete marker.
    #[serde(default)]
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_in_calicos_json_shape_decodes_and_names_its_addresses() {
        let text = r#"{"cidr":"10.0.1.0/30","affinity":"host:node1","strictAffinity":false,
            "allocations":[0,null,null,null],"unallocated":[1,2,3],
            "attributes":[{"handle_id":"k8s-pod-network.abc","secondary":{"node":"node1","pod":"web"}}],
            "sequenceNumber":7,"sequenceNumberForAllocation":{"0":6},"deleted":false}"#;
        let block: AllocationBlock = serde_json::from_str(text).unwrap();
        assert_eq!(block.host(), Some("node1"));
        assert_eq!(block.size(), 4);
        assert_eq!(block.address(1), Some("10.0.1.1".parse().unwrap()));
        assert_eq!(block.ordinal("10.0.1.3".parse().unwrap()), Some(3));
        assert_eq!(block.ordinal("10.0.1.4".parse().unwrap()), None);
        let used: Vec<_> = block.in_use().collect();
        assert_eq!(used.len(), 1);
        assert_eq!(
            used[0].2.and_then(|a| a.handle_id.as_deref()),
            Some("k8s-pod-network.abc")
        );
        let back: AllocationBlock =
            serde_json::from_str(&serde_json::to_string(&block).unwrap()).unwrap();
        assert_eq!(back, block);
    }

    #[test]
    fn only_a_confirmed_undeleted_affinity_counts_as_owned() {
        let a: BlockAffinity = serde_json::from_str(r#"{"state":"pending"}"#).unwrap();
        assert!(!a.is_confirmed());
        let a: BlockAffinity =
            serde_json::from_str(r#"{"state":"confirmed","deleted":false}"#).unwrap();
        assert!(a.is_confirmed());
        let a: BlockAffinity = serde_json::from_str(r#"{"state":"pendingDeletion"}"#).unwrap();
        assert!(!a.is_confirmed());
    }
}
