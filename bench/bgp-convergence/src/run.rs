//! One measured run: fresh namespaces, sessions up, the pre-encoded feed written, the clock
//! stopped when the counting receiver first holds every prefix.
//!
//! Topology through a DUT: `feeder` 192.0.2.1/30 — 192.0.2.2/30 `dut` 192.0.2.5/30 —
//! 192.0.2.6/30 `receiver`. Direct (the ceiling): `feeder` 192.0.2.1/30 — 192.0.2.2/30
//! `receiver`, the receiver accepting on port 179.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use fabric_testkit::bgp_peer::{BgpPeer, Feed, PeerConfig, PeerError};
use fabric_testkit::{Netns, veth};

use crate::dut::{Dut, DutKind, memory};

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Measurement {
    /// Feeder's first UPDATE write → receiver holds all N.
    pub to_receiver: Duration,
    /// Feeder's first UPDATE write → the DUT's answer first reporting all N imported.
    pub to_dut_rib: Option<Duration>,
    /// Time the feeder took to hand the whole feed to its socket.
    pub feed_written: Duration,
    /// DUT RSS with both sessions up, before the feed.
    pub idle_rss: Option<u64>,
    /// DUT peak RSS (`VmHWM`) at the end.
    pub peak_rss: Option<u64>,
    /// DUT RSS at the end.
    pub end_rss: Option<u64>,
}

const FEEDER_AS: u32 = 65001;
const RECEIVER_AS: u32 = 65003;
/// How often the DUT's RIB count is polled (one query on an open control socket).
const RIB_POLL: Duration = Duration::from_millis(20);

fn ip(ns: &Netns, args: &str) -> Result<()> {
    ns.try_ip(args)
        .map(drop)
        .map_err(|e| anyhow!("ip -n {} {args}: {e}", ns.name()))
}

