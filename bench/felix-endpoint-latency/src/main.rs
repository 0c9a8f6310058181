//! Endpoint-to-route latency: the time from a WorkloadEndpoint stored in the sqlite datastore
//! to felix's `/32 dev cali...` route in the kernel, seen by a netlink route monitor in the
//! node's namespace. Two modes, each with a fresh namespace, datastore and felix: endpoints
//! one at a time (a pause after each route, so every endpoint is an isolated event), and a
//! burst of all endpoints written back to back. Prints a Markdown table and can write it into
//! `bench/BENCHMARKS.md` (section "Felix: endpoint to route latency"). Needs root.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use fabric_api::endpoint::WorkloadEndpointSpec;
use fabric_api::ippool::{IPIPMode, VXLANMode};
use fabric_api::meta::ObjectMeta;
use fabric_api::node::{NodeBGPSpec, NodeSpec};
use fabric_api::{IPPool, IPPoolSpec, Node, WorkloadEndpoint};
use fabric_datastore::ipam_model::{AffinityState, BlockAffinity};
use fabric_datastore::keys::ipam_affinity_key;
use fabric_datastore::{Backend, Client, DatastoreConfig, DatastoreKind, SqliteBackend};
use fabric_testkit::Netns;
use felix::FelixConfig;
use ipnet::IpNet;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use netlink_sys::Socket;
use netlink_sys::protocols::NETLINK_ROUTE;

const SECTION: &str = "## Felix: endpoint to route latency";
const NODE: &str = "bench-node";
/// `RTNLGRP_IPV4_ROUTE`.
const IPV4_ROUTE_GROUP: u32 = 7;
/// Blocks of /26 affine to the node (1,024 addresses).
const BLOCKS: u32 = 16;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "WorkloadEndpoint stored -> felix route in the kernel, p50/p99")]
struct Args {
    /// Endpoints per mode (at most 1,000).
    #[arg(long, default_value_t = 1000)]
    endpoints: u32,
    /// Pause after each route in the one-at-a-time mode (longer than felix's 100 ms apply
    /// interval, so each endpoint is applied on its own).
    #[arg(long, default_value_t = 150)]
    gap_ms: u64,
    /// Write the section into BENCHMARKS.md.
    #[arg(long)]
    write: bool,
    /// The BENCHMARKS.md to update with --write (default: the workspace's bench/BENCHMARKS.md).
    #[arg(long)]
    output: Option<PathBuf>,
}

fn endpoint_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a41_0000 + 1 + i)
}

fn iface(i: u32) -> String {
    format!("cali{i:011}")
}

/// A node namespace with N `cali*` veths, a datastore with its pool, Node and blocks, and a
/// felix running on a thread inside the namespace.
struct World {
    ns: Arc<Netns>,
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    felix: Option<JoinHandle<Result<(), String>>>,
}

