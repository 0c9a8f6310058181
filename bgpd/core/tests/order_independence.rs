//! Property: the same set of routes delivered in any order yields the same Loc-RIB.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use bgp_wire::{Community, NextHop, Origin};
use bgpd_core::test_peer::TestPeer;
use bgpd_core::{RouteView, Speaker};
use bytes::Bytes;
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Route {
    peer: usize,
    prefix: usize,
    local_pref: u32,
    extra_as: Vec<u32>,
    origin: u8,
    med: Option<u32>,
    community: bool,
}

fn route() -> impl Strategy<Value = Route> {
    (
        0..4usize,
        0..6usize,
        prop::sample::select(vec![100u32, 200]),
        prop::collection::vec(prop::sample::select(vec![65100u32, 65200, 65300]), 0..3),
        0..3u8,
        prop::option::of(0..3u32),
        any::<bool>(),
    )
        .prop_map(
            |(peer, prefix, local_pref, extra_as, origin, med, community)| Route {
                peer,
                prefix,
                local_pref,
                extra_as,
                origin,
                med,
                community,
            },
        )
}

/// Peers 0, 1 are iBGP; 2, 3 eBGP from two ASes.
fn peers() -> Vec<TestPeer> {
    vec![
        ibgp_peer("10.0.0.2", "10.0.0.2"),
        ibgp_peer("10.0.0.3", "10.0.0.3"),
        ebgp_peer("192.0.2.1", 65001, "192.0.2.1"),
        ebgp_peer("192.0.2.2", 65002, "192.0.2.2"),
    ]
}

fn frames(tp: &TestPeer, r: &Route) -> Vec<Bytes> {
    let mut path = Vec::new();
    if r.peer >= 2 {
        path.push(tp.asn);
    }
    path.extend(&r.extra_as);
    let mut a = tp.attributes(&path);
    a.origin = Some([Origin::Igp, Origin::Egp, Origin::Incomplete][usize::from(r.origin)]);
    a.local_pref = (r.peer < 2).then_some(r.local_pref);
    a.multi_exit_disc = r.med;
    if r.community {
        a.communities = vec![Community::new(1, 1)];
    }
    let prefix = pfx(&format!("10.{}.0.0/24", 100 + r.prefix));
    let bgp_wire::ipnet::IpNet::V4(addr) = tp.address.into() else {
        unreachable!()
    };
    tp.announce(&[prefix], &a, NextHop::V4(addr.addr()))
}

fn loc_rib(routes: &[Route]) -> Vec<RouteView> {
    let mut sp = speaker("10.0.0.1");
    let mut tps = peers();
    let mut conns = Vec::new();
    for tp in tps.iter_mut() {
        let own = if tp.asn == LOCAL_AS {
            "10.0.0.1"
        } else {
            "192.0.2.100"
        };
        conns.push(up(&mut sp, secs(0), tp, own, |_| {}).0);
    }
    for r in routes {
        let tp = &tps[r.peer];
        tp.deliver(&mut sp, secs(1), conns[r.peer], frames(tp, r));
    }
    let _: &Speaker = &sp;
    sp.loc_rib()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_same_routes_in_any_order_give_the_same_loc_rib(
        (routes, shuffled) in prop::collection::vec(route(), 1..24)
            .prop_map(|v| {
                // One route per (peer, prefix): the last one wins, like an implicit withdraw.
                let m: BTreeMap<(usize, usize), Route> = v.into_iter().map(|r| ((r.peer, r.prefix), r)).collect();
                m.into_values().collect::<Vec<_>>()
            })
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        let a = loc_rib(&routes);
        let b = loc_rib(&shuffled);
        prop_assert_eq!(a, b);
    }
}
