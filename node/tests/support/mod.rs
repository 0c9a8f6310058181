//! A cluster of calico-node processes in network namespaces: one bridge namespace, one
//! namespace per node joined to it by a veth, a datastore (sqlite file or etcd), and helpers
//! to read `calicoctl node status` and the nodes' routing tables.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use fabric_datastore::{Backend, Client, DatastoreConfig, DatastoreKind};
use fabric_ipam::handles::pod_handle;
use fabric_ipam::{AutoAssignArgs, Ipam};
use fabric_testkit::{ChildGuard, Netns, unique_name, veth, wait_until};

/// The port of the etcd forwarder inside each node namespace.
pub const NS_ETCD_PORT: u16 = 2379;

/// Listens on 127.0.0.1:`port` inside `ns` and forwards each connection to `endpoint`
/// (`http://host:port`) from the test's own namespace: a socket keeps the namespace it was
/// created in, so the listener is made on a thread inside `ns` and the outgoing connections
/// here.
pub fn forward_into(ns: &Netns, port: u16, endpoint: &str) {
    let target = endpoint.trim_start_matches("http://").to_string();
    let listener = ns.run_in(move || TcpListener::bind(("127.0.0.1", port)).unwrap());
    std::thread::spawn(move || {
        for inbound in listener.incoming() {
            let Ok(inbound) = inbound else { return };
            let Ok(outbound) = TcpStream::connect(&target) else {
                continue;
            };
            let (mut a, mut b) = (inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
            let (mut c, mut d) = (inbound, outbound);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut a, &mut b);
                let _ = b.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut d, &mut c);
                let _ = c.shutdown(std::net::Shutdown::Write);
            });
        }
    });
}

/// The calico-node binary under test.
pub fn calico_node() -> &'static str {
    env!("CARGO_BIN_EXE_calico-node")
}

/// Where the cluster's data lives.
#[derive(Debug, Clone)]
pub enum Store {
    /// A sqlite file.
    Sqlite(PathBuf),
    /// An etcd endpoint on the host's loopback, reached from each node namespace through a
    /// forwarder listening on 127.0.0.1:2379 there (see [`forward_into`]).
    Etcd(String),
}

impl Store {
    /// The datastore variables of a calico-node.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            Store::Sqlite(p) => vec![
                ("DATASTORE_TYPE".into(), "sqlite".into()),
                ("SQLITE_PATH".into(), p.display().to_string()),
            ],
            Store::Etcd(_) => vec![
                ("DATASTORE_TYPE".into(), "etcdv3".into()),
                (
                    "ETCD_ENDPOINTS".into(),
                    format!("http://127.0.0.1:{NS_ETCD_PORT}"),
                ),
            ],
        }
    }

    /// A datastore client.
    pub async fn backend(&self) -> Arc<dyn Backend> {
        let config = match self {
            Store::Sqlite(p) => DatastoreConfig {
                kind: DatastoreKind::Sqlite,
                sqlite_path: p.clone(),
                ..DatastoreConfig::default()
            },
            Store::Etcd(e) => DatastoreConfig {
                kind: DatastoreKind::Etcdv3,
                etcd_endpoints: vec![e.clone()],
                ..DatastoreConfig::default()
            },
        };
        config.connect().await.unwrap()
    }
}

/// One node: its namespace, address, files and process.
pub struct Node {
    pub name: String,
    pub ns: Netns,
    pub ip: String,
    pub socket: PathBuf,
    pub nodename_file: PathBuf,
    pub log: PathBuf,
    pub process: Option<ChildGuard>,
}

