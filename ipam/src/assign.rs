//! Assignment: `auto_assign` (the node's confirmed blocks first, then new claims up to the
//! block limit, then borrowing from other blocks unless strictAffinity) and `assign_ip` (one
//! given address). Each block write carries the handle's new count in the same transaction;
//! a failed request gives back whatever it had taken.

use std::collections::BTreeMap;
use std::net::IpAddr;

use fabric_api::Node;
use fabric_datastore::ipam_model::{AllocationAttribute, IpamHandle};
use fabric_datastore::keys::ipam_block_key;
use ipnet::IpNet;

use crate::Ipam;
use crate::blocks::{self, Allocated, Reservations};
use crate::claim::Claim;
use crate::error::{Exhaustion, IpamError};
use crate::handles::check_handle;
use crate::pools::{self, Env, Family, PoolChoice, PoolRequest};
use crate::search::BlockWalk;
use crate::store::{RETRIES, Stored};
use crate::txn::{BlockChange, HandleChange, Known, Plan};
use crate::types::{AllocationInfo, AssignedIps, AutoAssignArgs, ReleaseRequest};

/// Checks a node name: non-empty and usable as a key segment.
pub(crate) fn check_node(node: &str) -> Result<(), IpamError> {
    let rule = if node.is_empty() {
        "must not be empty"
    } else if node.contains('/') {
        "must not contain '/' (it is a segment of the affinity key)"
    } else {
        return Ok(());
    };
    Err(IpamError::invalid("node", node, rule))
}

/// The attributes stored with an allocation: the caller's, plus `node`.
pub(crate) fn attribute(
    handle: &str,
    node: &str,
    attrs: &BTreeMap<String, String>,
) -> AllocationAttribute {
    let mut owner = attrs.clone();
    owner
        .entry("node".to_string())
        .or_insert_with(|| node.to_string());
    AllocationAttribute {
        handle_id: Some(handle.to_string()),
        active_owner_attrs: owner,
        alternate_owner_attrs: BTreeMap::new(),
    }
}

/// Address and sequence number of each allocation.
fn taken_of(got: &[(Allocated, IpNet)]) -> Vec<(IpAddr, u64)> {
    got.iter().map(|(a, _)| (a.ip, a.sequence)).collect()
}

/// Most addresses one request may ask for per family.
const MAX_PER_REQUEST: usize = 1 << 16;

/// One family's progress within a request: what it has taken, and the request's handle as
/// last written (so a second block write of the request needs no read of it).
#[derive(Debug)]
struct Taking {
    got: Vec<(Allocated, IpNet)>,
    handle: Known<Stored<IpamHandle>>,
}

impl Ipam {
    /// Assigns `num_v4` IPv4 and `num_v6` IPv6 addresses to `args.handle` on `args.node`.
    ///
    /// All or nothing: when a family cannot be served in full, everything this call took is
    /// released again and the error says why ([`IpamError::NoPool`] with each pool's reason,
    /// or [`IpamError::Exhausted`]). Calico's order: the node's confirmed blocks; new blocks
    /// (two-phase claim) while the node owns fewer than the block limit and
    /// `autoAllocateBlocks` is on; then, unless `strictAffinity`, free addresses in any other
    /// block of the pools. Reserved addresses are never handed out.
    pub async fn auto_assign(&self, args: AutoAssignArgs) -> Result<AssignedIps, IpamError> {
        check_handle(&args.handle)?;
        check_node(&args.node)?;
        if args.num_v4 == 0 && args.num_v6 == 0 {
            return Err(IpamError::invalid(
                "num_v4",
                "0",
                "and num_v6 are both 0: ask for at least one address",
            ));
        }
        for (field, n) in [("num_v4", args.num_v4), ("num_v6", args.num_v6)] {
            if n > MAX_PER_REQUEST {
                return Err(IpamError::invalid(
                    field,
                    n.to_string(),
                    format!("is more than {MAX_PER_REQUEST} addresses in one request"),
                ));
            }
        }
        let env = self.env().await?;
        let attr = attribute(&args.handle, &args.node, &args.attrs);
        let mut out = AssignedIps::default();
        // A new handle is the common case (one per pod sandbox): guess it absent.
        let mut handle = if args.new_handle {
            Known::New
        } else {
            Known::Guess(None)
        };
        let families = [
            (Family::V4, args.num_v4, &args.pools_v4),
            (Family::V6, args.num_v6, &args.pools_v6),
        ];
        for (family, num, requested) in families {
            if num == 0 {
                continue;
            }
            match self
                .assign_family(&args, family, num, requested, &env, &attr, &mut handle)
                .await
            {
                Ok(got) => {
                    for (a, block) in got {
                        out.sequences.insert(a.ip, a.sequence);
                        match family {
                            Family::V4 => out.v4.push((a.ip, block)),
                            Family::V6 => out.v6.push((a.ip, block)),
                        }
                    }
                }
                Err(e) => {
                    let taken: Vec<(IpAddr, u64)> = out
                        .v4
                        .iter()
                        .map(|&(ip, _)| (ip, out.sequences.get(&ip).copied().unwrap_or(0)))
                        .collect();
                    self.give_back(&args.handle, &taken).await;
                    return Err(e);
                }
            }
        }
        tracing::debug!(node = %args.node, handle = %args.handle, v4 = out.v4.len(), v6 = out.v6.len(), "addresses assigned");
        Ok(out)
    }

