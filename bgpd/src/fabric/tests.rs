//! Unit tests of the fabric's pure function: datastore objects in, bgpd configuration out.

use std::collections::BTreeMap;
use std::net::IpAddr;

use fabric_api::{BGPConfiguration, BGPFilter, BGPPeer, IPPool, Node};
use fabric_datastore::ipam_model::{
    AffinityState, AllocationAttribute, AllocationBlock, BlockAffinity,
};
use ipnet::IpNet;
use serde_json::json;

use super::*;
use crate::config::{NeighborConfig, PrefixMatchOp, Verdict};

fn node(name: &str, ip: &str, extra: serde_json::Value) -> Node {
    let mut bgp = json!({"ipv4Address": ip});
    if let Some(o) = extra.get("bgp").and_then(|b| b.as_object()) {
        for (k, v) in o {
            bgp[k] = v.clone();
        }
    }
    let labels = extra.get("labels").cloned().unwrap_or(json!({}));
    serde_json::from_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"bgp": bgp}
    }))
    .unwrap()
}

fn resource<T: serde::de::DeserializeOwned>(kind: &str, name: &str, spec: serde_json::Value) -> T {
    serde_json::from_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": kind,
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

/// Three nodes n1 (10.0.0.1), n2 (10.0.0.2), n3 (10.0.0.3), seen from n1, one pool.
fn cluster() -> FabricInput {
    let mut i = FabricInput {
        node_name: "n1".into(),
        ..FabricInput::default()
    };
    for (n, ip) in [
        ("n1", "10.0.0.1/24"),
        ("n2", "10.0.0.2/24"),
        ("n3", "10.0.0.3/24"),
    ] {
        i.nodes.insert(n.into(), node(n, ip, json!({})));
    }
    pool(&mut i, "pool", "10.244.0.0/16", false);
    i
}

fn pool(i: &mut FabricInput, name: &str, cidr: &str, disable_export: bool) {
    let p: IPPool = resource(
        "IPPool",
        name,
        json!({"cidr": cidr, "disableBGPExport": disable_export}),
    );
    i.pools.insert(name.into(), p);
}

fn bgp_config(i: &mut FabricInput, name: &str, spec: serde_json::Value) {
    let c: BGPConfiguration = resource("BGPConfiguration", name, spec);
    i.bgp_configurations.insert(name.into(), c);
}

fn peer(i: &mut FabricInput, name: &str, spec: serde_json::Value) {
    let p: BGPPeer = resource("BGPPeer", name, spec);
    i.peers.insert(name.into(), p);
}

fn block(node: &str, cidr: &str, used_by: &[(usize, &str)]) -> AllocationBlock {
    let cidr: IpNet = cidr.parse().unwrap();
    let size = 1usize << (cidr.max_prefix_len() - cidr.prefix_len());
    let mut allocations = vec![None; size];
    let mut attributes = Vec::new();
    for (ord, owner) in used_by {
        allocations[*ord] = Some(attributes.len());
        attributes.push(AllocationAttribute {
            handle_id: Some(format!("h-{ord}")),
            active_owner_attrs: BTreeMap::from([("node".to_string(), owner.to_string())]),
            ..AllocationAttribute::default()
        });
    }
    AllocationBlock {
        cidr,
        affinity: Some(format!("host:{node}")),
        affinity_claim_time: None,
        strict_affinity: false,
        unallocated: (0..size).filter(|o| allocations[*o].is_none()).collect(),
        allocations,
        attributes,
        sequence_number: 0,
        sequence_number_for_allocation: BTreeMap::new(),
        deleted: false,
    }
}

fn own_block(i: &mut FabricInput, cidr: &str) {
    let net: IpNet = cidr.parse().unwrap();
    i.affinities.insert(
        net,
        BlockAffinity {
            state: AffinityState::Confirmed,
            deleted: false,
        },
    );
    let me = i.node_name.clone();
    i.blocks.insert(net, block(&me, cidr, &[]));
}

fn run(i: &FabricInput) -> FabricOutput {
    compute(i, &FabricSettings::default()).unwrap()
}

fn neighbor<'a>(out: &'a FabricOutput, ip: &str) -> &'a NeighborConfig {
    let ip: IpAddr = ip.parse().unwrap();
    out.config
        .neighbors
        .iter()
        .find(|n| n.address == ip)
        .unwrap_or_else(|| panic!("no neighbour {ip} in {:?}", out.config.neighbors))
}

