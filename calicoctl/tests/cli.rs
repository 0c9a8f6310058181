//! Command-line errors name the value and exit non-zero: a missing file, an unreadable stdin,
//! an unknown kind (with the nearest spelling), a missing name, a namespace flag on a
//! cluster-wide kind, a bad log level, a bad configuration; `version` and `validate`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;

use calicoctl::Env;
use common::Ctl;

#[test]
fn a_missing_file_is_named() {
    let ctl = Ctl::sqlite();
    let e = ctl.run(&["apply", "-f", "/nonexistent/pools.yaml"]);
    assert!(
        e.failed().starts_with(
            "failed to execute command: failed to read the resources from /nonexistent/pools.yaml: No such file or directory"
        ),
        "{}",
        e.stderr
    );
    let e = ctl.run(&["apply"]);
    assert_eq!(
        e.failed(),
        "apply needs -f FILENAME (a file, a directory, or - for stdin)\n"
    );
}

struct Broken;

impl Read for Broken {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("the pipe broke"))
    }
}

#[test]
fn an_unreadable_stdin_is_reported() {
    let env = Env::empty().with_var("SQLITE_PATH", "/nonexistent/never-opened.db");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = calicoctl::run_with_env(
        ["calicoctl", "apply", "-f", "-"],
        &env,
        &mut Broken,
        &mut out,
        &mut err,
    );
    assert_eq!(code, 1);
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "failed to execute command: failed to read the resources from stdin: the pipe broke\n"
    );
    let ctl = Ctl::sqlite();
    let e = ctl.run_stdin(&["apply", "-f", "-"], "");
    assert_eq!(e.failed(), "no resources specified in file <stdin>\n");
}

#[test]
fn stdin_documents_are_named_stdin_in_errors() {
    let ctl = Ctl::sqlite();
    let e = ctl.run_stdin(
        &["apply", "-f", "-"],
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {ordr: 1}\n",
    );
    assert!(
        e.failed()
            .contains("<stdin>: document 1 (Tier/t): spec.ordr: unknown field"),
        "{}",
        e.stderr
    );
}

#[test]
fn an_unknown_kind_suggests_the_nearest_spelling() {
    let ctl = Ctl::sqlite();
    let e = ctl.run(&["get", "ippol"]);
    assert_eq!(
        e.failed(),
        "resource type 'ippol' is not supported; did you mean 'ippool'?\n"
    );
    let e = ctl.run(&["delete", "globalnetworkpolcy", "x"]);
    assert_eq!(
        e.failed(),
        "resource type 'globalnetworkpolcy' is not supported; did you mean 'globalnetworkpolicy'?\n"
    );
}

#[test]
fn a_missing_kind_or_name_is_explained() {
    let ctl = Ctl::sqlite();
    let e = ctl.run(&["delete", "ippool"]);
    assert_eq!(
        e.failed(),
        "delete needs the name of the IPPool to delete: calicoctl delete ippool NAME...\n"
    );
    let e = ctl.run(&["get"]);
    assert_eq!(
        e.failed(),
        "get needs a KIND (e.g. calicoctl get ippools) or -f FILENAME\n"
    );
    let e = ctl.run(&["get", "ippool", ""]);
    assert_eq!(e.failed(), "resource name may not be empty\n");
    let e = ctl.run(&["delete"]);
    assert!(
        e.failed().starts_with("delete needs a KIND and NAME..."),
        "{}",
        e.stderr
    );
}

#[test]
fn a_namespace_flag_on_a_cluster_wide_kind_is_refused() {
    let ctl = Ctl::sqlite();
    let e = ctl.run(&["delete", "ippool", "a", "-n", "prod"]);
    assert_eq!(
        e.failed(),
        "IPPool is not namespaced: remove --namespace \"prod\" (IPPool resources are cluster-wide)\n"
    );
}

#[test]
fn log_levels_are_checked_and_global_flags_accepted() {
    let ctl = Ctl::sqlite();
    let e = ctl.run(&["--log-level", "loud", "get", "ippool"]);
    assert_eq!(
        e.failed(),
        "unknown log level: loud, expected one of: panic, fatal, error, warn, info, debug, trace\n"
    );
    ctl.run(&["-l", "error", "get", "ippool"]).ok();
    ctl.run(&[
        "get",
        "ippool",
        "--allow-version-mismatch",
        "--log-level",
        "warn",
    ])
    .ok();
}

#[test]
fn a_config_file_names_the_datastore() {
    let ctl = Ctl::sqlite();
    let db = ctl.dir.path().join("from-config.db");
    let cfg = ctl.file(
        "calicoctl.cfg",
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  datastoreType: sqlite\n  sqlitePath: {}\n",
            db.display()
        ),
    );
    let out = ctl.run(&["version", "-c", &cfg]);
    assert_eq!(
        out.ok(),
        format!(
            "Client Version:    v{}\nGit commit:        unknown\nDatastore Type:    sqlite\nDatastore:         {}\n",
            env!("CARGO_PKG_VERSION"),
            db.display()
        )
    );
    let pool = ctl.file("p.yaml", "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.1.0.0/16}\n");
    ctl.run(&["-c", &cfg, "apply", "-f", &pool]).ok();
    assert!(db.exists());
    assert!(
        ctl.keys().is_empty(),
        "the environment's datastore was not used"
    );
    let e = ctl.run(&["get", "ippool", "-c", "/nonexistent/calicoctl.cfg"]);
    assert!(
        e.failed().starts_with("failed to load the datastore configuration: reading config file /nonexistent/calicoctl.cfg"),
        "{}",
        e.stderr
    );
}

#[test]
fn version_client_shows_only_the_client() {
    let ctl = Ctl::sqlite();
    let out = ctl.binary(&["version", "--client"], "");
    assert_eq!(
        out.ok(),
        format!(
            "Client Version:    v{}\nGit commit:        unknown\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn the_binary_exits_non_zero_on_errors_and_zero_on_help() {
    let ctl = Ctl::sqlite();
    let out = ctl.binary(&["get", "nosuchkind"], "");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("resource type 'nosuchkind' is not supported"),
        "{}",
        out.stderr
    );
    let out = ctl.binary(&["--help"], "");
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("apply"), "{}", out.stdout);
    let out = ctl.binary(&["frobnicate"], "");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        out.stderr
    );
}

#[test]
fn validate_checks_offline_including_conflicts_between_documents() {
    let ctl = Ctl::sqlite();
    let good = ctl.file(
        "good.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.1.0.0/16}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: b}\nspec: {cidr: 10.2.0.0/16}\n",
    );
    assert_eq!(
        ctl.run(&["validate", "-f", &good]).ok(),
        "Successfully validated 2 'IPPool' resource(s)\n"
    );
    let bad = ctl.file(
        "bad.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.1.0.0/16}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: b}\nspec: {cidr: 10.1.2.0/24}\n",
    );
    let e = ctl.run(&["validate", "-f", &bad]);
    assert_eq!(
        e.failed(),
        format!(
            "failed to validate any 'IPPool' resources:\n{bad}: document 2 (IPPool/b): spec.cidr: \"10.1.2.0/24\" overlaps IPPool a (10.1.0.0/16); IP pools must not overlap\n"
        )
    );
    assert!(ctl.keys().is_empty());
}