    /// The pools of one family for the request, reading the Node only when a selector needs it.
    pub(crate) async fn pools_for(
        &self,
        args: &AutoAssignArgs,
        family: Family,
        requested: &[String],
        env: &Env,
    ) -> Result<Vec<PoolChoice>, IpamError> {
        let req = PoolRequest {
            family,
            requested,
            intended_use: args.intended_use,
            node: &args.node,
            namespace_labels: args.namespace_labels.as_ref(),
        };
        let labels = match pools::needs_node_labels(&env.pools, &req) {
            None => None,
            Some(pool) => match self.client.try_get::<Node>(None, &args.node).await? {
                Some(node) => Some(node.metadata.labels),
                None => {
                    return Err(IpamError::NodeNotFound {
                        node: args.node.clone(),
                        pool,
                    });
                }
            },
        };
        pools::select_pools(&env.pools, &req, labels.as_ref())
    }

    #[allow(clippy::too_many_arguments)]
    async fn assign_family(
        &self,
        args: &AutoAssignArgs,
        family: Family,
        num: usize,
        requested: &[String],
        env: &Env,
        attr: &AllocationAttribute,
        handle: &mut Known<Stored<IpamHandle>>,
    ) -> Result<Vec<(Allocated, IpNet)>, IpamError> {
        let pools = self.pools_for(args, family, requested, env).await?;
        let mut taking = Taking {
            got: Vec::new(),
            handle: std::mem::replace(handle, Known::Read),
        };
        let filled = self
            .fill(args, family, num, &pools, env, attr, &mut taking)
            .await;
        *handle = taking.handle;
        match filled {
            Ok(()) => Ok(taking.got),
            Err(e) => {
                self.give_back(&args.handle, &taken_of(&taking.got)).await;
                *handle = Known::Read;
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn fill(
        &self,
        args: &AutoAssignArgs,
        family: Family,
        num: usize,
        pools: &[PoolChoice],
        env: &Env,
        attr: &AllocationAttribute,
        taking: &mut Taking,
    ) -> Result<(), IpamError> {
        let node = args.node.as_str();
        let config = env.config;
        let reserved = &env.reservations;
        let limit = Self::block_limit(&config, args.max_blocks);
        let mut owned: Option<Vec<IpNet>> = None;
        // Whether `owned` (and the blocks behind it) were read in this request.
        let mut fresh = false;
        let mut blocked = Exhaustion::PoolsFull;
        let mut rounds = 0usize;
        loop {
            while taking.got.len() < num {
                rounds += 1;
                if rounds > 4 * RETRIES {
                    return Err(IpamError::TooManyConflicts {
                        key: format!("the blocks of node {node}"),
                        attempts: rounds,
                    });
                }
                if let Some(cidr) = self.affine_candidate(node, family, pools, reserved) {
                    let want = num - taking.got.len();
                    self.allocate_in(cidr, Some(node), attr, want, reserved, taking)
                        .await?;
                    continue;
                }
                let Some(owned) = owned.as_mut() else {
                    // A listing from the last second is trusted (the cache said its blocks
                    // are full); otherwise re-read the node's affinities and blocks,
                    // recovering interrupted claims.
                    let recent = self.with_cache(|c| c.recent_affine(node, family.version()));
                    owned = match recent {
                        Some(list) => Some(list),
                        None => {
                            fresh = true;
                            Some(self.recover_owned(node, family).await?)
                        }
                    };
                    continue;
                };
                let in_pools = owned
                    .iter()
                    .filter(|b| pools.iter().any(|p| p.cidr.contains(*b)))
                    .count();
                if !config.auto_allocate_blocks {
                    blocked = Exhaustion::AutoAllocateDisabled;
                    break;
                }
                if in_pools >= usize::try_from(limit).unwrap_or(usize::MAX) {
                    blocked = Exhaustion::MaxBlocksPerHost { max: limit };
                    break;
                }
                match self
                    .find_and_claim_block(node, family, pools, reserved, owned)
                    .await?
                {
                    Some(cidr) => owned.push(cidr),
                    None => {
                        blocked = Exhaustion::PoolsFull;
                        break;
                    }
                }
            }
            if taking.got.len() < num && !config.strict_affinity {
                self.borrow(node, family, num, pools, attr, reserved, taking)
                    .await?;
            }
            if taking.got.len() >= num || fresh {
                break;
            }
            // Before giving up, look again with a fresh read: the trusted listing may have
            // missed addresses other processes released in the node's blocks.
            fresh = true;
            owned = Some(self.recover_owned(node, family).await?);
        }
        if taking.got.len() < num {
            let found = taking.got.len();
            let taken = taken_of(&std::mem::take(&mut taking.got));
            self.give_back(&args.handle, &taken).await;
            taking.handle = Known::Read;
            return Err(IpamError::Exhausted {
                version: family.version(),
                node: node.to_string(),
                wanted: num,
                found,
                reason: blocked,
                strict_affinity: config.strict_affinity,
            });
        }
        Ok(())
    }

    /// A confirmed block of the node in the pools that has free addresses, by the cache.
    pub(crate) fn affine_candidate(
        &self,
        node: &str,
        family: Family,
        pools: &[PoolChoice],
        reserved: &Reservations,
    ) -> Option<IpNet> {
        self.with_cache(|c| {
            let affine = c.affine(node, family.version())?;
            affine.iter().copied().find(|cidr| {
                pools.iter().any(|p| p.cidr.contains(cidr))
                    && c.block(cidr).is_some_and(|b| {
                        b.value.host() == Some(node) && blocks::free_count(&b.value, reserved) > 0
                    })
            })
        })
    }

    /// Borrows free addresses from blocks not affine to the node, in walk order per pool.
    #[allow(clippy::too_many_arguments)]
    async fn borrow(
        &self,
        node: &str,
        family: Family,
        num: usize,
        pools: &[PoolChoice],
        attr: &AllocationAttribute,
        reserved: &Reservations,
        taking: &mut Taking,
    ) -> Result<(), IpamError> {
        // Blocks the cache says have room first (usually the block borrowed from last time):
        // one compare-and-swap each instead of listing every block.
        for pool in pools {
            let walk = BlockWalk::new(pool.cidr, pool.block_prefix, node, None);
            let mut cached: Vec<(u128, IpNet)> = self
                .with_cache(|c| {
                    c.borrowable(node, &pool.cidr, |b| blocks::free_count(b, reserved) > 0)
                })
                .into_iter()
                .map(|cidr| (walk.position(&cidr).unwrap_or(u128::MAX), cidr))
                .collect();
            cached.sort();
            for (_, cidr) in cached {
                if taking.got.len() >= num {
                    return Ok(());
                }
                let want = num - taking.got.len();
                self.allocate_in(cidr, None, attr, want, reserved, taking)
                    .await?;
            }
        }
        if taking.got.len() >= num {
            return Ok(());
        }
        let all = self.list_blocks(family).await?;
        for pool in pools {
            let walk = BlockWalk::new(pool.cidr, pool.block_prefix, node, None);
            let mut candidates: Vec<(u128, IpNet)> = all
                .iter()
                .filter(|(cidr, b)| {
                    pool.cidr.contains(*cidr)
                        && b.value.host() != Some(node)
                        && blocks::free_count(&b.value, reserved) > 0
                })
                .map(|(cidr, _)| (walk.position(cidr).unwrap_or(u128::MAX), *cidr))
                .collect();
            candidates.sort();
            for (_, cidr) in candidates {
                if taking.got.len() >= num {
                    return Ok(());
                }
                self.cache_block(cidr, all.get(&cidr).cloned());
                let before = taking.got.len();
                let want = num - before;
                self.allocate_in(cidr, None, attr, want, reserved, taking)
                    .await?;
                if taking.got.len() > before {
                    tracing::debug!(node, block = %cidr, n = taking.got.len() - before, "borrowed addresses");
                }
            }
        }
        Ok(())
    }

    /// Allocates up to `want` addresses in one block (only while it is still affine to `owner`,
    /// when given): the block and the handle's count for it in one transaction, starting from
    /// the cached block (read when there is none, or it has no room).
    async fn allocate_in(
        &self,
        cidr: IpNet,
        owner: Option<&str>,
        attr: &AllocationAttribute,
        want: usize,
        reserved: &Reservations,
        taking: &mut Taking,
    ) -> Result<(), IpamError> {
        let handle = attr.handle_id.clone().unwrap_or_default();
        let block = match self.cached_block(&cidr) {
            Some(b) if blocks::free_count(&b.value, reserved) > 0 => Known::Guess(Some(b)),
            _ => Known::Read,
        };
        let known = std::mem::replace(&mut taking.handle, Known::Read);
        let must_be_new = matches!(known, Known::New);
        let written = self
            .write_block(cidr, block, vec![(handle.clone(), known)], |cur| {
                let Some(b) = cur else {
                    return Ok(Plan::keep(Vec::new()));
                };
                if owner.is_some_and(|o| b.host() != Some(o)) {
                    return Ok(Plan::keep(Vec::new()));
                }
                Ok(match blocks::allocate(b, want, attr.clone(), reserved) {
                    Some((next, allocated)) => Plan {
                        block: BlockChange::Put(next),
                        handles: vec![(handle.clone(), HandleChange::Add(allocated.len()))],
                        result: allocated,
                    },
                    None => Plan::keep(Vec::new()),
                })
            })
            .await?;
        if let Some(after) = written.handle(&handle) {
            // A write that allocated nothing did not touch the handle: it must still be new.
            taking.handle = if must_be_new && written.result.is_empty() {
                Known::New
            } else {
                Known::Fresh(after)
            };
        }
        taking
            .got
            .extend(written.result.into_iter().map(|a| (a, cidr)));
        Ok(())
    }

    /// Releases what a failed request took (guarded by sequence and handle); failures are
    /// logged, the caller reports the original error.
    async fn give_back(&self, handle: &str, taken: &[(IpAddr, u64)]) {
        if taken.is_empty() {
            return;
        }
        let requests: Vec<ReleaseRequest> = taken
            .iter()
            .map(|&(ip, sequence)| ReleaseRequest {
                ip,
                sequence: Some(sequence),
                handle: Some(handle.to_string()),
            })
            .collect();
        if let Err(e) = self.release_ips(&requests).await {
            tracing::warn!(handle, error = %e, n = taken.len(), "could not give back the addresses of a failed request");
        }
    }

    /// Assigns one given address to `handle` on `node` (Calico's `AssignIP`). The address must
    /// be in an enabled pool; its block is claimed for the node if it does not exist. With
    /// strictAffinity, the block must not belong to another node. Reservations do not apply
    /// to an address asked for by name (as in Calico).
    pub async fn assign_ip(
        &self,
        ip: IpAddr,
        handle: &str,
        attrs: &BTreeMap<String, String>,
        node: &str,
    ) -> Result<AllocationInfo, IpamError> {
        check_handle(handle)?;
        check_node(node)?;
        let env = self.env().await?;
        let pool = pools::pool_for_ip(&env.pools, ip).ok_or(IpamError::NotInPool { ip })?;
        let cidr = pools::block_of(ip, pool.block_prefix);
        let attr = attribute(handle, node, attrs);
        // The block may vanish between the claim and the write (its node released the
        // affinity of the still-empty block): claim it again, a bounded number of times.
        for _ in 0..RETRIES {
            let block = match self.read_block(&cidr).await? {
                Some(b) => b,
                None => {
                    if let Claim::Taken { owner } = self.claim_block(node, cidr).await? {
                        tracing::debug!(block = %cidr, ?owner, "block of a requested address was claimed by another node first");
                    }
                    match self.read_block(&cidr).await? {
                        Some(b) => b,
                        None => continue,
                    }
                }
            };
            let strict = env.config.strict_affinity;
            let written = self
                .write_block(
                    cidr,
                    Known::Fresh(Some(block)),
                    vec![(handle.to_string(), Known::Guess(None))],
                    |cur| {
                        let Some(b) = cur else {
                            return Ok(Plan::keep(None));
                        };
                        if strict
                            && let Some(owner) = b.host()
                            && owner != node
                        {
                            return Err(IpamError::StrictAffinity {
                                ip,
                                block: cidr,
                                owner: owner.to_string(),
                                node: node.to_string(),
                            });
                        }
                        let (next, allocated) = blocks::assign(b, ip, attr.clone())?;
                        let owner = b.host().map(str::to_string);
                        Ok(Plan {
                            block: BlockChange::Put(next),
                            handles: vec![(handle.to_string(), HandleChange::Add(1))],
                            result: Some((allocated, owner)),
                        })
                    },
                )
                .await?;
            let Some((allocated, owner)) = written.result else {
                continue;
            };
            return Ok(AllocationInfo {
                ip,
                block: cidr,
                block_owner: owner,
                handle: Some(handle.to_string()),
                attrs: attr.active_owner_attrs,
                sequence: allocated.sequence,
            });
        }
        Err(IpamError::TooManyConflicts {
            key: ipam_block_key(&cidr),
            attempts: RETRIES,
        })
    }
}
