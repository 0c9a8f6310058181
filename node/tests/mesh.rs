//! Root-only: three calico-node processes in network namespaces form the node-to-node mesh
//! over a sqlite datastore (and over etcd), each node holds one route per remote block, and
//! bad settings stop startup with a clear error before anything is written.

#![allow(clippy::unwrap_used)]

mod support;

use fabric_ipam::service::{self, ServiceReply, ServiceRequest};
use std::time::Duration;

use fabric_api::{IPPool, Node};
use fabric_datastore::Client;
use fabric_testkit::{EtcdServer, wait_until};
use support::{Cluster, Store};

const MESH_TIMEOUT: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Starts every node, checks the mesh and the block routes, then the probes.
fn mesh_with_block_routes(mut cluster: Cluster) {
    let rt = runtime();
    for i in 0..cluster.nodes.len() {
        cluster.start(i, &[]);
    }
    cluster.wait_mesh(MESH_TIMEOUT);

    // Registration: the nodename file, the Node with its address, the default pool.
    for n in &cluster.nodes {
        assert_eq!(std::fs::read_to_string(&n.nodename_file).unwrap(), n.name);
    }
    let client = rt.block_on(async { Client::new(cluster.store.backend().await) });
    let nodes: Vec<Node> = rt.block_on(client.list(None)).unwrap();
    assert_eq!(nodes.len(), cluster.nodes.len());
    for n in &cluster.nodes {
        let stored = nodes
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(n.name.as_str()))
            .unwrap();
        let bgp = stored.spec.bgp.as_ref().unwrap();
        assert_eq!(bgp.ipv4_address, format!("{}/24", n.ip));
    }
    let pools: Vec<IPPool> = rt.block_on(client.list(None)).unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].spec.cidr, "10.244.0.0/16");

    // calico-node serves its own node's allocations on its IPAM socket (what calico-ipam
    // asks first); the address comes from a block affine to that node.
    let ipam = fabric_ipam::Ipam::new(client.clone());
    for n in &cluster.nodes {
        let path = n.socket.with_extension("ipam.sock");
        let handle = format!("k8s-pod-network.svc-{}", n.name);
        let assign = ServiceRequest::Assign {
            node: n.name.clone(),
            handle: handle.clone(),
            attrs: Default::default(),
            num_v4: 1,
            num_v6: 0,
            pools_v4: Vec::new(),
            pools_v6: Vec::new(),
        };
        let reply = rt.block_on(service::request(&path, &assign)).unwrap();
        let ServiceReply::Ips { ips, held: false } = reply else {
            panic!("{}: {reply:?}", n.name)
        };
        let info = rt
            .block_on(ipam.get_assignment_attributes(ips[0]))
            .unwrap()
            .unwrap();
        assert_eq!(info.block_owner.as_deref(), Some(n.name.as_str()));
        let release = ServiceRequest::ReleaseHandle {
            node: n.name.clone(),
            handle,
        };
        let reply = rt.block_on(service::request(&path, &release)).unwrap();
        assert!(matches!(reply, ServiceReply::Ips { .. }), "{reply:?}");
    }

    // A pod on each node: each node's block reaches the two others, one route each, via
    // the owning node.
    let mut blocks = Vec::new();
    for i in 0..cluster.nodes.len() {
        let (_, block) = rt.block_on(cluster.add_pod(i, "pod"));
        blocks.push(block);
    }
    let ok = wait_until(MESH_TIMEOUT, Duration::from_millis(100), || {
        (0..cluster.nodes.len()).all(|i| {
            let routes = cluster.pod_routes(i);
            let mut want: Vec<(String, String)> = blocks
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, b)| (b.clone(), cluster.nodes[j].ip.clone()))
                .collect();
            want.sort();
            let mut remote: Vec<(String, String)> = routes
                .into_iter()
                .filter(|(_, via)| !via.is_empty())
                .collect();
            remote.sort();
            remote == want
        })
    });
    if !ok {
        cluster.dump();
        panic!("block routes missing: blocks {blocks:?}");
    }

    // The probes: ready (dataplane in sync, sessions Established) and live.
    for i in 0..cluster.nodes.len() {
        let (code, text) = cluster.run_once(i, &["-bird-ready", "-bird-live"], &[]);
        assert_eq!(code, 0, "{text}");
        let probes = ["-felix-ready", "-bird-ready", "-felix-live", "-bird-live"];
        let ok = wait_until(MESH_TIMEOUT, Duration::from_millis(200), || {
            cluster.run_once(i, &probes, &[]).0 == 0
        });
        assert!(ok, "{}", cluster.run_once(i, &probes, &[]).1);
    }
}

