//! Graceful restart tests (RFC 4724): helper and restarting speaker.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bgp_wire::{AfiSafi, Capability, GracefulRestart, Message, NextHop, SessionContext};
use bgpd_core::test_peer::{TestPeer, sent_on};
use bgpd_core::{Action, Input, OriginAttributes, PeerConfig, Speaker, SpeakerConfig, State};
use common::*;

fn nh(s: &str) -> NextHop {
    NextHop::V4(v4(s))
}

/// A speaker with a GR-capable iBGP peer that announced two prefixes.
fn setup() -> (Speaker, TestPeer, bgpd_core::ConnId) {
    let mut sp = speaker("10.0.0.1");
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    let (conn, _) = up(&mut sp, secs(0), &mut tp, "10.0.0.1", |_| {});
    let frames = tp.announce(
        &[pfx("10.2.0.0/26"), pfx("10.2.1.0/26")],
        &tp.attributes(&[]),
        nh("10.0.0.2"),
    );
    tp.deliver(&mut sp, secs(1), conn, frames);
    assert_eq!(sp.loc_rib().len(), 2);
    (sp, tp, conn)
}

fn withdrawals(out: &[Action]) -> usize {
    out.iter()
        .filter(|a| matches!(a, Action::BestPathChanged { paths, .. } if paths.is_empty()))
        .count()
}

#[test]
fn the_helper_keeps_stale_routes_when_the_session_drops_without_notification() {
    let (mut sp, tp, conn) = setup();
    let mut out = Vec::new();
    sp.handle(secs(10), Input::Closed { conn }, &mut out)
        .unwrap();
    assert_eq!(withdrawals(&out), 0);
    let rib = sp.loc_rib();
    assert_eq!(rib.len(), 2);
    assert!(rib.iter().all(|r| r.paths[0].stale));
    assert!(sp.peer_status(tp.address).unwrap().graceful_restart_stale);
}

#[test]
fn stale_routes_not_refreshed_before_end_of_rib_are_deleted() {
    let (mut sp, mut tp, conn) = setup();
    let mut out = Vec::new();
    sp.handle(secs(10), Input::Closed { conn }, &mut out)
        .unwrap();
    let (conn, out) = tp.establish(&mut sp, secs(20), SocketAddr::new(ip("10.0.0.1"), 179));
    assert_eq!(withdrawals(&out), 0);
    let mut frames = tp.announce(&[pfx("10.2.0.0/26")], &tp.attributes(&[]), nh("10.0.0.2"));
    let out = tp.deliver(&mut sp, secs(21), conn, frames.split_off(0));
    assert_eq!(withdrawals(&out), 0);
    assert!(!sp.route(&pfx("10.2.0.0/26")).unwrap().paths[0].stale);
    assert!(sp.route(&pfx("10.2.1.0/26")).unwrap().paths[0].stale);
    let out = tp.deliver(
        &mut sp,
        secs(22),
        conn,
        vec![tp.end_of_rib(AfiSafi::IPV4_UNICAST)],
    );
    assert_eq!(withdrawals(&out), 1);
    assert!(sp.route(&pfx("10.2.1.0/26")).is_none());
    assert!(!sp.peer_status(tp.address).unwrap().graceful_restart_stale);
}

#[test]
fn stale_routes_are_flushed_when_the_peer_does_not_return_within_its_restart_time() {
    let (mut sp, _tp, conn) = setup();
    let mut out = Vec::new();
    sp.handle(secs(10), Input::Closed { conn }, &mut out)
        .unwrap();
    // The peer advertised 120 s.
    let early: Vec<Action> = run_timers(&mut sp, secs(129))
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(withdrawals(&early), 0);
    let late: Vec<Action> = run_timers(&mut sp, secs(130))
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(withdrawals(&late), 2);
    assert!(sp.loc_rib().is_empty());
}

