//! Kubernetes NetworkPolicy translation, case by case against the examples of the Kubernetes
//! documentation and Calico's translation rules, and the API server's validation.

#![allow(clippy::unwrap_used)]

use fabric_api::k8s::KubernetesNetworkPolicy;
use fabric_api::rule::EntityRule;
use fabric_api::{Action, NetworkPolicy, PolicyType, Port, Protocol, Rule};

fn translate(yaml: &str) -> NetworkPolicy {
    KubernetesNetworkPolicy::from_yaml(yaml)
        .unwrap()
        .to_calico()
        .unwrap()
}

fn errors(yaml: &str) -> Vec<(String, String)> {
    KubernetesNetworkPolicy::from_yaml(yaml)
        .unwrap()
        .to_calico()
        .unwrap_err()
        .into_iter()
        .map(|e| (e.field, e.value))
        .collect()
}

const K8S: &str = "projectcalico.org/orchestrator == 'k8s'";

fn header(name: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: default}}\n"
    )
}

fn allow(protocol: Option<Protocol>, source: EntityRule, destination: EntityRule) -> Rule {
    let mut r = Rule::new(Action::Allow);
    r.protocol = protocol;
    r.source = source;
    r.destination = destination;
    r
}

fn ports(p: &[Port]) -> EntityRule {
    EntityRule {
        ports: p.to_vec(),
        ..EntityRule::default()
    }
}

#[test]
fn default_deny_ingress_selects_every_pod_and_allows_nothing_in() {
    let p = translate(
        &(header("default-deny-ingress") + "spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n"),
    );
    assert_eq!(p.metadata.name_str(), "knp.default.default-deny-ingress");
    assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(p.spec.tier, "default");
    assert_eq!(p.spec.order, Some(1000.0));
    assert_eq!(p.spec.selector, K8S);
    assert_eq!(p.spec.types, vec![PolicyType::Ingress]);
    assert!(p.spec.ingress.is_empty() && p.spec.egress.is_empty());
}

#[test]
fn allow_all_ingress_is_one_rule_without_criteria() {
    let p = translate(
        &(header("allow-all-ingress")
            + "spec:\n  podSelector: {}\n  ingress: [{}]\n  policyTypes: [Ingress]\n"),
    );
    assert_eq!(p.spec.ingress, vec![Rule::new(Action::Allow)]);
}

#[test]
fn default_deny_egress_and_allow_all_egress() {
    let deny = translate(
        &(header("default-deny-egress") + "spec:\n  podSelector: {}\n  policyTypes: [Egress]\n"),
    );
    assert_eq!(deny.spec.types, vec![PolicyType::Egress]);
    assert!(deny.spec.egress.is_empty());
    let allow_all = translate(
        &(header("allow-all-egress")
            + "spec:\n  podSelector: {}\n  egress: [{}]\n  policyTypes: [Egress]\n"),
    );
    assert_eq!(allow_all.spec.egress, vec![Rule::new(Action::Allow)]);
}

#[test]
fn default_deny_all_covers_both_directions() {
    let p = translate(
        &(header("default-deny-all")
            + "spec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"),
    );
    assert_eq!(p.spec.types, vec![PolicyType::Ingress, PolicyType::Egress]);
}

#[test]
fn the_documentation_example_becomes_one_rule_per_peer() {
    let p = translate(
        &(header("test-network-policy")
            + r#"spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
"#),
    );
    assert_eq!(p.spec.selector, format!("{K8S} && role == 'db'"));
    let tcp = Some(Protocol::Tcp);
    let redis = ports(&[Port::Single(6379)]);
    assert_eq!(
        p.spec.ingress,
        vec![
            allow(
                tcp,
                EntityRule {
                    nets: vec!["172.17.0.0/16".into()],
                    not_nets: vec!["172.17.1.0/24".into()],
                    ..EntityRule::default()
                },
                redis.clone()
            ),
            allow(
                tcp,
                EntityRule {
                    selector: K8S.into(),
                    namespace_selector: "project == 'myproject'".into(),
                    ..EntityRule::default()
                },
                redis.clone()
            ),
            allow(
                tcp,
                EntityRule {
                    selector: format!("{K8S} && role == 'frontend'"),
                    ..EntityRule::default()
                },
                redis
            ),
        ]
    );
    assert_eq!(
        p.spec.egress,
        vec![allow(
            tcp,
            EntityRule::default(),
            EntityRule {
                nets: vec!["10.0.0.0/24".into()],
                ports: vec![Port::Single(5978)],
                ..EntityRule::default()
            }
        )]
    );
}

#[test]
fn namespace_and_pod_selector_in_one_peer_are_anded() {
    let p = translate(
        &(header("and")
            + "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {user: alice}}\n      podSelector: {matchLabels: {role: client}}\n"),
    );
    assert_eq!(p.spec.ingress.len(), 1);
    let s = &p.spec.ingress[0].source;
    assert_eq!(s.selector, format!("{K8S} && role == 'client'"));
    assert_eq!(s.namespace_selector, "user == 'alice'");
}

#[test]
fn an_empty_namespace_selector_means_every_namespace() {
    let p = translate(
        &(header("all-ns")
            + "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector: {}\n"),
    );
    assert_eq!(p.spec.ingress[0].source.namespace_selector, "all()");
    assert_eq!(p.spec.ingress[0].source.selector, K8S);
}

#[test]
fn end_port_makes_a_range_and_ports_of_a_protocol_are_merged() {
    let p = translate(
        &(header("ranges")
            + "spec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/24}}]\n    ports:\n    - {protocol: TCP, port: 32000, endPort: 32768}\n"),
    );
    assert_eq!(
        p.spec.egress[0].destination.ports,
        vec![Port::Range {
            min: 32000,
            max: 32768
        }]
    );
    let merged = translate(
        &(header("merged")
            + "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 82}, {port: 80}, {port: 81}, {port: 443}, {port: http}]\n"),
    );
    assert_eq!(
        merged.spec.ingress[0].destination.ports,
        vec![
            Port::Named("http".into()),
            Port::Range { min: 80, max: 82 },
            Port::Single(443)
        ]
    );
    assert_eq!(merged.spec.ingress[0].protocol, Some(Protocol::Tcp));
}

#[test]
fn each_protocol_gets_its_own_rule_and_a_protocol_without_port_matches_all_its_ports() {
    let p = translate(
        &(header("protocols")
            + "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}, {protocol: SCTP}]\n"),
    );
    let got: Vec<(Option<Protocol>, Vec<Port>)> = p
        .spec
        .ingress
        .iter()
        .map(|r| (r.protocol, r.destination.ports.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(Protocol::Sctp), vec![]),
            (Some(Protocol::Tcp), vec![Port::Single(53)]),
            (Some(Protocol::Udp), vec![Port::Single(53)]),
        ]
    );
}

