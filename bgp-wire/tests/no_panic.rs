//! No panic, bounded allocation: a deterministic mutation fuzzer over 100,000 random and mutated
//! messages (bit flips, interesting bytes, truncation, length-field edits, insertions, deletions,
//! splices of valid seeds), each decoded as a framed message under several session contexts and
//! as a bare OPEN/UPDATE/NOTIFICATION/ROUTE-REFRESH body. Every result's heap footprint is checked
//! against a small multiple of the input length. The crash shapes reported for zettabgp
//! (bgp.md §1.6) are regression cases.
#![allow(clippy::unwrap_used)]

mod common;

use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_wire::ipnet::Ipv4Net;
use bgp_wire::{
    AddPathMode, AfiSafi, AfiSafiSet, Aggregator, AsPath, Capability, Community, DecodeError,
    ExtendedCommunity, Fqdn, GracefulRestart, LargeCommunity, Message, MpReach, MpUnreach, NextHop,
    Nlri, Notification, Open, Origin, PathAttributes, PeerKind, RawAttribute, RouteRefresh,
    SessionContext, Update,
};
use common::{hex, message};

const INPUTS: usize = 100_000;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn contexts() -> Vec<SessionContext> {
    let both = AfiSafiSet::from_families([AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]);
    vec![
        SessionContext::default(),
        SessionContext {
            four_octet_as: true,
            ..SessionContext::default()
        },
        SessionContext {
            four_octet_as: true,
            peer_kind: PeerKind::Internal,
            add_path_receive: both,
            add_path_send: both,
            ..SessionContext::default()
        },
        SessionContext {
            four_octet_as: true,
            extended_message: true,
            enhanced_route_refresh: true,
            peer_kind: PeerKind::Internal,
            ..SessionContext::default()
        },
    ]
}

fn seeds() -> Vec<Vec<u8>> {
    let ctxs = contexts();
    let nlri4: Vec<Nlri> = (0..50u32)
        .map(|i| Nlri::new(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap()))
        .collect();
    let nlri6 = vec![
        Nlri::new("2001:db8:1::/48".parse::<bgp_wire::Prefix>().unwrap()),
        Nlri::new("::/0".parse::<bgp_wire::Prefix>().unwrap()),
    ];
    let rich = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence([65001, 4_200_000_001, 65002])),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        multi_exit_disc: Some(10),
        local_pref: Some(100),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 4_200_000_002,
            address: Ipv4Addr::new(10, 0, 0, 9),
        }),
        communities: vec![Community::new(65001, 1), Community::NO_EXPORT],
        extended_communities: vec![ExtendedCommunity::route_target(65001, 7)],
        large_communities: vec![LargeCommunity {
            global_admin: 65001,
            local_data_1: 1,
            local_data_2: 2,
        }],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 2)],
        unknown: vec![RawAttribute {
            type_code: 99,
            value: vec![1, 2, 3],
        }],
    };
    let open = Open::new(
        4_200_000_001,
        90,
        Ipv4Addr::new(192, 0, 2, 1),
        vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::ExtendedMessage,
            Capability::GracefulRestart(GracefulRestart {
                restart_state: true,
                notification: true,
                restart_time: 120,
                families: vec![(AfiSafi::IPV4_UNICAST, true)],
            }),
            Capability::AddPath(vec![(AfiSafi::IPV4_UNICAST, AddPathMode::Both)]),
            Capability::Fqdn(Fqdn {
                hostname: "node-1".into(),
                domain: "cluster.local".into(),
            }),
        ],
    );
    let v6_update = Update {
        attributes: PathAttributes {
            next_hop: None,
            ..rich.clone()
        },
        mp_reach: Some(MpReach {
            afi_safi: AfiSafi::IPV6_UNICAST,
            next_hop: NextHop::V6 {
                global: Ipv6Addr::LOCALHOST,
                link_local: Some("fe80::1".parse().unwrap()),
            },
            nlri: nlri6.clone(),
        }),
        mp_unreach: Some(MpUnreach {
            afi_safi: AfiSafi::IPV6_UNICAST,
            withdrawn: nlri6,
        }),
        ..Update::default()
    };
    let v4_update = Update {
        attributes: rich,
        nlri: nlri4.clone(),
        withdrawn: nlri4[..5].to_vec(),
        ..Update::default()
    };
    let add_path = Update {
        nlri: nlri4
            .iter()
            .map(|n| Nlri::with_path_id(n.prefix, 7))
            .collect(),
        withdrawn: vec![Nlri::with_path_id(nlri4[0].prefix, 8)],
        ..v4_update.clone()
    };
    let mut out = vec![
        Message::Open(open).encode(&ctxs[0]).unwrap().to_vec(),
        Message::Update(v4_update.clone())
            .encode(&ctxs[0])
            .unwrap()
            .to_vec(),
        Message::Update(v4_update)
            .encode(&ctxs[1])
            .unwrap()
            .to_vec(),
        Message::Update(v6_update)
            .encode(&ctxs[1])
            .unwrap()
            .to_vec(),
        Message::Update(add_path).encode(&ctxs[2]).unwrap().to_vec(),
        Message::Update(Update::end_of_rib(AfiSafi::IPV6_UNICAST))
            .encode(&ctxs[0])
            .unwrap()
            .to_vec(),
        Message::Notification(Notification::with_shutdown_communication(2, "maintenance").unwrap())
            .encode(&ctxs[0])
            .unwrap()
            .to_vec(),
        Message::RouteRefresh(RouteRefresh::request(AfiSafi::IPV6_UNICAST))
            .encode(&ctxs[0])
            .unwrap()
            .to_vec(),
        Message::Keepalive.encode(&ctxs[0]).unwrap().to_vec(),
    ];
    out.extend(regressions().into_iter().map(|(_, b)| b));
    out
}

