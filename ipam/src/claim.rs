//! Claiming blocks for a node in two phases (affinity `pending`, then the block created with
//! `affinity: host:<node>`, then the affinity `confirmed`), the search for a usable block
//! (the node-seeded walk, then reclaiming other nodes' long-empty blocks), and recovery of
//! claims a crash left half-done.
//!
//! Test hook: when the environment variable [`TEST_HOLD_ENV`] is `after-pending:<file>` or
//! `after-block:<file>`, a claim that reaches that point writes the block CIDR into `<file>`
//! and then waits forever, so a test can kill the process exactly there. It is read only on
//! the claim path and is never set in production.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fabric_datastore::ipam_model::{AffinityState, AllocationBlock, BlockAffinity};
use fabric_datastore::keys::{
    ipam_affinity_key, ipam_block_key, ipam_host_prefix, parse_ipam_affinity_key,
    parse_ipam_block_key,
};
use ipnet::IpNet;

use crate::blocks::{self, Reservations};
use crate::clock::{format_rfc3339, parse_rfc3339, unix_nanos};
use crate::error::IpamError;
use crate::pools::{Family, PoolChoice};
use crate::search::BlockWalk;
use crate::store::{self, Decision, RETRIES, SharedBlock, Start, Stored, live};
use crate::{Ipam, IpamConfig};

/// The environment variable of the test-only hold points (see the module docs).
pub const TEST_HOLD_ENV: &str = "FABRIC_IPAM_TEST_HOLD";

/// An empty block affine to another node may be reclaimed once its claim is this old.
pub const EMPTY_BLOCK_MIN_RECLAIM_AGE: Duration = Duration::from_secs(60);

/// How far a block search walks past existing or reserved subnets before it gives up on a
/// pool (only reachable with huge IPv6 pools under huge reservations).
const MAX_WALK_MISSES: usize = 65_536;

/// Blocks the first pass of a block search reads one by one before it lists them all.
const MAX_PROBES: usize = 8;

/// What the confirming phase of a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Confirmation {
    /// The block is the node's and the affinity is confirmed.
    Confirmed,
    /// The block is gone: create it again.
    BlockGone,
    /// The block belongs to another node, or to none.
    Taken {
        /// Its node.
        owner: Option<String>,
    },
}

/// The result of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The node owns the block (affinity confirmed).
    Claimed,
    /// The block exists and belongs to another node (or to none).
    Taken {
        /// Its node.
        owner: Option<String>,
    },
}

