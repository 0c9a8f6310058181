//! Malformed input from a raw peer (root, namespaces), one test per case: treat-as-withdraw
//! errors keep the session and withdraw the route (RFC 7606), header and OPEN errors send the
//! exact NOTIFICATION (code, subcode, data; RFC 4271 §6) and close.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp_wire::Prefix;
use common::{Bgpd, POLL, ROUTES, two_namespaces};
use fabric_testkit::bgp_peer::raw::{
    raw_attribute, raw_ipv4_nlri, raw_mandatory_attributes, raw_message, raw_update,
};
use fabric_testkit::bgp_peer::{BgpPeer, PeerConfig};
use fabric_testkit::{Netns, require_root, wait_until};

const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const PREFIX: &str = "10.70.0.0/24";

const BGPD: &str = r#"router-id = "192.0.2.1"
asn = 65001
listen = ["192.0.2.1:179"]
hold-time = 90
error-wait = [1, 5]

[[neighbor]]
address = "192.0.2.2"
remote-asn = 65002
passive = true
"#;

struct World {
    _a: Netns,
    b: Netns,
    bgpd: Bgpd,
}

fn world(tag: &str) -> World {
    require_root();
    let (a, b) = two_namespaces(tag);
    let bgpd = Bgpd::start(&a, BGPD);
    World { _a: a, b, bgpd }
}

fn bgpd_addr() -> SocketAddr {
    "192.0.2.1:179".parse().unwrap()
}

fn nlri() -> Vec<u8> {
    raw_ipv4_nlri(Ipv4Addr::new(10, 70, 0, 0), 24)
}

fn good_attributes() -> Vec<u8> {
    raw_mandatory_attributes(0, &[65002], PEER)
}

fn update(attributes: &[u8]) -> Vec<u8> {
    raw_update(&[], attributes, &nlri())
}

/// ORIGIN IGP, AS_PATH [65002], then `value` as the NEXT_HOP value.
fn with_next_hop(value: &[u8]) -> Vec<u8> {
    let mut a = raw_attribute(0x40, 1, &[0]);
    a.extend(raw_attribute(0x40, 2, &[2, 1, 0, 0, 0xfd, 0xea]));
    a.extend(raw_attribute(0x40, 3, value));
    a
}

/// An established raw session that has announced `PREFIX` (seen in bgpd's Loc-RIB).
fn established(w: &World) -> BgpPeer {
    let peer = BgpPeer::connect_in(&w.b, bgpd_addr(), PeerConfig::new(65002, PEER)).unwrap();
    w.bgpd.wait_established("192.0.2.2");
    peer.send_raw(&update(&good_attributes())).unwrap();
    w.bgpd.wait_route(PREFIX, "192.0.2.2", true);
    peer
}

/// Sends `bytes` and expects RFC 7606 treat-as-withdraw: the route goes, the session stays.
fn expect_treat_as_withdraw(tag: &str, bytes: &[u8]) {
    let w = world(tag);
    let peer = established(&w);
    peer.send_raw(bytes).unwrap();
    w.bgpd.wait_route(PREFIX, "192.0.2.2", false);
    // The session survives: a fresh announcement is accepted again on it.
    peer.send_raw(&update(&good_attributes())).unwrap();
    w.bgpd.wait_route(PREFIX, "192.0.2.2", true);
    peer.with_state(|s| {
        assert!(
            s.notifications.is_empty(),
            "NOTIFICATION sent: {:?}",
            s.notifications
        );
        assert!(!s.closed, "the connection closed");
    });
    let n = w.bgpd.neighbor("192.0.2.2").unwrap();
    assert_eq!(n.state, "Established");
    assert_eq!(n.established_transitions, 1);
    let p: Prefix = PREFIX.parse().unwrap();
    assert!(w.bgpd.route(&p.to_string()).is_some());
}

/// Waits for the NOTIFICATION and the close; returns (code, subcode, data).
fn notification(peer: &BgpPeer) -> (u8, u8, Vec<u8>) {
    peer.wait_for_named("NOTIFICATION and close", ROUTES, |s| {
        s.closed && !s.notifications.is_empty()
    })
    .unwrap();
    peer.with_state(|s| {
        let n = s.notifications.last().unwrap();
        (n.code, n.subcode, n.data.clone())
    })
}

/// Sends `bytes` on an established session and expects exactly this NOTIFICATION and a close.
fn expect_notification_in_established(tag: &str, bytes: &[u8], code: u8, subcode: u8, data: &[u8]) {
    let w = world(tag);
    let peer = established(&w);
    peer.send_raw(bytes).unwrap();
    assert_eq!(notification(&peer), (code, subcode, data.to_vec()));
    // The session is gone and so are its routes.
    w.bgpd.wait_route(PREFIX, "192.0.2.2", false);
    let n = w.bgpd.neighbor("192.0.2.2").unwrap();
    let err = n.last_error.unwrap().message;
    assert!(err.starts_with(&format!("sent {code}/{subcode}")), "{err}");
}

