//! Route handling tests: export rules and attribute rewriting, route reflection (RFC 4456),
//! policy, max-prefix, route refresh, RFC 7606 reactions and the speaker's own UPDATE checks.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_wire::{
    AfiSafi, AsPath, Community, Message, NextHop, Origin, RouteRefresh, RouteRefreshSubtype, Update,
};
use bgpd_core::test_peer::{TestPeer, sent_on};
use bgpd_core::{
    Action, DecisionReason, Input, Match, MaxPrefix, NextHopCost, Operation, OriginAttributes,
    Policy, PolicyRule, PrefixOp, Speaker, State, Verdict,
};
use bytes::Bytes;
use common::*;

fn nh(s: &str) -> NextHop {
    NextHop::V4(v4(s))
}

/// Every route the peer was sent on `conn`: (prefix, attributes with next hop).
fn announced(tp: &TestPeer, out: &[Action], conn: bgpd_core::ConnId) -> Vec<(String, Update)> {
    tp.updates(out, conn)
        .into_iter()
        .flat_map(|u| {
            u.nlri
                .iter()
                .map(|n| (n.prefix.to_string(), u.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn withdrawn(tp: &TestPeer, out: &[Action], conn: bgpd_core::ConnId) -> Vec<String> {
    tp.updates(out, conn)
        .into_iter()
        .flat_map(|u| u.withdrawn.into_iter().map(|n| n.prefix.to_string()))
        .collect()
}

fn best_changes(out: &[Action]) -> Vec<(String, usize)> {
    out.iter()
        .filter_map(|a| match a {
            Action::BestPathChanged { prefix, paths } => Some((prefix.to_string(), paths.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn an_ebgp_route_is_learned_selected_and_passed_to_ibgp_with_local_pref() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let mut int = ibgp_peer("10.0.0.2", "10.0.0.2");
    let (ce, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |_| {});
    let (ci, _) = up(&mut sp, secs(0), &mut int, "10.0.0.1", |_| {});
    let mut a = ext.attributes(&[65001, 65010]);
    a.multi_exit_disc = Some(5);
    let out = ext.deliver(
        &mut sp,
        secs(1),
        ce,
        ext.announce(&[pfx("203.0.113.0/24")], &a, nh("192.0.2.1")),
    );
    let Some(Action::BestPathChanged { prefix, paths }) = out
        .iter()
        .find(|a| matches!(a, Action::BestPathChanged { .. }))
    else {
        panic!("{out:?}")
    };
    assert_eq!(prefix.to_string(), "203.0.113.0/24");
    assert_eq!(paths[0].peer, Some(ext.address));
    assert_eq!(paths[0].next_hop_addr(), ip("192.0.2.1"));
    let sent = announced(&int, &out, ci);
    assert_eq!(sent.len(), 1);
    let u = &sent[0].1;
    assert_eq!(u.attributes.local_pref, Some(100));
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence([65001, 65010]))
    );
    // Auto next hop on iBGP keeps the eBGP next hop; the MED of a neighbouring AS stays in iBGP.
    assert_eq!(u.attributes.next_hop, Some(v4("192.0.2.1")));
    assert_eq!(u.attributes.multi_exit_disc, Some(5));
    // Never back to the peer it came from.
    assert!(announced(&ext, &out, ce).is_empty());
    let r = sp.route(&pfx("203.0.113.0/24")).unwrap();
    assert_eq!(r.reason, DecisionReason::OnlyPath);
}

#[test]
fn an_originated_route_goes_to_ebgp_with_our_as_and_address_and_to_ibgp_with_local_pref() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let mut int = ibgp_peer("10.0.0.2", "10.0.0.2");
    let (ce, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |_| {});
    let (ci, _) = up(&mut sp, secs(0), &mut int, "10.0.0.1", |_| {});
    let mut out = Vec::new();
    let attrs = OriginAttributes {
        communities: vec![Community::new(64512, 7)],
        med: Some(10),
        ..OriginAttributes::default()
    };
    sp.handle(
        secs(1),
        Input::Originate {
            prefix: pfx("10.244.1.0/26"),
            attrs,
        },
        &mut out,
    )
    .unwrap();
    let e = &announced(&ext, &out, ce)[0].1;
    assert_eq!(
        e.attributes.as_path,
        Some(AsPath::from_sequence([LOCAL_AS]))
    );
    assert_eq!(e.attributes.next_hop, Some(v4("192.0.2.100")));
    assert_eq!(e.attributes.local_pref, None);
    assert_eq!(e.attributes.origin, Some(Origin::Igp));
    assert_eq!(e.attributes.multi_exit_disc, Some(10));
    assert_eq!(e.attributes.communities, vec![Community::new(64512, 7)]);
    let i = &announced(&int, &out, ci)[0].1;
    assert_eq!(i.attributes.as_path, Some(AsPath::default()));
    assert_eq!(i.attributes.next_hop, Some(v4("10.0.0.1")));
    assert_eq!(i.attributes.local_pref, Some(100));
    assert_eq!(best_changes(&out), vec![("10.244.1.0/26".into(), 1)]);
    let mut out = Vec::new();
    sp.handle(
        secs(2),
        Input::WithdrawOrigin {
            prefix: pfx("10.244.1.0/26"),
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(withdrawn(&ext, &out, ce), vec!["10.244.1.0/26"]);
    assert_eq!(withdrawn(&int, &out, ci), vec!["10.244.1.0/26"]);
    assert_eq!(best_changes(&out), vec![("10.244.1.0/26".into(), 0)]);
    assert_eq!(sp.prefix_count(), 0);
}

#[test]
fn ibgp_routes_are_not_passed_to_other_ibgp_peers_without_reflection() {
    let mut sp = speaker("10.0.0.1");
    let mut a = ibgp_peer("10.0.0.2", "10.0.0.2");
    let mut b = ibgp_peer("10.0.0.3", "10.0.0.3");
    let (ca, _) = up(&mut sp, secs(0), &mut a, "10.0.0.1", |_| {});
    let (cb, _) = up(&mut sp, secs(0), &mut b, "10.0.0.1", |_| {});
    let out = a.deliver(
        &mut sp,
        secs(1),
        ca,
        a.announce(&[pfx("10.2.0.0/26")], &a.attributes(&[]), nh("10.0.0.2")),
    );
    assert_eq!(best_changes(&out).len(), 1);
    assert!(announced(&b, &out, cb).is_empty());
}

struct Rr {
    sp: Speaker,
    c1: (TestPeer, bgpd_core::ConnId),
    c2: (TestPeer, bgpd_core::ConnId),
    nc: (TestPeer, bgpd_core::ConnId),
}

/// A reflector 10.0.0.1 (cluster 1.1.1.1) with clients .2, .3 and non-client .4.
fn reflector() -> Rr {
    let mut cfg = bgpd_core::SpeakerConfig::new(v4("10.0.0.1"), LOCAL_AS);
    cfg.cluster_id = Some(v4("1.1.1.1"));
    let mut sp = speaker_with(cfg);
    let mut c1 = ibgp_peer("10.0.0.2", "10.0.0.2");
    let mut c2 = ibgp_peer("10.0.0.3", "10.0.0.3");
    let mut nc = ibgp_peer("10.0.0.4", "10.0.0.4");
    let (k1, _) = up(&mut sp, secs(0), &mut c1, "10.0.0.1", |c| {
        c.route_reflector_client = true
    });
    let (k2, _) = up(&mut sp, secs(0), &mut c2, "10.0.0.1", |c| {
        c.route_reflector_client = true
    });
    let (k3, _) = up(&mut sp, secs(0), &mut nc, "10.0.0.1", |_| {});
    Rr {
        sp,
        c1: (c1, k1),
        c2: (c2, k2),
        nc: (nc, k3),
    }
}

#[test]
fn a_route_from_a_client_is_reflected_to_clients_and_non_clients_with_originator_and_cluster_list()
{
    let Rr { mut sp, c1, c2, nc } = reflector();
    let (p, conn) = &c1;
    let out = p.deliver(
        &mut sp,
        secs(1),
        *conn,
        p.announce(&[pfx("10.2.0.0/26")], &p.attributes(&[]), nh("10.0.0.2")),
    );
    for (peer, c) in [&c2, &nc] {
        let sent = announced(peer, &out, *c);
        assert_eq!(sent.len(), 1, "to {}", peer.address);
        let a = &sent[0].1.attributes;
        assert_eq!(a.originator_id, Some(v4("10.0.0.2")));
        assert_eq!(a.cluster_list, vec![v4("1.1.1.1")]);
        assert_eq!(
            a.next_hop,
            Some(v4("10.0.0.2")),
            "reflected routes keep their next hop"
        );
    }
    assert!(
        announced(p, &out, *conn).is_empty(),
        "never back to the originating client"
    );
}

#[test]
fn a_route_from_a_non_client_is_reflected_to_clients_only() {
    let Rr { mut sp, c1, c2, nc } = reflector();
    let (p, conn) = &nc;
    let out = p.deliver(
        &mut sp,
        secs(1),
        *conn,
        p.announce(&[pfx("10.4.0.0/26")], &p.attributes(&[]), nh("10.0.0.4")),
    );
    assert_eq!(announced(&c1.0, &out, c1.1).len(), 1);
    assert_eq!(announced(&c2.0, &out, c2.1).len(), 1);
    assert!(announced(p, &out, *conn).is_empty());
}

#[test]
fn reflection_loops_are_rejected() {
    let Rr { mut sp, c1, .. } = reflector();
    let (p, conn) = &c1;
    let mut own_originator = p.attributes(&[]);
    own_originator.originator_id = Some(v4("10.0.0.1"));
    let mut our_cluster = p.attributes(&[]);
    our_cluster.originator_id = Some(v4("10.0.0.9"));
    our_cluster.cluster_list = vec![v4("2.2.2.2"), v4("1.1.1.1")];
    let mut frames = p.announce(&[pfx("10.5.0.0/26")], &own_originator, nh("10.0.0.2"));
    frames.extend(p.announce(&[pfx("10.6.0.0/26")], &our_cluster, nh("10.0.0.2")));
    let out = p.deliver(&mut sp, secs(1), *conn, frames);
    assert!(best_changes(&out).is_empty());
    assert!(sp.loc_rib().is_empty());
    // Kept as filtered in the pre-policy Adj-RIB-In.
    assert_eq!(sp.adj_rib_in(p.address, false).len(), 2);
    assert!(sp.adj_rib_in(p.address, true).is_empty());
    assert_eq!(state(&sp, p.address), State::Established);
}

#[test]
fn as_loops_are_rejected_unless_allowed() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |_| {});
    let looped = ext.attributes(&[65001, LOCAL_AS, 65002]);
    ext.deliver(
        &mut sp,
        secs(1),
        conn,
        ext.announce(&[pfx("10.7.0.0/24")], &looped, nh("192.0.2.1")),
    );
    assert!(sp.route(&pfx("10.7.0.0/24")).is_none());
    // Allowing one occurrence re-evaluates the Adj-RIB-In without a session reset.
    let mut cfg = bgpd_core::PeerConfig::new(ext.address, 65001);
    cfg.passive = true;
    cfg.allow_local_as = 1;
    let mut out = Vec::new();
    sp.handle(secs(2), Input::UpdatePeer(cfg), &mut out)
        .unwrap();
    assert!(sp.route(&pfx("10.7.0.0/24")).is_some());
    assert!(!closed(&out, conn));
}

#[test]
fn a_first_as_other_than_the_peers_or_our_own_next_hop_is_treated_as_withdraw() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |_| {});
    let good = ext.attributes(&[65001]);
    ext.deliver(
        &mut sp,
        secs(1),
        conn,
        ext.announce(&[pfx("10.8.0.0/24")], &good, nh("192.0.2.1")),
    );
    assert!(sp.route(&pfx("10.8.0.0/24")).is_some());
    let wrong_first = ext.attributes(&[65009]);
    let out = ext.deliver(
        &mut sp,
        secs(2),
        conn,
        ext.announce(&[pfx("10.8.0.0/24")], &wrong_first, nh("192.0.2.1")),
    );
    assert!(sp.route(&pfx("10.8.0.0/24")).is_none());
    assert!(!closed(&out, conn));
    ext.deliver(
        &mut sp,
        secs(3),
        conn,
        ext.announce(&[pfx("10.8.0.0/24")], &good, nh("192.0.2.100")),
    );
    assert!(sp.route(&pfx("10.8.0.0/24")).is_none());
    assert_eq!(state(&sp, ext.address), State::Established);
}

fn update_frame(body: &[u8]) -> Bytes {
    let mut f = vec![0xff; 16];
    f.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    f.push(2);
    f.extend_from_slice(body);
    Bytes::from(f)
}

#[test]
fn treat_as_withdraw_keeps_the_session_and_withdraws_the_prefixes() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |_| {});
    ext.deliver(
        &mut sp,
        secs(1),
        conn,
        ext.announce(
            &[pfx("10.9.0.0/24")],
            &ext.attributes(&[65001]),
            nh("192.0.2.1"),
        ),
    );
    assert!(sp.route(&pfx("10.9.0.0/24")).is_some());
    // ORIGIN 9 is malformed: RFC 7606 §7.1 treat-as-withdraw.
    let attrs: &[u8] = &[
        0x40, 1, 1, 9, // ORIGIN = 9
        0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9, // AS_PATH [65001] (4-octet)
        0x40, 3, 4, 192, 0, 2, 1, // NEXT_HOP
    ];
    let mut body = vec![0, 0, 0, attrs.len() as u8];
    body.extend_from_slice(attrs);
    body.extend_from_slice(&[24, 10, 9, 0]);
    let out = ext.deliver(&mut sp, secs(2), conn, vec![update_frame(&body)]);
    assert!(sp.route(&pfx("10.9.0.0/24")).is_none());
    assert!(!closed(&out, conn));
    assert_eq!(state(&sp, ext.address), State::Established);
}

#[test]
fn a_session_reset_error_sends_the_exact_notification() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |_| {});
    ext.deliver(
        &mut sp,
        secs(1),
        conn,
        ext.announce(
            &[pfx("10.9.0.0/24")],
            &ext.attributes(&[65001]),
            nh("192.0.2.1"),
        ),
    );
    // Total Path Attribute Length 255 overruns the message: 3/1 Malformed Attribute List.
    let out = ext.deliver(&mut sp, secs(2), conn, vec![update_frame(&[0, 0, 0, 255])]);
    let n = notifications(&out, conn);
    assert_eq!(n, vec![bgp_wire::Notification::new(3, 1, vec![])]);
    assert!(closed(&out, conn));
    assert!(sp.route(&pfx("10.9.0.0/24")).is_none());
    assert_ne!(state(&sp, ext.address), State::Established);
}

