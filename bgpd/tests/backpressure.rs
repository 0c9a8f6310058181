//! Backpressure (root, namespaces): a neighbour that stops reading does not stall the others;
//! its output queue is bounded and it is dropped at the limit, with the reason as its last error.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bgp_wire::{Message, SessionContext};
use common::{Bgpd, POLL, link};
use fabric_testkit::bgp_peer::{BgpPeer, Feed, FeedPlan, PeerConfig};
use fabric_testkit::{Netns, require_root, wait_until};

const N: u32 = 800_000;

/// Connects from inside `ns` with a 4 KiB receive buffer, completes the OPEN exchange, and
/// from then on never reads.
fn stalled_peer(ns: &Netns, to: SocketAddrV4, cfg: &PeerConfig) -> TcpStream {
    ns.run_in(|| {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockType, SockaddrIn, connect, setsockopt, socket, sockopt,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let fd = loop {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::empty(),
                None,
            )
            .unwrap();
            setsockopt(&fd, sockopt::RcvBuf, &4096).unwrap();
            match connect(fd.as_raw_fd(), &SockaddrIn::from(to)) {
                Ok(()) => break fd,
                Err(_) if Instant::now() < deadline => std::thread::sleep(POLL),
                Err(e) => panic!("connecting to {to}: {e}"),
            }
        };
        let mut s = TcpStream::from(fd);
        let ctx = SessionContext::default();
        s.write_all(&Message::Open(cfg.open()).encode(&ctx).unwrap())
            .unwrap();
        s.write_all(&Message::Keepalive.encode(&ctx).unwrap())
            .unwrap();
        // Read bgpd's OPEN and KEEPALIVE, then stop reading for good.
        let mut buf = Vec::new();
        let mut seen = (false, false);
        while !(seen.0 && seen.1) {
            let mut chunk = [0u8; 512];
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "bgpd closed the connection");
            buf.extend_from_slice(&chunk[..n]);
            while buf.len() >= 19 {
                let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
                if buf.len() < len {
                    break;
                }
                match buf[18] {
                    1 => seen.0 = true,
                    4 => seen.1 = true,
                    _ => {}
                }
                buf.drain(..len);
            }
        }
        s
    })
}

#[test]
fn a_neighbour_that_stops_reading_does_not_stall_the_others_and_is_dropped_at_the_queue_limit() {
    require_root();
    let a = Netns::new("bp");
    let feeder_ns = Netns::new("bp");
    let fast_ns = Netns::new("bp");
    let slow_ns = Netns::new("bp");
    link(&a, "a1", "192.0.2.1/30", &feeder_ns, "f1", "192.0.2.2/30");
    link(&a, "a2", "192.0.2.5/30", &fast_ns, "f2", "192.0.2.6/30");
    link(&a, "a3", "192.0.2.9/30", &slow_ns, "s3", "192.0.2.10/30");
    let bgpd = Bgpd::start(
        &a,
        r#"router-id = "192.0.2.1"
asn = 65001
listen = ["192.0.2.1:179", "192.0.2.5:179", "192.0.2.9:179"]
output-queue-limit = 2097152

[[neighbor]]
address = "192.0.2.2"
remote-asn = 65002
passive = true

[[neighbor]]
address = "192.0.2.6"
remote-asn = 65003
passive = true

[[neighbor]]
address = "192.0.2.10"
remote-asn = 65004
passive = true
"#,
    );
    let slow_cfg = PeerConfig::new(65004, Ipv4Addr::new(192, 0, 2, 10));
    let slow = stalled_peer(
        &slow_ns,
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 9), 179),
        &slow_cfg,
    );
    bgpd.wait_established("192.0.2.10");
    // Keep the stalled session's hold timer fed: it only stops reading.
    let stop = Arc::new(AtomicBool::new(false));
    let keepalives = {
        let mut s = slow.try_clone().unwrap();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let ka = Message::Keepalive
                .encode(&SessionContext::default())
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(&ka).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let fast = BgpPeer::connect_in(
        &fast_ns,
        "192.0.2.5:179".parse::<SocketAddr>().unwrap(),
        PeerConfig::new(65003, Ipv4Addr::new(192, 0, 2, 6)).counting(N as usize),
    )
    .unwrap();
    let feeder = BgpPeer::connect_in(
        &feeder_ns,
        "192.0.2.1:179".parse::<SocketAddr>().unwrap(),
        PeerConfig::new(65002, Ipv4Addr::new(192, 0, 2, 2)),
    )
    .unwrap();
    let feed = Feed::build(
        &FeedPlan::new(N, &[65002], Ipv4Addr::new(192, 0, 2, 2)),
        &feeder.context(),
    )
    .unwrap();
    let report = feeder.send_feed(&feed).unwrap();
    let all = fast.wait_for_named(
        "all prefixes at the fast receiver",
        Duration::from_secs(120),
        |s| s.target_reached_at.is_some() || s.closed,
    );
    assert!(
        all.is_ok() && fast.with_state(|s| s.target_reached_at.is_some()),
        "{all:?}\n{}",
        bgpd.log()
    );
    let took = fast.with_state(|s| s.target_reached_at.unwrap()) - report.started;
    eprintln!("{N} prefixes at the fast receiver after {took:?} with a stalled neighbour");

    let dropped = wait_until(Duration::from_secs(30), POLL, || {
        bgpd.neighbor("192.0.2.10")
            .and_then(|n| n.last_error)
            .is_some_and(|e| e.message.contains("output queue overflow"))
    });
    assert!(dropped, "{:?}\n{}", bgpd.neighbor("192.0.2.10"), bgpd.log());
    let slow_status = bgpd.neighbor("192.0.2.10").unwrap();
    assert_ne!(slow_status.state, "Established");
    assert_eq!(slow_status.flaps, 1);
    for addr in ["192.0.2.2", "192.0.2.6"] {
        let n = bgpd.neighbor(addr).unwrap();
        assert_eq!(n.state, "Established", "{addr}");
        assert_eq!(n.flaps, 0, "{addr}");
    }
    assert_eq!(
        bgpd.neighbor("192.0.2.6").unwrap().advertised(),
        u64::from(N)
    );
    stop.store(true, Ordering::Relaxed);
    drop(slow);
    let _ = keepalives.join();
}