fn addr(s: &str) -> SocketAddr {
    // Literal socket addresses in this file always parse.
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// The feeder: AS 65001, router id 192.0.2.1.
fn feeder_config() -> PeerConfig {
    PeerConfig::new(FEEDER_AS, Ipv4Addr::new(192, 0, 2, 1)).timeout(Duration::from_secs(60))
}

/// The counting receiver: AS 65003, router id 192.0.2.6, timing the arrival of `n` prefixes.
fn receiver_config(n: usize) -> PeerConfig {
    PeerConfig::new(RECEIVER_AS, Ipv4Addr::new(192, 0, 2, 6))
        .counting(n)
        .timeout(Duration::from_secs(60))
}

/// One run of `kind` with `feed` (N = `feed.prefixes()`), bounded by `timeout`.
pub fn run(
    kind: DutKind,
    feed: &Feed,
    timeout: Duration,
    bgpd: Option<&Path>,
) -> Result<Measurement> {
    let n = usize::try_from(feed.prefixes()).context("prefix count")?;
    let feeder = Netns::new("bcf");
    let receiver = Netns::new("bcr");
    if kind == DutKind::Direct {
        veth(&feeder, "feed0", &receiver, "recv0");
        ip(&feeder, "addr add 192.0.2.1/30 dev feed0")?;
        ip(&receiver, "addr add 192.0.2.2/30 dev recv0")?;
        let listener = receiver
            .run_in(|| TcpListener::bind("192.0.2.2:179"))
            .context("listening on 192.0.2.2:179 in the receiver namespace")?;
        let (rx, tx) = std::thread::scope(|s| {
            let accepting = s.spawn(|| BgpPeer::accept(&listener, receiver_config(n)));
            let tx = BgpPeer::connect_in(&feeder, addr("192.0.2.2:179"), feeder_config());
            let rx = accepting
                .join()
                .map_err(|_| anyhow!("the accepting thread panicked"))?;
            Ok::<_, anyhow::Error>((rx?, tx?))
        })
        .context("establishing feeder → receiver")?;
        return measure(&tx, &rx, None, feed, n, timeout);
    }
    let dut_ns = Netns::new("bcd");
    veth(&feeder, "feed0", &dut_ns, "dutf0");
    veth(&dut_ns, "dutr0", &receiver, "recv0");
    ip(&feeder, "addr add 192.0.2.1/30 dev feed0")?;
    ip(&dut_ns, "addr add 192.0.2.2/30 dev dutf0")?;
    ip(&dut_ns, "addr add 192.0.2.5/30 dev dutr0")?;
    ip(&receiver, "addr add 192.0.2.6/30 dev recv0")?;
    let mut dut = Dut::start(kind, &dut_ns, bgpd)?;
    let result = through_dut(&mut dut, &feeder, &receiver, feed, n, timeout);
    result.with_context(|| format!("DUT log (last lines):\n{}", dut.log_tail()))
}

/// Sessions with the DUT (receiver first, so it can pass routes on from the first one), then
/// the measurement.
fn through_dut(
    dut: &mut Dut,
    feeder: &Netns,
    receiver: &Netns,
    feed: &Feed,
    n: usize,
    timeout: Duration,
) -> Result<Measurement> {
    let rx = connect_to_dut(dut, receiver, addr("192.0.2.5:179"), receiver_config(n))
        .context("receiver session with the DUT")?;
    let tx = connect_to_dut(dut, feeder, addr("192.0.2.2:179"), feeder_config())
        .context("feeder session with the DUT")?;
    // The DUT's End-of-RIB toward the receiver says its initial (empty) export is done; a DUT
    // that sends none is measured anyway after this short wait.
    let _ = rx.wait_for(Duration::from_secs(3), |s| !s.end_of_rib.is_empty());
    measure(&tx, &rx, Some(dut), feed, n, timeout)
}

/// Connects from `ns` to the DUT, retrying while nothing listens yet, as long as the DUT
/// process lives (a DUT that exits fails the run at once instead of at the deadline).
fn connect_to_dut(dut: &mut Dut, ns: &Netns, to: SocketAddr, cfg: PeerConfig) -> Result<BgpPeer> {
    let deadline = Instant::now() + cfg.timeout;
    loop {
        dut.check_alive()?;
        let attempt = cfg.clone().timeout(Duration::from_secs(2));
        match BgpPeer::connect_in(ns, to, attempt) {
            Ok(peer) => return Ok(peer),
            Err(PeerError::NoConnection { .. }) if Instant::now() < deadline => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn measure(
    tx: &BgpPeer,
    rx: &BgpPeer,
    mut dut: Option<&mut Dut>,
    feed: &Feed,
    n: usize,
    timeout: Duration,
) -> Result<Measurement> {
    // A speaker that negotiates differently (no 4-octet AS, say) gets a feed encoded for its
    // session; this happens before the clock starts.
    let rebuilt;
    let feed = if feed.fits(&tx.context()) {
        feed
    } else {
        rebuilt = Feed::build(feed.plan(), &tx.context()).context("re-encoding the feed")?;
        &rebuilt
    };
    let idle_rss = dut.as_ref().and_then(|d| memory(d.pid())).map(|m| m.1);
    let mut dut_full_at: Option<Instant> = None;
    let report = std::thread::scope(|s| {
        let feeding = s.spawn(|| tx.send_feed(feed));
        let deadline = Instant::now() + timeout;
        let mut next_rib_poll = Instant::now();
        loop {
            let reached = rx.wait_for(RIB_POLL / 2, |st| {
                st.target_reached_at.is_some() || st.closed
            });
            if reached.is_ok() {
                break;
            }
            if let Some(d) = dut.as_deref_mut() {
                d.check_alive()?;
                if dut_full_at.is_none() && Instant::now() >= next_rib_poll {
                    next_rib_poll = Instant::now() + RIB_POLL;
                    if d.rib_count().is_some_and(|c| c >= n as u64) {
                        dut_full_at = Some(Instant::now());
                    }
                }
            }
            ensure!(
                Instant::now() < deadline,
                "the receiver did not get all {n} prefixes within {timeout:?}: {}",
                rx.with_state(|s| s.summary())
            );
        }
        feeding
            .join()
            .map_err(|_| anyhow!("the feeding thread panicked"))?
            .context("writing the feed")
    })?;
    let reached = rx.with_state(|s| (s.target_reached_at, s.held(), s.summary()));
    let reached_at = reached
        .0
        .with_context(|| format!("the receiver stopped before holding all: {}", reached.2))?;
    ensure!(
        reached.1 == n,
        "the receiver holds {} prefixes, not {n}",
        reached.1
    );
    let mem = dut.as_deref().and_then(|d| memory(d.pid()));
    Ok(Measurement {
        to_receiver: reached_at.saturating_duration_since(report.started),
        to_dut_rib: dut_full_at.map(|t| t.saturating_duration_since(report.started)),
        feed_written: report.finished.saturating_duration_since(report.started),
        idle_rss,
        peak_rss: mem.map(|m| m.0),
        end_rss: mem.map(|m| m.1),
    })
}
