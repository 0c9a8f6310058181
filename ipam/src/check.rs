//! `check`: cross-checks the IPAM objects against each other and against their users
//! (WorkloadEndpoints' `ipNetworks`, Nodes' tunnel addresses) and reports leaked addresses,
//! addresses in use but not allocated, addresses outside every pool, handles without
//! addresses or with wrong counts, affinity and block disagreements and duplicate
//! allocations, as a serializable [`CheckReport`] shaped like `calicoctl ipam check -o`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use fabric_api::validate::cidr::Cidr;
use fabric_api::{IPPool, Node, Resource, WorkloadEndpoint};
use fabric_datastore::ipam_model::{AffinityState, AllocationBlock, BlockAffinity, IpamHandle};
use fabric_datastore::keys::{
    IPAM_BLOCK_PREFIX, IPAM_HANDLE_PREFIX, IPAM_HOST_PREFIX, parse_ipam_affinity_key,
    parse_ipam_block_key, parse_ipam_handle_key,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Ipam;
use crate::blocks;
use crate::error::IpamError;
use crate::handles::{HandleOwner, TunnelKind, handle_owner};
use crate::pools::pool_net;
use crate::store;
use crate::types::ReleaseRequest;

/// One allocated address as the report lists it (Calico's `Allocation`, plus its block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckedAllocation {
    /// The address.
    pub ip: IpAddr,
    /// Its block.
    pub block: IpNet,
    /// The handle holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// The allocation's sequence number (a release from the report carries it).
    pub sequence_number: u64,
    /// Attribute `pod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Attribute `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Attribute `node`, else the block's node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Attribute `type` (e.g. `vxlanTunnelAddress`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Attribute `timestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Whether a workload or node uses it.
    pub in_use: bool,
    /// Whether its node differs from the block's node.
    #[serde(default)]
    pub borrowed: bool,
    /// Who uses it: `Workload(<ns>/<name>)`, `Node(<name>)`.
    #[serde(default)]
    pub owners: Vec<String>,
}

/// A handle without addresses (Calico's `HandleInfo` field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleInfo {
    /// The handle ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// The handle key's revision when checked (a release deletes it only if unchanged).
    #[serde(rename = "Revision")]
    pub revision: String,
}

/// An address some workload or node uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InUseAddress {
    /// The address.
    pub ip: IpAddr,
    /// Its users.
    pub owners: Vec<String>,
}

/// A handle whose count for a block differs from the block's allocations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandleCountMismatch {
    /// The handle.
    pub handle: String,
    /// The block.
    pub block: IpNet,
    /// What the handle object says.
    pub handle_count: usize,
    /// What the block holds.
    pub block_count: usize,
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Problem {
    /// Allocated, but no workload or node uses it.
    LeakedAddress {
        /// The address.
        ip: IpAddr,
        /// Its handle.
        handle: Option<String>,
        /// Its sequence number.
        sequence_number: u64,
    },
    /// Allocated to a handle whose owner does not use it, while others do.
    WrongOwner {
        /// The address.
        ip: IpAddr,
        /// Its handle.
        handle: String,
        /// Who uses it.
        owners: Vec<String>,
    },
    /// Used by a workload or node, in an active pool, but not allocated.
    InUseNotAllocated(InUseAddress),
    /// Used by a workload or node, not allocated and outside every active pool.
    InUseOutsidePools(InUseAddress),
    /// Used by more than one workload or node.
    MultipleOwners(InUseAddress),
    /// Allocated in a block that no pool contains.
    AllocatedOutsidePools {
        /// The address.
        ip: IpAddr,
        /// Its block.
        block: IpNet,
    },
    /// Allocated in more than one block (the blocks overlap).
    DuplicateAllocation {
        /// The address.
        ip: IpAddr,
        /// The blocks.
        blocks: Vec<IpNet>,
    },
    /// Two blocks overlap.
    OverlappingBlocks {
        /// The wider block.
        block: IpNet,
        /// The block inside it.
        other: IpNet,
    },
    /// A handle object with no address in any block.
    HandleWithoutAddresses(HandleInfo),
    /// Blocks hold addresses of a handle that has no handle object.
    MissingHandle {
        /// The handle ID.
        handle: String,
    },
    /// A handle's count for a block is not what the block holds.
    HandleCountMismatch(HandleCountMismatch),
    /// A block affine to a node whose affinity is missing or not confirmed.
    BlockWithoutAffinity {
        /// The block.
        block: IpNet,
        /// Its node.
        node: String,
        /// The affinity's state, `None` when there is none.
        state: Option<AffinityState>,
    },
    /// An affinity whose block does not exist.
    AffinityWithoutBlock {
        /// The node.
        node: String,
        /// The block.
        block: IpNet,
        /// The affinity's state.
        state: AffinityState,
    },
    /// An affinity to a block that is affine to another node, or to none.
    AffinityToOtherBlock {
        /// The node.
        node: String,
        /// The block.
        block: IpNet,
        /// The affinity's state.
        state: AffinityState,
        /// The block's node, if any.
        block_owner: Option<String>,
    },
    /// A stored IPAM object that does not decode.
    Corrupt {
        /// The key.
        key: String,
        /// The decoding error.
        error: String,
    },
}