#[test]
fn stale_routes_are_flushed_by_the_stale_timer_when_end_of_rib_never_comes() {
    let mut cfg = SpeakerConfig::new(v4("10.0.0.1"), LOCAL_AS);
    cfg.graceful_restart.stale_routes_time = Duration::from_secs(50);
    let mut sp = speaker_with(cfg);
    let mut tp = ibgp_peer("10.0.0.2", "10.0.0.2");
    let (conn, _) = up(&mut sp, secs(0), &mut tp, "10.0.0.1", |_| {});
    tp.deliver(
        &mut sp,
        secs(1),
        conn,
        tp.announce(&[pfx("10.2.0.0/26")], &tp.attributes(&[]), nh("10.0.0.2")),
    );
    let mut out = Vec::new();
    sp.handle(secs(10), Input::Closed { conn }, &mut out)
        .unwrap();
    let (conn, _) = tp.establish(&mut sp, secs(20), SocketAddr::new(ip("10.0.0.1"), 179));
    // Keep the session alive, send nothing else.
    for t in [40, 60] {
        tp.deliver(&mut sp, secs(t), conn, vec![tp.keepalive()]);
        run_timers(&mut sp, secs(t));
    }
    assert!(sp.route(&pfx("10.2.0.0/26")).is_some());
    let fired: Vec<Action> = run_timers(&mut sp, secs(70))
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(withdrawals(&fired), 1);
    assert_eq!(state(&sp, tp.address), State::Established);
}

#[test]
fn a_notification_ends_the_session_without_graceful_restart() {
    let (mut sp, tp, conn) = setup();
    let out = tp.deliver(&mut sp, secs(10), conn, vec![tp.notification(6, 4)]);
    assert_eq!(withdrawals(&out), 2);
    assert!(sp.loc_rib().is_empty());
}

#[test]
fn a_returning_peer_that_did_not_preserve_forwarding_has_its_stale_routes_flushed() {
    let (mut sp, mut tp, conn) = setup();
    let mut out = Vec::new();
    sp.handle(secs(10), Input::Closed { conn }, &mut out)
        .unwrap();
    for c in tp.capabilities.iter_mut() {
        if let Capability::GracefulRestart(g) = c {
            g.restart_state = true;
            g.families = vec![(AfiSafi::IPV4_UNICAST, false)];
        }
    }
    let (_, out) = tp.establish(&mut sp, secs(20), SocketAddr::new(ip("10.0.0.1"), 179));
    assert_eq!(withdrawals(&out), 2);
}

#[test]
fn a_new_open_from_a_restarted_peer_replaces_the_established_session_and_keeps_routes() {
    let (mut sp, mut tp, old) = setup();
    let (new, out) = tp.establish(&mut sp, secs(10), SocketAddr::new(ip("10.0.0.1"), 179));
    assert!(closed(&out, old));
    assert!(!closed(&out, new));
    assert_eq!(withdrawals(&out), 0);
    assert_eq!(state(&sp, tp.address), State::Established);
    assert!(sp.loc_rib().iter().all(|r| r.paths[0].stale));
}

fn restarting(deferral: u64) -> Speaker {
    let mut cfg = SpeakerConfig::new(v4("10.0.0.1"), LOCAL_AS);
    cfg.graceful_restart.restarting = true;
    cfg.graceful_restart.selection_deferral = Duration::from_secs(deferral);
    speaker_with(cfg)
}

