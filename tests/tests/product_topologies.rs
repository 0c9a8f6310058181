//! The product topologies load as calico-lab reads them (containerlab's rules, this project's
//! roles) and are consistent: every calico-node is named and addressed the same way in `env`
//! and `exec`, BIRD routers have their configuration bound, and the Calico resources they apply
//! are `projectcalico.org/v3` documents. No root needed.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use calico_lab::model::{Lab, NodeKind};
use calico_lab::role::Role;
use calico_lab::topology::{LoadOptions, load};
use fabric_e2e::topology::product_topologies;
use serde::Deserialize as _;

fn load_product(name: &str) -> Lab {
    let (_, file) = product_topologies()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no product topology {name}"));
    let opts = LoadOptions {
        env: BTreeMap::from([("HOME".to_string(), "/root".to_string())]),
        ..LoadOptions::default()
    };
    load(&file, &opts).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

#[test]
fn the_four_product_topologies_exist() {
    let names: Vec<String> = product_topologies().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["mesh-3", "rr-6", "tor-ebgp", "vxlan-3"]);
}

#[test]
fn every_calico_node_has_its_name_its_address_on_eth1_and_the_pod_pool() {
    for (name, _) in product_topologies() {
        let lab = load_product(&name);
        let calico: Vec<_> = lab
            .nodes
            .iter()
            .filter(|n| n.role == Role::CalicoNode)
            .collect();
        assert!(
            calico.len() >= 3,
            "{name}: only {} calico-nodes",
            calico.len()
        );
        for n in calico {
            let at = format!("{name}: node {}", n.name);
            assert_eq!(n.env.get("NODENAME"), Some(&n.name), "{at}: NODENAME");
            let ip = n.env.get("IP").unwrap_or_else(|| panic!("{at}: no IP"));
            let added = format!("ip addr add {ip} dev eth1");
            assert!(
                n.exec.iter().any(|c| c.text == added),
                "{at}: IP={ip} but no `{added}` in exec"
            );
            assert_eq!(
                n.env.get("CALICO_IPV4POOL_CIDR").map(String::as_str),
                Some(fabric_e2e::POD_POOL),
                "{at}"
            );
            assert_eq!(
                n.env.get("CALICO_IPV4POOL_IPIP").map(String::as_str),
                Some("Never"),
                "{at}: this kernel has no ipip"
            );
            assert!(
                n.sysctls
                    .get("net.ipv4.ip_forward")
                    .is_some_and(|v| v == "1"),
                "{at}"
            );
        }
    }
}

#[test]
fn bgp_topologies_apply_their_resources_and_vxlan_3_runs_no_bgp() {
    for (name, expected_backend) in [
        ("mesh-3", "bird"),
        ("rr-6", "bird"),
        ("tor-ebgp", "bird"),
        ("vxlan-3", "vxlan"),
    ] {
        let lab = load_product(name);
        for n in lab.nodes.iter().filter(|n| n.role == Role::CalicoNode) {
            assert_eq!(
                n.env.get("CALICO_NETWORKING_BACKEND").map(String::as_str),
                Some(expected_backend),
                "{name}: {}",
                n.name
            );
        }
        let applies = lab
            .nodes
            .iter()
            .flat_map(|n| n.exec.iter())
            .filter(|c| {
                c.text
                    .contains("calicoctl apply -f /etc/calico/resources/bgp.yaml")
            })
            .count();
        let expected = usize::from(expected_backend == "bird");
        assert_eq!(applies, expected, "{name}: nodes applying bgp.yaml");
    }
}

#[test]
fn the_tors_of_tor_ebgp_run_bird_with_their_bound_configuration() {
    let lab = load_product("tor-ebgp");
    for tor in ["tor1", "tor2"] {
        let n = lab.node(tor).unwrap();
        assert_eq!(n.role, Role::Bird, "{tor}");
        assert_eq!(n.kind, NodeKind::Linux);
        let bind = n
            .binds
            .iter()
            .find(|b| b.target == std::path::Path::new("/etc/bird/bird.conf"))
            .unwrap_or_else(|| panic!("{tor}: bird.conf not bound"));
        let conf = std::fs::read_to_string(&bind.source).unwrap();
        assert!(
            conf.contains(&format!("router id 10.0.{}.1;", &tor[3..])),
            "{tor}"
        );
    }
    // Each rack's nodes carry the rack's AS and label themselves for the rack's BGPPeer.
    for (node, asn, rack) in [
        ("n11", "65001", "rack1"),
        ("n12", "65001", "rack1"),
        ("n21", "65002", "rack2"),
        ("n22", "65002", "rack2"),
    ] {
        let n = lab.node(node).unwrap();
        assert_eq!(n.env.get("AS").map(String::as_str), Some(asn), "{node}");
        assert!(
            n.exec
                .iter()
                .any(|c| c.text.contains(&format!("rack={rack}"))),
            "{node}: no rack label"
        );
    }
}

#[test]
fn every_resource_file_is_a_list_of_calico_v3_documents() {
    for (name, file) in product_topologies() {
        let dir = file.parent().unwrap().join("resources");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut kinds = Vec::new();
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                let v = serde_yaml_ng::Value::deserialize(doc)
                    .unwrap_or_else(|e| panic!("{name}: {}: {e}", path.display()));
                assert_eq!(
                    v["apiVersion"].as_str(),
                    Some("projectcalico.org/v3"),
                    "{}",
                    path.display()
                );
                kinds.push(v["kind"].as_str().unwrap_or_default().to_string());
            }
            assert!(
                kinds.contains(&"BGPConfiguration".to_string()),
                "{}",
                path.display()
            );
        }
    }
}
