//! Block affinities: releasing one (confirmed -> pendingDeletion -> block deleted if empty, or
//! made unaffine -> affinity deleted; kept confirmed when it must be empty and is not), all of
//! a node's, and listing affinities and blocks.

use fabric_datastore::ipam_model::{AffinityState, AllocationBlock, BlockAffinity};
use fabric_datastore::keys::{
    IPAM_BLOCK_PREFIX, IPAM_HOST_PREFIX, ipam_affinity_key, ipam_block_key, ipam_host_prefix,
    parse_ipam_affinity_key, parse_ipam_block_key,
};
use ipnet::IpNet;

use crate::Ipam;
use crate::assign::check_node;
use crate::blocks;
use crate::clock::{format_rfc3339, unix_nanos};
use crate::error::IpamError;
use crate::store::{self, Decision, Start, live};
use crate::types::{AffinityInfo, HostAffinityRelease};

/// What giving a block back to a node that re-claimed it during a release found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restore {
    /// The block is the node's (as it was, recreated, or re-affined).
    Kept,
    /// The claim gave up meanwhile: nothing to give back.
    ClaimGone,
    /// Another node has the subnet now.
    Lost,
}

/// What the block step of a release found.
enum BlockStep {
    /// Deleted, made unaffine, or already gone.
    Done,
    /// It must be empty and is not.
    NotEmpty(usize),
}

impl Ipam {
    /// Releases `node`'s affinity to `cidr`. With `must_be_empty`, a block holding addresses
    /// is refused with [`IpamError::BlockNotEmpty`] and the affinity stays confirmed (also
    /// when an allocation races with the release). Without it, a block holding addresses
    /// stays, unaffine, and its addresses stay allocated (they then count as borrowed).
    pub async fn release_affinity(
        &self,
        node: &str,
        cidr: IpNet,
        must_be_empty: bool,
    ) -> Result<(), IpamError> {
        check_node(node)?;
        let cidr = cidr.trunc();
        let aff_key = ipam_affinity_key(node, &cidr);
        let aff = store::get::<BlockAffinity>(self.backend.as_ref(), &aff_key).await?;
        if live(aff.as_ref()).is_none() {
            return Err(IpamError::NoAffinity {
                node: node.into(),
                block: cidr,
            });
        }
        let block = self.read_block(&cidr).await?;
        if let Some(b) = &block {
            match b.value.host() {
                Some(owner) if owner != node => {
                    return Err(IpamError::AffinityConflict {
                        block: cidr,
                        node: node.into(),
                        owner: Some(owner.into()),
                    });
                }
                _ => {}
            }
            if must_be_empty && !blocks::is_empty(&b.value) {
                return Err(IpamError::BlockNotEmpty {
                    block: cidr,
                    node: node.into(),
                    in_use: b.value.in_use_count(),
                });
            }
        }
        self.set_affinity_state(&aff_key, AffinityState::PendingDeletion, aff)
            .await?;
        self.with_cache(|c| c.remove_affine(node, &cidr));
        let (step, stored) = store::modify::<AllocationBlock, BlockStep, _>(
            self.backend.as_ref(),
            &ipam_block_key(&cidr),
            Start::Guess(block.map(std::sync::Arc::unwrap_or_clone)),
            |cur| {
                let Some(b) = live(cur) else {
                    return Ok(Decision::Keep(BlockStep::Done));
                };
                if b.host() != Some(node) {
                    return Ok(Decision::Keep(BlockStep::Done));
                }
                if blocks::is_empty(b) {
                    return Ok(Decision::Delete(BlockStep::Done));
                }
                if must_be_empty {
                    return Ok(Decision::Keep(BlockStep::NotEmpty(b.in_use_count())));
                }
                Ok(Decision::Put(blocks::without_affinity(b), BlockStep::Done))
            },
        )
        .await?;
        self.cache_block(cidr, stored.filter(|s| !s.value.deleted));
        if let BlockStep::NotEmpty(in_use) = step {
            // An allocation won the race: keep the block, and the affinity confirmed.
            self.set_affinity_state(&aff_key, AffinityState::Confirmed, None)
                .await?;
            self.with_cache(|c| c.add_affine(node, cidr));
            return Err(IpamError::BlockNotEmpty {
                block: cidr,
                node: node.into(),
                in_use,
            });
        }
        // Delete the affinity, unless a claim by the same node took it over meanwhile.
        let (taken_over, _) = store::modify::<BlockAffinity, bool, _>(
            self.backend.as_ref(),
            &aff_key,
            Start::Read,
            |cur| match live(cur) {
                Some(a) if a.state != AffinityState::PendingDeletion => Ok(Decision::Keep(true)),
                Some(_) => Ok(Decision::Delete(false)),
                None => Ok(match cur {
                    Some(_) => Decision::Delete(false),
                    None => Decision::Keep(false),
                }),
            },
        )
        .await?;
        if taken_over {
            // The claim may have seen the block before this release deleted it or took its
            // affinity away: give the block back so the claim's confirmed affinity has it.
            if self.restore_block(node, cidr).await? {
                tracing::info!(node, block = %cidr, "block re-claimed by its node during the release; kept");
            }
            return Ok(());
        }
        tracing::info!(node, block = %cidr, "block affinity released");
        Ok(())
    }

