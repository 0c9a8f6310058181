//! `PolicyState` behaviour: what one update touches, what is refused, what is never enforced.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{case_state, load};
use fabric_api::document::parse_documents;
use felix_policy::{Changes, EntityKey, IpFamily, PolicyKey, PolicyState, RenderConfig};

fn names(c: &Changes) -> BTreeSet<String> {
    let f = c.family(IpFamily::V4).unwrap();
    f.chains
        .iter()
        .map(|c| c.name.clone())
        .chain(f.removed_chains.iter().map(|n| format!("-{n}")))
        .collect()
}

fn apply(state: &mut PolicyState, yaml: &str) {
    for r in parse_documents(yaml, "test").unwrap() {
        state.apply_resource(&r).unwrap();
    }
}

const WEB: &str = "apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: node1-k8s-web-eth0
  namespace: prod
  labels: {app: LABEL}
spec:
  node: node1
  orchestrator: k8s
  pod: web
  endpoint: eth0
  interfaceName: calia1b2c3d4e5f
  ipNetworks: [10.65.0.10/32]
  profiles: [kns.prod]
  ports: [{name: http, protocol: TCP, port: 8080}]
";

#[test]
fn a_label_change_touches_only_the_endpoint_chains_and_the_sets_it_moves_between() {
    let mut state = case_state("allow_label_namespace_port", false);
    state.flush();
    // web stops being app=web: it leaves the db policy's source set; its own chains do not
    // change (no policy selects it either way).
    apply(&mut state, &WEB.replace("LABEL", "web2"));
    let c = state.flush();
    assert!(names(&c).is_empty(), "{c:?}");
    let sets = &c.family(IpFamily::V4).unwrap().ipsets;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0].removed.len(), 1);
    assert!(sets[0].added.is_empty());
    // web becomes app=db: now the db policy selects it, so its ingress chain changes.
    apply(&mut state, &WEB.replace("LABEL", "db"));
    let c = state.flush();
    assert_eq!(
        names(&c),
        BTreeSet::from(["cali-tw-calia1b2c3d4e5f".to_string()]),
        "{c:?}"
    );
}

#[test]
fn editing_a_policy_rewrites_only_its_own_chain() {
    let mut state = case_state("allow_label_namespace_port", false);
    state.flush();
    let edited = std::fs::read_to_string(common::golden_path("allow_label_namespace_port.yaml"))
        .unwrap()
        .replace("ports: [5432]", "ports: [5433]");
    load(&mut state, &edited, "edited");
    let c = state.flush();
    let n = names(&c);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(n.iter().next().unwrap().starts_with("cali-pi-_"));
    assert!(c.family(IpFamily::V4).unwrap().ipsets.is_empty());
    assert!(state.flush().is_empty());
}

#[test]
fn a_policy_that_selects_no_local_endpoint_is_not_rendered_and_makes_no_sets() {
    let mut state = case_state("no_policy", false);
    state.flush();
    apply(
        &mut state,
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: api-only}
spec:
  selector: app == 'api'
  ingress: [{action: Allow, source: {selector: app == 'web'}}]
",
    );
    assert!(state.flush().is_empty());
    assert_eq!(state.active_policy_count(), 0);
    // The remote api pod's address still fills sets of policies that are active here.
    apply(
        &mut state,
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: web-from-api}
spec:
  selector: app == 'web'
  ingress: [{action: Allow, source: {selector: app == 'api'}}]
",
    );
    let c = state.flush();
    let sets = &c.family(IpFamily::V4).unwrap().ipsets;
    assert_eq!(sets.len(), 1);
    assert!(sets[0].created);
    assert_eq!(sets[0].added[0].to_string(), "10.65.2.30/32");
}

#[test]
fn staged_policies_are_never_enforced() {
    let mut state = case_state("no_policy", false);
    state.flush();
    let r = parse_documents(
        "apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: deny-all}
spec: {selector: all(), types: [Ingress, Egress]}
",
        "t",
    )
    .unwrap();
    assert!(!state.apply_resource(&r[0]).unwrap());
    assert!(state.flush().is_empty());
}