fn addresses(out: &FabricOutput) -> Vec<String> {
    out.config
        .neighbors
        .iter()
        .map(|n| n.address.to_string())
        .collect()
}

fn originated(out: &FabricOutput) -> Vec<String> {
    out.config
        .originate
        .iter()
        .map(|o| o.prefix.to_string())
        .collect()
}

#[test]
fn the_mesh_peers_every_other_node_with_the_default_as_and_the_smaller_address_passive() {
    let mut i = cluster();
    i.node_name = "n2".into();
    let out = run(&i);
    assert_eq!(out.config.asn, 64512);
    assert_eq!(out.config.router_id.to_string(), "10.0.0.2");
    assert_eq!(addresses(&out), ["10.0.0.1", "10.0.0.3"]);
    let n1 = neighbor(&out, "10.0.0.1");
    assert_eq!(n1.remote_asn, 64512);
    assert_eq!(n1.description.as_deref(), Some(peer_type::MESH));
    assert_eq!(n1.local_address, Some("10.0.0.2".parse().unwrap()));
    assert!(!n1.passive, "the greater address (ours) connects");
    assert!(
        neighbor(&out, "10.0.0.3").passive,
        "the smaller address (ours) waits"
    );
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
}

#[test]
fn turning_the_mesh_off_leaves_no_neighbours() {
    let mut i = cluster();
    bgp_config(&mut i, "default", json!({"nodeToNodeMeshEnabled": false}));
    assert!(run(&i).config.neighbors.is_empty());
}

#[test]
fn a_nodes_own_as_wins_over_the_cluster_as_and_peers_see_it() {
    let mut i = cluster();
    bgp_config(&mut i, "default", json!({"asNumber": 65000}));
    i.nodes.insert(
        "n3".into(),
        node("n3", "10.0.0.3/24", json!({"bgp": {"asNumber": 65003}})),
    );
    let out = run(&i);
    assert_eq!(out.config.asn, 65000);
    assert_eq!(neighbor(&out, "10.0.0.2").remote_asn, 65000);
    assert_eq!(neighbor(&out, "10.0.0.3").remote_asn, 65003);
    i.node_name = "n3".into();
    assert_eq!(run(&i).config.asn, 65003);
}

#[test]
fn a_global_peer_applies_to_every_node_and_a_node_specific_one_to_its_node_only() {
    let mut i = cluster();
    peer(
        &mut i,
        "tor",
        json!({"peerIP": "10.0.0.254", "asNumber": 65100}),
    );
    peer(
        &mut i,
        "n2-only",
        json!({"node": "n2", "peerIP": "10.0.0.253", "asNumber": 65101}),
    );
    peer(
        &mut i,
        "rack-a",
        json!({"nodeSelector": "rack == 'a'", "peerIP": "10.0.0.252", "asNumber": 65102}),
    );
    i.nodes.insert(
        "n1".into(),
        node("n1", "10.0.0.1/24", json!({"labels": {"rack": "a"}})),
    );
    let out = run(&i);
    let tor = neighbor(&out, "10.0.0.254");
    assert_eq!(tor.description.as_deref(), Some(peer_type::GLOBAL));
    assert_eq!(tor.remote_asn, 65100);
    assert!(!tor.passive);
    assert_eq!(
        neighbor(&out, "10.0.0.252").description.as_deref(),
        Some(peer_type::NODE_SPECIFIC)
    );
    assert!(!addresses(&out).contains(&"10.0.0.253".to_string()));
    i.node_name = "n2".into();
    let out = run(&i);
    assert!(addresses(&out).contains(&"10.0.0.253".to_string()));
    assert!(!addresses(&out).contains(&"10.0.0.252".to_string()));
}

