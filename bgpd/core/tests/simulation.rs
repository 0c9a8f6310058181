//! Simulations on a virtual clock: an iBGP full mesh, route reflectors with many clients,
//! link cuts and heals, nodes leaving and joining. No sockets, no sleeps.
#![allow(clippy::unwrap_used)]

mod harness;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgpd_core::{Input, OriginAttributes, PeerConfig, Speaker, SpeakerConfig};
use harness::Net;

const AS: u32 = 64512;

fn node_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 1) as u8))
}

/// The /26 block node `i` originates.
fn block(i: usize) -> String {
    format!(
        "10.{}.{}.{}/26",
        100 + i / 1024,
        (i / 4) % 256,
        (i % 4) * 64
    )
}

fn config(ip: IpAddr, hold: u64) -> SpeakerConfig {
    let IpAddr::V4(id) = ip else { unreachable!() };
    let mut cfg = SpeakerConfig::new(id, AS);
    cfg.hold_time = Duration::from_secs(hold);
    cfg
}

fn originate(net: &mut Net, i: usize) {
    net.input(
        i,
        Input::Originate {
            prefix: block(i).parse().unwrap(),
            attrs: OriginAttributes::default(),
        },
    );
}

/// Calico's mesh peering: the side with the higher address is passive.
fn mesh_peer(me: IpAddr, other: IpAddr) -> PeerConfig {
    let mut p = PeerConfig::new(other, AS);
    p.passive = other > me;
    p
}

fn full_mesh(n: usize, hold: u64) -> Net {
    let mut net = Net::new();
    for i in 0..n {
        net.add_node(Speaker::new(config(node_ip(i), hold)).unwrap(), node_ip(i));
    }
    for i in 0..n {
        originate(&mut net, i);
        for j in 0..n {
            if i != j {
                net.add_peer(i, mesh_peer(node_ip(i), node_ip(j)));
            }
        }
    }
    net
}

/// What every node should have: every live node's block via that node's address.
fn expected(net: &Net) -> BTreeMap<String, IpAddr> {
    net.live()
        .into_iter()
        .map(|i| (block(i), net.ip(i)))
        .collect()
}

fn assert_converged(net: &Net) {
    let want = expected(net);
    for i in net.live() {
        assert_eq!(net.best_routes(i), want, "node {i} ({})", net.ip(i));
    }
}

#[test]
fn a_50_speaker_ibgp_full_mesh_converges_to_identical_loc_ribs() {
    let mut net = full_mesh(50, 240);
    net.run_for(Duration::from_secs(10));
    assert_converged(&net);
    for i in net.live() {
        let sp = net.node(i);
        assert!(
            sp.peers()
                .iter()
                .all(|p| p.state == bgpd_core::State::Established)
        );
    }
}

/// Two reflectors (nodes 0 and 1, one cluster id, peering as non-clients) and `clients`
/// clients (nodes 2..) each peering with both and originating its block.
fn reflectors(clients: usize, hold: u64) -> Net {
    let mut net = Net::new();
    let rrs = [0usize, 1];
    for i in 0..clients + 2 {
        let mut cfg = config(node_ip(i), hold);
        if rrs.contains(&i) {
            cfg.cluster_id = Some(CLUSTER);
        }
        net.add_node(Speaker::new(cfg).unwrap(), node_ip(i));
    }
    for rr in rrs {
        let other = 1 - rr;
        net.add_peer(rr, PeerConfig::new(node_ip(other), AS));
        for c in 2..clients + 2 {
            let mut p = PeerConfig::new(node_ip(c), AS);
            p.route_reflector_client = true;
            net.add_peer(rr, p);
        }
    }
    for c in 2..clients + 2 {
        originate(&mut net, c);
        for rr in rrs {
            net.add_peer(c, PeerConfig::new(node_ip(rr), AS));
        }
    }
    net
}

const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);

