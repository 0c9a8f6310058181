//! The request and answer types of the IPAM API: what to allocate, what was allocated, what to
//! release, the IPAM configuration and per-address information.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use fabric_datastore::ipam_model::AffinityState;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// What the addresses are for; a pool serves a request only if its `allowedUses` lists it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IntendedUse {
    /// A pod (CNI).
    #[default]
    Workload,
    /// A node's tunnel device (calico-node: tunl0, vxlan.calico, vxlan-v6.calico).
    Tunnel,
}

impl fmt::Display for IntendedUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IntendedUse::Workload => "Workload",
            IntendedUse::Tunnel => "Tunnel",
        })
    }
}

/// An automatic assignment request (Calico's `AutoAssignArgs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoAssignArgs {
    /// The node the addresses are for (its affine blocks are used first).
    pub node: String,
    /// The handle every address is recorded under, e.g. `k8s-pod-network.<containerID>`
    /// (see [`crate::handles`]). Required: release by handle depends on it.
    pub handle: String,
    /// Owner attributes stored with each address (`pod`, `namespace`, `type`, ...); `node` is
    /// added when missing.
    pub attrs: BTreeMap<String, String>,
    /// IPv4 addresses wanted.
    pub num_v4: usize,
    /// IPv6 addresses wanted.
    pub num_v6: usize,
    /// IPv4 pools to use (names or CIDRs, e.g. from CNI `ipv4_pools`); empty: every enabled
    /// automatic pool that selects the node. Manual pools are used only when listed here.
    pub pools_v4: Vec<String>,
    /// IPv6 pools likewise.
    pub pools_v6: Vec<String>,
    /// Workload or Tunnel.
    pub intended_use: IntendedUse,
    /// A lower block limit for this request than `maxBlocksPerHost`.
    pub max_blocks: Option<u32>,
    /// Labels of the pod's namespace, matched against pools' `namespaceSelector`; `None`
    /// skips that check (tunnel addresses, non-Kubernetes callers).
    pub namespace_labels: Option<BTreeMap<String, String>>,
    /// The handle must be new: when it already holds addresses (a retried CNI ADD), nothing
    /// is assigned and [`crate::IpamError::HandleInUse`] says so. The allocation's own
    /// transaction finds out (it creates the handle only if absent), so no read is needed
    /// before it.
    pub new_handle: bool,
}

/// The addresses an automatic assignment handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedIps {
    /// IPv4 addresses, each with its block (`10.0.1.0/26`; the CNI result uses the address
    /// with the block's prefix length, or /32).
    pub v4: Vec<(IpAddr, IpNet)>,
    /// IPv6 addresses likewise.
    pub v6: Vec<(IpAddr, IpNet)>,
    /// Each address's allocation sequence number, for a later [`ReleaseRequest`].
    pub sequences: BTreeMap<IpAddr, u64>,
}

impl AssignedIps {
    /// Every address, IPv4 first.
    pub fn all(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.v4.iter().chain(self.v6.iter()).map(|(ip, _)| *ip)
    }
}

/// One address to release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    /// The address.
    pub ip: IpAddr,
    /// Release only if the allocation still has this sequence number (from
    /// [`AssignedIps::sequences`], [`AllocationInfo::sequence`] or a check report); a
    /// mismatch means the address was reallocated, and the release is refused.
    pub sequence: Option<u64>,
    /// Release only if the address belongs to this handle.
    pub handle: Option<String>,
}

impl ReleaseRequest {
    /// A release of `ip` without checks.
    pub fn ip(ip: IpAddr) -> ReleaseRequest {
        ReleaseRequest {
            ip,
            sequence: None,
            handle: None,
        }
    }
}

/// What a release did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseOutcome {
    /// The released addresses, each with the handle that held it.
    pub released: Vec<(IpAddr, Option<String>)>,
    /// Requested addresses that were not allocated (nothing to do).
    pub not_allocated: Vec<IpAddr>,
}

/// The IPAM configuration in effect (the `IPAMConfiguration` named `default`, with Calico's
/// defaults when it is missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpamConfig {
    /// No borrowing from other nodes' blocks (default false).
    pub strict_affinity: bool,
    /// Nodes claim new blocks automatically (default true).
    pub auto_allocate_blocks: bool,
    /// Most blocks one node may own per address family (default 20).
    pub max_blocks_per_host: u32,
    /// Stored and shown; this crate does not delay reuse by it (FIFO reuse only).
    pub ip_cooldown_seconds: u32,
}

impl Default for IpamConfig {
    fn default() -> IpamConfig {
        IpamConfig {
            strict_affinity: false,
            auto_allocate_blocks: true,
            max_blocks_per_host: fabric_api::ipam::DEFAULT_MAX_BLOCKS_PER_HOST,
            ip_cooldown_seconds: 0,
        }
    }
}

/// Everything IPAM knows about one allocated address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationInfo {
    /// The address.
    pub ip: IpAddr,
    /// Its block.
    pub block: IpNet,
    /// The node the block is affine to, if any.
    pub block_owner: Option<String>,
    /// The handle holding it.
    pub handle: Option<String>,
    /// Owner attributes (`node`, `pod`, `namespace`, `type`, ...).
    pub attrs: BTreeMap<String, String>,
    /// The allocation's sequence number (for a guarded release).
    pub sequence: u64,
}

/// One block affinity of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffinityInfo {
    /// The node.
    pub node: String,
    /// The block.
    pub block: IpNet,
    /// `pending`, `confirmed` or `pendingDeletion`.
    pub state: AffinityState,
}

/// What releasing a node's affinities did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostAffinityRelease {
    /// Blocks the node no longer owns.
    pub released: Vec<IpNet>,
    /// Blocks it kept, each with the reason.
    pub kept: Vec<(IpNet, String)>,
}

/// What [`crate::Ipam::release_from_report`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRelease {
    /// Addresses released.
    pub released: Vec<IpAddr>,
    /// Addresses left alone, with the reason (reallocated or released since the report).
    pub skipped: Vec<(IpAddr, String)>,
    /// Handles without addresses that were deleted.
    pub handles_deleted: Vec<String>,
    /// Handles left alone because they changed since the report.
    pub handles_skipped: Vec<String>,
}