#[test]
fn omitted_policy_types_are_ingress_plus_egress_when_there_are_egress_rules() {
    let i = translate(&(header("i") + "spec:\n  podSelector: {}\n  ingress: [{}]\n"));
    assert_eq!(i.spec.types, vec![PolicyType::Ingress]);
    let ie = translate(&(header("ie") + "spec:\n  podSelector: {}\n  egress: [{}]\n"));
    assert_eq!(ie.spec.types, vec![PolicyType::Ingress, PolicyType::Egress]);
}

#[test]
fn match_expressions_become_calico_operators() {
    let p = translate(
        &(header("expr")
            + "spec:\n  podSelector:\n    matchExpressions:\n    - {key: tier, operator: In, values: [a, b]}\n    - {key: env, operator: NotIn, values: [dev]}\n    - {key: app, operator: Exists}\n    - {key: legacy, operator: DoesNotExist}\n"),
    );
    assert_eq!(
        p.spec.selector,
        format!(
            "{K8S} && tier in {{ 'a', 'b' }} && env not in {{ 'dev' }} && has(app) && ! has(legacy)"
        )
    );
    fabric_api::selector::Selector::parse(&p.spec.selector).unwrap();
}

#[test]
fn invalid_policies_are_refused_with_every_broken_field() {
    let errs = errors(
        &(header("bad")
            + r#"spec:
  podSelector: {matchExpressions: [{key: a, operator: Maybe}]}
  policyTypes: [Ingress, Sideways]
  ingress:
  - from:
    - ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}
      podSelector: {}
    - ipBlock: {cidr: 10.0.0.0/16, except: [10.0.1.0/24, 10.2.0.0/24]}
    - {}
    ports:
    - {protocol: ICMP}
    - {port: http, endPort: 90}
    - {port: 70000}
    - {port: 90, endPort: 80}
"#),
    );
    let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
    for want in [
        "spec.podSelector.matchExpressions[0].operator",
        "spec.policyTypes[1]",
        "spec.ingress[0].from[0].ipBlock",
        "spec.ingress[0].from[1].ipBlock.except[1]",
        "spec.ingress[0].from[2]",
        "spec.ingress[0].ports[0].protocol",
        "spec.ingress[0].ports[1].endPort",
        "spec.ingress[0].ports[2].port",
        "spec.ingress[0].ports[3].endPort",
    ] {
        assert!(fields.contains(&want), "{want} missing from {errs:?}");
    }
    let no_ns = KubernetesNetworkPolicy::from_yaml("metadata: {name: x}\nspec: {}\n").unwrap();
    assert_eq!(
        no_ns.to_calico().unwrap_err()[0].field,
        "metadata.namespace"
    );
    let unknown =
        KubernetesNetworkPolicy::from_yaml("metadata: {name: x}\nspec: {podSelectr: {}}\n");
    assert!(unknown.unwrap_err().field.contains("spec"));
}

#[test]
fn translated_policies_pass_calico_validation_and_keep_their_identity() {
    let p = translate(
        &(header("ident")
            + "spec:\n  podSelector: {matchLabels: {app: web}}\n  ingress: [{from: [{podSelector: {}}]}]\n"),
    );
    assert_eq!(
        p.metadata
            .labels
            .get("projectcalico.org/tier")
            .map(String::as_str),
        Some("default")
    );
    use fabric_api::Resource;
    p.validate().unwrap();
}
