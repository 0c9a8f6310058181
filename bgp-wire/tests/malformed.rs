//! Malformed-input table: each named case asserts the exact NOTIFICATION code/subcode/data and
//! the RFC 7606 action. For UPDATEs handled without a reset the most severe collected error is
//! checked, and treat-as-withdraw cases also check the routes handed back for withdrawal.
#![allow(clippy::unwrap_used)]

mod common;

use bgp_wire::{AfiSafi, ErrorAction, Message, PeerKind, SessionContext};
use common::{hex, message, update};

use ErrorAction::{
    AttributeDiscard as Discard, SessionReset as Reset, TreatAsWithdraw as Withdraw,
};

fn ebgp4() -> SessionContext {
    SessionContext {
        four_octet_as: true,
        ..SessionContext::default()
    }
}

fn ibgp4() -> SessionContext {
    SessionContext {
        peer_kind: PeerKind::Internal,
        ..ebgp4()
    }
}

fn err_ctx() -> SessionContext {
    SessionContext {
        enhanced_route_refresh: true,
        ..ebgp4()
    }
}

/// (code, subcode, data, action) of the decode, or None if it decoded without any error.
fn outcome(frame: &[u8], ctx: &SessionContext) -> Option<(u8, u8, Vec<u8>, ErrorAction)> {
    match Message::decode(frame, ctx) {
        Err(e) => Some((e.code, e.subcode, e.data, e.action)),
        Ok(Message::Update(u)) => {
            let e = u.errors.iter().max_by_key(|e| e.action.severity())?;
            Some((e.code, e.subcode, e.data.clone(), e.action))
        }
        Ok(_) => None,
    }
}

const NLRI: &str = "18 0a0001";
const ORIGIN: &str = "40 01 01 00";
const AS_PATH: &str = "40 02 06 02 01 0000fde9";
const NEXT_HOP: &str = "40 03 04 c0000201";

fn attrs(parts: &[&str]) -> Vec<u8> {
    hex(&parts.join(" "))
}

fn open_body(version: u8, my_as: u16, hold: u16, id: [u8; 4], params: &str) -> Vec<u8> {
    let params = hex(params);
    let mut b = vec![version];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(params.len() as u8);
    b.extend_from_slice(&params);
    message(1, &b)
}

struct Case {
    name: &'static str,
    frame: Vec<u8>,
    ctx: SessionContext,
    expect: (u8, u8, Vec<u8>, ErrorAction),
}

fn case(
    name: &'static str,
    frame: Vec<u8>,
    ctx: SessionContext,
    code: u8,
    sub: u8,
    data: &str,
    action: ErrorAction,
) -> Case {
    Case {
        name,
        frame,
        ctx,
        expect: (code, sub, hex(data), action),
    }
}

