//! BGP convergence benchmark: N unique IPv4 prefixes (default 1,000,000) from a raw feeder
//! through a device under test (BIRD 2 and/or our bgpd) to a counting receiver, three network
//! namespaces, fresh per run. Measures time from the first UPDATE to the receiver holding all
//! N, the DUT's RIB time where cheap, and the DUT's peak and final RSS; the feeder → receiver
//! direct run in the same invocation is the harness's ceiling. Prints a Markdown table and with
//! `--write` replaces its section of `bench/BENCHMARKS.md`. Needs root.

mod dut;
mod report;
mod run;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bgp_wire::SessionContext;
use clap::{Parser, ValueEnum};
use fabric_testkit::bench_report::{machine_summary, today_utc, update_section_file};
use fabric_testkit::bgp_peer::{Feed, FeedPlan};

use dut::DutKind;
use report::{Row, SECTION, feeder_write_rate, table, thousands};

/// Which DUTs to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DutChoice {
    /// BIRD 2 only.
    Bird,
    /// Our bgpd only.
    Bgpd,
    /// Both, in the same run.
    Both,
}

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "N prefixes feeder → DUT (BIRD 2 / bgpd) → counting receiver, in namespaces")]
struct Args {
    /// Devices under test.
    #[arg(long, value_enum, default_value = "both")]
    dut: DutChoice,
    /// Unique IPv4 prefixes fed.
    #[arg(long, default_value_t = 1_000_000)]
    prefixes: u32,
    /// Attribute-set variants (comma-separated; each runs separately).
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 1000])]
    attr_sets: Vec<u32>,
    /// Rounds per (DUT, variant); the DUT order rotates each round.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Prefix length (24: /24s from 1.0.0.0; 32: /32 host routes).
    #[arg(long, default_value_t = 24)]
    prefix_len: u8,
    /// The bgpd binary (default: next to this binary, else the workspace's target/release).
    #[arg(long)]
    bgpd: Option<PathBuf>,
    /// Deadline for one run, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Before each round, wait up to this many seconds for the CPUs to be 90 % idle over 2 s
    /// (the machine is shared with build jobs); 0 starts at once.
    #[arg(long, default_value_t = 600)]
    idle_wait: u64,
    /// Replace this benchmark's section of BENCHMARKS.md.
    #[arg(long)]
    write: bool,
    /// The BENCHMARKS.md to update with --write (default: the workspace's bench/BENCHMARKS.md).
    #[arg(long)]
    output: Option<PathBuf>,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// The bgpd binary: `--bgpd`, else beside this executable, else `<workspace>/target/release`.
fn find_bgpd(explicit: Option<&PathBuf>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.clone());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("bgpd")));
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/bgpd");
    [beside, Some(workspace)]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

/// (idle, total) jiffies over all CPUs from /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = v.get(3)? + v.get(4)?;
    Some((idle, v.iter().sum()))
}

/// Waits until the CPUs were at least 90 % idle over a 2 s window, or `max` passes; returns
/// whether the machine was idle.
fn wait_for_idle_cpus(max: Duration) -> bool {
    let deadline = std::time::Instant::now() + max;
    while std::time::Instant::now() < deadline {
        let Some((i1, t1)) = cpu_jiffies() else {
            return false;
        };
        std::thread::sleep(Duration::from_secs(2));
        let Some((i2, t2)) = cpu_jiffies() else {
            return false;
        };
        if t2 > t1 && (i2 - i1) * 100 >= (t2 - t1) * 90 {
            return true;
        }
    }
    false
}

