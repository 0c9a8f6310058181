//! The scenarios every product topology goes through, parameterised by a [`Spec`] (its nodes,
//! who peers with whom, where routes point): the fabric working with exact routes (and a
//! borrowed address withdrawn on pod deletion), a node joining, and a calico-node killed with
//! SIGKILL and restarted, each with its own lab.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::lab::{Datastore, Lab, Pod};
use crate::routes::{NextHops, PodPlace, wait_fabric_routes};
use crate::status::{wait_bird_sessions, wait_node_sessions};
use crate::topology::TopologyCopy;
use crate::traffic::{ContinuousPing, assert_no_loss, check_reachability};
use crate::{pod_pool, routes};

/// How long BGP sessions may take to come up (calico-node start, connect retries).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(90);
/// How long routes may take to settle after a change.
pub const ROUTE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one pod pair is retried before it counts as unreachable.
pub const PAIR_TIMEOUT: Duration = Duration::from_secs(15);

/// A calico-node of a topology.
#[derive(Debug, Clone)]
pub struct FabricNode {
    /// Node name (`NODENAME`, the lab node's name).
    pub name: &'static str,
    /// Its BGP address (`IP`).
    pub ip: Ipv4Addr,
    /// The router it peers with when [`Peering::Upstream`].
    pub upstream: Option<Ipv4Addr>,
}

impl FabricNode {
    /// A node without an upstream router.
    pub const fn new(name: &'static str, ip: Ipv4Addr) -> FabricNode {
        FabricNode {
            name,
            ip,
            upstream: None,
        }
    }
}

/// Who a calico-node peers with.
#[derive(Debug, Clone)]
pub enum Peering {
    /// Every other calico-node (the node-to-node mesh).
    Mesh,
    /// These nodes reflect; everyone else peers with all of them, and they peer with everyone.
    RouteReflectors(Vec<&'static str>),
    /// Each node peers with its [`FabricNode::upstream`] only.
    Upstream,
    /// No BGP at all (VXLAN from the datastore).
    NoBgp,
}

/// Where remote pod routes point.
#[derive(Debug, Clone)]
pub enum RouteRule {
    /// Via the owning node's address.
    Owner,
    /// Through this device.
    Device(&'static str),
    /// Via any gateway (a router in between).
    AnyGateway,
}

/// A node added to the topology copy without calico-node, which the test starts after deploy.
#[derive(Debug, Clone)]
pub struct Joiner {
    /// The node.
    pub node: FabricNode,
    /// Extra `env` entries (`AS`).
    pub env: Vec<(&'static str, &'static str)>,
    /// The bridge port its `eth1` links to (`fabric:eth7`).
    pub bridge_port: &'static str,
    /// Prefix length of its `eth1` address.
    pub prefix_len: u8,
    /// Node labels applied once it has registered (`rack=rack1`).
    pub labels: Vec<(&'static str, &'static str)>,
    /// Lines appended to files of the copy before deploy (a ToR's new neighbour).
    pub appends: Vec<(&'static str, &'static str)>,
    /// BIRD protocols that must be Established once it runs: (router node, protocol).
    pub bird_protocols: Vec<(&'static str, &'static str)>,
}

/// One product topology as the scenarios see it.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `topologies/<name>/`.
    pub topology: &'static str,
    /// Its calico-nodes, in the order pods are added.
    pub nodes: Vec<FabricNode>,
    /// Who peers with whom.
    pub peering: Peering,
    /// Where remote pod routes point.
    pub routes: RouteRule,
    /// BIRD routers and the protocols that must be Established on each.
    pub bird: Vec<(&'static str, Vec<&'static str>)>,
    /// A pool small enough that the last nodes must borrow addresses (`None`: keep the
    /// topology's pool).
    pub borrowing_pool: Option<&'static str>,
    /// The node added by the joining scenario.
    pub joiner: Joiner,
    /// The node whose calico-node the restart scenario kills.
    pub victim: &'static str,
    /// The tunnel device whose address each node routes like a pod's when it is borrowed
    /// (`vxlan.calico`).
    pub tunnel_device: Option<&'static str>,
}

impl Spec {
    fn expected_sessions(
        &self,
        nodes: &[FabricNode],
    ) -> Option<BTreeMap<String, BTreeSet<IpAddr>>> {
        let all = |except: &str| -> BTreeSet<IpAddr> {
            nodes
                .iter()
                .filter(|n| n.name != except)
                .map(|n| IpAddr::V4(n.ip))
                .collect()
        };
        let map = match &self.peering {
            Peering::NoBgp => return None,
            Peering::Mesh => nodes
                .iter()
                .map(|n| (n.name.to_string(), all(n.name)))
                .collect(),
            Peering::RouteReflectors(rrs) => nodes
                .iter()
                .map(|n| {
                    let peers = if rrs.contains(&n.name) {
                        all(n.name)
                    } else {
                        nodes
                            .iter()
                            .filter(|m| rrs.contains(&m.name))
                            .map(|m| IpAddr::V4(m.ip))
                            .collect()
                    };
                    (n.name.to_string(), peers)
                })
                .collect(),
            Peering::Upstream => nodes
                .iter()
                .map(|n| {
                    let up = n
                        .upstream
                        .expect("Upstream peering needs each node's upstream");
                    (n.name.to_string(), BTreeSet::from([IpAddr::V4(up)]))
                })
                .collect(),
        };
        Some(map)
    }

