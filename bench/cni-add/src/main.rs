//! CNI benchmark: the wall time of a full `calico` ADD (exec of the plugin, datastore
//! connection, IPAM through `calico-ipam` by the exec protocol, veth, addresses, routes,
//! sysctls, WorkloadEndpoint write) and DEL for N pods on one host namespace, beside Debian's
//! `bridge` + `host-local` doing ADD and DEL for N pods in the same run. Prints a Markdown
//! table and can write it into `bench/BENCHMARKS.md` (section "CNI: pod ADD and DEL").

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use fabric_api::ippool::IPPoolSpec;
use fabric_api::{IPPool, ObjectMeta};
use fabric_datastore::{Client, SqliteBackend};
use fabric_ipam::service::Service;
use fabric_testkit::{Netns, bench_report};
use serde_json::{Value, json};

const SECTION: &str = "## CNI: pod ADD and DEL";
const DEBIAN_CNI: &str = "/usr/lib/cni";

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "p50/p99 of calico CNI ADD/DEL vs. Debian's bridge + host-local")]
struct Args {
    /// Pods per round and plugin.
    #[arg(long, default_value_t = 100)]
    pods: usize,
    /// Rounds (the two plugins alternate going first); each round uses fresh namespaces.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Directory holding `calico` and `calico-ipam` (default: beside this binary).
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// Write the section into BENCHMARKS.md (default: the workspace's bench/BENCHMARKS.md).
    #[arg(long)]
    write: bool,
    /// The BENCHMARKS.md to update with --write.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// One measured operation's samples.
type Samples = BTreeMap<&'static str, Vec<Duration>>;

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.pods > 0, "--pods must be at least 1");
    ensure!(args.rounds > 0, "--rounds must be at least 1");
    ensure!(
        nix_is_root(),
        "this benchmark creates network namespaces: run it as root"
    );
    let plugins = match &args.plugins {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("locating this binary")?
            .parent()
            .context("this binary has no directory")?
            .to_path_buf(),
    };
    for p in ["calico", "calico-ipam"] {
        if !plugins.join(p).is_file() {
            bail!(
                "{} is missing; build the plugins first: cargo build --release -p fabric-cni",
                plugins.join(p).display()
            );
        }
    }
    for p in ["bridge", "host-local"] {
        ensure!(
            Path::new(DEBIAN_CNI).join(p).is_file(),
            "{DEBIAN_CNI}/{p} is missing (Debian package containernetworking-plugins)"
        );
    }
    let load = load_average();
    let mut samples = Samples::new();
    for round in 0..args.rounds {
        eprintln!("round {}", round + 1);
        if round % 2 == 0 {
            calico_round(&args, &plugins, Ipam::Plugin, &mut samples)?;
            calico_round(&args, &plugins, Ipam::Service, &mut samples)?;
            bridge_round(&args, &mut samples)?;
        } else {
            bridge_round(&args, &mut samples)?;
            calico_round(&args, &plugins, Ipam::Service, &mut samples)?;
            calico_round(&args, &plugins, Ipam::Plugin, &mut samples)?;
        }
    }
    let body = table(&samples);
    println!("{body}");
    if args.write {
        let path = args
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md"));
        bench_report::update_section_file(&path, SECTION, &section(&args, &load, &body))
            .with_context(|| format!("updating {}", path.display()))?;
        eprintln!("updated {}", path.display());
    }
    Ok(())
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A host namespace with an uplink and a default route (proxy ARP needs a route).
fn host_namespace(tag: &str) -> Netns {
    let host = Netns::new(tag);
    host.ip("link add eth0 type veth peer name uplink0");
    host.ip("addr add 192.0.2.1/24 dev eth0");
    host.ip("link set eth0 up");
    host.ip("link set uplink0 up");
    host.ip("route add default via 192.0.2.254 dev eth0");
    host
}