impl Problem {
    /// Whether the problem is about one address (calicoctl's "problem IPs").
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Problem::LeakedAddress { ip, .. }
            | Problem::WrongOwner { ip, .. }
            | Problem::AllocatedOutsidePools { ip, .. }
            | Problem::DuplicateAllocation { ip, .. } => Some(*ip),
            Problem::InUseNotAllocated(a)
            | Problem::InUseOutsidePools(a)
            | Problem::MultipleOwners(a) => Some(a.ip),
            _ => None,
        }
    }

    /// One line describing it.
    pub fn describe(&self) -> String {
        match self {
            Problem::LeakedAddress { ip, handle, .. } => format!(
                "{ip} leaked: allocated to handle {} but not used by any workload or node",
                handle.as_deref().unwrap_or("<none>")
            ),
            Problem::WrongOwner { ip, handle, owners } => format!(
                "{ip} is allocated to handle {handle} but used by {}",
                owners.join(", ")
            ),
            Problem::InUseNotAllocated(a) => format!(
                "{} in use by {} and in an active IP pool but has no IPAM allocation",
                a.ip,
                a.owners.join(", ")
            ),
            Problem::InUseOutsidePools(a) => format!(
                "{} in use by {} is not in any active IP pool",
                a.ip,
                a.owners.join(", ")
            ),
            Problem::MultipleOwners(a) => {
                format!("{} has multiple owners: {}", a.ip, a.owners.join(", "))
            }
            Problem::AllocatedOutsidePools { ip, block } => {
                format!("{ip} is allocated in block {block}, which is in no IP pool")
            }
            Problem::DuplicateAllocation { ip, blocks } => {
                let list: Vec<String> = blocks.iter().map(ToString::to_string).collect();
                format!("{ip} is allocated in several blocks: {}", list.join(", "))
            }
            Problem::OverlappingBlocks { block, other } => {
                format!("blocks {block} and {other} overlap")
            }
            Problem::HandleWithoutAddresses(h) => {
                format!("handle {} doesn't have any active IPs", h.id)
            }
            Problem::MissingHandle { handle } => {
                format!("handle {handle} is in use in a block but doesn't exist")
            }
            Problem::HandleCountMismatch(m) => format!(
                "handle {} counts {} addresses in block {} but the block holds {}",
                m.handle, m.handle_count, m.block, m.block_count
            ),
            Problem::BlockWithoutAffinity { block, node, state } => match state {
                None => format!("block {block} is affine to {node}, which has no affinity for it"),
                Some(s) => format!(
                    "block {block} is affine to {node}, whose affinity is {s:?}, not confirmed"
                ),
            },
            Problem::AffinityWithoutBlock { node, block, state } => {
                format!("{node} has a {state:?} affinity for block {block}, which does not exist")
            }
            Problem::AffinityToOtherBlock {
                node,
                block,
                state,
                block_owner,
            } => format!(
                "{node} has a {state:?} affinity for block {block}, which is affine to {}",
                block_owner.as_deref().unwrap_or("no node")
            ),
            Problem::Corrupt { key, error } => format!("{key} does not decode: {error}"),
        }
    }
}

