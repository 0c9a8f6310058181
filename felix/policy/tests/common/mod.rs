//! Shared by the integration tests: loading the golden cases (Calico v3 YAML and Kubernetes
//! NetworkPolicies) into a `PolicyState`, and printing a render as text.

#![allow(dead_code, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;

use fabric_api::KubernetesNetworkPolicy;
use fabric_api::document::parse_documents;
use felix_policy::{FamilyRender, Policy, PolicyState, RenderConfig};

/// The golden cases: (name, render IPv6 too).
pub const CASES: &[(&str, bool)] = &[
    ("no_policy", false),
    ("default_deny", false),
    ("allow_label_namespace_port", false),
    ("egress_nets_protocol", false),
    ("icmp", true),
    ("pass_log", false),
    ("order_two_tiers", false),
    ("k8s_examples", false),
];

/// `tests/golden/<file>`.
pub fn golden_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file)
}

/// Applies every document of `text`: Kubernetes NetworkPolicies translated, the rest as
/// Calico resources.
pub fn load(state: &mut PolicyState, text: &str, source: &str) {
    for doc in text.split("\n---") {
        if doc.contains("apiVersion: networking.k8s.io/v1") {
            let np = KubernetesNetworkPolicy::from_yaml(doc)
                .unwrap()
                .to_calico()
                .unwrap();
            state.upsert_policy(Policy::from_network_policy(&np).unwrap());
        } else {
            for r in parse_documents(doc, source).unwrap() {
                state.apply_resource(&r).unwrap();
            }
        }
    }
}

/// A state for node1 with the base cluster and case `name` loaded.
pub fn case_state(name: &str, ipv6: bool) -> PolicyState {
    let mut config = RenderConfig::new("node1");
    config.ipv6 = ipv6;
    let mut state = PolicyState::new(config).unwrap();
    let base = std::fs::read_to_string(golden_path("base.yaml")).unwrap();
    load(&mut state, &base, "base.yaml");
    let file = format!("{name}.yaml");
    let text = std::fs::read_to_string(golden_path(&file)).unwrap();
    load(&mut state, &text, &file);
    state
}

/// The render as text: per family the hooks, the chains (iptables-save style, without our hash
/// comments) and the ipsets with their members.
pub fn render_text(renders: &[FamilyRender]) -> String {
    let mut s = String::new();
    for r in renders {
        let _ = writeln!(s, "# {} filter table", r.family);
        for h in &r.hooks {
            for rule in &h.rules {
                let _ = writeln!(s, "-A {} {rule}", h.name);
            }
        }
        for c in &r.chains {
            let _ = writeln!(s, ":{}", c.name);
            for rule in &c.rules {
                let _ = writeln!(s, "-A {} {rule}", c.name);
            }
        }
        let _ = writeln!(s, "# {} ipsets", r.family);
        for set in &r.ipsets {
            let members: Vec<String> = set.members.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                s,
                "{} {} [{}]",
                set.name(),
                set.kind.as_str(),
                members.join(" ")
            );
        }
    }
    s
}
