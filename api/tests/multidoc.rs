//! A manifest with bad documents is refused as a whole: every bad document is listed and no
//! resource is returned, so nothing gets written.
#![allow(clippy::unwrap_used)]

use fabric_api::document::parse_documents;

const GOOD_POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: good}\nspec: {cidr: 10.1.0.0/16}\n";
const BAD_POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bad}\nspec: {cidr: 10.2.0.1/16}\n";
const BAD_PEER: &str = "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: peer}\nspec: {peerIP: 10.0.0.1, asNumber: 0, ttlSecuritty: 1}\n";
const GOOD_TIER: &str =
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {order: 5}\n";
const BAD_KIND: &str = "apiVersion: projectcalico.org/v3\nkind: KubeControllersConfiguration\nmetadata: {name: default}\nspec: {}\n";

#[test]
fn one_bad_document_refuses_the_whole_file() {
    let text = [GOOD_POOL, BAD_POOL, GOOD_TIER].join("---\n");
    let errors = parse_documents(&text, "apply.yaml").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "apply.yaml: document 2 (IPPool/bad): spec.cidr: \"10.2.0.1/16\" has host bits set; \
         a CIDR must be strictly masked (10.2.0.0/16)"
    );
}

#[test]
fn every_bad_document_is_listed_in_order() {
    let text = [GOOD_POOL, BAD_POOL, GOOD_TIER, BAD_PEER, BAD_KIND].join("---\n");
    let errors = parse_documents(&text, "apply.yaml").unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 3, "{errors}");
    assert!(lines[0].starts_with("apply.yaml: document 2 (IPPool/bad): spec.cidr: "));
    assert!(
        lines[1]
            .starts_with("apply.yaml: document 4 (BGPPeer/peer): spec.ttlSecuritty: unknown field")
    );
    assert!(lines[2].starts_with(
        "apply.yaml: document 5 (KubeControllersConfiguration/default): kind: \"KubeControllersConfiguration\" is not a supported"
    ));
    // One line per error.
    assert_eq!(errors.to_string().lines().count(), 3);
}

#[test]
fn every_broken_rule_of_every_document_is_listed() {
    let bad_peer_rules = "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: peer}\n\
                          spec: {peerIP: 10.0.0.1, asNumber: 0, localASNumber: 0}\n";
    let text = [BAD_POOL, bad_peer_rules].join("---\n");
    let errors = parse_documents(&text, "apply.yaml").unwrap_err();
    let fields: Vec<(usize, &str)> = errors
        .0
        .iter()
        .map(|e| (e.index, e.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (1, "spec.cidr"),
            (2, "spec.asNumber"),
            (2, "spec.localASNumber")
        ]
    );
}

#[test]
fn errors_in_list_items_name_the_item() {
    let text = "apiVersion: projectcalico.org/v3\nkind: IPPoolList\nitems:\n\
                - metadata: {name: a}\n  spec: {cidr: 10.1.0.0/16}\n\
                - metadata: {name: b}\n  spec: {cidr: 10.2.0.1/16}\n\
                - kind: BGPPeer\n  metadata: {name: c}\n  spec: {}\n";
    let errors = parse_documents(text, "list.yaml").unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{errors}");
    assert!(lines[0].starts_with("list.yaml: document 1 (IPPool/b): items[1].spec.cidr: "));
    assert!(lines[1].starts_with(
        "list.yaml: document 1 (BGPPeer/c): items[2].kind: \"BGPPeer\" does not match the list's item kind IPPool"
    ));
}

#[test]
fn a_good_file_returns_every_resource() {
    let text = [GOOD_POOL, GOOD_TIER].join("---\n");
    let rs = parse_documents(&text, "apply.yaml").unwrap();
    assert_eq!(rs.len(), 2);
}

#[test]
fn document_numbers_count_empty_documents() {
    // calicoctl users often start files with `---`; empty documents keep their place so the
    // numbers match what an editor shows between separators.
    let text = format!("---\n{GOOD_POOL}---\n---\n{BAD_POOL}");
    let errors = parse_documents(&text, "apply.yaml").unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].index, 3, "{errors}");
}
