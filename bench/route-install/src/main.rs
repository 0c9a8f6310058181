//! Route installation benchmark: N /32 routes through felix's route reconciler (batched
//! rtnetlink) beside `ip -batch` of the same routes, each run in a fresh network namespace,
//! several interleaved rounds, counts verified; prints a Markdown table and can write it into
//! `bench/BENCHMARKS.md` (section "Felix: route installation"). Needs root.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use fabric_testkit::{Netns, bench_report};
use felix::dataplane::{NetlinkRouteKernel, Reconciler, Route, RouteConfig, RouteReconciler};
use ipnet::IpNet;

const SECTION: &str = "## Felix: route installation";

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "felix route reconciler vs. ip -batch, fresh namespace per run")]
struct Args {
    /// Routes per run.
    #[arg(long, default_value_t = 100_000)]
    routes: u32,
    /// Rounds (each round runs felix and ip -batch once, alternating who goes first).
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Netlink messages per datagram.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Write the section into this BENCHMARKS.md (default: the workspace's bench/BENCHMARKS.md).
    #[arg(long)]
    write: bool,
    /// The BENCHMARKS.md to update with --write.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Run {
    add: Duration,
    delete: Duration,
}

fn addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i)
}

/// A fresh namespace with the underlay `rt0` (172.16.0.1/16) the routes point at.
fn namespace() -> Result<Netns> {
    let ns = Netns::new("rtb");
    for cmd in [
        "link add rt0 type veth peer name rt1",
        "addr add 172.16.0.1/16 dev rt0",
        "link set rt0 up",
        "link set rt1 up",
    ] {
        ns.try_ip(cmd)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("ip -n {} {cmd}", ns.name()))?;
    }
    Ok(ns)
}

fn count_routes(ns: &Netns) -> Result<usize> {
    let out = ns
        .try_ip("-4 route show proto 80")
        .map_err(anyhow::Error::msg)
        .context("listing proto 80 routes")?;
    Ok(out.lines().count())
}

fn felix_run(routes: &[Route], batch_size: usize) -> Result<Run> {
    let ns = namespace()?;
    let n = routes.len();
    ns.run_in(|| -> Result<Run> {
        let kernel = NetlinkRouteKernel::open().context("opening rtnetlink")?;
        let config = RouteConfig {
            batch_size,
            ..RouteConfig::default()
        };
        let mut r = RouteReconciler::new(kernel, config).context("route config")?;
        let start = Instant::now();
        r.set_desired(routes.iter().cloned())
            .context("desired routes")?;
        let report = r.apply();
        let add = start.elapsed();
        ensure!(report.is_ok(), "felix apply failed: {:?}", report.errors);
        let installed = count_routes(&ns)?;
        ensure!(
            report.created == n && installed == n,
            "felix created {} and the kernel holds {installed} of {n} routes",
            report.created
        );

        r.set_in_sync(true);
        let start = Instant::now();
        r.set_desired([]).context("empty desired state")?;
        let report = r.apply();
        let delete = start.elapsed();
        ensure!(report.is_ok(), "felix delete failed: {:?}", report.errors);
        let left = count_routes(&ns)?;
        ensure!(
            report.deleted == n && left == 0,
            "felix deleted {} routes, {left} left",
            report.deleted
        );
        Ok(Run { add, delete })
    })
}

