//! Every backend passes the same conformance suite: mem, sqlite and a real etcd.
#![allow(clippy::unwrap_used)]

mod common;
mod suite;

use fabric_testkit::{EtcdServer, unique_name};

#[tokio::test]
async fn the_mem_backend_passes_the_conformance_suite() {
    let b = common::mem();
    suite::run(&b, "/conf/").await;
    suite::compaction_turns_an_old_watch_into_a_resync(&b, "/conf/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_backend_passes_the_conformance_suite() {
    let (_dir, b) = common::sqlite();
    suite::run(&b, "/conf/").await;
    suite::compaction_turns_an_old_watch_into_a_resync(&b, "/conf/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_backend_passes_the_conformance_suite_on_a_shared_etcd() {
    let (_etcd, b) = common::etcd().await;
    suite::run(&b, "/conf/").await;
}

/// Compaction is store-wide, so it runs on an etcd of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_on_etcd_turns_an_old_watch_into_a_resync() {
    let server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .unwrap();
    let b = common::etcd_client_for(&server.endpoint()).await;
    suite::compaction_turns_an_old_watch_into_a_resync(&b, "/conf/").await;
}

/// Two connections to one sqlite file behave as one store (the other's writes are seen by
/// watches and by compare-and-swap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_to_one_sqlite_file_see_each_others_writes() {
    use fabric_datastore::{Backend, BackendError, SqliteBackend};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(unique_name("shared")).with_extension("db");
    let a = SqliteBackend::open(&path).unwrap();
    let b = SqliteBackend::open(&path).unwrap();
    let r0 = a.revision().await.unwrap();
    let mut w = a.watch("/k/", r0).await.unwrap();
    let r1 = b.create("/k/x", "1").await.unwrap();
    assert_eq!(
        common::next_event(&mut w).await,
        common::put("/k/x", "1", r1, r1)
    );
    let r2 = a.update("/k/x", "2", r1).await.unwrap();
    assert!(matches!(
        b.update("/k/x", "3", r1).await,
        Err(BackendError::Conflict { actual: Some(actual), .. }) if actual == r2
    ));
}
