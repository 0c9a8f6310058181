//! Fabric convergence, end to end on calico-lab topologies: the time from a pod's CNI ADD on one
//! node to its first answered ping from a pod on another node (p50/p99 over N pods, on `mesh-3`
//! and `rr-6`), and the time for an N-node full mesh to hold every block route on every node
//! after deploy. Prints Markdown and can write it into `bench/BENCHMARKS.md` (section "Fabric:
//! convergence"). Needs root; builds the lab's programs in release first.

mod lab;
mod measure;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use fabric_testkit::bench_report;
use measure::{MeshRun, PodRun, ms};

const SECTION: &str = "## Fabric: convergence";

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "pod CNI ADD -> first answered ping from another node; N-node mesh convergence")]
struct Args {
    /// Pods per topology.
    #[arg(long, default_value_t = 50)]
    pods: usize,
    /// Topologies for the pod measurement (mesh-3, rr-6).
    #[arg(long, value_delimiter = ',', default_value = "mesh-3,rr-6")]
    topologies: Vec<String>,
    /// Nodes of the mesh measurement (0 skips it).
    #[arg(long, default_value_t = 20)]
    mesh_nodes: usize,
    /// Directory with calico-lab, calico-node, calicoctl, calico, calico-ipam (default: build
    /// them in release beside this benchmark).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Write the section into BENCHMARKS.md.
    #[arg(long)]
    write: bool,
    /// The BENCHMARKS.md to update with --write (default: the workspace's bench/BENCHMARKS.md).
    #[arg(long)]
    output: Option<PathBuf>,
}

/// How many sessions a node (by name) has when its topology has converged.
type SessionCount = fn(&str) -> usize;

/// Sessions each node of a product topology has when converged.
fn expected_sessions(topology: &str) -> Result<SessionCount> {
    Ok(match topology {
        "mesh-3" => |_| 2,
        // Reflectors peer with the other five nodes; clients with both reflectors.
        "rr-6" => |n| if n.starts_with("rr") { 5 } else { 2 },
        other => bail!("--topologies: {other:?} is not one of mesh-3, rr-6"),
    })
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration, Duration) {
    v.sort();
    (
        v.first().copied().unwrap_or_default(),
        percentile(&v, 50.0),
        percentile(&v, 99.0),
        v.last().copied().unwrap_or_default(),
    )
}

fn report(args: &Args, pod_runs: &[PodRun], mesh: Option<&MeshRun>, load: &str) -> String {
    let mut s = format!("{SECTION}\n\n");
    s += "Measured on calico-lab: every node a network namespace running the release `calico-node` \
(felix + bgpd) with the sqlite datastore, pods wired by the `calico` / `calico-ipam` CNI plugins through \
`calico-lab pod add`.\n\n";
    s += "* **Pod ADD to first answered ping**: a probe pod on the last calico-node of the topology; each new pod \
is added round-robin on the other nodes; the clock starts when `calico-lab pod add` starts (so it includes \
calico-lab's own work: the pod's namespace, `nsenter`, the CNI ADD through `calico` and `calico-ipam`), \
and stops at the time stamp (`ping -D`) of the first echo reply the probe receives; the probe pings every 5 ms \
from the moment `pod add` exits with the address. The route the reply needs is the new pod's /32 on its node \
(felix) and, for the first pod of a block, the block's route on the probe's node (BGP).\n";
    s += "* **Mesh convergence**: an N-node full mesh (mesh-3's file with N nodes on its bridge); deploy, then every \
node listing N-1 Established sessions (`calicoctl node status`, polled on all nodes in parallel), then one pod \
per node (each claims its node's first /26 block), then every node holding a route to each of the other N-1 \
blocks (`ip -j route`, polled every 10 ms).\n\n";
    let _ = writeln!(
        s,
        "Date {}; machine: {}, 1-minute load average {load} at the start; build: {}. The machine is shared with other build jobs.\n",
        bench_report::today_utc(),
        bench_report::machine_summary(),
        match &args.bin_dir {
            Some(dir) => format!("programs from {}", dir.display()),
            None if cfg!(debug_assertions) => "debug".to_string(),
            None => "release".to_string(),
        }
    );
    let _ = writeln!(
        s,
        "Reproduce (root): `cargo run --release -p bench-fabric-convergence -- --pods {} --mesh-nodes {} --write`\n",
        args.pods, args.mesh_nodes
    );
    if !pod_runs.is_empty() {
        s += "| topology | pods | probe on | pods on | `pod add` p50 (ms) | ADD start → first reply: min | p50 | p99 | max (ms) | `pod add` exit → first reply p50 (ms) |\n";
        s += "|---|---|---|---|---|---|---|---|---|---|\n";
        for r in pod_runs {
            let (_, add50, _, _) = stats(r.samples.iter().map(|x| x.add).collect());
            let (min, p50, p99, max) = stats(r.samples.iter().map(|x| x.total).collect());
            let (_, after50, _, _) = stats(r.samples.iter().map(|x| x.after_add).collect());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} | {:.1} | **{:.1}** | **{:.1}** | {:.1} | {:.1} |",
                r.topology,
                r.samples.len(),
                r.probe_node,
                r.target_nodes.join(", "),
                ms(add50),
                ms(min),
                ms(p50),
                ms(p99),
                ms(max),
                ms(after50)
            );
        }
        s += "\n";
    }
    if let Some(m) = mesh {
        s += "| mesh nodes | deploy (s) | deploy start → all sessions Established (s) | one pod per node, sequential (s) | first pod ADD → every block route on every node (s) | last pod ADD → every block route on every node (ms) |\n";
        s += "|---|---|---|---|---|---|\n";
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | **{:.0}** |",
            m.nodes,
            m.deploy.as_secs_f64(),
            m.sessions.as_secs_f64(),
            m.pods.as_secs_f64(),
            m.routes_from_first_add.as_secs_f64(),
            ms(m.routes_from_last_add)
        );
        s += "\nCalico's own path takes seconds here (BIRD's kernel scan every 2 s, confd re-rendering and reloading BIRD's configuration).\n";
    }
    s
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !nix_is_root() {
        bail!("run as root: the benchmark creates network namespaces");
    }
    let checks: Vec<(String, SessionCount)> = args
        .topologies
        .iter()
        .map(|t| Ok((t.clone(), expected_sessions(t)?)))
        .collect::<Result<_>>()?;
    let bin = lab::programs(args.bin_dir.clone())?;
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let mut pod_runs = Vec::new();
    for (t, expected) in &checks {
        eprintln!("== {t}: {} pods", args.pods);
        pod_runs.push(
            measure::pod_to_ping(&bin, t, args.pods, expected)
                .with_context(|| format!("pod measurement on {t}"))?,
        );
    }
    let mesh = if args.mesh_nodes > 0 {
        eprintln!("== mesh of {} nodes", args.mesh_nodes);
        Some(
            measure::mesh_convergence(&bin, args.mesh_nodes)
                .with_context(|| format!("{}-node mesh", args.mesh_nodes))?,
        )
    } else {
        None
    };
    let section = report(&args, &pod_runs, mesh.as_ref(), &load);
    println!("{section}");
    if args.write {
        let path = args.output.clone().unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("BENCHMARKS.md")
        });
        bench_report::update_section_file(&path, SECTION, &section)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Whether this process runs as root.
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
