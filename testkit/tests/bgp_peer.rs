//! The raw BGP peer against itself on loopback: handshake, routes, NOTIFICATIONs, KEEPALIVE
//! cadence, raw bytes, ADD-PATH, and the feeder driving a counting receiver. No root needed.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use bgp_wire::{AddPathMode, AfiSafi, NextHop, Nlri, Notification, Prefix, SessionContext};
use fabric_testkit::bgp_peer::raw::{raw_ipv4_nlri, raw_mandatory_attributes, raw_update};
use fabric_testkit::bgp_peer::{BgpPeer, Feed, FeedPlan, PeerConfig, PeerError, ebgp_attributes};

const WAIT: Duration = Duration::from_secs(10);

fn rid(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

/// A listening peer (accepting on a thread) and a connecting peer, both Established.
fn pair(server: PeerConfig, client: PeerConfig) -> (BgpPeer, BgpPeer) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepting = std::thread::spawn(move || BgpPeer::accept(&listener, server).unwrap());
    let client = BgpPeer::connect(addr, client).unwrap();
    (accepting.join().unwrap(), client)
}

fn prefixes(n: u32) -> Vec<Prefix> {
    (0..n)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap())
        .collect()
}

#[test]
fn two_raw_peers_establish_and_apply_announcements_and_withdrawals() {
    let (server, client) = pair(
        PeerConfig::new(65002, rid(2)),
        PeerConfig::new(65001, rid(1)),
    );
    assert!(client.context().four_octet_as);
    let nh = NextHop::V4(rid(1));
    client
        .announce(&ebgp_attributes(&[65001]), nh, &prefixes(10))
        .unwrap();
    client.withdraw(&prefixes(3)).unwrap();
    client.send_end_of_rib(AfiSafi::IPV4_UNICAST).unwrap();
    server
        .wait_for(WAIT, |s| s.end_of_rib.contains(&AfiSafi::IPV4_UNICAST))
        .unwrap();
    server.with_state(|s| {
        assert_eq!(s.held(), 7);
        assert!(!s.has_prefix("10.0.2.0/24".parse().unwrap()));
        let r = s.route("10.0.9.0/24".parse().unwrap()).unwrap();
        assert_eq!(r.next_hop, Some(nh));
        assert_eq!(
            r.attributes.as_path.as_ref().unwrap().first_asn(),
            Some(65001)
        );
        assert!(s.decode_errors.is_empty(), "{:?}", s.decode_errors);
    });
}

#[test]
fn a_notification_and_the_connection_close_are_recorded() {
    let (server, client) = pair(
        PeerConfig::new(65002, rid(2)),
        PeerConfig::new(65001, rid(1)),
    );
    client
        .send_notification(Notification::with_shutdown_communication(2, "maintenance").unwrap())
        .unwrap();
    client.close();
    server.wait_for(WAIT, |s| s.closed).unwrap();
    server.with_state(|s| {
        assert_eq!(s.last_notification(), Some((6, 2)));
        assert_eq!(
            s.notifications[0].shutdown_communication(),
            Some("maintenance")
        );
    });
}

#[test]
fn keepalives_follow_a_third_of_the_hold_time_until_stopped() {
    let (server, client) = pair(
        PeerConfig::new(65002, rid(2)).hold_time(3),
        PeerConfig::new(65001, rid(1)).hold_time(30),
    );
    assert_eq!(client.with_state(|s| s.negotiated_hold_time), Some(3));
    let before = server.with_state(|s| s.keepalives_received);
    server
        .wait_for(WAIT, |s| s.keepalives_received >= before + 2)
        .unwrap();
    client.set_keepalives(false);
    // One KEEPALIVE may already be on its way; after that, none for longer than the interval.
    let stopped = server.with_state(|s| s.keepalives_received) + 1;
    let more = server.wait_for(Duration::from_millis(2500), |s| {
        s.keepalives_received > stopped
    });
    assert!(matches!(more, Err(PeerError::Timeout { .. })), "{more:?}");
}

#[test]
fn raw_bytes_with_a_broken_marker_are_a_framing_error_for_the_receiver() {
    let (server, client) = pair(
        PeerConfig::new(65002, rid(2)),
        PeerConfig::new(65001, rid(1)),
    );
    let mut bytes = raw_update(&[], &[], &[]);
    bytes[3] = 0;
    client.send_raw(&bytes).unwrap();
    server.wait_for(WAIT, |s| s.closed).unwrap();
    server.with_state(|s| {
        assert_eq!(
            (s.decode_errors[0].code, s.decode_errors[0].subcode),
            (1, 1)
        );
        assert!(s.close_reason.as_deref().unwrap().contains("framing"));
    });
}