async fn test_hold(point: &str, block: &IpNet) {
    let Ok(spec) = std::env::var(TEST_HOLD_ENV) else {
        return;
    };
    let Some((at, marker)) = spec.split_once(':') else {
        return;
    };
    if at != point {
        return;
    }
    tracing::warn!(point, block = %block, "test hold point reached; waiting to be killed");
    if let Err(e) = std::fs::write(marker, block.to_string()) {
        tracing::error!(error = %e, marker, "cannot write the test hold marker");
    }
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

fn affinity(state: AffinityState) -> BlockAffinity {
    BlockAffinity {
        state,
        deleted: false,
    }
}

impl Ipam {
    /// Reads a block fresh and remembers it (a soft-deleted block counts as absent).
    pub(crate) async fn read_block(&self, cidr: &IpNet) -> Result<Option<SharedBlock>, IpamError> {
        let stored =
            store::get::<AllocationBlock>(self.backend.as_ref(), &ipam_block_key(cidr)).await?;
        let stored = stored.filter(|s| !s.value.deleted).map(Arc::new);
        self.cache_shared(*cidr, stored.clone());
        Ok(stored)
    }

    /// Claims `cidr` for `node` in two phases. Safe to repeat: an existing pending or
    /// confirmed affinity and a block already ours are taken as they are.
    pub(crate) async fn claim_block(&self, node: &str, cidr: IpNet) -> Result<Claim, IpamError> {
        let aff_key = ipam_affinity_key(node, &cidr);
        // Phase 1: the affinity, pending unless already confirmed.
        store::modify::<BlockAffinity, (), _>(
            self.backend.as_ref(),
            &aff_key,
            Start::Guess(None),
            |cur| match live(cur) {
                Some(a) if a.state != AffinityState::PendingDeletion => Ok(Decision::Keep(())),
                _ => Ok(Decision::Put(affinity(AffinityState::Pending), ())),
            },
        )
        .await?;
        test_hold("after-pending", &cidr).await;
        for _ in 0..RETRIES {
            // Phase 2: the block, affine to us.
            if let Claim::Taken { owner } = self.create_block_for(node, cidr).await?
                && !self.drop_pending(node, &cidr).await?
            {
                return Ok(Claim::Taken { owner });
            }
            test_hold("after-block", &cidr).await;
            // Phase 3: confirm, while the block is ours.
            match self.confirm(node, cidr).await? {
                Confirmation::Confirmed => return Ok(Claim::Claimed),
                Confirmation::Taken { owner } => return Ok(Claim::Taken { owner }),
                // A release of this node deleted the empty block meanwhile: create it again.
                Confirmation::BlockGone => {}
            }
        }
        Err(IpamError::TooManyConflicts {
            key: ipam_block_key(&cidr),
            attempts: RETRIES,
        })
    }

    /// Creates the block affine to `node`, or reports who has it.
    async fn create_block_for(&self, node: &str, cidr: IpNet) -> Result<Claim, IpamError> {
        let now = (self.clock)();
        let fresh = blocks::new_block(cidr, Some(node), Some(format_rfc3339(now)), unix_nanos(now));
        let (claim, stored) = store::modify::<AllocationBlock, Claim, _>(
            self.backend.as_ref(),
            &ipam_block_key(&cidr),
            Start::Guess(self.cached_block(&cidr).map(Arc::unwrap_or_clone)),
            |cur| match live(cur) {
                None => Ok(Decision::Put(fresh.clone(), Claim::Claimed)),
                Some(b) if b.host() == Some(node) => Ok(Decision::Keep(Claim::Claimed)),
                Some(b) => Ok(Decision::Keep(Claim::Taken {
                    owner: b.host().map(str::to_string),
                })),
            },
        )
        .await?;
        self.cache_block(cidr, stored.filter(|s| !s.value.deleted));
        Ok(claim)
    }

    /// Sets the affinity confirmed (recreating it if a release deleted it), conditioned on
    /// the block being the node's: a claim never confirms an affinity to a block a release
    /// has meanwhile made unaffine or deleted. When the block went to no node or another
    /// node, a pending affinity is dropped; a confirmed or pendingDeletion one belongs to a
    /// release in progress, which deletes it or gives the block back.
    async fn confirm(&self, node: &str, cidr: IpNet) -> Result<Confirmation, IpamError> {
        let (outcome, _) = store::modify_guarded::<BlockAffinity, AllocationBlock, _, _>(
            self.backend.as_ref(),
            &ipam_affinity_key(node, &cidr),
            &ipam_block_key(&cidr),
            |aff, block| {
                let Some(b) = live(block) else {
                    return Ok(Decision::Keep(Confirmation::BlockGone));
                };
                if b.host() != Some(node) {
                    let taken = Confirmation::Taken {
                        owner: b.host().map(str::to_string),
                    };
                    return Ok(match live(aff) {
                        Some(a) if a.state == AffinityState::Pending => Decision::Delete(taken),
                        _ => Decision::Keep(taken),
                    });
                }
                match live(aff) {
                    Some(a) if a.state == AffinityState::Confirmed => {
                        Ok(Decision::Keep(Confirmation::Confirmed))
                    }
                    _ => Ok(Decision::Put(
                        affinity(AffinityState::Confirmed),
                        Confirmation::Confirmed,
                    )),
                }
            },
        )
        .await?;
        if outcome == Confirmation::Confirmed {
            self.with_cache(|c| c.add_affine(node, cidr));
            tracing::debug!(node, block = %cidr, "block claimed");
        }
        Ok(outcome)
    }

    /// Deletes the node's affinity to `cidr` if it is still pending, conditioned on the block
    /// not being the node's. Returns whether the block turned out to be the node's after all
    /// (a release of the same node gave it back meanwhile): then the claim goes on.
    async fn drop_pending(&self, node: &str, cidr: &IpNet) -> Result<bool, IpamError> {
        let (ours, _) = store::modify_guarded::<BlockAffinity, AllocationBlock, bool, _>(
            self.backend.as_ref(),
            &ipam_affinity_key(node, cidr),
            &ipam_block_key(cidr),
            |aff, block| {
                if live(block).is_some_and(|b| b.host() == Some(node)) {
                    return Ok(Decision::Keep(true));
                }
                match live(aff) {
                    Some(a) if a.state == AffinityState::Pending => Ok(Decision::Delete(false)),
                    _ => Ok(Decision::Keep(false)),
                }
            },
        )
        .await?;
        Ok(ours)
    }

    /// Lists the node's affinities of `family`, finishes or undoes claims a crash left
    /// half-done, and returns the confirmed blocks (read fresh, so the cache is current).
    ///
    /// * pending affinity, no block: the claim is completed;
    /// * pending affinity, block ours: confirmed;
    /// * pending affinity, block someone else's: the affinity is deleted;
    /// * confirmed affinity, no block: the block is recreated (empty);
    /// * confirmed affinity, block someone else's or unaffine: the stale affinity is deleted;
    /// * pendingDeletion: left alone (a release is running, or `release_affinity` finishes it).
    pub(crate) async fn recover_owned(
        &self,
        node: &str,
        family: Family,
    ) -> Result<Vec<IpNet>, IpamError> {
        let items = store::list(self.backend.as_ref(), &ipam_host_prefix(node)).await?;
        let mut owned = Vec::new();
        for kv in &items {
            let Some((_, cidr)) = parse_ipam_affinity_key(&kv.key) else {
                continue;
            };
            if Family::of(&cidr) != family {
                continue;
            }
            let aff = store::decode::<BlockAffinity>(kv)?;
            if aff.value.deleted {
                continue;
            }
            let block = self.read_block(&cidr).await?;
            let owner = block.as_ref().map(|b| b.value.host().map(str::to_string));
            match (aff.value.state, owner) {
                (AffinityState::PendingDeletion, _) => {}
                (AffinityState::Pending, Some(Some(o))) if o == node => {
                    if self.claim_block(node, cidr).await? == Claim::Claimed {
                        owned.push(cidr);
                    }
                }
                (AffinityState::Confirmed, Some(Some(o))) if o == node => owned.push(cidr),
                (state, None) => {
                    tracing::warn!(node, block = %cidr, ?state, "affinity without its block; completing the claim");
                    if self.claim_block(node, cidr).await? == Claim::Claimed {
                        owned.push(cidr);
                    }
                }
                (state, Some(owner)) => {
                    tracing::warn!(node, block = %cidr, ?state, owner = ?owner, "affinity to a block that is not ours; deleting it");
                    // Only while the block is still not ours: a release of this node may be
                    // giving it back.
                    let revision = aff.revision;
                    store::modify_guarded::<BlockAffinity, AllocationBlock, (), _>(
                        self.backend.as_ref(),
                        &kv.key,
                        &ipam_block_key(&cidr),
                        |cur, block| match cur {
                            _ if live(block).is_some_and(|b| b.host() == Some(node)) => {
                                Ok(Decision::Keep(()))
                            }
                            Some(s) if s.revision == revision => Ok(Decision::Delete(())),
                            _ => Ok(Decision::Keep(())),
                        },
                    )
                    .await?;
                }
            }
        }
        owned.sort();
        self.with_cache(|c| c.set_affine(node, family.version(), owned.clone()));
        Ok(owned)
    }

    /// Finds a block `node` can claim in `pools` and claims it: the first subnet of the
    /// node-seeded walk without a block (and not wholly reserved), or a block already affine to
    /// the node with free space; failing that, an empty block another node claimed more than
    /// a minute ago, reclaimed. `None` when nothing is left. A first pass reads a few
    /// candidates one by one; only when that finds nothing is every block listed (Calico
    /// lists them every time).
    pub(crate) async fn find_and_claim_block(
        &self,
        node: &str,
        family: Family,
        pools: &[PoolChoice],
        reserved: &Reservations,
        owned: &[IpNet],
    ) -> Result<Option<IpNet>, IpamError> {
        if let Some(cidr) = self.probe_and_claim(node, pools, reserved, owned).await? {
            return Ok(Some(cidr));
        }
        let existing = self.list_blocks(family).await?;
        for pool in pools {
            let max = pool.cidr.max_prefix_len();
            let nonce = (pool.block_prefix == max).then(|| unix_nanos((self.clock)()));
            let walk = BlockWalk::new(pool.cidr, pool.block_prefix, node, nonce);
            let in_pool = existing.keys().filter(|c| pool.cidr.contains(*c)).count();
            let mut misses = 0usize;
            for cidr in walk {
                if misses > in_pool + MAX_WALK_MISSES {
                    break;
                }
                match existing.get(&cidr) {
                    None => {
                        let empty = blocks::new_block(cidr, None, None, 0);
                        if blocks::free_count(&empty, reserved) == 0 {
                            misses += 1;
                            continue;
                        }
                        match self.claim_block(node, cidr).await? {
                            Claim::Claimed => return Ok(Some(cidr)),
                            Claim::Taken { .. } => misses += 1,
                        }
                    }
                    Some(b)
                        if b.value.host() == Some(node)
                            && !owned.contains(&cidr)
                            && blocks::free_count(&b.value, reserved) > 0 =>
                    {
                        if self.claim_block(node, cidr).await? == Claim::Claimed {
                            return Ok(Some(cidr));
                        }
                        misses += 1;
                    }
                    Some(_) => misses += 1,
                }
            }
            if let Some(cidr) = self
                .reclaim_empty_block(node, pool, &existing, reserved)
                .await?
            {
                return Ok(Some(cidr));
            }
        }
        Ok(None)
    }

    /// The cheap first pass of the block search: walks the node's candidates, skipping the
    /// blocks it owns or has seen, and reads the others one by one (most often the first one
    /// read is free), claiming the first free subnet or the first block of its own with room.
    /// Gives up after [`MAX_PROBES`] reads; the caller then lists every block.
    async fn probe_and_claim(
        &self,
        node: &str,
        pools: &[PoolChoice],
        reserved: &Reservations,
        owned: &[IpNet],
    ) -> Result<Option<IpNet>, IpamError> {
        for pool in pools {
            let max = pool.cidr.max_prefix_len();
            let nonce = (pool.block_prefix == max).then(|| unix_nanos((self.clock)()));
            let mut probes = 0usize;
            let mut skipped = 0usize;
            for cidr in BlockWalk::new(pool.cidr, pool.block_prefix, node, nonce) {
                if probes >= MAX_PROBES || skipped > MAX_WALK_MISSES {
                    break;
                }
                if owned.contains(&cidr) {
                    skipped += 1;
                    continue;
                }
                let ours_with_room = |b: &AllocationBlock| {
                    b.host() == Some(node) && blocks::free_count(b, reserved) > 0
                };
                let cached = self.with_cache(|c| c.block(&cidr).map(|b| ours_with_room(&b.value)));
                let usable = match cached {
                    Some(usable) => usable,
                    None => {
                        probes += 1;
                        match self.read_block(&cidr).await? {
                            Some(b) => ours_with_room(&b.value),
                            None => {
                                let empty = blocks::new_block(cidr, None, None, 0);
                                blocks::free_count(&empty, reserved) > 0
                            }
                        }
                    }
                };
                if !usable {
                    skipped += 1;
                    continue;
                }
                if self.claim_block(node, cidr).await? == Claim::Claimed {
                    return Ok(Some(cidr));
                }
            }
        }
        Ok(None)
    }

    /// Takes over an empty block of another node whose claim is older than a minute.
    async fn reclaim_empty_block(
        &self,
        node: &str,
        pool: &PoolChoice,
        existing: &HashMap<IpNet, Stored<AllocationBlock>>,
        reserved: &Reservations,
    ) -> Result<Option<IpNet>, IpamError> {
        let now = (self.clock)();
        let walk = BlockWalk::new(pool.cidr, pool.block_prefix, node, None);
        let mut candidates: Vec<(u128, IpNet, String)> = existing
            .iter()
            .filter(|(cidr, _)| pool.cidr.contains(*cidr))
            .filter_map(|(cidr, b)| {
                let owner = b.value.host()?;
                let old_enough = b
                    .value
                    .affinity_claim_time
                    .as_deref()
                    .and_then(parse_rfc3339)
                    .is_none_or(|t| {
                        now.duration_since(t)
                            .is_ok_and(|age| age > EMPTY_BLOCK_MIN_RECLAIM_AGE)
                    });
                let usable = owner != node
                    && old_enough
                    && blocks::is_empty(&b.value)
                    && blocks::free_count(&b.value, reserved) > 0;
                usable.then(|| {
                    (
                        walk.position(cidr).unwrap_or(u128::MAX),
                        *cidr,
                        owner.to_string(),
                    )
                })
            })
            .collect();
        candidates.sort();
        for (_, cidr, owner) in candidates {
            match self.release_affinity(&owner, cidr, true).await {
                Ok(()) => {}
                Err(IpamError::NoAffinity { .. }) => {
                    if !self.delete_empty_block(&cidr, &owner).await? {
                        continue;
                    }
                }
                Err(
                    IpamError::BlockNotEmpty { .. }
                    | IpamError::AffinityConflict { .. }
                    | IpamError::TooManyConflicts { .. },
                ) => continue,
                Err(e) => return Err(e),
            }
            tracing::info!(node, block = %cidr, from = %owner, "reclaimed an empty block of another node");
            if self.claim_block(node, cidr).await? == Claim::Claimed {
                return Ok(Some(cidr));
            }
        }
        Ok(None)
    }

    /// Deletes the block if it is still empty and affine to `owner`; whether it did.
    async fn delete_empty_block(&self, cidr: &IpNet, owner: &str) -> Result<bool, IpamError> {
        let (deleted, stored) = store::modify::<AllocationBlock, bool, _>(
            self.backend.as_ref(),
            &ipam_block_key(cidr),
            Start::Read,
            |cur| match live(cur) {
                Some(b) if b.host() == Some(owner) && blocks::is_empty(b) => {
                    Ok(Decision::Delete(true))
                }
                _ => Ok(Decision::Keep(false)),
            },
        )
        .await?;
        self.cache_block(*cidr, stored.filter(|s| !s.value.deleted));
        Ok(deleted)
    }

    /// Every live block of the family, by CIDR.
    pub(crate) async fn list_blocks(
        &self,
        family: Family,
    ) -> Result<HashMap<IpNet, Stored<AllocationBlock>>, IpamError> {
        let items = store::list(self.backend.as_ref(), &family.block_prefix()).await?;
        let mut out = HashMap::with_capacity(items.len());
        for kv in &items {
            let Some(cidr) = parse_ipam_block_key(&kv.key) else {
                continue;
            };
            let stored = store::decode::<AllocationBlock>(kv)?;
            if !stored.value.deleted {
                out.insert(cidr, stored);
            }
        }
        Ok(out)
    }

    /// The effective block limit of a request.
    pub(crate) fn block_limit(config: &IpamConfig, requested: Option<u32>) -> u32 {
        requested.map_or(config.max_blocks_per_host, |r| {
            r.min(config.max_blocks_per_host)
        })
    }
}