#[test]
fn a_node_whose_ipam_socket_cannot_be_created_still_joins_the_mesh() {
    let mut cluster = Cluster::new(2, |dir| Store::Sqlite(dir.join("calico.db")));
    // The socket's directory would be below a regular file.
    cluster.start(0, &[("CALICO_IPAM_SOCKET", "/proc/version/ipam.sock")]);
    cluster.start(1, &[]);
    cluster.wait_mesh(MESH_TIMEOUT);
    let log = cluster.log(0);
    assert!(log.contains("cannot start the IPAM service"), "{log}");
}

#[test]
fn three_nodes_on_sqlite_form_a_mesh_and_route_each_others_blocks() {
    let cluster = Cluster::new(3, |dir| Store::Sqlite(dir.join("calico.db")));
    mesh_with_block_routes(cluster);
}

#[test]
fn three_nodes_on_etcd_form_a_mesh_and_route_each_others_blocks() {
    // calico-node has no key prefix: it needs a keyspace of its own, so an etcd server of
    // its own rather than the suite's shared one.
    let etcd = EtcdServer::start();
    let endpoint = etcd.endpoint();
    let cluster = Cluster::new(3, move |_| Store::Etcd(endpoint));
    mesh_with_block_routes(cluster);
    drop(etcd);
}

#[test]
fn a_stopped_node_shows_in_the_others_status_and_readiness() {
    let mut cluster = Cluster::new(2, |dir| Store::Sqlite(dir.join("calico.db")));
    cluster.start(0, &[]);
    cluster.start(1, &[]);
    cluster.wait_mesh(MESH_TIMEOUT);
    cluster.nodes[1].process.take();
    let down = wait_until(MESH_TIMEOUT, Duration::from_millis(200), || {
        !cluster.mesh_established(0)
    });
    assert!(down);
    let (code, text) = cluster.run_once(0, &["-bird-ready"], &[]);
    assert_eq!(code, 1);
    assert!(text.contains(&cluster.nodes[1].ip), "{text}");
}

#[test]
fn bad_settings_name_the_variable_value_and_rule_and_change_nothing() {
    let cluster = Cluster::new(1, |dir| Store::Sqlite(dir.join("calico.db")));
    let rt = runtime();
    let client = rt.block_on(async { Client::new(cluster.store.backend().await) });
    let cases: &[(&str, &str, &str)] = &[
        ("IP", "10.0.0.300/24", "prefix length"),
        ("AS", "not-a-number", "AS number"),
        ("CALICO_IPV4POOL_CIDR", "10.244.0.1/16", "host bits"),
        ("CALICO_IPV4POOL_BLOCK_SIZE", "8", "from 20 to 32"),
        ("CALICO_NETWORKING_BACKEND", "gobgp", "bird, vxlan or none"),
    ];
    for (var, value, rule) in cases {
        let (code, text) = cluster.run_once(0, &["-startup"], &[(var, value)]);
        assert_ne!(code, 0, "{var}={value}: {text}");
        assert!(
            text.contains(var) && text.contains(value) && text.contains(rule),
            "{var}={value}: {text}"
        );
    }
    // Autodetection that finds nothing fails the same way, before any write.
    let (code, text) = cluster.run_once(
        0,
        &["-startup"],
        &[
            ("IP", "autodetect"),
            ("IP_AUTODETECTION_METHOD", "interface=nope.*"),
        ],
    );
    assert_ne!(code, 0);
    assert!(
        text.contains("IP_AUTODETECTION_METHOD") && text.contains("nope"),
        "{text}"
    );

    let nodes: Vec<Node> = rt.block_on(client.list(None)).unwrap();
    let pools: Vec<IPPool> = rt.block_on(client.list(None)).unwrap();
    assert!(nodes.is_empty() && pools.is_empty(), "{nodes:?} {pools:?}");
    assert!(!cluster.nodes[0].nodename_file.exists());

    // Good settings then register.
    let (code, text) = cluster.run_once(
        0,
        &["-startup"],
        &[
            ("IP", "autodetect"),
            ("IP_AUTODETECTION_METHOD", "interface=eth0"),
        ],
    );
    assert_eq!(code, 0, "{text}");
    let nodes: Vec<Node> = rt.block_on(client.list(None)).unwrap();
    assert_eq!(
        nodes[0].spec.bgp.as_ref().unwrap().ipv4_address,
        format!("{}/24", cluster.nodes[0].ip)
    );
}

