//! `inspect`: what a deployed lab is made of, from its state and the live kernel: nodes, their
//! kind, image, role, addresses, processes (running or not), links, pods, the datastore and the
//! keys that had no effect.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::datastore::Datastore;
use super::net;
use super::state::{Deployed, StateDir};
use calico_lab::model::Ignored;

/// The whole report (`inspect --json` prints it as is).
#[derive(Debug, Serialize)]
pub struct Report {
    /// Lab name.
    pub lab: String,
    /// Topology file.
    pub topology_file: String,
    /// State directory.
    pub state_dir: String,
    /// The datastore and how nodes reach it.
    pub datastore: DatastoreReport,
    /// The management network.
    pub mgmt: MgmtReport,
    /// Nodes.
    pub nodes: Vec<NodeReport>,
    /// Links with the addresses now on their ends.
    pub links: Vec<LinkReport>,
    /// Pods.
    pub pods: Vec<PodReport>,
    /// Lab-wide processes (etcd).
    pub processes: Vec<ProcessReport>,
    /// Keys accepted without effect.
    pub ignored: Vec<Ignored>,
}

/// The datastore.
#[derive(Debug, Serialize)]
pub struct DatastoreReport {
    /// `sqlite` or `etcdv3` and where.
    #[serde(flatten)]
    pub datastore: Datastore,
    /// The variables every node gets.
    pub env: BTreeMap<String, String>,
}

/// The management network.
#[derive(Debug, Serialize)]
pub struct MgmtReport {
    /// containerlab network name.
    pub network: String,
    /// Namespace of the bridge.
    pub namespace: String,
    /// Bridge name.
    pub bridge: String,
    /// Gateway (bridge) addresses.
    pub ipv4_gateway: String,
    /// IPv6 gateway.
    pub ipv6_gateway: String,
}

/// One node.
#[derive(Debug, Serialize)]
pub struct NodeReport {
    /// Short name.
    pub name: String,
    /// Network namespace (containerlab's container name).
    pub namespace: String,
    /// `linux` or `bridge`.
    pub kind: String,
    /// Image.
    pub image: Option<String>,
    /// What runs inside.
    pub role: String,
    /// Management IPv4 address with prefix length.
    pub mgmt_ipv4: Option<String>,
    /// Management IPv6 address with prefix length.
    pub mgmt_ipv6: Option<String>,
    /// Global addresses per interface, as the kernel has them now.
    pub interfaces: BTreeMap<String, Vec<String>>,
    /// The node's processes.
    pub processes: Vec<ProcessReport>,
    /// Whether the namespace exists.
    pub present: bool,
}

/// A process.
#[derive(Debug, Serialize)]
pub struct ProcessReport {
    /// Record name.
    pub name: String,
    /// Pid.
    pub pid: i32,
    /// Kernel start time (clock ticks since boot): with the pid, identifies the process.
    pub start_time: u64,
    /// Whether it still runs.
    pub running: bool,
    /// Log file.
    pub log: Option<String>,
}

/// A link.
#[derive(Debug, Serialize)]
pub struct LinkReport {
    /// `node:interface`.
    pub a: String,
    /// `node:interface`.
    pub b: String,
    /// MTU.
    pub mtu: u32,
    /// Addresses on `a`.
    pub a_addresses: Vec<String>,
    /// Addresses on `b`.
    pub b_addresses: Vec<String>,
}