/// The counts calicoctl prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckSummary {
    /// IPAM blocks.
    pub blocks: usize,
    /// Allocations recorded in blocks.
    pub allocations: usize,
    /// Enabled pools.
    pub active_pools: usize,
    /// Node tunnel addresses.
    pub node_tunnel_ips: usize,
    /// Workload addresses.
    pub workload_ips: usize,
    /// Distinct addresses in use by workloads and nodes.
    pub in_use_ips: usize,
    /// Handle objects.
    pub handles: usize,
    /// Handles with addresses.
    pub handles_with_addresses: usize,
}

/// The result of [`Ipam::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// The version of the code that made the report.
    pub version: String,
    /// The datastore revision the report was made at.
    pub datastore_revision: i64,
    /// Every allocation, by address (Calico's report shape).
    pub allocations: BTreeMap<String, Vec<CheckedAllocation>>,
    /// Handles without addresses (Calico's report shape).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaked_handles: Vec<HandleInfo>,
    /// Every inconsistency found.
    #[serde(default)]
    pub problems: Vec<Problem>,
    /// Counts.
    pub summary: CheckSummary,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The releases `calicoctl ipam release --from-report` makes: every allocation not in
    /// use, guarded by its sequence number and handle (so an address reused since the report
    /// was written is not freed).
    pub fn release_requests(&self) -> Vec<ReleaseRequest> {
        self.allocations
            .values()
            .flatten()
            .filter(|a| !a.in_use)
            .map(|a| ReleaseRequest {
                ip: a.ip,
                sequence: Some(a.sequence_number),
                handle: a.handle.clone(),
            })
            .collect()
    }

    /// The report as `calicoctl ipam check` prints it; `show_problem_ips` adds one line per
    /// problem.
    pub fn render(&self, show_problem_ips: bool) -> String {
        let s = &self.summary;
        let count = |f: fn(&Problem) -> bool| self.problems.iter().filter(|p| f(p)).count();
        let mut out = String::from("Checking IPAM for inconsistencies...\n\n");
        let _ = writeln!(out, "Found {} IPAM blocks.", s.blocks);
        let _ = writeln!(out, "IPAM blocks record {} allocations.\n", s.allocations);
        let _ = writeln!(out, "Found {} active IP pools.", s.active_pools);
        let _ = writeln!(out, "Found {} node tunnel IPs.", s.node_tunnel_ips);
        let _ = writeln!(out, "Found {} workload IPs.", s.workload_ips);
        let _ = writeln!(out, "Workloads and nodes are using {} IPs.\n", s.in_use_ips);
        let lines: [(&str, usize); 12] = [
            (
                "IPs that are allocated in IPAM but not actually in use",
                count(|p| matches!(p, Problem::LeakedAddress { .. })),
            ),
            (
                "in-use IPs that are not in active IP pools",
                count(|p| matches!(p, Problem::InUseOutsidePools(_))),
            ),
            (
                "in-use IPs that are in active IP pools but have no corresponding IPAM allocation",
                count(|p| matches!(p, Problem::InUseNotAllocated(_))),
            ),
            (
                "IPs used by an owner other than their handle's",
                count(|p| matches!(p, Problem::WrongOwner { .. })),
            ),
            (
                "IPs with multiple owners",
                count(|p| matches!(p, Problem::MultipleOwners(_))),
            ),
            (
                "IPs allocated in blocks outside every IP pool",
                count(|p| matches!(p, Problem::AllocatedOutsidePools { .. })),
            ),
            (
                "IPs allocated more than once (overlapping blocks)",
                count(|p| {
                    matches!(
                        p,
                        Problem::DuplicateAllocation { .. } | Problem::OverlappingBlocks { .. }
                    )
                }),
            ),
            (
                "handles with no matching IPs",
                count(|p| matches!(p, Problem::HandleWithoutAddresses(_))),
            ),
            (
                "handles mentioned in blocks with no matching handle resource",
                count(|p| matches!(p, Problem::MissingHandle { .. })),
            ),
            (
                "handles whose block counts disagree with the blocks",
                count(|p| matches!(p, Problem::HandleCountMismatch(_))),
            ),
            (
                "block affinity problems",
                count(|p| {
                    matches!(
                        p,
                        Problem::BlockWithoutAffinity { .. }
                            | Problem::AffinityWithoutBlock { .. }
                            | Problem::AffinityToOtherBlock { .. }
                    )
                }),
            ),
            (
                "IPAM objects that do not decode",
                count(|p| matches!(p, Problem::Corrupt { .. })),
            ),
        ];
        for (what, n) in lines {
            let _ = writeln!(out, "Found {n} {what}.");
        }
        if show_problem_ips {
            for p in &self.problems {
                let _ = writeln!(out, "  {}", p.describe());
            }
        }
        let _ = writeln!(
            out,
            "Check complete; found {} problems.",
            self.problems.len()
        );
        out
    }
}

