//! A no-encap pool whose remote routes come from a test source through the library API (as
//! calico-node feeds them from bgpd), and a pool mode change Never -> VXLAN -> Never that
//! reprograms the nodes without a restart (root only).

#![allow(clippy::unwrap_used)]

mod support;

use fabric_api::ippool::{IPIPMode, VXLANMode};
use felix::ConfigOverrides;
use support::{Cluster, eventually, routes, tcp_works};

#[test]
fn learned_routes_connect_a_no_encap_pool_and_the_pool_mode_can_change_live() {
    let c = Cluster::new(2, IPIPMode::Never, VXLANMode::Never);
    let pods = [c.add_pod(0, 5), c.add_pod(1, 5)];
    let (ns1, ns2) = (&c.nodes[0].ns, &c.nodes[1].ns);
    let felix1 = c.start_felix_library(0, ConfigOverrides::default());
    let felix2 = c.start_felix_library(1, ConfigOverrides::default());

    // Without BGP nothing routes the remote blocks of a no-encap pool.
    assert!(eventually(20, || routes(ns1, "proto 80")
        .contains("blackhole 10.65.1.0/26")));
    assert!(!routes(ns1, "").contains("10.65.2.0/26"));
    assert!(!pods[0].pings(&pods[1].ip));

    // The test source plays bgpd: each node learns the other's block via its address.
    felix1.learn(
        &[
            ("10.65.2.0/26", &["172.16.0.2"]),
            ("203.0.113.0/24", &["172.16.0.254"]),
        ],
        true,
    );
    felix2.learn(&[("10.65.1.0/26", &["172.16.0.1"])], true);
    assert!(
        eventually(20, || routes(ns1, "proto 80")
            .contains("10.65.2.0/26 via 172.16.0.2 dev eth0")),
        "{}",
        routes(ns1, "")
    );
    assert!(routes(ns1, "proto 80").contains("203.0.113.0/24 via 172.16.0.254 dev eth0"));
    assert!(
        eventually(20, || pods[0].pings(&pods[1].ip)),
        "{}",
        routes(ns2, "")
    );
    assert!(tcp_works(&pods[1], &pods[0], 8080));

    // Never -> VXLAN: felix computes the routes (learned ones are ignored) and builds the tunnel.
    c.set_pool(IPIPMode::Never, VXLANMode::Always);
    let vxlan = "10.65.2.0/26 via 10.65.2.0 dev vxlan.calico onlink";
    assert!(
        eventually(20, || routes(ns1, "proto 80").contains(vxlan)),
        "{}",
        routes(ns1, "")
    );
    assert!(
        ns1.ip("-d link show vxlan.calico")
            .contains("vxlan id 4096")
    );
    assert!(eventually(20, || pods[0].pings(&pods[1].ip)));
    assert!(eventually(20, || pods[1].pings(&pods[0].ip)));
    assert!(tcp_works(&pods[0], &pods[1], 8081));

    // VXLAN -> Never: back to the learned routes; the tunnel goes.
    c.set_pool(IPIPMode::Never, VXLANMode::Never);
    assert!(
        eventually(20, || routes(ns1, "proto 80")
            .contains("10.65.2.0/26 via 172.16.0.2 dev eth0")),
        "{}",
        routes(ns1, "")
    );
    assert!(eventually(20, || ns1
        .try_ip("link show vxlan.calico")
        .is_err()));
    assert!(eventually(20, || pods[0].pings(&pods[1].ip)));

    // A withdrawal removes the route.
    felix1.learn(&[("203.0.113.0/24", &[])], false);
    assert!(eventually(20, || !routes(ns1, "").contains("203.0.113.0/24")));
}

#[test]
fn learned_routes_installed_before_a_restart_stay_until_the_new_source_is_in_sync() {
    let c = Cluster::new(2, IPIPMode::Never, VXLANMode::Never);
    let pods = [c.add_pod(0, 5), c.add_pod(1, 5)];
    let ns1 = &c.nodes[0].ns;
    let mut felix1 = c.start_felix_library(0, ConfigOverrides::default());
    let felix2 = c.start_felix_library(1, ConfigOverrides::default());
    felix1.learn(&[("10.65.2.0/26", &["172.16.0.2"])], true);
    felix2.learn(&[("10.65.1.0/26", &["172.16.0.1"])], true);
    assert!(eventually(20, || pods[0].pings(&pods[1].ip)));
    felix1.stop().unwrap();

    // A new felix whose BGP source has not converged yet keeps the route it did not learn.
    let felix1 = c.start_felix_library(0, ConfigOverrides::default());
    assert!(eventually(20, || routes(ns1, "proto 80")
        .contains("blackhole 10.65.1.0/26")));
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        routes(ns1, "proto 80").contains("10.65.2.0/26 via 172.16.0.2"),
        "{}",
        routes(ns1, "")
    );
    assert!(pods[0].pings(&pods[1].ip));
    // Once the source says it is complete without that route, the route goes.
    felix1.learn(&[], true);
    assert!(
        eventually(20, || !routes(ns1, "").contains("10.65.2.0/26")),
        "{}",
        routes(ns1, "")
    );
}

#[test]
fn an_unreachable_next_hop_fails_the_apply_and_a_retry_installs_it_once_reachable() {
    let c = Cluster::new(1, IPIPMode::Never, VXLANMode::Never);
    let ns = &c.nodes[0].ns;
    let felix = c.start_felix_library(0, ConfigOverrides::default());
    felix.learn(&[("203.0.113.0/24", &["192.0.2.99"])], true);
    // The kernel refuses a gateway outside every connected subnet: not ready, and why.
    let failing = eventually(20, || {
        let (code, body) = support::http_get(ns, 9099, "/readiness");
        code == 503 && body.contains("203.0.113.0/24")
    });
    assert!(failing, "{:?}", support::http_get(ns, 9099, "/readiness"));
    // Once the next hop becomes reachable the retry succeeds without any new input.
    ns.ip("addr add 192.0.2.1/24 dev eth0");
    assert!(
        eventually(30, || routes(ns, "proto 80")
            .contains("203.0.113.0/24 via 192.0.2.99")),
        "{}",
        routes(ns, "")
    );
    assert!(eventually(20, || support::http_get(ns, 9099, "/readiness")
        .0
        == 200));
}
