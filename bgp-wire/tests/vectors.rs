//! Byte-exact vectors per message type, hand-built from the RFC formats: each is decoded to the
//! expected value and that value encodes back to the same bytes.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_wire::{
    AddPathMode, AfiSafi, AsPath, AsSegment, Capability, Community, ExtendedNextHop, Fqdn,
    GracefulRestart, LargeCommunity, Message, MpReach, MpUnreach, NextHop, Nlri, Notification,
    Open, Origin, PathAttributes, PeerKind, RouteRefresh, RouteRefreshSubtype, SegmentType,
    SessionContext, Update,
};
use common::hex;

fn ctx4() -> SessionContext {
    SessionContext {
        four_octet_as: true,
        ..SessionContext::default()
    }
}

fn ibgp4() -> SessionContext {
    SessionContext {
        four_octet_as: true,
        peer_kind: PeerKind::Internal,
        ..SessionContext::default()
    }
}

fn assert_vector(bytes: &[u8], msg: &Message, ctx: &SessionContext) {
    assert_eq!(&Message::decode(bytes, ctx).unwrap(), msg, "decode");
    assert_eq!(msg.encode(ctx).unwrap().as_ref(), bytes, "encode");
}

fn nlri(s: &str) -> Nlri {
    Nlri::new(s.parse::<bgp_wire::Prefix>().unwrap())
}

#[test]
fn keepalive_is_a_bare_19_octet_header() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 0013 04");
    assert_vector(&bytes, &Message::Keepalive, &SessionContext::default());
}

#[test]
fn open_with_multiprotocol_route_refresh_and_4_octet_as_matches_rfc_layout() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 002d 01
         04 fde9 005a c0000201
         10 02 0e  01 04 0001 00 01  02 00  41 04 0000fde9");
    let open = Open::new(
        65001,
        90,
        Ipv4Addr::new(192, 0, 2, 1),
        vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::RouteRefresh,
        ],
    );
    assert_vector(&bytes, &Message::Open(open), &SessionContext::default());
}

#[test]
fn open_with_a_4_octet_as_uses_as_trans_and_carries_every_typed_capability() {
    let caps = vec![
        Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
        Capability::GracefulRestart(GracefulRestart {
            restart_state: true,
            notification: false,
            restart_time: 120,
            families: vec![
                (AfiSafi::IPV4_UNICAST, true),
                (AfiSafi::IPV6_UNICAST, false),
            ],
        }),
        Capability::FourOctetAs(4_200_000_001),
        Capability::AddPath(vec![(AfiSafi::IPV4_UNICAST, AddPathMode::Both)]),
        Capability::EnhancedRouteRefresh,
        Capability::ExtendedMessage,
        Capability::ExtendedNextHop(vec![ExtendedNextHop {
            nlri_afi: 1,
            nlri_safi: 1,
            next_hop_afi: 2,
        }]),
        Capability::Fqdn(Fqdn {
            hostname: "node-1".into(),
            domain: "cluster.local".into(),
        }),
        Capability::Unknown {
            code: 71,
            value: vec![],
        },
    ];
    let bytes = hex("ffffffffffffffffffffffffffffffff 0062 01
         04 5ba0 00b4 0a000001
         45 02 43
         01 04 0002 00 01
         40 0a 8078 0001 01 80 0002 01 00
         41 04 fa56ea01
         45 04 0001 01 03
         46 00
         06 00
         05 06 0001 0001 0002
         49 15 06 6e6f64652d31 0d 636c75737465722e6c6f63616c
         47 00");
    let open = Open::new(4_200_000_001, 180, Ipv4Addr::new(10, 0, 0, 1), caps);
    assert_eq!(open.my_as, 23456);
    assert_eq!(open.asn(), 4_200_000_001);
    assert_vector(&bytes, &Message::Open(open), &SessionContext::default());
}

#[test]
fn open_with_rfc_9072_extended_optional_parameters_is_decoded() {
    // Non-Ext OP Len 255, Non-Ext OP Type 255, Extended Opt. Parm. Length 11, then one
    // capabilities parameter with a 2-octet length.
    let bytes = hex("ffffffffffffffffffffffffffffffff 002b 01
         04 fde9 005a c0000201
         ff ff 000b  02 0008  01 04 0001 00 01  02 00");
    let Message::Open(open) = Message::decode(&bytes, &SessionContext::default()).unwrap() else {
        panic!()
    };
    assert_eq!(
        open.capabilities,
        vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::RouteRefresh
        ]
    );
}

#[test]
fn ipv4_update_with_two_calico_blocks_matches_rfc_layout() {
    let bytes = hex(&format!(
        "ffffffffffffffffffffffffffffffff 0035 02
         0000 0014 {}
         1a 0af40100  1a 0af40140",
        common::BASE_ATTRS_4
    ));
    let update = Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence([65001])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ..PathAttributes::default()
        },
        nlri: vec![nlri("10.244.1.0/26"), nlri("10.244.1.64/26")],
        ..Update::default()
    };
    assert_vector(&bytes, &Message::Update(update), &ctx4());
}

