//! Multi-key transactions under contention: 8 writers move units between 4 counters, each move
//! one two-key transaction retried on conflict with the values the failed transaction returned.
//! No unit is lost or made up, every writer's moves are all in the final counts, and a watcher
//! replaying the changes revision by revision never sees a half-applied move. On mem, sqlite (8
//! connections to one file) and etcd (8 connections).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_datastore::{Backend, Revision, TxnOp, TxnOutcome, WatchEvent};

use common::{counter, counter_of, next_event};

const WRITERS: usize = 8;
const MOVES: usize = 100;
const COUNTERS: usize = 4;
const START: u64 = 1_000;

fn key(i: usize) -> String {
    format!("/txn-atomicity/k{i}")
}

/// One writer: moves a unit from counter `from` to counter `to`, `MOVES` times; returns the
/// net change it made to each counter.
async fn writer(b: Arc<dyn Backend>, seed: u64) -> [i64; COUNTERS] {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut net = [0i64; COUNTERS];
    for _ in 0..MOVES {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let from = (rng % COUNTERS as u64) as usize;
        let to = (from + 1 + (rng >> 8) as usize % (COUNTERS - 1)) % COUNTERS;
        let mut known: Vec<(u64, Revision)> = Vec::new();
        for i in [from, to] {
            let kv = b.get(&key(i)).await.unwrap().unwrap();
            known.push((counter_of(&kv.value), kv.mod_revision));
        }
        loop {
            let ops = [
                TxnOp::Put {
                    key: key(from),
                    value: counter(known[0].0 - 1),
                    expected: known[0].1,
                },
                TxnOp::Put {
                    key: key(to),
                    value: counter(known[1].0 + 1),
                    expected: known[1].1,
                },
            ];
            match b.transaction(&ops).await.unwrap() {
                TxnOutcome::Committed(_) => break,
                TxnOutcome::Current(current) => {
                    known = current
                        .iter()
                        .map(|kv| {
                            let kv = kv.as_ref().unwrap();
                            (counter_of(&kv.value), kv.mod_revision)
                        })
                        .collect();
                    tokio::task::yield_now().await;
                }
            }
        }
        net[from] -= 1;
        net[to] += 1;
    }
    net
}

async fn moves_are_atomic(backends: Vec<Arc<dyn Backend>>) {
    let b = backends[0].clone();
    let mut start = 0;
    for i in 0..COUNTERS {
        start = b.create(&key(i), &counter(START)).await.unwrap();
    }
    let mut watch = b.watch("/txn-atomicity/", start).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, backend) in backends.into_iter().enumerate() {
        tasks.spawn(writer(backend, i as u64 + 1));
    }
    let mut net = [0i64; COUNTERS];
    while let Some(done) = tasks.join_next().await {
        for (n, d) in net.iter_mut().zip(done.unwrap()) {
            *n += d;
        }
    }
    // Final counts: exactly every writer's moves.
    for (i, n) in net.iter().enumerate() {
        let kv = b.get(&key(i)).await.unwrap().unwrap();
        assert_eq!(
            counter_of(&kv.value) as i64,
            START as i64 + n,
            "counter {i}"
        );
    }
    // The watch: two changes per revision, and the total intact after every revision.
    let mut values: BTreeMap<String, u64> = (0..COUNTERS).map(|i| (key(i), START)).collect();
    let mut revisions = 0;
    while revisions < WRITERS * MOVES {
        let first = next_event(&mut watch).await;
        let second = next_event(&mut watch).await;
        assert_eq!(
            first.revision(),
            second.revision(),
            "a move's two changes must share a revision"
        );
        for event in [first, second] {
            match event {
                WatchEvent::Put(kv) => {
                    values.insert(kv.key.clone(), counter_of(&kv.value));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            values.values().sum::<u64>(),
            START * COUNTERS as u64,
            "after revision {revisions}"
        );
        revisions += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_key_moves_on_mem_are_atomic_under_contention() {
    let b: Arc<dyn Backend> = Arc::new(common::mem());
    moves_are_atomic(vec![b; WRITERS]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_key_moves_on_sqlite_are_atomic_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calico.db");
    let backends = (0..WRITERS)
        .map(|_| {
            Arc::new(fabric_datastore::SqliteBackend::open(&path).unwrap()) as Arc<dyn Backend>
        })
        .collect();
    moves_are_atomic(backends).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_key_moves_on_etcd_are_atomic_under_contention() {
    let etcd = tokio::task::spawn_blocking(fabric_testkit::test_etcd)
        .await
        .unwrap();
    let endpoint = [etcd.endpoint()];
    // One key prefix (one store), a connection per writer.
    let prefix = format!("/{}", fabric_testkit::unique_name("txn-atomicity"));
    let mut backends: Vec<Arc<dyn Backend>> = Vec::new();
    for _ in 0..WRITERS {
        let b = fabric_datastore::EtcdBackend::connect_with_prefix(&endpoint, &prefix)
            .await
            .unwrap();
        backends.push(Arc::new(b));
    }
    moves_are_atomic(backends).await;
}