#[test]
fn a_peer_selector_peers_with_the_selected_nodes_and_they_peer_back() {
    let mut i = cluster();
    bgp_config(&mut i, "default", json!({"nodeToNodeMeshEnabled": false}));
    i.nodes.insert(
        "n3".into(),
        node("n3", "10.0.0.3/24", json!({"labels": {"role": "edge"}})),
    );
    peer(&mut i, "to-edge", json!({"peerSelector": "role == 'edge'"}));
    let out = run(&i);
    assert_eq!(addresses(&out), ["10.0.0.3"]);
    assert_eq!(neighbor(&out, "10.0.0.3").remote_asn, 64512);
    // n3 is a target: it peers back with every node the peering applies to.
    i.node_name = "n3".into();
    let out = run(&i);
    assert_eq!(addresses(&out), ["10.0.0.1", "10.0.0.2"]);
    assert!(
        !neighbor(&out, "10.0.0.1").passive,
        "the greater address connects"
    );
}

#[test]
fn a_route_reflector_has_no_mesh_and_its_other_cluster_peers_are_clients() {
    let mut i = cluster();
    i.nodes.insert(
        "n1".into(),
        node(
            "n1",
            "10.0.0.1/24",
            json!({"bgp": {"routeReflectorClusterID": "224.0.0.1"}, "labels": {"rr": "yes"}}),
        ),
    );
    i.nodes.insert(
        "n4".into(),
        node(
            "n4",
            "10.0.0.4/24",
            json!({"bgp": {"routeReflectorClusterID": "224.0.0.1"}, "labels": {"rr": "yes"}}),
        ),
    );
    peer(&mut i, "to-rr", json!({"peerSelector": "has(rr)"}));
    let out = run(&i);
    assert_eq!(out.config.cluster_id, Some("224.0.0.1".parse().unwrap()));
    assert_eq!(addresses(&out), ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    assert!(neighbor(&out, "10.0.0.2").route_reflector_client);
    assert!(neighbor(&out, "10.0.0.3").route_reflector_client);
    assert!(
        !neighbor(&out, "10.0.0.4").route_reflector_client,
        "same cluster id: a reflector peer, not a client"
    );
    // A client meshes with the other clients but not with the reflectors.
    i.node_name = "n2".into();
    let out = run(&i);
    assert_eq!(
        neighbor(&out, "10.0.0.3").description.as_deref(),
        Some(peer_type::MESH)
    );
    assert_eq!(
        neighbor(&out, "10.0.0.1").description.as_deref(),
        Some(peer_type::GLOBAL)
    );
    assert!(!neighbor(&out, "10.0.0.1").route_reflector_client);
}

#[test]
fn confirmed_blocks_and_borrowed_addresses_are_exported_but_not_disabled_pools() {
    let mut i = cluster();
    own_block(&mut i, "10.244.1.0/26");
    // A pending affinity is not ours yet.
    i.affinities.insert(
        "10.244.9.0/26".parse().unwrap(),
        BlockAffinity {
            state: AffinityState::Pending,
            deleted: false,
        },
    );
    // n2's block, one address used on n1 (borrowed) and one on n2.
    i.blocks.insert(
        "10.244.2.0/30".parse().unwrap(),
        block("n2", "10.244.2.0/30", &[(1, "n1"), (2, "n2")]),
    );
    pool(&mut i, "quiet", "172.16.0.0/16", true);
    own_block(&mut i, "172.16.5.0/26");
    let out = run(&i);
    assert_eq!(originated(&out), ["10.244.1.0/26", "10.244.2.1/32"]);
    assert_eq!(
        out.own_blocks,
        [
            "10.244.1.0/26".parse::<IpNet>().unwrap(),
            "172.16.5.0/26".parse().unwrap()
        ]
    );
    let export = &out.config.policy["calico-export"];
    assert_eq!(export.default, Verdict::Reject);
    let first = &export.rules[0];
    assert_eq!(first.prefix, Some("172.16.0.0/16".parse().unwrap()));
    assert_eq!(
        first.action,
        Verdict::Reject,
        "disableBGPExport pools are rejected first"
    );
}

#[test]
fn service_ranges_are_originated_and_kept_out_of_the_kernel() {
    let mut i = cluster();
    bgp_config(
        &mut i,
        "default",
        json!({"serviceClusterIPs": [{"cidr": "10.96.0.0/12"}],
               "serviceExternalIPs": [{"cidr": "192.0.2.0/24"}],
               "serviceLoadBalancerIPs": [{"cidr": "198.51.100.0/24"}]}),
    );
    let out = run(&i);
    assert_eq!(
        originated(&out),
        ["10.96.0.0/12", "192.0.2.0/24", "198.51.100.0/24"]
    );
    assert_eq!(out.kernel_reject.len(), 3);
}

#[test]
fn imports_reject_our_own_blocks_by_exact_prefix() {
    let mut i = cluster();
    own_block(&mut i, "10.244.1.0/26");
    let out = run(&i);
    let import = &out.config.policy["calico-import"];
    assert_eq!(import.default, Verdict::Accept);
    let r = &import.rules[0];
    assert_eq!(r.prefix, Some("10.244.1.0/26".parse().unwrap()));
    assert_eq!(r.prefix_op, PrefixMatchOp::Equal);
    assert_eq!(r.action, Verdict::Reject);
    assert_eq!(
        neighbor(&out, "10.0.0.2").import_policy.as_deref(),
        Some("calico-import")
    );
}

#[test]
fn a_bgp_filter_is_placed_between_the_fixed_rules_and_unsupported_matches_are_warned() {
    let mut i = cluster();
    own_block(&mut i, "10.244.1.0/26");
    peer(
        &mut i,
        "tor",
        json!({"peerIP": "10.0.0.254", "asNumber": 65100, "filters": ["edge", "missing"]}),
    );
    let f: BGPFilter = resource(
        "BGPFilter",
        "edge",
        json!({
            "importV4": [
                {"action": "Reject", "matchOperator": "In", "cidr": "10.99.0.0/16"},
                {"action": "Accept", "interface": "eth0"}
            ],
            "exportV4": [{"action": "Reject", "matchOperator": "Equal", "cidr": "10.244.1.0/26"}]
        }),
    );
    i.filters.insert("edge".into(), f);
    let out = run(&i);
    let tor = neighbor(&out, "10.0.0.254");
    let import = &out.config.policy[tor.import_policy.as_deref().unwrap()];
    assert_eq!(
        import.rules.len(),
        2,
        "own block, then the filter's one expressible rule"
    );
    assert_eq!(
        import.rules[1].prefix,
        Some("10.99.0.0/16".parse().unwrap())
    );
    assert_eq!(import.rules[1].action, Verdict::Reject);
    let export = &out.config.policy[tor.export_policy.as_deref().unwrap()];
    assert_eq!(
        export.rules[0].prefix,
        Some("10.244.1.0/26".parse().unwrap())
    );
    assert_eq!(export.rules[0].action, Verdict::Reject);
    assert_eq!(export.rules.last().unwrap().action, Verdict::Accept);
    let fields: Vec<(String, String)> = out
        .warnings
        .iter()
        .map(|w| (w.resource.clone(), w.field.clone()))
        .collect();
    assert!(
        fields.contains(&("BGPFilter/edge".into(), "spec.importV4[1].interface".into())),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("BGPPeer/tor".into(), "spec.filters[1]".into())),
        "{fields:?}"
    );
    // The mesh peers keep the plain policies.
    assert_eq!(
        neighbor(&out, "10.0.0.2").export_policy.as_deref(),
        Some("calico-export")
    );
}

