//! Round-trip properties (encode then decode is the identity) for OPEN, UPDATE, NOTIFICATION and
//! ROUTE-REFRESH, and the packer properties: every message within the limit, each decodes, and
//! the union of their NLRI is the input.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_wire::ipnet::{IpNet, Ipv4Net, Ipv6Net};
use bgp_wire::{
    AddPathMode, AfiSafi, AfiSafiSet, Aggregator, AsPath, AsSegment, Capability, Community,
    EncodeError, ExtendedCommunity, ExtendedNextHop, Fqdn, GracefulRestart, LargeCommunity,
    Message, MpReach, MpUnreach, NextHop, Nlri, Notification, Open, Origin, PathAttributes,
    PeerKind, RawAttribute, RouteRefresh, RouteRefreshSubtype, SegmentType, SessionContext, Update,
    pack_announce, pack_withdraw,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn v4_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32)
        .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()))
}

fn v6_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()))
}

fn nlri_list(
    prefix: impl Strategy<Value = IpNet>,
    add_path: bool,
    max: usize,
) -> impl Strategy<Value = Vec<Nlri>> {
    vec((prefix, any::<u32>()), 0..max).prop_map(move |v| {
        v.into_iter()
            .map(|(p, id)| {
                if add_path {
                    Nlri::with_path_id(p, id)
                } else {
                    Nlri::new(p)
                }
            })
            .collect()
    })
}

fn asn() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..65535, 65536u32..=u32::MAX, Just(23456u32)]
}

fn as_path() -> impl Strategy<Value = AsPath> {
    let seg = |kinds: Vec<SegmentType>| {
        (proptest::sample::select(kinds), vec(asn(), 1..12))
            .prop_map(|(kind, asns)| AsSegment { kind, asns })
    };
    (
        vec(
            seg(vec![
                SegmentType::AsConfedSequence,
                SegmentType::AsConfedSet,
            ]),
            0..2,
        ),
        vec(seg(vec![SegmentType::AsSequence, SegmentType::AsSet]), 0..4),
    )
        .prop_map(|(confed, rest)| AsPath {
            segments: confed.into_iter().chain(rest).collect(),
        })
}

fn unicast_v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>()
        .prop_map(Ipv4Addr::from)
        .prop_filter("unicast next hop", |a| !bgp_wire::is_invalid_next_hop(*a))
}

fn unknown_attrs() -> impl Strategy<Value = Vec<RawAttribute>> {
    proptest::sample::subsequence(vec![21u8, 22, 25, 26, 35, 40, 99, 200], 0..3).prop_flat_map(
        |codes| {
            let n = codes.len();
            vec(vec(any::<u8>(), 0..300), n).prop_map(move |values| {
                codes
                    .iter()
                    .zip(values)
                    .map(|(&type_code, value)| RawAttribute { type_code, value })
                    .collect()
            })
        },
    )
}

fn attributes(internal: bool) -> impl Strategy<Value = PathAttributes> {
    (
        (
            proptest::sample::select(vec![Origin::Igp, Origin::Egp, Origin::Incomplete]),
            as_path(),
            unicast_v4(),
        ),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
        ),
        proptest::option::of((asn(), any::<u32>())),
        (
            vec(any::<u32>(), 0..8),
            vec(any::<[u8; 8]>(), 0..4),
            vec(any::<[u32; 3]>(), 0..4),
        ),
        (
            proptest::option::of(any::<u32>()),
            vec(any::<u32>(), 0..4),
            unknown_attrs(),
        ),
    )
        .prop_map(
            move |(
                (origin, path, nh),
                (med, lp, atomic),
                agg,
                (comms, ext, large),
                (orig, clusters, unknown),
            )| {
                PathAttributes {
                    origin: Some(origin),
                    as_path: Some(path),
                    next_hop: Some(nh),
                    multi_exit_disc: med,
                    local_pref: if internal { lp } else { None },
                    atomic_aggregate: atomic,
                    aggregator: agg.map(|(asn, a)| Aggregator {
                        asn,
                        address: Ipv4Addr::from(a),
                    }),
                    communities: comms.into_iter().map(Community).collect(),
                    extended_communities: ext.into_iter().map(ExtendedCommunity).collect(),
                    large_communities: large
                        .into_iter()
                        .map(|[a, b, c]| LargeCommunity {
                            global_admin: a,
                            local_data_1: b,
                            local_data_2: c,
                        })
                        .collect(),
                    originator_id: orig.map(Ipv4Addr::from),
                    cluster_list: clusters.into_iter().map(Ipv4Addr::from).collect(),
                    unknown,
                }
            },
        )
}