#[test]
fn ipv6_update_carries_a_32_octet_next_hop_with_link_local() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 0054 02
         0000 003d
         80 0e 2c 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00
                  30 20010db80001
         40 01 01 00
         40 02 00
         40 05 04 00000064");
    let update = Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            local_pref: Some(100),
            ..PathAttributes::default()
        },
        mp_reach: Some(MpReach {
            afi_safi: AfiSafi::IPV6_UNICAST,
            next_hop: NextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
            },
            nlri: vec![nlri("2001:db8:1::/48")],
        }),
        ..Update::default()
    };
    assert_vector(&bytes, &Message::Update(update), &ibgp4());
}

#[test]
fn ipv4_nlri_with_an_rfc_8950_ipv6_next_hop_keeps_the_whole_next_hop() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 0040 02
         0000 0029
         80 0e 19 0001 01 10 fd000000000000000000000000000001 00 18 0a0001
         40 01 01 00
         40 02 06 02 01 0000fde9");
    let Message::Update(u) = Message::decode(&bytes, &ctx4()).unwrap() else {
        panic!()
    };
    let mp = u.mp_reach.as_ref().unwrap();
    assert_eq!(mp.afi_safi, AfiSafi::IPV4_UNICAST);
    assert_eq!(
        mp.next_hop,
        NextHop::V6 {
            global: "fd00::1".parse::<Ipv6Addr>().unwrap(),
            link_local: None
        }
    );
    assert_eq!(mp.nlri, vec![nlri("10.0.1.0/24")]);
    assert_eq!(
        Message::Update(u).encode(&ctx4()).unwrap().as_ref(),
        &bytes[..]
    );
}

#[test]
fn a_2_octet_session_gets_as_trans_in_as_path_and_the_real_path_in_as4_path() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 003c 02
         0000 0021
         40 01 01 00
         40 02 06 02 02 fde9 5ba0
         40 03 04 c0000201
         c0 11 0a 02 02 0000fde9 fa56ea01
         18 0a0001");
    let update = Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence([65001, 4_200_000_001])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ..PathAttributes::default()
        },
        nlri: vec![nlri("10.0.1.0/24")],
        ..Update::default()
    };
    assert_vector(&bytes, &Message::Update(update), &SessionContext::default());
}

#[test]
fn route_reflection_and_community_attributes_decode_on_any_transport() {
    // ORIGINATOR_ID and CLUSTER_LIST are 4-octet IDs whatever the session's address family.
    let attrs = hex(&format!(
        "{} 40 05 04 00000064
         c0 08 08 fde90064 ffffff01
         80 09 04 0a000001
         80 0a 08 0a000002 0a000003
         c0 10 08 0002fde900000064
         c0 20 0c fa56ea01 00000001 00000002
         e0 63 02 abcd",
        common::BASE_ATTRS_4
    ));
    let bytes = common::update(&[], &attrs, &hex("18 0a0001"));
    let Message::Update(u) = Message::decode(&bytes, &ibgp4()).unwrap() else {
        panic!()
    };
    let a = &u.attributes;
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    assert_eq!(
        a.communities,
        vec![Community::new(65001, 100), Community::NO_EXPORT]
    );
    assert_eq!(a.originator_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(
        a.cluster_list,
        vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]
    );
    assert_eq!(
        a.extended_communities[0].to_string(),
        "00:02:fd:e9:00:00:00:64"
    );
    assert_eq!(
        a.large_communities,
        vec![LargeCommunity {
            global_admin: 4_200_000_001,
            local_data_1: 1,
            local_data_2: 2
        }]
    );
    assert_eq!(a.unknown[0].type_code, 0x63);
    // Unknown optional transitive attributes are passed on with the Partial bit (0x20) set.
    assert_eq!(
        Message::Update(u).encode(&ibgp4()).unwrap().as_ref(),
        &bytes[..]
    );
}

#[test]
fn end_of_rib_markers_are_an_empty_update_and_an_empty_mp_unreach() {
    let v4 = hex("ffffffffffffffffffffffffffffffff 0017 02 0000 0000");
    let v6 = hex("ffffffffffffffffffffffffffffffff 001d 02 0000 0006 80 0f 03 0002 01");
    for (bytes, af) in [(v4, AfiSafi::IPV4_UNICAST), (v6, AfiSafi::IPV6_UNICAST)] {
        assert_vector(&bytes, &Message::Update(Update::end_of_rib(af)), &ctx4());
        let Message::Update(u) = Message::decode(&bytes, &ctx4()).unwrap() else {
            panic!()
        };
        assert_eq!(u.as_end_of_rib(), Some(af));
    }
}

