//! Session FSM tests (RFC 4271 §8): transitions, timers, collision detection, idle hold.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bgp_wire::{AfiSafi, Capability, Message, iana::error_code};
use bgpd_core::test_peer::sent_on;
use bgpd_core::{Action, DownReason, Input, Instant, PeerConfig, SpeakerConfig, State};
use common::*;

#[test]
fn an_active_peer_connects_and_reaches_established() {
    let mut sp = speaker("10.0.0.1");
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    let out = add(&mut sp, secs(0), PeerConfig::new(tp.address, LOCAL_AS));
    let conn = connects(&out)[0];
    assert_eq!(state(&sp, tp.address), State::Connect);
    let mut out = Vec::new();
    let local = SocketAddr::new(ip("10.0.0.1"), 40001);
    sp.handle(
        secs(1),
        Input::Connected {
            conn,
            local,
            remote: tp.socket(),
        },
        &mut out,
    )
    .unwrap();
    let Some(Message::Open(open)) = raw_messages(&out, conn).into_iter().next() else {
        panic!("no OPEN: {out:?}")
    };
    assert_eq!(open.hold_time, 240);
    assert!(
        open.capabilities
            .contains(&Capability::Multiprotocol(AfiSafi::IPV4_UNICAST))
    );
    assert!(open.capabilities.contains(&Capability::RouteRefresh));
    assert_eq!(state(&sp, tp.address), State::OpenSent);
    tp.ctx = bgp_wire::SessionContext::negotiate(&tp.open_message(), &open, tp.kind);
    let open_frame = Message::Open(tp.open_message())
        .encode(&Default::default())
        .unwrap();
    let out = tp.deliver(&mut sp, secs(1), conn, vec![open_frame]);
    assert_eq!(tp.messages(&out, conn), vec![Message::Keepalive]);
    assert_eq!(state(&sp, tp.address), State::OpenConfirm);
    let out = tp.deliver(&mut sp, secs(1), conn, vec![tp.keepalive()]);
    assert_eq!(state(&sp, tp.address), State::Established);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::SessionEstablished {
            max_message_len: 4096,
            ..
        }
    )));
    // The initial advertisement is empty and ends with End-of-RIB.
    let updates = tp.updates(&out, conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].as_end_of_rib(), Some(AfiSafi::IPV4_UNICAST));
    let status = sp.peer_status(tp.address).unwrap();
    let s = status.session.unwrap();
    assert_eq!(s.hold_time, Duration::from_secs(90));
    assert_eq!(s.keepalive, Duration::from_secs(30));
    assert!(s.four_octet_as && s.enhanced_route_refresh);
}

#[test]
fn a_passive_peer_never_connects_but_accepts() {
    let mut sp = speaker("10.0.0.1");
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    let mut cfg = PeerConfig::new(tp.address, LOCAL_AS);
    cfg.passive = true;
    let out = add(&mut sp, secs(0), cfg);
    assert!(connects(&out).is_empty());
    let later = run_timers(&mut sp, secs(3600));
    assert!(
        later
            .iter()
            .all(|(_, a)| !matches!(a, Action::Connect { .. }))
    );
    assert_eq!(state(&sp, tp.address), State::Active);
    tp.establish(&mut sp, secs(3600), SocketAddr::new(ip("10.0.0.1"), 179));
    assert_eq!(state(&sp, tp.address), State::Established);
}

#[test]
fn an_unknown_peer_is_refused() {
    let mut sp = speaker("10.0.0.1");
    let mut out = Vec::new();
    let conn = sp.accept(
        secs(0),
        "10.0.0.1:179".parse().unwrap(),
        "10.9.9.9:5000".parse().unwrap(),
        &mut out,
    );
    assert_eq!(out, vec![Action::Close { conn }]);
}

#[test]
fn a_failed_connect_is_retried_after_the_connect_retry_time() {
    let mut sp = speaker("10.0.0.1");
    let out = add(&mut sp, secs(0), PeerConfig::new(ip("10.0.0.2"), LOCAL_AS));
    let first = connects(&out)[0];
    let mut out = Vec::new();
    sp.handle(secs(1), Input::ConnectFailed { conn: first }, &mut out)
        .unwrap();
    assert_eq!(state(&sp, ip("10.0.0.2")), State::Active);
    assert_eq!(sp.next_deadline(), Some(secs(5)));
    let fired = run_timers(&mut sp, secs(5));
    assert_eq!(
        fired
            .iter()
            .filter(|(_, a)| matches!(a, Action::Connect { .. }))
            .count(),
        1
    );
    assert_eq!(state(&sp, ip("10.0.0.2")), State::Connect);
}