/// Who uses an address.
#[derive(Debug, Clone)]
struct Owner {
    name: String,
    container_id: Option<String>,
    tunnel: Option<(String, TunnelKind)>,
}

/// Everything a check looks at.
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckInput {
    pub revision: i64,
    pub blocks: Vec<AllocationBlock>,
    pub affinities: Vec<(String, IpNet, BlockAffinity)>,
    pub handles: Vec<(String, i64, IpamHandle)>,
    pub pools: Vec<IPPool>,
    pub endpoints: Vec<WorkloadEndpoint>,
    pub nodes: Vec<Node>,
    pub corrupt: Vec<(String, String)>,
}

fn parse_addr(text: &str) -> Option<IpAddr> {
    Cidr::parse_or_ip(text).ok().map(|c| c.addr)
}

fn owners_of(input: &CheckInput, summary: &mut CheckSummary) -> BTreeMap<IpAddr, Vec<Owner>> {
    let mut owners: BTreeMap<IpAddr, Vec<Owner>> = BTreeMap::new();
    for n in &input.nodes {
        let name = n.metadata.name_str();
        let bgp = n.spec.bgp.as_ref();
        let wg = n.spec.wireguard.as_ref();
        let addrs = [
            (
                bgp.map(|b| b.ipv4_ipip_tunnel_addr.as_str()),
                TunnelKind::Ipip,
            ),
            (
                Some(n.spec.ipv4_vxlan_tunnel_addr.as_str()),
                TunnelKind::Vxlan,
            ),
            (
                Some(n.spec.ipv6_vxlan_tunnel_addr.as_str()),
                TunnelKind::VxlanV6,
            ),
            (
                wg.map(|w| w.interface_ipv4_address.as_str()),
                TunnelKind::Wireguard,
            ),
            (
                wg.map(|w| w.interface_ipv6_address.as_str()),
                TunnelKind::WireguardV6,
            ),
        ];
        for (text, kind) in addrs {
            let Some(ip) = text.filter(|t| !t.is_empty()).and_then(parse_addr) else {
                continue;
            };
            summary.node_tunnel_ips += 1;
            owners.entry(ip).or_default().push(Owner {
                name: format!("Node({name})"),
                container_id: None,
                tunnel: Some((name.to_string(), kind)),
            });
        }
    }
    for w in &input.endpoints {
        let name = format!(
            "Workload({}/{})",
            w.metadata.namespace.as_deref().unwrap_or(""),
            w.metadata.name_str()
        );
        for text in &w.spec.ip_networks {
            let Some(ip) = parse_addr(text) else {
                continue;
            };
            summary.workload_ips += 1;
            owners.entry(ip).or_default().push(Owner {
                name: name.clone(),
                container_id: Some(w.spec.container_id.clone()),
                tunnel: None,
            });
        }
    }
    summary.in_use_ips = owners.len();
    owners
}