#[test]
fn ipv6_withdrawal_uses_mp_unreach() {
    let bytes = hex(
        "ffffffffffffffffffffffffffffffff 0026 02 0000 000f 80 0f 0c 0002 01 40 20010db800000001",
    );
    let update = Update {
        mp_unreach: Some(MpUnreach {
            afi_safi: AfiSafi::IPV6_UNICAST,
            withdrawn: vec![nlri("2001:db8:0:1::/64")],
        }),
        ..Update::default()
    };
    assert_vector(&bytes, &Message::Update(update), &ctx4());
}

#[test]
fn add_path_nlri_carry_a_path_identifier_when_negotiated() {
    let mut ctx = ctx4();
    ctx.add_path_receive.insert(AfiSafi::IPV4_UNICAST);
    ctx.add_path_send.insert(AfiSafi::IPV4_UNICAST);
    let bytes = hex(&format!(
        "ffffffffffffffffffffffffffffffff 0034 02 0000 0014 {} 00000007 1a 0af40100",
        common::BASE_ATTRS_4
    ));
    let Message::Update(u) = Message::decode(&bytes, &ctx).unwrap() else {
        panic!()
    };
    assert_eq!(
        u.nlri,
        vec![Nlri::with_path_id(
            "10.244.1.0/26".parse::<bgp_wire::Prefix>().unwrap(),
            7
        )]
    );
    assert_eq!(
        Message::Update(u).encode(&ctx).unwrap().as_ref(),
        &bytes[..]
    );
}

#[test]
fn confederation_segments_are_decoded_in_order() {
    let attrs =
        hex("40 01 01 02 40 02 12 03 01 0000fdea 02 01 0000fde9 01 01 0000fdeb 40 03 04 c0000201");
    let bytes = common::update(&[], &attrs, &hex("08 0a"));
    let Message::Update(u) = Message::decode(&bytes, &ctx4()).unwrap() else {
        panic!()
    };
    let path = u.attributes.as_path.as_ref().unwrap();
    assert_eq!(
        path.segments[0],
        AsSegment {
            kind: SegmentType::AsConfedSequence,
            asns: vec![65002]
        }
    );
    assert_eq!(path.to_string(), "(65002) 65001 {65003}");
    assert_eq!(path.path_len(), 2);
    assert_eq!(u.attributes.origin, Some(Origin::Incomplete));
}

#[test]
fn notification_with_a_shutdown_communication_matches_rfc_8203() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 0019 03 06 02 03 627965");
    let n = Notification::with_shutdown_communication(2, "bye").unwrap();
    assert_vector(
        &bytes,
        &Message::Notification(n.clone()),
        &SessionContext::default(),
    );
    assert_eq!(n.shutdown_communication(), Some("bye"));
}

#[test]
fn route_refresh_subtypes_follow_rfc_7313() {
    for (sub, subtype) in [
        ("00", RouteRefreshSubtype::Normal),
        ("01", RouteRefreshSubtype::BeginningOfRib),
        ("02", RouteRefreshSubtype::EndOfRib),
        ("09", RouteRefreshSubtype::Other(9)),
    ] {
        let bytes = hex(&format!(
            "ffffffffffffffffffffffffffffffff 0017 05 0002 {sub} 01"
        ));
        let rr = RouteRefresh {
            afi_safi: AfiSafi::IPV6_UNICAST,
            subtype,
        };
        assert_vector(
            &bytes,
            &Message::RouteRefresh(rr),
            &SessionContext::default(),
        );
    }
}

#[test]
fn the_negotiated_context_takes_capabilities_both_sides_advertised() {
    let id = Ipv4Addr::new(192, 0, 2, 1);
    let local = Open::new(
        65001,
        90,
        id,
        vec![
            Capability::ExtendedMessage,
            Capability::AddPath(vec![
                (AfiSafi::IPV4_UNICAST, AddPathMode::Both),
                (AfiSafi::IPV6_UNICAST, AddPathMode::Receive),
            ]),
        ],
    );
    let remote = Open::new(
        65002,
        90,
        id,
        vec![Capability::AddPath(vec![
            (AfiSafi::IPV4_UNICAST, AddPathMode::Receive),
            (AfiSafi::IPV6_UNICAST, AddPathMode::Send),
        ])],
    );
    let ctx = SessionContext::negotiate(&local, &remote, PeerKind::External);
    assert!(ctx.four_octet_as);
    assert!(!ctx.extended_message);
    assert!(ctx.add_path_send.contains(AfiSafi::IPV4_UNICAST));
    assert!(!ctx.add_path_receive.contains(AfiSafi::IPV4_UNICAST));
    assert!(ctx.add_path_receive.contains(AfiSafi::IPV6_UNICAST));
    assert!(!ctx.add_path_send.contains(AfiSafi::IPV6_UNICAST));
    assert_eq!(ctx.max_message_len(), 4096);
}
