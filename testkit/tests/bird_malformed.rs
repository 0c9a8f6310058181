//! How BIRD 2 reacts to malformed messages from a peer (root only): each case writes hand-built
//! bytes through the raw peer to a fresh BIRD and checks the recorded reaction: a NOTIFICATION
//! (code/subcode) and a closed session, treat-as-withdraw (the route goes, the session stays),
//! or attribute discard (the route stays). The table documents BIRD's choices for the project's
//! speaker to compare against.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use fabric_testkit::bgp_peer::raw::{
    raw_attribute, raw_ipv4_nlri, raw_mandatory_attributes, raw_message, raw_update,
};
use fabric_testkit::bgp_peer::{BgpPeer, PeerConfig};
use fabric_testkit::{Bird, Netns, veth, wait_until};

const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum Reaction {
    /// NOTIFICATION (code, subcode), then the connection closes.
    Notification(u8, u8),
    /// The UPDATE's route is withdrawn; the session stays up; BIRD logs the text.
    TreatAsWithdraw(&'static str),
    /// The attribute is dropped and the route kept; BIRD logs the text.
    Discard(&'static str),
}

const NEXT_HOP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn nlri() -> Vec<u8> {
    raw_ipv4_nlri(Ipv4Addr::new(10, 70, 0, 0), 24)
}

fn good_attributes() -> Vec<u8> {
    raw_mandatory_attributes(0, &[65001], NEXT_HOP)
}

fn with_extra(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = good_attributes();
    a.extend(raw_attribute(flags, code, value));
    a
}

fn update(attributes: &[u8]) -> Vec<u8> {
    raw_update(&[], attributes, &nlri())
}

/// ORIGIN IGP, AS_PATH [65001], then `next_hop_value` as the NEXT_HOP value.
fn with_next_hop(next_hop_value: &[u8]) -> Vec<u8> {
    let mut a = raw_attribute(0x40, 1, &[0]);
    a.extend(raw_attribute(0x40, 2, &[2, 1, 0, 0, 0xfd, 0xe9]));
    a.extend(raw_attribute(0x40, 3, next_hop_value));
    a
}

fn cases() -> Vec<(&'static str, Vec<u8>, Reaction)> {
    use Reaction::*;
    let mut bad_marker = update(&good_attributes());
    bad_marker[0] = 0;
    let mut short = update(&good_attributes());
    short[17] = 18;
    let mut withdrawn_overrun = update(&good_attributes());
    withdrawn_overrun[20] = 200;
    let mut origin_flags = good_attributes();
    origin_flags[0] = 0xc0;
    let mut path_overrun = raw_attribute(0x40, 1, &[0]);
    path_overrun.extend(raw_attribute(0x40, 2, &[2, 3, 0, 0, 0xfd, 0xe9]));
    path_overrun.extend(raw_attribute(0x40, 3, &NEXT_HOP.octets()));
    let open_body = [4, 0xfd, 0xe9, 0, 90, 192, 0, 2, 1, 0];
    vec![
        ("a broken marker", bad_marker, Notification(1, 1)),
        ("a message length of 18", short, Notification(1, 2)),
        ("message type 9", raw_message(9, &[]), Notification(1, 3)),
        (
            "a Withdrawn Routes Length overrunning the message",
            withdrawn_overrun,
            Notification(3, 1),
        ),
        (
            "a prefix length of 33",
            raw_update(&[], &good_attributes(), &[33, 10, 0, 0, 0, 0]),
            Notification(3, 10),
        ),
        (
            "an OPEN in Established",
            raw_message(1, &open_body),
            Notification(5, 3),
        ),
        (
            "ORIGIN 5",
            update(&raw_mandatory_attributes(5, &[65001], NEXT_HOP)),
            TreatAsWithdraw("Malformed ORIGIN attribute - invalid value (5)"),
        ),
        (
            "no ORIGIN",
            update(&good_attributes()[4..]),
            TreatAsWithdraw("Missing mandatory ORIGIN attribute"),
        ),
        (
            "ORIGIN flagged optional",
            update(&origin_flags),
            TreatAsWithdraw("Malformed origin attribute - conflicting flags (c0)"),
        ),
        (
            "an AS_PATH segment overrunning the attribute",
            update(&path_overrun),
            TreatAsWithdraw("Malformed AS_PATH attribute - segment framing error"),
        ),
        (
            "NEXT_HOP 0.0.0.0",
            update(&with_next_hop(&[0, 0, 0, 0])),
            TreatAsWithdraw("Invalid NEXT_HOP attribute - zero address"),
        ),
        (
            "a 3-octet NEXT_HOP",
            update(&with_next_hop(&[192, 0, 2])),
            TreatAsWithdraw("Malformed NEXT_HOP attribute - invalid length (3)"),
        ),
        (
            "an unrecognized well-known attribute 50",
            update(&with_extra(0x40, 50, &[1, 2])),
            TreatAsWithdraw("Unknown attribute (code 50) - conflicting flags (40)"),
        ),
        (
            "a 3-octet COMMUNITIES",
            update(&with_extra(0xc0, 8, &[0, 0, 0])),
            TreatAsWithdraw("Malformed COMMUNITY attribute - invalid length (3)"),
        ),
        (
            "a duplicate ORIGIN",
            update(&with_extra(0x40, 1, &[1])),
            Discard("Discarding duplicate attribute (code 1)"),
        ),
        (
            "LOCAL_PREF from an eBGP peer",
            update(&with_extra(0x40, 5, &[0, 0, 0])),
            Discard("Discarding LOCAL_PREF attribute received from EBGP neighbor"),
        ),
    ]
}

fn run_case(name: &str, bytes: &[u8], reaction: Reaction) {
    let a = Netns::new("bm");
    let b = Netns::new("bm");
    veth(&a, "va", &b, "vb");
    a.ip("addr add 192.0.2.1/30 dev va");
    b.ip("addr add 192.0.2.2/30 dev vb");
    let bird = Bird::start(
        &b,
        "router id 192.0.2.2;
protocol device { }
protocol bgp raw {
  local 192.0.2.2 as 65002; neighbor 192.0.2.1 as 65001;
  ipv4 { import all; export all; };
}
",
    )
    .unwrap();
    let peer = BgpPeer::connect_in(
        &a,
        "192.0.2.2:179".parse().unwrap(),
        PeerConfig::new(65001, NEXT_HOP),
    )
    .unwrap();
    bird.wait_established("raw", WAIT).unwrap();
    // A well-formed announcement of the same prefix first, so a withdrawal is observable.
    peer.send_raw(&update(&good_attributes())).unwrap();
    assert!(wait_until(WAIT, Duration::from_millis(50), || {
        bird.imported_routes("raw") == Some(1)
    }));
    peer.send_raw(bytes).unwrap();
    let logged = |text: &str| {
        wait_until(WAIT, Duration::from_millis(50), || {
            std::fs::read_to_string(bird.log_path()).is_ok_and(|l| l.contains(text))
        })
    };
    match reaction {
        Reaction::Notification(code, subcode) => {
            peer.wait_for(WAIT, |s| s.closed).unwrap();
            let got = peer.with_state(|s| s.last_notification());
            assert_eq!(got, Some((code, subcode)), "{name}");
        }
        Reaction::TreatAsWithdraw(text) => {
            assert!(logged(text), "{name}: log {}", bird.log_path().display());
            assert!(wait_until(WAIT, Duration::from_millis(50), || {
                bird.imported_routes("raw") == Some(0)
            }));
        }
        Reaction::Discard(text) => {
            assert!(logged(text), "{name}: log {}", bird.log_path().display());
            assert_eq!(bird.imported_routes("raw"), Some(1), "{name}");
        }
    }
    if !matches!(reaction, Reaction::Notification(..)) {
        peer.with_state(|s| assert!(s.notifications.is_empty() && !s.closed, "{name}"));
        assert_eq!(bird.protocol_state("raw").as_deref(), Some("Established"));
    }
}

#[test]
fn bird_answers_each_malformed_message_as_recorded_in_the_table() {
    let cases = cases();
    // Four at a time: each case is its own pair of namespaces and its own BIRD.
    for batch in cases.chunks(4) {
        std::thread::scope(|s| {
            for (name, bytes, reaction) in batch {
                s.spawn(move || run_case(name, bytes, *reaction));
            }
        });
    }
}
