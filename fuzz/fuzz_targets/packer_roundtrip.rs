//! Fuzz target: prefixes built from the input are packed into UPDATEs; every message must fit
//! the limit, decode cleanly and together carry exactly the input prefixes.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_wire::ipnet::{IpNet, Ipv4Net, Ipv6Net};
use bgp_wire::{
    AfiSafi, AsPath, Community, Message, NextHop, Nlri, Origin, PathAttributes, SessionContext,
    pack_announce, pack_withdraw,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&bits, rest)) = data.split_first() else {
        return;
    };
    let v6 = bits & 1 != 0;
    let ctx = SessionContext {
        four_octet_as: true,
        extended_message: bits & 2 != 0,
        ..SessionContext::default()
    };
    let af = if v6 {
        AfiSafi::IPV6_UNICAST
    } else {
        AfiSafi::IPV4_UNICAST
    };
    let nlri: Vec<Nlri> = if v6 {
        rest.chunks_exact(17)
            .filter_map(|c| {
                let addr = Ipv6Addr::from(<[u8; 16]>::try_from(&c[..16]).ok()?);
                Ipv6Net::new(addr, c[16] % 129)
                    .ok()
                    .map(|n| Nlri::new(IpNet::V6(n)))
            })
            .collect()
    } else {
        rest.chunks_exact(5)
            .filter_map(|c| {
                let addr = Ipv4Addr::from(<[u8; 4]>::try_from(&c[..4]).ok()?);
                Ipv4Net::new(addr, c[4] % 33)
                    .ok()
                    .map(|n| Nlri::new(IpNet::V4(n)))
            })
            .collect()
    };
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence([65001])),
        communities: (0..u32::from(bits >> 2)).map(Community).collect(),
        ..PathAttributes::default()
    };
    let nh = if v6 {
        NextHop::V6 {
            global: Ipv6Addr::LOCALHOST,
            link_local: None,
        }
    } else {
        NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))
    };
    for withdraw in [false, true] {
        let messages = if withdraw {
            pack_withdraw(&ctx, af, &nlri)
        } else {
            pack_announce(&ctx, af, &attrs, nh, &nlri)
        };
        let messages = messages.expect("small attributes always leave room for a prefix");
        let mut carried = Vec::new();
        for m in &messages {
            assert!(m.len() <= ctx.max_message_len());
            let Ok(Message::Update(u)) = Message::decode(m, &ctx) else {
                panic!("packed message does not decode")
            };
            assert!(u.errors.is_empty());
            carried.extend(u.withdrawn);
            carried.extend(u.nlri);
            carried.extend(u.mp_reach.map(|r| r.nlri).unwrap_or_default());
            carried.extend(u.mp_unreach.map(|r| r.withdrawn).unwrap_or_default());
        }
        assert_eq!(carried, nlri);
    }
});
