//! Golden tests: the rendered filter tables and ipsets for representative policies, compared
//! with the checked-in text in `tests/golden/<case>.txt` (regenerate with
//! `FELIX_POLICY_BLESS=1` after checking the difference by hand).

#![allow(clippy::unwrap_used)]

mod common;

use common::{CASES, case_state, golden_path, render_text};

fn check(name: &str, ipv6: bool) {
    let mut state = case_state(name, ipv6);
    let got = render_text(&state.full());
    let path = golden_path(&format!("{name}.txt"));
    if std::env::var_os("FELIX_POLICY_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with FELIX_POLICY_BLESS=1)", path.display()));
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (w, g))| w != g)
            .take(5)
            .map(|(i, (w, g))| format!("line {}:\n  want {w}\n  got  {g}", i + 1))
            .collect();
        panic!(
            "{name}: render differs from {} ({} vs {} lines)\n{}\n--- full render ---\n{got}",
            path.display(),
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn without_policy_every_workload_falls_through_to_its_namespace_profile() {
    check("no_policy", false);
}

#[test]
fn a_default_deny_policy_ends_each_selected_endpoint_tier_in_a_drop() {
    check("default_deny", false);
}

#[test]
fn allow_rules_by_label_namespace_port_and_protocol() {
    check("allow_label_namespace_port", false);
}

#[test]
fn egress_rules_with_network_sets_nets_and_protocol_numbers() {
    check("egress_nets_protocol", false);
}

#[test]
fn icmp_and_icmpv6_types_render_in_their_family_only() {
    check("icmp", true);
}

#[test]
fn pass_skips_the_rest_of_the_tier_and_log_rules_log() {
    check("pass_log", false);
}

#[test]
fn tiers_and_policies_are_ordered_by_order_then_name() {
    check("order_two_tiers", false);
}

#[test]
fn kubernetes_documentation_examples() {
    check("k8s_examples", false);
}

#[test]
fn every_case_has_a_golden_file() {
    for (name, _) in CASES {
        assert!(golden_path(&format!("{name}.yaml")).exists(), "{name}");
    }
}
