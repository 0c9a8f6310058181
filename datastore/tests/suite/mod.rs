//! The backend conformance suite: one generic set of checks every `Backend` must pass.
#![allow(dead_code, clippy::unwrap_used)]

use fabric_datastore::{Backend, BackendError, CasOutcome, KeyValue, WatchEvent};

use crate::common::{delete, next_event, next_events, put};

pub mod txn;

/// Runs every check except compaction, each under its own part of `root` (which ends with `/`).
pub async fn run(b: &dyn Backend, root: &str) {
    create_fails_when_the_key_exists(b, root).await;
    update_is_compare_and_swap(b, root).await;
    delete_is_compare_and_swap(b, root).await;
    compare_and_swap_returns_the_current_value_on_a_mismatch(b, root).await;
    bad_input_is_rejected_and_changes_nothing(b, root).await;
    list_returns_only_the_prefix_sorted(b, root).await;
    watch_delivers_every_change_once_in_order(b, root).await;
    a_listing_followed_by_a_watch_from_its_revision_has_no_gap(b, root).await;
    txn::run(b, root).await;
}

async fn value_of(b: &dyn Backend, key: &str) -> Option<KeyValue> {
    b.get(key).await.unwrap()
}

pub async fn create_fails_when_the_key_exists(b: &dyn Backend, root: &str) {
    let k = format!("{root}create/a");
    let r1 = b.create(&k, r#"{"v":1}"#).await.unwrap();
    assert!(r1 > 0);
    let expected = KeyValue {
        key: k.clone(),
        value: r#"{"v":1}"#.into(),
        create_revision: r1,
        mod_revision: r1,
    };
    assert_eq!(value_of(b, &k).await, Some(expected.clone()));
    match b.create(&k, r#"{"v":2}"#).await {
        Err(BackendError::AlreadyExists { key }) => assert_eq!(key, k),
        other => panic!("second create of {k} gave {other:?}"),
    }
    assert_eq!(value_of(b, &k).await, Some(expected));
    assert_eq!(value_of(b, &format!("{root}create/missing")).await, None);
}

pub async fn update_is_compare_and_swap(b: &dyn Backend, root: &str) {
    let k = format!("{root}update/a");
    let r1 = b.create(&k, r#"{"v":1}"#).await.unwrap();
    let r2 = b.update(&k, r#"{"v":2}"#, r1).await.unwrap();
    assert!(r2 > r1);
    let after = KeyValue {
        key: k.clone(),
        value: r#"{"v":2}"#.into(),
        create_revision: r1,
        mod_revision: r2,
    };
    assert_eq!(value_of(b, &k).await, Some(after.clone()));

    // A stale revision fails, names the actual revision, and changes nothing.
    match b.update(&k, r#"{"v":3}"#, r1).await {
        Err(BackendError::Conflict {
            key,
            expected,
            actual,
        }) => {
            assert_eq!((key.as_str(), expected, actual), (k.as_str(), r1, Some(r2)));
        }
        other => panic!("stale update gave {other:?}"),
    }
    assert_eq!(value_of(b, &k).await, Some(after.clone()));

    // Updating an absent key is NotFound, and does not create it.
    let missing = format!("{root}update/missing");
    match b.update(&missing, "{}", r2).await {
        Err(BackendError::NotFound { key }) => assert_eq!(key, missing),
        other => panic!("update of an absent key gave {other:?}"),
    }
    assert_eq!(value_of(b, &missing).await, None);

    // The create revision survives updates.
    let r3 = b.update(&k, r#"{"v":3}"#, r2).await.unwrap();
    let kv = value_of(b, &k).await.unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (r1, r3));
}

pub async fn delete_is_compare_and_swap(b: &dyn Backend, root: &str) {
    let k = format!("{root}delete/a");
    let r1 = b.create(&k, "1").await.unwrap();
    let r2 = b.update(&k, "2", r1).await.unwrap();
    match b.delete(&k, Some(r1)).await {
        Err(BackendError::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (r1, Some(r2))),
        other => panic!("stale delete gave {other:?}"),
    }
    assert_eq!(value_of(b, &k).await.unwrap().mod_revision, r2);

    let rd = b.delete(&k, Some(r2)).await.unwrap();
    assert!(rd > r2);
    assert_eq!(value_of(b, &k).await, None);
    assert!(matches!(
        b.delete(&k, Some(rd)).await,
        Err(BackendError::NotFound { .. })
    ));
    assert!(matches!(
        b.delete(&k, None).await,
        Err(BackendError::NotFound { .. })
    ));

    // Unconditional delete, then re-create: a new create revision.
    let k2 = format!("{root}delete/b");
    b.create(&k2, "1").await.unwrap();
    let rd2 = b.delete(&k2, None).await.unwrap();
    assert_eq!(value_of(b, &k2).await, None);
    let rc = b.create(&k2, "2").await.unwrap();
    assert!(rc > rd2);
    assert_eq!(value_of(b, &k2).await.unwrap().create_revision, rc);
}

pub async fn compare_and_swap_returns_the_current_value_on_a_mismatch(b: &dyn Backend, root: &str) {
    let k = format!("{root}cas/a");
    // Expected 0 means "absent": creates.
    let r1 = match b.compare_and_swap(&k, "1", 0).await.unwrap() {
        CasOutcome::Swapped(r) => r,
        other => panic!("cas on an absent key gave {other:?}"),
    };
    let v1 = KeyValue {
        key: k.clone(),
        value: "1".into(),
        create_revision: r1,
        mod_revision: r1,
    };
    assert_eq!(value_of(b, &k).await, Some(v1.clone()));
    // Expected 0 on a present key, or a stale revision: the current value, nothing changed.
    assert_eq!(
        b.compare_and_swap(&k, "2", 0).await.unwrap(),
        CasOutcome::Current(Some(v1.clone()))
    );
    assert_eq!(
        b.compare_and_swap(&k, "2", r1 + 1000).await.unwrap(),
        CasOutcome::Current(Some(v1.clone()))
    );
    assert_eq!(value_of(b, &k).await, Some(v1));
    // The right revision swaps and keeps the create revision.
    let r2 = match b.compare_and_swap(&k, "2", r1).await.unwrap() {
        CasOutcome::Swapped(r) => r,
        other => panic!("cas with the current revision gave {other:?}"),
    };
    let kv = value_of(b, &k).await.unwrap();
    assert_eq!(
        (kv.value.as_str(), kv.create_revision, kv.mod_revision),
        ("2", r1, r2)
    );
    // On a deleted key: Current(None), and it stays absent.
    b.delete(&k, Some(r2)).await.unwrap();
    assert_eq!(
        b.compare_and_swap(&k, "3", r2).await.unwrap(),
        CasOutcome::Current(None)
    );
    assert_eq!(value_of(b, &k).await, None);
    // Bad input.
    let err = b.compare_and_swap(&k, "3", -1).await.unwrap_err();
    assert!(matches!(err, BackendError::InvalidRevision { .. }), "{err}");
    let err = b.compare_and_swap(&k, "{", 0).await.unwrap_err();
    assert!(matches!(err, BackendError::InvalidValue { .. }), "{err}");
    assert_eq!(value_of(b, &k).await, None);
}

pub async fn bad_input_is_rejected_and_changes_nothing(b: &dyn Backend, root: &str) {
    let k = format!("{root}bad/a");
    let r1 = b.create(&k, r#"{"ok":true}"#).await.unwrap();
    let before = value_of(b, &k).await;

    let err = b.update(&k, "{not json", r1).await.unwrap_err();
    assert!(matches!(err, BackendError::InvalidValue { .. }), "{err}");
    assert!(err.to_string().contains(&k), "{err}");
    let err = b.update(&k, "{}", 0).await.unwrap_err();
    assert!(matches!(err, BackendError::InvalidRevision { .. }), "{err}");
    let err = b.delete(&k, Some(-1)).await.unwrap_err();
    assert!(matches!(err, BackendError::InvalidRevision { .. }), "{err}");
    let err = b.create("", "{}").await.unwrap_err();
    assert!(matches!(err, BackendError::InvalidKey { .. }), "{err}");
    let err = b.create(&format!("{root}bad/new"), "").await.unwrap_err();
    assert!(matches!(err, BackendError::InvalidValue { .. }), "{err}");

    assert_eq!(value_of(b, &k).await, before);
    assert_eq!(value_of(b, &format!("{root}bad/new")).await, None);
}

pub async fn list_returns_only_the_prefix_sorted(b: &dyn Backend, root: &str) {
    let p = format!("{root}list/a/");
    for name in ["3", "1", "sub/x", "2"] {
        b.create(&format!("{p}{name}"), "{}").await.unwrap();
    }
    // Neighbours that share the text but not the prefix.
    for outside in ["list/a", "list/ab", "list/a0", "lisu"] {
        b.create(&format!("{root}{outside}"), "{}").await.unwrap();
    }
    let listing = b.list(&p).await.unwrap();
    let keys: Vec<String> = listing.items.iter().map(|kv| kv.key.clone()).collect();
    let expected: Vec<String> = ["1", "2", "3", "sub/x"]
        .iter()
        .map(|n| format!("{p}{n}"))
        .collect();
    assert_eq!(keys, expected);
    let newest = listing
        .items
        .iter()
        .map(|kv| kv.mod_revision)
        .max()
        .unwrap();
    assert!(listing.revision >= newest);

    let empty = b.list(&format!("{root}list/none/")).await.unwrap();
    assert!(empty.items.is_empty());
    assert!(empty.revision > 0);
}

pub async fn watch_delivers_every_change_once_in_order(b: &dyn Backend, root: &str) {
    let p = format!("{root}watch/");
    let (a, c, d) = (format!("{p}a"), format!("{p}c"), format!("{p}d"));
    let r0 = b.revision().await.unwrap();
    let mut live = b.watch(&p, r0).await.unwrap();

    let r1 = b.create(&a, "1").await.unwrap();
    let r2 = b.create(&c, "1").await.unwrap();
    b.create(&format!("{root}watchx"), "1").await.unwrap(); // outside the prefix
    let r3 = b.update(&a, "2", r1).await.unwrap();
    let r4 = b.delete(&c, Some(r2)).await.unwrap();
    let r5 = b.create(&d, "1").await.unwrap();
    let r6 = b.update(&d, "2", r5).await.unwrap();
    let r7 = b.delete(&a, None).await.unwrap();
    let expected = vec![
        put(&a, "1", r1, r1),
        put(&c, "1", r2, r2),
        put(&a, "2", r1, r3),
        delete(&c, r4),
        put(&d, "1", r5, r5),
        put(&d, "2", r5, r6),
        delete(&a, r7),
    ];
    assert_eq!(next_events(&mut live, expected.len()).await, expected);

    // Nothing extra: the next item is the next write.
    let sentinel = format!("{p}zz");
    let r8 = b.create(&sentinel, "0").await.unwrap();
    assert_eq!(next_event(&mut live).await, put(&sentinel, "0", r8, r8));

    // A watch from an older revision replays the same history.
    let mut replay = b.watch(&p, r0).await.unwrap();
    assert_eq!(next_events(&mut replay, expected.len()).await, expected);
    assert_eq!(next_event(&mut replay).await, put(&sentinel, "0", r8, r8));

    // A watch from the middle starts right after it.
    let mut middle = b.watch(&p, r4).await.unwrap();
    assert_eq!(next_events(&mut middle, 3).await, expected[4..].to_vec());
}

pub async fn a_listing_followed_by_a_watch_from_its_revision_has_no_gap(
    b: &dyn Backend,
    root: &str,
) {
    let p = format!("{root}listwatch/");
    let k = format!("{p}k");
    let r1 = b.create(&k, "1").await.unwrap();
    let listing = b.list(&p).await.unwrap();
    assert_eq!(listing.items.len(), 1);
    let mut w = b.watch(&p, listing.revision).await.unwrap();
    let r2 = b.update(&k, "2", r1).await.unwrap();
    assert_eq!(next_event(&mut w).await, put(&k, "2", r1, r2));
}

/// Compaction: a watch from before the compacted revision starts with a `Resync` carrying the
/// current state, then continues; a watch from the compacted revision itself just continues.
pub async fn compaction_turns_an_old_watch_into_a_resync(b: &dyn Backend, root: &str) {
    let p = format!("{root}compact/");
    let (a, c, d) = (format!("{p}a"), format!("{p}c"), format!("{p}d"));
    let r1 = b.create(&a, "1").await.unwrap();
    let r2 = b.update(&a, "2", r1).await.unwrap();
    let r3 = b.create(&c, "1").await.unwrap();
    let r4 = b.delete(&c, Some(r3)).await.unwrap();
    b.compact(r4).await.unwrap();

    let mut old = b.watch(&p, r1).await.unwrap();
    match next_event(&mut old).await {
        WatchEvent::Resync(listing) => {
            let kv = KeyValue {
                key: a.clone(),
                value: "2".into(),
                create_revision: r1,
                mod_revision: r2,
            };
            assert_eq!(listing.items, vec![kv]);
            assert!(listing.revision >= r4);
        }
        other => panic!("expected a resync, got {other:?}"),
    }
    let mut current = b.watch(&p, r4).await.unwrap();
    let r5 = b.create(&d, "1").await.unwrap();
    assert_eq!(next_event(&mut old).await, put(&d, "1", r5, r5));
    assert_eq!(next_event(&mut current).await, put(&d, "1", r5, r5));
}