fn context() -> impl Strategy<Value = SessionContext> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(four, ext, internal, ap4, ap6)| {
            let mut add_path = AfiSafiSet::EMPTY;
            if ap4 {
                add_path.insert(AfiSafi::IPV4_UNICAST);
            }
            if ap6 {
                add_path.insert(AfiSafi::IPV6_UNICAST);
            }
            SessionContext {
                four_octet_as: four,
                extended_message: ext,
                enhanced_route_refresh: false,
                peer_kind: if internal {
                    PeerKind::Internal
                } else {
                    PeerKind::External
                },
                add_path_receive: add_path,
                add_path_send: add_path,
            }
        })
}

fn next_hop_v6() -> impl Strategy<Value = NextHop> {
    (any::<u128>(), proptest::option::of(any::<u128>())).prop_map(|(g, ll)| NextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    })
}

/// RFC 6793 §4.2.3 ignores AS4_PATH when a 2-octet speaker aggregated (AGGREGATOR is not
/// AS_TRANS), so a path with 4-octet ASNs only survives a 2-octet session with a 4-octet
/// aggregator or none.
/// Confederation members behind a 2-octet session are 2-octet ASes (AS4_PATH carries no
/// confederation segments, RFC 6793 §4.2.2).
fn fit_for_2_octet(attrs: &mut PathAttributes) {
    for seg in attrs
        .as_path
        .iter_mut()
        .flat_map(|p| p.segments.iter_mut())
        .filter(|s| s.kind.is_confed())
    {
        seg.asns.iter_mut().for_each(|a| *a = *a % 65535 + 1);
    }
    let needs_as4 = attrs.as_path.as_ref().is_some_and(|p| {
        p.segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > 0xffff))
    });
    if let Some(agg) = &mut attrs.aggregator
        && needs_as4
        && agg.asn <= 0xffff
        && agg.asn != 23456
    {
        agg.asn += 0x10000;
    }
}

fn update_strategy() -> impl Strategy<Value = (SessionContext, Update)> {
    context().prop_flat_map(|ctx| {
        let ap4 = ctx.add_path_send.contains(AfiSafi::IPV4_UNICAST);
        let ap6 = ctx.add_path_send.contains(AfiSafi::IPV6_UNICAST);
        let mp_reach = prop_oneof![
            Just(None),
            (next_hop_v6(), nlri_list(v6_prefix(), ap6, 20)).prop_map(|(nh, nlri)| Some(MpReach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                next_hop: nh,
                nlri
            })),
            (next_hop_v6(), nlri_list(v4_prefix(), ap4, 20)).prop_map(|(nh, nlri)| Some(MpReach {
                afi_safi: AfiSafi::IPV4_UNICAST,
                next_hop: nh,
                nlri
            })),
        ];
        let mp_unreach =
            proptest::option::of(nlri_list(v6_prefix(), ap6, 20).prop_map(|w| MpUnreach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                withdrawn: w,
            }));
        (
            Just(ctx),
            nlri_list(v4_prefix(), ap4, 30),
            attributes(ctx.peer_kind == PeerKind::Internal),
            nlri_list(v4_prefix(), ap4, 30),
            mp_reach,
            mp_unreach,
        )
            .prop_map(
                |(ctx, withdrawn, mut attributes, nlri, mp_reach, mp_unreach)| {
                    if !ctx.four_octet_as {
                        fit_for_2_octet(&mut attributes);
                    }
                    (
                        ctx,
                        Update {
                            withdrawn,
                            attributes,
                            nlri,
                            mp_reach,
                            mp_unreach,
                            errors: Vec::new(),
                        },
                    )
                },
            )
    })
}

