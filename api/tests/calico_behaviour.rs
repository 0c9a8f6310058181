//! Where Calico's behaviour is surprising, this crate does what Calico does; each test here
//! pins one such behaviour (and the defaults Calico fills in).
#![allow(clippy::unwrap_used)]

use fabric_api::document::parse_documents;
use fabric_api::rule::Action;
use fabric_api::{AnyResource, PolicyType, Resource};

fn one(yaml: &str) -> Result<AnyResource, String> {
    let text = format!("apiVersion: projectcalico.org/v3\n{yaml}");
    parse_documents(&text, "t.yaml")
        .map(|mut v| v.remove(0))
        .map_err(|e| e.to_string())
}

fn ok<R: Resource>(yaml: &str) -> R {
    one(yaml)
        .unwrap_or_else(|e| panic!("{e}"))
        .downcast()
        .unwrap()
}

#[test]
fn policy_names_need_no_tier_prefix() {
    // Calico (v3.30+) has no name-format requirement tying names to tiers.
    for (name, tier) in [
        ("netpol", "security"),
        ("tier1.netpol", "tier2"),
        ("default.x", "default"),
    ] {
        let yaml = format!(
            "kind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec: {{tier: {tier}}}"
        );
        assert!(one(&yaml).is_ok(), "{name} in {tier}");
    }
}

#[test]
fn policies_get_the_default_tier_and_a_tier_label() {
    let p: fabric_api::NetworkPolicy =
        ok("kind: NetworkPolicy\nmetadata: {name: p, namespace: ns}\nspec: {}");
    assert_eq!(p.spec.tier, "default");
    assert_eq!(
        p.metadata
            .labels
            .get("projectcalico.org/tier")
            .map(String::as_str),
        Some("default")
    );
}

#[test]
fn policy_types_are_inferred_from_the_rules() {
    let cases = [
        ("{}", vec![PolicyType::Ingress]),
        ("{ingress: [{action: Allow}]}", vec![PolicyType::Ingress]),
        ("{egress: [{action: Allow}]}", vec![PolicyType::Egress]),
        (
            "{ingress: [{action: Allow}], egress: [{action: Allow}]}",
            vec![PolicyType::Ingress, PolicyType::Egress],
        ),
        // Explicit types are kept.
        (
            "{types: [Egress], ingress: [{action: Allow}]}",
            vec![PolicyType::Egress],
        ),
    ];
    for (spec, types) in cases {
        let p: fabric_api::GlobalNetworkPolicy = ok(&format!(
            "kind: GlobalNetworkPolicy\nmetadata: {{name: p}}\nspec: {spec}"
        ));
        assert_eq!(p.spec.types, types, "{spec}");
    }
}

#[test]
fn a_staged_delete_infers_no_types() {
    let p: fabric_api::StagedNetworkPolicy = ok(
        "kind: StagedNetworkPolicy\nmetadata: {name: p, namespace: ns}\nspec: {stagedAction: Delete}",
    );
    assert!(p.spec.types.is_empty());
    let p: fabric_api::StagedNetworkPolicy =
        ok("kind: StagedNetworkPolicy\nmetadata: {name: p, namespace: ns}\nspec: {}");
    assert_eq!(
        p.spec.staged_action,
        Some(fabric_api::policy::StagedAction::Set)
    );
    assert_eq!(p.spec.types, vec![PolicyType::Ingress]);
}

#[test]
fn rule_nets_need_a_prefix_length_but_network_sets_do_not() {
    // Calico's rule check parses nets strictly as CIDRs, while network sets accept bare
    // addresses and even host bits.
    let rule = one(
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  egress: [{action: Deny, destination: {nets: [10.0.0.1]}}]",
    );
    assert!(
        rule.unwrap_err()
            .contains("spec.egress[0].destination.nets[0]: \"10.0.0.1\" is not a CIDR")
    );
    assert!(
        one("kind: GlobalNetworkSet\nmetadata: {name: s}\nspec: {nets: [10.0.0.1, 10.0.0.1/8]}")
            .is_ok()
    );
}