#[test]
fn bad_input_is_refused_with_its_field_and_changes_nothing() {
    let mut state = case_state("no_policy", false);
    state.flush();
    let mut wep = parse_documents(&WEB.replace("LABEL", "web"), "t").unwrap();
    if let fabric_api::AnyResource::WorkloadEndpoint(w) = &mut wep[0] {
        w.spec.ip_networks = vec!["10.65.0.300/32".into()];
    }
    let e = state.apply_resource(&wep[0]).unwrap_err();
    assert_eq!(
        e.field,
        "WorkloadEndpoint prod/node1-k8s-web-eth0: spec.ipNetworks[0]"
    );
    let mut gnp = parse_documents(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: p}
spec: {selector: all(), ingress: [{action: Allow}]}
",
        "t",
    )
    .unwrap();
    if let fabric_api::AnyResource::GlobalNetworkPolicy(p) = &mut gnp[0] {
        p.spec.ingress[0].source.selector = "app ==".into();
    }
    let e = state.apply_resource(&gnp[0]).unwrap_err();
    assert_eq!(
        e.field,
        "GlobalNetworkPolicy p: spec.ingress[0].source.selector"
    );
    assert!(state.flush().is_empty());
}

#[test]
fn pre_dnat_and_untracked_policies_never_apply_to_workloads() {
    let mut state = case_state("no_policy", false);
    state.flush();
    apply(
        &mut state,
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: hep-only}
spec:
  selector: all()
  preDNAT: true
  applyOnForward: true
  ingress: [{action: Deny}]
",
    );
    assert!(state.flush().is_empty());
}

#[test]
fn a_missing_profile_renders_as_an_empty_chain_so_traffic_is_dropped() {
    let mut state = case_state("no_policy", false);
    state.flush();
    apply(
        &mut state,
        &WEB.replace("LABEL", "web")
            .replace("profiles: [kns.prod]", "profiles: [kns.prod, audit]"),
    );
    let c = state.flush();
    let f = c.family(IpFamily::V4).unwrap();
    let pri = f
        .chains
        .iter()
        .find(|c| c.name == "cali-pri-audit")
        .unwrap();
    assert_eq!(
        pri.rules,
        vec!["-m comment --comment \"Profile audit ingress\"".to_string()]
    );
}

#[test]
fn a_namespace_without_its_profile_gets_the_implicit_allow_all_one() {
    let mut state = case_state("allow_label_namespace_port", false);
    state.flush();
    // dev's profile carried team=tools, which the db policy's UDP rule selects.
    state.remove_profile("kns.dev");
    let c = state.flush();
    let f = c.family(IpFamily::V4).unwrap();
    assert!(f.chains.is_empty(), "same allow rules: {:?}", f.chains);
    assert_eq!(f.ipsets.len(), 1, "the client left the team=tools set");
    assert_eq!(f.ipsets[0].removed.len(), 1);
    let full = state.full();
    let pri = full[0]
        .chains
        .iter()
        .find(|c| c.name == "cali-pri-kns.dev")
        .unwrap();
    assert!(
        pri.rules[0].ends_with("-j MARK --set-xmark 0x10000/0x10000"),
        "{pri:?}"
    );
}

#[test]
fn two_endpoints_on_one_interface_render_once_and_the_survivor_takes_over() {
    let mut state = case_state("no_policy", false);
    state.flush();
    let twin = WEB
        .replace("LABEL", "web")
        .replace("pod: web", "pod: web-twin")
        .replace("node1-k8s-web-eth0", "node1-k8s-web--twin-eth0")
        .replace("kns.prod", "kns.dev")
        .replace("namespace: prod", "namespace: dev");
    apply(&mut state, &twin);
    let c = state.flush();
    // The dev twin sorts first (dev < prod), so its chains replace web's.
    assert!(names(&c).contains("cali-tw-calia1b2c3d4e5f"), "{c:?}");
    let key = EntityKey::Workload {
        namespace: "dev".into(),
        name: "node1-k8s-web--twin-eth0".into(),
    };
    state.remove_entity(&key);
    let c = state.flush();
    let tw = c
        .family(IpFamily::V4)
        .unwrap()
        .chains
        .iter()
        .find(|c| c.name == "cali-tw-calia1b2c3d4e5f")
        .unwrap();
    assert!(
        tw.rules.iter().any(|r| r.contains("cali-pri-kns.prod")),
        "{tw:?}"
    );
    assert_eq!(state.local_endpoint_count(), 3);
}

