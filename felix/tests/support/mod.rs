//! A small cluster in network namespaces for felix's end-to-end tests: a bridge namespace,
//! node namespaces with an underlay `eth0` on it, pods wired as the Calico CNI plugin wires
//! them, and one sqlite datastore file shared by every felix.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fabric_api::endpoint::WorkloadEndpointSpec;
use fabric_api::ippool::{IPIPMode, VXLANMode};
use fabric_api::meta::ObjectMeta;
use fabric_api::node::{NodeBGPSpec, NodeSpec};
use fabric_api::{IPPool, IPPoolSpec, Node, WorkloadEndpoint};
use fabric_datastore::ipam_model::{
    AffinityState, AllocationAttribute, AllocationBlock, BlockAffinity,
};
use fabric_datastore::keys::{ipam_affinity_key, ipam_block_key};
use fabric_datastore::{Backend, Client, DatastoreConfig, DatastoreKind, SqliteBackend};
use fabric_testkit::{ChildGuard, Netns, veth, wait_until};
use felix::{ConfigOverrides, FelixConfig, LearnedRoutesUpdate};
use ipnet::IpNet;

/// The pool every test uses.
pub const POOL: &str = "10.65.0.0/16";

/// One node: its namespace (shared with a felix thread), name and addresses.
pub struct TestNode {
    pub ns: Arc<Netns>,
    pub name: String,
    pub index: u8,
}

impl TestNode {
    /// `172.16.0.<index>`.
    pub fn ip(&self) -> String {
        format!("172.16.0.{}", self.index)
    }

    /// The node's block, `10.65.<index>.0/26`.
    pub fn block(&self) -> IpNet {
        format!("10.65.{}.0/26", self.index).parse().unwrap()
    }

    /// The node's VTEP address (ordinal 0 of its block).
    pub fn vtep(&self) -> String {
        format!("10.65.{}.0", self.index)
    }
}

/// A pod: its namespace, address and host-side interface.
pub struct Pod {
    pub ns: Netns,
    pub ip: String,
    pub iface: String,
    pub node: usize,
}

impl Pod {
    /// One ping to `ip` (1 s timeout).
    pub fn pings(&self, ip: &str) -> bool {
        self.ns.try_sh(&format!("ping -c 1 -W 1 {ip}")).is_ok()
    }
}

/// The world of one test.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub bridge: Netns,
    pub nodes: Vec<TestNode>,
    rt: tokio::runtime::Runtime,
    pub client: Client,
}

impl Cluster {
    /// `n` nodes on 172.16.0.0/24, the pool with the given modes, each node's Node resource
    /// (address, VTEP address and MAC, IPIP tunnel address), block and confirmed affinity.
    pub fn new(n: u8, ipip: IPIPMode, vxlan: VXLANMode) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("calico.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&db).unwrap());
        let client = Client::new(backend);
        let bridge = Netns::new("fxbr");
        bridge.ip("link add br0 type bridge");
        bridge.ip("addr add 172.16.0.254/24 dev br0");
        bridge.ip("link set br0 up");
        let mut nodes = Vec::new();
        for index in 1..=n {
            let ns = Netns::new("fxn");
            let port = format!("p{index}");
            veth(&ns, "eth0", &bridge, &port);
            bridge.ip(&format!("link set {port} master br0"));
            ns.ip(&format!("addr add 172.16.0.{index}/24 dev eth0"));
            // Proxy ARP for the pods' gateway 169.254.1.1 needs a route for it: hosts have a
            // default route.
            ns.ip("route add default via 172.16.0.254 dev eth0");
            nodes.push(TestNode {
                ns: Arc::new(ns),
                name: format!("node-{index}"),
                index,
            });
        }
        let c = Cluster {
            dir,
            db,
            bridge,
            nodes,
            rt,
            client,
        };
        c.set_pool(ipip, vxlan);
        for node in &c.nodes {
            c.write_node(node);
            c.write_block(node, &[(0, node.name.as_str())]);
            c.put(
                &ipam_affinity_key(&node.name, &node.block()),
                &serde_json::to_string(&BlockAffinity {
                    state: AffinityState::Confirmed,
                    deleted: false,
                })
                .unwrap(),
            );
        }
        c
    }