/// Whether one of `owners` is the owner the handle names.
fn handle_matches(handle: &str, owners: &[Owner]) -> bool {
    match handle_owner(handle) {
        HandleOwner::Pod { container_id } => owners.iter().any(|o| {
            o.container_id
                .as_deref()
                .is_some_and(|c| c.is_empty() || c == container_id)
        }),
        HandleOwner::Tunnel { kind, node } => owners
            .iter()
            .any(|o| o.tunnel.as_ref() == Some(&(node.clone(), kind))),
        HandleOwner::Other => true,
    }
}

/// The report for `input` (pure).
pub(crate) fn analyze(input: &CheckInput) -> CheckReport {
    let mut summary = CheckSummary {
        blocks: input.blocks.len(),
        handles: input.handles.len(),
        ..CheckSummary::default()
    };
    let mut problems: Vec<Problem> = input
        .corrupt
        .iter()
        .map(|(key, error)| Problem::Corrupt {
            key: key.clone(),
            error: error.clone(),
        })
        .collect();
    let owners = owners_of(input, &mut summary);
    let all_pools: Vec<IpNet> = input.pools.iter().filter_map(pool_net).collect();
    let active: Vec<IpNet> = input
        .pools
        .iter()
        .filter(|p| !p.spec.disabled)
        .filter_map(pool_net)
        .collect();
    summary.active_pools = active.len();

    let mut allocations: BTreeMap<String, Vec<CheckedAllocation>> = BTreeMap::new();
    let mut per_handle: BTreeMap<(String, IpNet), usize> = BTreeMap::new();
    for b in &input.blocks {
        let block_node = b.host().map(str::to_string);
        for (ord, ip, attr) in b.in_use() {
            summary.allocations += 1;
            let handle = attr.and_then(|a| a.handle_id.clone());
            let get = |k: &str| attr.and_then(|a| a.active_owner_attrs.get(k).cloned());
            let node = get("node").or_else(|| block_node.clone());
            let users = owners.get(&ip).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(h) = &handle {
                *per_handle.entry((h.clone(), b.cidr)).or_insert(0) += 1;
            }
            let alloc = CheckedAllocation {
                ip,
                block: b.cidr,
                handle: handle.clone(),
                sequence_number: blocks::sequence_of(b, ord),
                pod: get("pod"),
                namespace: get("namespace"),
                borrowed: node != block_node,
                node,
                kind: get("type"),
                creation_timestamp: get("timestamp"),
                in_use: !users.is_empty(),
                owners: users.iter().map(|o| o.name.clone()).collect(),
            };
            if users.is_empty() {
                problems.push(Problem::LeakedAddress {
                    ip,
                    handle: handle.clone(),
                    sequence_number: alloc.sequence_number,
                });
            } else if let Some(h) = &handle
                && !handle_matches(h, users)
            {
                problems.push(Problem::WrongOwner {
                    ip,
                    handle: h.clone(),
                    owners: alloc.owners.clone(),
                });
            }
            if !all_pools.iter().any(|p| p.contains(&b.cidr)) {
                problems.push(Problem::AllocatedOutsidePools { ip, block: b.cidr });
            }
            allocations.entry(ip.to_string()).or_default().push(alloc);
        }
    }
    for (ip, list) in &allocations {
        if list.len() > 1
            && let Ok(ip) = ip.parse()
        {
            problems.push(Problem::DuplicateAllocation {
                ip,
                blocks: list.iter().map(|a| a.block).collect(),
            });
        }
    }
    problems.extend(overlapping_blocks(&input.blocks));
    for (ip, users) in &owners {
        let named = InUseAddress {
            ip: *ip,
            owners: users.iter().map(|o| o.name.clone()).collect(),
        };
        if users.len() > 1 {
            problems.push(Problem::MultipleOwners(named.clone()));
        }
        if !allocations.contains_key(&ip.to_string()) {
            if active.iter().any(|p| p.contains(ip)) {
                problems.push(Problem::InUseNotAllocated(named));
            } else {
                problems.push(Problem::InUseOutsidePools(named));
            }
        }
    }
    let mut leaked_handles = Vec::new();
    let handles: BTreeSet<&str> = input.handles.iter().map(|(id, _, _)| id.as_str()).collect();
    for (id, revision, h) in &input.handles {
        let held: usize = per_handle
            .iter()
            .filter(|((hid, _), _)| hid == id)
            .map(|(_, n)| n)
            .sum();
        if held == 0 {
            let info = HandleInfo {
                id: id.clone(),
                revision: revision.to_string(),
            };
            leaked_handles.push(info.clone());
            problems.push(Problem::HandleWithoutAddresses(info));
            continue;
        }
        summary.handles_with_addresses += 1;
        let mut blocks_seen: BTreeSet<IpNet> = BTreeSet::new();
        for (label, &count) in &h.block {
            let Ok(block) = label.parse::<IpNet>() else {
                continue;
            };
            blocks_seen.insert(block);
            let actual = per_handle.get(&(id.clone(), block)).copied().unwrap_or(0);
            if actual != count {
                problems.push(Problem::HandleCountMismatch(HandleCountMismatch {
                    handle: id.clone(),
                    block,
                    handle_count: count,
                    block_count: actual,
                }));
            }
        }
        for ((hid, block), &actual) in &per_handle {
            if hid == id && !blocks_seen.contains(block) {
                problems.push(Problem::HandleCountMismatch(HandleCountMismatch {
                    handle: id.clone(),
                    block: *block,
                    handle_count: 0,
                    block_count: actual,
                }));
            }
        }
    }
    let missing: BTreeSet<&str> = per_handle
        .keys()
        .map(|(h, _)| h.as_str())
        .filter(|h| !handles.contains(h))
        .collect();
    for handle in missing {
        problems.push(Problem::MissingHandle {
            handle: handle.to_string(),
        });
    }
    problems.extend(affinity_problems(input));
    CheckReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        datastore_revision: input.revision,
        allocations,
        leaked_handles,
        problems,
        summary,
    }
}

