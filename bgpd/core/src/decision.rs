//! The decision process (RFC 4271 §9.1.2.2, RFC 4456 §9): which path of a destination is best,
//! why, and which paths form the ECMP set.
//!
//! The steps filter the candidate set in order, like the RFC's elimination (so MED, which is
//! only comparable within a neighbour AS, stays order-independent):
//!
//! | step | keeps | reason |
//! |---|---|---|
//! | 0 | our own originations, if any (like BIRD's protocol preference) | `LocallyOriginated` |
//! | 1 | highest LOCAL_PREF | `LocalPref` |
//! | 2 | shortest AS path (AS_SET counts 1) | `AsPathLength` |
//! | 3 | lowest ORIGIN | `Origin` |
//! | 4 | lowest MED per neighbour AS (all together with `always_compare_med`; missing = 0) | `Med` |
//! | 5 | eBGP-learned over iBGP-learned | `EbgpOverIbgp` |
//! | 6 | lowest IGP cost to the next hop (unreachable next hops are not candidates) | `IgpCost` |
//! | 7 | shortest CLUSTER_LIST | `ClusterListLength` |
//! | 8 | lowest ORIGINATOR_ID, else the peer's BGP identifier | `RouterId` |
//! | 9 | lowest peer address | `PeerAddress` |
//!
//! The reason is the step that removed the last competitor (`OnlyPath` when there was one
//! candidate). The ECMP set is the candidates left after step 6, restricted to the best path's
//! neighbour AS unless `multipath_relax`, ordered by steps 7–9, at most `max_paths`.

use std::net::{IpAddr, Ipv4Addr};

use bgp_wire::Origin;

use crate::attrs::RouteAttrs;
use crate::config::DecisionConfig;
use crate::driver::NextHopCost;
use crate::rib::{Dest, LOCAL};

/// Why the best path won over the runner-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DecisionReason {
    /// It was the only candidate.
    OnlyPath,
    /// Our own origination.
    LocallyOriginated,
    /// Higher LOCAL_PREF.
    LocalPref,
    /// Shorter AS path.
    AsPathLength,
    /// Lower ORIGIN.
    Origin,
    /// Lower MED (same neighbour AS, or `always_compare_med`).
    Med,
    /// eBGP over iBGP.
    EbgpOverIbgp,
    /// Lower IGP cost to the next hop.
    IgpCost,
    /// Shorter CLUSTER_LIST.
    ClusterListLength,
    /// Lower ORIGINATOR_ID / BGP identifier.
    RouterId,
    /// Lower peer address.
    PeerAddress,
}

/// Facts about a peer slot the decision needs (kept after the session ends, for stale paths).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerFacts {
    pub address: IpAddr,
    pub ebgp: bool,
    pub remote_id: Ipv4Addr,
}

/// Inputs besides the destination.
pub(crate) struct DecisionInput<'a> {
    pub cfg: &'a DecisionConfig,
    pub facts: &'a [Option<PeerFacts>],
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub cost: &'a dyn Fn(IpAddr) -> Option<NextHopCost>,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    idx: usize,
    local: bool,
    local_pref: u32,
    as_len: usize,
    origin: Origin,
    med: u32,
    neighbor_as: u32,
    ebgp: bool,
    igp: u32,
    cluster_len: usize,
    router_id: Ipv4Addr,
    peer_addr: IpAddr,
}

fn candidate(
    idx: usize,
    peer: u16,
    a: &RouteAttrs,
    input: &DecisionInput<'_>,
) -> Option<Candidate> {
    let local = peer == LOCAL;
    let facts = if local {
        PeerFacts {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ebgp: false,
            remote_id: input.router_id,
        }
    } else {
        (*input.facts.get(usize::from(peer))?)?
    };
    let igp = if local {
        0
    } else {
        match (input.cost)(a.next_hop_addr()) {
            Some(NextHopCost::Unreachable) => return None,
            Some(NextHopCost::Reachable(c)) => c,
            None => 0,
        }
    };
    Some(Candidate {
        idx,
        local,
        local_pref: a.local_pref(),
        as_len: a.as_path_len(),
        origin: a.origin(),
        med: a.med(),
        neighbor_as: a
            .path
            .as_path
            .as_ref()
            .and_then(|p| p.first_asn())
            .unwrap_or(input.local_as),
        ebgp: facts.ebgp,
        igp,
        cluster_len: a.path.cluster_list.len(),
        router_id: a.path.originator_id.unwrap_or(facts.remote_id),
        peer_addr: facts.address,
    })
}