    /// Recreates the node's block if it is gone, or re-affines it if it has no node, but only
    /// while the node's claim to it stands: the write is conditioned on the affinity key, so
    /// a claim that gives up meanwhile (and drops its pending affinity) leaves no block
    /// behind that is affine to a node without an affinity. When another node has taken the
    /// subnet meanwhile, the node's affinity is dropped instead. Returns whether the node
    /// keeps the block.
    async fn restore_block(&self, node: &str, cidr: IpNet) -> Result<bool, IpamError> {
        let now = (self.clock)();
        let claim_time = Some(format_rfc3339(now));
        let aff_key = ipam_affinity_key(node, &cidr);
        let block_key = ipam_block_key(&cidr);
        let (outcome, stored) = store::modify_guarded::<AllocationBlock, BlockAffinity, _, _>(
            self.backend.as_ref(),
            &block_key,
            &aff_key,
            |cur, aff| {
                let claimed = live(aff).is_some_and(|a| a.state != AffinityState::PendingDeletion);
                match live(cur) {
                    _ if !claimed => Ok(Decision::Keep(Restore::ClaimGone)),
                    None => Ok(Decision::Put(
                        blocks::new_block(cidr, Some(node), claim_time.clone(), unix_nanos(now)),
                        Restore::Kept,
                    )),
                    Some(b) if b.affinity.is_none() => {
                        let mut next = b.clone();
                        next.affinity = Some(blocks::host_affinity(node));
                        next.affinity_claim_time = claim_time.clone();
                        next.sequence_number = b.sequence_number.wrapping_add(1);
                        Ok(Decision::Put(next, Restore::Kept))
                    }
                    Some(b) if b.host() == Some(node) => Ok(Decision::Keep(Restore::Kept)),
                    Some(_) => Ok(Decision::Keep(Restore::Lost)),
                }
            },
        )
        .await?;
        self.cache_block(cidr, stored.filter(|s| !s.value.deleted));
        if outcome == Restore::Lost {
            // Another node claimed the subnet after this release deleted the empty block:
            // the claim that took the affinity over lost the block, so its affinity goes.
            store::modify_guarded::<BlockAffinity, AllocationBlock, (), _>(
                self.backend.as_ref(),
                &aff_key,
                &block_key,
                |aff, block| {
                    let other = live(block).is_some_and(|b| b.host() != Some(node));
                    match live(aff) {
                        Some(a) if other && a.state != AffinityState::PendingDeletion => {
                            Ok(Decision::Delete(()))
                        }
                        _ => Ok(Decision::Keep(())),
                    }
                },
            )
            .await?;
            self.with_cache(|c| c.remove_affine(node, &cidr));
            tracing::info!(node, block = %cidr, "block taken by another node during the release; affinity dropped");
        }
        Ok(outcome == Restore::Kept)
    }

    /// Sets an existing affinity's state (nothing when it is gone).
    async fn set_affinity_state(
        &self,
        key: &str,
        state: AffinityState,
        guess: Option<store::Stored<BlockAffinity>>,
    ) -> Result<(), IpamError> {
        let start = match guess {
            Some(g) => Start::Guess(Some(g)),
            None => Start::Read,
        };
        store::modify::<BlockAffinity, (), _>(self.backend.as_ref(), key, start, |cur| match live(
            cur,
        ) {
            None => Ok(Decision::Keep(())),
            Some(a) if a.state == state => Ok(Decision::Keep(())),
            Some(_) => Ok(Decision::Put(
                BlockAffinity {
                    state,
                    deleted: false,
                },
                (),
            )),
        })
        .await?;
        Ok(())
    }

    /// Releases every affinity of `node` (both families), e.g. when the node is deleted
    /// (`must_be_empty = false`: blocks in use stay, unaffine) or drained (`true`).
    pub async fn release_host_affinities(
        &self,
        node: &str,
        must_be_empty: bool,
    ) -> Result<HostAffinityRelease, IpamError> {
        check_node(node)?;
        let mut out = HostAffinityRelease::default();
        for info in self.affinities(Some(node)).await? {
            match self.release_affinity(node, info.block, must_be_empty).await {
                Ok(()) => out.released.push(info.block),
                Err(
                    e @ (IpamError::BlockNotEmpty { .. }
                    | IpamError::AffinityConflict { .. }
                    | IpamError::NoAffinity { .. }),
                ) => out.kept.push((info.block, e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Every block affinity (of one node, if given), sorted by node and block.
    pub async fn affinities(&self, node: Option<&str>) -> Result<Vec<AffinityInfo>, IpamError> {
        let prefix = match node {
            Some(n) => {
                check_node(n)?;
                ipam_host_prefix(n)
            }
            None => IPAM_HOST_PREFIX.to_string(),
        };
        let mut out = Vec::new();
        for kv in store::list(self.backend.as_ref(), &prefix).await? {
            let Some((n, block)) = parse_ipam_affinity_key(&kv.key) else {
                continue;
            };
            let aff = store::decode::<BlockAffinity>(&kv)?;
            if aff.value.deleted {
                continue;
            }
            out.push(AffinityInfo {
                node: n,
                block,
                state: aff.value.state,
            });
        }
        out.sort_by(|a, b| (&a.node, a.block).cmp(&(&b.node, b.block)));
        Ok(out)
    }

    /// Every block (both families), sorted by CIDR.
    pub async fn blocks(&self) -> Result<Vec<AllocationBlock>, IpamError> {
        let mut out = Vec::new();
        for kv in store::list(self.backend.as_ref(), IPAM_BLOCK_PREFIX).await? {
            if parse_ipam_block_key(&kv.key).is_none() {
                continue;
            }
            let b = store::decode::<AllocationBlock>(&kv)?;
            if !b.value.deleted {
                out.push(b.value);
            }
        }
        out.sort_by_key(|b| b.cidr);
        Ok(out)
    }
}