fn prefix_rule(
    cidr: &str,
    op: PrefixOp,
    action: Verdict,
    operations: Vec<Operation>,
) -> PolicyRule {
    PolicyRule {
        matches: vec![Match::Prefix {
            cidr: pfx(cidr),
            op,
            length: None,
        }],
        action,
        operations,
    }
}

#[test]
fn import_policy_rejects_and_modifies_and_a_policy_change_is_a_soft_reset() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let policy = Policy {
        rules: vec![
            prefix_rule("10.10.0.0/16", PrefixOp::In, Verdict::Reject, vec![]),
            prefix_rule(
                "10.11.0.0/16",
                PrefixOp::In,
                Verdict::Accept,
                vec![
                    Operation::SetLocalPref(300),
                    Operation::AddCommunity(Community::new(1, 1)),
                ],
            ),
        ],
        default_action: Verdict::Accept,
    };
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |c| {
        c.import_policy = policy.clone()
    });
    let frames = ext.announce(
        &[
            pfx("10.10.1.0/24"),
            pfx("10.11.1.0/24"),
            pfx("10.12.1.0/24"),
        ],
        &ext.attributes(&[65001]),
        nh("192.0.2.1"),
    );
    ext.deliver(&mut sp, secs(1), conn, frames);
    assert!(sp.route(&pfx("10.10.1.0/24")).is_none());
    let r = sp.route(&pfx("10.11.1.0/24")).unwrap();
    assert_eq!(r.paths[0].attrs.path.local_pref, Some(300));
    assert_eq!(
        r.paths[0].attrs.path.communities,
        vec![Community::new(1, 1)]
    );
    assert_eq!(
        sp.route(&pfx("10.12.1.0/24")).unwrap().paths[0]
            .attrs
            .path
            .local_pref,
        Some(100)
    );
    let counters = sp.peer_status(ext.address).unwrap().prefixes[0];
    assert_eq!((counters.received, counters.accepted), (3, 2));
    // Removing the policy re-evaluates the stored routes: no ROUTE-REFRESH, no reset.
    let mut cfg = bgpd_core::PeerConfig::new(ext.address, 65001);
    cfg.passive = true;
    let mut out = Vec::new();
    sp.handle(secs(2), Input::UpdatePeer(cfg), &mut out)
        .unwrap();
    assert!(!closed(&out, conn));
    assert!(sent_on(&out, conn).is_empty());
    assert!(sp.route(&pfx("10.10.1.0/24")).is_some());
    assert_eq!(
        sp.route(&pfx("10.11.1.0/24")).unwrap().paths[0]
            .attrs
            .path
            .local_pref,
        Some(100)
    );
}