    /// Runs a datastore future.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Creates or replaces a raw key.
    pub fn put(&self, key: &str, value: &str) {
        self.block_on(async {
            let b = self.client.backend();
            match b.get(key).await.unwrap() {
                Some(kv) => b.update(key, value, kv.mod_revision).await.unwrap(),
                None => b.create(key, value).await.unwrap(),
            };
        });
    }

    /// Creates or replaces the pool `pool` with these modes.
    pub fn set_pool(&self, ipip: IPIPMode, vxlan: VXLANMode) {
        self.set_named_pool("pool", POOL, ipip, vxlan);
    }

    /// Creates or replaces a pool.
    pub fn set_named_pool(&self, name: &str, cidr: &str, ipip: IPIPMode, vxlan: VXLANMode) {
        let pool = IPPool {
            metadata: ObjectMeta::named(name),
            spec: IPPoolSpec {
                cidr: cidr.into(),
                ipip_mode: Some(ipip),
                vxlan_mode: Some(vxlan),
                block_size: Some(26),
                ..IPPoolSpec::default()
            },
            status: None,
        };
        self.block_on(self.client.apply(pool)).unwrap();
    }

    fn write_node(&self, node: &TestNode) {
        let resource = Node {
            metadata: ObjectMeta::named(&node.name),
            spec: NodeSpec {
                bgp: Some(NodeBGPSpec {
                    ipv4_address: format!("{}/24", node.ip()),
                    ipv4_ipip_tunnel_addr: format!("10.65.{}.1", node.index),
                    ..NodeBGPSpec::default()
                }),
                ipv4_vxlan_tunnel_addr: node.vtep(),
                vxlan_tunnel_mac_addr: format!("66:0a:00:00:00:{:02x}", node.index),
                ..NodeSpec::default()
            },
            status: None,
        };
        self.block_on(self.client.apply(resource)).unwrap();
    }

    /// Removes node `i`'s VXLAN MAC from its Node resource (as if nobody had published it).
    pub fn clear_vxlan_mac(&self, i: usize) {
        let name = self.nodes[i].name.clone();
        self.block_on(async {
            let mut node: Node = self.client.get(None, &name).await.unwrap();
            node.spec.vxlan_tunnel_mac_addr.clear();
            self.client.replace(node).await.unwrap();
        });
    }

    /// Node `i`'s VXLAN MAC as stored.
    pub fn stored_vxlan_mac(&self, i: usize) -> String {
        let name = self.nodes[i].name.clone();
        self.block_on(async {
            let node: Node = self.client.get(None, &name).await.unwrap();
            node.spec.vxlan_tunnel_mac_addr
        })
    }

    /// Writes `node`'s block with these (ordinal, node) allocations.
    pub fn write_block(&self, node: &TestNode, used: &[(usize, &str)]) {
        let cidr = node.block();
        let mut allocations = vec![None; 64];
        let mut attributes = Vec::new();
        for (ordinal, on) in used {
            allocations[*ordinal] = Some(attributes.len());
            let mut a = AllocationAttribute {
                handle_id: Some(format!("h-{on}-{ordinal}")),
                ..AllocationAttribute::default()
            };
            a.active_owner_attrs.insert("node".into(), on.to_string());
            attributes.push(a);
        }
        let unallocated = (0..64).filter(|o| allocations[*o].is_none()).collect();
        let block = AllocationBlock {
            cidr,
            affinity: Some(format!("host:{}", node.name)),
            affinity_claim_time: None,
            strict_affinity: false,
            allocations,
            unallocated,
            attributes,
            sequence_number: 1,
            sequence_number_for_allocation: BTreeMap::new(),
            deleted: false,
        };
        self.put(
            &ipam_block_key(&cidr),
            &serde_json::to_string(&block).unwrap(),
        );
    }

