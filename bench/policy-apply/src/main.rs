//! Policy programming benchmark: a synthetic cluster (1,000 local pods, 500 policies by
//! default) rendered by felix-policy and programmed through felix's iptables `Table` and
//! `IpSets` reconcilers, in a fresh network namespace per iptables backend (nft, legacy):
//! time to program everything and the rule count, then p50/p99 of one incremental change (a
//! pod's labels; one policy edited) end to end (render + ipsets + one `iptables-restore
//! --noflush` of the changed chains), beside a full `iptables-restore` of the same rules.
//! Prints a Markdown section and can write it into `bench/BENCHMARKS.md`. Needs root.

mod cluster;
mod kernel;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use fabric_testkit::Netns;
use fabric_testkit::bench_report::{
    machine_summary, today_utc, update_section_file, wait_for_idle_cpus,
};
use felix_policy::{Entity, IpFamily, PolicyState, RenderConfig};

use cluster::Shape;

const SECTION: &str = "## Policy: programming 1,000 endpoints and 500 policies";

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "felix-policy + felix iptables/ipsets: full programming and incremental changes")]
struct Args {
    /// Pods on this node.
    #[arg(long, default_value_t = 1000)]
    local: u32,
    /// Pods on other nodes.
    #[arg(long, default_value_t = 1000)]
    remote: u32,
    /// Policies.
    #[arg(long, default_value_t = 500)]
    policies: u32,
    /// Timed repetitions of each incremental change.
    #[arg(long, default_value_t = 50)]
    rounds: u32,
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "nft,legacy")]
    backends: Vec<String>,
    /// Before each backend and each timed phase, wait up to this many seconds for the CPUs to
    /// be 90 % idle over 2 s (0: do not wait).
    #[arg(long, default_value_t = 300)]
    idle_wait: u64,
    /// Write the section into bench/BENCHMARKS.md (or --output).
    #[arg(long)]
    write: bool,
    /// The BENCHMARKS.md to update with --write.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// Timings of one kind of incremental change.
#[derive(Debug, Default)]
struct Change {
    total: Vec<Duration>,
    render: Vec<Duration>,
    ipsets: Vec<Duration>,
    restore: Vec<Duration>,
}

/// Figures of one backend.
#[derive(Debug)]
struct BackendRun {
    backend: String,
    program: Duration,
    rules: usize,
    chains: usize,
    sets: usize,
    label: Change,
    edit: Change,
    full_restore: Vec<Duration>,
    busy_phases: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (s.len() as f64)).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

/// Waits for quiet CPUs as asked; returns 1 when they stayed busy.
fn settle(args: &Args) -> usize {
    if args.idle_wait == 0 || wait_for_idle_cpus(Duration::from_secs(args.idle_wait), 90) {
        0
    } else {
        1
    }
}

fn timed(
    state: &mut PolicyState,
    dp: &mut kernel::Dataplane,
    out: &mut Change,
    update: impl FnOnce(&mut PolicyState),
) -> Result<()> {
    dp.iptables_clock.take();
    dp.ipset_clock.take();
    let start = Instant::now();
    update(state);
    let changes = state.flush();
    out.render.push(start.elapsed());
    dp.apply(&changes)?;
    out.total.push(start.elapsed());
    out.restore.push(dp.iptables_clock.take());
    out.ipsets.push(dp.ipset_clock.take());
    Ok(())
}

/// Per round: total minus render minus the two external processes.
fn overhead(c: &Change) -> Vec<Duration> {
    (0..c.total.len())
        .map(|i| {
            c.total[i]
                .saturating_sub(c.render[i])
                .saturating_sub(c.ipsets[i])
                .saturating_sub(c.restore[i])
        })
        .collect()
}