fn overlapping_blocks(blocks: &[AllocationBlock]) -> Vec<Problem> {
    let mut sorted: Vec<IpNet> = blocks.iter().map(|b| b.cidr).collect();
    sorted.sort_by_key(|n| (n.network(), n.prefix_len()));
    let mut out = Vec::new();
    let mut widest: Option<IpNet> = None;
    for n in sorted {
        match widest {
            Some(w) if w.contains(&n) => {
                out.push(Problem::OverlappingBlocks { block: w, other: n })
            }
            _ => widest = Some(n),
        }
    }
    out
}

fn affinity_problems(input: &CheckInput) -> Vec<Problem> {
    let mut out = Vec::new();
    let by_block: BTreeMap<IpNet, &AllocationBlock> =
        input.blocks.iter().map(|b| (b.cidr, b)).collect();
    let mut states: BTreeMap<(String, IpNet), AffinityState> = BTreeMap::new();
    for (node, block, aff) in &input.affinities {
        if aff.deleted {
            continue;
        }
        states.insert((node.clone(), *block), aff.state);
        match by_block.get(block) {
            None => out.push(Problem::AffinityWithoutBlock {
                node: node.clone(),
                block: *block,
                state: aff.state,
            }),
            Some(b) if b.host() != Some(node.as_str()) => {
                out.push(Problem::AffinityToOtherBlock {
                    node: node.clone(),
                    block: *block,
                    state: aff.state,
                    block_owner: b.host().map(str::to_string),
                });
            }
            Some(_) => {}
        }
    }
    for b in &input.blocks {
        let Some(node) = b.host() else {
            continue;
        };
        let state = states.get(&(node.to_string(), b.cidr)).copied();
        if state != Some(AffinityState::Confirmed) {
            out.push(Problem::BlockWithoutAffinity {
                block: b.cidr,
                node: node.to_string(),
                state,
            });
        }
    }
    out
}