/// Runs one plugin command from the calling thread (inside the host namespace) and returns
/// its wall time; fails unless it exits 0.
fn invoke(
    program: &Path,
    command: &str,
    conf: &Value,
    container_id: &str,
    netns: &str,
    cni_path: &str,
) -> Result<Duration> {
    let input = conf.to_string();
    let start = Instant::now();
    let mut child = Command::new(program)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container_id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", cni_path)
        .env(
            "CNI_ARGS",
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={container_id}"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    child
        .stdin
        .take()
        .context("plugin stdin")?
        .write_all(input.as_bytes())
        .context("writing the configuration")?;
    let out = child.wait_with_output().context("waiting for the plugin")?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "{} {command} {container_id} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

/// ADD for every pod, then DEL for every pod (with the ADD result as prevResult).
fn add_and_del(
    host: &Netns,
    program: &Path,
    conf: &Value,
    pods: &[Netns],
    cni_path: &str,
    names: (&'static str, &'static str),
    samples: &mut Samples,
) -> Result<()> {
    let (adds, dels) = host.run_in(|| -> Result<(Vec<Duration>, Vec<Duration>)> {
        let mut adds = Vec::new();
        for (i, pod) in pods.iter().enumerate() {
            let netns = format!("/run/netns/{}", pod.name());
            adds.push(invoke(
                program,
                "ADD",
                conf,
                &format!("pod-{i}"),
                &netns,
                cni_path,
            )?);
        }
        let mut dels = Vec::new();
        for (i, pod) in pods.iter().enumerate() {
            let netns = format!("/run/netns/{}", pod.name());
            dels.push(invoke(
                program,
                "DEL",
                conf,
                &format!("pod-{i}"),
                &netns,
                cni_path,
            )?);
        }
        Ok((adds, dels))
    })?;
    samples.entry(names.0).or_default().extend(adds);
    samples.entry(names.1).or_default().extend(dels);
    Ok(())
}

/// Where `calico-ipam` gets its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ipam {
    /// The plugin opens the datastore itself (`ipam_socket: none`).
    Plugin,
    /// calico-node's IPAM service on the node (`fabric_ipam::service`), run in this process.
    Service,
}

fn calico_round(args: &Args, plugins: &Path, ipam: Ipam, samples: &mut Samples) -> Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let db = dir.path().join("calico.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let client = Client::new(std::sync::Arc::new(
        SqliteBackend::open(&db).with_context(|| format!("opening {}", db.display()))?,
    ));
    runtime
        .block_on(client.create(IPPool {
            metadata: ObjectMeta::named("bench-pool"),
            spec: IPPoolSpec {
                cidr: "10.96.0.0/16".into(),
                block_size: Some(26),
                ..IPPoolSpec::default()
            },
            status: None,
        }))
        .context("creating the pool")?;
    let host = host_namespace("bcnih");
    let pods: Vec<Netns> = (0..args.pods).map(|_| Netns::new("bcnip")).collect();
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "type": "calico",
        "log_level": "warning",
        "nodename": "bench-node",
        "datastore_type": "sqlite",
        "sqlite_path": db.display().to_string(),
        "ipam": {"type": "calico-ipam"},
    });
    let mut conf = conf;
    // The service runs on its own threads while the plugins run.
    let service_runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let (_service, names) = match ipam {
        Ipam::Plugin => {
            conf["ipam_socket"] = json!("none");
            (None, ("calico ADD", "calico DEL"))
        }
        Ipam::Service => {
            let path = dir.path().join("ipam.sock");
            let backend =
                SqliteBackend::open(&db).with_context(|| format!("opening {}", db.display()))?;
            let service = service_runtime
                .block_on(Service::start(
                    fabric_ipam::Ipam::from_backend(std::sync::Arc::new(backend)),
                    "bench-node",
                    &path,
                ))
                .context("starting the IPAM service")?;
            conf["ipam_socket"] = json!(path.display().to_string());
            (
                Some(service),
                (
                    "calico ADD, IPAM via calico-node",
                    "calico DEL, IPAM via calico-node",
                ),
            )
        }
    };
    let cni_path = format!("{}:{DEBIAN_CNI}", plugins.display());
    add_and_del(
        &host,
        &plugins.join("calico"),
        &conf,
        &pods,
        &cni_path,
        names,
        samples,
    )?;
    let left = host.ip("-o link show");
    ensure!(
        !left.contains("cali"),
        "calico DEL left interfaces behind: {left}"
    );
    Ok(())
}

