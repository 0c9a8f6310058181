//! Every route kind and the changes that move routes: CrossSubnet, borrowed addresses, pool
//! mode changes, node deletion, affinity moves, learned routes; plus tunnels, VTEPs, sysctls,
//! NAT and settings.

use fabric_api::felix::FelixConfigurationSpec;
use fabric_api::ippool::{IPIPMode as I, VXLANMode as V};
use fabric_datastore::ipam_model::AffinityState;

use super::*;
use crate::calc::CalcGraph;
use crate::dataplane::IpFamily;

/// The route for `prefix` as `ip route` would print it, or `"-"`.
fn route(g: &CalcGraph, prefix: &str) -> String {
    g.desired()
        .routes
        .get(&net(prefix))
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// Nodes a (us) and b on 172.16.0.0/24, c on 172.16.1.0/24; blocks /26 of `cidr` 0, 1, 2 for
/// a, b, c; the underlay eth0 with MTU 1500.
fn cluster(ipip: I, vxlan: V) -> Vec<CalcInput> {
    vec![
        pool("p", "10.65.0.0/16", ipip, vxlan),
        node("a", "172.16.0.1/24", 1),
        node("b", "172.16.0.2/24", 2),
        node("c", "172.16.1.3/24", 3),
        confirmed("a", "10.65.0.0/26"),
        confirmed("b", "10.65.1.0/26"),
        confirmed("c", "10.65.2.0/26"),
        host("eth0", 1500),
    ]
}

#[test]
fn a_local_workload_gets_a_scope_link_route_to_its_interface() {
    let mut inputs = cluster(I::Never, V::Always);
    inputs.push(wep("a", "pod1", "cali12345", "10.65.0.5"));
    inputs.push(wep("b", "pod2", "cali99999", "10.65.1.5"));
    let g = graph("a", inputs);
    assert_eq!(
        route(&g, "10.65.0.5/32"),
        "10.65.0.5/32 dev cali12345 scope link"
    );
    // Another node's endpoint is not ours to route locally.
    assert_eq!(route(&g, "10.65.1.5/32"), "-");
    assert_eq!(g.local_endpoints(), 1);
}

#[test]
fn own_confirmed_blocks_are_blackholed_and_pending_ones_are_not() {
    let mut inputs = cluster(I::Never, V::Always);
    inputs.push(affinity("a", "10.65.3.0/26", Some(AffinityState::Pending)));
    let g = graph("a", inputs);
    assert_eq!(route(&g, "10.65.0.0/26"), "10.65.0.0/26 blackhole");
    assert_eq!(route(&g, "10.65.3.0/26"), "-");
}

#[test]
fn vxlan_blocks_route_via_the_remote_vtep_on_vxlan_calico() {
    let g = graph("a", cluster(I::Never, V::Always));
    assert_eq!(
        route(&g, "10.65.1.0/26"),
        "10.65.1.0/26 via 10.99.0.2 dev vxlan.calico onlink"
    );
    assert_eq!(
        route(&g, "10.65.2.0/26"),
        "10.65.2.0/26 via 10.99.0.3 dev vxlan.calico onlink"
    );
    let d = g.desired();
    let vx = d.links.vxlan_v4.expect("vxlan.calico");
    assert_eq!(
        (vx.name.as_str(), vx.vni, vx.port),
        ("vxlan.calico", 4096, 4789)
    );
    assert_eq!(vx.mtu, Some(1450));
    assert_eq!(vx.address, Some("10.99.0.1".parse().unwrap()));
    assert_eq!(vx.mac, Some("66:00:00:00:00:01".parse().unwrap()));
    assert_eq!(vx.local, "172.16.0.1".parse::<std::net::IpAddr>().unwrap());
    assert!(d.links.ipip.is_none());
    let vteps: Vec<String> = d
        .vteps_v4
        .iter()
        .map(|v| format!("{} {} {}", v.tunnel_address, v.mac, v.underlay))
        .collect();
    assert_eq!(
        vteps,
        [
            "10.99.0.2 66:00:00:00:00:02 172.16.0.2",
            "10.99.0.3 66:00:00:00:00:03 172.16.1.3"
        ]
    );
}

#[test]
fn ipip_blocks_route_via_the_remote_node_on_tunl0_onlink() {
    let g = graph("a", cluster(I::Always, V::Never));
    assert_eq!(
        route(&g, "10.65.1.0/26"),
        "10.65.1.0/26 via 172.16.0.2 dev tunl0 onlink"
    );
    assert_eq!(
        route(&g, "10.65.2.0/26"),
        "10.65.2.0/26 via 172.16.1.3 dev tunl0 onlink"
    );
    let d = g.desired();
    let tunl = d.links.ipip.expect("tunl0");
    assert_eq!(tunl.name, "tunl0");
    assert_eq!(tunl.mtu, Some(1480));
    assert_eq!(tunl.address, Some("10.98.0.1".parse().unwrap()));
    assert!(d.links.vxlan_v4.is_none());
    assert!(d.vteps_v4.is_empty());
    assert_eq!(g.ipip_pools(), vec![("p".to_string(), net("10.65.0.0/16"))]);
}

#[test]
fn cross_subnet_routes_directly_in_our_subnet_and_encapsulates_beyond_it() {
    let g = graph("a", cluster(I::CrossSubnet, V::Never));
    assert_eq!(
        route(&g, "10.65.1.0/26"),
        "10.65.1.0/26 via 172.16.0.2 dev eth0"
    );
    assert_eq!(
        route(&g, "10.65.2.0/26"),
        "10.65.2.0/26 via 172.16.1.3 dev tunl0 onlink"
    );
    let g = graph("a", cluster(I::Never, V::CrossSubnet));
    assert_eq!(
        route(&g, "10.65.1.0/26"),
        "10.65.1.0/26 via 172.16.0.2 dev eth0"
    );
    assert_eq!(
        route(&g, "10.65.2.0/26"),
        "10.65.2.0/26 via 10.99.0.3 dev vxlan.calico onlink"
    );
}

#[test]
fn a_borrowed_address_is_routed_to_the_node_using_it_everywhere_else() {
    // 10.65.0.7 is in a's block but used on b.
    let mut inputs = cluster(I::Never, V::Always);
    inputs.push(block("10.65.0.0/26", &[(5, "a"), (7, "b")]));
    let on_a = graph("a", inputs.clone());
    assert_eq!(route(&on_a, "10.65.0.0/26"), "10.65.0.0/26 blackhole");
    assert_eq!(
        route(&on_a, "10.65.0.7/32"),
        "10.65.0.7/32 via 10.99.0.2 dev vxlan.calico onlink"
    );
    assert_eq!(
        route(&on_a, "10.65.0.5/32"),
        "-",
        "not borrowed: the block covers it"
    );
    let on_c = graph("c", inputs.clone());
    assert_eq!(
        route(&on_c, "10.65.0.0/26"),
        "10.65.0.0/26 via 10.99.0.1 dev vxlan.calico onlink"
    );
    assert_eq!(
        route(&on_c, "10.65.0.7/32"),
        "10.65.0.7/32 via 10.99.0.2 dev vxlan.calico onlink"
    );
    let mut on_b_inputs = inputs;
    on_b_inputs.push(wep("b", "pod7", "cali7", "10.65.0.7"));
    let on_b = graph("b", on_b_inputs);
    assert_eq!(
        route(&on_b, "10.65.0.7/32"),
        "10.65.0.7/32 dev cali7 scope link"
    );
    assert_eq!(
        route(&on_b, "10.65.0.0/26"),
        "10.65.0.0/26 via 10.99.0.1 dev vxlan.calico onlink"
    );
}

#[test]
fn no_encap_pools_take_remote_routes_from_bgp_only() {
    let mut inputs = cluster(I::Never, V::Never);
    inputs.extend([
        learned("10.65.1.0/26", &["172.16.0.2"]),
        // Our own block learned back: ignored (the blackhole stays).
        learned("10.65.0.0/26", &["172.16.0.2"]),
        // A ToR default route and an aggregate outside every pool.
        learned("0.0.0.0/0", &["172.16.0.254"]),
        learned("192.168.0.0/16", &["172.16.0.2", "172.16.0.3"]),
        // A borrowed /32 learned from b.
        learned("10.65.0.9/32", &["172.16.0.2"]),
    ]);
    let g = graph("a", inputs);
    assert_eq!(route(&g, "10.65.1.0/26"), "10.65.1.0/26 via 172.16.0.2");
    assert_eq!(route(&g, "10.65.2.0/26"), "-", "c's block is not learned");
    assert_eq!(route(&g, "10.65.0.0/26"), "10.65.0.0/26 blackhole");
    assert_eq!(route(&g, "0.0.0.0/0"), "0.0.0.0/0 via 172.16.0.254");
    assert_eq!(
        route(&g, "192.168.0.0/16"),
        "192.168.0.0/16 nexthop via 172.16.0.2 nexthop via 172.16.0.3"
    );
    assert_eq!(route(&g, "10.65.0.9/32"), "10.65.0.9/32 via 172.16.0.2");
    let d = g.desired();
    assert!(d.links.vxlan_v4.is_none() && d.links.ipip.is_none());
}

#[test]
fn learned_routes_inside_encapsulated_pools_are_ignored_and_withdrawals_remove() {
    let mut inputs = cluster(I::Never, V::Always);
    inputs.push(learned("10.65.1.0/26", &["172.16.0.2"]));
    inputs.push(learned("10.65.9.0/26", &["172.16.0.2"]));
    inputs.push(learned("203.0.113.0/24", &["172.16.0.2"]));
    let mut g = graph("a", inputs);
    assert_eq!(
        route(&g, "10.65.1.0/26"),
        "10.65.1.0/26 via 10.99.0.2 dev vxlan.calico onlink"
    );
    assert_eq!(route(&g, "10.65.9.0/26"), "-");
    assert_eq!(route(&g, "203.0.113.0/24"), "203.0.113.0/24 via 172.16.0.2");
    g.update(CalcInput::Learned(LearnedRoute::withdrawn(net(
        "203.0.113.0/24",
    ))));
    let changes = g.flush();
    assert_eq!(changes.routes, vec![(net("203.0.113.0/24"), None)]);
}

#[test]
fn changing_the_pool_mode_reprograms_the_remote_routes_and_the_tunnel() {
    let mut inputs = cluster(I::Never, V::Never);
    inputs.push(learned("10.65.1.0/26", &["172.16.0.2"]));
    let mut g = graph("a", inputs);
    assert_eq!(route(&g, "10.65.1.0/26"), "10.65.1.0/26 via 172.16.0.2");
    assert_eq!(route(&g, "10.65.2.0/26"), "-");

    g.update(pool("p", "10.65.0.0/16", I::Never, V::Always));
    let changes = g.flush();
    assert_eq!(
        route(&g, "10.65.1.0/26"),
        "10.65.1.0/26 via 10.99.0.2 dev vxlan.calico onlink"
    );
    assert_eq!(
        route(&g, "10.65.2.0/26"),
        "10.65.2.0/26 via 10.99.0.3 dev vxlan.calico onlink"
    );
    assert!(changes.links.unwrap().vxlan_v4.is_some());
    assert_eq!(changes.vteps_v4.unwrap().len(), 2);
    assert_eq!(changes.routes.len(), 2);

    g.update(pool("p", "10.65.0.0/16", I::Never, V::Never));
    let changes = g.flush();
    assert_eq!(route(&g, "10.65.1.0/26"), "10.65.1.0/26 via 172.16.0.2");
    assert_eq!(route(&g, "10.65.2.0/26"), "-");
    assert!(changes.links.unwrap().vxlan_v4.is_none());
    assert_eq!(changes.vteps_v4, Some(Vec::new()));
}

#[test]
fn a_deleted_node_loses_its_routes_and_its_vtep() {
    let mut inputs = cluster(I::Never, V::Always);
    inputs.push(block("10.65.0.0/26", &[(7, "c")]));
    let mut g = graph("a", inputs);
    assert_ne!(route(&g, "10.65.2.0/26"), "-");
    assert_ne!(route(&g, "10.65.0.7/32"), "-");
    g.update(node_deleted("c"));
    let changes = g.flush();
    assert_eq!(
        changes.routes,
        vec![(net("10.65.0.7/32"), None), (net("10.65.2.0/26"), None)]
    );
    assert_eq!(changes.vteps_v4.unwrap().len(), 1);
}

#[test]
fn a_block_affinity_moving_between_nodes_moves_its_route() {
    let mut g = graph("a", cluster(I::Never, V::Always));
    g.update(affinity("b", "10.65.1.0/26", None));
    g.update(confirmed("c", "10.65.1.0/26"));
    g.flush();
    assert_eq!(
        route(&g, "10.65.1.0/26"),
        "10.65.1.0/26 via 10.99.0.3 dev vxlan.calico onlink"
    );
    // Our own block moves away: the blackhole becomes a route to the new owner.
    g.update(affinity("a", "10.65.0.0/26", None));
    g.update(confirmed("b", "10.65.0.0/26"));
    g.flush();
    assert_eq!(
        route(&g, "10.65.0.0/26"),
        "10.65.0.0/26 via 10.99.0.2 dev vxlan.calico onlink"
    );
    // And a block moving to us becomes a blackhole.
    g.update(affinity("c", "10.65.2.0/26", None));
    g.update(confirmed("a", "10.65.2.0/26"));
    g.flush();
    assert_eq!(route(&g, "10.65.2.0/26"), "10.65.2.0/26 blackhole");
}

#[test]
fn an_endpoint_update_emits_only_its_own_route() {
    let mut g = graph("a", cluster(I::Never, V::Always));
    for i in 0..1000u32 {
        g.update(wep(
            "a",
            &format!("pod{i}"),
            &format!("cali{i}"),
            &format!("10.65.{}.{}", 100 + i / 200, i % 200),
        ));
    }
    let changes = g.flush();
    assert_eq!(changes.routes.len(), 1000);
    assert!(changes.endpoints_changed);
    g.update(wep_deleted("a", "pod7"));
    let changes = g.flush();
    assert_eq!(changes.routes, vec![(net("10.65.100.7/32"), None)]);
    assert!(changes.links.is_none() && changes.nat_v4.is_none());
    let sysctls = changes
        .sysctls
        .expect("sysctls for the remaining interfaces");
    assert_eq!(sysctls.len(), 1 + 4 * 999);
    assert!(!g.has_pending_work());
    assert!(g.flush().is_empty());
}

#[test]
fn settings_come_from_felix_configuration_and_set_the_tunnel() {
    let mut inputs = cluster(I::Never, V::Always);
    inputs.push(felix_config(
        "default",
        FelixConfigurationSpec {
            vxlan_vni: Some(7),
            vxlan_port: Some(8472),
            vxlan_mtu: Some(1400),
            ..FelixConfigurationSpec::default()
        },
    ));
    inputs.push(felix_config(
        "node.a",
        FelixConfigurationSpec {
            vxlan_mtu: Some(1300),
            ..FelixConfigurationSpec::default()
        },
    ));
    // Another node's configuration does not apply to us.
    inputs.push(felix_config(
        "node.b",
        FelixConfigurationSpec {
            vxlan_vni: Some(9),
            ..FelixConfigurationSpec::default()
        },
    ));
    let g = graph("a", inputs);
    let vx = g.desired().links.vxlan_v4.unwrap();
    assert_eq!((vx.vni, vx.port, vx.mtu), (7, 8472, Some(1300)));
}

#[test]
fn workload_interfaces_get_sysctls_and_pools_get_nat_sets() {
    let mut inputs = cluster(I::Never, V::Always);
    inputs.push(wep("a", "pod1", "cali1", "10.65.0.5"));
    inputs.push(pool("q", "10.70.0.0/16", I::Never, V::Never));
    let g = graph("a", inputs);
    let d = g.desired();
    let keys: Vec<&str> = d.sysctls.iter().map(|(k, _)| k).collect();
    assert!(keys.contains(&"net/ipv4/ip_forward"));
    assert!(keys.contains(&"net/ipv4/conf/cali1/proxy_arp"));
    assert_eq!(d.nat_v4.len(), 2);
    assert!(d.nat_v6.is_empty());
}

#[test]
fn a_vtep_that_repeats_another_nodes_mac_is_left_out_and_reported() {
    let mut inputs = cluster(I::Never, V::Always);
    // d reuses b's VTEP (same index -> same address and MAC).
    inputs.push(node("d", "172.16.0.4/24", 2));
    let mut g = graph("a", inputs);
    assert_eq!(g.desired().vteps_v4.len(), 2);
    let problems = g.take_problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("node d") && p.contains("node b")),
        "{problems:?}"
    );
}

