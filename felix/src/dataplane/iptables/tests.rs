//! The iptables `Table` against the fake backend.

use super::fake::FakeIptables;
use super::*;
use crate::dataplane::Reconciler;
use crate::dataplane::status::DataplaneError;

fn table() -> Table<FakeIptables> {
    Table::new(
        FakeIptables::new(),
        TableConfig::calico("nat", IpFamily::V4),
    )
    .unwrap()
}

fn chains() -> Vec<Chain> {
    vec![
        Chain::new("cali-POSTROUTING", vec![Rule::new("-j cali-nat-outgoing")]),
        Chain::new(
            "cali-nat-outgoing",
            vec![Rule::new(
                "-m set --match-set cali40masq-ipam-pools src -m set ! --match-set cali40all-ipam-pools dst -j MASQUERADE",
            )],
        ),
    ]
}

fn hooks() -> Vec<Chain> {
    vec![Chain::new(
        "POSTROUTING",
        vec![Rule::new("-j cali-POSTROUTING")],
    )]
}

fn configured() -> Table<FakeIptables> {
    let mut t = table();
    t.set_chains(chains()).unwrap();
    t.set_hooks(hooks()).unwrap();
    t
}

#[test]
fn rule_hashes_depend_on_chain_position_and_text() {
    let a = rule_hashes("cali-x", &[Rule::new("-j ACCEPT"), Rule::new("-j DROP")]);
    let b = rule_hashes("cali-y", &[Rule::new("-j ACCEPT"), Rule::new("-j DROP")]);
    let c = rule_hashes("cali-x", &[Rule::new("-j DROP"), Rule::new("-j ACCEPT")]);
    assert_eq!(a.len(), 2);
    assert!(a[0].len() == 16 && a[0].chars().all(|ch| ch.is_ascii_hexdigit()));
    assert_ne!(a[0], b[0]);
    assert_ne!(a[1], c[0]);
    assert_eq!(
        a,
        rule_hashes("cali-x", &[Rule::new("-j ACCEPT"), Rule::new("-j DROP")])
    );
}

#[test]
fn the_first_apply_creates_chains_and_the_hook_in_one_transaction() {
    let mut t = configured();
    let report = t.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.batches, 1);
    assert_eq!(report.created, 3);
    let b = t.backend_mut();
    assert_eq!(b.restores.len(), 1);
    assert!(b.restores[0].starts_with("*nat\n:cali-POSTROUTING - [0:0]\n"));
    let post = b.rules("nat", "POSTROUTING");
    assert_eq!(post.len(), 1);
    assert!(post[0].contains("--comment \"cali:") && post[0].ends_with("-j cali-POSTROUTING"));
    assert!(b.rules("nat", "cali-nat-outgoing")[0].ends_with("-j MASQUERADE"));
}

#[test]
fn nothing_is_written_when_nothing_changed() {
    let mut t = configured();
    t.apply();
    assert_eq!(t.apply().batches, 0);
    let report = t.resync();
    assert!(report.resynced && report.batches == 0, "{report:?}");
    assert_eq!(t.backend_mut().restores.len(), 1);
}

#[test]
fn only_the_changed_chain_is_rewritten() {
    let mut t = configured();
    t.apply();
    t.update_chain(Chain::new(
        "cali-nat-outgoing",
        vec![Rule::new("-s 10.65.0.0/16 -j MASQUERADE")],
    ))
    .unwrap();
    let report = t.apply();
    assert_eq!((report.updated, report.created), (1, 0));
    let last = t.backend_mut().restores.last().unwrap().clone();
    assert!(last.contains(":cali-nat-outgoing - [0:0]"));
    assert!(!last.contains("cali-POSTROUTING - [0:0]"), "{last}");
    assert!(
        !last.contains("POSTROUTING 1"),
        "the hook is untouched: {last}"
    );
}

#[test]
fn a_flushed_chain_is_repaired_by_resync() {
    let mut t = configured();
    t.apply();
    t.backend_mut().run("nat", "-F cali-nat-outgoing").unwrap();
    assert_eq!(t.apply().batches, 0, "the cache hides it until a re-read");
    let report = t.resync();
    assert_eq!(report.updated, 1);
    assert_eq!(t.backend_mut().rules("nat", "cali-nat-outgoing").len(), 1);
}

#[test]
fn a_removed_hook_is_reinserted_once_at_the_top_and_foreign_rules_stay() {
    let mut t = configured();
    t.apply();
    let b = t.backend_mut();
    b.run("nat", "-N FOREIGN").unwrap();
    b.run("nat", "-A FOREIGN -j RETURN").unwrap();
    b.run("nat", "-I POSTROUTING 1 -s 1.2.3.4/32 -j ACCEPT")
        .unwrap();
    b.run("nat", "-D POSTROUTING 2").unwrap(); // our hook
    let report = t.resync();
    assert!(report.is_ok(), "{:?}", report.errors);
    let post = t.backend_mut().rules("nat", "POSTROUTING");
    assert_eq!(post.len(), 2, "{post:?}");
    assert!(post[0].ends_with("-j cali-POSTROUTING"));
    assert_eq!(post[1], "-s 1.2.3.4/32 -j ACCEPT");
    assert_eq!(
        t.backend_mut().rules("nat", "FOREIGN"),
        vec!["-j RETURN".to_string()]
    );
    // Applying again changes nothing: the hook is there once.
    assert_eq!(t.resync().batches, 0);
}

