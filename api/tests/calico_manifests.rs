//! Calico-style manifests, as users keep them and as calicoctl and kubectl print them, parse
//! unchanged.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use fabric_api::document::parse_documents;
use fabric_api::{AnyResource, Kind, Resource};

fn manifest(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests")
        .join(name);
    std::fs::read_to_string(&path).unwrap()
}

fn kinds(rs: &[AnyResource]) -> Vec<(Kind, String)> {
    rs.iter()
        .map(|r| (r.kind(), r.name().to_string()))
        .collect()
}

#[test]
fn the_calico_reference_examples_parse_unchanged() {
    let rs = parse_documents(&manifest("calico-style.yaml"), "calico-style.yaml")
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = [
        (Kind::IPPool, "pool-a"),
        (Kind::BGPPeer, "node-1-tor"),
        (Kind::BGPPeer, "to-route-reflectors"),
        (Kind::BGPConfiguration, "default"),
        (Kind::Node, "node-1"),
        (Kind::NetworkPolicy, "db-from-web"),
        (Kind::GlobalNetworkPolicy, "db-from-web"),
        (Kind::WorkloadEndpoint, "node1-k8s-web--7d4b9-eth0"),
        (Kind::HostEndpoint, "node-1-eth0"),
        (Kind::FelixConfiguration, "default"),
        (Kind::IPAMConfiguration, "default"),
        (Kind::BGPFilter, "tor-filter"),
    ];
    let expected: Vec<(Kind, String)> = expected.iter().map(|(k, n)| (*k, n.to_string())).collect();
    assert_eq!(kinds(&rs), expected);
}

#[test]
fn parsed_values_are_typed() {
    let rs = parse_documents(&manifest("calico-style.yaml"), "calico-style.yaml").unwrap();
    let cfg: fabric_api::BGPConfiguration = rs[3].clone().downcast().unwrap();
    assert_eq!(cfg.spec.effective_as_number(), 64512);
    assert_eq!(
        cfg.spec
            .node_mesh_max_restart_time
            .as_ref()
            .unwrap()
            .to_std(),
        Some(std::time::Duration::from_secs(120))
    );
    let peer: fabric_api::BGPPeer = rs[1].clone().downcast().unwrap();
    assert_eq!(
        peer.spec.parsed_peer_ip(),
        Some(("10.0.0.1".parse().unwrap(), None))
    );
    assert!(!peer.spec.is_global());
    let np: fabric_api::NetworkPolicy = rs[5].clone().downcast().unwrap();
    assert_eq!(np.namespace(), Some("prod"));
    assert_eq!(
        np.spec.ingress[0].destination.ports,
        vec![fabric_api::Port::Single(5432)]
    );
    assert_eq!(np.spec.ingress[0].protocol, Some(fabric_api::Protocol::Tcp));
    let node: fabric_api::Node = rs[4].clone().downcast().unwrap();
    let v4 = node.spec.bgp.as_ref().unwrap().ipv4_cidr().unwrap();
    assert_eq!(v4.prefix_len, 24);
}

#[test]
fn calicoctl_get_output_with_server_metadata_parses() {
    let rs = parse_documents(&manifest("calicoctl-get-output.yaml"), "get.yaml")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        kinds(&rs),
        vec![
            (Kind::IPPool, "default-ipv4-ippool".to_string()),
            (Kind::BGPPeer, "rr-clients".to_string())
        ]
    );
    let meta = rs[0].metadata();
    assert_eq!(meta.resource_version.as_deref(), Some("1234"));
    assert_eq!(
        meta.creation_timestamp.as_deref(),
        Some("2024-05-02T09:14:27Z")
    );
    assert_eq!(rs[1].metadata().creation_timestamp, None);
}

#[test]
fn a_kubernetes_list_in_json_with_tabs_parses() {
    let rs = parse_documents(&manifest("kubectl-list.json"), "list.json")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        kinds(&rs),
        vec![
            (Kind::GlobalNetworkSet, "threat-feed".to_string()),
            (Kind::Tier, "platform".to_string())
        ]
    );
}