    fn next_hops(&self, nodes: &[FabricNode]) -> NextHops {
        match self.routes {
            RouteRule::Owner => {
                NextHops::Owner(nodes.iter().map(|n| (n.name.to_string(), n.ip)).collect())
            }
            RouteRule::Device(d) => NextHops::Device(d.to_string()),
            RouteRule::AnyGateway => NextHops::AnyGateway,
        }
    }

    fn names(nodes: &[FabricNode]) -> Vec<String> {
        nodes.iter().map(|n| n.name.to_string()).collect()
    }

    /// Waits for every calico-node session and every BIRD protocol of the spec.
    fn wait_sessions(&self, lab: &Lab, nodes: &[FabricNode], extra_bird: &[(&str, &str)]) {
        if let Some(expected) = self.expected_sessions(nodes) {
            wait_node_sessions(lab, &expected, SESSION_TIMEOUT);
        }
        for (router, protocols) in &self.bird {
            let mut protocols = protocols.clone();
            protocols.extend(
                extra_bird
                    .iter()
                    .filter(|(r, _)| r == router)
                    .map(|(_, p)| *p),
            );
            wait_bird_sessions(lab, router, &protocols, SESSION_TIMEOUT);
        }
    }
}

impl Spec {
    /// The addresses the route check accounts for: the pods', plus each node's tunnel address.
    fn places(&self, lab: &Lab, nodes: &[FabricNode], pods: &[Pod]) -> Vec<PodPlace> {
        let mut out: Vec<PodPlace> = pods.iter().map(PodPlace::from).collect();
        if let Some(dev) = self.tunnel_device {
            for n in nodes {
                out.extend(
                    tunnel_addresses(lab, n.name, dev)
                        .into_iter()
                        .map(|ip| PodPlace::tunnel(n.name, ip)),
                );
            }
        }
        out
    }
}

/// The IPv4 addresses on `dev` in `node` (waits until the device has one).
fn tunnel_addresses(lab: &Lab, node: &str, dev: &str) -> Vec<Ipv4Addr> {
    let mut found = Vec::new();
    let ok = fabric_testkit::wait_until(ROUTE_TIMEOUT, Duration::from_millis(200), || {
        let out = lab.exec(node, &["ip", "-j", "-4", "addr", "show", "dev", dev]);
        let parsed: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        found = parsed
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["local"].as_str()?.parse().ok())
            .collect();
        !found.is_empty()
    });
    assert!(ok, "{node} has no IPv4 address on {dev}");
    found
}

/// Sessions Established; two pods per node; each node's routes exactly one per remote block
/// plus the borrowed /32s (the pool is shrunk so that later nodes borrow, when the spec says
/// so); every pod reaches every pod on another node by ping and TCP; deleting a pod with a
/// borrowed address withdraws its /32 on every node.
pub fn fabric_works(spec: &Spec, datastore: Datastore) {
    let mut copy = TopologyCopy::of(spec.topology);
    if let Some(pool) = spec.borrowing_pool {
        copy.set_kind_env("linux", "CALICO_IPV4POOL_CIDR", pool);
    }
    let lab = Lab::deploy(copy, datastore);
    spec.wait_sessions(&lab, &spec.nodes, &[]);

    let mut pods = Vec::new();
    for n in &spec.nodes {
        for suffix in ["a", "b"] {
            pods.push(lab.add_pod(n.name, &format!("{}-{suffix}", n.name)));
        }
    }
    let names = Spec::names(&spec.nodes);
    let next_hops = spec.next_hops(&spec.nodes);
    let fabric = wait_fabric_routes(
        &lab,
        &names,
        pod_pool(),
        &spec.places(&lab, &spec.nodes, &pods),
        &next_hops,
        ROUTE_TIMEOUT,
    );
    eprintln!(
        "blocks: {:?}\nborrowed: {:?}",
        fabric.blocks, fabric.borrowed
    );
    check_reachability(&lab, &pods.iter().collect::<Vec<_>>(), PAIR_TIMEOUT);

    if spec.borrowing_pool.is_some() {
        let (ip, node, owner) = fabric
            .borrowed
            .iter()
            .find(|(ip, _, _)| pods.iter().any(|p| p.ip == *ip))
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "pool {:?} leaves no node without a block, yet no pod has a borrowed address",
                    spec.borrowing_pool
                )
            });
        let at = pods
            .iter()
            .position(|p| p.ip == ip)
            .expect("the borrowed address is a pod's");
        let pod = pods.remove(at);
        eprintln!(
            "deleting pod {} ({ip} on {node}, borrowed from {owner})",
            pod.name
        );
        lab.delete_pod(pod);
        // The check reports any route left to the deleted /32 as unexpected, on every node.
        wait_fabric_routes(
            &lab,
            &names,
            pod_pool(),
            &spec.places(&lab, &spec.nodes, &pods),
            &next_hops,
            ROUTE_TIMEOUT,
        );
        for n in &names {
            let left: Vec<_> = routes::pool_routes(&lab, n, pod_pool())
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .filter(|r| r.dst == ipnet::Ipv4Net::from(ip))
                .collect();
            assert!(
                left.is_empty(),
                "{n} still routes the deleted pod's {ip}: {left:?}"
            );
        }
    }
    lab.destroy();
}

