//! Release: by address (optionally guarded by the allocation's sequence number and handle, so
//! a stale release cannot free an address that was handed out again) and by handle. Each block
//! is written in one transaction with the handles of the addresses it frees (lowered, or
//! deleted with their last address); an empty block that no node owns (it only held borrowed
//! addresses) is deleted, as Calico does.

use std::collections::BTreeMap;
use std::net::IpAddr;

use fabric_datastore::BackendError;
use fabric_datastore::ipam_model::AllocationBlock;
use fabric_datastore::keys::ipam_handle_key;
use ipnet::IpNet;

use crate::Ipam;
use crate::blocks::{self, BlockRelease, Released};
use crate::check::CheckReport;
use crate::error::IpamError;
use crate::handles::check_handle;
use crate::pools::{self, Family};
use crate::store::Stored;
use crate::txn::{BlockChange, HandleChange, Known, Plan};
use crate::types::{AllocationInfo, ReleaseOutcome, ReleaseRequest, ReportRelease};

/// The most addresses one release transaction frees: each may lower a different handle, and
/// the block takes one operation of the datastore's limit ([`fabric_datastore::MAX_TXN_OPS`]).
pub const RELEASES_PER_TXN: usize = fabric_datastore::MAX_TXN_OPS - 1;

/// Whether a block with nothing in use and no owner should go.
fn deletable(block: &AllocationBlock) -> bool {
    blocks::is_empty(block) && block.affinity.is_none()
}

impl Ipam {
    /// The block holding `ip`, if one exists: the cached block (taken on trust when
    /// `trust_cache`; the caller's compare-and-swap checks it), the pool's block, or a scan
    /// of the family's blocks (pools can be deleted while addresses are still allocated).
    pub(crate) async fn locate_block(
        &self,
        ip: IpAddr,
        trust_cache: bool,
    ) -> Result<Option<IpNet>, IpamError> {
        if let Some(cidr) = self.with_cache(|c| c.block_containing(ip))
            && (trust_cache || self.read_block(&cidr).await?.is_some())
        {
            return Ok(Some(cidr));
        }
        let env = self.env().await?;
        for pool in &env.pools {
            let Some(net) = pools::pool_net(pool) else {
                continue;
            };
            if !net.contains(&ip) {
                continue;
            }
            let cidr = pools::block_of(ip, pools::pool_block_prefix(pool, &net));
            if self.read_block(&cidr).await?.is_some() {
                return Ok(Some(cidr));
            }
        }
        let family = if ip.is_ipv4() { Family::V4 } else { Family::V6 };
        let all = self.list_blocks(family).await?;
        let found = all.keys().find(|c| c.contains(&ip)).copied();
        if let Some(cidr) = found {
            self.cache_block(cidr, all.get(&cidr).cloned());
        }
        Ok(found)
    }