#[test]
fn a_bad_pool_is_reported_and_treated_as_absent() {
    let mut inputs = cluster(I::Never, V::Always);
    inputs.push(pool("bad", "not-a-cidr", I::Never, V::Never));
    let mut g = graph("a", inputs);
    assert!(
        g.take_problems()
            .iter()
            .any(|p| p.contains("IPPool bad") && p.contains("spec.cidr"))
    );
    assert_eq!(g.desired().nat_v4.len(), 1);
    assert_eq!(g.desired().vteps_v4.len(), 2);
    let _ = IpFamily::V4;
}

#[test]
fn a_pool_deleted_stops_felix_owning_its_routes() {
    let mut g = graph("a", cluster(I::Never, V::Always));
    g.update(pool_deleted("p"));
    g.flush();
    // Without a pool nobody claims the blocks: no encapsulation, BGP would own them.
    assert_eq!(route(&g, "10.65.1.0/26"), "-");
    assert_eq!(route(&g, "10.65.0.0/26"), "10.65.0.0/26 blackhole");
    assert!(g.desired().links.vxlan_v4.is_none());
}

#[test]
fn only_a_replaced_endpoint_flags_its_interface_as_possibly_recreated() {
    let mut g = graph("a", cluster(I::Never, V::Always));
    g.update(wep("a", "pod1", "cali1", "10.65.0.5"));
    let added = g.flush();
    assert!(added.endpoints_changed && !added.endpoints_replaced);
    // Deleted and re-added within one flush: same route, but the veth may be new.
    g.update(wep_deleted("a", "pod1"));
    g.update(wep("a", "pod1", "cali1", "10.65.0.5"));
    let readded = g.flush();
    assert!(readded.routes.is_empty());
    assert!(readded.endpoints_replaced);
    // An update of an existing endpoint.
    g.update(wep("a", "pod1", "cali1", "10.65.0.6"));
    assert!(g.flush().endpoints_replaced);
    g.update(wep_deleted("a", "pod1"));
    assert!(!g.flush().endpoints_replaced);
}