    /// Wires pod `ordinal` (address `10.65.<node>.<ordinal>`) on node `node` as the CNI plugin
    /// does, and writes its WorkloadEndpoint.
    pub fn add_pod(&self, node: usize, ordinal: u8) -> Pod {
        let n = &self.nodes[node];
        let ip = format!("10.65.{}.{ordinal}", n.index);
        let pod = format!("pod-{}-{ordinal}", n.index);
        let iface = format!("cali{:011x}", u64::from(n.index) << 8 | u64::from(ordinal));
        let ns = Netns::new("fxp");
        wire_pod(&n.ns, &ns, &iface, &ip);
        self.write_endpoint(&n.name, &pod, &iface, &ip);
        Pod {
            ns,
            ip,
            iface,
            node,
        }
    }

    /// Writes a WorkloadEndpoint.
    pub fn write_endpoint(&self, node: &str, pod: &str, iface: &str, ip: &str) {
        self.write_endpoint_with_container(node, pod, iface, ip, "first");
    }

    /// Writes a WorkloadEndpoint with a container ID (a new sandbox changes it).
    pub fn write_endpoint_with_container(
        &self,
        node: &str,
        pod: &str,
        iface: &str,
        ip: &str,
        container: &str,
    ) {
        let wep = WorkloadEndpoint {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            spec: WorkloadEndpointSpec {
                orchestrator: "k8s".into(),
                node: node.into(),
                pod: pod.into(),
                endpoint: "eth0".into(),
                container_id: container.into(),
                interface_name: iface.into(),
                ip_networks: vec![format!("{ip}/32")],
                profiles: vec!["kns.default".into()],
                ..WorkloadEndpointSpec::default()
            },
        };
        self.block_on(self.client.apply(wep)).unwrap();
    }

    /// The environment for the `felix` binary of node `i`.
    pub fn felix_env(&self, i: usize) -> Vec<(String, String)> {
        vec![
            ("NODENAME".into(), self.nodes[i].name.clone()),
            ("DATASTORE_TYPE".into(), "sqlite".into()),
            ("SQLITE_PATH".into(), self.db.display().to_string()),
            ("RUST_LOG".into(), "info,felix=debug".into()),
        ]
    }

    /// Starts the `felix` binary inside node `i`'s namespace with `extra` variables.
    pub fn start_felix(&self, i: usize, extra: &[(&str, &str)]) -> FelixProcess {
        let log = self
            .dir
            .path()
            .join(format!("felix-{i}-{}.log", fabric_testkit::unique_name("")));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = self.nodes[i].ns.cmd(env!("CARGO_BIN_EXE_felix"));
        cmd.envs(self.felix_env(i))
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        let child: Child = cmd.spawn().unwrap();
        FelixProcess {
            child: ChildGuard(child),
            log,
        }
    }

    /// A library felix config for node `i` with `overrides`.
    pub fn felix_config(&self, i: usize, overrides: ConfigOverrides) -> FelixConfig {
        let datastore = DatastoreConfig {
            kind: DatastoreKind::Sqlite,
            sqlite_path: self.db.clone(),
            ..DatastoreConfig::default()
        };
        FelixConfig {
            overrides,
            ..FelixConfig::new(self.nodes[i].name.clone(), datastore)
        }
    }