/// Crash and hang shapes reported for zettabgp 0.6.0 (bgp.md §1.6), as complete messages.
fn regressions() -> Vec<(&'static str, Vec<u8>)> {
    let up = |body: &str| message(2, &hex(body));
    vec![
        (
            "29-octet AS_PATH infinite loop",
            up("0000 0006 40 02 03 02 00 00"),
        ),
        ("AS_PATH one octet", up("0000 0004 40 02 01 02")),
        (
            "MP_REACH next hop overruns",
            up("0000 0007 80 0e 04 0002 01 10"),
        ),
        ("MP_REACH one octet", up("0000 0004 80 0e 01 00")),
        (
            "MP_REACH no reserved octet",
            up("0000 0008 80 0e 05 0001 01 01 0a"),
        ),
        ("MP_UNREACH two octets", up("0000 0005 80 0f 02 0002")),
        (
            "COMMUNITIES length 3",
            up("0000 0006 c0 08 03 000001 18 0a0000"),
        ),
        (
            "LARGE_COMMUNITY length 5",
            up("0000 0008 c0 20 05 0000000001 18 0a0000"),
        ),
        ("ORIGINATOR_ID length 2", up("0000 0005 80 09 02 0a00")),
        ("CLUSTER_LIST length 5", up("0000 0008 80 0a 05 0a00000100")),
        ("attribute header cut after flags", up("0000 0001 40")),
        ("attribute header cut after type", up("0000 0002 40 01")),
        ("extended length cut", up("0000 0003 50 02 00")),
        ("IPv4 prefix length 255", up("0000 0000 ff 0a0000")),
        (
            "IPv6 prefix length 255",
            up("0000 0010 80 0e 0d 0002 01 04 00000000 00 ff 2001 0db8"),
        ),
        ("ATTR_SET short", up("0000 0005 c0 80 02 0000")),
        ("withdrawn length 0xffff", up("ffff 0000")),
        ("header length 0", {
            let mut m = message(4, &[]);
            m[16] = 0;
            m[17] = 0;
            m
        }),
    ]
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], buf: &mut Vec<u8>) {
    buf.clear();
    if rng.below(10) < 3 {
        // Random buffer, half of them behind a valid-looking header.
        let len = rng.below(600);
        if rng.below(2) == 0 {
            buf.extend_from_slice(&[0xff; 16]);
            buf.extend_from_slice(&[0, 0, 1 + rng.below(5) as u8]);
        }
        buf.extend((0..len).map(|_| rng.byte()));
    } else {
        buf.extend_from_slice(&seeds[rng.below(seeds.len())]);
        for _ in 0..1 + rng.below(4) {
            let len = buf.len();
            match rng.below(8) {
                0 if len > 0 => {
                    let i = rng.below(len);
                    buf[i] ^= 1 << rng.below(8);
                }
                1 if len > 0 => {
                    let i = rng.below(len);
                    buf[i] = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x10][rng.below(7)];
                }
                2 => buf.truncate(rng.below(len + 1)),
                3 if len > 1 => {
                    // Length-field edit: any 2-octet field, with a value near the real one.
                    let i = rng.below(len - 1);
                    let v = u16::from_be_bytes([buf[i], buf[i + 1]]);
                    let v = match rng.below(4) {
                        0 => v.wrapping_add(1),
                        1 => v.wrapping_sub(1),
                        2 => rng.next() as u16,
                        _ => 0xffff,
                    };
                    buf[i..i + 2].copy_from_slice(&v.to_be_bytes());
                }
                4 => {
                    let i = rng.below(len + 1);
                    let n = 1 + rng.below(16);
                    let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
                    buf.splice(i..i, bytes);
                }
                5 if len > 0 => {
                    let i = rng.below(len);
                    let n = 1 + rng.below((len - i).min(16));
                    buf.drain(i..i + n);
                }
                6 if len > 0 => {
                    let i = rng.below(len);
                    let n = 1 + rng.below((len - i).min(32));
                    let chunk = buf[i..i + n].to_vec();
                    let at = rng.below(len + 1);
                    buf.splice(at..at, chunk);
                }
                _ => {
                    let other = &seeds[rng.below(seeds.len())];
                    let at = rng.below(len + 1);
                    buf.truncate(at);
                    buf.extend_from_slice(&other[rng.below(other.len())..]);
                }
            }
        }
    }
    // Usually make the header length agree, so the body decoders see the mutation.
    if buf.len() >= 19 && rng.below(4) != 0 {
        let len = u16::try_from(buf.len()).unwrap_or(u16::MAX);
        buf[16..18].copy_from_slice(&len.to_be_bytes());
    }
}