fn run_backend(args: &Args, shape: &Shape, backend: &str) -> Result<BackendRun> {
    let ns = Netns::new("polb");
    ns.run_in(|| -> Result<BackendRun> {
        let mut busy_phases = settle(args);
        let mut state =
            PolicyState::new(RenderConfig::new(cluster::NODE)).map_err(anyhow::Error::msg)?;
        let mut dp = kernel::Dataplane::new(backend)?;
        let start = Instant::now();
        cluster::load(&mut state, shape).map_err(anyhow::Error::msg)?;
        let changes = state.flush();
        dp.apply(&changes)?;
        let program = start.elapsed();
        let (rules, chains, sets) = dp.counts()?;
        ensure!(
            rules == state.rule_count(IpFamily::V4) + 3,
            "the kernel holds {rules} of our rules, the render has {} (+3 hooks)",
            state.rule_count(IpFamily::V4)
        );
        ensure!(
            state.local_endpoint_count() == shape.local as usize,
            "local endpoints"
        );

        // One pod moves to another app of its namespace and back, alternately.
        busy_phases += settle(args);
        let mut label = Change::default();
        let step = gcd(shape.apps, shape.namespaces);
        for i in 0..args.rounds {
            // Even rounds move a pod, odd rounds move it back.
            let j = ((i / 2) * 37) % shape.local;
            let app = if i % 2 == 0 {
                (cluster::app_of(shape, j) + step) % shape.apps
            } else {
                cluster::app_of(shape, j)
            };
            let entity = Entity::from_workload_endpoint(&cluster::pod(shape, j, app))
                .map_err(anyhow::Error::msg)?;
            timed(&mut state, &mut dp, &mut label, |s| s.upsert_entity(entity))?;
        }
        // One policy's port is edited back and forth.
        busy_phases += settle(args);
        let mut edit = Change::default();
        for i in 0..args.rounds {
            let k = ((i / 2) * 13) % shape.policies;
            let policy = cluster::policy(shape, k, if i % 2 == 0 { 100 } else { 0 })
                .map_err(anyhow::Error::msg)?;
            timed(&mut state, &mut dp, &mut edit, |s| s.upsert_policy(policy))?;
        }
        let full = state.full();
        let mut full_restore = Vec::new();
        for _ in 0..5 {
            full_restore.push(dp.full_restore(&full[0])?);
        }
        Ok(BackendRun {
            backend: backend.to_string(),
            program,
            rules,
            chains,
            sets,
            label,
            edit,
            full_restore,
            busy_phases,
        })
    })
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

fn report(args: &Args, shape: &Shape, runs: &[BackendRun]) -> String {
    let mut s = format!("{SECTION}\n\n");
    s.push_str(&format!(
        "{} pods on this node and {} elsewhere in {} namespaces ({} app labels), {} policies: \
         4 of 5 namespaced (ingress from another app of the namespace and from a team of \
         namespaces on TCP ports, every 4th with egress, every 7th with a Log rule), 1 of 5 \
         global in tier `security` (deny two networks, allow frontends on 443, pass). Rendered \
         by `felix-policy` and programmed through felix's `PolicyReconciler` (its `IpSets`: \
         `ipset restore`; its `Table`: `iptables-restore --noflush` with only the changed \
         chains), IPv4 filter table, in a fresh network namespace per backend.\n\n",
        shape.local, shape.remote, shape.namespaces, shape.apps, shape.policies
    ));
    s.push_str(
        "* **Program everything**: from an empty state to the kernel holding every set and \
         rule (model load, render, ipsets, one iptables-restore).\n\
         * **Pod label change**: one local pod moves to another app of its namespace (its \
         policies change), end to end: update + render + ipset deltas + the changed chains \
         written. *Render* is the pure part alone.\n\
         * **Policy edit**: one policy's port changes (its chain only).\n\
         * **Full iptables-restore**: the same rules written as one whole-table \
         `iptables-restore` (what a non-incremental agent pays for any change).\n\n",
    );
    s.push_str(&format!(
        "Date {}; machine: {}; build: {}; {} rounds per incremental change.\n\n",
        today_utc(),
        machine_summary(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        args.rounds
    ));
    s.push_str(&format!(
        "Reproduce (root): `cargo run --release -p bench-policy-apply -- --rounds {} --idle-wait {} --write`\n\n",
        args.rounds, args.idle_wait
    ));
    s.push_str(
        "| backend | rules | chains | ipsets | program everything (ms) | full iptables-restore, median (ms) |\n\
         |---|---|---|---|---|---|\n",
    );
    for r in runs {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {:.0} |\n",
            r.backend,
            r.rules,
            r.chains,
            r.sets,
            ms(r.program),
            ms(percentile(&r.full_restore, 50.0)),
        ));
    }
    s.push_str(
        "\n| backend | change | total p50 / p99 (ms) | render p50 / p99 (ms) | `ipset restore` p50 (ms) | `iptables-restore --noflush` p50 / p99 (ms) | felix overhead p50 (ms) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        for (what, c) in [("pod label change", &r.label), ("policy edit", &r.edit)] {
            s.push_str(&format!(
                "| {} | {what} | **{:.1}** / {:.1} | {:.2} / {:.2} | {:.1} | {:.1} / {:.1} | {:.1} |\n",
                r.backend,
                ms(percentile(&c.total, 50.0)),
                ms(percentile(&c.total, 99.0)),
                ms(percentile(&c.render, 50.0)),
                ms(percentile(&c.render, 99.0)),
                ms(percentile(&c.ipsets, 50.0)),
                ms(percentile(&c.restore, 50.0)),
                ms(percentile(&c.restore, 99.0)),
                ms(percentile(&overhead(c), 50.0)),
            ));
        }
    }
    s.push('\n');
    for r in runs {
        let full = ms(percentile(&r.full_restore, 50.0));
        let label = ms(percentile(&r.label.total, 50.0));
        let edit = ms(percentile(&r.edit.total, 50.0));
        s.push_str(&format!(
            "* {}: a pod label change costs {label:.1} ms and a policy edit {edit:.1} ms (p50) \
             where a full `iptables-restore` of the same rules costs {full:.0} ms: {:.1}x and \
             {:.1}x less.\n",
            r.backend,
            full / label.max(f64::EPSILON),
            full / edit.max(f64::EPSILON),
        ));
    }
    let busy: usize = runs.iter().map(|r| r.busy_phases).sum();
    if args.idle_wait == 0 {
        s.push_str("\nPhases started without waiting for idle CPUs.\n");
    } else {
        s.push_str(&format!(
            "\nEach backend and each timed phase started once the CPUs were 90 % idle over 2 s \
             (waiting at most {} s; phases that started busy: {busy}).\n",
            args.idle_wait
        ));
    }
    s.push_str("\nGoal: an incremental change under 50 ms at this size.\n\n");
    for r in runs {
        let verdict = |p: Duration| if ms(p) < 50.0 { "met" } else { "**not met**" };
        let (label50, label99) = (
            percentile(&r.label.total, 50.0),
            percentile(&r.label.total, 99.0),
        );
        let (edit50, edit99) = (
            percentile(&r.edit.total, 50.0),
            percentile(&r.edit.total, 99.0),
        );
        s.push_str(&format!(
            "* {}: pod label change p50 {} ({:.1} ms), p99 {} ({:.1} ms); policy edit p50 {} \
             ({:.1} ms), p99 {} ({:.1} ms).\n",
            r.backend,
            verdict(label50),
            ms(label50),
            verdict(label99),
            ms(label99),
            verdict(edit50),
            ms(edit50),
            verdict(edit99),
            ms(edit99),
        ));
    }
    s.push_str(
        "\nfelix's own part is the render plus the overhead column (about 10 ms); the rest is \
         the `iptables-restore --noflush` process. Legacy `iptables-restore` reads and replaces \
         the whole table in the kernel, so its incremental cost grows with the table: prefer nft \
         (the default) at this size. A native nftables dataplane would remove the process and \
         the table read.\n",
    );
    s
}

fn main() -> Result<()> {
    let args = Args::parse();
    let shape = Shape {
        local: args.local,
        remote: args.remote,
        policies: args.policies,
        namespaces: 20,
        apps: 50,
    };
    let mut runs = Vec::new();
    for backend in &args.backends {
        eprintln!("measuring the {backend} backend");
        runs.push(
            run_backend(&args, &shape, backend).with_context(|| format!("{backend} backend"))?,
        );
    }
    let section = report(&args, &shape, &runs);
    println!("{section}");
    if args.write {
        let path = args
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md"));
        update_section_file(&path, SECTION, &section)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