#[test]
fn a_duplicated_hook_is_collapsed_to_one() {
    let mut t = configured();
    t.apply();
    let hook = t.backend_mut().rules("nat", "POSTROUTING")[0].clone();
    t.backend_mut()
        .run("nat", &format!("-A POSTROUTING {hook}"))
        .unwrap();
    t.resync();
    assert_eq!(t.backend_mut().rules("nat", "POSTROUTING"), vec![hook]);
}

#[test]
fn a_restart_keeps_foreign_chains_and_deletes_stale_own_chains_only_after_in_sync() {
    let mut b = FakeIptables::new();
    b.run("nat", "-N FOREIGN").unwrap();
    b.run("nat", "-A POSTROUTING -j FOREIGN").unwrap();
    b.run("nat", "-N cali-old").unwrap();
    b.run(
        "nat",
        "-A cali-old -m comment --comment \"cali:0123456789abcdef\" -j RETURN",
    )
    .unwrap();
    b.run(
        "nat",
        "-I POSTROUTING 1 -m comment --comment \"cali:00000000000000aa\" -j cali-old",
    )
    .unwrap();
    let mut t = Table::new(b, TableConfig::calico("nat", IpFamily::V4)).unwrap();
    t.set_chains(chains()).unwrap();
    t.set_hooks(hooks()).unwrap();
    let report = t.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(
        report.deferred_deletes, 2,
        "the stale chain and the stale hook"
    );
    assert_eq!(t.backend_mut().rules("nat", "POSTROUTING").len(), 3);

    t.set_in_sync(true);
    let report = t.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.deleted, 2);
    let b = t.backend_mut();
    assert!(b.table("nat").chain("cali-old").is_none());
    assert!(b.table("nat").chain("FOREIGN").is_some());
    let post = b.rules("nat", "POSTROUTING");
    assert_eq!(post.len(), 2);
    assert!(post[0].ends_with("-j cali-POSTROUTING"));
    assert_eq!(post[1], "-j FOREIGN");
}

#[test]
fn a_stale_chain_referenced_by_a_foreign_rule_is_kept_and_the_rest_written() {
    let mut b = FakeIptables::new();
    b.run("nat", "-N cali-old").unwrap();
    b.run("nat", "-A PREROUTING -j cali-old").unwrap();
    let mut t = Table::new(b, TableConfig::calico("nat", IpFamily::V4)).unwrap();
    t.set_in_sync(true);
    t.set_chains(chains()).unwrap();
    t.set_hooks(hooks()).unwrap();
    let report = t.apply();
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert_eq!(report.created, 3);
    let b = t.backend_mut();
    assert!(b.table("nat").chain("cali-old").is_some());
    assert_eq!(
        b.rules("nat", "PREROUTING"),
        vec!["-j cali-old".to_string()]
    );
    assert!(b.table("nat").chain("cali-nat-outgoing").is_some());
}

#[test]
fn a_failed_restore_is_reported_and_retried_after_a_re_read() {
    let mut t = configured();
    t.backend_mut()
        .fail_next_restore("Resource temporarily unavailable");
    let report = t.apply();
    assert!(matches!(report.errors[0], DataplaneError::Command { .. }));
    assert!(!t.health().is_healthy());
    let saves = t.backend_mut().saves;
    let report = t.apply();
    assert!(report.is_ok() && report.resynced, "{report:?}");
    assert_eq!(t.backend_mut().saves, saves + 1);
    assert!(t.health().is_healthy());
}

#[test]
fn removing_a_chain_deletes_it_once_in_sync() {
    let mut t = configured();
    t.set_in_sync(true);
    t.apply();
    let mut only = chains();
    only[0] = Chain::new("cali-POSTROUTING", vec![]);
    only.truncate(1);
    t.set_chains(only).unwrap();
    let report = t.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!((report.updated, report.deleted), (1, 1));
    assert!(
        t.backend_mut()
            .table("nat")
            .chain("cali-nat-outgoing")
            .is_none()
    );
}

#[test]
fn invalid_chains_and_rules_are_rejected_and_change_nothing() {
    let mut t = table();
    let bad = [
        (vec![Chain::new("my-chain", vec![])], "start with"),
        (
            vec![Chain::new("cali-this-name-is-far-too-long-x", vec![])],
            "28",
        ),
        (vec![Chain::new("cali-x", vec![Rule::new("")])], "empty"),
        (
            vec![Chain::new("cali-x", vec![Rule::new("-A cali-x -j DROP")])],
            "chain command",
        ),
        (
            vec![Chain::new(
                "cali-x",
                vec![Rule::new("-m comment --comment cali:1 -j DROP")],
            )],
            "added by the table",
        ),
        (
            vec![Chain::new("cali-x", vec![Rule::new("-j DROP\n-j ACCEPT")])],
            "one line",
        ),
        (
            vec![Chain::new("cali-x", vec![]), Chain::new("cali-x", vec![])],
            "twice",
        ),
    ];
    for (chains, rule) in bad {
        let err = t.set_chains(chains).unwrap_err();
        assert!(
            err.to_string().contains(rule),
            "{err} should mention {rule}"
        );
    }
    assert!(
        t.set_hooks(vec![Chain::new("cali-POSTROUTING", vec![])])
            .is_err()
    );
    assert!(
        Table::new(
            FakeIptables::new(),
            TableConfig::calico("bogus", IpFamily::V4)
        )
        .is_err()
    );
    let report = t.apply();
    assert_eq!(report.batches, 0, "nothing desired, nothing written");
}