    /// Releases addresses. Requests are grouped by block; each block is changed by one
    /// transaction (with the handles of the freed addresses), all of its requests or none;
    /// more than [`RELEASES_PER_TXN`] requests for one block take several transactions. A request whose `sequence` or `handle`
    /// does not match the allocation fails the call with [`IpamError::StaleSequence`] or
    /// [`IpamError::HandleMismatch`]: when the mismatch is visible before any write (always
    /// for a single block), nothing is released; a reallocation racing with a multi-block
    /// release leaves that block unchanged. Addresses not allocated are listed in the outcome.
    pub async fn release_ips(
        &self,
        requests: &[ReleaseRequest],
    ) -> Result<ReleaseOutcome, IpamError> {
        for r in requests {
            if let Some(h) = &r.handle {
                check_handle(h)?;
            }
        }
        let mut outcome = ReleaseOutcome::default();
        let mut groups: BTreeMap<IpNet, Vec<BlockRelease>> = BTreeMap::new();
        for r in requests {
            match self.locate_block(r.ip, true).await? {
                Some(cidr) => groups.entry(cidr).or_default().push(BlockRelease {
                    ip: r.ip,
                    sequence: r.sequence,
                    handle: r.handle.clone(),
                }),
                None => outcome.not_allocated.push(r.ip),
            }
        }
        // More than one transaction: check every block first, so a mismatch visible now
        // fails the call before anything is released.
        if groups.len() > 1 || groups.values().any(|r| r.len() > RELEASES_PER_TXN) {
            for (cidr, reqs) in &groups {
                if let Some(b) = self.read_block(cidr).await? {
                    blocks::release(&b.value, reqs)?;
                }
            }
        }
        let chunks: Vec<(IpNet, &[BlockRelease])> = groups
            .iter()
            .flat_map(|(cidr, reqs)| reqs.chunks(RELEASES_PER_TXN).map(|c| (*cidr, c)))
            .collect();
        for (cidr, reqs) in chunks {
            let (done, missing) = self.release_in_block(cidr, reqs).await?;
            outcome.released.extend(done.released);
            if !missing {
                outcome.not_allocated.extend(done.not_allocated);
                continue;
            }
            // The cached block is gone: look for the addresses' blocks afresh.
            for r in reqs {
                match self.locate_block(r.ip, false).await? {
                    Some(other) if other != cidr => {
                        let (done, _) = self
                            .release_in_block(other, std::slice::from_ref(r))
                            .await?;
                        outcome.released.extend(done.released);
                        outcome.not_allocated.extend(done.not_allocated);
                    }
                    _ => outcome.not_allocated.push(r.ip),
                }
            }
        }
        if !outcome.released.is_empty() {
            tracing::debug!(n = outcome.released.len(), "addresses released");
        }
        Ok(outcome)
    }

    /// Releases the requests of one block, lowering the handles of the freed addresses in the
    /// same transaction. The flag says the block does not exist.
    async fn release_in_block(
        &self,
        cidr: IpNet,
        reqs: &[BlockRelease],
    ) -> Result<(Released, bool), IpamError> {
        let block = match self.cached_block(&cidr) {
            Some(b) => Known::Guess(Some(b)),
            None => Known::Read,
        };
        let written = self
            .write_block(cidr, block, Vec::new(), |cur| {
                let Some(b) = cur else {
                    let none = Released {
                        released: Vec::new(),
                        not_allocated: reqs.iter().map(|r| r.ip).collect(),
                    };
                    return Ok(Plan::keep((none, true)));
                };
                let (next, released) = blocks::release(b, reqs)?;
                let Some(next) = next else {
                    return Ok(Plan::keep((released, false)));
                };
                let mut per_handle: BTreeMap<&str, usize> = BTreeMap::new();
                for (_, handle) in &released.released {
                    if let Some(h) = handle {
                        *per_handle.entry(h.as_str()).or_insert(0) += 1;
                    }
                }
                let handles = per_handle
                    .into_iter()
                    .map(|(h, n)| (h.to_string(), HandleChange::Remove(n)))
                    .collect();
                let block = if deletable(&next) {
                    BlockChange::Delete
                } else {
                    BlockChange::Put(next)
                };
                Ok(Plan {
                    block,
                    handles,
                    result: (released, false),
                })
            })
            .await?;
        Ok(written.result)
    }

