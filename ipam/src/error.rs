//! `IpamError`: everything an IPAM operation can fail with, each message naming the address,
//! block, node or field involved and the rule that was broken.

use std::fmt;
use std::net::IpAddr;

use fabric_datastore::{BackendError, ClientError};
use ipnet::IpNet;

/// Why a node could not get the addresses it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exhaustion {
    /// The node owns `max` blocks in the selected pools (`maxBlocksPerHost`, or the request's
    /// own limit), so it may claim no more.
    MaxBlocksPerHost {
        /// The limit in force.
        max: u32,
    },
    /// `autoAllocateBlocks` is false, so the node may not claim blocks.
    AutoAllocateDisabled,
    /// Every block-sized subnet of the selected pools is claimed (and none could be
    /// reclaimed), or has no address left that is not reserved.
    PoolsFull,
}

impl fmt::Display for Exhaustion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exhaustion::MaxBlocksPerHost { max } => write!(
                f,
                "the node's blocks are full and it already owns {max} blocks (maxBlocksPerHost)"
            ),
            Exhaustion::AutoAllocateDisabled => write!(
                f,
                "the node's blocks are full and autoAllocateBlocks is false, so it claims no new block"
            ),
            Exhaustion::PoolsFull => write!(
                f,
                "every block of the selected pools is claimed and no claimable block is left"
            ),
        }
    }
}