#[test]
fn removing_everything_leaves_only_the_fixed_and_empty_dispatch_chains() {
    let mut state = case_state("k8s_examples", false);
    state.flush();
    let mut empty = PolicyState::new(RenderConfig::new("node1")).unwrap();
    let want = empty.full();
    for ns in ["prod", "dev"] {
        state.remove_profile(&format!("kns.{ns}"));
    }
    for (ns, n) in [
        ("prod", "node1-k8s-web-eth0"),
        ("prod", "node1-k8s-db-eth0"),
        ("dev", "node1-k8s-client-eth0"),
        ("prod", "node2-k8s-api-eth0"),
    ] {
        state.remove_entity(&EntityKey::Workload {
            namespace: ns.into(),
            name: n.into(),
        });
    }
    state.remove_entity(&EntityKey::Host {
        name: "node2-eth0".into(),
    });
    state.remove_entity(&EntityKey::GlobalNetworkSet {
        name: "partners".into(),
    });
    for (ns, n) in [
        ("prod", "default-deny-ingress"),
        ("prod", "test-network-policy"),
        ("prod", "web-from-dev"),
        ("dev", "client-egress-range"),
    ] {
        state.remove_policy(&PolicyKey::namespaced(ns, format!("knp.default.{n}")));
    }
    let c = state.flush();
    assert!(!c.family(IpFamily::V4).unwrap().removed_ipsets.is_empty());
    assert_eq!(state.full(), want);
}

#[test]
fn a_policy_in_a_tier_that_does_not_exist_sorts_after_existing_tiers() {
    let mut state = case_state("order_two_tiers", false);
    apply(
        &mut state,
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: ghost.p}
spec: {tier: ghost, order: 1, selector: app == 'web', ingress: [{action: Allow}]}
",
    );
    let full = state.full();
    let tw = full[0]
        .chains
        .iter()
        .find(|c| c.name == "cali-tw-calia1b2c3d4e5f")
        .unwrap();
    let tiers: Vec<&String> = tw
        .rules
        .iter()
        .filter(|r| r.contains("Start of tier"))
        .collect();
    assert_eq!(tiers.len(), 3);
    assert!(
        tiers[0].contains("platform") && tiers[1].contains("default") && tiers[2].contains("ghost")
    );
}

#[test]
fn reconfiguring_rewrites_what_the_settings_change_and_adds_or_drops_a_family() {
    let mut state = case_state("pass_log", false);
    state.flush();
    let mut config = state.config().clone();
    config.endpoint_to_host_action = felix_policy::EndpointToHostAction::Drop;
    config.log_prefix = "pol".into();
    config.ipv6 = true;
    state.reconfigure(config.clone()).unwrap();
    let c = state.flush();
    let v4 = c.family(IpFamily::V4).unwrap();
    let v4_names: BTreeSet<&str> = v4.chains.iter().map(|c| c.name.as_str()).collect();
    assert!(v4_names.contains("cali-wl-to-host"), "{v4_names:?}");
    assert_eq!(
        v4.chains.len(),
        2,
        "wl-to-host and the chain with Log rules: {v4_names:?}"
    );
    assert!(v4.ipsets.is_empty());
    let v6 = c.family(IpFamily::V6).unwrap();
    assert!(v6.chains.len() > 10 && !v6.ipsets.is_empty());
    let mut again = PolicyState::new(config.clone()).unwrap();
    load(
        &mut again,
        &std::fs::read_to_string(common::golden_path("base.yaml")).unwrap(),
        "base",
    );
    load(
        &mut again,
        &std::fs::read_to_string(common::golden_path("pass_log.yaml")).unwrap(),
        "case",
    );
    assert_eq!(state.full(), again.full());
    config.ipv6 = false;
    state.reconfigure(config).unwrap();
    let c = state.flush();
    let v6 = c.family(IpFamily::V6).unwrap();
    assert!(v6.chains.is_empty() && v6.removed_chains.len() > 10);
    assert!(!v6.removed_ipsets.is_empty());
    assert!(c.family(IpFamily::V4).unwrap().is_empty());
    let bad = RenderConfig {
        mark_pass: 0x30000,
        ..RenderConfig::new("node1")
    };
    assert!(state.reconfigure(bad).is_err());
    assert!(state.flush().is_empty());
}
