//! Reference routers in namespaces (root only): BIRD ⇄ GoBGP, BIRD ⇄ FRR, FRR ⇄ FRR, the raw
//! peer against BIRD (routes, attributes, malformed UPDATEs), and feeder → BIRD → counting
//! receiver.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp_wire::{Community, LargeCommunity, NextHop, PathAttributes, Prefix};
use fabric_testkit::bgp_peer::raw::{raw_ipv4_nlri, raw_mandatory_attributes, raw_update};
use fabric_testkit::bgp_peer::{BgpPeer, Feed, FeedPlan, PeerConfig, ebgp_attributes};
use fabric_testkit::{Bird, Frr, GoBgp, Netns, veth, wait_until};

const SESSION: Duration = Duration::from_secs(30);
const ROUTES: Duration = Duration::from_secs(30);

/// Two namespaces joined by `va` (192.0.2.1/30) and `vb` (192.0.2.2/30).
fn two_namespaces(tag: &str) -> (Netns, Netns) {
    let a = Netns::new(tag);
    let b = Netns::new(tag);
    veth(&a, "va", &b, "vb");
    a.ip("addr add 192.0.2.1/30 dev va");
    b.ip("addr add 192.0.2.2/30 dev vb");
    (a, b)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn prefix(s: &str) -> Prefix {
    s.parse().unwrap()
}

/// BIRD in A (AS 65001) announcing its static /26 to `peer` (AS `peer_as`).
fn bird_a_config(peer_as: u32) -> String {
    format!(
        r#"router id 192.0.2.1;
protocol device {{ scan time 10; }}
protocol static pods {{
  ipv4;
  route 10.244.1.0/26 blackhole;
}}
protocol bgp peer_b {{
  local 192.0.2.1 as 65001;
  neighbor 192.0.2.2 as {peer_as};
  hold time 9; connect delay time 1; connect retry time 2;
  ipv4 {{ import all; export where source = RTS_STATIC; next hop self; }};
}}
"#
    )
}

fn bird_has(bird: &Bird, p: &str) -> bool {
    bird.routes("master4")
        .iter()
        .any(|r| r.prefix.to_string() == p && r.protocol == "peer_b")
}

#[test]
fn bird_and_gobgp_exchange_a_26_both_ways_over_ebgp() {
    let (a, b) = two_namespaces("bg");
    let bird = Bird::start(&a, &bird_a_config(65002)).unwrap();
    let gobgp = GoBgp::start(
        &b,
        r#"[global.config]
  as = 65002
  router-id = "192.0.2.2"
  local-address-list = ["192.0.2.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.0.2.1"
    peer-as = 65001
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 2
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#,
    )
    .unwrap();
    gobgp.wait_established("192.0.2.1", SESSION).unwrap();
    bird.wait_established("peer_b", SESSION).unwrap();
    assert!(
        wait_until(ROUTES, Duration::from_millis(200), || {
            gobgp.rib_prefixes("ipv4") == ["10.244.1.0/26"]
        }),
        "GoBGP RIB: {}; GoBGP log {}",
        gobgp.rib("ipv4"),
        gobgp.log_path().display()
    );
    gobgp
        .gobgp_text(&[
            "global",
            "rib",
            "add",
            "-a",
            "ipv4",
            "10.244.2.0/26",
            "nexthop",
            "192.0.2.2",
        ])
        .unwrap();
    assert!(
        wait_until(ROUTES, Duration::from_millis(200), || bird_has(
            &bird,
            "10.244.2.0/26"
        )),
        "BIRD routes: {}",
        bird.birdc("show route all")
    );
    let r = bird
        .routes("master4")
        .into_iter()
        .find(|r| r.prefix.to_string() == "10.244.2.0/26")
        .unwrap();
    assert_eq!(r.as_path, [65002]);
    assert_eq!(
        r.next_hops,
        ["192.0.2.2".parse::<std::net::IpAddr>().unwrap()]
    );
}

const FRR_B: &str = "frr defaults traditional
ip route 10.244.3.0/26 blackhole
!
router bgp 65002
 bgp router-id 192.0.2.2
 no bgp ebgp-requires-policy
 neighbor 192.0.2.1 remote-as 65001
 neighbor 192.0.2.1 timers 3 9
 neighbor 192.0.2.1 timers connect 2
 address-family ipv4 unicast
  network 10.244.3.0/26
 exit-address-family
!
";

#[test]
fn bird_and_frr_exchange_a_26_both_ways_over_ebgp() {
    let (a, b) = two_namespaces("bf");
    let bird = Bird::start(&a, &bird_a_config(65002)).unwrap();
    let frr = Frr::start(&b, FRR_B).unwrap();
    frr.wait_established("192.0.2.1", SESSION).unwrap();
    bird.wait_established("peer_b", SESSION).unwrap();
    assert!(
        wait_until(ROUTES, Duration::from_millis(200), || {
            frr.bgp_prefixes() == ["10.244.1.0/26", "10.244.3.0/26"]
        }),
        "FRR routes: {}; log {}",
        frr.bgp_routes_json(),
        frr.log_path().display()
    );
    assert!(
        wait_until(ROUTES, Duration::from_millis(200), || bird_has(
            &bird,
            "10.244.3.0/26"
        )),
        "BIRD routes: {}",
        bird.birdc("show route all")
    );
    // The route FRR learned from BIRD came over the session, with BIRD's AS.
    let routes = frr.bgp_routes_json();
    let path = &routes["routes"]["10.244.1.0/26"][0];
    assert_eq!(path["path"], "65001", "{path}");
}

#[test]
fn two_frr_instances_run_side_by_side_and_exchange_routes() {
    let (a, b) = two_namespaces("ff");
    let frr_a = Frr::start(
        &a,
        "frr defaults traditional
ip route 10.244.4.0/26 blackhole
!
router bgp 65001
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 neighbor 192.0.2.2 remote-as 65002
 neighbor 192.0.2.2 timers 3 9
 neighbor 192.0.2.2 timers connect 2
 address-family ipv4 unicast
  network 10.244.4.0/26
 exit-address-family
!
",
    )
    .unwrap();
    let frr_b = Frr::start(&b, FRR_B).unwrap();
    frr_a.wait_established("192.0.2.2", SESSION).unwrap();
    frr_b.wait_established("192.0.2.1", SESSION).unwrap();
    for frr in [&frr_a, &frr_b] {
        assert!(
            wait_until(ROUTES, Duration::from_millis(200), || {
                frr.bgp_prefixes() == ["10.244.3.0/26", "10.244.4.0/26"]
            }),
            "routes: {}; log {}",
            frr.bgp_routes_json(),
            frr.log_path().display()
        );
    }
    assert_ne!(frr_a.bgpd_pid(), frr_b.bgpd_pid());
}

/// BIRD in B (AS 65002) with a session to the raw peer in A; `extra` goes into the protocol.
fn bird_for_raw_peer(peer_as: u32, extra: &str) -> String {
    format!(
        r#"router id 192.0.2.2;
protocol device {{ }}
protocol bgp raw {{
  local 192.0.2.2 as 65002;
  neighbor 192.0.2.1 as {peer_as};
  {extra}
  ipv4 {{ import all; export all; }};
}}
"#
    )
}

fn raw_peer(ns: &Netns, asn: u32) -> BgpPeer {
    BgpPeer::connect_in(
        ns,
        addr("192.0.2.2:179"),
        PeerConfig::new(asn, Ipv4Addr::new(192, 0, 2, 1)),
    )
    .unwrap()
}

fn ten_prefixes() -> Vec<Prefix> {
    (0..10)
        .map(|i| prefix(&format!("10.50.{i}.0/24")))
        .collect()
}

#[test]
fn a_raw_peer_sends_ten_prefixes_and_bird_shows_them_with_their_attributes() {
    let (a, b) = two_namespaces("rb");
    let bird = Bird::start(&b, &bird_for_raw_peer(65001, "")).unwrap();
    let peer = raw_peer(&a, 65001);
    bird.wait_established("raw", SESSION).unwrap();
    let attrs = PathAttributes {
        multi_exit_disc: Some(7),
        communities: vec![Community::new(65001, 10), Community::new(65001, 20)],
        large_communities: vec![LargeCommunity {
            global_admin: 65001,
            local_data_1: 1,
            local_data_2: 2,
        }],
        ..ebgp_attributes(&[65001, 65100])
    };
    let nh = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    peer.announce(&attrs, nh, &ten_prefixes()).unwrap();
    assert!(
        wait_until(ROUTES, Duration::from_millis(100), || {
            bird.routes("master4").len() == 10
        }),
        "BIRD routes: {}",
        bird.birdc("show route all")
    );
    let routes = bird.routes("master4");
    let r = routes
        .iter()
        .find(|r| r.prefix == prefix("10.50.9.0/24"))
        .unwrap();
    assert_eq!(r.protocol, "raw");
    assert_eq!(r.as_path, [65001, 65100]);
    assert_eq!(r.med, Some(7));
    assert_eq!(r.origin.as_deref(), Some("IGP"));
    assert_eq!(r.communities, attrs.communities);
    assert_eq!(r.large_communities, attrs.large_communities);
    assert_eq!(bird.imported_routes("raw"), Some(10));
    let mut control = bird.control().unwrap();
    assert_eq!(control.imported_routes("raw"), Some(10));
    assert!(control.command("show nonsense").is_err());
    assert!(
        control
            .command("show status")
            .unwrap()
            .contains("Daemon is up and running")
    );
    // Withdrawing three leaves seven.
    peer.withdraw(&ten_prefixes()[..3]).unwrap();
    assert!(wait_until(ROUTES, Duration::from_millis(100), || {
        bird.routes("master4").len() == 7
    }));
}

#[test]
fn bird_keeps_originator_id_and_cluster_list_from_an_ibgp_raw_peer() {
    let (a, b) = two_namespaces("ri");
    let bird = Bird::start(&b, &bird_for_raw_peer(65002, "direct;")).unwrap();
    let peer = raw_peer(&a, 65002);
    bird.wait_established("raw", SESSION).unwrap();
    let attrs = PathAttributes {
        local_pref: Some(200),
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 7)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
        ..ebgp_attributes(&[])
    };
    peer.announce(
        &attrs,
        NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)),
        &[prefix("10.60.0.0/24")],
    )
    .unwrap();
    assert!(
        wait_until(ROUTES, Duration::from_millis(100), || {
            !bird.routes("master4").is_empty()
        }),
        "BIRD routes: {}",
        bird.birdc("show route all")
    );
    let r = &bird.routes("master4")[0];
    assert_eq!(r.originator_id, attrs.originator_id);
    assert_eq!(r.cluster_list, attrs.cluster_list);
    assert_eq!(r.local_pref, Some(200));
    assert!(r.as_path.is_empty());
}

