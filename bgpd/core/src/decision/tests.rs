//! Decision process table tests: one per step, with the expected reason, and ECMP sets.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bgp_wire::{AsPath, NextHop, Origin, PathAttributes};

use super::*;
use crate::rib::{Dest, Path, Paths};

const LOCAL_AS: u32 = 64512;

/// Peer slots 1..=4: 1, 2 iBGP; 3, 4 eBGP. Addresses 10.0.0.<slot>, ids 192.0.2.<slot>.
fn facts() -> Vec<Option<PeerFacts>> {
    let mut v = vec![None];
    for slot in 1..=4u8 {
        v.push(Some(PeerFacts {
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, slot)),
            ebgp: slot >= 3,
            remote_id: Ipv4Addr::new(192, 0, 2, slot),
        }));
    }
    v
}

#[derive(Clone)]
struct R {
    peer: u16,
    lp: u32,
    path: Vec<u32>,
    origin: Origin,
    med: Option<u32>,
    nh: Ipv4Addr,
    originator: Option<Ipv4Addr>,
    clusters: usize,
}

fn r(peer: u16) -> R {
    R {
        peer,
        lp: 100,
        path: if peer >= 3 {
            vec![65000 + u32::from(peer)]
        } else {
            vec![]
        },
        origin: Origin::Igp,
        med: None,
        nh: Ipv4Addr::new(10, 0, 0, peer as u8),
        originator: None,
        clusters: 0,
    }
}

fn path(x: &R) -> Path {
    let a = Arc::new(RouteAttrs {
        path: PathAttributes {
            origin: Some(x.origin),
            as_path: Some(AsPath::from_sequence(x.path.iter().copied())),
            local_pref: Some(x.lp),
            multi_exit_disc: x.med,
            originator_id: x.originator,
            cluster_list: vec![Ipv4Addr::new(1, 1, 1, 1); x.clusters],
            ..PathAttributes::default()
        },
        next_hop: NextHop::V4(x.nh),
    });
    Path {
        raw: a.clone(),
        attrs: Some(a),
        peer: x.peer,
        flags: 0,
    }
}

struct Outcome {
    order: Vec<u16>,
    reason: DecisionReason,
}

fn run_with(
    routes: &[R],
    cfg: &DecisionConfig,
    cost: &dyn Fn(IpAddr) -> Option<NextHopCost>,
) -> Outcome {
    let mut d = Dest {
        prefix: "10.1.0.0/24".parse().unwrap(),
        selected: 0,
        reason: DecisionReason::OnlyPath,
        flags: 0,
        paths: Paths::Empty,
    };
    for x in routes {
        d.paths.upsert(path(x));
    }
    let facts = facts();
    let input = DecisionInput {
        cfg,
        facts: &facts,
        local_as: LOCAL_AS,
        router_id: Ipv4Addr::new(192, 0, 2, 100),
        cost,
    };
    decide(&mut d, &input);
    Outcome {
        order: d.selection().iter().map(|p| p.peer).collect(),
        reason: d.reason,
    }
}

fn run(routes: &[R]) -> Outcome {
    let cfg = DecisionConfig {
        max_paths: 1,
        ..DecisionConfig::default()
    };
    run_with(routes, &cfg, &|_| None)
}

/// The best path and the reason, whatever order the candidates arrive in.
fn check(routes: Vec<R>, best: u16, reason: DecisionReason) {
    let mut rev = routes.clone();
    rev.reverse();
    for order in [routes, rev] {
        let o = run(&order);
        assert_eq!(o.order.first(), Some(&best));
        assert_eq!(o.reason, reason);
    }
}

#[test]
fn a_single_candidate_wins_as_the_only_path() {
    check(vec![r(1)], 1, DecisionReason::OnlyPath);
}

#[test]
fn our_own_origination_wins_first() {
    let mut local = r(1);
    local.peer = LOCAL;
    let mut better = r(2);
    better.lp = 500;
    check(
        vec![local, better],
        LOCAL,
        DecisionReason::LocallyOriginated,
    );
}

#[test]
fn the_highest_local_pref_wins() {
    let mut a = r(1);
    a.lp = 200;
    check(vec![a, r(2)], 1, DecisionReason::LocalPref);
}

#[test]
fn the_shortest_as_path_wins() {
    let mut a = r(1);
    a.path = vec![65010];
    let mut b = r(2);
    b.path = vec![65010, 65011];
    check(vec![a, b], 1, DecisionReason::AsPathLength);
}

#[test]
fn the_lowest_origin_wins() {
    let mut a = r(1);
    a.origin = Origin::Egp;
    check(vec![a, r(2)], 2, DecisionReason::Origin);
}

#[test]
fn the_lowest_med_wins_within_one_neighbour_as() {
    let mut a = r(1);
    a.path = vec![65010];
    a.med = Some(50);
    let mut b = r(2);
    b.path = vec![65010];
    b.med = Some(10);
    check(vec![a, b], 2, DecisionReason::Med);
}