#[test]
fn export_policy_filters_and_prepends_and_changes_are_re_advertised() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let policy = Policy {
        rules: vec![
            prefix_rule("10.244.0.0/16", PrefixOp::NotIn, Verdict::Reject, vec![]),
            PolicyRule {
                matches: vec![Match::Prefix {
                    cidr: pfx("10.244.0.0/16"),
                    op: PrefixOp::In,
                    length: Some((26, 26)),
                }],
                action: Verdict::Accept,
                operations: vec![
                    Operation::PrependAsPath {
                        asn: None,
                        count: 2,
                    },
                    Operation::SetMed(50),
                ],
            },
        ],
        default_action: Verdict::Reject,
    };
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |c| {
        c.export_policy = policy.clone()
    });
    let mut out = Vec::new();
    for p in ["10.244.1.0/26", "10.244.2.0/24", "10.99.0.0/26"] {
        sp.handle(
            secs(1),
            Input::Originate {
                prefix: pfx(p),
                attrs: OriginAttributes::default(),
            },
            &mut out,
        )
        .unwrap();
    }
    let sent = announced(&ext, &out, conn);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "10.244.1.0/26");
    assert_eq!(
        sent[0].1.attributes.as_path,
        Some(AsPath::from_sequence([LOCAL_AS, LOCAL_AS, LOCAL_AS]))
    );
    assert_eq!(sent[0].1.attributes.multi_exit_disc, Some(50));
    // Accept everything now: the two other prefixes follow, the first is re-sent without prepend.
    let mut cfg = bgpd_core::PeerConfig::new(ext.address, 65001);
    cfg.passive = true;
    let mut out = Vec::new();
    sp.handle(secs(2), Input::UpdatePeer(cfg), &mut out)
        .unwrap();
    let mut sent: Vec<String> = announced(&ext, &out, conn)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    sent.sort();
    assert_eq!(sent, vec!["10.244.1.0/26", "10.244.2.0/24", "10.99.0.0/26"]);
    assert_eq!(sp.adj_rib_out(ext.address).len(), 3);
}

