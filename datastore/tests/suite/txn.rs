//! The conformance checks of `Backend::transaction`: all-or-nothing multi-key writes at one
//! revision, the current values on a failed comparison, bounds, and what a watch sees.

use fabric_datastore::{Backend, BackendError, KeyValue, MAX_TXN_OPS, TxnOp, TxnOutcome};

use crate::common::{delete, next_event, next_events, put};

/// Runs every transaction check under `root`.
pub async fn run(b: &dyn Backend, root: &str) {
    a_transaction_writes_every_key_at_one_revision(b, root).await;
    a_stale_comparison_on_any_key_changes_nothing_and_returns_the_current_values(b, root).await;
    absent_and_present_comparisons_hold_only_for_the_right_state(b, root).await;
    a_transaction_that_only_checks_writes_nothing(b, root).await;
    a_bad_transaction_is_rejected_and_changes_nothing(b, root).await;
    a_watch_sees_every_key_of_a_transaction_at_its_revision(b, root).await;
}

fn put_op(key: &str, value: &str, expected: i64) -> TxnOp {
    TxnOp::Put {
        key: key.to_string(),
        value: value.to_string(),
        expected,
    }
}

fn delete_op(key: &str, expected: i64) -> TxnOp {
    TxnOp::Delete {
        key: key.to_string(),
        expected,
    }
}

fn check_op(key: &str, expected: i64) -> TxnOp {
    TxnOp::Check {
        key: key.to_string(),
        expected,
    }
}

async fn committed(b: &dyn Backend, ops: &[TxnOp]) -> i64 {
    match b.transaction(ops).await.unwrap() {
        TxnOutcome::Committed(r) => r,
        other => panic!("transaction {ops:?} gave {other:?}"),
    }
}

async fn values(b: &dyn Backend, keys: &[&str]) -> Vec<Option<KeyValue>> {
    let mut out = Vec::new();
    for k in keys {
        out.push(b.get(k).await.unwrap());
    }
    out
}