#[test]
fn bird_sends_hold_timer_expired_when_the_raw_peer_stops_its_keepalives() {
    let (a, b) = two_namespaces("rh");
    let bird = Bird::start(&b, &bird_for_raw_peer(65001, "hold time 3;")).unwrap();
    let peer = BgpPeer::connect_in(
        &a,
        addr("192.0.2.2:179"),
        PeerConfig::new(65001, Ipv4Addr::new(192, 0, 2, 1)).hold_time(3),
    )
    .unwrap();
    bird.wait_established("raw", SESSION).unwrap();
    assert_eq!(peer.with_state(|s| s.negotiated_hold_time), Some(3));
    // While KEEPALIVEs flow the session outlives several hold times.
    peer.wait_for(SESSION, |s| s.keepalives_received >= 4)
        .unwrap();
    assert!(peer.with_state(|s| !s.closed && s.notifications.is_empty()));
    peer.set_keepalives(false);
    peer.wait_for(SESSION, |s| s.closed).unwrap();
    assert_eq!(peer.with_state(|s| s.last_notification()), Some((4, 0)));
}

/// An UPDATE for 10.70.0.0/24 from AS 65001 with ORIGIN `origin`.
fn update_with_origin(origin: u8) -> Vec<u8> {
    raw_update(
        &[],
        &raw_mandatory_attributes(origin, &[65001], Ipv4Addr::new(192, 0, 2, 1)),
        &raw_ipv4_nlri(Ipv4Addr::new(10, 70, 0, 0), 24),
    )
}