fn ip_batch_run(n: u32, dir: &std::path::Path) -> Result<Run> {
    let ns = namespace()?;
    let add_file = dir.join("add.batch");
    let del_file = dir.join("del.batch");
    let mut add = String::new();
    let mut del = String::new();
    for i in 0..n {
        let _ = writeln!(
            add,
            "route add {}/32 via 172.16.0.2 dev rt0 proto 80",
            addr(i)
        );
        let _ = writeln!(
            del,
            "route del {}/32 via 172.16.0.2 dev rt0 proto 80",
            addr(i)
        );
    }
    std::fs::write(&add_file, add).with_context(|| format!("writing {}", add_file.display()))?;
    std::fs::write(&del_file, del).with_context(|| format!("writing {}", del_file.display()))?;
    let time_batch = |file: &PathBuf| -> Result<Duration> {
        let start = Instant::now();
        let out = Command::new("ip")
            .args(["-n", ns.name(), "-batch"])
            .arg(file)
            .output()
            .context("running ip -batch")?;
        let took = start.elapsed();
        if !out.status.success() {
            bail!("ip -batch failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(took)
    };
    let add = time_batch(&add_file)?;
    let installed = count_routes(&ns)?;
    ensure!(
        installed == n as usize,
        "ip -batch installed {installed} of {n} routes"
    );
    let delete = time_batch(&del_file)?;
    ensure!(
        count_routes(&ns)? == 0,
        "routes left after ip -batch delete"
    );
    Ok(Run { add, delete })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rate(n: u32, d: Duration) -> f64 {
    f64::from(n) / d.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The machine, and how busy it was when the benchmark started.
fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    format!(
        "{}, 1-minute load average {load} at the start",
        bench_report::machine_summary()
    )
}

fn table(args: &Args, felix: &[Run], ip: &[Run]) -> String {
    let n = args.routes;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| round | felix add (ms) | felix routes/s | `ip -batch` add (ms) | `ip -batch` routes/s | felix delete (ms) | `ip -batch` delete (ms) |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|");
    for (i, (f, p)) in felix.iter().zip(ip).enumerate() {
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.0}k | {:.0} | {:.0}k | {:.0} | {:.0} |",
            i + 1,
            ms(f.add),
            rate(n, f.add) / 1000.0,
            ms(p.add),
            rate(n, p.add) / 1000.0,
            ms(f.delete),
            ms(p.delete)
        );
    }
    let fr = median(felix.iter().map(|r| rate(n, r.add)).collect());
    let pr = median(ip.iter().map(|r| rate(n, r.add)).collect());
    let fd = median(felix.iter().map(|r| rate(n, r.delete)).collect());
    let pd = median(ip.iter().map(|r| rate(n, r.delete)).collect());
    let _ = writeln!(
        t,
        "| **median** | {:.0} | **{:.0}k** | {:.0} | **{:.0}k** | {:.0} | {:.0} |",
        median(felix.iter().map(|r| ms(r.add)).collect()),
        fr / 1000.0,
        median(ip.iter().map(|r| ms(r.add)).collect()),
        pr / 1000.0,
        median(felix.iter().map(|r| ms(r.delete)).collect()),
        median(ip.iter().map(|r| ms(r.delete)).collect()),
    );
    let _ = writeln!(
        t,
        "\nMedian install rate: felix / `ip -batch` = **{:.2}x** (goal: at least 1.5x); delete: {:.2}x.",
        fr / pr,
        fd / pd
    );
    t
}

fn section(args: &Args, machine: &str, body: &str) -> String {
    format!(
        "{SECTION}\n\n\
         {} /32 routes `10.a.b.c/32 via 172.16.0.2 dev rt0 proto 80` installed, verified with \
         `ip route show proto 80`, then deleted, in a fresh network namespace per run; {} \
         interleaved rounds (felix and `ip -batch` alternate going first). felix: \
         `RouteReconciler::set_desired` + `apply()` (validation, diff against one RTM_GETROUTE \
         dump, {} RTM_NEWROUTE messages per datagram, one ACK each). `ip -batch`: the same routes \
         as `route add` lines. Delete: desired state emptied after in-sync vs. `route del` lines.\n\n\
         Date {}; machine: {}; build: release.\n\n\
         Reproduce (root): `cargo run --release -p \
         bench-route-install -- --routes {} --rounds {} --write`\n\n{body}",
        args.routes,
        args.rounds,
        args.batch_size,
        bench_report::today_utc(),
        machine,
        args.routes,
        args.rounds,
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.routes > 0 && args.rounds > 0,
        "--routes and --rounds must be positive"
    );
    let routes: Vec<Route> = (0..args.routes)
        .map(|i| {
            let dst = IpNet::new(IpAddr::V4(addr(i)), 32).context("route destination")?;
            Ok(Route::direct(
                dst,
                IpAddr::V4(Ipv4Addr::new(172, 16, 0, 2)),
                "rt0",
            ))
        })
        .collect::<Result<_>>()?;
    let dir = std::env::temp_dir().join(format!("bench-route-install-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let machine = machine();
    let mut felix = Vec::new();
    let mut ip = Vec::new();
    for round in 0..args.rounds {
        if round % 2 == 0 {
            felix.push(felix_run(&routes, args.batch_size)?);
            ip.push(ip_batch_run(args.routes, &dir)?);
        } else {
            ip.push(ip_batch_run(args.routes, &dir)?);
            felix.push(felix_run(&routes, args.batch_size)?);
        }
        eprintln!(
            "round {}: felix {:.0} ms, ip -batch {:.0} ms",
            round + 1,
            ms(felix[felix.len() - 1].add),
            ms(ip[ip.len() - 1].add)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    let body = table(&args, &felix, &ip);
    let text = section(&args, &machine, &body);
    println!("{text}");
    if args.write {
        let path = args
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md"));
        bench_report::update_section_file(&path, SECTION, &text)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("updated {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
    }
}