fn capability() -> impl Strategy<Value = Capability> {
    let af = (1u16..4, 1u8..5).prop_map(|(a, s)| AfiSafi::new(a, s));
    let name = "[a-z0-9.-]{0,20}";
    prop_oneof![
        af.clone().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::ExtendedMessage),
        Just(Capability::EnhancedRouteRefresh),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            vec((af.clone(), any::<bool>()), 0..4)
        )
            .prop_map(|(r, n, t, f)| {
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: r,
                    notification: n,
                    restart_time: t,
                    families: f,
                })
            }),
        vec(
            (
                af.clone(),
                proptest::sample::select(vec![
                    AddPathMode::Receive,
                    AddPathMode::Send,
                    AddPathMode::Both
                ])
            ),
            0..4
        )
        .prop_map(Capability::AddPath),
        vec((1u16..3, 1u16..3, 1u16..3), 0..3).prop_map(|v| Capability::ExtendedNextHop(
            v.into_iter()
                .map(|(a, s, n)| ExtendedNextHop {
                    nlri_afi: a,
                    nlri_safi: s,
                    next_hop_afi: n
                })
                .collect()
        )),
        (name, name).prop_map(|(h, d)| Capability::Fqdn(Fqdn {
            hostname: h,
            domain: d
        })),
        (
            proptest::sample::select(vec![71u8, 128, 9, 200]),
            vec(any::<u8>(), 0..16)
        )
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn open_strategy() -> impl Strategy<Value = Open> {
    (
        asn().prop_filter("AS_TRANS is not a real AS", |&a| a != 23456),
        prop_oneof![Just(0u16), 3u16..],
        1u32..,
        vec(capability(), 0..60),
    )
        .prop_map(|(asn, hold, id, caps)| Open::new(asn, hold, Ipv4Addr::from(id), caps))
}

fn roundtrip(msg: &Message, ctx: &SessionContext) -> Message {
    let bytes = msg.encode(ctx).unwrap();
    Message::decode(&bytes, &ctx.mirrored()).unwrap()
}