#[test]
fn exceeding_max_prefix_sends_cease_1_with_the_limit_and_restarts_later() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |c| {
        c.passive = false;
        c.max_prefix = Some(MaxPrefix {
            ipv4: Some(2),
            ipv6: None,
            restart_after: Some(Duration::from_secs(60)),
        });
    });
    let frames = ext.announce(
        &[pfx("10.1.0.0/24"), pfx("10.1.1.0/24"), pfx("10.1.2.0/24")],
        &ext.attributes(&[65001]),
        nh("192.0.2.1"),
    );
    let out = ext.deliver(&mut sp, secs(1), conn, frames);
    let n = &notifications(&out, conn)[0];
    assert_eq!((n.code, n.subcode), (6, 1));
    assert_eq!(n.data, vec![0, 1, 1, 0, 0, 0, 2]);
    assert!(sp.loc_rib().is_empty());
    assert_eq!(state(&sp, ext.address), State::Idle);
    let fired = run_timers(&mut sp, secs(60));
    assert!(
        fired
            .iter()
            .all(|(_, a)| !matches!(a, Action::Connect { .. }))
    );
    let fired = run_timers(&mut sp, secs(61));
    assert!(
        fired
            .iter()
            .any(|(_, a)| matches!(a, Action::Connect { .. }))
    );
}