/// Sends an OPEN with `body` instead of a good one and expects this NOTIFICATION and a close.
fn expect_open_refused(tag: &str, body: &[u8], code: u8, subcode: u8, data: &[u8]) {
    let w = world(tag);
    let peer =
        w.b.run_in(|| BgpPeer::connect_unopened(bgpd_addr(), PeerConfig::new(65002, PEER)))
            .unwrap();
    peer.send_raw(&raw_message(1, body)).unwrap();
    assert_eq!(notification(&peer), (code, subcode, data.to_vec()));
    let ok = wait_until(Duration::from_secs(10), POLL, || {
        w.bgpd
            .neighbor("192.0.2.2")
            .and_then(|n| n.last_error)
            .is_some_and(|e| e.message.starts_with(&format!("sent {code}/{subcode}")))
    });
    assert!(ok, "last error: {:?}", w.bgpd.neighbor("192.0.2.2"));
}

/// An OPEN body: version, AS, hold time, identifier, no optional parameters.
fn open_body(version: u8, asn: u16, hold: u16, id: Ipv4Addr) -> Vec<u8> {
    let mut b = vec![version];
    b.extend_from_slice(&asn.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id.octets());
    b.push(0);
    b
}

#[test]
fn an_attribute_length_error_is_treat_as_withdraw() {
    // ORIGIN with a 2-octet value (RFC 7606 §7.1).
    let mut a = raw_attribute(0x40, 1, &[0, 0]);
    a.extend_from_slice(&good_attributes()[4..]);
    expect_treat_as_withdraw("mlen", &update(&a));
}

#[test]
fn conflicting_attribute_flags_are_treat_as_withdraw() {
    // ORIGIN flagged optional (RFC 7606 §3 c).
    let mut a = good_attributes();
    a[0] = 0xc0;
    expect_treat_as_withdraw("mflg", &update(&a));
}

#[test]
fn a_missing_mandatory_attribute_is_treat_as_withdraw() {
    // No ORIGIN (RFC 7606 §3 d).
    expect_treat_as_withdraw("mmis", &update(&good_attributes()[4..]));
}

#[test]
fn a_malformed_next_hop_is_treat_as_withdraw() {
    // A 3-octet NEXT_HOP (RFC 7606 §7.3).
    expect_treat_as_withdraw("mnhl", &update(&with_next_hop(&[192, 0, 2])));
}

#[test]
fn a_zero_next_hop_is_treat_as_withdraw() {
    // NEXT_HOP 0.0.0.0 is not a usable next hop (RFC 4271 §6.3, RFC 7606 §7.3).
    expect_treat_as_withdraw("mnhz", &update(&with_next_hop(&[0, 0, 0, 0])));
}

#[test]
fn an_as_path_segment_overrunning_the_attribute_is_treat_as_withdraw() {
    // The segment claims 3 ASes but carries one (RFC 7606 §7.2).
    let mut a = raw_attribute(0x40, 1, &[0]);
    a.extend(raw_attribute(0x40, 2, &[2, 3, 0, 0, 0xfd, 0xea]));
    a.extend(raw_attribute(0x40, 3, &PEER.octets()));
    expect_treat_as_withdraw("mseg", &update(&a));
}

#[test]
fn an_unknown_as_path_segment_type_is_treat_as_withdraw() {
    let mut a = raw_attribute(0x40, 1, &[0]);
    a.extend(raw_attribute(0x40, 2, &[9, 1, 0, 0, 0xfd, 0xea]));
    a.extend(raw_attribute(0x40, 3, &PEER.octets()));
    expect_treat_as_withdraw("mstp", &update(&a));
}

#[test]
fn a_truncated_nlri_resets_the_session_with_invalid_network_field() {
    // A /24 with only two prefix octets left in the message (RFC 7606 §5.3: session reset).
    let bytes = raw_update(&[], &good_attributes(), &[24, 10, 70]);
    expect_notification_in_established("mnlr", &bytes, 3, 10, &[]);
}

#[test]
fn a_bad_message_length_is_refused_with_the_length_as_data() {
    let mut bytes = update(&good_attributes());
    bytes[16] = 0;
    bytes[17] = 18;
    expect_notification_in_established("mmsl", &bytes, 1, 2, &[0, 18]);
}

#[test]
fn a_bad_message_type_is_refused_with_the_type_as_data() {
    expect_notification_in_established("mtyp", &raw_message(9, &[]), 1, 3, &[9]);
}

#[test]
fn an_open_with_version_3_is_refused_naming_version_4() {
    expect_open_refused("ovr", &open_body(3, 65002, 90, PEER), 2, 1, &[0, 4]);
}

#[test]
fn an_open_from_as_0_is_refused_as_bad_peer_as() {
    expect_open_refused("oas", &open_body(4, 0, 90, PEER), 2, 2, &[]);
}

#[test]
fn an_open_with_hold_time_1_is_refused_as_unacceptable() {
    expect_open_refused("ohld", &open_body(4, 65002, 1, PEER), 2, 6, &[]);
}

#[test]
fn an_open_with_a_zero_bgp_identifier_is_refused_as_bad_identifier() {
    expect_open_refused(
        "oid",
        &open_body(4, 65002, 90, Ipv4Addr::UNSPECIFIED),
        2,
        3,
        &[],
    );
}