#[test]
fn bird_treats_an_update_with_a_bad_origin_as_withdraw_and_keeps_the_session() {
    let (a, b) = two_namespaces("ro");
    let bird = Bird::start(&b, &bird_for_raw_peer(65001, "")).unwrap();
    let peer = raw_peer(&a, 65001);
    bird.wait_established("raw", SESSION).unwrap();
    peer.send_raw(&update_with_origin(0)).unwrap();
    assert!(wait_until(ROUTES, Duration::from_millis(100), || {
        bird.imported_routes("raw") == Some(1)
    }));
    // ORIGIN 5 is not IGP/EGP/INCOMPLETE: RFC 7606 §7.1 says treat-as-withdraw, and BIRD 2
    // does exactly that: the route goes away, no NOTIFICATION, the session stays up.
    peer.send_raw(&update_with_origin(5)).unwrap();
    assert!(
        wait_until(ROUTES, Duration::from_millis(100), || {
            bird.imported_routes("raw") == Some(0)
        }),
        "BIRD routes: {}; log {}",
        bird.birdc("show route all"),
        bird.log_path().display()
    );
    // A later well-formed UPDATE is accepted again: the session really is intact.
    peer.send_raw(&update_with_origin(2)).unwrap();
    assert!(wait_until(ROUTES, Duration::from_millis(100), || {
        bird.imported_routes("raw") == Some(1)
    }));
    peer.with_state(|s| {
        assert!(s.notifications.is_empty(), "{}", s.summary());
        assert!(!s.closed);
    });
    assert_eq!(bird.protocol_state("raw").as_deref(), Some("Established"));
    let log = std::fs::read_to_string(bird.log_path()).unwrap();
    assert!(log.contains("ORIGIN"), "BIRD logs the bad attribute: {log}");
}