proptest! {
    #[test]
    fn an_encoded_update_decodes_to_itself((ctx, update) in update_strategy()) {
        let msg = Message::Update(update);
        prop_assert_eq!(roundtrip(&msg, &ctx), msg);
    }

    #[test]
    fn an_encoded_open_decodes_to_itself(open in open_strategy()) {
        let msg = Message::Open(open);
        prop_assert_eq!(roundtrip(&msg, &SessionContext::default()), msg);
    }

    #[test]
    fn an_encoded_notification_decodes_to_itself(code in any::<u8>(), subcode in any::<u8>(), data in vec(any::<u8>(), 0..300)) {
        let msg = Message::Notification(Notification::new(code, subcode, data));
        prop_assert_eq!(roundtrip(&msg, &SessionContext::default()), msg);
    }

    #[test]
    fn an_encoded_route_refresh_decodes_to_itself(afi in any::<u16>(), safi in any::<u8>(), sub in any::<u8>()) {
        let subtype = match sub { 0 => RouteRefreshSubtype::Normal, 1 => RouteRefreshSubtype::BeginningOfRib,
            2 => RouteRefreshSubtype::EndOfRib, v => RouteRefreshSubtype::Other(v) };
        let msg = Message::RouteRefresh(RouteRefresh { afi_safi: AfiSafi::new(afi, safi), subtype });
        prop_assert_eq!(roundtrip(&msg, &SessionContext::default()), msg);
    }

    #[test]
    fn packed_announcements_fit_decode_and_carry_exactly_the_input(
        ctx in context(),
        v6 in any::<bool>(),
        rfc8950 in any::<bool>(),
        attrs in attributes(true),
        seed in vec((any::<u128>(), any::<u8>(), any::<u32>()), 0..2500),
    ) {
        let (af, ap) = if v6 { (AfiSafi::IPV6_UNICAST, ctx.add_path_send.contains(AfiSafi::IPV6_UNICAST)) }
            else { (AfiSafi::IPV4_UNICAST, ctx.add_path_send.contains(AfiSafi::IPV4_UNICAST)) };
        let nlri = nlri_from_seed(&seed, v6, ap);
        let next_hop = if v6 || rfc8950 {
            NextHop::V6 { global: "2001:db8::1".parse().unwrap(), link_local: None }
        } else {
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))
        };
        let mut attrs = attrs;
        if !ctx.four_octet_as { fit_for_2_octet(&mut attrs); }
        if ctx.peer_kind == PeerKind::External { attrs.local_pref = None; }
        let messages = pack_announce(&ctx, af, &attrs, next_hop, &nlri).unwrap();
        let mut carried = Vec::new();
        for m in &messages {
            prop_assert!(m.len() <= ctx.max_message_len());
            let Message::Update(u) = Message::decode(m, &ctx.mirrored()).unwrap() else { panic!("not an update") };
            prop_assert!(u.errors.is_empty(), "{:?}", u.errors);
            let mut expect = attrs.clone();
            expect.next_hop = match next_hop { NextHop::V4(a) if !v6 => Some(a), _ => None };
            prop_assert_eq!(&u.attributes, &expect);
            carried.extend(u.nlri);
            if let Some(r) = u.mp_reach { prop_assert_eq!(r.next_hop, next_hop); carried.extend(r.nlri); }
        }
        prop_assert_eq!(carried, nlri);
    }

    #[test]
    fn packed_withdrawals_fit_decode_and_carry_exactly_the_input(
        ctx in context(),
        v6 in any::<bool>(),
        seed in vec((any::<u128>(), any::<u8>(), any::<u32>()), 0..3000),
    ) {
        let (af, ap) = if v6 { (AfiSafi::IPV6_UNICAST, ctx.add_path_send.contains(AfiSafi::IPV6_UNICAST)) }
            else { (AfiSafi::IPV4_UNICAST, ctx.add_path_send.contains(AfiSafi::IPV4_UNICAST)) };
        let nlri = nlri_from_seed(&seed, v6, ap);
        let messages = pack_withdraw(&ctx, af, &nlri).unwrap();
        let mut carried = Vec::new();
        for m in &messages {
            prop_assert!(m.len() <= ctx.max_message_len());
            let Message::Update(u) = Message::decode(m, &ctx.mirrored()).unwrap() else { panic!("not an update") };
            carried.extend(u.withdrawn);
            if let Some(w) = u.mp_unreach { carried.extend(w.withdrawn); }
        }
        prop_assert_eq!(carried, nlri);
    }
}

fn nlri_from_seed(seed: &[(u128, u8, u32)], v6: bool, add_path: bool) -> Vec<Nlri> {
    seed.iter()
        .map(|&(a, l, id)| {
            let p = if v6 {
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l % 129).unwrap())
            } else {
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a as u32), l % 33).unwrap())
            };
            if add_path {
                Nlri::with_path_id(p, id)
            } else {
                Nlri::new(p)
            }
        })
        .collect()
}

fn base_attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence([64512, 4_200_000_001])),
        local_pref: Some(100),
        ..PathAttributes::default()
    }
}