/// Pings between every node's pod and the next node's (a ring, both ways).
fn ring_pings(pods: &[Pod], dir: &std::path::Path) -> Vec<ContinuousPing> {
    let mut pings = Vec::new();
    for (i, from) in pods.iter().enumerate() {
        let to = &pods[(i + 1) % pods.len()];
        if from.node != to.node {
            pings.push(ContinuousPing::start(from, to, dir));
            pings.push(ContinuousPing::start(to, from, dir));
        }
    }
    pings
}

/// A node added to the topology without calico-node; after deploy its calico-node starts:
/// it gets its sessions, its pod reaches every pod and is reached, every node's routes stay
/// exact, and the pings between the other nodes' pods lose nothing meanwhile.
pub fn node_joins(spec: &Spec, datastore: Datastore) {
    let j = &spec.joiner;
    let mut copy = TopologyCopy::of(spec.topology);
    let env: String = std::iter::once(format!("NODENAME: {}", j.node.name))
        .chain(std::iter::once(format!(
            "IP: {}/{}",
            j.node.ip, j.prefix_len
        )))
        .chain(j.env.iter().map(|(k, v)| format!("{k}: \"{v}\"")))
        .collect::<Vec<_>>()
        .join(", ");
    copy.add_node(
        j.node.name,
        &format!(
            "kind: linux\n\
             labels: {{calico-lab.role: plain}}\n\
             env: {{{env}}}\n\
             exec: [\"ip addr add {}/{} dev eth1\"]\n",
            j.node.ip, j.prefix_len
        ),
    );
    copy.add_link(&format!("{}:eth1", j.node.name), j.bridge_port);
    for (file, line) in &j.appends {
        let path = copy.dir().join(file);
        let mut text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        text.push_str(line);
        text.push('\n');
        copy.write_file(file, &text);
    }
    let lab = Lab::deploy(copy, datastore);
    spec.wait_sessions(&lab, &spec.nodes, &[]);
    let mut pods: Vec<Pod> = spec
        .nodes
        .iter()
        .map(|n| lab.add_pod(n.name, &format!("{}-a", n.name)))
        .collect();
    let names = Spec::names(&spec.nodes);
    wait_fabric_routes(
        &lab,
        &names,
        pod_pool(),
        &spec.places(&lab, &spec.nodes, &pods),
        &spec.next_hops(&spec.nodes),
        ROUTE_TIMEOUT,
    );
    let ping_dir = tempfile::tempdir().expect("a directory for ping output");
    let pings = ring_pings(&pods, ping_dir.path());
    // Let the pings run before the join, so a loss is the join's.
    wait_pings(Duration::from_secs(1));

    lab.start_calico_node(j.node.name);
    if !j.labels.is_empty() {
        let registered =
            fabric_testkit::wait_until(SESSION_TIMEOUT, Duration::from_millis(200), || {
                lab.exec(j.node.name, &["calicoctl", "get", "node", j.node.name])
                    .status
                    .success()
            });
        assert!(registered, "{} never registered its Node", j.node.name);
        for (k, v) in &j.labels {
            lab.calicoctl(
                j.node.name,
                &[
                    "label",
                    "node",
                    j.node.name,
                    &format!("{k}={v}"),
                    "--overwrite",
                ],
            );
        }
    }
    let mut all = spec.nodes.clone();
    all.push(j.node.clone());
    spec.wait_sessions(&lab, &all, &j.bird_protocols);
    pods.push(lab.add_pod(j.node.name, &format!("{}-a", j.node.name)));
    wait_fabric_routes(
        &lab,
        &Spec::names(&all),
        pod_pool(),
        &spec.places(&lab, &all, &pods),
        &spec.next_hops(&all),
        ROUTE_TIMEOUT,
    );
    check_reachability(&lab, &pods.iter().collect::<Vec<_>>(), PAIR_TIMEOUT);
    wait_pings(Duration::from_secs(1));
    assert_no_loss(pings, &format!("{} joining", j.node.name));
    lab.destroy();
}