#[test]
fn a_vxlan_pool_gives_the_node_a_tunnel_address_and_mac_from_ipam() {
    let cluster = Cluster::new(1, |dir| Store::Sqlite(dir.join("calico.db")));
    let (code, text) = cluster.run_once(
        0,
        &["-startup"],
        &[
            ("CALICO_IPV4POOL_VXLAN", "Always"),
            ("CALICO_NETWORKING_BACKEND", "vxlan"),
        ],
    );
    assert_eq!(code, 0, "{text}");
    let rt = runtime();
    let client = rt.block_on(async { Client::new(cluster.store.backend().await) });
    let name = cluster.nodes[0].name.clone();
    let node: Node = rt.block_on(client.get(None, &name)).unwrap();
    let addr = node.spec.ipv4_vxlan_tunnel_addr.clone();
    assert!(addr.starts_with("10.244."), "{node:?}");
    assert_eq!(node.spec.vxlan_tunnel_mac_addr.len(), 17);
    let ipam = fabric_ipam::Ipam::new(client.clone());
    let held = rt
        .block_on(ipam.ips_by_handle(&format!("vxlan-tunnel-addr-{name}")))
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].to_string(), addr);
    // A restart keeps the address and the MAC.
    let (code, text) = cluster.run_once(
        0,
        &["-startup"],
        &[
            ("CALICO_IPV4POOL_VXLAN", "Always"),
            ("CALICO_NETWORKING_BACKEND", "vxlan"),
        ],
    );
    assert_eq!(code, 0, "{text}");
    let again: Node = rt.block_on(client.get(None, &name)).unwrap();
    assert_eq!(again.spec.ipv4_vxlan_tunnel_addr, addr);
    assert_eq!(
        again.spec.vxlan_tunnel_mac_addr,
        node.spec.vxlan_tunnel_mac_addr
    );
}

#[test]
fn an_ipip_pool_gives_a_tunnel_address_and_the_node_runs_without_tunl0() {
    let mut cluster = Cluster::new(1, |dir| Store::Sqlite(dir.join("calico.db")));
    cluster.start(0, &[("CALICO_IPV4POOL_IPIP", "Always")]);
    let live = wait_until(MESH_TIMEOUT, Duration::from_millis(200), || {
        cluster.run_once(0, &["-felix-live", "-bird-live"], &[]).0 == 0
    });
    if !live {
        cluster.dump();
        panic!("calico-node with an IPIP pool is not live");
    }
    let rt = runtime();
    let client = rt.block_on(async { Client::new(cluster.store.backend().await) });
    let name = cluster.nodes[0].name.clone();
    let node: Node = rt.block_on(client.get(None, &name)).unwrap();
    let addr = node
        .spec
        .bgp
        .as_ref()
        .unwrap()
        .ipv4_ipip_tunnel_addr
        .clone();
    assert!(addr.starts_with("10.244."), "{node:?}");
    let ipam = fabric_ipam::Ipam::new(client.clone());
    let held = rt
        .block_on(ipam.ips_by_handle(&format!("ipip-tunnel-addr-{name}")))
        .unwrap();
    assert_eq!(held.len(), 1);
    // Still running: the missing ipip device is reported, not fatal.
    let process = cluster.nodes[0].process.as_mut().unwrap();
    assert!(
        process.0.try_wait().unwrap().is_none(),
        "{}",
        cluster.log(0)
    );
}

#[test]
fn a_new_bgp_peer_joins_without_resetting_the_mesh_sessions() {
    let mut cluster = Cluster::new(2, |dir| Store::Sqlite(dir.join("calico.db")));
    cluster.start(0, &[]);
    cluster.start(1, &[]);
    cluster.wait_mesh(MESH_TIMEOUT);
    let mesh_peer: std::net::IpAddr = cluster.nodes[1].ip.parse().unwrap();
    let session = |c: &Cluster| {
        let r = bgpd::status::protocol::query(
            &c.nodes[0].socket,
            &bgpd::status::protocol::Request::Neighbors,
        )
        .unwrap();
        r.neighbors.unwrap()
    };
    let before = session(&cluster)
        .into_iter()
        .find(|n| n.address == mesh_peer)
        .unwrap();
    let rt = runtime();
    let client = rt.block_on(async { Client::new(cluster.store.backend().await) });
    let peer: fabric_api::BGPPeer = serde_json::from_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "BGPPeer",
        "metadata": {"name": "tor"},
        "spec": {"peerIP": "10.77.0.99", "asNumber": 65099}
    }))
    .unwrap();
    rt.block_on(client.create(peer)).unwrap();
    let added = wait_until(MESH_TIMEOUT, Duration::from_millis(100), || {
        let (_, text) = cluster.node_status(0);
        text.contains("| 10.77.0.99 ") && text.contains("global")
    });
    assert!(added, "{}", cluster.node_status(0).1);
    let after = session(&cluster)
        .into_iter()
        .find(|n| n.address == mesh_peer)
        .unwrap();
    assert_eq!(after.state, "Established");
    assert_eq!(
        after.established_transitions,
        before.established_transitions
    );
    assert_eq!(after.since_unix_ms, before.since_unix_ms);
    // The unanswered peer keeps the node unready, with the reason.
    let (code, text) = cluster.run_once(0, &["-bird-ready"], &[]);
    assert_eq!(code, 1);
    assert!(text.contains("10.77.0.99"), "{text}");
}