impl World {
    fn new(n: u32) -> Result<World> {
        let ns = Arc::new(Netns::new("fxlat"));
        let dir = tempfile::tempdir().context("temporary directory")?;
        let mut batch = String::from(
            "link add eth0 type veth peer name peer0\naddr add 172.16.0.1/24 dev eth0\nlink set eth0 up\nlink set peer0 up\n",
        );
        for i in 0..n {
            let _ = writeln!(batch, "link add {} type veth peer name w{i}", iface(i));
            let _ = writeln!(batch, "link set {} up", iface(i));
            let _ = writeln!(batch, "link set w{i} up");
        }
        let file = dir.path().join("links.batch");
        std::fs::write(&file, batch).context("writing the ip batch")?;
        let out = std::process::Command::new("ip")
            .args(["-n", ns.name(), "-batch"])
            .arg(&file)
            .output()
            .context("running ip -batch")?;
        ensure!(
            out.status.success(),
            "ip -batch: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let db = dir.path().join("calico.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("runtime")?;
        let backend: Arc<dyn Backend> =
            Arc::new(SqliteBackend::open(&db).context("opening the datastore")?);
        let client = Client::new(backend.clone());
        rt.block_on(async {
            client
                .apply(IPPool {
                    metadata: ObjectMeta::named("pool"),
                    spec: IPPoolSpec {
                        cidr: "10.65.0.0/16".into(),
                        vxlan_mode: Some(VXLANMode::Always),
                        ipip_mode: Some(IPIPMode::Never),
                        ..IPPoolSpec::default()
                    },
                    status: None,
                })
                .await?;
            client
                .apply(Node {
                    metadata: ObjectMeta::named(NODE),
                    spec: NodeSpec {
                        bgp: Some(NodeBGPSpec {
                            ipv4_address: "172.16.0.1/24".into(),
                            ..NodeBGPSpec::default()
                        }),
                        ipv4_vxlan_tunnel_addr: "10.65.0.0".into(),
                        vxlan_tunnel_mac_addr: "66:0a:00:00:00:01".into(),
                        ..NodeSpec::default()
                    },
                    status: None,
                })
                .await?;
            let affinity = serde_json::to_string(&BlockAffinity {
                state: AffinityState::Confirmed,
                deleted: false,
            })?;
            for b in 0..BLOCKS {
                let cidr = IpNet::new(Ipv4Addr::from(0x0a41_0000 + 64 * b).into(), 26)?;
                backend
                    .create(&ipam_affinity_key(NODE, &cidr), &affinity)
                    .await?;
            }
            anyhow::Ok(())
        })?;

        let datastore = DatastoreConfig {
            kind: DatastoreKind::Sqlite,
            sqlite_path: db,
            ..DatastoreConfig::default()
        };
        let config = FelixConfig::new(NODE, datastore);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let felix_ns = ns.clone();
        let felix = std::thread::spawn(move || -> Result<(), String> {
            felix_ns.enter_current_thread().map_err(|e| e.to_string())?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(felix::run(config, None, async {
                let _ = stop_rx.await;
            }))
            .map_err(|e| format!("{e:#}"))
        });
        let world = World {
            ns,
            _dir: dir,
            rt,
            client,
            stop: Some(stop_tx),
            felix: Some(felix),
        };
        let ready =
            fabric_testkit::wait_until(Duration::from_secs(60), Duration::from_millis(50), || {
                world
                    .ns
                    .try_ip("route show proto 80 type blackhole")
                    .map(|o| o.lines().count() == BLOCKS as usize)
                    .unwrap_or(false)
            });
        ensure!(ready, "felix did not program the node's blocks within 60 s");
        Ok(world)
    }

    /// Stores endpoint `i`; returns when the write was issued and how long it took.
    fn store_endpoint(&self, i: u32) -> Result<(Instant, Duration)> {
        let wep = WorkloadEndpoint {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            spec: WorkloadEndpointSpec {
                orchestrator: "k8s".into(),
                node: NODE.into(),
                pod: format!("bench-{i}"),
                endpoint: "eth0".into(),
                interface_name: iface(i),
                ip_networks: vec![format!("{}/32", endpoint_ip(i))],
                ..WorkloadEndpointSpec::default()
            },
        };
        let issued = Instant::now();
        self.rt
            .block_on(self.client.apply(wep))
            .with_context(|| format!("storing endpoint {i}"))?;
        Ok((issued, issued.elapsed()))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(f) = self.felix.take() {
            match f.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("felix ended with: {e}"),
                Err(_) => eprintln!("the felix thread panicked"),
            }
        }
    }
}

/// A netlink route monitor in a namespace: every new protocol-80 /32 with its arrival time.
struct Monitor {
    events: mpsc::Receiver<(Ipv4Addr, Instant)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Monitor {
    fn start(ns: Arc<Netns>) -> Result<Monitor> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || -> Result<()> {
            ns.enter_current_thread()
                .context("entering the namespace")?;
            let mut socket = Socket::new(NETLINK_ROUTE).context("netlink socket")?;
            socket.bind_auto().context("binding")?;
            socket
                .add_membership(IPV4_ROUTE_GROUP)
                .context("joining the route group")?;
            let _ = nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::RcvBufForce,
                &(16 << 20),
            );
            nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::ReceiveTimeout,
                &nix::sys::time::TimeVal::new(0, 100_000),
            )
            .context("receive timeout")?;
            let _ = ready_tx.send(());
            while !flag.load(Ordering::Relaxed) {
                let buf = match socket.recv_from_full() {
                    Ok((buf, _)) => buf,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue;
                    }
                    Err(e) => bail!("reading route notifications: {e}"),
                };
                let now = Instant::now();
                for ip in new_felix_host_routes(&buf) {
                    let _ = tx.send((ip, now));
                }
            }
            Ok(())
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .context("the route monitor did not start")?;
        Ok(Monitor {
            events: rx,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && let Ok(Err(e)) = t.join()
        {
            eprintln!("route monitor: {e:#}");
        }
    }
}

/// The destinations of the RTM_NEWROUTE /32s with protocol 80 in one datagram.
fn new_felix_host_routes(buf: &[u8]) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset + 16 <= buf.len() {
        let len = u32::from_ne_bytes([
            buf[offset],
            buf[offset + 1],
            buf[offset + 2],
            buf[offset + 3],
        ]) as usize;
        if len < 16 || offset + len > buf.len() {
            break;
        }
        if let Ok(msg) =
            NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..offset + len])
            && let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) = msg.payload
            && u8::from(route.header.protocol) == 80
            && route.header.destination_prefix_length == 32
        {
            for attr in &route.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(ip)) = attr {
                    out.push(*ip);
                }
            }
        }
        offset += (len + 3) & !3;
    }
    out
}

/// Latencies and datastore write times.
struct Measured {
    latencies: Vec<Duration>,
    writes: Vec<Duration>,
}