/// A pod.
#[derive(Debug, Serialize)]
pub struct PodReport {
    /// Name.
    pub name: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Node.
    pub node: String,
    /// Network namespace.
    pub netns: String,
    /// Addresses from the CNI result.
    pub addresses: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Builds the report.
pub fn report(state: &StateDir, deployed: &Deployed) -> Result<Report> {
    let lab = &deployed.lab;
    let procs = state.processes()?;
    let proc_report = |p: &super::process::ProcessRecord| ProcessReport {
        name: p.name.clone(),
        pid: p.pid,
        start_time: p.start_time,
        running: p.is_running(),
        log: p.log.as_ref().map(|l| l.display().to_string()),
    };
    let mut addresses: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut nodes = Vec::new();
    for n in &lab.nodes {
        let present = net::netns_exists(&n.namespace);
        let interfaces = if present {
            interface_addresses(&n.namespace)
        } else {
            BTreeMap::new()
        };
        addresses.insert(n.name.clone(), interfaces.clone());
        nodes.push(NodeReport {
            name: n.name.clone(),
            namespace: n.namespace.clone(),
            kind: n.kind.as_str().to_string(),
            image: n.image.clone(),
            role: n.role.as_str().to_string(),
            mgmt_ipv4: n.mgmt.as_ref().map(|m| m.ipv4.to_string()),
            mgmt_ipv6: n.mgmt.as_ref().map(|m| m.ipv6.to_string()),
            interfaces,
            processes: procs
                .iter()
                .filter(|p| p.node == n.name)
                .map(proc_report)
                .collect(),
            present,
        });
    }
    let addrs_of = |node: &str, ifname: &str| {
        addresses
            .get(node)
            .and_then(|m| m.get(ifname))
            .cloned()
            .unwrap_or_default()
    };
    let links = lab
        .links
        .iter()
        .map(|l| LinkReport {
            a: l.a.to_string(),
            b: l.b.to_string(),
            mtu: l.mtu,
            a_addresses: addrs_of(&l.a.node, &l.a.interface),
            b_addresses: addrs_of(&l.b.node, &l.b.interface),
        })
        .collect();
    let pods = state
        .pods()?
        .into_iter()
        .map(|p| PodReport {
            name: p.name,
            namespace: p.namespace,
            node: p.node,
            netns: p.netns,
            addresses: p.addresses,
            labels: p.labels,
        })
        .collect();
    Ok(Report {
        lab: lab.name.clone(),
        topology_file: lab.topology_file.display().to_string(),
        state_dir: state.root().display().to_string(),
        datastore: DatastoreReport {
            env: deployed.datastore.env().into_iter().collect(),
            datastore: deployed.datastore.clone(),
        },
        mgmt: MgmtReport {
            network: lab.mgmt.network.clone(),
            namespace: lab.mgmt.namespace.clone(),
            bridge: lab.mgmt.bridge.clone(),
            ipv4_gateway: format!(
                "{}/{}",
                lab.mgmt.ipv4_gateway,
                lab.mgmt.ipv4_subnet.prefix_len()
            ),
            ipv6_gateway: format!(
                "{}/{}",
                lab.mgmt.ipv6_gateway,
                lab.mgmt.ipv6_subnet.prefix_len()
            ),
        },
        nodes,
        links,
        pods,
        processes: procs
            .iter()
            .filter(|p| p.node == "mgmt")
            .map(proc_report)
            .collect(),
        ignored: lab.ignored.clone(),
    })
}

/// Global-scope addresses per interface in namespace `ns` (from `ip -j addr`).
fn interface_addresses(ns: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Ok(text) = net::ip_in(ns, &["-j", "addr", "show"]) else {
        return out;
    };
    let Ok(serde_json::Value::Array(ifaces)) = serde_json::from_str::<serde_json::Value>(&text)
    else {
        return out;
    };
    for i in ifaces {
        let Some(name) = i.get("ifname").and_then(|v| v.as_str()) else {
            continue;
        };
        let addrs: Vec<String> = i
            .get("addr_info")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter(|a| a.get("scope").and_then(|s| s.as_str()) == Some("global"))
            .filter_map(|a| {
                Some(format!(
                    "{}/{}",
                    a.get("local")?.as_str()?,
                    a.get("prefixlen")?.as_u64()?
                ))
            })
            .collect();
        out.insert(name.to_string(), addrs);
    }
    out
}

/// The report as text.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "lab {}  (topology {}, state {})\n",
        r.lab, r.topology_file, r.state_dir
    ));
    s.push_str(&format!(
        "datastore: {}\n",
        r.datastore.datastore.describe()
    ));
    s.push_str(&format!(
        "management: {} in {}, gateway {} {}\n\n",
        r.mgmt.bridge, r.mgmt.namespace, r.mgmt.ipv4_gateway, r.mgmt.ipv6_gateway
    ));
    let mut rows = vec![vec![
        "NODE".to_string(),
        "KIND".into(),
        "ROLE".into(),
        "IMAGE".into(),
        "NAMESPACE".into(),
        "MGMT IPV4".into(),
        "MGMT IPV6".into(),
        "PROCESSES".into(),
    ]];
    for n in &r.nodes {
        rows.push(vec![
            n.name.clone(),
            n.kind.clone(),
            n.role.clone(),
            n.image.clone().unwrap_or_else(|| "-".into()),
            if n.present {
                n.namespace.clone()
            } else {
                format!("{} (missing)", n.namespace)
            },
            n.mgmt_ipv4.clone().unwrap_or_else(|| "-".into()),
            n.mgmt_ipv6.clone().unwrap_or_else(|| "-".into()),
            n.processes
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}{}",
                        p.name,
                        p.pid,
                        if p.running { "" } else { "(exited)" }
                    )
                })
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    s.push_str(&table(&rows));
    if !r.links.is_empty() {
        s.push_str("\nlinks:\n");
        for l in &r.links {
            s.push_str(&format!(
                "  {} [{}] <-> {} [{}]  mtu {}\n",
                l.a,
                l.a_addresses.join(" "),
                l.b,
                l.b_addresses.join(" "),
                l.mtu
            ));
        }
    }
    if !r.pods.is_empty() {
        s.push_str("\npods:\n");
        for p in &r.pods {
            s.push_str(&format!(
                "  {}/{} on {} ({}): {}\n",
                p.namespace,
                p.name,
                p.node,
                p.netns,
                p.addresses.join(" ")
            ));
        }
    }
    for p in &r.processes {
        s.push_str(&format!(
            "\nlab process {}: pid {}{}\n",
            p.name,
            p.pid,
            if p.running { "" } else { " (exited)" }
        ));
    }
    if !r.ignored.is_empty() {
        s.push_str("\nignored (no effect in a namespace lab):\n");
        for i in &r.ignored {
            s.push_str(&format!("  {}: {}\n", i.at, i.reason));
        }
    }
    s
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    s
}
