//! Every kind round-trips: a realistic manifest parses, serializes with `apiVersion` and
//! `kind` first and without unset fields, and parses back to an equal value.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use fabric_api::document::parse_documents;
use fabric_api::{AnyResource, Kind};

fn manifest(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_ok(text: &str, source: &str) -> Vec<AnyResource> {
    parse_documents(text, source).unwrap_or_else(|e| panic!("{source} did not parse:\n{e}"))
}

/// Serializes to YAML the way `calicoctl get -o yaml` would print one resource.
fn to_yaml(r: &AnyResource) -> String {
    serde_yaml_ng::to_string(r).unwrap()
}

const FILES: [(&str, Kind); 18] = [
    ("ippool.yaml", Kind::IPPool),
    ("ipreservation.yaml", Kind::IPReservation),
    ("ipamconfiguration.yaml", Kind::IPAMConfiguration),
    ("bgpconfiguration.yaml", Kind::BGPConfiguration),
    ("bgppeer.yaml", Kind::BGPPeer),
    ("bgpfilter.yaml", Kind::BGPFilter),
    ("node.yaml", Kind::Node),
    ("felixconfiguration.yaml", Kind::FelixConfiguration),
    ("tier.yaml", Kind::Tier),
    ("networkpolicy.yaml", Kind::NetworkPolicy),
    ("globalnetworkpolicy.yaml", Kind::GlobalNetworkPolicy),
    ("stagednetworkpolicy.yaml", Kind::StagedNetworkPolicy),
    (
        "stagedglobalnetworkpolicy.yaml",
        Kind::StagedGlobalNetworkPolicy,
    ),
    ("networkset.yaml", Kind::NetworkSet),
    ("globalnetworkset.yaml", Kind::GlobalNetworkSet),
    ("hostendpoint.yaml", Kind::HostEndpoint),
    ("workloadendpoint.yaml", Kind::WorkloadEndpoint),
    ("profile.yaml", Kind::Profile),
];

#[test]
fn there_is_a_manifest_for_every_kind() {
    let covered: BTreeSet<Kind> = FILES.iter().map(|(_, k)| *k).collect();
    assert_eq!(covered, Kind::ALL.into_iter().collect());
}

#[test]
fn every_kind_round_trips_through_yaml() {
    for (file, kind) in FILES {
        let first = parse_ok(&manifest(file), file);
        assert!(!first.is_empty(), "{file}");
        for r in &first {
            assert_eq!(r.kind(), kind, "{file}");
            let yaml = to_yaml(r);
            let again = parse_ok(&yaml, file);
            assert_eq!(again, vec![r.clone()], "{file}: round trip changed\n{yaml}");
        }
    }
}

#[test]
fn every_kind_round_trips_through_json() {
    for (file, _) in FILES {
        for r in parse_ok(&manifest(file), file) {
            let json = serde_json::to_string_pretty(&r).unwrap();
            assert_eq!(parse_ok(&json, file), vec![r.clone()], "{file}\n{json}");
            // The serde impls on their own agree too.
            let back: AnyResource = serde_json::from_str(&json).unwrap();
            assert_eq!(back, r, "{file}");
        }
    }
}

#[test]
fn output_starts_with_api_version_and_kind() {
    for (file, kind) in FILES {
        for r in parse_ok(&manifest(file), file) {
            let yaml = to_yaml(&r);
            let mut lines = yaml.lines();
            assert_eq!(
                lines.next(),
                Some("apiVersion: projectcalico.org/v3"),
                "{file}"
            );
            assert_eq!(
                lines.next(),
                Some(format!("kind: {kind}").as_str()),
                "{file}"
            );
            assert_eq!(lines.next(), Some("metadata:"), "{file}");
        }
    }
}

#[test]
fn unset_fields_are_omitted_from_output() {
    let text = "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\n\
                spec:\n  peerIP: 10.0.0.1\n  asNumber: 65001\n";
    let r = parse_ok(text, "peer.yaml");
    let json = serde_json::to_value(&r[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "apiVersion": "projectcalico.org/v3",
            "kind": "BGPPeer",
            "metadata": {"name": "p"},
            "spec": {"peerIP": "10.0.0.1", "asNumber": 65001}
        })
    );
}

