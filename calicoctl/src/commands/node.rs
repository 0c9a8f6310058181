//! `node status` (the local calico-node's BGP sessions, from its status socket, in Calico's
//! table) and `node checksystem` (the kernel features Calico needs, present or missing).
//!
//! The status socket speaks bgpd's protocol (one JSON request per line, one JSON response per
//! line); only the members printed here are read, so calicoctl does not depend on bgpd.

use std::io::{BufRead, BufReader, Write as _};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::context::Ctx;

/// The status socket of calico-node unless `CALICO_NODE_STATUS_SOCKET` says otherwise.
pub const DEFAULT_STATUS_SOCKET: &str = "/var/run/calico/bgpd.sock";
/// The variable overriding the status socket.
pub const STATUS_SOCKET_ENV: &str = "CALICO_NODE_STATUS_SOCKET";

/// Arguments of `node`.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// The node command.
    #[command(subcommand)]
    pub command: NodeCommand,
}

/// `node` subcommands.
#[derive(Debug, Subcommand, Clone)]
pub enum NodeCommand {
    /// Show the BGP sessions of the calico-node running on this host.
    Status(StatusArgs),
    /// Check that this host's kernel has what Calico needs.
    Checksystem(ChecksystemArgs),
}

/// Arguments of `node status`.
#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    /// Output format: table (default) or json.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        default_value = "table"
    )]
    pub output: String,
    /// The status socket (default: $CALICO_NODE_STATUS_SOCKET, else /var/run/calico/bgpd.sock).
    #[arg(long = "socket", value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// Arguments of `node checksystem`.
#[derive(Debug, Args, Clone)]
pub struct ChecksystemArgs {
    /// Accepted for compatibility (Calico checks a kernel config file); ignored.
    #[arg(short = 'f', long = "kernel-config", value_name = "FILE")]
    pub kernel_config: Option<PathBuf>,
}

/// Runs `node`.
pub(crate) async fn run(ctx: &mut Ctx<'_>, args: NodeArgs) -> anyhow::Result<()> {
    match args.command {
        NodeCommand::Status(a) => status(ctx, &a),
        NodeCommand::Checksystem(_) => checksystem(ctx, &host_probe),
    }
}

/// One BGP session as the status socket reports it (the members `node status` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The neighbour's address.
    pub address: IpAddr,
    /// The peer type (`node-to-node mesh`, `global`, `node specific`).
    #[serde(default)]
    pub description: Option<String>,
    /// The RFC 4271 state.
    pub state: String,
    /// When the state last changed (Unix milliseconds).
    #[serde(default)]
    pub since_unix_ms: u64,
    /// The last error, if any.
    #[serde(default)]
    pub last_error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Response {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    neighbors: Option<Vec<Peer>>,
}

fn query_neighbors(socket: &Path) -> anyhow::Result<Vec<Peer>> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(b"{\"request\":\"neighbors\"}\n")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let r: Response = serde_json::from_str(&line).context("the status socket's answer")?;
    if !r.ok {
        bail!("calico-node: {}", r.error.unwrap_or_default());
    }
    Ok(r.neighbors.unwrap_or_default())
}

fn status(ctx: &mut Ctx<'_>, args: &StatusArgs) -> anyhow::Result<()> {
    let socket = args
        .socket
        .clone()
        .or_else(|| ctx.env.var(STATUS_SOCKET_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATUS_SOCKET));
    let peers = match query_neighbors(&socket) {
        Ok(p) => p,
        Err(e) => {
            writeln!(ctx.out, "Calico process is not running.")?;
            bail!("cannot read the status socket {}: {e:#}", socket.display());
        }
    };
    match args.output.as_str() {
        "json" => {
            writeln!(ctx.out, "{}", serde_json::to_string_pretty(&peers)?)?;
            Ok(())
        }
        "table" | "ps" | "" => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            write!(ctx.out, "{}", render_status(&peers, now))?;
            Ok(())
        }
        other => bail!("unknown output format {other:?}: expected table or json"),
    }
}