#[test]
fn hold_timer_expiry_sends_notification_4_0_and_takes_the_session_down() {
    let mut sp = speaker("10.0.0.1");
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    let (conn, _) = up(&mut sp, secs(0), &mut tp, "10.0.0.1", |_| {});
    let fired = run_timers(&mut sp, secs(89));
    assert!(
        fired
            .iter()
            .all(|(_, a)| !matches!(a, Action::Close { .. }))
    );
    let fired: Vec<Action> = run_timers(&mut sp, secs(90))
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let n = notifications(&fired, conn);
    assert_eq!(
        (n[0].code, n[0].subcode),
        (error_code::HOLD_TIMER_EXPIRED, 0)
    );
    assert!(closed(&fired, conn));
    assert!(fired.iter().any(|a| matches!(
        a,
        Action::SessionDown {
            reason: DownReason::NotificationSent { .. },
            ..
        }
    )));
    assert_eq!(state(&sp, tp.address), State::Idle);
}

#[test]
fn keepalives_are_sent_every_third_of_the_hold_time_and_traffic_resets_the_hold_timer() {
    let mut sp = speaker("10.0.0.1");
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    let (conn, _) = up(&mut sp, secs(0), &mut tp, "10.0.0.1", |_| {});
    let mut at = Vec::new();
    for t in (10..=200).step_by(10) {
        // The peer's keepalives keep the session up.
        if t % 30 == 0 {
            tp.deliver(&mut sp, secs(t), conn, vec![tp.keepalive()]);
        }
        for (when, a) in run_timers(&mut sp, secs(t)) {
            if let Action::Send { frames, .. } = a {
                for f in frames {
                    if tp.decode(&f) == Some(Message::Keepalive) {
                        at.push(when);
                    }
                }
            }
        }
    }
    assert_eq!(at, (1..=6).map(|i| secs(30 * i)).collect::<Vec<_>>());
    assert_eq!(state(&sp, tp.address), State::Established);
}

#[test]
fn a_zero_hold_time_means_no_keepalives_and_no_hold_timer() {
    let mut sp = speaker("10.0.0.1");
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    tp.hold_time = 0;
    up(&mut sp, secs(0), &mut tp, "10.0.0.1", |_| {});
    assert_eq!(sp.next_deadline(), None);
    let s = sp.peer_status(tp.address).unwrap().session.unwrap();
    assert_eq!((s.hold_time, s.keepalive), (Duration::ZERO, Duration::ZERO));
}

/// Speaker with `local_id` and peer `10.0.0.2` with `peer_id`: an outbound connection in
/// OpenSent and an inbound one; the peer sends OPEN on both. Returns (outbound, inbound, actions).
fn collide(
    local_id: &str,
    peer_id: &str,
) -> (
    bgpd_core::ConnId,
    bgpd_core::ConnId,
    Vec<Action>,
    bgpd_core::Speaker,
) {
    let mut sp = speaker(local_id);
    let tp = ibgp_peer("10.0.0.2", peer_id);
    let out = add(&mut sp, secs(0), PeerConfig::new(tp.address, LOCAL_AS));
    let outbound = connects(&out)[0];
    let mut out = Vec::new();
    let local = SocketAddr::new(ip("10.0.0.1"), 40001);
    sp.handle(
        secs(0),
        Input::Connected {
            conn: outbound,
            local,
            remote: "10.0.0.2:179".parse().unwrap(),
        },
        &mut out,
    )
    .unwrap();
    let inbound = sp.accept(
        secs(0),
        "10.0.0.1:179".parse().unwrap(),
        tp.socket(),
        &mut out,
    );
    let open = Message::Open(tp.open_message())
        .encode(&Default::default())
        .unwrap();
    for conn in [outbound, inbound] {
        sp.handle(
            secs(1),
            Input::Received {
                conn,
                frame: open.clone(),
            },
            &mut out,
        )
        .unwrap();
    }
    (outbound, inbound, out, sp)
}

