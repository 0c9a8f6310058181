//! `patch`, `label`, `replace`, `create --skip-exists` and `delete` with calicoctl's messages;
//! a patch or label that would make a resource invalid, rename it or move it writes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use common::Ctl;

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-a}\nspec: {cidr: 10.20.0.0/16}\n";
const NP: &str = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: db, namespace: prod}\nspec: {selector: \"app == 'db'\", types: [Ingress]}\n";

fn store() -> Ctl {
    let ctl = Ctl::sqlite();
    let path = ctl.file("seed.yaml", &format!("{POOL}---\n{NP}"));
    ctl.run(&["apply", "-f", &path]).ok();
    ctl
}

fn wide_pool(ctl: &Ctl) -> String {
    ctl.run(&[
        "get",
        "ippool",
        "pool-a",
        "-o",
        "custom-columns=NAME,NAT,DISABLED,IPIPMODE",
    ])
    .ok()
    .to_string()
}

#[test]
fn a_merge_patch_in_json_or_yaml_changes_the_fields_it_names() {
    let ctl = store();
    let out = ctl.run(&[
        "patch",
        "ippool",
        "pool-a",
        "-p",
        r#"{"spec":{"natOutgoing":true}}"#,
    ]);
    assert_eq!(out.ok(), "Successfully patched 1 'IPPool' resource\n");
    let out = ctl.run(&[
        "patch",
        "ippool",
        "pool-a",
        "--patch",
        "spec: {disabled: true}",
        "--type",
        "merge",
    ]);
    assert_eq!(out.ok(), "Successfully patched 1 'IPPool' resource\n");
    assert_eq!(
        wide_pool(&ctl),
        "NAME     NAT    DISABLED   IPIPMODE   \npool-a   true   true       Never      \n\n"
    );
    let out = ctl.run(&[
        "patch",
        "np",
        "db",
        "-n",
        "prod",
        "-p",
        r#"[{"op": "replace", "path": "/spec/selector", "value": "app == 'db2'"}]"#,
        "-t",
        "json",
    ]);
    assert_eq!(
        out.ok(),
        "Successfully patched 1 'NetworkPolicy' resource\n"
    );
    let sel = ctl.run(&[
        "get",
        "np",
        "db",
        "-n",
        "prod",
        "-o",
        "custom-columns=SELECTOR",
    ]);
    assert_eq!(sel.ok(), "SELECTOR       \napp == 'db2'   \n\n");
}

#[test]
fn a_patch_that_breaks_a_rule_or_renames_writes_nothing() {
    let ctl = store();
    let before = ctl.snapshot();
    let e = ctl.run(&[
        "patch",
        "ippool",
        "pool-a",
        "-p",
        r#"{"spec":{"cidr":"10.21.0.0/16"}}"#,
    ]);
    let e = e.failed();
    assert!(
        e.contains("spec.cidr: \"10.21.0.0/16\" cannot be changed"),
        "{e}"
    );
    let e = ctl.run(&[
        "patch",
        "ippool",
        "pool-a",
        "-p",
        r#"{"spec":{"ipipMode":"Sometimes"}}"#,
    ]);
    let e = e.failed();
    assert!(
        e.starts_with("failed to patch 'IPPool' resource; nothing was written:\n--patch: document 1 (IPPool/pool-a): spec.ipipMode: \"Sometimes\" is not one of"),
        "{e}"
    );
    let e = ctl.run(&[
        "patch",
        "ippool",
        "pool-a",
        "-p",
        r#"{"metadata":{"name":"pool-b"}}"#,
    ]);
    assert!(
        e.failed()
            .contains("the patch changes metadata.name from \"pool-a\" to \"pool-b\""),
        "{}",
        e.stderr
    );
    let e = ctl.run(&[
        "patch",
        "np",
        "db",
        "-n",
        "prod",
        "-p",
        r#"{"metadata":{"namespace":"dev"}}"#,
    ]);
    assert!(
        e.failed().contains("the patch changes metadata.namespace"),
        "{}",
        e.stderr
    );
    let e = ctl.run(&["patch", "ippool", "pool-a", "-p", r#"{"kind":"Tier"}"#]);
    assert!(
        e.failed().contains("the patch changes kind"),
        "{}",
        e.stderr
    );
    let e = ctl.run(&["patch", "ippool", "pool-a", "-p", "{not json"]);
    assert!(
        e.failed().starts_with("invalid patch \"{not json\""),
        "{}",
        e.stderr
    );
    let e = ctl.run(&["patch", "ippool", "nope", "-p", "{}"]);
    assert_eq!(
        e.failed(),
        "failed to patch 'IPPool' resource: resource does not exist: IPPool(nope)\n"
    );
    let e = ctl.run(&[
        "patch",
        "ippool",
        "pool-a",
        "-p",
        "[]",
        "-t",
        "strategicmerge",
    ]);
    assert!(
        e.failed()
            .starts_with("unknown patch type \"strategicmerge\""),
        "{}",
        e.stderr
    );
    assert_eq!(ctl.snapshot(), before);
}

#[test]
fn labels_are_set_updated_and_removed_with_calicoctl_messages() {
    let ctl = store();
    let run = |args: &[&str]| ctl.run(args);
    assert_eq!(
        run(&["label", "ippool", "pool-a", "zone=a"]).ok(),
        "Successfully set label zone on ippool pool-a\n"
    );
    let e = run(&["label", "ippool", "pool-a", "zone=b"]);
    assert_eq!(
        e.failed(),
        "failed to update label of ippool pool-a, key zone is already present. please use '--overwrite' to set a new value\n"
    );
    assert_eq!(
        run(&["label", "ippool", "pool-a", "zone=b", "--overwrite"]).ok(),
        "Successfully updated label zone on ippool pool-a\n"
    );
    assert_eq!(
        run(&[
            "get",
            "ippool",
            "-l",
            "zone == 'b'",
            "-o",
            "custom-columns=NAME"
        ])
        .ok(),
        "NAME     \npool-a   \n\n"
    );
    assert_eq!(
        run(&["label", "ippool", "pool-a", "zone", "--remove"]).ok(),
        "Successfully removed label zone from ippool pool-a\n"
    );
    let e = run(&["label", "ippool", "pool-a", "zone", "--remove"]);
    assert_eq!(
        e.failed(),
        "cannot remove label of ippool pool-a, key zone does not exist\n"
    );
    let e = run(&["label", "ippool", "pool-a", "zone"]);
    assert!(
        e.failed()
            .starts_with("invalid label zone: expected key=value"),
        "{}",
        e.stderr
    );
    let before = ctl.snapshot();
    let e = run(&["label", "ippool", "pool-a", "bad key=x"]);
    assert!(e.failed().contains("metadata.labels"), "{}", e.stderr);
    assert_eq!(
        run(&["label", "networkpolicy", "db", "-n", "prod", "tier=gold"]).ok(),
        "Successfully set label tier on networkpolicy db\n"
    );
    assert_ne!(ctl.snapshot(), before);
}

#[test]
fn replace_needs_an_existing_resource_and_honours_its_resource_version() {
    let ctl = store();
    let yaml = ctl
        .run(&["get", "ippool", "pool-a", "-o", "yaml"])
        .ok()
        .replace(
            "cidr: 10.20.0.0/16",
            "cidr: 10.20.0.0/16\n  natOutgoing: true",
        );
    let path = ctl.file("replace.yaml", &yaml);
    assert_eq!(
        ctl.run(&["replace", "-f", &path]).ok(),
        "Successfully replaced 1 'IPPool' resource(s)\n"
    );
    // The same file again carries the old resourceVersion: a conflict, nothing written.
    let before = ctl.snapshot();
    let e = ctl.run(&["replace", "-f", &path]);
    assert!(
        e.failed()
            .contains("metadata.resourceVersion: update conflict: IPPool(pool-a)"),
        "{}",
        e.stderr
    );
    assert_eq!(ctl.snapshot(), before);
}

#[test]
fn create_skip_exists_counts_existing_resources_as_done() {
    let ctl = store();
    let path = ctl.file("pool.yaml", POOL);
    let e = ctl.run(&["create", "-f", &path]);
    assert!(
        e.failed()
            .starts_with("failed to create 'IPPool' resource; nothing was written:"),
        "{}",
        e.stderr
    );
    let out = ctl.run(&["create", "-f", &path, "--skip-exists"]);
    assert_eq!(out.ok(), "Successfully created 1 'IPPool' resource(s)\n");
}

#[test]
fn delete_reports_each_missing_resource_and_deletes_the_others() {
    let ctl = store();
    let out = ctl.run(&["delete", "ippool", "nope", "pool-a"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "Successfully deleted 1 'IPPool' resource(s)\n");
    assert_eq!(
        out.stderr,
        "Failed to delete 'IPPool' resource: resource does not exist: IPPool(nope)\n"
    );
    let out = ctl.run(&["delete", "ippool", "nope", "--skip-not-exists"]);
    assert_eq!(out.ok(), "Successfully deleted 1 'IPPool' resource(s)\n");
    let out = ctl.run(&["delete", "networkpolicy", "db", "-n", "prod"]);
    assert_eq!(
        out.ok(),
        "Successfully deleted 1 'NetworkPolicy' resource(s)\n"
    );
    assert!(ctl.keys().is_empty());
}

#[test]
fn a_tier_in_use_cannot_be_deleted() {
    let ctl = Ctl::sqlite();
    let path = ctl.file(
        "t.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 10}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: security.x}\nspec: {tier: security}\n",
    );
    ctl.run(&["apply", "-f", &path]).ok();
    let e = ctl.run(&["delete", "tier", "security"]);
    assert!(
        e.failed()
            .contains("is still used by GlobalNetworkPolicy/security.x"),
        "{}",
        e.stderr
    );
    ctl.run(&["delete", "gnp", "security.x"]).ok();
    ctl.run(&["delete", "tier", "security"]).ok();
}