/// Calico's `node status` text for `peers` at time `now_ms`.
pub fn render_status(peers: &[Peer], now_ms: u64) -> String {
    let mut out = String::from("Calico process is running.\n");
    for (title, v4) in [("IPv4", true), ("IPv6", false)] {
        out.push_str(&format!("\n{title} BGP status\n"));
        let rows: Vec<[String; 5]> = peers
            .iter()
            .filter(|p| p.address.is_ipv4() == v4)
            .map(|p| {
                let up = p.state == "Established";
                let mut info = p.state.clone();
                if !up
                    && let Some(msg) = p
                        .last_error
                        .as_ref()
                        .and_then(|e| e.get("message").and_then(|m| m.as_str()))
                {
                    info = format!("{info} {msg}");
                }
                [
                    p.address.to_string(),
                    p.description.clone().unwrap_or_else(|| "global".into()),
                    if up { "up" } else { "start" }.to_string(),
                    since(p.since_unix_ms, now_ms),
                    info,
                ]
            })
            .collect();
        if rows.is_empty() {
            out.push_str(&format!("No {title} peers found.\n"));
            continue;
        }
        out.push_str(&table(
            ["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"],
            &rows,
        ));
    }
    out.push('\n');
    out
}

/// BIRD's `since`: the time of day when it is today (UTC), else the date.
fn since(ms: u64, now_ms: u64) -> String {
    if ms == 0 {
        return String::new();
    }
    let secs = ms / 1000;
    let (date, time) = fabric_api::time::date_and_time(secs);
    if secs / 86_400 == now_ms / 1000 / 86_400 {
        time
    } else {
        date
    }
}

/// A table with `+---+` borders and centred headers, as Calico prints it.
fn table<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headers.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let border = {
        let mut s = String::from("+");
        for w in widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let mut out = border.clone();
    out.push('|');
    for (h, w) in headers.iter().zip(widths) {
        let pad = w - h.len();
        let left = pad / 2;
        out.push_str(&format!(
            " {}{}{} |",
            " ".repeat(left),
            h,
            " ".repeat(pad - left)
        ));
    }
    out.push('\n');
    out.push_str(&border);
    for r in rows {
        out.push('|');
        for (c, w) in r.iter().zip(widths) {
            out.push_str(&format!(" {c:<w$} |"));
        }
        out.push('\n');
    }
    out.push_str(&border);
    out
}

/// A kernel feature `checksystem` looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// The `ipip` tunnel (tunl0): IPIP pools.
    Ipip,
    /// VXLAN devices: VXLAN pools.
    Vxlan,
    /// iptables (xtables) tables.
    Iptables,
    /// nf_tables.
    NfTables,
    /// ipset.
    Ipset,
    /// Connection tracking.
    Conntrack,
    /// IPv4 forwarding (the sysctl exists).
    Forwarding,
}

impl Feature {
    const ALL: [Feature; 7] = [
        Feature::Ipip,
        Feature::Vxlan,
        Feature::Iptables,
        Feature::NfTables,
        Feature::Ipset,
        Feature::Conntrack,
        Feature::Forwarding,
    ];

    fn name(self) -> &'static str {
        match self {
            Feature::Ipip => "ipip",
            Feature::Vxlan => "vxlan",
            Feature::Iptables => "netfilter (iptables)",
            Feature::NfTables => "nf_tables",
            Feature::Ipset => "ipset",
            Feature::Conntrack => "conntrack",
            Feature::Forwarding => "ip forwarding",
        }
    }

    fn missing_means(self) -> &'static str {
        match self {
            Feature::Ipip => "IPIP pools cannot be used (use VXLAN or no encapsulation)",
            Feature::Vxlan => "VXLAN pools cannot be used",
            Feature::Iptables => "felix needs iptables or nf_tables",
            Feature::NfTables => "felix needs iptables or nf_tables",
            Feature::Ipset => "felix's policy and NAT sets need ipset",
            Feature::Conntrack => "felix's stateful policy needs connection tracking",
            Feature::Forwarding => "a node must forward pod traffic",
        }
    }
}