#[test]
fn feeder_to_bird_to_counting_receiver_carries_ten_thousand_prefixes() {
    let feeder = Netns::new("ff");
    let dut = Netns::new("fd");
    let receiver = Netns::new("fr");
    veth(&feeder, "feed0", &dut, "dutf0");
    veth(&dut, "dutr0", &receiver, "recv0");
    feeder.ip("addr add 192.0.2.1/30 dev feed0");
    dut.ip("addr add 192.0.2.2/30 dev dutf0");
    dut.ip("addr add 192.0.2.5/30 dev dutr0");
    receiver.ip("addr add 192.0.2.6/30 dev recv0");
    let bird = Bird::start(
        &dut,
        r#"router id 192.0.2.2;
protocol device { }
protocol bgp feeder {
  local 192.0.2.2 as 65002; neighbor 192.0.2.1 as 65001;
  ipv4 { import all; export all; };
}
protocol bgp receiver {
  local 192.0.2.5 as 65002; neighbor 192.0.2.6 as 65003;
  ipv4 { import all; export all; next hop self; };
}
"#,
    )
    .unwrap();
    let n = 10_000;
    let rx = BgpPeer::connect_in(
        &receiver,
        addr("192.0.2.5:179"),
        PeerConfig::new(65003, Ipv4Addr::new(192, 0, 2, 6)).counting(n),
    )
    .unwrap();
    let tx = BgpPeer::connect_in(
        &feeder,
        addr("192.0.2.2:179"),
        PeerConfig::new(65001, Ipv4Addr::new(192, 0, 2, 1)),
    )
    .unwrap();
    let plan = FeedPlan::new(n as u32, &[65001], Ipv4Addr::new(192, 0, 2, 1));
    let feed = Feed::build(&plan, &tx.context()).unwrap();
    let report = tx.send_feed(&feed).unwrap();
    rx.wait_for(Duration::from_secs(60), |s| s.target_reached_at.is_some())
        .unwrap();
    rx.with_state(|s| {
        assert_eq!(s.held(), n);
        assert!(s.target_reached_at.unwrap() > report.started);
        assert!(s.has_prefix(plan.prefix(0).unwrap().into()));
    });
    assert_eq!(bird.imported_routes("feeder"), Some(n as u64));
}