/// Latency per endpoint, one endpoint at a time with a pause after each route.
fn one_at_a_time(n: u32, gap: Duration) -> Result<Measured> {
    let world = World::new(n)?;
    let monitor = Monitor::start(world.ns.clone())?;
    let mut latencies = Vec::with_capacity(n as usize);
    let mut writes = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (stored, write) = world.store_endpoint(i)?;
        writes.push(write);
        let want = endpoint_ip(i);
        let deadline = stored + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (ip, at) = monitor
                .events
                .recv_timeout(left)
                .with_context(|| format!("no route for endpoint {i} ({want}) within 30 s"))?;
            if ip == want {
                latencies.push(at.saturating_duration_since(stored));
                break;
            }
        }
        std::thread::sleep(gap);
    }
    Ok(Measured { latencies, writes })
}

/// Latency per endpoint when all are stored back to back.
fn burst(n: u32) -> Result<(Measured, Duration)> {
    let world = World::new(n)?;
    let monitor = Monitor::start(world.ns.clone())?;
    let mut stored = HashMap::new();
    let mut writes = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let (issued, write) = world.store_endpoint(i)?;
        stored.insert(endpoint_ip(i), issued);
        writes.push(write);
    }
    let mut routed: HashMap<Ipv4Addr, Instant> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while routed.len() < n as usize {
        let left = deadline.saturating_duration_since(Instant::now());
        let (ip, at) = monitor.events.recv_timeout(left).with_context(|| {
            format!(
                "only {} of {n} routes within 60 s of the last write",
                routed.len()
            )
        })?;
        if stored.contains_key(&ip) {
            routed.entry(ip).or_insert(at);
        }
    }
    let last = routed.values().max().copied().unwrap_or(start);
    let latencies = routed
        .iter()
        .map(|(ip, at)| at.saturating_duration_since(stored[ip]))
        .collect();
    Ok((Measured { latencies, writes }, last.duration_since(start)))
}

/// p-th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn row(mode: &str, m: Measured) -> String {
    let Measured {
        mut latencies,
        mut writes,
    } = m;
    latencies.sort();
    writes.sort();
    let mean = latencies.iter().sum::<Duration>() / latencies.len().max(1) as u32;
    format!(
        "| {mode} | {} | {} | {} | {} | {} | {} | {} | {} |",
        latencies.len(),
        ms(percentile(&writes, 50.0)),
        ms(percentile(&latencies, 0.0)),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(percentile(&latencies, 100.0)),
        ms(mean),
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        (1..=1000).contains(&args.endpoints),
        "--endpoints must be from 1 to 1000 (the node has {BLOCKS} /26 blocks)"
    );
    fabric_testkit::require_root();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_string();
    let n = args.endpoints;
    eprintln!("one at a time: {n} endpoints, {} ms apart", args.gap_ms);
    let single = one_at_a_time(n, Duration::from_millis(args.gap_ms))?;
    eprintln!("burst: {n} endpoints back to back");
    let (bursty, total) = burst(n)?;

    let mut section = format!(
        "{SECTION}\n\nTime from storing a WorkloadEndpoint in the sqlite datastore (from the moment \
         the `Client::apply` call is issued, so the latency includes the write itself; its p50 is \
         shown separately) to felix's `<ip>/32 dev cali... proto 80` route in the kernel, as a netlink \
         route monitor (RTNLGRP_IPV4_ROUTE) in the node's namespace sees it. felix runs \
         in-process on a thread inside a fresh network namespace with {n} pre-created `cali*` \
         veths, its own sqlite connection (so it sees writes through the cross-connection \
         change poller, every 10 ms, as a separate process would), default settings (apply \
         interval 100 ms); a VXLAN pool, the node's Node and {BLOCKS} confirmed /26 blocks. Two \
         modes, each with a fresh namespace, datastore and felix: **one at a time** (store an \
         endpoint, wait for its route, pause {} ms so the next one is an isolated event) and \
         **burst** (store all {n} back to back; each write is a validated `Client::apply`, one \
         sqlite transaction with fsync).\n\n",
        args.gap_ms
    );
    let _ = writeln!(
        section,
        "Date {}; machine: {}, 1-minute load average {load} at the start; build: {}.\n",
        fabric_testkit::bench_report::today_utc(),
        fabric_testkit::bench_report::machine_summary(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let _ = writeln!(
        section,
        "Reproduce (root): `cargo run --release -p bench-felix-endpoint-latency -- --endpoints {n} --write`\n"
    );
    section.push_str(
        "| mode | endpoints | write p50 (ms) | min (ms) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) |\n",
    );
    section.push_str("|---|---|---|---|---|---|---|---|---|\n");
    let _ = writeln!(section, "{}", row("one at a time", single));
    let _ = writeln!(section, "{}", row("burst", bursty));
    let _ = writeln!(
        section,
        "\nBurst: all {n} routes present {} ms after the first write started ({:.0} endpoints/s end to end, datastore writes included).",
        ms(total),
        f64::from(n) / total.as_secs_f64().max(1e-9)
    );
    println!("{section}");
    if args.write {
        let path = args
            .output
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md"));
        fabric_testkit::bench_report::update_section_file(&path, SECTION, &section)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