/// Whether this host has `feature` (files under /proc and /sys, `tunl0` for ipip).
pub fn host_probe(feature: Feature) -> bool {
    let exists = |p: &str| Path::new(p).exists();
    match feature {
        Feature::Ipip => {
            exists("/sys/module/ipip")
                || std::fs::read_to_string("/proc/net/dev").is_ok_and(|d| d.contains("tunl0"))
        }
        Feature::Vxlan => exists("/sys/module/vxlan"),
        Feature::Iptables => exists("/proc/net/ip_tables_names"),
        Feature::NfTables => {
            exists("/sys/module/nf_tables")
                || std::process::Command::new("nft")
                    .args(["list", "tables"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        }
        Feature::Ipset => exists("/sys/module/ip_set"),
        Feature::Conntrack => exists("/proc/sys/net/netfilter/nf_conntrack_max"),
        Feature::Forwarding => exists("/proc/sys/net/ipv4/ip_forward"),
    }
}

/// `node checksystem` with `probe`: prints each feature, fails when a required one is missing
/// (netfilter through iptables or nf_tables, ipset, conntrack, forwarding; ipip and vxlan are
/// needed only by pools that use them).
pub(crate) fn checksystem(
    ctx: &mut Ctx<'_>,
    probe: &dyn Fn(Feature) -> bool,
) -> anyhow::Result<()> {
    let present: Vec<(Feature, bool)> = Feature::ALL.iter().map(|f| (*f, probe(*f))).collect();
    let has = |f: Feature| present.iter().any(|(g, p)| *g == f && *p);
    writeln!(ctx.out, "Checking kernel features...")?;
    for (f, p) in &present {
        let mark = if *p { "OK" } else { "MISSING" };
        writeln!(ctx.out, "\t\t{:<24}{mark}", f.name())?;
    }
    let mut failures = Vec::new();
    if !has(Feature::Iptables) && !has(Feature::NfTables) {
        failures.push(Feature::Iptables);
    }
    for f in [Feature::Ipset, Feature::Conntrack, Feature::Forwarding] {
        if !has(f) {
            failures.push(f);
        }
    }
    for (f, p) in &present {
        if !p && matches!(f, Feature::Ipip | Feature::Vxlan) {
            writeln!(
                ctx.out,
                "WARNING: {} missing: {}",
                f.name(),
                f.missing_means()
            )?;
        }
    }
    if failures.is_empty() {
        writeln!(
            ctx.out,
            "System meets minimum system requirements to run Calico!"
        )?;
        return Ok(());
    }
    writeln!(
        ctx.out,
        "System doesn't meet one or more minimum systems requirements to run Calico"
    )?;
    let list: Vec<String> = failures
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.missing_means()))
        .collect();
    bail!("required kernel features missing: {}", list.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(addr: &str, kind: &str, state: &str, since: u64) -> Peer {
        Peer {
            address: addr.parse().unwrap(),
            description: Some(kind.into()),
            state: state.into(),
            since_unix_ms: since,
            last_error: None,
        }
    }

    #[test]
    fn node_status_prints_calicos_table_for_each_family() {
        let now = 1_764_450_000_000; // 2025-11-29 21:00:00 UTC
        let text = render_status(
            &[
                peer(
                    "10.0.0.2",
                    "node-to-node mesh",
                    "Established",
                    now - 3_600_000,
                ),
                peer("10.0.0.3", "global", "Active", now - 90_000_000),
            ],
            now,
        );
        let expected = "\
Calico process is running.

IPv4 BGP status
+--------------+-------------------+-------+------------+-------------+
| PEER ADDRESS |     PEER TYPE     | STATE |   SINCE    |    INFO     |
+--------------+-------------------+-------+------------+-------------+
| 10.0.0.2     | node-to-node mesh | up    | 20:00:00   | Established |
| 10.0.0.3     | global            | start | 2025-11-28 | Active      |
+--------------+-------------------+-------+------------+-------------+

IPv6 BGP status
No IPv6 peers found.

";
        assert_eq!(text, expected);
    }

    #[test]
    fn checksystem_fails_when_a_required_feature_is_missing_and_warns_for_encapsulations() {
        let env = crate::context::Env::empty();
        let mut input: &[u8] = b"";
        let mut out = Vec::new();
        let mut ctx = Ctx::new(&env, None, &mut input, &mut out);
        checksystem(&mut ctx, &|f| f != Feature::Ipip).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("ipip") && text.contains("MISSING"), "{text}");
        assert!(text.contains("meets minimum"), "{text}");

        let mut out = Vec::new();
        let mut ctx = Ctx::new(&env, None, &mut input, &mut out);
        let e = checksystem(&mut ctx, &|f| !matches!(f, Feature::Ipset)).unwrap_err();
        assert!(e.to_string().contains("ipset"), "{e}");
        let mut out = Vec::new();
        let mut ctx = Ctx::new(&env, None, &mut input, &mut out);
        checksystem(&mut ctx, &|f| f != Feature::Iptables).unwrap();
    }
}