#[test]
fn med_is_not_compared_across_neighbour_ases_unless_asked() {
    let mut a = r(1);
    a.path = vec![65010];
    a.med = Some(50);
    let mut b = r(2);
    b.path = vec![65020];
    b.med = Some(10);
    // Different neighbour ASes: MED does not decide; the router id does (1 < 2).
    check(vec![a.clone(), b.clone()], 1, DecisionReason::RouterId);
    let cfg = DecisionConfig {
        always_compare_med: true,
        max_paths: 1,
        ..DecisionConfig::default()
    };
    let o = run_with(&[a, b], &cfg, &|_| None);
    assert_eq!(o.order, vec![2]);
    assert_eq!(o.reason, DecisionReason::Med);
}

#[test]
fn ebgp_wins_over_ibgp() {
    let mut i = r(1);
    i.path = vec![65003];
    check(vec![i, r(3)], 3, DecisionReason::EbgpOverIbgp);
}

#[test]
fn the_lowest_igp_cost_wins_and_unreachable_next_hops_are_ineligible() {
    let cfg = DecisionConfig {
        max_paths: 1,
        ..DecisionConfig::default()
    };
    let cost = |a: IpAddr| match a {
        IpAddr::V4(v) if v.octets()[3] == 1 => Some(NextHopCost::Reachable(20)),
        IpAddr::V4(v) if v.octets()[3] == 2 => Some(NextHopCost::Reachable(10)),
        _ => Some(NextHopCost::Unreachable),
    };
    let o = run_with(&[r(1), r(2)], &cfg, &cost);
    assert_eq!((o.order, o.reason), (vec![2], DecisionReason::IgpCost));
    let unreachable = |_| Some(NextHopCost::Unreachable);
    let o = run_with(&[r(1), r(2)], &cfg, &unreachable);
    assert!(o.order.is_empty());
}

#[test]
fn the_shortest_cluster_list_wins() {
    let mut a = r(1);
    a.clusters = 2;
    let mut b = r(2);
    b.clusters = 1;
    check(vec![a, b], 2, DecisionReason::ClusterListLength);
}

#[test]
fn the_lowest_originator_id_or_router_id_wins() {
    let mut a = r(1);
    a.originator = Some(Ipv4Addr::new(192, 0, 2, 200));
    // Path 2 has no ORIGINATOR_ID: its peer's identifier 192.0.2.2 counts, and is lower.
    check(vec![a, r(2)], 2, DecisionReason::RouterId);
}

#[test]
fn the_lowest_peer_address_breaks_the_last_tie() {
    let mut a = r(1);
    a.originator = Some(Ipv4Addr::new(9, 9, 9, 9));
    let mut b = r(2);
    b.originator = Some(Ipv4Addr::new(9, 9, 9, 9));
    check(vec![b, a], 1, DecisionReason::PeerAddress);
}

#[test]
fn ecmp_takes_paths_equal_through_igp_cost_up_to_the_maximum() {
    let cfg = DecisionConfig {
        max_paths: 2,
        ..DecisionConfig::default()
    };
    // Three iBGP-like paths with the same neighbour AS (empty paths -> local AS).
    let mut c = r(2);
    c.peer = 2;
    let routes = [r(1), c, {
        let mut x = r(1);
        x.peer = 3;
        x.path = vec![];
        x
    }];
    let o = run_with(&routes, &cfg, &|_| None);
    // Slot 3 is eBGP: eBGP beats iBGP, so it is the only survivor.
    assert_eq!(o.order, vec![3]);
    let o = run_with(&routes[..2], &cfg, &|_| None);
    assert_eq!(o.order, vec![1, 2]);
    assert_eq!(o.reason, DecisionReason::RouterId);
    let one = DecisionConfig {
        max_paths: 1,
        ..cfg.clone()
    };
    assert_eq!(run_with(&routes[..2], &one, &|_| None).order, vec![1]);
}

#[test]
fn ecmp_over_different_neighbour_ases_needs_multipath_relax() {
    let a = r(3);
    let b = r(4);
    let strict = DecisionConfig::default();
    assert_eq!(
        run_with(&[a.clone(), b.clone()], &strict, &|_| None).order,
        vec![3]
    );
    let relax = DecisionConfig {
        multipath_relax: true,
        ..DecisionConfig::default()
    };
    assert_eq!(run_with(&[b, a], &relax, &|_| None).order, vec![3, 4]);
}

#[test]
fn a_worse_igp_cost_is_not_in_the_ecmp_set() {
    let cfg = DecisionConfig::default();
    let cost = |a: IpAddr| match a {
        IpAddr::V4(v) if v.octets()[3] == 2 => Some(NextHopCost::Reachable(5)),
        _ => None,
    };
    assert_eq!(run_with(&[r(1), r(2)], &cfg, &cost).order, vec![1]);
}