impl Ipam {
    /// Checks IPAM against its users (WorkloadEndpoints, Nodes) and itself. Objects that do
    /// not decode are reported, not fatal. Run it with allocations quiesced (calicoctl's
    /// `datastore migrate lock`) for a report without in-flight noise.
    pub async fn check(&self) -> Result<CheckReport, IpamError> {
        let backend = self.backend.as_ref();
        let revision = backend.revision().await?;
        let mut input = CheckInput {
            revision,
            ..CheckInput::default()
        };
        for kv in store::list(backend, IPAM_BLOCK_PREFIX).await? {
            if parse_ipam_block_key(&kv.key).is_none() {
                continue;
            }
            match store::decode::<AllocationBlock>(&kv) {
                Ok(b) if !b.value.deleted => input.blocks.push(b.value),
                Ok(_) => {}
                Err(e) => input.corrupt.push((kv.key.clone(), error_chain(&e))),
            }
        }
        for kv in store::list(backend, IPAM_HOST_PREFIX).await? {
            let Some((node, block)) = parse_ipam_affinity_key(&kv.key) else {
                continue;
            };
            match store::decode::<BlockAffinity>(&kv) {
                Ok(a) => input.affinities.push((node, block, a.value)),
                Err(e) => input.corrupt.push((kv.key.clone(), error_chain(&e))),
            }
        }
        for kv in store::list(backend, IPAM_HANDLE_PREFIX).await? {
            let Some(id) = parse_ipam_handle_key(&kv.key) else {
                continue;
            };
            match store::decode::<IpamHandle>(&kv) {
                Ok(h) if !h.value.deleted => input.handles.push((id, h.revision, h.value)),
                Ok(_) => {}
                Err(e) => input.corrupt.push((kv.key.clone(), error_chain(&e))),
            }
        }
        input.pools = self.client.list::<IPPool>(None).await?;
        input.endpoints = self.client.list::<WorkloadEndpoint>(None).await?;
        input.nodes = self.client.list::<Node>(None).await?;
        Ok(analyze(&input))
    }
}

impl Ipam {
    /// The newest change, after `revision`, to what [`Ipam::check`] reads (IPAM keys, IP
    /// pools, WorkloadEndpoints, Nodes): its key and mod_revision; `None` when nothing
    /// changed, so a report made at `revision` still describes the datastore. (A deletion
    /// leaves no revision behind; deleting a user only makes more addresses leak, and a
    /// report never frees an address it did not list.)
    pub async fn changed_since(&self, revision: i64) -> Result<Option<(String, i64)>, IpamError> {
        let backend = self.backend.as_ref();
        let mut prefixes = vec![fabric_datastore::keys::IPAM_PREFIX.to_string()];
        for kind in [IPPool::KIND, WorkloadEndpoint::KIND, Node::KIND] {
            prefixes.push(fabric_datastore::client::kind_prefix(kind, None));
        }
        let mut newest: Option<(String, i64)> = None;
        for prefix in prefixes {
            for kv in store::list(backend, &prefix).await? {
                if kv.mod_revision > revision
                    && newest.as_ref().is_none_or(|(_, r)| kv.mod_revision > *r)
                {
                    newest = Some((kv.key, kv.mod_revision));
                }
            }
        }
        Ok(newest)
    }
}

use fabric_api::error_chain;

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