#[test]
fn a_top_level_sequence_of_resources_parses() {
    let text = "- apiVersion: projectcalico.org/v3\n  kind: Tier\n  metadata: {name: a}\n  spec: {order: 1}\n\
                - apiVersion: projectcalico.org/v3\n  kind: Tier\n  metadata: {name: b}\n  spec: {order: 2}\n";
    let rs = parse_documents(text, "seq.yaml").unwrap();
    assert_eq!(rs.len(), 2);
    let json = r#"[{"apiVersion":"projectcalico.org/v3","kind":"Profile","metadata":{"name":"kns.a"},"spec":{}}]"#;
    assert_eq!(parse_documents(json, "seq.json").unwrap().len(), 1);
}

#[test]
fn yaml_anchors_and_merge_keys_work_within_a_document() {
    let text = "- apiVersion: projectcalico.org/v3\n  kind: BGPPeer\n  metadata: {name: a}\n\
                \x20 spec: &tor\n    peerIP: 10.0.0.1\n    asNumber: 65001\n    keepaliveTime: 5s\n\
                - apiVersion: projectcalico.org/v3\n  kind: BGPPeer\n  metadata: {name: b}\n\
                \x20 spec:\n    <<: *tor\n    peerIP: 10.0.0.2\n";
    let rs = parse_documents(text, "anchors.yaml").unwrap_or_else(|e| panic!("{e}"));
    let b: fabric_api::BGPPeer = rs[1].clone().downcast().unwrap();
    assert_eq!(b.spec.peer_ip, "10.0.0.2");
    assert_eq!(b.spec.keepalive_time.unwrap().as_str(), "5s");
}

#[test]
fn as_numbers_in_asdot_and_quoted_forms_are_accepted() {
    let text = "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: a}\n\
                spec: {peerIP: 10.0.0.1, asNumber: '1.10', localASNumber: '64513'}\n";
    let rs = parse_documents(text, "asdot.yaml").unwrap();
    let p: fabric_api::BGPPeer = rs[0].clone().downcast().unwrap();
    assert_eq!(p.spec.as_number, Some(fabric_api::ASNumber(65546)));
    assert_eq!(p.spec.local_as_number, Some(fabric_api::ASNumber(64513)));
}

#[test]
fn a_quoted_negated_selector_is_kept() {
    let rs = parse_documents(&manifest("calicoctl-get-output.yaml"), "get.yaml").unwrap();
    let p: fabric_api::BGPPeer = rs[1].clone().downcast().unwrap();
    assert_eq!(p.spec.node_selector, "!has(route-reflector)");
}

#[test]
fn resources_keep_their_order_across_documents() {
    let mut text = String::new();
    for f in ["tier.yaml", "ippool.yaml", "profile.yaml"] {
        text.push_str(&manifest(f));
        text.push_str("\n---\n");
    }
    let rs = parse_documents(&text, "all.yaml").unwrap();
    let order: Vec<Kind> = rs.iter().map(AnyResource::kind).collect();
    assert_eq!(
        order,
        vec![
            Kind::Tier,
            Kind::Tier,
            Kind::IPPool,
            Kind::IPPool,
            Kind::Profile
        ]
    );
}

#[test]
fn the_resource_trait_reaches_metadata_through_any_kind() {
    let rs = parse_documents(&manifest("workloadendpoint.yaml"), "wep.yaml").unwrap();
    let wep: fabric_api::WorkloadEndpoint = rs[0].clone().downcast().unwrap();
    assert_eq!(
        <fabric_api::WorkloadEndpoint as Resource>::KIND,
        Kind::WorkloadEndpoint
    );
    assert_eq!(wep.name(), "node1-k8s-web--7d4b9-eth0");
    assert_eq!(wep.spec.expected_name().unwrap(), wep.name());
    assert!(
        wep.clone()
            .into_any()
            .downcast::<fabric_api::IPPool>()
            .is_err()
    );
}