fn table() -> Vec<Case> {
    let c = ebgp4;
    let mut bad_marker = message(4, &[]);
    bad_marker[3] = 0;
    let mut short = message(4, &[]);
    short[17] = 18;
    let mut long = message(2, &[0; 4]);
    long[16..18].copy_from_slice(&4097u16.to_be_bytes());
    let id = [192, 0, 2, 9];
    let as4 = "02 06 41 04 0000fde9";
    vec![
        // Header (RFC 4271 §6.1).
        case("marker not all ones", bad_marker, c(), 1, 1, "", Reset),
        case("length below 19", short, c(), 1, 2, "0012", Reset),
        case(
            "length above 4096 without extended messages",
            long,
            c(),
            1,
            2,
            "1001",
            Reset,
        ),
        case(
            "unknown message type 7",
            message(7, &[]),
            c(),
            1,
            3,
            "07",
            Reset,
        ),
        case(
            "keepalive with a body",
            message(4, &[0]),
            c(),
            1,
            2,
            "0014",
            Reset,
        ),
        case(
            "open shorter than 29",
            message(1, &[4, 0, 1]),
            c(),
            1,
            2,
            "0016",
            Reset,
        ),
        case(
            "update shorter than 23",
            message(2, &[0, 0]),
            c(),
            1,
            2,
            "0015",
            Reset,
        ),
        // OPEN (RFC 4271 §6.2, RFC 6286, RFC 6793, RFC 7607).
        case(
            "open version 3",
            open_body(3, 65001, 90, id, as4),
            c(),
            2,
            1,
            "0004",
            Reset,
        ),
        case(
            "open peer AS 0",
            open_body(4, 0, 90, id, ""),
            c(),
            2,
            2,
            "",
            Reset,
        ),
        case(
            "open 4-octet AS capability 0",
            open_body(4, 65001, 90, id, "02 06 41 04 00000000"),
            c(),
            2,
            2,
            "",
            Reset,
        ),
        case(
            "open large AS without AS_TRANS",
            open_body(4, 65001, 90, id, "02 06 41 04 fa56ea01"),
            c(),
            2,
            2,
            "",
            Reset,
        ),
        case(
            "open AS_TRANS without 4-octet AS",
            open_body(4, 23456, 90, id, ""),
            c(),
            2,
            2,
            "",
            Reset,
        ),
        case(
            "open hold time 1",
            open_body(4, 65001, 1, id, as4),
            c(),
            2,
            6,
            "",
            Reset,
        ),
        case(
            "open hold time 2",
            open_body(4, 65001, 2, id, as4),
            c(),
            2,
            6,
            "",
            Reset,
        ),
        case(
            "open BGP identifier 0.0.0.0",
            open_body(4, 65001, 90, [0; 4], as4),
            c(),
            2,
            3,
            "",
            Reset,
        ),
        case(
            "open authentication parameter",
            open_body(4, 65001, 90, id, "01 01 00"),
            c(),
            2,
            4,
            "",
            Reset,
        ),
        case(
            "open parameter overrun",
            open_body(4, 65001, 90, id, "02 09 41 04 0000fde9"),
            c(),
            2,
            0,
            "",
            Reset,
        ),
        case(
            "open malformed 4-octet AS capability",
            open_body(4, 65001, 90, id, "02 05 41 03 00fde9"),
            c(),
            2,
            0,
            "41 03 00fde9",
            Reset,
        ),
        // UPDATE framing (RFC 7606 §4).
        case(
            "withdrawn routes length overruns",
            message(2, &hex("0010 0000")),
            c(),
            3,
            1,
            "",
            Reset,
        ),
        case(
            "total path attribute length overruns",
            message(2, &hex("0000 0010 40 01 01 00")),
            c(),
            3,
            1,
            "",
            Reset,
        ),
        case(
            "attribute length overruns the attribute block",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 08 08 00000001"]),
                &hex(NLRI),
            ),
            c(),
            3,
            1,
            "",
            Withdraw,
        ),
        case(
            "attribute header cut short",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 08"]),
                &hex(NLRI),
            ),
            c(),
            3,
            1,
            "",
            Withdraw,
        ),
        // NLRI (RFC 7606 §5.3: session reset).
        case(
            "nlri prefix length 33",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP]),
                &hex("21 0a000001 00"),
            ),
            c(),
            3,
            10,
            "",
            Reset,
        ),
        case(
            "nlri truncated prefix",
            update(&[], &attrs(&[ORIGIN, AS_PATH, NEXT_HOP]), &hex("18 0a00")),
            c(),
            3,
            10,
            "",
            Reset,
        ),
        case(
            "withdrawn prefix length 40",
            update(&hex("28 0a000000 00"), &[], &[]),
            c(),
            3,
            10,
            "",
            Reset,
        ),
        // Flags (RFC 7606 §3.c).
        case(
            "origin flagged optional",
            update(&[], &attrs(&["c0 01 01 00", AS_PATH, NEXT_HOP]), &hex(NLRI)),
            c(),
            3,
            4,
            "c0 01 01 00",
            Withdraw,
        ),
        case(
            "communities flagged well-known",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "40 08 04 fde90064"]),
                &hex(NLRI),
            ),
            c(),
            3,
            4,
            "40 08 04 fde90064",
            Withdraw,
        ),
        // Per-type lengths and values (RFC 7606 §7).
        case(
            "origin length 2",
            update(
                &[],
                &attrs(&["40 01 02 00 00", AS_PATH, NEXT_HOP]),
                &hex(NLRI),
            ),
            c(),
            3,
            5,
            "40 01 02 00 00",
            Withdraw,
        ),
        case(
            "origin value 3",
            update(&[], &attrs(&["40 01 01 03", AS_PATH, NEXT_HOP]), &hex(NLRI)),
            c(),
            3,
            6,
            "40 01 01 03",
            Withdraw,
        ),
        case(
            "next hop length 5",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, "40 03 05 c000020100"]),
                &hex(NLRI),
            ),
            c(),
            3,
            5,
            "40 03 05 c000020100",
            Withdraw,
        ),
        case(
            "next hop 0.0.0.0",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, "40 03 04 00000000"]),
                &hex(NLRI),
            ),
            c(),
            3,
            8,
            "40 03 04 00000000",
            Withdraw,
        ),
        case(
            "next hop multicast",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, "40 03 04 e0000005"]),
                &hex(NLRI),
            ),
            c(),
            3,
            8,
            "40 03 04 e0000005",
            Withdraw,
        ),
        case(
            "med length 2",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "80 04 02 0001"]),
                &hex(NLRI),
            ),
            c(),
            3,
            5,
            "80 04 02 0001",
            Withdraw,
        ),
        case(
            "local pref length 3",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "40 05 03 000064"]),
                &hex(NLRI),
            ),
            ibgp4(),
            3,
            5,
            "40 05 03 000064",
            Withdraw,
        ),
        case(
            "local pref from an external peer",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "40 05 04 00000064"]),
                &hex(NLRI),
            ),
            c(),
            3,
            1,
            "40 05 04 00000064",
            Discard,
        ),
        case(
            "atomic aggregate length 1",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "40 06 01 00"]),
                &hex(NLRI),
            ),
            c(),
            3,
            5,
            "40 06 01 00",
            Discard,
        ),
        case(
            "aggregator length 6 on a 4-octet session",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 07 06 fde9 c0000201"]),
                &hex(NLRI),
            ),
            c(),
            3,
            5,
            "c0 07 06 fde9 c0000201",
            Discard,
        ),
        case(
            "communities length 3",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 08 03 000001"]),
                &hex(NLRI),
            ),
            c(),
            3,
            5,
            "c0 08 03 000001",
            Withdraw,
        ),
        case(
            "originator id length 5",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "80 09 05 0a00000100"]),
                &hex(NLRI),
            ),
            ibgp4(),
            3,
            5,
            "80 09 05 0a00000100",
            Withdraw,
        ),
        case(
            "cluster list length 6",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "80 0a 06 0a0000010000"]),
                &hex(NLRI),
            ),
            ibgp4(),
            3,
            5,
            "80 0a 06 0a0000010000",
            Withdraw,
        ),
        case(
            "extended communities length 4",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 10 04 00020001"]),
                &hex(NLRI),
            ),
            c(),
            3,
            5,
            "c0 10 04 00020001",
            Withdraw,
        ),
        case(
            "large community length 8",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 20 08 0000000100000002"]),
                &hex(NLRI),
            ),
            c(),
            3,
            5,
            "c0 20 08 0000000100000002",
            Withdraw,
        ),
        case(
            "as4 path from a 4-octet speaker",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 11 06 02 01 0000fde9"]),
                &hex(NLRI),
            ),
            c(),
            3,
            9,
            "c0 11 06 02 01 0000fde9",
            Discard,
        ),
        case(
            "malformed as4 path",
            update(
                &[],
                &attrs(&[ORIGIN, "40 02 04 02 01 fde9", NEXT_HOP, "c0 11 03 02 01 00"]),
                &hex(NLRI),
            ),
            SessionContext::default(),
            3,
            9,
            "c0 11 03 02 01 00",
            Discard,
        ),
        // AS_PATH (RFC 7606 §7.2).
        case(
            "as path segment length zero",
            update(
                &[],
                &attrs(&[ORIGIN, "40 02 02 02 00", NEXT_HOP]),
                &hex(NLRI),
            ),
            c(),
            3,
            11,
            "",
            Withdraw,
        ),
        case(
            "as path segment type 5",
            update(
                &[],
                &attrs(&[ORIGIN, "40 02 06 05 01 0000fde9", NEXT_HOP]),
                &hex(NLRI),
            ),
            c(),
            3,
            11,
            "",
            Withdraw,
        ),
        case(
            "as path segment overrun",
            update(
                &[],
                &attrs(&[ORIGIN, "40 02 06 02 02 0000fde9", NEXT_HOP]),
                &hex(NLRI),
            ),
            c(),
            3,
            11,
            "",
            Withdraw,
        ),
        case(
            "as path one stray octet",
            update(
                &[],
                &attrs(&[ORIGIN, "40 02 07 02 01 0000fde9 00", NEXT_HOP]),
                &hex(NLRI),
            ),
            c(),
            3,
            11,
            "",
            Withdraw,
        ),
        // Missing well-known attributes (RFC 7606 §3.d).
        case(
            "missing origin",
            update(&[], &attrs(&[AS_PATH, NEXT_HOP]), &hex(NLRI)),
            c(),
            3,
            3,
            "01",
            Withdraw,
        ),
        case(
            "missing as path",
            update(&[], &attrs(&[ORIGIN, NEXT_HOP]), &hex(NLRI)),
            c(),
            3,
            3,
            "02",
            Withdraw,
        ),
        case(
            "missing next hop",
            update(&[], &attrs(&[ORIGIN, AS_PATH]), &hex(NLRI)),
            c(),
            3,
            3,
            "03",
            Withdraw,
        ),
        // Duplicates (RFC 7606 §3.g) and unrecognized attributes (RFC 4271 §6.3).
        case(
            "duplicate origin",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, ORIGIN]),
                &hex(NLRI),
            ),
            c(),
            3,
            1,
            "",
            Discard,
        ),
        case(
            "duplicate mp_unreach",
            update(&[], &attrs(&["80 0f 03 0002 01", "80 0f 03 0002 01"]), &[]),
            c(),
            3,
            1,
            "",
            Reset,
        ),
        case(
            "unrecognized well-known attribute",
            update(
                &[],
                &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "40 63 01 00"]),
                &hex(NLRI),
            ),
            c(),
            3,
            2,
            "40 63 01 00",
            Reset,
        ),
        // MP attributes (RFC 4760 §7, RFC 7606 §7.11).
        case(
            "mp_reach too short to name its family",
            update(&[], &attrs(&["80 0e 02 0002", ORIGIN, AS_PATH]), &[]),
            c(),
            3,
            9,
            "80 0e 02 0002",
            Reset,
        ),
        case(
            "mp_reach ipv6 next hop length 5",
            update(
                &[],
                &attrs(&["80 0e 0a 0002 01 05 0000000000 00", ORIGIN, AS_PATH]),
                &[],
            ),
            c(),
            3,
            9,
            "80 0e 0a 0002 01 05 0000000000 00",
            ErrorAction::AfiSafiDisable(AfiSafi::IPV6_UNICAST),
        ),
        case(
            "mp_reach prefix length 129",
            update(
                &[],
                &attrs(&[
                    "80 0e 16 0002 01 10 20010db8000000000000000000000001 00 81",
                    ORIGIN,
                    AS_PATH,
                ]),
                &[],
            ),
            c(),
            3,
            10,
            "",
            ErrorAction::AfiSafiDisable(AfiSafi::IPV6_UNICAST),
        ),
        case(
            "mp_unreach of an unsupported family",
            update(&[], &attrs(&["80 0f 03 0019 46"]), &[]),
            c(),
            3,
            9,
            "80 0f 03 0019 46",
            ErrorAction::AfiSafiDisable(AfiSafi::new(25, 70)),
        ),
        // RFC 7606 §5.2: treat-as-withdraw with nothing to withdraw resets the session.
        case(
            "zettabgp killer: as path with a stray octet and no nlri",
            message(2, &hex("0000 0006 40 02 03 02 00 00")),
            c(),
            3,
            11,
            "",
            Reset,
        ),
        // ROUTE-REFRESH (RFC 7313 §5).
        case(
            "route refresh length 24 with enhanced route refresh",
            message(5, &hex("0001 00 01 00")),
            err_ctx(),
            7,
            1,
            "ffffffffffffffffffffffffffffffff 0018 05 0001 00 01 00",
            Reset,
        ),
        case(
            "route refresh length 24 without enhanced route refresh",
            message(5, &hex("0001 00 01 00")),
            c(),
            1,
            2,
            "0018",
            Reset,
        ),
    ]
}

