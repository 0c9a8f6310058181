//! Throughput self-check: 1,000,000 IPv4 prefixes from one eBGP peer through the speaker core
//! (decode -> Adj-RIB-In -> best path -> Loc-RIB -> export -> Adj-RIB-Out -> packed UPDATEs) to
//! another eBGP peer. Prints routes/s and the resident memory per route (VmRSS).
//!
//! Run: `cargo run --release -p bgpd-core --example throughput [-- PREFIXES]`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant as WallClock;

use bgp_wire::{NextHop, PeerKind, Prefix, ipnet::Ipv4Net};
use bgpd_core::test_peer::TestPeer;
use bgpd_core::{Action, Input, Instant, PeerConfig, Speaker, SpeakerConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let count: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut cfg = SpeakerConfig::new(Ipv4Addr::new(10, 0, 0, 1), 64512);
    cfg.graceful_restart.enabled = false;
    let Ok(mut sp) = Speaker::new(cfg) else {
        eprintln!("invalid speaker configuration");
        return;
    };
    let now = Instant::ZERO;
    let mut peers = Vec::new();
    for (addr, asn) in [("192.0.2.1", 65001), ("198.51.100.1", 65002)] {
        let ip: IpAddr = addr.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let mut pc = PeerConfig::new(ip, asn);
        pc.passive = true;
        let mut out = Vec::new();
        if let Err(e) = sp.handle(now, Input::AddPeer(pc), &mut out) {
            eprintln!("{e}");
            return;
        }
        let IpAddr::V4(id) = ip else { return };
        let mut tp = TestPeer::new(ip, asn, id, PeerKind::External);
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 179);
        let (conn, _) = tp.establish(&mut sp, now, local);
        peers.push((tp, conn));
    }
    let (feeder, conn) = &peers[0];
    let prefixes: Vec<Prefix> = (0..count)
        .map(|i| {
            let addr = Ipv4Addr::from(0x0100_0000u32.wrapping_add(i << 8));
            Prefix::V4(Ipv4Net::new(addr, 24).unwrap_or_default())
        })
        .collect();
    let attrs = feeder.attributes(&[65001, 65100]);
    let frames = feeder.announce(&prefixes, &attrs, NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)));
    drop(prefixes);
    let in_bytes: usize = frames.iter().map(|f| f.len()).sum();
    let rss_before = rss_kib();

    let start = WallClock::now();
    let (mut out_frames, mut out_bytes, mut best_changes) = (0usize, 0usize, 0usize);
    let mut out = Vec::with_capacity(2048);
    let n_frames = frames.len();
    for frame in frames {
        let _ = sp.handle(now, Input::Received { conn: *conn, frame }, &mut out);
        for a in out.drain(..) {
            match a {
                Action::Send { frames, .. } => {
                    out_frames += frames.len();
                    out_bytes += frames.iter().map(|f| f.len()).sum::<usize>();
                }
                Action::BestPathChanged { .. } => best_changes += 1,
                _ => {}
            }
        }
    }
    let elapsed = start.elapsed();
    let rss_after = rss_kib();

    let routes = f64::from(count);
    let status = sp.peer_status(peers[1].0.address);
    let advertised = status
        .and_then(|s| s.prefixes.first().map(|c| c.advertised))
        .unwrap_or(0);
    println!("prefixes:            {count}");
    println!("UPDATEs in:          {n_frames} ({in_bytes} bytes)");
    println!("UPDATEs out:         {out_frames} ({out_bytes} bytes)");
    println!("best path changes:   {best_changes}");
    println!("advertised to peer:  {advertised}");
    println!("Loc-RIB prefixes:    {}", sp.prefix_count());
    println!("elapsed:             {:.3} s", elapsed.as_secs_f64());
    println!(
        "throughput:          {:.0} routes/s",
        routes / elapsed.as_secs_f64()
    );
    println!(
        "memory:              {} KiB -> {} KiB VmRSS, {:.1} bytes/route (Adj-RIB-In + Loc-RIB + Adj-RIB-Out)",
        rss_before,
        rss_after,
        (rss_after.saturating_sub(rss_before) as f64 * 1024.0) / routes
    );
}
