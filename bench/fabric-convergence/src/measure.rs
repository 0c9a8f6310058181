//! The two measurements: a pod's CNI ADD to its first answered ping from another node, and a
//! whole mesh converging (every session Established, then every node holding every block route).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use fabric_e2e::routes::Target;
use ipnet::Ipv4Net;
use serde_yaml_ng::{Mapping, Value};

use crate::lab::{LabRun, copy_dir, routes_in};

/// How long sessions or routes may take before the run counts as failed.
const DEADLINE: Duration = Duration::from_secs(180);

/// One pod's timings.
#[derive(Debug, Clone, Copy)]
pub struct PodSample {
    /// `calico-lab pod add` (namespace, CNI ADD through calico and calico-ipam), start to exit.
    pub add: Duration,
    /// From `pod add` exiting to the first echo reply at the other node's pod.
    pub after_add: Duration,
    /// From `pod add` starting to the first echo reply: the figure reported.
    pub total: Duration,
}

/// What one topology's pod run gave.
#[derive(Debug, Clone)]
pub struct PodRun {
    /// Topology name.
    pub topology: String,
    /// The node pinging from, and the nodes the pods were added on.
    pub probe_node: String,
    /// Nodes the pods went to.
    pub target_nodes: Vec<String>,
    /// One sample per pod.
    pub samples: Vec<PodSample>,
}