#[test]
fn collision_keeps_the_inbound_connection_when_the_peer_has_the_higher_identifier() {
    let (outbound, inbound, out, _) = collide("10.0.0.1", "10.0.0.9");
    let n = notifications(&out, outbound);
    assert_eq!(
        (n[0].code, n[0].subcode),
        (
            error_code::CEASE,
            error_code::cease::CONNECTION_COLLISION_RESOLUTION
        )
    );
    assert!(closed(&out, outbound));
    assert!(!closed(&out, inbound));
}

#[test]
fn collision_keeps_the_outbound_connection_when_we_have_the_higher_identifier() {
    let (outbound, inbound, out, mut sp) = collide("10.0.0.9", "10.0.0.2");
    let n = notifications(&out, inbound);
    assert_eq!(
        (n[0].code, n[0].subcode),
        (
            error_code::CEASE,
            error_code::cease::CONNECTION_COLLISION_RESOLUTION
        )
    );
    assert!(closed(&out, inbound));
    assert!(!closed(&out, outbound));
    // The survivor goes on to Established.
    let tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    tp.deliver(&mut sp, secs(2), outbound, vec![tp.keepalive()]);
    assert_eq!(state(&sp, tp.address), State::Established);
}

#[test]
fn a_connection_colliding_with_an_established_session_is_closed() {
    let mut sp = speaker("10.0.0.1");
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    // Without graceful restart the established session wins.
    tp.capabilities
        .retain(|c| !matches!(c, Capability::GracefulRestart(_)));
    let (old, _) = up(&mut sp, secs(0), &mut tp, "10.0.0.1", |_| {});
    let mut out = Vec::new();
    let new = sp.accept(
        secs(5),
        "10.0.0.1:179".parse().unwrap(),
        tp.socket(),
        &mut out,
    );
    let open = Message::Open(tp.open_message())
        .encode(&Default::default())
        .unwrap();
    sp.handle(
        secs(5),
        Input::Received {
            conn: new,
            frame: open,
        },
        &mut out,
    )
    .unwrap();
    let n = notifications(&out, new);
    assert_eq!(
        n[0].subcode,
        error_code::cease::CONNECTION_COLLISION_RESOLUTION
    );
    assert!(closed(&out, new) && !closed(&out, old));
    assert_eq!(state(&sp, tp.address), State::Established);
}