#[test]
fn a_route_refresh_is_answered_with_the_adj_rib_out_between_borr_and_eorr() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |_| {});
    let mut out = Vec::new();
    sp.handle(
        secs(1),
        Input::Originate {
            prefix: pfx("10.244.1.0/26"),
            attrs: OriginAttributes::default(),
        },
        &mut out,
    )
    .unwrap();
    let rr = ext.frame(&Message::RouteRefresh(RouteRefresh::request(
        AfiSafi::IPV4_UNICAST,
    )));
    let out = ext.deliver(&mut sp, secs(2), conn, vec![rr]);
    let msgs = ext.messages(&out, conn);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(
        matches!(&msgs[0], Message::RouteRefresh(r) if r.subtype == RouteRefreshSubtype::BeginningOfRib)
    );
    assert!(matches!(&msgs[1], Message::Update(u) if u.nlri.len() == 1));
    assert!(
        matches!(&msgs[2], Message::RouteRefresh(r) if r.subtype == RouteRefreshSubtype::EndOfRib)
    );
}

#[test]
fn soft_inbound_refresh_sends_a_request_and_borr_eorr_from_the_peer_drop_unrefreshed_routes() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |_| {});
    let a = ext.attributes(&[65001]);
    ext.deliver(
        &mut sp,
        secs(1),
        conn,
        ext.announce(
            &[pfx("10.1.0.0/24"), pfx("10.2.0.0/24")],
            &a,
            nh("192.0.2.1"),
        ),
    );
    let mut out = Vec::new();
    sp.handle(
        secs(2),
        Input::RouteRefresh {
            peer: ext.address,
            family: AfiSafi::IPV4_UNICAST,
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(
        ext.messages(&out, conn),
        vec![Message::RouteRefresh(RouteRefresh::request(
            AfiSafi::IPV4_UNICAST
        ))]
    );
    let marker = |subtype| {
        ext.frame(&Message::RouteRefresh(RouteRefresh {
            afi_safi: AfiSafi::IPV4_UNICAST,
            subtype,
        }))
    };
    let mut frames = vec![marker(RouteRefreshSubtype::BeginningOfRib)];
    frames.extend(ext.announce(&[pfx("10.1.0.0/24")], &a, nh("192.0.2.1")));
    frames.push(marker(RouteRefreshSubtype::EndOfRib));
    ext.deliver(&mut sp, secs(3), conn, frames);
    assert!(sp.route(&pfx("10.1.0.0/24")).is_some());
    assert!(sp.route(&pfx("10.2.0.0/24")).is_none());
    let err = sp.handle(
        secs(4),
        Input::RouteRefresh {
            peer: ip("10.9.9.9"),
            family: AfiSafi::IPV4_UNICAST,
        },
        &mut out,
    );
    assert!(err.is_err());
}

#[test]
fn an_unreachable_next_hop_makes_the_route_ineligible_and_a_cost_picks_between_paths() {
    let mut sp = speaker("10.0.0.1");
    let mut a = ibgp_peer("10.0.0.2", "10.0.0.2");
    let mut b = ibgp_peer("10.0.0.3", "10.0.0.3");
    let (ca, _) = up(&mut sp, secs(0), &mut a, "10.0.0.1", |_| {});
    let (cb, _) = up(&mut sp, secs(0), &mut b, "10.0.0.1", |_| {});
    let p = pfx("10.50.0.0/24");
    a.deliver(
        &mut sp,
        secs(1),
        ca,
        a.announce(&[p], &a.attributes(&[]), nh("10.0.0.2")),
    );
    b.deliver(
        &mut sp,
        secs(1),
        cb,
        b.announce(&[p], &b.attributes(&[]), nh("10.0.0.3")),
    );
    let r = sp.route(&p).unwrap();
    assert_eq!(
        r.paths.iter().filter(|p| p.ecmp).count(),
        2,
        "equal iBGP paths form an ECMP set"
    );
    let mut out = Vec::new();
    sp.handle(
        secs(2),
        Input::NextHopCost {
            next_hop: ip("10.0.0.2"),
            cost: Some(NextHopCost::Reachable(10)),
        },
        &mut out,
    )
    .unwrap();
    let r = sp.route(&p).unwrap();
    assert_eq!(
        (r.paths[0].peer, r.reason),
        (Some(ip("10.0.0.3")), DecisionReason::IgpCost)
    );
    assert_eq!(r.paths.iter().filter(|p| p.ecmp).count(), 1);
    sp.handle(
        secs(3),
        Input::NextHopCost {
            next_hop: ip("10.0.0.3"),
            cost: Some(NextHopCost::Unreachable),
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(sp.route(&p).unwrap().paths[0].peer, Some(ip("10.0.0.2")));
    let _ = Ipv4Addr::UNSPECIFIED;
}

#[test]
fn no_export_and_no_advertise_communities_are_honoured() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let mut int = ibgp_peer("10.0.0.2", "10.0.0.2");
    let (ce, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |_| {});
    let (ci, _) = up(&mut sp, secs(0), &mut int, "10.0.0.1", |_| {});
    let mut out = Vec::new();
    for (p, c) in [
        ("10.1.0.0/24", Community::NO_EXPORT),
        ("10.2.0.0/24", Community::NO_ADVERTISE),
    ] {
        let attrs = OriginAttributes {
            communities: vec![c],
            ..OriginAttributes::default()
        };
        sp.handle(
            secs(1),
            Input::Originate {
                prefix: pfx(p),
                attrs,
            },
            &mut out,
        )
        .unwrap();
    }
    assert!(announced(&ext, &out, ce).is_empty());
    let to_ibgp: Vec<String> = announced(&int, &out, ci)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(to_ibgp, vec!["10.1.0.0/24"]);
}

#[test]
fn ipv6_routes_carry_the_global_and_link_local_next_hop() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("2001:db8::2", 65001, "192.0.2.2");
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "2001:db8::1", |c| {
        c.link_local_next_hop = Some("fe80::1".parse().unwrap());
    });
    let mut out = Vec::new();
    sp.handle(
        secs(1),
        Input::Originate {
            prefix: pfx("2001:db8:100::/64"),
            attrs: OriginAttributes::default(),
        },
        &mut out,
    )
    .unwrap();
    let u = &ext.updates(&out, conn)[0];
    let mp = u.mp_reach.as_ref().unwrap();
    assert_eq!(mp.afi_safi, AfiSafi::IPV6_UNICAST);
    assert_eq!(
        mp.next_hop,
        NextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap())
        }
    );
    let learned = NextHop::V6 {
        global: "2001:db8::2".parse().unwrap(),
        link_local: Some("fe80::2".parse().unwrap()),
    };
    let out = ext.deliver(
        &mut sp,
        secs(2),
        conn,
        ext.announce(
            &[pfx("2001:db8:200::/64")],
            &ext.attributes(&[65001]),
            learned,
        ),
    );
    let Some(Action::BestPathChanged { paths, .. }) = out
        .iter()
        .find(|a| matches!(a, Action::BestPathChanged { .. }))
    else {
        panic!("{out:?}")
    };
    assert_eq!(paths[0].next_hop(), &learned);
    assert_eq!(paths[0].next_hop_addr(), ip("2001:db8::2"));
}

#[test]
fn a_session_relevant_change_resets_with_cease_6_and_reconnects() {
    let mut sp = speaker("10.0.0.1");
    let mut ext = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
    let (conn, _) = up(&mut sp, secs(0), &mut ext, "192.0.2.100", |_| {});
    ext.deliver(
        &mut sp,
        secs(1),
        conn,
        ext.announce(
            &[pfx("10.1.0.0/24")],
            &ext.attributes(&[65001]),
            nh("192.0.2.1"),
        ),
    );
    let mut cfg = bgpd_core::PeerConfig::new(ext.address, 65001);
    cfg.hold_time = Some(Duration::from_secs(30));
    let mut out = Vec::new();
    sp.handle(secs(2), Input::UpdatePeer(cfg), &mut out)
        .unwrap();
    let n = &notifications(&out, conn)[0];
    assert_eq!((n.code, n.subcode), (6, 6));
    assert!(sp.loc_rib().is_empty());
    assert_eq!(connects(&out).len(), 1, "active now, so it connects");
}

#[test]
fn the_speaker_can_move_to_another_thread() {
    fn send<T: Send>() {}
    send::<Speaker>();
}