#[test]
fn a_catch_all_negated_net_is_refused() {
    let e = one("kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  egress: [{action: Deny, destination: {notNets: [0.0.0.0/0]}}]").unwrap_err();
    assert!(e.contains("matches no traffic"), "{e}");
}

#[test]
fn protocol_names_are_case_sensitive_and_zero_is_not_a_protocol() {
    let lower = one(
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress: [{action: Allow, protocol: udp}]",
    );
    assert!(lower.unwrap_err().contains("did you mean UDP?"));
    let zero = one(
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress: [{action: Allow, protocol: 0}]",
    );
    assert!(zero.unwrap_err().contains("protocol numbers are 1-255"));
    let numeric: fabric_api::GlobalNetworkPolicy = ok(
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress: [{action: Allow, protocol: '17', destination: {ports: [53]}}]",
    );
    assert_eq!(
        numeric.spec.ingress[0].protocol,
        Some(fabric_api::Protocol::Number(17))
    );
}

#[test]
fn named_ports_need_no_protocol_but_numeric_ports_do() {
    assert!(one("kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress: [{action: Allow, destination: {ports: [http]}}]").is_ok());
    assert!(one("kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress: [{action: Allow, destination: {ports: [80]}}]").is_err());
}

#[test]
fn a_kube_admin_tier_without_an_order_fails_validation() {
    // Calico defaults every missing tier order to 1000000, then requires 1000 for kube-admin.
    let e =
        one("kind: Tier\nmetadata: {name: kube-admin}\nspec: {defaultAction: Pass}").unwrap_err();
    assert!(
        e.contains("spec.order: \"1000000\" must be 1000 for the built-in kube-admin tier"),
        "{e}"
    );
    assert!(
        one("kind: Tier\nmetadata: {name: kube-admin}\nspec: {order: 1000, defaultAction: Pass}")
            .is_ok()
    );
    let t: fabric_api::Tier = ok("kind: Tier\nmetadata: {name: app}\nspec: {}");
    assert_eq!(t.spec.order, Some(1_000_000.0));
    assert_eq!(t.spec.default_action, Some(Action::Deny));
}

#[test]
fn bgp_configurations_may_have_any_name() {
    // Only `default` and `node.<name>` have an effect, but Calico accepts other names.
    assert!(
        one("kind: BGPConfiguration\nmetadata: {name: my-config}\nspec: {listenPort: 1179}")
            .is_ok()
    );
}

#[test]
fn bgp_configuration_crd_defaults_apply_to_per_node_configurations_too() {
    let c: fabric_api::BGPConfiguration =
        ok("kind: BGPConfiguration\nmetadata: {name: node.n1}\nspec: {}");
    assert_eq!(c.spec.log_severity_screen, "Info");
    assert_eq!(
        c.spec.service_load_balancer_aggregation,
        Some(fabric_api::bgp::config::ServiceLoadBalancerAggregation::Enabled)
    );
    assert_eq!(c.node_name(), Some("n1"));
    // Fields Calico leaves unset stay unset; their effective values are exposed.
    assert_eq!(c.spec.as_number, None);
    assert_eq!(c.spec.node_to_node_mesh_enabled, None);
    assert_eq!(c.spec.effective_as_number(), fabric_api::DEFAULT_AS_NUMBER);
    assert_eq!(fabric_api::DEFAULT_AS_NUMBER, 64512);
    assert!(c.spec.effective_node_to_node_mesh_enabled());
    assert_eq!(c.spec.effective_listen_port(), 179);
}

#[test]
fn a_zero_listen_port_or_block_size_means_the_default() {
    let c: fabric_api::BGPConfiguration =
        ok("kind: BGPConfiguration\nmetadata: {name: default}\nspec: {listenPort: 0}");
    assert_eq!(c.spec.listen_port, None);
    let p: fabric_api::IPPool =
        ok("kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, blockSize: 0}");
    assert_eq!(p.spec.block_size, Some(26));
}