#[test]
fn a_killed_node_keeps_its_block_route_on_the_others_and_rejoins_on_restart() {
    let mut cluster = Cluster::new(2, |dir| Store::Sqlite(dir.join("calico.db")));
    cluster.start(0, &[]);
    cluster.start(1, &[]);
    cluster.wait_mesh(MESH_TIMEOUT);
    let rt = runtime();
    let (_, block) = rt.block_on(cluster.add_pod(1, "pod"));
    let want = vec![(block.clone(), cluster.nodes[1].ip.clone())];
    let routed = |c: &Cluster| {
        c.pod_routes(0)
            .into_iter()
            .filter(|(_, via)| !via.is_empty())
            .collect::<Vec<_>>()
            == want
    };
    assert!(wait_until(MESH_TIMEOUT, Duration::from_millis(100), || {
        routed(&cluster)
    }));

    // SIGKILL: no Cease is sent, so node 1 is a graceful-restart helper and keeps the route.
    cluster.nodes[1].process.as_mut().unwrap().kill();
    let down = wait_until(MESH_TIMEOUT, Duration::from_millis(100), || {
        !cluster.mesh_established(0)
    });
    assert!(down, "{}", cluster.node_status(0).1);
    assert!(routed(&cluster), "{:?}", cluster.pod_routes(0));

    cluster.start(1, &[]);
    cluster.wait_mesh(MESH_TIMEOUT);
    assert!(wait_until(MESH_TIMEOUT, Duration::from_millis(100), || {
        routed(&cluster)
    }));
}

#[test]
fn a_borrowed_address_is_routed_as_a_host_route_to_the_node_using_it() {
    let mut cluster = Cluster::new(3, |dir| Store::Sqlite(dir.join("calico.db")));
    for i in 0..3 {
        cluster.start(i, &[("CALICO_IPV4POOL_BLOCK_SIZE", "30")]);
    }
    cluster.wait_mesh(MESH_TIMEOUT);
    let rt = runtime();
    let (_, block) = rt.block_on(cluster.add_pod(0, "owner"));
    // Node 1 may claim no block: it borrows from node 0's.
    let (borrowed, from) = rt.block_on(cluster.add_pod_with(1, "borrower", Some(0)));
    assert_eq!(from, block, "the address must come from node 0's block");
    let host = format!("{borrowed}/32");
    let (ip0, ip1) = (cluster.nodes[0].ip.clone(), cluster.nodes[1].ip.clone());
    let mut want: Vec<Vec<(String, String)>> = vec![
        vec![(host.clone(), ip1.clone())],
        vec![(block.clone(), ip0.clone())],
        vec![(block.clone(), ip0), (host, ip1)],
    ];
    for w in &mut want {
        w.sort();
    }
    let ok = wait_until(MESH_TIMEOUT, Duration::from_millis(100), || {
        (0..3).all(|i| {
            let mut got: Vec<(String, String)> = cluster
                .pod_routes(i)
                .into_iter()
                .filter(|(_, via)| !via.is_empty())
                .collect();
            got.sort();
            got == want[i]
        })
    });
    if !ok {
        cluster.dump();
        panic!("want {want:?}");
    }
}

#[test]
fn without_bgp_a_vxlan_pool_routes_remote_blocks_through_the_vxlan_device() {
    let mut cluster = Cluster::new(2, |dir| Store::Sqlite(dir.join("calico.db")));
    let env = [
        ("CALICO_NETWORKING_BACKEND", "vxlan"),
        ("CALICO_IPV4POOL_VXLAN", "Always"),
    ];
    cluster.start(0, &env);
    cluster.start(1, &env);
    // Both registered (and felix up) before the pod: the default pool exists then.
    for i in 0..2 {
        let live = wait_until(MESH_TIMEOUT, Duration::from_millis(100), || {
            cluster.run_once(i, &["-felix-live"], &[]).0 == 0
        });
        assert!(live, "{}", cluster.log(i));
    }
    let rt = runtime();
    let (_, block) = rt.block_on(cluster.add_pod(1, "pod"));
    let ok = wait_until(MESH_TIMEOUT, Duration::from_millis(100), || {
        let text = cluster.nodes[0].ns.ip("-4 route show root 10.244.0.0/16");
        text.lines()
            .any(|l| l.starts_with(&format!("{block} ")) && l.contains("dev vxlan.calico"))
    });
    if !ok {
        cluster.dump();
        panic!("no VXLAN route to {block} on node 0");
    }
    // No BGP: no status socket, and the node is live through felix alone.
    assert!(!cluster.nodes[0].socket.exists());
    let (code, text) = cluster.run_once(0, &["-felix-live"], &[]);
    assert_eq!(code, 0, "{text}");
}