#[test]
fn two_route_reflectors_sharing_a_cluster_id_serve_200_clients() {
    let clients = 200;
    let cluster = CLUSTER;
    let mut net = reflectors(clients, 240);
    net.run_for(Duration::from_secs(10));
    let want: BTreeMap<String, IpAddr> = (2..clients + 2).map(|c| (block(c), node_ip(c))).collect();
    for i in net.live() {
        assert_eq!(net.best_routes(i), want, "node {i}");
    }
    // A client holds two paths (one per reflector) with the originator and our cluster id.
    let sp = net.node(7);
    let r = sp.route(&block(2).parse().unwrap()).unwrap();
    assert_eq!(r.paths.len(), 2);
    for p in &r.paths {
        assert_eq!(p.attrs.path.originator_id, Some(Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!(p.attrs.path.cluster_list, vec![cluster]);
    }
    // The reflectors do not take each other's reflections (cluster id loop).
    let rr0 = net.node(0);
    let from_rr1 = rr0.adj_rib_in(node_ip(1), true);
    assert!(from_rr1.is_empty(), "{from_rr1:?}");
}

#[test]
fn cutting_a_link_withdraws_over_hold_expiry_and_healing_restores_it() {
    let n = 8;
    let mut net = full_mesh(n, 9);
    net.run_for(Duration::from_secs(5));
    assert_converged(&net);
    net.cut(0, 1);
    net.run_for(Duration::from_secs(15));
    // iBGP without reflection: 0 and 1 lose each other's block, nobody else is affected.
    let r0 = net.best_routes(0);
    let r1 = net.best_routes(1);
    assert!(!r0.contains_key(&block(1)) && !r1.contains_key(&block(0)));
    assert_eq!(r0.len(), n - 1);
    for i in 2..n {
        assert_eq!(net.best_routes(i), expected(&net));
    }
    let p = net.node(0).peer_status(node_ip(1)).unwrap();
    assert!(matches!(
        p.last_error,
        Some((_, bgpd_core::DownReason::NotificationSent { .. }))
    ));
    net.heal(0, 1);
    // Idle hold (5 s), connect retry (5 s) and the handshake.
    net.run_for(Duration::from_secs(40));
    assert_converged(&net);
}

#[test]
fn a_node_leaving_and_joining_converges_again() {
    let n = 10;
    let mut net = full_mesh(n, 240);
    net.run_for(Duration::from_secs(5));
    assert_converged(&net);
    // Node 9 shuts down (Cease to everyone) and is removed from every peer list.
    net.input(9, Input::Shutdown { restart: false });
    net.run_for(Duration::from_secs(1));
    net.remove_node(9);
    for i in 0..9 {
        net.input(i, Input::RemovePeer(node_ip(9)));
    }
    net.run_for(Duration::from_secs(5));
    assert_converged(&net);
    assert!(!net.best_routes(0).contains_key(&block(9)));
    // A new node joins with the next index.
    let j = net.add_node(Speaker::new(config(node_ip(10), 240)).unwrap(), node_ip(10));
    originate(&mut net, j);
    for i in 0..9 {
        net.add_peer(j, mesh_peer(node_ip(j), node_ip(i)));
        net.add_peer(i, mesh_peer(node_ip(i), node_ip(j)));
    }
    net.run_for(Duration::from_secs(10));
    assert_converged(&net);
    assert_eq!(net.best_routes(0).len(), 10);
}

#[test]
fn a_graceful_restart_keeps_routes_until_the_node_is_back() {
    let n = 5;
    let mut net = full_mesh(n, 240);
    net.run_for(Duration::from_secs(5));
    net.input(4, Input::Shutdown { restart: true });
    net.run_for(Duration::from_secs(1));
    net.remove_node(4);
    // The others keep node 4's block (stale) during its restart time.
    net.run_for(Duration::from_secs(30));
    for i in 0..4 {
        assert!(net.best_routes(i).contains_key(&block(4)));
    }
    let mut cfg = config(node_ip(4), 240);
    cfg.graceful_restart.restarting = true;
    let j = net.add_node(Speaker::new(cfg).unwrap(), node_ip(4));
    assert_eq!(j, 5);
    // The restarted node comes back at the same address; the others' configs are unchanged.
    for i in 0..4 {
        net.add_peer(j, mesh_peer(node_ip(4), node_ip(i)));
    }
    net.input(
        j,
        Input::Originate {
            prefix: block(4).parse().unwrap(),
            attrs: OriginAttributes::default(),
        },
    );
    net.run_for(Duration::from_secs(20));
    for i in net.live() {
        let got = net.best_routes(i);
        assert_eq!(got.len(), 5, "node {i}: {got:?}");
        assert_eq!(got[&block(4)], node_ip(4));
        assert!(
            got.iter()
                .all(|(p, nh)| *p == block(4) || *nh != node_ip(4))
        );
    }
}

#[test]
fn a_client_cut_from_one_reflector_keeps_every_route_through_the_other() {
    let clients = 10;
    let mut net = reflectors(clients, 9);
    net.run_for(Duration::from_secs(5));
    let want: BTreeMap<String, IpAddr> = (2..clients + 2).map(|c| (block(c), node_ip(c))).collect();
    net.cut(0, 2);
    net.run_for(Duration::from_secs(15));
    for i in 2..clients + 2 {
        assert_eq!(net.best_routes(i), want, "client {i}");
    }
    // Reflector 0 does not take client 2's block from reflector 1: same cluster id, so the
    // CLUSTER_LIST loop check drops it (RFC 4456 §8; Calico issue 2735).
    let mut without = want.clone();
    without.remove(&block(2));
    assert_eq!(net.best_routes(0), without);
    // Client 2 now has one path per remote block; the others still two.
    assert_eq!(
        net.node(2)
            .route(&block(3).parse().unwrap())
            .unwrap()
            .paths
            .len(),
        1
    );
    assert_eq!(
        net.node(3)
            .route(&block(4).parse().unwrap())
            .unwrap()
            .paths
            .len(),
        2
    );
    net.heal(0, 2);
    net.run_for(Duration::from_secs(40));
    assert_eq!(
        net.node(2)
            .route(&block(3).parse().unwrap())
            .unwrap()
            .paths
            .len(),
        2
    );
    for i in net.live() {
        assert_eq!(net.best_routes(i), want, "node {i}");
    }
}