/// Approximate heap bytes owned by a decode result.
fn footprint(r: &Result<Message, DecodeError>) -> usize {
    fn vec<T>(v: &Vec<T>) -> usize {
        v.capacity() * size_of::<T>()
    }
    fn err(e: &DecodeError) -> usize {
        vec(&e.data)
    }
    fn attrs(a: &PathAttributes) -> usize {
        a.as_path.as_ref().map_or(0, |p| {
            vec(&p.segments) + p.segments.iter().map(|s| vec(&s.asns)).sum::<usize>()
        }) + vec(&a.communities)
            + vec(&a.extended_communities)
            + vec(&a.large_communities)
            + vec(&a.cluster_list)
            + vec(&a.unknown)
            + a.unknown.iter().map(|u| vec(&u.value)).sum::<usize>()
    }
    match r {
        Err(e) => err(e),
        Ok(Message::Update(u)) => {
            vec(&u.withdrawn)
                + vec(&u.nlri)
                + attrs(&u.attributes)
                + u.mp_reach.as_ref().map_or(0, |m| vec(&m.nlri))
                + u.mp_unreach.as_ref().map_or(0, |m| vec(&m.withdrawn))
                + vec(&u.errors)
                + u.errors.iter().map(err).sum::<usize>()
        }
        Ok(Message::Open(o)) => {
            vec(&o.capabilities)
                + o.capabilities
                    .iter()
                    .map(|c| match c {
                        Capability::Unknown { value, .. } => vec(value),
                        Capability::AddPath(v) => vec(v),
                        Capability::ExtendedNextHop(v) => vec(v),
                        Capability::GracefulRestart(g) => vec(&g.families),
                        Capability::Fqdn(f) => f.hostname.capacity() + f.domain.capacity(),
                        _ => 0,
                    })
                    .sum::<usize>()
        }
        Ok(Message::Notification(n)) => vec(&n.data),
        Ok(_) => 0,
    }
}

fn check_bounded(input: &[u8], r: &Result<Message, DecodeError>) {
    let heap = footprint(r);
    assert!(
        heap <= 96 * input.len() + 1024,
        "decode of {} octets holds {heap} heap octets: {input:02x?}",
        input.len()
    );
    // Display must not panic either.
    if let Err(e) = r {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn a_hundred_thousand_random_and_mutated_messages_never_panic_and_stay_bounded() {
    let ctxs = contexts();
    let seeds = seeds();
    let mut rng = Rng(0x5eed_b9b0_2026_0001);
    let mut buf = Vec::with_capacity(1024);
    let (mut ok, mut errors) = (0usize, 0usize);
    for _ in 0..INPUTS {
        mutate(&mut rng, &seeds, &mut buf);
        for ctx in &ctxs {
            let r = Message::decode(&buf, ctx);
            check_bounded(&buf, &r);
            if r.is_ok() { ok += 1 } else { errors += 1 }
        }
        // Bare bodies, bypassing the header checks.
        let body = buf.get(19..).unwrap_or(&buf);
        let ctx = &ctxs[rng.below(ctxs.len())];
        let _ = Open::decode(body);
        let _ = Notification::decode(body);
        let _ = RouteRefresh::decode(body, ctx);
        let r = Update::decode(body, ctx).map(Message::Update);
        check_bounded(body, &r);
    }
    // The corpus must exercise both outcomes, not just bounce off the header check.
    assert!(ok > INPUTS / 10, "only {ok} decodes succeeded");
    assert!(errors > INPUTS / 10, "only {errors} decodes failed");
}

#[test]
fn zettabgp_crash_shapes_decode_to_errors_or_values_without_panicking() {
    for (name, frame) in regressions() {
        for ctx in contexts() {
            let r = Message::decode(&frame, &ctx);
            check_bounded(&frame, &r);
            // Each is an error (reset, or collected with its routes to withdraw), except ATTR_SET
            // (128), an optional transitive attribute this codec passes on.
            let flagged = match &r {
                Err(_) => true,
                Ok(Message::Update(u)) => !u.errors.is_empty(),
                Ok(_) => false,
            };
            assert!(flagged || name.starts_with("ATTR_SET"), "{name}: {r:?}");
        }
    }
}

#[test]
fn the_29_octet_zettabgp_killer_is_a_malformed_as_path_session_reset() {
    let frame = message(2, &hex("0000 0006 40 02 03 02 00 00"));
    assert_eq!(frame.len(), 29);
    let e = Message::decode(&frame, &SessionContext::default()).unwrap_err();
    assert_eq!(
        (e.code, e.subcode, e.action),
        (3, 11, bgp_wire::ErrorAction::SessionReset)
    );
}