pub async fn a_transaction_writes_every_key_at_one_revision(b: &dyn Backend, root: &str) {
    let (new, old, gone, kept) = (
        format!("{root}txn/one/new"),
        format!("{root}txn/one/old"),
        format!("{root}txn/one/gone"),
        format!("{root}txn/one/kept"),
    );
    let r_old = b.create(&old, r#"{"v":1}"#).await.unwrap();
    let r_gone = b.create(&gone, "1").await.unwrap();
    let r_kept = b.create(&kept, "1").await.unwrap();
    let r = committed(
        b,
        &[
            put_op(&new, r#"{"v":"new"}"#, 0),
            put_op(&old, r#"{"v":2}"#, r_old),
            delete_op(&gone, r_gone),
            check_op(&kept, r_kept),
        ],
    )
    .await;
    assert!(r > r_kept);
    let got = values(b, &[&new, &old, &gone, &kept]).await;
    let expected = vec![
        Some(KeyValue {
            key: new.clone(),
            value: r#"{"v":"new"}"#.into(),
            create_revision: r,
            mod_revision: r,
        }),
        Some(KeyValue {
            key: old.clone(),
            value: r#"{"v":2}"#.into(),
            create_revision: r_old,
            mod_revision: r,
        }),
        None,
        Some(KeyValue {
            key: kept.clone(),
            value: "1".into(),
            create_revision: r_kept,
            mod_revision: r_kept,
        }),
    ];
    assert_eq!(got, expected);
    // The next write gets the next revision: the transaction used exactly one.
    let after = b.update(&kept, "2", r_kept).await.unwrap();
    assert!(after > r);
}

pub async fn a_stale_comparison_on_any_key_changes_nothing_and_returns_the_current_values(
    b: &dyn Backend,
    root: &str,
) {
    let keys: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| format!("{root}txn/stale/{n}"))
        .collect();
    let ra = b.create(&keys[0], "1").await.unwrap();
    let rb = b.create(&keys[1], "1").await.unwrap();
    // keys[2] is absent.
    let fresh = [
        put_op(&keys[0], "2", ra),
        delete_op(&keys[1], rb),
        put_op(&keys[2], "2", 0),
    ];
    let before = values(b, &[&keys[0], &keys[1], &keys[2]]).await;
    for stale in 0..fresh.len() {
        let mut ops = fresh.to_vec();
        ops[stale] = match &ops[stale] {
            TxnOp::Put {
                key,
                value,
                expected,
            } => TxnOp::Put {
                key: key.clone(),
                value: value.clone(),
                // Absent -> expects present; present -> expects another revision.
                expected: if *expected == 0 { ra } else { expected + 1000 },
            },
            TxnOp::Delete { key, expected } => TxnOp::Delete {
                key: key.clone(),
                expected: expected + 1000,
            },
            TxnOp::Check { .. } => unreachable!(),
        };
        assert_eq!(
            b.transaction(&ops).await.unwrap(),
            TxnOutcome::Current(before.clone()),
            "stale operation {stale}"
        );
        assert_eq!(values(b, &[&keys[0], &keys[1], &keys[2]]).await, before);
    }
    // The fresh one commits.
    let r = committed(b, &fresh).await;
    let after = values(b, &[&keys[0], &keys[1], &keys[2]]).await;
    assert_eq!(after[0].as_ref().map(|kv| kv.mod_revision), Some(r));
    assert_eq!(after[1], None);
    assert_eq!(after[2].as_ref().map(|kv| kv.create_revision), Some(r));
}

pub async fn absent_and_present_comparisons_hold_only_for_the_right_state(
    b: &dyn Backend,
    root: &str,
) {
    let (present, absent) = (
        format!("{root}txn/state/present"),
        format!("{root}txn/state/absent"),
    );
    let rp = b.create(&present, "1").await.unwrap();
    let current_present = b.get(&present).await.unwrap();
    // "Must be absent" on a present key.
    assert_eq!(
        b.transaction(&[put_op(&present, "2", 0)]).await.unwrap(),
        TxnOutcome::Current(vec![current_present.clone()])
    );
    // A revision on an absent key: a put does not create it, a delete does not happen.
    assert_eq!(
        b.transaction(&[put_op(&absent, "2", rp)]).await.unwrap(),
        TxnOutcome::Current(vec![None])
    );
    assert_eq!(
        b.transaction(&[delete_op(&absent, rp), check_op(&present, rp)])
            .await
            .unwrap(),
        TxnOutcome::Current(vec![None, current_present.clone()])
    );
    // "Must be absent" as a check, guarding a write to another key.
    let r = committed(b, &[check_op(&absent, 0), put_op(&present, "3", rp)]).await;
    assert_eq!(b.get(&present).await.unwrap().unwrap().mod_revision, r);
    assert_eq!(b.get(&absent).await.unwrap(), None);
}

pub async fn a_transaction_that_only_checks_writes_nothing(b: &dyn Backend, root: &str) {
    let k = format!("{root}txn/check/k");
    let rk = b.create(&k, "1").await.unwrap();
    let r = committed(b, &[check_op(&k, rk)]).await;
    assert!(r >= rk);
    assert_eq!(b.get(&k).await.unwrap().unwrap().mod_revision, rk);
    // Nothing was written: the next write is the only change a watch from here sees.
    let mut w = b.watch(&format!("{root}txn/check/"), rk).await.unwrap();
    let r2 = b.update(&k, "2", rk).await.unwrap();
    assert_eq!(next_event(&mut w).await, put(&k, "2", rk, r2));
}

pub async fn a_bad_transaction_is_rejected_and_changes_nothing(b: &dyn Backend, root: &str) {
    let (a, c) = (format!("{root}txn/bad/a"), format!("{root}txn/bad/c"));
    let ra = b.create(&a, "1").await.unwrap();
    let before = b.get(&a).await.unwrap();

    let too_many: Vec<TxnOp> = (0..=MAX_TXN_OPS)
        .map(|i| put_op(&format!("{root}txn/bad/many/{i}"), "1", 0))
        .collect();
    let err = b.transaction(&too_many).await.unwrap_err();
    assert!(
        matches!(err, BackendError::InvalidTransaction { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("at most 128"), "{err}");
    assert!(
        b.list(&format!("{root}txn/bad/many/"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let err = b
        .transaction(&[put_op(&a, "2", ra), delete_op(&a, ra)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&a), "{err}");
    // One bad value fails the whole transaction before anything is written.
    let err = b
        .transaction(&[put_op(&c, "1", 0), put_op(&a, "{not json", ra)])
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::InvalidValue { .. }), "{err}");
    let err = b
        .transaction(&[put_op(&c, "1", 0), delete_op(&a, 0)])
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::InvalidRevision { .. }), "{err}");
    let err = b
        .transaction(&[put_op(&c, "1", 0), put_op("", "1", 0)])
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::InvalidKey { .. }), "{err}");

    assert_eq!(b.get(&a).await.unwrap(), before);
    assert_eq!(b.get(&c).await.unwrap(), None);

    // The largest allowed transaction commits at one revision.
    let most: Vec<TxnOp> = (0..MAX_TXN_OPS)
        .map(|i| put_op(&format!("{root}txn/bad/most/{i:03}"), "1", 0))
        .collect();
    let r = committed(b, &most).await;
    let listing = b.list(&format!("{root}txn/bad/most/")).await.unwrap();
    assert_eq!(listing.items.len(), MAX_TXN_OPS);
    assert!(listing.items.iter().all(|kv| kv.mod_revision == r));
}

pub async fn a_watch_sees_every_key_of_a_transaction_at_its_revision(b: &dyn Backend, root: &str) {
    let p = format!("{root}txn/watch/");
    let (x, y, z) = (format!("{p}x"), format!("{p}y"), format!("{p}z"));
    let outside = format!("{root}txn/watchx");
    let r0 = b.revision().await.unwrap();
    let mut live = b.watch(&p, r0).await.unwrap();

    let rz = b.create(&z, "1").await.unwrap();
    // Op order differs from key order on purpose: the watch follows the operations.
    let r1 = committed(
        b,
        &[
            put_op(&y, "1", 0),
            put_op(&outside, "1", 0),
            delete_op(&z, rz),
            put_op(&x, "1", 0),
        ],
    )
    .await;
    let ry = b.get(&y).await.unwrap().unwrap().mod_revision;
    let rx = b.get(&x).await.unwrap().unwrap().mod_revision;
    let r2 = committed(b, &[put_op(&x, "2", rx), put_op(&y, "2", ry)]).await;
    let expected = vec![
        put(&z, "1", rz, rz),
        put(&y, "1", r1, r1),
        delete(&z, r1),
        put(&x, "1", r1, r1),
        put(&x, "2", r1, r2),
        put(&y, "2", r1, r2),
    ];
    assert_eq!(next_events(&mut live, expected.len()).await, expected);
    // Nothing extra.
    let sentinel = format!("{p}zz");
    let rs = b.create(&sentinel, "0").await.unwrap();
    assert_eq!(next_event(&mut live).await, put(&sentinel, "0", rs, rs));

    // History replay delivers the same, also when it starts inside the run of transactions.
    let mut replay = b.watch(&p, r0).await.unwrap();
    assert_eq!(next_events(&mut replay, expected.len()).await, expected);
    let mut from_first = b.watch(&p, r1).await.unwrap();
    assert_eq!(
        next_events(&mut from_first, 2).await,
        expected[4..].to_vec()
    );
    let mut before_first = b.watch(&p, r1 - 1).await.unwrap();
    assert_eq!(
        next_events(&mut before_first, 5).await,
        expected[1..].to_vec()
    );
}