/// The cluster.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub bridge: Netns,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// `n` node namespaces on one bridge (10.77.0.11.. /24); nothing started yet.
    pub fn new(n: usize, store: impl FnOnce(&Path) -> Store) -> Cluster {
        fabric_testkit::require_root();
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let bridge = Netns::new("nbr");
        bridge.ip("link add br0 type bridge");
        bridge.ip("link set br0 up");
        let mut nodes = Vec::new();
        for i in 0..n {
            let name = unique_name(&format!("node{}-", i + 1));
            let ns = Netns::new("node");
            let port = format!("p{i}");
            veth(&ns, "eth0", &bridge, &port);
            bridge.ip(&format!("link set {port} master br0"));
            bridge.ip(&format!("link set {port} up"));
            let ip = format!("10.77.0.{}", 11 + i);
            ns.ip(&format!("addr add {ip}/24 dev eth0"));
            ns.ip("link set eth0 up");
            if let Store::Etcd(endpoint) = &store {
                forward_into(&ns, NS_ETCD_PORT, endpoint);
            }
            nodes.push(Node {
                socket: dir.path().join(format!("{name}.sock")),
                nodename_file: dir.path().join(format!("{name}.nodename")),
                log: dir.path().join(format!("{name}.log")),
                name,
                ns,
                ip,
                process: None,
            });
        }
        Cluster {
            dir,
            store,
            bridge,
            nodes,
        }
    }

    /// The environment node `i` runs with (plus `extra`).
    pub fn env(&self, i: usize, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let n = &self.nodes[i];
        let mut env: BTreeMap<String, String> = self.store.env().into_iter().collect();
        env.insert("NODENAME".into(), n.name.clone());
        env.insert("IP".into(), format!("{}/24", n.ip));
        env.insert("CALICO_IPV4POOL_CIDR".into(), "10.244.0.0/16".into());
        env.insert(
            "CALICO_NODE_STATUS_SOCKET".into(),
            n.socket.display().to_string(),
        );
        env.insert(
            "CALICO_IPAM_SOCKET".into(),
            n.socket.with_extension("ipam.sock").display().to_string(),
        );
        env.insert(
            "CALICO_NODENAME_FILE".into(),
            n.nodename_file.display().to_string(),
        );
        env.insert(
            "CALICO_SECRETS_DIR".into(),
            self.dir.path().join("secrets").display().to_string(),
        );
        env.insert("RUST_LOG".into(), "info".into());
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        env
    }

    /// Starts calico-node on node `i` with `args`.
    pub fn start(&mut self, i: usize, extra: &[(&str, &str)]) {
        let env = self.env(i, extra);
        let n = &mut self.nodes[i];
        let log = std::fs::File::create(&n.log).unwrap();
        let mut cmd = n.ns.cmd(calico_node());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        n.process = Some(ChildGuard(cmd.spawn().unwrap()));
    }

    /// Runs `calico-node <args>` on node `i` to completion: (exit code, stdout + stderr).
    pub fn run_once(&self, i: usize, args: &[&str], extra: &[(&str, &str)]) -> (i32, String) {
        let env = self.env(i, extra);
        let out = self.nodes[i]
            .ns
            .cmd(calico_node())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&env)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// The log of node `i` so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// `calicoctl node status` against node `i`: (exit code, stdout).
    pub fn node_status(&self, i: usize) -> (i32, String) {
        let env = calicoctl::Env::empty().with_var(
            "CALICO_NODE_STATUS_SOCKET",
            self.nodes[i].socket.display().to_string(),
        );
        let mut stdin: &[u8] = b"";
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = calicoctl::run_with_env(
            ["calicoctl", "node", "status"],
            &env,
            &mut stdin,
            &mut out,
            &mut err,
        );
        (code, String::from_utf8_lossy(&out).into_owned())
    }

    /// Whether node `i` reports every other node Established in `calicoctl node status`.
    pub fn mesh_established(&self, i: usize) -> bool {
        let (code, text) = self.node_status(i);
        code == 0
            && self
                .nodes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .all(|(_, n)| {
                    text.lines().any(|l| {
                        l.contains(&format!("| {} ", n.ip))
                            && l.contains("node-to-node mesh")
                            && l.contains("Established")
                    })
                })
    }

    /// Waits until every node's mesh is up; panics with the status and logs otherwise.
    pub fn wait_mesh(&self, timeout: Duration) {
        let ok = wait_until(timeout, Duration::from_millis(200), || {
            (0..self.nodes.len()).all(|i| self.mesh_established(i))
        });
        if !ok {
            self.dump();
            panic!("the mesh did not come up");
        }
    }

    /// Prints each node's status and log (for a failing test).
    pub fn dump(&self) {
        for i in 0..self.nodes.len() {
            eprintln!(
                "==== {} status: {:?}",
                self.nodes[i].name,
                self.node_status(i)
            );
            let log = self.log(i);
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("==== {} log (last lines):", self.nodes[i].name);
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
            eprintln!("==== routes: {}", self.nodes[i].ns.ip("route show"));
        }
    }

    /// The routes of node `i` inside 10.244.0.0/16: (destination with prefix length, gateway or
    /// empty).
    pub fn pod_routes(&self, i: usize) -> Vec<(String, String)> {
        let text = self.nodes[i].ns.ip("-4 route show root 10.244.0.0/16");
        text.lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let mut dst = words.next()?.to_string();
                if dst == "blackhole" || dst == "unreachable" {
                    dst = words.next()?.to_string();
                }
                if !dst.contains('/') {
                    dst.push_str("/32");
                }
                let via = l
                    .split_whitespace()
                    .skip_while(|w| *w != "via")
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                Some((dst, via))
            })
            .collect()
    }

    /// Allocates one pod address on node `i` as the CNI plugin does; returns (address, block).
    pub async fn add_pod(&self, i: usize, pod: &str) -> (String, String) {
        self.add_pod_with(i, pod, None).await
    }

    /// [`Cluster::add_pod`] with a block limit for the request (`Some(0)`: borrow only).
    pub async fn add_pod_with(
        &self,
        i: usize,
        pod: &str,
        max_blocks: Option<u32>,
    ) -> (String, String) {
        let ipam = Ipam::new(Client::new(self.store.backend().await));
        let mut attrs = BTreeMap::new();
        attrs.insert("pod".to_string(), pod.to_string());
        attrs.insert("namespace".to_string(), "default".to_string());
        let got = ipam
            .auto_assign(AutoAssignArgs {
                node: self.nodes[i].name.clone(),
                handle: pod_handle(&unique_name(pod)),
                attrs,
                num_v4: 1,
                max_blocks,
                ..AutoAssignArgs::default()
            })
            .await
            .unwrap();
        let (ip, block) = got.v4[0];
        (ip.to_string(), block.to_string())
    }
}