fn bridge_round(args: &Args, samples: &mut Samples) -> Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let host = host_namespace("bbrh");
    let pods: Vec<Netns> = (0..args.pods).map(|_| Netns::new("bbrp")).collect();
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "bench-bridge",
        "type": "bridge",
        "bridge": "cnibench0",
        "isGateway": true,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": "10.97.0.0/16"}]],
            "dataDir": dir.path().join("host-local").display().to_string(),
        },
    });
    add_and_del(
        &host,
        &Path::new(DEBIAN_CNI).join("bridge"),
        &conf,
        &pods,
        DEBIAN_CNI,
        ("bridge + host-local ADD", "bridge + host-local DEL"),
        samples,
    )
}

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

fn table(samples: &Samples) -> String {
    let mut out = String::from(
        "| operation | samples | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) |\n|---|---|---|---|---|---|---|\n",
    );
    let order = [
        "calico ADD",
        "calico ADD, IPAM via calico-node",
        "bridge + host-local ADD",
        "calico DEL",
        "calico DEL, IPAM via calico-node",
        "bridge + host-local DEL",
    ];
    for name in order {
        let Some(v) = samples.get(name) else {
            continue;
        };
        let mut sorted = v.clone();
        sorted.sort();
        let mean = sorted.iter().sum::<Duration>() / sorted.len().max(1) as u32;
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} |\n",
            sorted.len(),
            ms(percentile(&sorted, 50.0)),
            ms(percentile(&sorted, 90.0)),
            ms(percentile(&sorted, 99.0)),
            ms(sorted.last().copied().unwrap_or_default()),
            ms(mean)
        ));
    }
    let p50 = |name: &str| {
        samples.get(name).map(|v| {
            let mut s = v.clone();
            s.sort();
            percentile(&s, 50.0)
        })
    };
    if let (Some(c), Some(b)) = (p50("calico ADD"), p50("bridge + host-local ADD")) {
        out.push_str(&format!(
            "\nMedian ADD: calico / bridge + host-local = **{:.2}x**",
            c.as_secs_f64() / b.as_secs_f64().max(1e-9)
        ));
        if let Some(v) = p50("calico ADD, IPAM via calico-node") {
            out.push_str(&format!(
                "; calico with IPAM via calico-node / bridge + host-local = **{:.2}x**",
                v.as_secs_f64() / b.as_secs_f64().max(1e-9)
            ));
        }
        out.push_str(".\n");
    }
    out
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn section(args: &Args, load: &str, body: &str) -> String {
    format!(
        "{SECTION}\n\n\
         Wall time of one plugin invocation as a runtime sees it (spawn, configuration on stdin, \
         result on stdout), for {pods} pods per round on one host namespace (an uplink veth with a \
         default route, as on a node), {rounds} rounds with fresh namespaces, the two plugins \
         alternating going first. Pod namespaces are created before the clock starts. \
         **calico**: `calico` with `ipam.type: calico-ipam` on a sqlite datastore (a fresh file per \
         round, pool 10.96.0.0/16 in /26 blocks): the plugin execs `calico-ipam` (datastore \
         connection, auto-assign under `k8s-pod-network.<id>`; the first ADD of a round claims a \
         block), creates the veth `cali<hash>` with its peer in the pod, sets sysctls, the pod's \
         /32 and routes and the host route, and writes the WorkloadEndpoint (one sqlite transaction \
         with fsync). DEL removes the veth, releases by handle and deletes the endpoint. \
         **calico, IPAM via calico-node**: the same, but `calico-ipam` asks calico-node's IPAM \
         service on the node's Unix socket (`fabric_ipam::service`, run in the benchmark process \
         with its inputs watched and the node's blocks cached) instead of opening the datastore \
         itself; the rows without it set `ipam_socket: none`. \
         **bridge + host-local**: Debian's `containernetworking-plugins` `bridge` (`isGateway: true`) \
         with `host-local` (files in a temporary directory), no datastore.\n\n\
         Date {date}; machine: {machine}, 1-minute load average {load} at the start; build: release. \
         The machine is shared with other build jobs.\n\n\
         Reproduce (root): `cargo build --release -p fabric-cni && cargo run --release -p bench-cni-add -- --pods {pods} --rounds {rounds} --write`\n\n\
         {body}",
        pods = args.pods,
        rounds = args.rounds,
        date = bench_report::today_utc(),
        machine = bench_report::machine_summary(),
    )
}