#[test]
fn a_password_comes_from_its_secret_and_a_missing_secret_skips_the_peering_with_a_warning() {
    let mut i = cluster();
    bgp_config(
        &mut i,
        "default",
        json!({"nodeMeshPassword": {"secretKeyRef": {"name": "bgp", "key": "mesh"}}}),
    );
    peer(
        &mut i,
        "tor",
        json!({"peerIP": "10.0.0.254", "asNumber": 65100,
               "password": {"secretKeyRef": {"name": "bgp", "key": "tor"}}}),
    );
    assert_eq!(
        referenced_secrets(&i),
        [
            SecretRef {
                name: "bgp".into(),
                key: "mesh".into()
            },
            SecretRef {
                name: "bgp".into(),
                key: "tor".into()
            }
        ]
    );
    i.secrets.insert(
        SecretRef {
            name: "bgp".into(),
            key: "mesh".into(),
        },
        "m3sh",
    );
    let out = run(&i);
    assert_eq!(neighbor(&out, "10.0.0.2").password.as_deref(), Some("m3sh"));
    assert!(!addresses(&out).contains(&"10.0.0.254".to_string()));
    let w = out
        .warnings
        .iter()
        .find(|w| w.resource == "BGPPeer/tor")
        .expect("a warning for the skipped peering");
    assert_eq!(w.field, "spec.password");
    assert!(w.message.contains("bgp/tor"), "{w}");
}