    /// Releases every address of the handle and deletes the handle; returns the addresses.
    /// A handle that does not exist releases nothing (CNI DEL is idempotent). Each block the
    /// handle lists is one transaction: the block freed of the handle's addresses, and the
    /// block's entry dropped from the handle (the handle deleted with its last entry).
    pub async fn release_by_handle(&self, handle: &str) -> Result<Vec<IpAddr>, IpamError> {
        check_handle(handle)?;
        let state = self.read_handle(handle).await?;
        let Some(h) = state.as_ref().map(|s| s.value.clone()) else {
            return Ok(Vec::new());
        };
        let mut known: Known<Stored<fabric_datastore::ipam_model::IpamHandle>> =
            Known::Fresh(state);
        let mut out = Vec::new();
        for label in h.block.keys() {
            let Ok(cidr) = label.parse::<IpNet>() else {
                tracing::warn!(handle, block = %label, "handle names a block that is not a CIDR");
                continue;
            };
            let block = match self.cached_block(&cidr) {
                Some(b) => Known::Guess(Some(b)),
                None => Known::Read,
            };
            let forget = || vec![(handle.to_string(), HandleChange::Forget)];
            let written = self
                .write_block(
                    cidr,
                    block,
                    vec![(
                        handle.to_string(),
                        std::mem::replace(&mut known, Known::Read),
                    )],
                    |cur| {
                        let Some(b) = cur else {
                            return Ok(Plan {
                                block: BlockChange::Keep,
                                handles: forget(),
                                result: Vec::new(),
                            });
                        };
                        Ok(match blocks::release_handle(b, handle) {
                            None => Plan {
                                block: BlockChange::Keep,
                                handles: forget(),
                                result: Vec::new(),
                            },
                            Some((next, ips)) => Plan {
                                block: if deletable(&next) {
                                    BlockChange::Delete
                                } else {
                                    BlockChange::Put(next)
                                },
                                handles: forget(),
                                result: ips,
                            },
                        })
                    },
                )
                .await?;
            if let Some(after) = written.handle(handle) {
                known = Known::Fresh(after);
            }
            out.extend(written.result);
        }
        out.sort();
        tracing::debug!(handle, n = out.len(), "handle released");
        Ok(out)
    }

    /// Who holds `ip`, with the sequence number a guarded release needs; `None` when the
    /// address is not allocated.
    pub async fn get_assignment_attributes(
        &self,
        ip: IpAddr,
    ) -> Result<Option<AllocationInfo>, IpamError> {
        let Some(cidr) = self.locate_block(ip, false).await? else {
            return Ok(None);
        };
        let Some(stored) = self.read_block(&cidr).await? else {
            return Ok(None);
        };
        let b = &stored.value;
        let Some(ord) = b.ordinal(ip) else {
            return Ok(None);
        };
        let Some(idx) = b.allocations[ord] else {
            return Ok(None);
        };
        let attr = b.attributes.get(idx);
        Ok(Some(AllocationInfo {
            ip,
            block: cidr,
            block_owner: b.host().map(str::to_string),
            handle: attr.and_then(|a| a.handle_id.clone()),
            attrs: attr
                .map(|a| a.active_owner_attrs.clone())
                .unwrap_or_default(),
            sequence: blocks::sequence_of(b, ord),
        }))
    }

    /// `calicoctl ipam release --from-report`: releases every allocation the report found not
    /// in use, each guarded by its sequence number and handle (an address reallocated since
    /// the report is skipped, not freed), and deletes the report's handles without addresses
    /// if they are unchanged (same revision).
    pub async fn release_from_report(
        &self,
        report: &CheckReport,
    ) -> Result<ReportRelease, IpamError> {
        let mut out = ReportRelease::default();
        for request in report.release_requests() {
            match self.release_ips(std::slice::from_ref(&request)).await {
                Ok(done) => {
                    out.released
                        .extend(done.released.into_iter().map(|(ip, _)| ip));
                    out.skipped.extend(
                        done.not_allocated
                            .into_iter()
                            .map(|ip| (ip, "no longer allocated".to_string())),
                    );
                }
                Err(e @ (IpamError::StaleSequence { .. } | IpamError::HandleMismatch { .. })) => {
                    out.skipped.push((request.ip, e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        for h in &report.leaked_handles {
            let Ok(revision) = h.revision.parse::<i64>() else {
                out.handles_skipped.push(h.id.clone());
                continue;
            };
            match self
                .backend
                .delete(&ipam_handle_key(&h.id), Some(revision))
                .await
            {
                Ok(_) => out.handles_deleted.push(h.id.clone()),
                Err(BackendError::Conflict { .. } | BackendError::NotFound { .. }) => {
                    out.handles_skipped.push(h.id.clone());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }
}