/// Keeps the candidates minimal by `key`; returns whether the set shrank.
fn keep_min<K: Ord>(set: &mut Vec<Candidate>, key: impl Fn(&Candidate) -> K) -> bool {
    let Some(min) = set.iter().map(&key).min() else {
        return false;
    };
    let before = set.len();
    set.retain(|c| key(c) == min);
    set.len() != before
}

/// Runs the decision for `dest`: reorders its paths (selected first), sets `selected` and
/// `reason`.
pub(crate) fn decide(dest: &mut Dest, input: &DecisionInput<'_>) {
    let paths = dest.paths.as_slice();
    let mut set: Vec<Candidate> = paths
        .iter()
        .enumerate()
        .filter_map(|(i, p)| candidate(i, p.peer, p.attrs.as_deref()?, input))
        .collect();
    if set.is_empty() {
        dest.selected = 0;
        dest.reason = DecisionReason::OnlyPath;
        return;
    }
    if set.len() == 1 {
        let best = set[0].idx;
        let best_peer = paths_peer(paths, best);
        dest.selected = 1;
        dest.reason = DecisionReason::OnlyPath;
        if best != 0 {
            dest.paths.reorder(|p| usize::from(p.peer != best_peer));
        }
        return;
    }
    let mut reason = DecisionReason::OnlyPath;
    let mut step = |set: &mut Vec<Candidate>, r: DecisionReason, shrank: bool| {
        if shrank && set.len() == 1 && reason == DecisionReason::OnlyPath {
            reason = r;
        }
    };
    let s = keep_min(&mut set, |c| !c.local);
    step(&mut set, DecisionReason::LocallyOriginated, s);
    let s = keep_min(&mut set, |c| std::cmp::Reverse(c.local_pref));
    step(&mut set, DecisionReason::LocalPref, s);
    let s = keep_min(&mut set, |c| c.as_len);
    step(&mut set, DecisionReason::AsPathLength, s);
    let s = keep_min(&mut set, |c| c.origin);
    step(&mut set, DecisionReason::Origin, s);
    let s = if input.cfg.always_compare_med {
        keep_min(&mut set, |c| c.med)
    } else {
        let before = set.len();
        let snapshot = set.clone();
        set.retain(|c| {
            snapshot
                .iter()
                .filter(|o| o.neighbor_as == c.neighbor_as)
                .all(|o| o.med >= c.med)
        });
        set.len() != before
    };
    step(&mut set, DecisionReason::Med, s);
    let s = keep_min(&mut set, |c| !c.ebgp);
    step(&mut set, DecisionReason::EbgpOverIbgp, s);
    let s = keep_min(&mut set, |c| c.igp);
    step(&mut set, DecisionReason::IgpCost, s);
    let mut pool = set.clone();
    let s = keep_min(&mut set, |c| c.cluster_len);
    step(&mut set, DecisionReason::ClusterListLength, s);
    let s = keep_min(&mut set, |c| c.router_id);
    step(&mut set, DecisionReason::RouterId, s);
    let s = keep_min(&mut set, |c| c.peer_addr);
    step(&mut set, DecisionReason::PeerAddress, s);
    let best = set[0];

    if !input.cfg.multipath_relax {
        pool.retain(|c| c.neighbor_as == best.neighbor_as);
    }
    pool.sort_by_key(|c| (c.idx != best.idx, c.cluster_len, c.router_id, c.peer_addr));
    pool.truncate(usize::from(input.cfg.max_paths.max(1)));
    let mut rank = vec![usize::MAX; paths.len()];
    for (r, c) in pool.iter().enumerate() {
        if let Some(slot) = rank.get_mut(c.idx) {
            *slot = r;
        }
    }
    // Unselected paths keep their relative order after the selected ones.
    let peers_rank: Vec<(u16, usize)> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (p.peer, rank.get(i).copied().unwrap_or(usize::MAX)))
        .collect();
    dest.paths.reorder(|p| {
        peers_rank
            .iter()
            .find(|(peer, _)| *peer == p.peer)
            .map_or(usize::MAX, |(_, r)| *r)
    });
    dest.selected = u8::try_from(pool.len()).unwrap_or(u8::MAX);
    dest.reason = reason;
}

fn paths_peer(paths: &[crate::rib::Path], idx: usize) -> u16 {
    paths.get(idx).map_or(u16::MAX, |p| p.peer)
}

#[cfg(test)]
mod tests;
