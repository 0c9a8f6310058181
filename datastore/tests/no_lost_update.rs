//! No lost update: 16 writers doing 500 compare-and-swap increments each (read, update with the
//! read revision, retry on conflict) end with exact counts, on one shared key and on 16 keys.
//! sqlite: 16 separate OS processes on one file. etcd: 16 tasks with 16 connections.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_datastore::{Backend, BackendError, CasOutcome, SqliteBackend, WatchEvent};
use fabric_testkit::ChildGuard;

use common::{counter, counter_of};

const WRITERS: usize = 16;
const INCREMENTS: u64 = 500;

/// How a writer does one increment.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `get`, then `update(expected = mod_revision)` (or `create`); re-read after a conflict.
    ReadThenUpdate,
    /// `compare_and_swap`, whose conflict answer carries the current value (one round trip).
    CompareAndSwap,
}

/// One writer. It keeps the value and revision it last read or wrote, so an increment on an
/// uncontended key is a single write; on a conflict it pauses a short random time (so 16
/// writers on one key do not burn the CPU on attempts that are bound to fail) and retries.
struct Writer {
    key: String,
    mode: Mode,
    known: Option<Option<(u64, i64)>>,
    rng: u64,
}

impl Writer {
    fn new(key: String, mode: Mode, seed: u64) -> Writer {
        Writer {
            key,
            mode,
            known: None,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    async fn pause(&mut self, conflicts: u32) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let cap_us = 250u64 << conflicts.min(6);
        tokio::time::sleep(Duration::from_micros(self.rng % cap_us)).await;
    }

    async fn increment(&mut self, b: &dyn Backend) {
        let mut conflicts = 0;
        loop {
            let known = match self.known {
                Some(known) => known,
                None => b
                    .get(&self.key)
                    .await
                    .unwrap()
                    .map(|kv| (counter_of(&kv.value), kv.mod_revision)),
            };
            let (n, expected) = known.unwrap_or((0, 0));
            let next = counter(n + 1);
            let written = match self.mode {
                Mode::ReadThenUpdate => {
                    let result = if expected == 0 {
                        b.create(&self.key, &next).await
                    } else {
                        b.update(&self.key, &next, expected).await
                    };
                    match result {
                        Ok(rev) => Ok(rev),
                        Err(BackendError::Conflict { .. } | BackendError::AlreadyExists { .. }) => {
                            Err(None)
                        }
                        Err(e) => panic!("increment of {} failed: {e}", self.key),
                    }
                }
                Mode::CompareAndSwap => {
                    match b.compare_and_swap(&self.key, &next, expected).await {
                        Ok(CasOutcome::Swapped(rev)) => Ok(rev),
                        Ok(CasOutcome::Current(kv)) => {
                            Err(Some(kv.map(|kv| (counter_of(&kv.value), kv.mod_revision))))
                        }
                        Err(e) => panic!("increment of {} failed: {e}", self.key),
                    }
                }
            };
            match written {
                Ok(rev) => {
                    self.known = Some(Some((n + 1, rev)));
                    return;
                }
                Err(current) => {
                    self.known = current;
                    conflicts += 1;
                    self.pause(conflicts).await;
                }
            }
        }
    }
}

/// Runs the writers as tasks, writer `i` on `backends[i]` and key `key_of(i)`.
async fn run_tasks(backends: Vec<Arc<dyn Backend>>, mode: Mode, key_of: impl Fn(usize) -> String) {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, b) in backends.into_iter().enumerate() {
        let mut writer = Writer::new(key_of(i), mode, i as u64 + 1);
        tasks.spawn(async move {
            for _ in 0..INCREMENTS {
                writer.increment(b.as_ref()).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

async fn value(b: &dyn Backend, key: &str) -> u64 {
    counter_of(&b.get(key).await.unwrap().unwrap().value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_tasks_on_one_mem_key_lose_no_update() {
    for (mode, key) in [(Mode::ReadThenUpdate, "/a"), (Mode::CompareAndSwap, "/b")] {
        let b: Arc<dyn Backend> = Arc::new(common::mem());
        run_tasks(vec![b.clone(); WRITERS], mode, |_| key.into()).await;
        assert_eq!(value(b.as_ref(), key).await, WRITERS as u64 * INCREMENTS);
    }
}

async fn sixteen_etcd_connections(endpoint: &str) -> Vec<Arc<dyn Backend>> {
    // One prefix for all: the writers must share the keys, each over its own connection.
    let prefix = format!("/{}", fabric_testkit::unique_name("cas"));
    let mut out: Vec<Arc<dyn Backend>> = Vec::new();
    for _ in 0..WRITERS {
        let b =
            fabric_datastore::EtcdBackend::connect_with_prefix(&[endpoint.to_string()], &prefix)
                .await
                .unwrap();
        out.push(Arc::new(b));
    }
    out
}

// One thread: the debug-built gRPC client is the bottleneck, and it costs less CPU per
// request without cross-thread wake-ups.
#[tokio::test(flavor = "current_thread")]
async fn sixteen_etcd_connections_on_one_key_lose_no_update() {
    let etcd = tokio::task::spawn_blocking(fabric_testkit::test_etcd)
        .await
        .unwrap();
    let backends = sixteen_etcd_connections(&etcd.endpoint()).await;
    let check = backends[0].clone();
    run_tasks(backends, Mode::CompareAndSwap, |_| "/counter".into()).await;
    assert_eq!(
        value(check.as_ref(), "/counter").await,
        WRITERS as u64 * INCREMENTS
    );
}

// One thread: the debug-built gRPC client is the bottleneck, and it costs less CPU per
// request without cross-thread wake-ups.
#[tokio::test(flavor = "current_thread")]
async fn sixteen_etcd_connections_on_sixteen_keys_lose_no_update() {
    let etcd = tokio::task::spawn_blocking(fabric_testkit::test_etcd)
        .await
        .unwrap();
    let backends = sixteen_etcd_connections(&etcd.endpoint()).await;
    let check = backends[0].clone();
    run_tasks(backends, Mode::ReadThenUpdate, |i| format!("/counter/{i}")).await;
    for i in 0..WRITERS {
        assert_eq!(
            value(check.as_ref(), &format!("/counter/{i}")).await,
            INCREMENTS
        );
    }
}

/// Runs 16 `fabric-datastore-cas-worker` processes on `db`, worker `i` on `key_of(i)`, and waits
/// (at most two minutes) for all of them to succeed.
fn run_processes(db: &std::path::Path, key_of: impl Fn(usize) -> String) {
    let worker = env!("CARGO_BIN_EXE_fabric-datastore-cas-worker");
    let mut children: Vec<ChildGuard> = (0..WRITERS)
        .map(|i| {
            let child = Command::new(worker)
                .arg("--sqlite")
                .arg(db)
                .args(["--key", &key_of(i)])
                .args(["--increments", &INCREMENTS.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            ChildGuard(child)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for child in &mut children {
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.0.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut err).unwrap();
                }
                assert!(status.success(), "worker failed: {status}: {err}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "workers still running after 120 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Also checks the cross-process watch: a watcher in this process sees every one of the
/// other processes' writes to the key exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_processes_on_one_sqlite_key_lose_no_update_and_a_watcher_sees_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calico.db");
    let b = SqliteBackend::open(&db).unwrap();
    let r0 = b.revision().await.unwrap();
    let mut w = b.watch("/counter", r0).await.unwrap();

    let path = db.clone();
    tokio::task::spawn_blocking(move || run_processes(&path, |_| "/counter".into()))
        .await
        .unwrap();

    let total = WRITERS as u64 * INCREMENTS;
    assert_eq!(value(&b, "/counter").await, total);
    let mut last = r0;
    for n in 1..=total {
        match common::next_event(&mut w).await {
            WatchEvent::Put(kv) => {
                assert_eq!(counter_of(&kv.value), n);
                assert!(kv.mod_revision > last);
                last = kv.mod_revision;
            }
            other => panic!("unexpected watch item {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_processes_on_sixteen_sqlite_keys_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calico.db");
    let path = db.clone();
    tokio::task::spawn_blocking(move || run_processes(&path, |i| format!("/counter/{i}")))
        .await
        .unwrap();
    let b = SqliteBackend::open(&db).unwrap();
    for i in 0..WRITERS {
        assert_eq!(value(&b, &format!("/counter/{i}")).await, INCREMENTS);
    }
}
