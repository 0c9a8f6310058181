//! Three nodes with a VXLAN pool and the `felix` binary alone on each (no BGP): pods ping and
//! talk TCP across nodes; health and metrics are served (root only).

#![allow(clippy::unwrap_used)]

mod support;

use fabric_api::ippool::{IPIPMode, VXLANMode};
use support::{Cluster, eventually, http_get, routes, tcp_works};

#[test]
fn a_vxlan_pool_connects_pods_across_nodes_with_felix_alone() {
    let c = Cluster::new(3, IPIPMode::Never, VXLANMode::Always);
    let pods: Vec<_> = (0..3).map(|n| c.add_pod(n, 5)).collect();
    let felixes: Vec<_> = (0..3)
        .map(|n| {
            c.start_felix(
                n,
                &[
                    ("FELIX_PROMETHEUSMETRICSENABLED", "true"),
                    ("FELIX_PROMETHEUSMETRICSHOST", "127.0.0.1"),
                ],
            )
        })
        .collect();
    let ns0 = &c.nodes[0].ns;
    let programmed = eventually(30, || {
        routes(ns0, "proto 80").contains("10.65.3.0/26 via 10.65.3.0 dev vxlan.calico onlink")
    });
    assert!(
        programmed,
        "routes:\n{}\nlog:\n{}",
        routes(ns0, ""),
        felixes[0].log()
    );

    // Every kind of route felix owns on node 1, with protocol 80.
    let table = routes(ns0, "proto 80");
    assert!(table.contains("blackhole 10.65.1.0/26"), "{table}");
    assert!(
        table.contains(&format!("{} dev {} scope link", pods[0].ip, pods[0].iface)),
        "{table}"
    );
    assert!(
        table.contains("10.65.2.0/26 via 10.65.2.0 dev vxlan.calico onlink"),
        "{table}"
    );
    let link = ns0.ip("-d link show vxlan.calico");
    assert!(
        link.contains("vxlan id 4096") && link.contains("dstport 4789"),
        "{link}"
    );
    assert!(
        link.contains("66:0a:00:00:00:01") && link.contains("mtu 1450"),
        "{link}"
    );
    let neigh = ns0.ip("neigh show dev vxlan.calico");
    assert!(
        neigh.contains("10.65.2.0 lladdr 66:0a:00:00:00:02 PERMANENT"),
        "{neigh}"
    );
    let fdb = ns0.sh("bridge fdb show dev vxlan.calico");
    assert!(
        fdb.contains("66:0a:00:00:00:03 dst 172.16.0.3 self permanent"),
        "{fdb}"
    );
    assert_eq!(ns0.sh("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    let proxy_arp = format!("/proc/sys/net/ipv4/conf/{}/proxy_arp", pods[0].iface);
    assert_eq!(ns0.sh(&format!("cat {proxy_arp}")).trim(), "1");

    for a in &pods {
        for b in &pods {
            if a.ip != b.ip {
                assert!(
                    eventually(20, || a.pings(&b.ip)),
                    "{} cannot ping {}; node routes:\n{}",
                    a.ip,
                    b.ip,
                    routes(&c.nodes[a.node].ns, "")
                );
            }
        }
    }
    assert!(tcp_works(&pods[0], &pods[2], 8080), "TCP 1 -> 3");
    assert!(tcp_works(&pods[1], &pods[0], 8081), "TCP 2 -> 1");

    // Ready, live, and the metrics are there.
    assert!(
        eventually(20, || http_get(ns0, 9099, "/readiness").0 == 200),
        "{:?}",
        http_get(ns0, 9099, "/readiness")
    );
    assert_eq!(http_get(ns0, 9099, "/liveness").0, 200);
    let (code, metrics) = http_get(ns0, 9091, "/metrics");
    assert_eq!(code, 200, "{metrics}");
    for name in [
        "felix_int_dataplane_apply_time_seconds_count",
        "felix_active_local_endpoints 1",
        "felix_in_sync 1",
        "felix_calc_graph_update_time_seconds_count",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
}

#[test]
fn felix_publishes_the_vxlan_mac_when_the_node_has_none() {
    let c = Cluster::new(2, IPIPMode::Never, VXLANMode::Always);
    c.clear_vxlan_mac(0);
    let pods = [c.add_pod(0, 5), c.add_pod(1, 5)];
    let felix = c.start_felix(0, &[]);
    let _peer = c.start_felix(1, &[]);
    let published = eventually(30, || !c.stored_vxlan_mac(0).is_empty());
    assert!(published, "log:\n{}", felix.log());
    let mac = c.stored_vxlan_mac(0);
    let link = c.nodes[0].ns.ip("link show vxlan.calico");
    assert!(
        link.contains(&mac),
        "{mac} is not the device's MAC:\n{link}"
    );
    // The other node learns it and builds its VTEP entry: traffic flows both ways.
    assert!(eventually(20, || c.nodes[1]
        .ns
        .ip("neigh show dev vxlan.calico")
        .contains(&mac)));
    assert!(eventually(20, || pods[1].pings(&pods[0].ip)));
}

#[test]
fn a_pod_rewired_under_the_same_interface_name_gets_its_route_back() {
    let c = Cluster::new(2, IPIPMode::Never, VXLANMode::Always);
    let pods = [c.add_pod(0, 5), c.add_pod(1, 5)];
    let felixes = [c.start_felix(0, &[]), c.start_felix(1, &[])];
    assert!(eventually(30, || pods[1].pings(&pods[0].ip)));
    // The CNI plugin deletes and recreates the pod's veth (a new sandbox) and rewrites the
    // endpoint: the kernel dropped felix's route with the old interface.
    let ns = &c.nodes[0].ns;
    ns.ip(&format!("link del {}", pods[0].iface));
    let pod = fabric_testkit::Netns::new("fxp");
    support::wire_pod(ns, &pod, &pods[0].iface, &pods[0].ip);
    ns.ip(&format!("route del {}/32", pods[0].ip));
    c.write_endpoint_with_container(
        &c.nodes[0].name,
        "pod-1-5",
        &pods[0].iface,
        &pods[0].ip,
        "second",
    );
    let route = format!("{} dev {} proto 80", pods[0].ip, pods[0].iface);
    assert!(
        eventually(10, || routes(ns, "").contains(&route)),
        "{}\nlog:\n{}",
        routes(ns, ""),
        felixes[0].log()
    );
    assert!(eventually(10, || pod
        .try_sh(&format!("ping -c 1 -W 1 {}", pods[1].ip))
        .is_ok()));
}