#[test]
fn idle_hold_doubles_after_each_error_up_to_the_cap() {
    let mut cfg = SpeakerConfig::new(v4("10.0.0.1"), LOCAL_AS);
    cfg.idle_hold_initial = Duration::from_secs(5);
    cfg.idle_hold_max = Duration::from_secs(30);
    let mut sp = speaker_with(cfg);
    let tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    let out = add(&mut sp, secs(0), PeerConfig::new(tp.address, LOCAL_AS));
    let mut conn = connects(&out)[0];
    let mut now = secs(0);
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let mut out = Vec::new();
        let local = SocketAddr::new(ip("10.0.0.1"), 40001);
        sp.handle(
            now,
            Input::Connected {
                conn,
                local,
                remote: tp.socket(),
            },
            &mut out,
        )
        .unwrap();
        // The peer rejects us with a NOTIFICATION (an error: idle hold follows).
        sp.handle(
            now,
            Input::Received {
                conn,
                frame: tp.notification(error_code::OPEN_MESSAGE, 0),
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(state(&sp, tp.address), State::Idle);
        let (at, next) = next_connect(&mut sp);
        gaps.push((at.as_millis() - now.as_millis()) / 1000);
        now = at;
        conn = next;
    }
    assert_eq!(gaps, vec![5, 10, 20, 30, 30, 30]);
}

#[test]
fn unexpected_messages_are_fsm_errors_with_the_state_subcode() {
    // UPDATE in OpenSent: 5/1.
    let mut sp = speaker("10.0.0.1");
    let tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    let mut cfg = PeerConfig::new(tp.address, LOCAL_AS);
    cfg.passive = true;
    add(&mut sp, secs(0), cfg);
    let mut out = Vec::new();
    let conn = sp.accept(
        secs(0),
        "10.0.0.1:179".parse().unwrap(),
        tp.socket(),
        &mut out,
    );
    let eor = tp.end_of_rib(AfiSafi::IPV4_UNICAST);
    sp.handle(
        secs(0),
        Input::Received {
            conn,
            frame: eor.clone(),
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(
        notifications(&out, conn)[0],
        bgp_wire::Notification::new(5, 1, vec![])
    );

    // UPDATE in OpenConfirm: 5/2.
    let mut out = Vec::new();
    let conn = sp.accept(
        secs(10),
        "10.0.0.1:179".parse().unwrap(),
        tp.socket(),
        &mut out,
    );
    let open = Message::Open(tp.open_message())
        .encode(&Default::default())
        .unwrap();
    sp.handle(
        secs(10),
        Input::Received {
            conn,
            frame: open.clone(),
        },
        &mut out,
    )
    .unwrap();
    sp.handle(secs(10), Input::Received { conn, frame: eor }, &mut out)
        .unwrap();
    assert_eq!(
        notifications(&out, conn)[0],
        bgp_wire::Notification::new(5, 2, vec![])
    );

    // OPEN in Established: 5/3.
    let mut tp = ibgp_peer("10.0.0.3", "10.0.0.3");
    let (conn, _) = up(&mut sp, secs(20), &mut tp, "10.0.0.1", |_| {});
    let out = tp.deliver(&mut sp, secs(21), conn, vec![open]);
    assert_eq!(
        notifications(&out, conn)[0],
        bgp_wire::Notification::new(5, 3, vec![])
    );
}

#[test]
fn a_wrong_peer_as_is_rejected_with_2_2() {
    let mut sp = speaker("10.0.0.1");
    let tp = ebgp_peer("10.0.0.2", 65001, "10.0.0.2");
    let mut cfg = PeerConfig::new(tp.address, 65002);
    cfg.passive = true;
    add(&mut sp, secs(0), cfg);
    let mut out = Vec::new();
    let conn = sp.accept(
        secs(0),
        "10.0.0.1:179".parse().unwrap(),
        tp.socket(),
        &mut out,
    );
    let open = Message::Open(tp.open_message())
        .encode(&Default::default())
        .unwrap();
    sp.handle(secs(0), Input::Received { conn, frame: open }, &mut out)
        .unwrap();
    let n = &notifications(&out, conn)[0];
    assert_eq!((n.code, n.subcode), (2, 2));
    assert!(closed(&out, conn));
}

#[test]
fn a_missing_required_family_is_rejected_with_2_7() {
    let mut sp = speaker("10.0.0.1");
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    tp.capabilities
        .retain(|c| *c != Capability::Multiprotocol(AfiSafi::IPV4_UNICAST));
    let mut cfg = PeerConfig::new(tp.address, LOCAL_AS);
    cfg.passive = true;
    add(&mut sp, secs(0), cfg);
    let mut out = Vec::new();
    let conn = sp.accept(
        secs(0),
        "10.0.0.1:179".parse().unwrap(),
        tp.socket(),
        &mut out,
    );
    let open = Message::Open(tp.open_message())
        .encode(&Default::default())
        .unwrap();
    sp.handle(secs(0), Input::Received { conn, frame: open }, &mut out)
        .unwrap();
    let n = &notifications(&out, conn)[0];
    assert_eq!((n.code, n.subcode), (2, 7));
    // The data is the Multiprotocol capability for IPv4 unicast.
    assert_eq!(n.data, vec![1, 4, 0, 1, 0, 1]);
}

#[test]
fn a_four_octet_local_as_goes_as_as_trans_in_open() {
    let mut sp = speaker_with(SpeakerConfig::new(v4("10.0.0.1"), 4_200_000_001));
    let out = add(&mut sp, secs(0), PeerConfig::new(ip("10.0.0.2"), 65001));
    let conn = connects(&out)[0];
    let mut out = Vec::new();
    sp.handle(
        secs(0),
        Input::Connected {
            conn,
            local: "10.0.0.1:4000".parse().unwrap(),
            remote: "10.0.0.2:179".parse().unwrap(),
        },
        &mut out,
    )
    .unwrap();
    let Some(Message::Open(open)) = raw_messages(&out, conn).into_iter().next() else {
        panic!()
    };
    assert_eq!(open.my_as, 23456);
    assert_eq!(open.asn(), 4_200_000_001);
}

#[test]
fn admin_down_sends_cease_2_with_the_message_and_admin_up_reconnects() {
    let mut sp = speaker("10.0.0.1");
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    let (conn, _) = up(&mut sp, secs(0), &mut tp, "10.0.0.1", |c| c.passive = false);
    let mut out = Vec::new();
    sp.handle(
        secs(1),
        Input::AdminDown {
            peer: tp.address,
            message: "maintenance".into(),
        },
        &mut out,
    )
    .unwrap();
    let n = &notifications(&out, conn)[0];
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(n.shutdown_communication(), Some("maintenance"));
    assert!(closed(&out, conn));
    assert_eq!(state(&sp, tp.address), State::Idle);
    assert!(
        run_timers(&mut sp, secs(1000))
            .iter()
            .all(|(_, a)| !matches!(a, Action::Connect { .. }))
    );
    // Inbound connections are refused while down.
    let mut out = Vec::new();
    let refused = sp.accept(
        secs(1000),
        "10.0.0.1:179".parse().unwrap(),
        tp.socket(),
        &mut out,
    );
    assert_eq!(
        notifications(&out, refused)[0].subcode,
        error_code::cease::CONNECTION_REJECTED
    );
    let mut out = Vec::new();
    sp.handle(secs(1001), Input::AdminUp { peer: tp.address }, &mut out)
        .unwrap();
    assert_eq!(connects(&out).len(), 1);
    let _ = sent_on(&out, conn);
}

#[test]
fn bad_peer_config_is_rejected_and_changes_nothing() {
    let mut sp = speaker("10.0.0.1");
    let mut out = Vec::new();
    let mut cfg = PeerConfig::new(ip("10.0.0.2"), 0);
    cfg.passive = true;
    let err = sp
        .handle(Instant::ZERO, Input::AddPeer(cfg), &mut out)
        .unwrap_err();
    assert!(err.to_string().contains("invalid configuration"));
    assert!(out.is_empty());
    assert!(sp.peers().is_empty());
    let mut cfg = PeerConfig::new(ip("10.0.0.2"), 65001);
    cfg.hold_time = Some(Duration::from_secs(2));
    let Err(bgpd_core::InputError::Config(e)) =
        sp.handle(Instant::ZERO, Input::AddPeer(cfg), &mut out)
    else {
        panic!()
    };
    assert_eq!(e.path, "peers[10.0.0.2].hold_time");
}

/// Fires timers one deadline at a time until a Connect action appears.
fn next_connect(sp: &mut bgpd_core::Speaker) -> (Instant, bgpd_core::ConnId) {
    while let Some(at) = sp.next_deadline() {
        let mut out = Vec::new();
        sp.poll_timers(at, &mut out);
        if let Some(c) = connects(&out).first() {
            return (at, *c);
        }
    }
    panic!("no connection attempt")
}

#[test]
fn a_stable_session_resets_the_idle_hold() {
    let mut cfg = SpeakerConfig::new(v4("10.0.0.1"), LOCAL_AS);
    cfg.idle_hold_reset_after = Duration::from_secs(100);
    let mut sp = speaker_with(cfg);
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    tp.hold_time = 0;
    let (conn, _) = up(&mut sp, secs(0), &mut tp, "10.0.0.1", |c| c.passive = false);
    // Two quick failures grow the idle hold to 10 s...
    let mut out = Vec::new();
    sp.handle(secs(1), Input::Closed { conn }, &mut out)
        .unwrap();
    assert_eq!(sp.next_deadline(), Some(secs(6)));
    let (conn, _) = tp.establish(&mut sp, secs(2), SocketAddr::new(ip("10.0.0.1"), 179));
    sp.handle(secs(3), Input::Closed { conn }, &mut out)
        .unwrap();
    assert_eq!(sp.next_deadline(), Some(secs(13)));
    // ...and a session that stays up 100 s brings it back to 5 s.
    let (conn, _) = tp.establish(&mut sp, secs(4), SocketAddr::new(ip("10.0.0.1"), 179));
    sp.handle(secs(200), Input::Closed { conn }, &mut out)
        .unwrap();
    assert_eq!(sp.next_deadline(), Some(secs(205)));
}