#[test]
fn a_restarting_speaker_sets_the_r_and_f_bits_and_defers_until_end_of_rib() {
    let mut sp = restarting(300);
    let mut out = Vec::new();
    sp.handle(
        secs(0),
        Input::Originate {
            prefix: pfx("10.1.0.0/26"),
            attrs: OriginAttributes::default(),
        },
        &mut out,
    )
    .unwrap();
    assert!(
        out.is_empty(),
        "nothing selected or sent while deferring: {out:?}"
    );
    let mut a = ibgp_peer("10.0.0.2", "10.0.0.2");
    let mut b = ibgp_peer("10.0.0.3", "10.0.0.3");
    let (ca, out_a) = up(&mut sp, secs(1), &mut a, "10.0.0.1", |_| {});
    let open = sent_on(&out_a, ca)
        .iter()
        .find_map(|f| match Message::decode(f, &SessionContext::default()) {
            Ok(Message::Open(o)) => Some(o),
            _ => None,
        })
        .unwrap();
    let gr = open
        .capabilities
        .iter()
        .find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        gr,
        GracefulRestart {
            restart_state: true,
            notification: false,
            restart_time: 120,
            families: vec![(AfiSafi::IPV4_UNICAST, true)]
        }
    );
    let (cb, _) = up(&mut sp, secs(1), &mut b, "10.0.0.1", |_| {});
    let mut frames = a.announce(&[pfx("10.2.0.0/26")], &a.attributes(&[]), nh("10.0.0.2"));
    frames.push(a.end_of_rib(AfiSafi::IPV4_UNICAST));
    let out = a.deliver(&mut sp, secs(2), ca, frames);
    assert!(
        out.iter()
            .all(|x| !matches!(x, Action::BestPathChanged { .. })),
        "still waiting for b"
    );
    assert!(a.updates(&out, ca).is_empty());
    let out = b.deliver(
        &mut sp,
        secs(3),
        cb,
        vec![b.end_of_rib(AfiSafi::IPV4_UNICAST)],
    );
    assert_eq!(
        out.iter()
            .filter(|x| matches!(x, Action::BestPathChanged { .. }))
            .count(),
        2
    );
    // Routes, then End-of-RIB, to each peer.
    let to_b = b.updates(&out, cb);
    assert_eq!(to_b.len(), 2, "{to_b:?}");
    assert_eq!(to_b[0].nlri.len(), 1);
    assert_eq!(
        to_b.last().unwrap().as_end_of_rib(),
        Some(AfiSafi::IPV4_UNICAST)
    );
    let to_a = a.updates(&out, ca);
    assert_eq!(
        to_a.last().unwrap().as_end_of_rib(),
        Some(AfiSafi::IPV4_UNICAST)
    );
    // After the restart, new OPENs no longer carry the R bit.
    let out = add(&mut sp, secs(4), PeerConfig::new(ip("10.0.0.4"), LOCAL_AS));
    let c = connects(&out)[0];
    let mut out = Vec::new();
    sp.handle(
        secs(4),
        Input::Connected {
            conn: c,
            local: "10.0.0.1:4000".parse().unwrap(),
            remote: "10.0.0.4:179".parse().unwrap(),
        },
        &mut out,
    )
    .unwrap();
    let Some(Message::Open(o)) = raw_messages(&out, c).into_iter().next() else {
        panic!()
    };
    assert!(
        o.capabilities
            .iter()
            .any(|c| matches!(c, Capability::GracefulRestart(g) if !g.restart_state))
    );
}

#[test]
fn the_selection_deferral_timer_bounds_the_wait() {
    let mut sp = restarting(60);
    let mut a = ibgp_peer("10.0.0.2", "10.0.0.2");
    let (ca, _) = up(&mut sp, secs(0), &mut a, "10.0.0.1", |_| {});
    let mut out = Vec::new();
    sp.handle(
        secs(1),
        Input::Originate {
            prefix: pfx("10.1.0.0/26"),
            attrs: OriginAttributes::default(),
        },
        &mut out,
    )
    .unwrap();
    a.deliver(&mut sp, secs(30), ca, vec![a.keepalive()]);
    let fired: Vec<Action> = run_timers(&mut sp, secs(59))
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert!(
        fired
            .iter()
            .all(|x| !matches!(x, Action::BestPathChanged { .. }))
    );
    let fired: Vec<Action> = run_timers(&mut sp, secs(60))
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        fired
            .iter()
            .filter(|x| matches!(x, Action::BestPathChanged { .. }))
            .count(),
        1
    );
    let to_a = a.updates(&fired, ca);
    assert_eq!(to_a.len(), 2);
    assert_eq!(to_a[1].as_end_of_rib(), Some(AfiSafi::IPV4_UNICAST));
}

#[test]
fn a_graceful_shutdown_closes_without_notification_and_withdraws_nothing() {
    let (mut sp, tp, conn) = setup();
    let mut out = Vec::new();
    sp.handle(secs(5), Input::Shutdown { restart: true }, &mut out)
        .unwrap();
    assert!(closed(&out, conn));
    assert!(notifications(&out, conn).is_empty());
    assert_eq!(withdrawals(&out), 0);
    let _ = tp;
}
