//! Helpers shared by the datastore integration tests: backends to test against, and reading a
//! watch with a deadline.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use fabric_datastore::{
    Backend, EtcdBackend, KeyValue, MemBackend, Revision, SqliteBackend, WatchEvent, WatchStream,
};
use fabric_testkit::{TestEtcd, test_etcd, unique_name};

/// How long a test waits for one watch item before it fails.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A fresh in-memory backend.
pub fn mem() -> MemBackend {
    MemBackend::new()
}

/// A fresh sqlite backend in a temporary directory (kept alive by the returned guard).
pub fn sqlite() -> (tempfile::TempDir, SqliteBackend) {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteBackend::open(dir.path().join("db").join("calico.db")).unwrap();
    (dir, backend)
}

/// The suite's etcd (or one of this test's own) and a backend under a unique key prefix.
pub async fn etcd() -> (TestEtcd, EtcdBackend) {
    let etcd = tokio::task::spawn_blocking(test_etcd).await.unwrap();
    let backend = etcd_client_for(&etcd.endpoint()).await;
    (etcd, backend)
}

/// A new connection to `endpoint` under a fresh unique key prefix.
pub async fn etcd_client_for(endpoint: &str) -> EtcdBackend {
    let prefix = format!("/{}", unique_name("test-ds"));
    EtcdBackend::connect_with_prefix(&[endpoint.to_string()], &prefix)
        .await
        .unwrap()
}

/// The next watch item, failing the test after [`EVENT_TIMEOUT`].
pub async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.recv()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

/// The next `n` watch items.
pub async fn next_events(stream: &mut WatchStream, n: usize) -> Vec<WatchEvent> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_event(stream).await);
    }
    out
}

/// A Put event as the watch should report it.
pub fn put(
    key: &str,
    value: &str,
    create_revision: Revision,
    mod_revision: Revision,
) -> WatchEvent {
    WatchEvent::Put(KeyValue {
        key: key.to_string(),
        value: value.to_string(),
        create_revision,
        mod_revision,
    })
}

/// A Delete event as the watch should report it.
pub fn delete(key: &str, mod_revision: Revision) -> WatchEvent {
    WatchEvent::Delete {
        key: key.to_string(),
        mod_revision,
    }
}

/// Writes `{"n": value}`-style counters: the JSON text for `n`.
pub fn counter(n: u64) -> String {
    format!(r#"{{"n":{n}}}"#)
}

/// Reads the counter `n` from a JSON value.
pub fn counter_of(value: &str) -> u64 {
    let doc: serde_json::Value = serde_json::from_str(value).unwrap();
    doc["n"].as_u64().unwrap()
}

/// Retries `f` while it fails with `Unavailable` (etcd restarting), for up to 30 s.
pub async fn retry_unavailable<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, fabric_datastore::BackendError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.is_unavailable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("operation failed: {e}"),
        }
    }
}

/// Compile-time check that every backend is usable as `dyn Backend`.
pub fn as_dyn(b: &impl Backend) -> &dyn Backend {
    b
}
