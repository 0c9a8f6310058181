//! Batched assignment for one node: a burst of pod requests (one IPv4 address each, on a new
//! handle) served from the node's block in one transaction that writes the block and creates
//! every request's handle, instead of one transaction per pod. calico-node's IPAM service
//! batches the requests that queued while its previous write ran.

use fabric_datastore::MAX_TXN_OPS;
use fabric_datastore::ipam_model::AllocationBlock;

use crate::Ipam;
use crate::assign::{attribute, check_node};
use crate::blocks::{self, Allocated};
use crate::error::IpamError;
use crate::handles::check_handle;
use crate::pools::Family;
use crate::txn::{BlockChange, HandleChange, Known, Plan};
use crate::types::{AssignedIps, AutoAssignArgs};

/// Most requests one shared transaction carries: one operation for the block, one per handle.
const MAX_SHARED: usize = MAX_TXN_OPS - 1;

/// Why a shared write stopped.
enum Stop {
    /// This request's handle already holds addresses: it goes alone (a retried ADD).
    HandleInUse(usize),
    /// Anything else: the rest go alone, which reports the error where it applies.
    Other,
}

/// Whether `a` may share a transaction with `b`: the same node, pools, use and limits.
fn same_choice(a: &AutoAssignArgs, b: &AutoAssignArgs) -> bool {
    a.node == b.node
        && a.pools_v4 == b.pools_v4
        && a.intended_use == b.intended_use
        && a.max_blocks == b.max_blocks
        && a.namespace_labels == b.namespace_labels
}

/// Whether a request is the pod case a shared write serves: one IPv4 address, a new handle,
/// valid names.
fn shareable(args: &AutoAssignArgs) -> bool {
    args.num_v4 == 1
        && args.num_v6 == 0
        && args.new_handle
        && check_handle(&args.handle).is_ok()
        && check_node(&args.node).is_ok()
}

impl Ipam {
    /// Serves every request as [`Ipam::auto_assign`] would and returns each result, in order.
    /// Requests for one IPv4 address on a new handle, with the same node and pools as the
    /// first such request, share transactions while the node's cached block has room (at most
    /// 127 requests per transaction); every other request, and any a shared write could not
    /// serve, is assigned on its own afterwards.
    pub async fn auto_assign_batch(
        &self,
        requests: &[AutoAssignArgs],
    ) -> Vec<Result<AssignedIps, IpamError>> {
        let mut results: Vec<Option<Result<AssignedIps, IpamError>>> =
            requests.iter().map(|_| None).collect();
        let mut shared: Vec<usize> = Vec::new();
        for (i, args) in requests.iter().enumerate() {
            let first = shared.first().map(|&f| &requests[f]);
            if shareable(args)
                && first.is_none_or(|f| same_choice(f, args))
                && !shared.iter().any(|&j| requests[j].handle == args.handle)
            {
                shared.push(i);
            }
        }
        while shared.len() > 1 {
            match self.assign_shared(requests, &shared).await {
                Ok(served) if served.is_empty() => break,
                Ok(served) => {
                    for (i, assigned) in served {
                        results[i] = Some(Ok(assigned));
                    }
                    shared.retain(|&i| results[i].is_none());
                }
                Err(Stop::HandleInUse(i)) => shared.retain(|&j| j != i),
                Err(Stop::Other) => break,
            }
        }
        for (slot, args) in results.iter_mut().zip(requests) {
            if slot.is_none() {
                *slot = Some(self.auto_assign(args.clone()).await);
            }
        }
        results.into_iter().flatten().collect()
    }

    /// One shared transaction for up to [`MAX_SHARED`] of `indexes` in the node's first
    /// confirmed block with room, by the cache: each request gets one address with its own
    /// attributes and handle. Returns what it served (nothing when the cache knows no block
    /// with room, or the block turned out full or lost).
    async fn assign_shared(
        &self,
        requests: &[AutoAssignArgs],
        indexes: &[usize],
    ) -> Result<Vec<(usize, AssignedIps)>, Stop> {
        let Some(&first) = indexes.first() else {
            return Ok(Vec::new());
        };
        let first = &requests[first];
        let env = self.env().await.map_err(|_| Stop::Other)?;
        let pools = self
            .pools_for(first, Family::V4, &first.pools_v4, &env)
            .await
            .map_err(|_| Stop::Other)?;
        let node = first.node.as_str();
        let reserved = &env.reservations;
        let Some(cidr) = self.affine_candidate(node, Family::V4, &pools, reserved) else {
            return Ok(Vec::new());
        };
        let Some(cached) = self.cached_block(&cidr) else {
            return Ok(Vec::new());
        };
        let taken: Vec<usize> = indexes.iter().copied().take(MAX_SHARED).collect();
        let attrs: Vec<_> = taken
            .iter()
            .map(|&i| attribute(&requests[i].handle, node, &requests[i].attrs))
            .collect();
        let handles = taken
            .iter()
            .map(|&i| (requests[i].handle.clone(), Known::New))
            .collect();
        let written = self
            .write_block(cidr, Known::Guess(Some(cached)), handles, |current| {
                let Some(block) = current.filter(|b| b.host() == Some(node)) else {
                    return Ok(Plan::keep(Vec::new()));
                };
                let (next, got) = allocate_each(block, &attrs, reserved);
                Ok(match next {
                    Some(next) => Plan {
                        block: BlockChange::Put(next),
                        handles: got
                            .iter()
                            .map(|&(k, _)| {
                                (requests[taken[k]].handle.clone(), HandleChange::Add(1))
                            })
                            .collect(),
                        result: got,
                    },
                    None => Plan::keep(Vec::new()),
                })
            })
            .await;
        let got = match written {
            Ok(written) => written.result,
            Err(IpamError::HandleInUse { handle }) => {
                return Err(taken
                    .iter()
                    .copied()
                    .find(|&i| requests[i].handle == handle)
                    .map_or(Stop::Other, Stop::HandleInUse));
            }
            Err(e) => {
                tracing::debug!(node, error = %e, "a shared assignment failed; requests go one by one");
                return Err(Stop::Other);
            }
        };
        tracing::debug!(node, block = %cidr, n = got.len(), "addresses assigned in one transaction");
        Ok(got
            .into_iter()
            .map(|(k, a)| {
                let assigned = AssignedIps {
                    v4: vec![(a.ip, cidr)],
                    v6: Vec::new(),
                    sequences: [(a.ip, a.sequence)].into(),
                };
                (taken[k], assigned)
            })
            .collect())
    }
}

/// One address per attribute set, in order, while the block has room: the block afterwards
/// (`None`: no room at all) and each served position with its allocation.
fn allocate_each(
    block: &AllocationBlock,
    attrs: &[fabric_datastore::ipam_model::AllocationAttribute],
    reserved: &blocks::Reservations,
) -> (Option<AllocationBlock>, Vec<(usize, Allocated)>) {
    let mut next: Option<AllocationBlock> = None;
    let mut got = Vec::new();
    for (k, attr) in attrs.iter().enumerate() {
        let from = next.as_ref().unwrap_or(block);
        let Some((after, one)) = blocks::allocate(from, 1, attr.clone(), reserved) else {
            break;
        };
        let Some(&allocated) = one.first() else {
            break;
        };
        got.push((k, allocated));
        next = Some(after);
    }
    (next, got)
}