#[test]
fn passwords_are_read_from_the_secrets_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bgp")).unwrap();
    std::fs::write(dir.path().join("bgp/tor"), "t0r-key\n").unwrap();
    let mut i = cluster();
    peer(
        &mut i,
        "tor",
        json!({"peerIP": "10.0.0.254", "asNumber": 65100,
               "password": {"secretKeyRef": {"name": "bgp", "key": "tor"}}}),
    );
    i.secrets = Secrets::read(dir.path(), &referenced_secrets(&i));
    let out = run(&i);
    assert_eq!(
        neighbor(&out, "10.0.0.254").password.as_deref(),
        Some("t0r-key")
    );
}

#[test]
fn what_bgpd_cannot_express_is_reported_with_resource_and_field() {
    let mut i = cluster();
    peer(
        &mut i,
        "bad-ip",
        json!({"peerIP": "not-an-ip", "asNumber": 65100}),
    );
    peer(&mut i, "no-as", json!({"peerIP": "10.0.0.250"}));
    peer(
        &mut i,
        "via-gw",
        json!({"peerIP": "10.9.9.9", "asNumber": 65100, "reachableBy": "10.0.0.254"}),
    );
    let out = run(&i);
    let find = |r: &str, f: &str| out.warnings.iter().any(|w| w.resource == r && w.field == f);
    assert!(find("BGPPeer/bad-ip", "spec.peerIP"), "{:?}", out.warnings);
    assert!(find("BGPPeer/no-as", "spec.asNumber"), "{:?}", out.warnings);
    assert!(
        find("BGPPeer/via-gw", "spec.reachableBy"),
        "{:?}",
        out.warnings
    );
    assert_eq!(out.static_routes.len(), 1);
    assert!(addresses(&out).contains(&"10.9.9.9".to_string()));
}

#[test]
fn a_peering_named_twice_keeps_the_global_one_and_reports_the_other() {
    let mut i = cluster();
    peer(
        &mut i,
        "n2-global",
        json!({"peerIP": "10.0.0.2", "asNumber": 64512}),
    );
    let out = run(&i);
    assert_eq!(
        neighbor(&out, "10.0.0.2").description.as_deref(),
        Some(peer_type::GLOBAL)
    );
    assert!(
        out.warnings
            .iter()
            .any(|w| w.resource == "BGPConfiguration/default"),
        "{:?}",
        out.warnings
    );
}

#[test]
fn a_node_without_its_resource_or_address_is_an_error_naming_it() {
    let mut i = cluster();
    i.node_name = "ghost".into();
    let e = compute(&i, &FabricSettings::default()).unwrap_err();
    assert!(e.to_string().contains("ghost"), "{e}");
    let mut i = cluster();
    i.nodes.insert("n1".into(), node("n1", "", json!({})));
    let e = compute(&i, &FabricSettings::default()).unwrap_err();
    assert!(e.to_string().contains("ipv4Address"), "{e}");
}

#[test]
fn the_same_input_gives_the_same_configuration() {
    let mut i = cluster();
    own_block(&mut i, "10.244.1.0/26");
    assert_eq!(run(&i), run(&i));
}
