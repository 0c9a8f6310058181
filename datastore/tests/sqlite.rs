//! sqlite specifics: opening bad paths and bad files gives clear errors and changes nothing;
//! data survives a reopen; the change-log retention policy turns an old watch into a resync; a
//! schema version 1 file is upgraded in place.
#![allow(clippy::unwrap_used)]

mod common;

use fabric_datastore::{Backend, BackendError, SqliteBackend, SqliteOptions, WatchEvent};

fn full_message(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[test]
fn a_file_that_is_not_a_database_is_rejected_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calico.db");
    let garbage = b"this is not a sqlite database, just some text that is long enough".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteBackend::open(&path).unwrap_err();
    assert!(matches!(err, BackendError::Sqlite { .. }), "{err}");
    let message = full_message(&err);
    assert!(message.contains(path.to_str().unwrap()), "{message}");
    assert!(message.contains("not a database"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[test]
fn a_directory_as_the_database_path_is_rejected_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteBackend::open(dir.path()).unwrap_err();
    let message = full_message(&err);
    assert!(message.contains(dir.path().to_str().unwrap()), "{message}");
}

#[test]
fn a_parent_that_cannot_be_created_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let err = SqliteBackend::open(file.join("sub/calico.db")).unwrap_err();
    assert!(matches!(err, BackendError::Io { .. }), "{err}");
    assert!(
        err.to_string().starts_with("creating the directory"),
        "{err}"
    );
    assert!(err.to_string().contains("plain-file"), "{err}");
}

#[test]
fn another_applications_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY);")
        .unwrap();
    drop(conn);
    let err = SqliteBackend::open(&path).unwrap_err();
    assert!(matches!(err, BackendError::NotADatastore { .. }), "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        tables, 1,
        "our tables must not be added to a foreign database"
    );
}

#[test]
fn a_database_with_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calico.db");
    drop(SqliteBackend::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE meta SET value = 99 WHERE name = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteBackend::open(&path).unwrap_err();
    assert!(
        matches!(err, BackendError::SchemaVersion { found: 99, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_the_revision_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calico.db");
    let b = SqliteBackend::open(&path).unwrap();
    let r1 = b.create("/k", r#"{"a":1}"#).await.unwrap();
    drop(b);
    let b = SqliteBackend::open(&path).unwrap();
    assert_eq!(b.revision().await.unwrap(), r1);
    assert_eq!(b.get("/k").await.unwrap().unwrap().mod_revision, r1);
    assert_eq!(b.create("/k2", "1").await.unwrap(), r1 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_log_keeps_the_configured_history_and_older_watches_resync() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        history_revisions: 20,
        ..SqliteOptions::default()
    };
    let b = SqliteBackend::open_with(dir.path().join("calico.db"), options).unwrap();
    let r0 = b.revision().await.unwrap();
    let mut rev = b.create("/k/a", "0").await.unwrap();
    for n in 1..100 {
        rev = b.update("/k/a", &n.to_string(), rev).await.unwrap();
    }
    // The last 20 revisions are always kept: a watch from 20 back replays them.
    let mut recent = b.watch("/k/", rev - 20).await.unwrap();
    for n in 80..100 {
        match common::next_event(&mut recent).await {
            WatchEvent::Put(kv) => assert_eq!(kv.value, n.to_string()),
            other => panic!("expected a put, got {other:?}"),
        }
    }
    // A watch from the start was compacted away: it resyncs.
    let mut old = b.watch("/k/", r0).await.unwrap();
    match common::next_event(&mut old).await {
        WatchEvent::Resync(listing) => {
            assert_eq!(listing.items.len(), 1);
            assert_eq!(listing.items[0].value, "99");
        }
        other => panic!("expected a resync, got {other:?}"),
    }
}

/// The schema version 1 layout (one change-log row per revision), as older builds wrote it.
const SCHEMA_V1: &str = "
PRAGMA application_id = 1178747987;
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE kv (
    key TEXT PRIMARY KEY, value TEXT NOT NULL,
    create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE changes (
    revision INTEGER PRIMARY KEY, key TEXT NOT NULL, value TEXT,
    create_revision INTEGER NOT NULL
);
INSERT INTO meta (name, value) VALUES ('schema_version', 1), ('revision', 3), ('compacted', 1);
INSERT INTO kv VALUES ('/k/a', '2', 2, 3);
INSERT INTO changes VALUES (2, '/k/a', '1', 2), (3, '/k/a', '2', 2);
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_file_is_upgraded_keeping_its_data_and_history() {
    use fabric_datastore::{TxnOp, TxnOutcome};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calico.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    drop(conn);

    let b = SqliteBackend::open(&path).unwrap();
    assert_eq!(b.revision().await.unwrap(), 3);
    let mut w = b.watch("/k/", 1).await.unwrap();
    assert_eq!(
        common::next_events(&mut w, 2).await,
        vec![
            common::put("/k/a", "1", 2, 2),
            common::put("/k/a", "2", 2, 3)
        ]
    );
    let ops = [
        TxnOp::Put {
            key: "/k/a".into(),
            value: "3".into(),
            expected: 3,
        },
        TxnOp::Put {
            key: "/k/b".into(),
            value: "1".into(),
            expected: 0,
        },
    ];
    assert_eq!(b.transaction(&ops).await.unwrap(), TxnOutcome::Committed(4));
    assert_eq!(
        common::next_events(&mut w, 2).await,
        vec![
            common::put("/k/a", "3", 2, 4),
            common::put("/k/b", "1", 4, 4)
        ]
    );
    drop(b);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, 2);
}

#[test]
fn several_processes_opening_a_new_file_at_once_all_succeed() {
    // Three calico-nodes starting together on a new file: each switches it to WAL mode and
    // creates the schema at the same moment (sqlite answers one of them busy without waiting).
    let worker = env!("CARGO_BIN_EXE_fabric-datastore-cas-worker");
    for round in 0..15 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calico.db");
        let children: Vec<_> = (0..6)
            .map(|i| {
                std::process::Command::new(worker)
                    .arg("--sqlite")
                    .arg(&path)
                    .args(["--key", &format!("/k/{i}"), "--increments", "1"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
