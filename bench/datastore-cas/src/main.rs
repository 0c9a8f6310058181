//! Datastore benchmark: creates/s and compare-and-swap updates/s of the sqlite and etcd
//! Backends with N concurrent writers (distinct keys, and one shared key), beside the raw etcd
//! transaction rate measured with `etcd-client` in the same run. Starts its own etcd and
//! sqlite file in a temporary directory; prints a Markdown table and can write it into
//! `bench/BENCHMARKS.md` (section "Datastore: creates and CAS updates").

mod workload;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use fabric_datastore::{Backend, EtcdBackend, SqliteBackend};
use fabric_testkit::{EtcdServer, bench_report};
use workload::{Tally, Workload};

const SECTION: &str = "## Datastore: creates and CAS updates";

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "sqlite and etcd Backends vs. raw etcd transactions, N concurrent writers")]
struct Args {
    /// Concurrent writers, each with its own connection.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Seconds each workload runs.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Write the section into BENCHMARKS.md (default: the workspace's bench/BENCHMARKS.md).
    #[arg(long)]
    write: bool,
    /// The BENCHMARKS.md to update with --write.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// The three measurements of one workload.
struct Row {
    workload: Workload,
    sqlite: Tally,
    etcd: Tally,
    raw: Tally,
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.writers > 0, "--writers must be at least 1");
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let etcd = EtcdServer::start();
    let rows = runtime.block_on(measure(
        &args,
        &dir.path().join("calico.db"),
        &etcd.endpoint(),
    ))?;
    let body = table(&rows, args.writers);
    println!("{body}");
    if args.write {
        let path = args
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md"));
        bench_report::update_section_file(&path, SECTION, &section(&args, &body))
            .with_context(|| format!("updating {}", path.display()))?;
        eprintln!("updated {}", path.display());
    }
    Ok(())
}

async fn measure(args: &Args, db: &std::path::Path, endpoint: &str) -> Result<Vec<Row>> {
    let duration = Duration::from_secs(args.seconds);
    let mut sqlite: Vec<Arc<dyn Backend>> = Vec::new();
    let mut etcd: Vec<Arc<dyn Backend>> = Vec::new();
    let mut raw = Vec::new();
    let endpoints = [endpoint.to_string()];
    for _ in 0..args.writers {
        sqlite.push(Arc::new(
            SqliteBackend::open(db).with_context(|| format!("opening {}", db.display()))?,
        ));
        etcd.push(Arc::new(
            EtcdBackend::connect(&endpoints)
                .await
                .with_context(|| format!("connecting to etcd at {endpoint}"))?,
        ));
        raw.push(
            etcd_client::Client::connect(&endpoints, None)
                .await
                .with_context(|| format!("connecting to etcd at {endpoint}"))?,
        );
    }
    let mut rows = Vec::new();
    for (i, workload) in Workload::ALL.into_iter().enumerate() {
        let run = format!("r{i}");
        eprintln!("{}: sqlite", workload.label());
        let sqlite = workload::run_backend(workload, &sqlite, &run, duration).await?;
        eprintln!("{}: etcd Backend", workload.label());
        let etcd = workload::run_backend(workload, &etcd, &run, duration).await?;
        eprintln!("{}: raw etcd", workload.label());
        let raw = workload::run_raw(workload, &raw, &run, duration).await?;
        rows.push(Row {
            workload,
            sqlite,
            etcd,
            raw,
        });
    }
    Ok(rows)
}

fn rate(t: &Tally) -> String {
    let r = t.rate();
    if r >= 10_000.0 {
        format!("{:.1}k", r / 1000.0)
    } else {
        format!("{r:.0}")
    }
}

fn with_conflicts(t: &Tally) -> String {
    if t.conflicts == 0 {
        rate(t)
    } else {
        format!("{} ({:.0} lost/s)", rate(t), t.conflict_rate())
    }
}

fn latency(t: &mut Tally) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!("{:.2} / {:.2}", ms(t.quantile(0.5)), ms(t.quantile(0.99)))
}

/// The Markdown tables: rates, then latencies.
fn table(rows: &[Row], writers: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {writers} writers | sqlite ops/s | etcd Backend ops/s | raw etcd txn/s | Backend / raw |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} |",
            row.workload.label(),
            with_conflicts(&row.sqlite),
            with_conflicts(&row.etcd),
            with_conflicts(&row.raw),
            row.etcd.rate() / row.raw.rate().max(1e-9),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| p50 / p99 latency of a successful op (ms) | sqlite | etcd Backend | raw etcd |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    for row in rows {
        let (mut s, mut e, mut r) = (row.sqlite.clone(), row.etcd.clone(), row.raw.clone());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.workload.label(),
            latency(&mut s),
            latency(&mut e),
            latency(&mut r)
        );
    }
    out
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The machine, plus what matters here: the etcd version and the load when we started.
fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    let etcd = command_output("etcd", &["--version"])
        .and_then(|v| v.lines().next().map(str::to_string))
        .unwrap_or_default();
    format!(
        "{}, {etcd}, 1-minute load average {load} at the start",
        bench_report::machine_summary()
    )
}

fn section(args: &Args, body: &str) -> String {
    let date = bench_report::today_utc();
    format!(
        "{SECTION}\n\n\
         {w} concurrent writers, each with its own connection, {s} s per cell. sqlite: one file \
         (WAL, `synchronous=FULL`, writers queued on the file lock) in a temporary directory on \
         the same disk as etcd's data; the writers are {w} `SqliteBackend`s of one process (each \
         its own connections and lock-file handle, so they contend as separate processes \
         would). etcd: a single local member (`fabric_testkit::EtcdServer`, data on disk). \
         Backend ops: `create` (txn `Version(key) == 0`), `update` with the known mod_revision, \
         and on the shared key `compare_and_swap` (txn `ModRevision(key) == rev`, else-branch \
         get, one round trip per attempt). Raw etcd: the same transactions through \
         `etcd-client` directly. Values are ~200-byte JSON documents. \"lost/s\": attempts that \
         lost the race on the shared key.\n\n\
         Date {date}; machine: {machine}; build: release.\n\n\
         Reproduce: `cargo run --release -p \
         bench-datastore-cas -- --writers {w} --seconds {s} --write`\n\n{body}",
        w = args.writers,
        s = args.seconds,
        machine = machine(),
    )
}