/// One pod per node; continuous pings between the other nodes' pods and to the victim's pod;
/// the victim's calico-node gets SIGKILL and is started again; once its sessions and every
/// node's routes are back, no ping has lost a packet.
pub fn kill_and_restart(spec: &Spec, datastore: Datastore) {
    let lab = Lab::deploy(TopologyCopy::of(spec.topology), datastore);
    spec.wait_sessions(&lab, &spec.nodes, &[]);
    let pods: Vec<Pod> = spec
        .nodes
        .iter()
        .map(|n| lab.add_pod(n.name, &format!("{}-a", n.name)))
        .collect();
    let names = Spec::names(&spec.nodes);
    let next_hops = spec.next_hops(&spec.nodes);
    wait_fabric_routes(
        &lab,
        &names,
        pod_pool(),
        &spec.places(&lab, &spec.nodes, &pods),
        &next_hops,
        ROUTE_TIMEOUT,
    );
    check_reachability(&lab, &pods.iter().collect::<Vec<_>>(), PAIR_TIMEOUT);

    let ping_dir = tempfile::tempdir().expect("a directory for ping output");
    let (victim_pods, other_pods): (Vec<&Pod>, Vec<&Pod>) =
        pods.iter().partition(|p| p.node == spec.victim);
    let mut between = Vec::new();
    for (i, from) in other_pods.iter().enumerate() {
        let to = other_pods[(i + 1) % other_pods.len()];
        if from.node != to.node {
            between.push(ContinuousPing::start(from, to, ping_dir.path()));
        }
    }
    let mut to_victim = Vec::new();
    for v in &victim_pods {
        for from in &other_pods {
            to_victim.push(ContinuousPing::start(from, v, ping_dir.path()));
        }
    }
    // Let the pings run before the fault, so a loss is the fault's.
    wait_pings(Duration::from_secs(1));

    lab.kill_calico_node(spec.victim);
    if let Some(expected) = spec.expected_sessions(&spec.nodes) {
        // The peers notice: the victim's address leaves Established somewhere (the kernel
        // closed its sockets), unless a peer is a BIRD router (checked by the final state).
        let victim_ip = spec
            .nodes
            .iter()
            .find(|n| n.name == spec.victim)
            .map(|n| IpAddr::V4(n.ip))
            .expect("the victim is a node of the spec");
        let watchers: Vec<&String> = expected
            .iter()
            .filter(|(n, peers)| *n != spec.victim && peers.contains(&victim_ip))
            .map(|(n, _)| n)
            .collect();
        if let Some(w) = watchers.first() {
            let noticed = fabric_testkit::wait_until(
                Duration::from_secs(15),
                Duration::from_millis(100),
                || {
                    let out = lab.exec(w, &["calicoctl", "node", "status"]);
                    crate::status::parse_node_status(&String::from_utf8_lossy(&out.stdout))
                        .iter()
                        .any(|r| r.address == victim_ip && !r.established())
                },
            );
            eprintln!("{w} saw the session to {victim_ip} leave Established: {noticed}");
        }
    }
    wait_pings(Duration::from_secs(2));
    lab.start_calico_node(spec.victim);
    spec.wait_sessions(&lab, &spec.nodes, &[]);
    wait_fabric_routes(
        &lab,
        &names,
        pod_pool(),
        &spec.places(&lab, &spec.nodes, &pods),
        &next_hops,
        ROUTE_TIMEOUT,
    );
    wait_pings(Duration::from_secs(1));
    assert_no_loss(
        between,
        &format!(
            "SIGKILL and restart of {}'s calico-node (pods on the other nodes)",
            spec.victim
        ),
    );
    assert_no_loss(
        to_victim,
        &format!(
            "SIGKILL and restart of {}'s calico-node (to its own pods, graceful restart)",
            spec.victim
        ),
    );
    lab.destroy();
}

/// Lets continuous pings run for `d` (they are the measurement; nothing is polled).
fn wait_pings(d: Duration) {
    std::thread::sleep(d);
}