/// Waits until every calico-node lists `expected(node)` sessions, all Established.
fn wait_sessions(
    lab: &LabRun,
    nodes: &[String],
    expected: &dyn Fn(&str) -> usize,
) -> Result<Duration> {
    let start = Instant::now();
    let mut pending: Vec<String> = nodes.to_vec();
    while !pending.is_empty() {
        if start.elapsed() > DEADLINE {
            bail!("sessions not all Established after {DEADLINE:?} on {pending:?}");
        }
        let mut still = Vec::new();
        std::thread::scope(|s| {
            let handles: Vec<_> = pending
                .iter()
                .map(|n| (n, s.spawn(|| lab.sessions(n))))
                .collect();
            for (n, h) in handles {
                let ok =
                    matches!(h.join(), Ok(Ok((up, listed))) if up == expected(n) && listed == up);
                if !ok {
                    still.push(n.clone());
                }
            }
        });
        pending = still;
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(start.elapsed())
}

/// `[1764445123.456789] 64 bytes from ...` -> the time stamp.
fn reply_time(line: &str) -> Option<SystemTime> {
    if !line.contains("bytes from") {
        return None;
    }
    let stamp = line.strip_prefix('[')?.split(']').next()?;
    let (secs, micros) = stamp.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let micros: u64 = format!("{micros:0<6}").get(..6)?.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
}

/// Pings `ip` from network namespace `netns` every 5 ms until the first reply; its time.
fn first_reply(netns: &str, ip: Ipv4Addr) -> Result<SystemTime> {
    let mut child = Command::new("ip")
        .args([
            "netns", "exec", netns, "ping", "-n", "-D", "-i", "0.005", "-w", "30",
        ])
        .arg(ip.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ping")?;
    let stdout = child.stdout.take().context("ping's stdout")?;
    let mut found = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading ping")?;
        if let Some(t) = reply_time(&line) {
            found = Some(t);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    found.with_context(|| format!("no echo reply from {ip} within 30 s"))
}

/// Adds `pods` pods round-robin on every calico-node but the last one, whose pod pings each
/// new pod from the moment `pod add` returns.
pub fn pod_to_ping(
    bin: &Path,
    topology: &str,
    pods: usize,
    expected_sessions: &dyn Fn(&str) -> usize,
) -> Result<PodRun> {
    let source = fabric_e2e::topology::topologies_dir().join(topology);
    let dir = tempfile::tempdir().context("temporary directory")?;
    copy_dir(&source, &dir.path().join(topology))?;
    let file = dir
        .path()
        .join(topology)
        .join(format!("{topology}.clab.yml"));
    let lab = LabRun::deploy(bin, &file)?;
    let nodes: Vec<String> = lab.calico_nodes()?.into_keys().collect();
    wait_sessions(&lab, &nodes, expected_sessions)?;
    let (probe_node, targets) = nodes.split_last().context("no calico-nodes")?;
    let (_, probe_ns) = lab.pod_add(probe_node, "probe")?;
    let mut samples = Vec::new();
    for i in 0..pods {
        let node = &targets[i % targets.len()];
        let start_wall = SystemTime::now();
        let start = Instant::now();
        let (ip, _) = lab.pod_add(node, &format!("p{i}"))?;
        let add = start.elapsed();
        let added_wall = SystemTime::now();
        let reply = first_reply(&probe_ns, ip)?;
        let total = reply.duration_since(start_wall).unwrap_or_default();
        let after_add = reply.duration_since(added_wall).unwrap_or_default();
        eprintln!(
            "{topology}: pod p{i} on {node} ({ip}): add {:.1} ms, first reply {:.1} ms after",
            ms(add),
            ms(after_add)
        );
        samples.push(PodSample {
            add,
            after_add,
            total,
        });
    }
    lab.destroy()?;
    Ok(PodRun {
        topology: topology.to_string(),
        probe_node: probe_node.clone(),
        target_nodes: targets.to_vec(),
        samples,
    })
}

/// A full mesh of `n` calico-nodes: mesh-3's file with more nodes on its bridge.
fn mesh_topology(n: usize, dir: &Path) -> Result<std::path::PathBuf> {
    let source = fabric_e2e::topology::topologies_dir().join("mesh-3");
    let target = dir.join(format!("mesh-{n}"));
    copy_dir(&source, &target)?;
    std::fs::remove_file(target.join("mesh-3.clab.yml")).context("removing the copied file")?;
    let text = std::fs::read_to_string(source.join("mesh-3.clab.yml")).context("reading mesh-3")?;
    let mut doc: Value = serde_yaml_ng::from_str(&text).context("parsing mesh-3")?;
    let mut nodes = Mapping::new();
    let mut links = Vec::new();
    nodes.insert("fabric".into(), serde_yaml_ng::from_str("kind: bridge")?);
    for i in 1..=n {
        let ip = format!("10.0.0.{}/24", 10 + i);
        let mut exec = vec![format!("ip addr add {ip} dev eth1")];
        if i == 1 {
            exec.push("calicoctl apply -f /etc/calico/resources/bgp.yaml".into());
        }
        let body = format!(
            "kind: linux\nenv: {{NODENAME: n{i}, IP: {ip}}}\nexec: {}\n",
            serde_json::to_string(&exec)?
        );
        nodes.insert(format!("n{i}").into(), serde_yaml_ng::from_str(&body)?);
        links.push(serde_yaml_ng::from_str::<Value>(&format!(
            "endpoints: [\"n{i}:eth1\", \"fabric:eth{i}\"]"
        ))?);
    }
    doc["name"] = format!("mesh-{n}").into();
    doc["topology"]["nodes"] = Value::Mapping(nodes);
    doc["topology"]["links"] = Value::Sequence(links);
    let file = target.join(format!("mesh-{n}.clab.yml"));
    std::fs::write(&file, serde_yaml_ng::to_string(&doc)?).context("writing the mesh topology")?;
    Ok(file)
}

/// What the mesh run gave.
#[derive(Debug, Clone)]
pub struct MeshRun {
    /// Nodes.
    pub nodes: usize,
    /// `calico-lab deploy` start to exit (namespaces, links, calico-nodes started, exec).
    pub deploy: Duration,
    /// Deploy start to every node listing n-1 Established sessions.
    pub sessions: Duration,
    /// Time to add one pod per node (each claims its node's first block).
    pub pods: Duration,
    /// First pod ADD start to every node holding a route to each of the other n-1 blocks.
    pub routes_from_first_add: Duration,
    /// Last pod ADD exit to the same.
    pub routes_from_last_add: Duration,
}

/// Blocks held: for each node, whether it has a blackhole for its own block and a route via a
/// gateway for each of the other blocks.
fn routes_complete(netns: &BTreeMap<String, String>, pool: Ipv4Net) -> Result<bool> {
    let mut own = Vec::new();
    let mut remote: BTreeMap<&String, Vec<Ipv4Net>> = BTreeMap::new();
    for (node, ns) in netns {
        let routes = routes_in(ns)?;
        let in_pool = routes.into_iter().filter(|r| pool.contains(&r.dst));
        let mut mine = None;
        let mut theirs = Vec::new();
        for r in in_pool {
            match r.target {
                Target::Blackhole => mine = Some(r.dst),
                Target::Via { .. } if r.dst.prefix_len() < 32 => theirs.push(r.dst),
                _ => {}
            }
        }
        let Some(mine) = mine else {
            return Ok(false);
        };
        own.push(mine);
        remote.insert(node, theirs);
    }
    Ok(remote.values().all(|theirs| {
        theirs.len() == own.len() - 1
            && own.iter().filter(|b| theirs.contains(b)).count() == own.len() - 1
    }))
}

/// Deploys an `n`-node mesh, waits for every session, adds a pod on every node, and waits
/// until every node routes every other node's block.
pub fn mesh_convergence(bin: &Path, n: usize) -> Result<MeshRun> {
    if !(2..=200).contains(&n) {
        bail!("--mesh-nodes {n}: a mesh needs 2 to 200 nodes (addresses 10.0.0.11-210/24)");
    }
    let dir = tempfile::tempdir().context("temporary directory")?;
    let file = mesh_topology(n, dir.path())?;
    let start = Instant::now();
    let lab = LabRun::deploy(bin, &file)?;
    let deploy = start.elapsed();
    let netns = lab.calico_nodes()?;
    let names: Vec<String> = netns.keys().cloned().collect();
    wait_sessions(&lab, &names, &|_| n - 1)?;
    let sessions = start.elapsed();
    let pods_start = Instant::now();
    for node in &names {
        lab.pod_add(node, &format!("{node}-pod"))?;
    }
    let pods = pods_start.elapsed();
    let pool = fabric_e2e::pod_pool();
    loop {
        if routes_complete(&netns, pool)? {
            break;
        }
        if pods_start.elapsed() > pods + DEADLINE {
            bail!("not every node routes every block {DEADLINE:?} after the last pod");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let routes_from_first_add = pods_start.elapsed();
    lab.destroy()?;
    Ok(MeshRun {
        nodes: n,
        deploy,
        sessions,
        pods,
        routes_from_first_add,
        routes_from_last_add: routes_from_first_add.saturating_sub(pods),
    })
}

/// Milliseconds as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_reply_line_gives_its_time_stamp_and_other_lines_none() {
        let t = reply_time(
            "[1764445123.456789] 64 bytes from 10.244.1.2: icmp_seq=3 ttl=62 time=0.1 ms",
        );
        assert_eq!(
            t,
            Some(UNIX_EPOCH + Duration::from_secs(1_764_445_123) + Duration::from_micros(456_789))
        );
        assert_eq!(
            reply_time("[1764445123.4] From 10.0.0.1 icmp_seq=1 Destination Host Unreachable"),
            None
        );
    }
}