#[test]
fn a_thousand_calico_blocks_pack_into_the_fewest_legal_updates() {
    let ctx = SessionContext {
        four_octet_as: true,
        peer_kind: PeerKind::Internal,
        ..SessionContext::default()
    };
    let nlri: Vec<Nlri> = (0..1000u32)
        .map(|i| {
            Nlri::new(IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(0x0af4_0000 + i * 64), 26).unwrap(),
            ))
        })
        .collect();
    let messages = pack_announce(
        &ctx,
        AfiSafi::IPV4_UNICAST,
        &base_attrs(),
        NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)),
        &nlri,
    )
    .unwrap();
    // 1000 x 5 octets do not fit one 4096-octet message but fit two.
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|m| m.len() <= 4096));
    let ext = SessionContext {
        extended_message: true,
        ..ctx
    };
    let messages = pack_announce(
        &ext,
        AfiSafi::IPV4_UNICAST,
        &base_attrs(),
        NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)),
        &nlri,
    )
    .unwrap();
    assert_eq!(messages.len(), 1);
}

#[test]
fn uniform_prefixes_use_the_minimum_number_of_messages() {
    let ctx = SessionContext {
        four_octet_as: true,
        peer_kind: PeerKind::Internal,
        ..SessionContext::default()
    };
    let nlri: Vec<Nlri> = (0..5000u128)
        .map(|i| {
            Nlri::new(IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 64)), 64).unwrap(),
            ))
        })
        .collect();
    let nh = NextHop::V6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    let messages = pack_announce(&ctx, AfiSafi::IPV6_UNICAST, &base_attrs(), nh, &nlri).unwrap();
    let first = Message::decode(&messages[0], &ctx).unwrap();
    let Message::Update(u) = first else { panic!() };
    let per_message = u.mp_reach.unwrap().nlri.len();
    assert_eq!(messages.len(), nlri.len().div_ceil(per_message));
    // One more prefix would not have fitted in a full message.
    assert!(messages[0].len() + 9 > 4096);
}

#[test]
fn attributes_too_large_for_any_prefix_are_an_encoding_error_not_a_panic() {
    let ctx = SessionContext {
        four_octet_as: true,
        ..SessionContext::default()
    };
    let mut attrs = base_attrs();
    attrs.local_pref = None;
    attrs.communities = (0..1100).map(Community).collect();
    let nlri = [Nlri::new("10.0.0.0/8".parse::<IpNet>().unwrap())];
    let err = pack_announce(
        &ctx,
        AfiSafi::IPV4_UNICAST,
        &attrs,
        NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)),
        &nlri,
    )
    .unwrap_err();
    assert!(
        matches!(err, EncodeError::AttributesTooLarge { .. }),
        "{err}"
    );
    let update = Update {
        attributes: attrs,
        nlri: nlri.to_vec(),
        ..Update::default()
    };
    let err = Message::Update(update).encode(&ctx).unwrap_err();
    assert!(
        matches!(err, EncodeError::MessageTooLong { max: 4096, .. }),
        "{err}"
    );
}

#[test]
fn mismatched_families_and_path_ids_are_encoding_errors() {
    let ctx = SessionContext::default();
    let v6 = [Nlri::new("2001:db8::/32".parse::<IpNet>().unwrap())];
    let nh = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    assert!(matches!(
        pack_announce(&ctx, AfiSafi::IPV4_UNICAST, &base_attrs(), nh, &v6),
        Err(EncodeError::FamilyMismatch { .. })
    ));
    assert!(matches!(
        pack_announce(&ctx, AfiSafi::IPV6_UNICAST, &base_attrs(), nh, &v6),
        Err(EncodeError::NextHopFamily { .. })
    ));
    let with_id = [Nlri::with_path_id(
        "10.0.0.0/8".parse::<IpNet>().unwrap(),
        1,
    )];
    assert!(matches!(
        pack_withdraw(&ctx, AfiSafi::IPV4_UNICAST, &with_id),
        Err(EncodeError::PathId { .. })
    ));
}