/// A failed IPAM operation. A failed operation leaves nothing half-done that a retry or
/// [`crate::Ipam::check`] cannot explain; most leave the datastore unchanged.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// A request argument breaks a rule; nothing was written.
    #[error("invalid request: {field} = {value:?} {rule}")]
    InvalidArgument {
        /// The argument, e.g. `handle`.
        field: String,
        /// Its value.
        value: String,
        /// The rule it broke.
        rule: String,
    },
    /// No pool may serve this request; `reasons` says why each candidate was excluded.
    #[error("no IPv{version} pool can serve node {node} ({intended_use}): {}", reasons.join("; "))]
    NoPool {
        /// 4 or 6.
        version: u8,
        /// The requesting node.
        node: String,
        /// `Workload` or `Tunnel`.
        intended_use: String,
        /// One line per pool (or "no IPv4 pools exist").
        reasons: Vec<String>,
    },
    /// The selected pools have no address left for this node; nothing was allocated.
    #[error(
        "IPv{version} addresses exhausted for node {node}: wanted {wanted}, found {found}; {reason}{}",
        if *strict_affinity { " (strictAffinity is true, so no address is borrowed from other nodes' blocks)" } else { "" }
    )]
    Exhausted {
        /// 4 or 6.
        version: u8,
        /// The requesting node.
        node: String,
        /// Addresses asked for.
        wanted: usize,
        /// Addresses that were available (and were given back).
        found: usize,
        /// Why no new block could be claimed.
        reason: Exhaustion,
        /// Whether borrowing was forbidden.
        strict_affinity: bool,
    },
    /// A release carried a sequence number other than the allocation's: the address was
    /// released and handed out again since the caller looked. Nothing was released.
    #[error(
        "release of {ip} refused: sequence number {given} is stale (the allocation's is {current}); \
         the address was reallocated, nothing was released"
    )]
    StaleSequence {
        /// The address.
        ip: IpAddr,
        /// The caller's sequence number.
        given: u64,
        /// The allocation's sequence number.
        current: u64,
    },
    /// A release named a handle other than the allocation's. Nothing was released.
    #[error("release of {ip} refused: it is allocated to handle {actual}, not {given}")]
    HandleMismatch {
        /// The address.
        ip: IpAddr,
        /// The handle the caller named.
        given: String,
        /// The allocation's handle (`<none>` when it has none).
        actual: String,
    },
    /// A request for a new handle found the handle already holding addresses (a retried
    /// CNI ADD); nothing was assigned.
    #[error("handle {handle} already holds addresses; nothing was assigned")]
    HandleInUse {
        /// The handle.
        handle: String,
    },
    /// `assign_ip` of an address that is already allocated.
    #[error("{ip} is already allocated (to handle {handle})")]
    AlreadyAllocated {
        /// The address.
        ip: IpAddr,
        /// The holder's handle (`<none>` when it has none).
        handle: String,
    },
    /// The address lies in no (enabled) IP pool.
    #[error("{ip} is not in any enabled IP pool")]
    NotInPool {
        /// The address.
        ip: IpAddr,
    },
    /// The block of an address is affine to another node and strictAffinity forbids using it.
    #[error(
        "{ip} lies in block {block}, which is affine to node {owner}; strictAffinity forbids \
         assigning it to node {node}"
    )]
    StrictAffinity {
        /// The address.
        ip: IpAddr,
        /// Its block.
        block: IpNet,
        /// The block's node.
        owner: String,
        /// The requesting node.
        node: String,
    },
    /// `release_affinity` with `must_be_empty` on a block that still holds addresses.
    /// The affinity is left confirmed.
    #[error("block {block} still holds {in_use} addresses; its affinity to {node} was kept")]
    BlockNotEmpty {
        /// The block.
        block: IpNet,
        /// The node whose affinity was to be released.
        node: String,
        /// Addresses in use.
        in_use: usize,
    },
    /// The block belongs to another node (or to none), so the node's affinity cannot be used
    /// or released through it.
    #[error("block {block} is affine to {}, not to node {node}", owner.as_deref().unwrap_or("no node"))]
    AffinityConflict {
        /// The block.
        block: IpNet,
        /// The node that asked.
        node: String,
        /// The block's node, if any.
        owner: Option<String>,
    },
    /// The node has no affinity for the block.
    #[error("node {node} has no affinity for block {block}")]
    NoAffinity {
        /// The node.
        node: String,
        /// The block.
        block: IpNet,
    },
    /// The Node resource a pool's nodeSelector needs does not exist.
    #[error("node {node} has no Node resource; pool {pool}'s nodeSelector needs its labels")]
    NodeNotFound {
        /// The node.
        node: String,
        /// The pool whose selector needed it.
        pool: String,
    },
    /// A key kept changing under us; the bounded retries ran out.
    #[error("gave up writing {key} after {attempts} attempts: other writers kept changing it")]
    TooManyConflicts {
        /// The key.
        key: String,
        /// Attempts made.
        attempts: usize,
    },
    /// A stored IPAM object does not decode.
    #[error("the value stored at {key} is not a valid {what}")]
    Corrupt {
        /// The key.
        key: String,
        /// What it should have been, e.g. "allocation block".
        what: &'static str,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The datastore failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Reading or writing a v3 resource failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl IpamError {
    /// An [`IpamError::InvalidArgument`].
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        rule: impl Into<String>,
    ) -> IpamError {
        IpamError::InvalidArgument {
            field: field.into(),
            value: value.into(),
            rule: rule.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhaustion_message_names_the_limit_and_strict_affinity() {
        let err = IpamError::Exhausted {
            version: 4,
            node: "n1".into(),
            wanted: 1,
            found: 0,
            reason: Exhaustion::MaxBlocksPerHost { max: 20 },
            strict_affinity: true,
        };
        let text = err.to_string();
        assert!(text.contains("owns 20 blocks (maxBlocksPerHost)"), "{text}");
        assert!(text.contains("strictAffinity is true"), "{text}");
    }

    #[test]
    fn a_stale_release_message_gives_both_sequence_numbers() {
        let err = IpamError::StaleSequence {
            ip: "10.0.0.1".parse().unwrap(),
            given: 5,
            current: 9,
        };
        let text = err.to_string();
        assert!(text.contains("sequence number 5 is stale"), "{text}");
        assert!(text.contains("is 9"), "{text}");
    }
}