#[test]
fn a_disabled_pool_may_be_smaller_than_a_block() {
    assert!(one("kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/28}").is_err());
    assert!(
        one("kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/28, disabled: true}").is_ok()
    );
}

#[test]
fn ipam_configuration_defaults_and_effective_values() {
    let c: fabric_api::IPAMConfiguration =
        ok("kind: IPAMConfiguration\nmetadata: {name: default}\nspec: {}");
    assert_eq!(c.spec.strict_affinity, Some(false));
    assert_eq!(c.spec.auto_allocate_blocks, Some(true));
    assert_eq!(c.spec.max_blocks_per_host, Some(0));
    assert_eq!(c.spec.effective_max_blocks_per_host(), 20);
    let c: fabric_api::IPAMConfiguration =
        ok("kind: IPAMConfiguration\nmetadata: {name: default}\nspec: {maxBlocksPerHost: 4}");
    assert_eq!(c.spec.effective_max_blocks_per_host(), 4);
}

#[test]
fn node_addresses_may_carry_a_subnet() {
    // Calico's own Kubernetes conversion writes `10.0.0.11/24` here; its validator would refuse
    // it, so exported Nodes could not be applied back. This crate accepts any address or CIDR.
    assert!(one("kind: Node\nmetadata: {name: n1}\nspec: {addresses: [{address: 10.0.0.11/24, type: CalicoNodeIP}]}").is_ok());
}

#[test]
fn a_workload_endpoint_without_a_name_is_named_from_its_spec() {
    let w: fabric_api::WorkloadEndpoint = ok(
        "kind: WorkloadEndpoint\nmetadata: {namespace: ns}\nspec: {orchestrator: k8s, node: node-1, pod: web-0, endpoint: eth0, interfaceName: cali1}",
    );
    assert_eq!(w.name(), "node--1-k8s-web--0-eth0");
}

#[test]
fn felix_configuration_fields_stay_unset() {
    let f: fabric_api::FelixConfiguration =
        ok("kind: FelixConfiguration\nmetadata: {name: default}\nspec: {}");
    assert_eq!(f.spec, fabric_api::FelixConfigurationSpec::default());
    let yaml = serde_yaml_ng::to_string(&f).unwrap();
    assert!(yaml.ends_with("spec: {}\n"), "{yaml}");
}

#[test]
fn the_namespace_selector_may_be_global_alone() {
    assert!(one("kind: NetworkPolicy\nmetadata: {name: p, namespace: ns}\nspec:\n  ingress: [{action: Allow, source: {namespaceSelector: global()}}]").is_ok());
    let e = one("kind: NetworkPolicy\nmetadata: {name: p, namespace: ns}\nspec:\n  ingress: [{action: Allow, source: {namespaceSelector: global() && has(a)}}]").unwrap_err();
    assert!(e.contains("cannot be combined"), "{e}");
}

#[test]
fn a_host_endpoint_may_cover_every_interface() {
    assert!(
        one("kind: HostEndpoint\nmetadata: {name: all}\nspec: {node: n1, interfaceName: '*'}")
            .is_ok()
    );
}

#[test]
fn a_peer_selector_takes_the_as_from_the_selected_nodes() {
    let e = one("kind: BGPPeer\nmetadata: {name: p}\nspec: {peerSelector: all(), asNumber: 65001}")
        .unwrap_err();
    assert!(
        e.contains("spec.asNumber: must be empty when peerSelector is set"),
        "{e}"
    );
}

#[test]
fn the_deprecated_keep_original_next_hop_still_means_keep() {
    let p: fabric_api::BGPPeer = ok(
        "kind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 65001, keepOriginalNextHop: true}",
    );
    assert_eq!(
        p.spec.effective_next_hop_mode(),
        fabric_api::bgp::peer::NextHopMode::Keep
    );
}
