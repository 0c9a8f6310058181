//! Quick release-mode timing of UPDATE decode and packing (not a benchmark suite):
//! `cargo run --release -p bgp-wire --example decode_throughput`.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use bgp_wire::ipnet::Ipv4Net;
use bgp_wire::{
    AfiSafi, AsPath, Message, NextHop, Nlri, Origin, PathAttributes, PeerKind, SessionContext,
    pack_announce,
};

fn main() {
    let ctx = SessionContext {
        four_octet_as: true,
        peer_kind: PeerKind::Internal,
        ..SessionContext::default()
    };
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence([64512, 4_200_000_001])),
        local_pref: Some(100),
        ..PathAttributes::default()
    };
    let nlri: Vec<Nlri> = (0..1000u32)
        .filter_map(|i| {
            Ipv4Net::new(Ipv4Addr::from(0x0100_0000 + (i << 8)), 24)
                .ok()
                .map(Nlri::new)
        })
        .collect();
    let nh = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    let Ok(messages) = pack_announce(&ctx, AfiSafi::IPV4_UNICAST, &attrs, nh, &nlri) else {
        eprintln!("packing failed");
        return;
    };
    let msg = &messages[0];
    let rounds = 20_000;
    let start = Instant::now();
    let mut prefixes = 0usize;
    for _ in 0..rounds {
        if let Ok(Message::Update(u)) = Message::decode(black_box(msg), &ctx) {
            prefixes += u.nlri.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "decode: {} octets, {} prefixes/msg: {:.2} us/msg, {:.0} M prefixes/s",
        msg.len(),
        prefixes / rounds,
        secs * 1e6 / rounds as f64,
        prefixes as f64 / secs / 1e6
    );
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(pack_announce(&ctx, AfiSafi::IPV4_UNICAST, &attrs, nh, black_box(&nlri)).ok());
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "pack: 1000 prefixes: {:.2} us/call, {:.0} M prefixes/s",
        secs * 1e6 / rounds as f64,
        1000.0 * rounds as f64 / secs / 1e6
    );
}
