//! The workload dispatch chains: `cali-from-wl-dispatch` (`-i`) and `cali-to-wl-dispatch`
//! (`-o`) send each known workload interface to its endpoint chain with a `goto`, through a
//! shallow prefix tree as Calico builds it (names grouped by the character after their common
//! prefix; a group of several gets a child chain `cali-from-wl-dispatch-<c>`), and drop any
//! other `cali*` interface ("Unknown interface": fail closed).

use crate::names::{
    CHAIN_FROM_WL_DISPATCH, CHAIN_TO_WL_DISPATCH, from_workload_chain, to_workload_chain,
};
use crate::render::rules::comment;
use crate::types::Chain;

fn common_prefix(names: &[&str]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let mut len = first.len();
    for n in &names[1..] {
        len = first
            .bytes()
            .zip(n.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    // Names are not guaranteed to be ASCII: cut on a character boundary.
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    first[..len].to_string()
}

/// Both dispatch trees for the local workload interfaces `ifaces` (any order; duplicates are
/// ignored).
pub fn dispatch_chains(ifaces: &[&str]) -> Vec<Chain> {
    let mut names: Vec<&str> = ifaces.to_vec();
    names.sort_unstable();
    names.dedup();
    let prefix = common_prefix(&names);
    // Groups in name order: (group prefix, names).
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for n in &names {
        // The prefix plus the name's next character (the prefix ends on a character boundary
        // of every name, as they all share its bytes).
        let key = match n.get(prefix.len()..).and_then(|rest| rest.chars().next()) {
            Some(c) => format!("{prefix}{c}"),
            None => prefix.clone(),
        };
        match groups.last_mut() {
            Some((k, members)) if *k == key => members.push(n),
            _ => groups.push((key, vec![n])),
        }
    }
    let end = format!("{} -j DROP", comment("Unknown interface"));
    let mut out = Vec::new();
    for (root, flag, endpoint_chain) in [
        (
            CHAIN_FROM_WL_DISPATCH,
            "-i",
            from_workload_chain as fn(&str) -> String,
        ),
        (CHAIN_TO_WL_DISPATCH, "-o", to_workload_chain),
    ] {
        let mut root_rules = Vec::new();
        for (key, members) in &groups {
            if members.len() > 1 {
                let next = &key[prefix.len()..];
                let child = format!("{root}-{next}");
                root_rules.push(format!("{flag} {key}+ -g {child}"));
                let mut rules: Vec<String> = members
                    .iter()
                    .map(|n| format!("{flag} {n} -g {}", endpoint_chain(n)))
                    .collect();
                rules.push(end.clone());
                out.push(Chain::new(child, rules));
            } else {
                let n = members[0];
                root_rules.push(format!("{flag} {n} -g {}", endpoint_chain(n)));
            }
        }
        root_rules.push(end.clone());
        out.push(Chain::new(root, root_rules));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_interfaces_means_only_the_unknown_interface_drop() {
        let c = dispatch_chains(&[]);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0].rules,
            vec!["-m comment --comment \"Unknown interface\" -j DROP".to_string()]
        );
    }

    #[test]
    fn names_sharing_a_next_character_get_a_child_chain() {
        let c = dispatch_chains(&["calib1", "calia1", "calia2", "calib1"]);
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cali-from-wl-dispatch-a",
                "cali-from-wl-dispatch",
                "cali-to-wl-dispatch-a",
                "cali-to-wl-dispatch"
            ]
        );
        assert_eq!(
            c[1].rules[..2],
            [
                "-i calia+ -g cali-from-wl-dispatch-a".to_string(),
                "-i calib1 -g cali-fw-calib1".into()
            ]
        );
        assert_eq!(c[0].rules[0], "-i calia1 -g cali-fw-calia1");
        assert!(c[0].rules.last().unwrap().ends_with("-j DROP"));
    }

    #[test]
    fn non_ascii_interface_names_are_grouped_by_character_without_panicking() {
        let c = dispatch_chains(&["cali\u{e4}1", "cali\u{e4}2", "cali\u{e9}1"]);
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cali-from-wl-dispatch-\u{e4}",
                "cali-from-wl-dispatch",
                "cali-to-wl-dispatch-\u{e4}",
                "cali-to-wl-dispatch"
            ]
        );
    }

    #[test]
    fn a_single_interface_is_dispatched_directly() {
        let c = dispatch_chains(&["cali1"]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].rules[0], "-o cali1 -g cali-tw-cali1");
    }
}