#[test]
fn ippool_defaults_appear_after_set_defaults() {
    let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\n\
                spec: {cidr: 10.1.0.0/16}\n---\n\
                apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p6}\n\
                spec: {cidr: 'fd00:0:0:1::/64'}\n";
    let pools = parse_ok(text, "pools.yaml");
    let v4 = serde_json::to_value(&pools[0]).unwrap();
    assert_eq!(
        v4["spec"],
        serde_json::json!({
            "cidr": "10.1.0.0/16",
            "vxlanMode": "Never",
            "ipipMode": "Never",
            "blockSize": 26,
            "nodeSelector": "all()",
            "allowedUses": ["Workload", "Tunnel"],
            "assignmentMode": "Automatic"
        })
    );
    let v6 = serde_json::to_value(&pools[1]).unwrap();
    // Calico stores the canonical form of an IPv6 CIDR.
    assert_eq!(v6["spec"]["cidr"], "fd00:0:0:1::/64");
    assert_eq!(v6["spec"]["blockSize"], 122);
}

#[test]
fn ipv6_pool_cidrs_are_stored_in_canonical_form() {
    let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p6}\n\
                spec: {cidr: 'FD00:0:0:0::/48'}\n";
    let pools = parse_ok(text, "pool.yaml");
    let AnyResource::IPPool(p) = &pools[0] else {
        panic!("not a pool")
    };
    assert_eq!(p.spec.cidr, "fd00::/48");
}

#[test]
fn defaults_are_idempotent() {
    for (file, _) in FILES {
        for r in parse_ok(&manifest(file), file) {
            let mut again = r.clone();
            again.set_defaults();
            assert_eq!(again, r, "{file}");
        }
    }
}

#[test]
fn selectors_are_kept_exactly_as_written() {
    let text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\n\
                spec:\n  selector: \"app=='db'  &&  !has(legacy)\"\n";
    let r = parse_ok(text, "gnp.yaml");
    let yaml = to_yaml(&r[0]);
    assert!(yaml.contains("app=='db'  &&  !has(legacy)"), "{yaml}");
}

#[test]
fn durations_and_ports_serialize_as_written() {
    let r = parse_ok(&manifest("bgppeer.yaml"), "bgppeer.yaml");
    let yaml = to_yaml(&r[0]);
    assert!(yaml.contains("keepaliveTime: 10s"), "{yaml}");
    assert!(yaml.contains("maxRestartTime: 120s"), "{yaml}");
    let r = parse_ok(&manifest("networkpolicy.yaml"), "networkpolicy.yaml");
    let json = serde_json::to_value(&r[0]).unwrap();
    assert_eq!(
        json["spec"]["ingress"][0]["destination"]["ports"],
        serde_json::json!([5432, "6000:6010", "metrics"])
    );
    assert_eq!(json["spec"]["order"], 100);
}

#[test]
fn typed_lists_serialize_as_calicoctl_lists() {
    let pools: Vec<fabric_api::IPPool> = parse_ok(&manifest("ippool.yaml"), "ippool.yaml")
        .into_iter()
        .map(|r| r.downcast().unwrap())
        .collect();
    let list = fabric_api::IPPoolList {
        metadata: fabric_api::ListMeta {
            resource_version: Some("42".into()),
            ..Default::default()
        },
        items: pools.clone(),
    };
    let yaml = serde_yaml_ng::to_string(&list).unwrap();
    assert!(
        yaml.starts_with("apiVersion: projectcalico.org/v3\nkind: IPPoolList\n"),
        "{yaml}"
    );
    let back = parse_ok(&yaml, "list.yaml");
    assert_eq!(back.len(), 2);
    let typed: fabric_api::IPPoolList = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(typed, list);
}