    /// Runs `felix::run` on a thread inside node `i`'s namespace, with a learned-route
    /// channel.
    pub fn start_felix_library(&self, i: usize, overrides: ConfigOverrides) -> FelixThread {
        let config = self.felix_config(i, overrides);
        let ns = self.nodes[i].ns.clone();
        let (learned_tx, learned_rx) = tokio::sync::mpsc::channel(1024);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            ns.enter_current_thread().unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(felix::run(config, Some(learned_rx), async {
                let _ = stop_rx.await;
            }))
            .map_err(|e| e.to_string())
        });
        FelixThread {
            learned: learned_tx,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

/// The host side `iface` (MAC ee:ee:ee:ee:ee:ee) in `node`, `eth0` with `ip`/32 in `pod`,
/// `169.254.1.1` scope link and the default route via it, and the CNI's host route.
pub fn wire_pod(node: &Netns, pod: &Netns, iface: &str, ip: &str) {
    node.ip(&format!(
        "link add {iface} type veth peer name eth0 netns {}",
        pod.name()
    ));
    node.ip(&format!("link set {iface} address ee:ee:ee:ee:ee:ee"));
    node.ip(&format!("link set {iface} up"));
    pod.ip(&format!("addr add {ip}/32 dev eth0"));
    pod.ip("link set eth0 up");
    pod.ip("route add 169.254.1.1 dev eth0 scope link");
    pod.ip("route add default via 169.254.1.1 dev eth0");
    node.ip(&format!("route add {ip}/32 dev {iface} scope link"));
}

/// A `felix` process and its log.
pub struct FelixProcess {
    pub child: ChildGuard,
    pub log: PathBuf,
}

impl FelixProcess {
    /// The log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops felix with SIGTERM and waits for it.
    pub fn terminate(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.0.wait();
    }
}

/// A library felix on its own thread.
pub struct FelixThread {
    pub learned: tokio::sync::mpsc::Sender<LearnedRoutesUpdate>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl FelixThread {
    /// Sends learned routes (`(prefix, next hops)`) and optionally the in-sync marker.
    pub fn learn(&self, routes: &[(&str, &[&str])], in_sync: bool) {
        let routes = routes
            .iter()
            .map(|(p, hops)| {
                felix::LearnedRoute::new(
                    p.parse().unwrap(),
                    hops.iter().map(|h| h.parse().unwrap()).collect(),
                )
            })
            .collect();
        self.learned
            .blocking_send(LearnedRoutesUpdate::Routes(routes))
            .unwrap();
        if in_sync {
            self.learned
                .blocking_send(LearnedRoutesUpdate::InSync)
                .unwrap();
        }
    }

    /// Stops felix and returns how `run` ended.
    pub fn stop(&mut self) -> Result<(), String> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().unwrap(),
            None => Ok(()),
        }
    }
}

impl Drop for FelixThread {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Polls `f` every 100 ms for up to `secs` seconds.
pub fn eventually(secs: u64, f: impl FnMut() -> bool) -> bool {
    wait_until(Duration::from_secs(secs), Duration::from_millis(100), f)
}

/// `ip route show <args>` inside `ns`.
pub fn routes(ns: &Netns, args: &str) -> String {
    ns.ip(&format!("route show {args}"))
}

/// The HTTP status and body of `GET http://localhost:<port><path>` from inside `ns`.
pub fn http_get(ns: &Netns, port: u16, path: &str) -> (u16, String) {
    let out = ns
        .try_sh(&format!(
            "curl -s -m 2 -w '\\n%{{http_code}}' http://localhost:{port}{path}"
        ))
        .unwrap_or_default();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Sends one line over TCP from `from` to `to`:`port`; true when `to` received it.
pub fn tcp_works(from: &Pod, to: &Pod, port: u16) -> bool {
    let mut server = ChildGuard(
        to.ns
            .cmd("nc")
            .args(["-l", "-N", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let message = format!("hello-{port}");
    let sent = eventually(5, || {
        from.ns
            .try_sh(&format!("echo {message} | nc -N -w 2 {} {port}", to.ip))
            .is_ok()
    });
    if !sent {
        return false;
    }
    let _ = server.0.wait();
    let mut out = String::new();
    if let Some(mut stdout) = server.0.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    out.contains(&message)
}