#[test]
fn every_malformed_case_maps_to_its_notification_and_rfc_7606_action() {
    let mut failures = Vec::new();
    for Case {
        name,
        frame,
        ctx,
        expect,
    } in table()
    {
        let got = outcome(&frame, &ctx);
        if got.as_ref() != Some(&expect) {
            failures.push(format!("{name}: expected {expect:02x?}, got {got:02x?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_error_display_names_an_rfc_rule() {
    for Case {
        name, frame, ctx, ..
    } in table()
    {
        let text = match Message::decode(&frame, &ctx) {
            Err(e) => e.to_string(),
            Ok(Message::Update(u)) => u
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            Ok(other) => panic!("{name}: decoded {other:?}"),
        };
        assert!(text.contains("RFC"), "{name}: {text}");
    }
}

#[test]
fn treat_as_withdraw_still_returns_every_route_to_withdraw() {
    let mp = "80 0e 25 0002 01 10 20010db8000000000000000000000001 00 40 20010db800000001 30 20010db80002";
    let frame = update(
        &hex("18 0a0002"),
        &attrs(&[mp, "40 01 01 09", AS_PATH]),
        &[],
    );
    let Message::Update(u) = Message::decode(&frame, &ebgp4()).unwrap() else {
        panic!()
    };
    assert!(u.treat_as_withdraw());
    assert_eq!(u.withdrawn.len(), 1);
    let reach = u.mp_reach.unwrap();
    assert_eq!(reach.nlri.len(), 2);
    assert_eq!(reach.nlri[1].prefix.to_string(), "2001:db8:2::/48");
}

#[test]
fn nlri_are_found_through_total_path_attribute_length_after_an_overrun() {
    let frame = update(
        &[],
        &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 08 ff 00000001"]),
        &hex("18 0a0001 18 0a0002"),
    );
    let Message::Update(u) = Message::decode(&frame, &ebgp4()).unwrap() else {
        panic!()
    };
    assert!(u.treat_as_withdraw());
    assert_eq!(u.nlri.len(), 2);
}

#[test]
fn unknown_optional_non_transitive_attributes_are_dropped_silently() {
    let frame = update(
        &[],
        &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "80 63 02 abcd"]),
        &hex(NLRI),
    );
    let Message::Update(u) = Message::decode(&frame, &ebgp4()).unwrap() else {
        panic!()
    };
    assert!(u.errors.is_empty());
    assert!(u.attributes.unknown.is_empty());
}

#[test]
fn a_duplicate_attribute_keeps_the_first_occurrence() {
    let frame = update(
        &[],
        &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "40 01 01 02"]),
        &hex(NLRI),
    );
    let Message::Update(u) = Message::decode(&frame, &ebgp4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.attributes.origin, Some(bgp_wire::Origin::Igp));
    assert!(!u.treat_as_withdraw());
}

#[test]
fn a_frame_that_disagrees_with_its_header_length_is_a_bad_message_length() {
    let mut frame = message(4, &[]);
    frame.push(0);
    let e = Message::decode(&frame, &ebgp4()).unwrap_err();
    assert_eq!((e.code, e.subcode, e.data), (1, 2, vec![0, 19]));
}

#[test]
fn extended_messages_raise_the_update_limit_but_not_the_open_limit() {
    let ctx = SessionContext {
        extended_message: true,
        ..ebgp4()
    };
    let mut header = message(2, &[0; 4]);
    header[16..18].copy_from_slice(&5000u16.to_be_bytes());
    assert!(bgp_wire::decode_header(&header, &ctx).unwrap().is_some());
    header[18] = 1;
    let e = bgp_wire::decode_header(&header, &ctx).unwrap_err();
    assert_eq!(
        (e.code, e.subcode, e.data),
        (1, 2, 5000u16.to_be_bytes().to_vec())
    );
}