fn bird_version() -> String {
    Command::new("bird")
        .arg("--version")
        .output()
        .map(|o| {
            let text = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&text)
                .trim()
                .replace("BIRD version ", "")
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn section(args: &Args, rows: &[Row], skipped_bgpd: Option<&str>, busy_rounds: u32) -> String {
    let idle = if args.idle_wait == 0 {
        "Rounds started without waiting for idle CPUs.".to_string()
    } else {
        format!(
            "Each round started once the CPUs were 90 % idle over 2 s (waiting at most {} s; \
             rounds that started busy: {busy_rounds}).",
            args.idle_wait
        )
    };
    let n = thousands(u64::from(args.prefixes));
    let kind = if args.prefix_len == 32 {
        "/32s from 1.0.0.0".to_string()
    } else {
        format!("/{}s from 1.0.0.0", args.prefix_len)
    };
    let write_rate = feeder_write_rate(rows, args.prefixes)
        .map_or_else(String::new, |r| {
            format!(
                "\n\nThe feeder hands the pre-encoded feed to its socket at a median {:.1} M prefixes/s \
                 in the direct runs; the direct row is the harness's ceiling.",
                r / 1e6
            )
        });
    let skipped =
        skipped_bgpd.map_or_else(String::new, |s| format!("\n\n**bgpd not measured:** {s}"));
    let attr_sets: Vec<String> = args.attr_sets.iter().map(u32::to_string).collect();
    format!(
        "{SECTION}\n\n\
         {n} unique IPv4 {kind} announced over eBGP by a raw feeder (testkit `BgpPeer`, AS 65001; \
         UPDATEs packed and encoded before the clock starts, then written as fast as the socket \
         takes them) to the device under test (AS 65002), which re-advertises them to a counting \
         receiver (testkit `BgpPeer` in counting mode, AS 65003). Three network namespaces joined by \
         veth pairs: feeder 192.0.2.1/30 — 192.0.2.2/30 DUT 192.0.2.5/30 — 192.0.2.6/30 receiver. \
         Fresh namespaces and a fresh DUT for every run; rounds: {}, the order of the DUTs rotating.\n\n\
         * **Time to all at receiver**: from the feeder's first UPDATE write to the receiver first \
         holding all {n} prefixes (one process, one clock). routes/s = N / that time.\n\
         * **Time to all in DUT RIB**: BIRD's `Routes: N imported` on the feeder session, polled \
         every 20 ms over an open control-socket session, timed at the answer; the median of the runs where it \
         was seen before the receiver had everything (BIRD exports while it imports, so the two \
         are often within one poll; bgpd: the feeder session's accepted-prefix counter from a `neighbors` request on its status socket, same poll interval).\n\
         * **Peak RSS**: the DUT's `VmHWM`; **bytes/route** = (VmHWM − RSS with both sessions up \
         before the feed) / N.\n\
         * **Variants**: one attribute set shared by every prefix (ORIGIN IGP, AS_PATH 65001, \
         NEXT_HOP), and K attribute sets (contiguous blocks, each with its own MED and community).\n\
         * **DUTs**: BIRD {} (`import all; export all;` on both sessions, `next hop self` toward the \
         receiver, no kernel protocol); bgpd (`bgpd --config FILE`, the issue's TOML: router-id \
         192.0.2.2, asn 65002, two neighbors).\n\n\
         Reference (bgp.md §4.2, same kind of VM): BIRD 2.0.12 *receiving* 1 M /24s over one eBGP \
         session from a BIRD sender took **3.3 s (~300 k routes/s) with 92 MB RSS (~90 B/route)**. \
         Here the DUT also re-advertises every route, so the figures are not directly comparable.\n\n\
         Date {}; machine: {}; build: release. The machine is shared with other build \
         jobs. {idle} The minimum is the least disturbed figure.\n\n\
         Reproduce (root): `cargo build --release -p bgpd && \
         cargo run --release -p bench-bgp-convergence -- --prefixes {} --attr-sets {} --rounds {} \
         --write` (bgpd found beside the benchmark binary or in `target/release/`, or pass \
         `--bgpd PATH`).\n\n{}{write_rate}{skipped}\n",
        args.rounds,
        bird_version(),
        today_utc(),
        machine_summary(),
        args.prefixes,
        attr_sets.join(","),
        args.rounds,
        table(rows, args.prefixes).trim_end(),
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        is_root(),
        "this benchmark creates network namespaces and must run as root"
    );
    ensure!(args.rounds > 0, "--rounds must be at least 1 (got 0)");
    ensure!(
        !args.attr_sets.is_empty(),
        "--attr-sets needs at least one value"
    );
    if args.write && args.prefixes != 1_000_000 {
        bail!(
            "--write publishes the section \"{SECTION}\"; it needs --prefixes 1000000 (got {})",
            args.prefixes
        );
    }
    let want_bird = matches!(args.dut, DutChoice::Bird | DutChoice::Both);
    let want_bgpd = matches!(args.dut, DutChoice::Bgpd | DutChoice::Both);
    if want_bird {
        ensure!(
            fabric_testkit::which("bird").is_some(),
            "BIRD is not installed (Debian package bird2)"
        );
    }
    let bgpd = if want_bgpd {
        find_bgpd(args.bgpd.as_ref())
    } else {
        None
    };
    let skipped_bgpd = (want_bgpd && bgpd.is_none()).then(|| {
        "the bgpd binary was not found (build it with `cargo build --release -p bgpd`, or pass \
         --bgpd PATH); only the other DUTs ran."
            .to_string()
    });
    if let Some(s) = &skipped_bgpd {
        eprintln!("notice: {s}");
    }

    let ctx = SessionContext {
        four_octet_as: true,
        ..SessionContext::default()
    };
    let mut feeds = Vec::new();
    for &k in &args.attr_sets {
        let plan = FeedPlan::new(args.prefixes, &[65001], Ipv4Addr::new(192, 0, 2, 1))
            .prefix_len(args.prefix_len)
            .attribute_sets(k);
        let feed = Feed::build(&plan, &ctx)
            .with_context(|| format!("building the feed with {k} attribute sets"))?;
        eprintln!(
            "feed: {} prefixes, {k} attribute sets, {} UPDATEs, {:.1} MB",
            args.prefixes,
            feed.messages(),
            feed.len_bytes() as f64 / 1e6
        );
        feeds.push((k, feed));
    }

    let mut duts = vec![DutKind::Direct];
    if want_bird {
        duts.push(DutKind::Bird);
    }
    if want_bgpd {
        duts.push(DutKind::Bgpd);
    }
    let mut rows: Vec<Row> = feeds
        .iter()
        .flat_map(|(k, _)| {
            duts.iter().map(|&dut| Row {
                dut,
                attr_sets: *k,
                runs: Vec::new(),
                note: (dut == DutKind::Bgpd && bgpd.is_none())
                    .then(|| "skipped: binary not found".to_string()),
            })
        })
        .collect();
    let timeout = Duration::from_secs(args.timeout);
    let mut busy_rounds = 0;
    for round in 0..args.rounds {
        if args.idle_wait > 0 && !wait_for_idle_cpus(Duration::from_secs(args.idle_wait)) {
            eprintln!(
                "round {}: the CPUs stayed busy; measuring anyway",
                round + 1
            );
            busy_rounds += 1;
        }
        for (k, feed) in &feeds {
            let mut order: Vec<DutKind> = duts.clone();
            let shift = round as usize % order.len();
            order.rotate_left(shift);
            for dut in order {
                let Some(row) = rows.iter_mut().find(|r| r.dut == dut && r.attr_sets == *k) else {
                    continue;
                };
                if dut == DutKind::Bgpd && bgpd.is_none() {
                    continue;
                }
                match run::run(dut, feed, timeout, bgpd.as_deref()) {
                    Ok(m) => {
                        eprintln!(
                            "round {} {dut} {k} sets: {:.2} s to receiver, DUT RIB {:?}, peak RSS {:?}",
                            round + 1,
                            m.to_receiver.as_secs_f64(),
                            m.to_dut_rib,
                            m.peak_rss
                        );
                        row.runs.push(m);
                    }
                    // bgpd is new: a failing run is recorded in the table, not fatal.
                    Err(e) if dut == DutKind::Bgpd => {
                        eprintln!("round {} bgpd {k} sets failed: {e:#}", round + 1);
                        row.note = Some(format!("failed: {e:#}"));
                    }
                    Err(e) => return Err(e.context(format!("{dut} with {k} attribute sets"))),
                }
            }
        }
    }

    let text = section(&args, &rows, skipped_bgpd.as_deref(), busy_rounds);
    println!("{text}");
    if args.write {
        let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
        let path = args.output.clone().unwrap_or(default);
        update_section_file(&path, SECTION, &text)
            .with_context(|| format!("updating {}", path.display()))?;
        eprintln!("updated {}", path.display());
    }
    Ok(())
}