#[test]
fn a_bad_origin_update_withdraws_the_route_it_names() {
    let (server, client) = pair(
        PeerConfig::new(65002, rid(2)),
        PeerConfig::new(65001, rid(1)),
    );
    let p: Prefix = "10.1.2.0/24".parse().unwrap();
    client
        .announce(&ebgp_attributes(&[65001]), NextHop::V4(rid(1)), &[p])
        .unwrap();
    server.wait_for(WAIT, |s| s.has_prefix(p)).unwrap();
    client
        .send_raw(&raw_update(
            &[],
            &raw_mandatory_attributes(9, &[65001], rid(1)),
            &raw_ipv4_nlri(Ipv4Addr::new(10, 1, 2, 0), 24),
        ))
        .unwrap();
    server.wait_for(WAIT, |s| !s.has_prefix(p)).unwrap();
    server.with_state(|s| {
        let e = &s.decode_errors[0];
        assert_eq!((e.code, e.subcode), (3, 6), "INVALID_ORIGIN");
        assert!(!s.closed);
    });
}

#[test]
fn add_path_in_both_directions_keeps_two_paths_for_one_prefix() {
    let cfg =
        |asn, id| PeerConfig::new(asn, rid(id)).add_path(AfiSafi::IPV4_UNICAST, AddPathMode::Both);
    let (server, client) = pair(cfg(65002, 2), cfg(65001, 1));
    assert!(
        client
            .context()
            .add_path_send
            .contains(AfiSafi::IPV4_UNICAST)
    );
    let p: Prefix = "10.9.0.0/16".parse().unwrap();
    let nlri = [Nlri::with_path_id(p, 1), Nlri::with_path_id(p, 2)];
    client
        .announce_nlri(
            AfiSafi::IPV4_UNICAST,
            &ebgp_attributes(&[65001]),
            NextHop::V4(rid(1)),
            &nlri,
        )
        .unwrap();
    server.wait_for(WAIT, |s| s.held() == 2).unwrap();
}

#[test]
fn an_open_without_the_peers_families_still_establishes_and_records_both_opens() {
    let (server, client) = pair(
        PeerConfig::new(65002, rid(2)).family(AfiSafi::IPV6_UNICAST),
        PeerConfig::new(4_200_000_001, rid(1))
            .graceful_restart(120, &[(AfiSafi::IPV4_UNICAST, true)]),
    );
    server.with_state(|s| {
        let remote = s.remote_open.as_ref().unwrap();
        assert_eq!(remote.asn(), 4_200_000_001);
        assert!(remote.has_capability(64));
    });
    assert!(client.with_state(|s| s.remote_open.as_ref().unwrap().multiprotocol().count() == 2));
}

#[test]
fn a_feed_of_fifty_thousand_prefixes_reaches_a_counting_receiver() {
    for plan in [
        FeedPlan::new(50_000, &[65001], rid(1)),
        FeedPlan::new(50_000, &[65001], rid(1))
            .host_routes()
            .attribute_sets(1_000),
    ] {
        let (receiver, feeder) = pair(
            PeerConfig::new(65003, rid(6)).counting(50_000),
            PeerConfig::new(65001, rid(1)),
        );
        let feed = Feed::build(&plan, &feeder.context()).unwrap();
        let report = feeder.send_feed(&feed).unwrap();
        assert_eq!(report.prefixes, 50_000);
        receiver
            .wait_for(WAIT, |s| s.target_reached_at.is_some())
            .unwrap();
        receiver.with_state(|s| {
            assert_eq!(s.held(), 50_000);
            assert!(s.target_reached_at.unwrap() >= report.started);
            assert!(s.has_prefix(plan.prefix(49_999).unwrap().into()));
            assert!(s.routes.is_empty(), "counting mode keeps no attributes");
        });
    }
}

#[test]
fn a_feed_built_for_another_session_context_is_refused_before_writing() {
    let (_server, client) = pair(
        PeerConfig::new(65002, rid(2)),
        PeerConfig::new(65001, rid(1)),
    );
    let feed = Feed::build(
        &FeedPlan::new(10, &[65001], rid(1)),
        &SessionContext::default(),
    )
    .unwrap();
    let err = client.send_feed(&feed).unwrap_err();
    assert!(matches!(err, PeerError::FeedContext { .. }), "{err}");
}

#[test]
fn connecting_to_a_port_nobody_listens_on_fails_at_the_deadline() {
    let addr: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = BgpPeer::connect(
        addr,
        PeerConfig::new(65001, rid(1)).timeout(Duration::from_millis(300)),
    )
    .unwrap_err();
    assert!(matches!(err, PeerError::NoConnection { .. }), "{err}");
}
