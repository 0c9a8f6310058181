//! Watches across an etcd restart: no lost event, no duplicate, in order; and a resync when the
//! history was compacted while the watcher was cut off.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use fabric_datastore::{Backend, EtcdBackend, WatchEvent};
use fabric_testkit::{EtcdServer, TcpProxy, unique_name};

use common::{next_event, put, retry_unavailable};

/// What a watcher holds: key -> (value, mod_revision), and the last revision applied.
struct View {
    keys: BTreeMap<String, (String, i64)>,
    last: i64,
    resyncs: usize,
}

impl View {
    fn new(from: i64) -> View {
        View {
            keys: BTreeMap::new(),
            last: from,
            resyncs: 0,
        }
    }

    fn apply(&mut self, event: WatchEvent) {
        let rev = event.revision();
        assert!(
            rev > self.last,
            "event revision {rev} not after {}",
            self.last
        );
        self.last = rev;
        match event {
            WatchEvent::Put(kv) => {
                self.keys.insert(kv.key, (kv.value, kv.mod_revision));
            }
            WatchEvent::Delete { key, .. } => {
                assert!(
                    self.keys.remove(&key).is_some(),
                    "delete of unknown key {key}"
                );
            }
            WatchEvent::Resync(listing) => {
                self.resyncs += 1;
                self.keys.clear();
                for kv in listing.items {
                    self.keys.insert(kv.key, (kv.value, kv.mod_revision));
                }
            }
        }
    }
}

async fn own_etcd() -> (EtcdServer, EtcdBackend) {
    let server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .unwrap();
    let b = common::etcd_client_for(&server.endpoint()).await;
    (server, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_across_an_etcd_restart_without_losing_or_repeating_events() {
    let (mut server, b) = own_etcd().await;
    let r0 = b.revision().await.unwrap();
    let mut w = b.watch("/k/", r0).await.unwrap();

    let mut expected = Vec::new();
    for i in 0..50 {
        let key = format!("/k/{i:03}");
        let r = b.create(&key, &i.to_string()).await.unwrap();
        expected.push(put(&key, &i.to_string(), r, r));
    }
    // Read some now so the watcher is mid-stream when etcd dies.
    for e in &expected[..10] {
        assert_eq!(&next_event(&mut w).await, e);
    }

    tokio::task::block_in_place(|| server.stop());
    let err = b.create("/k/while-down", "0").await.unwrap_err();
    assert!(err.is_unavailable(), "a write to a stopped etcd gave {err}");
    tokio::task::block_in_place(|| server.start_again());

    for i in 50..100 {
        let key = format!("/k/{i:03}");
        let value = i.to_string();
        let r = retry_unavailable(|| b.create(&key, &value)).await;
        expected.push(put(&key, &i.to_string(), r, r));
    }
    for e in &expected[10..] {
        assert_eq!(&next_event(&mut w).await, e);
    }
    // Nothing extra after the restart: the next item is the next write.
    let r = b.create("/k/zzz", "0").await.unwrap();
    assert_eq!(next_event(&mut w).await, put("/k/zzz", "0", r, r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_opened_while_etcd_is_down_delivers_once_it_is_back() {
    let (mut server, b) = own_etcd().await;
    let r0 = b.revision().await.unwrap();
    tokio::task::block_in_place(|| server.stop());
    let mut w = b.watch("/k/", r0).await.unwrap();
    tokio::task::block_in_place(|| server.start_again());
    let r = retry_unavailable(|| b.create("/k/a", "1")).await;
    assert_eq!(next_event(&mut w).await, put("/k/a", "1", r, r));
}

/// The watcher is cut off from etcd (a partition, etcd itself stays up) while keys change and
/// the history is compacted; when it gets back it must resync to exactly the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_missed_compacted_history_during_a_partition_resyncs_to_the_store() {
    let server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .unwrap();
    let target = server
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = TcpProxy::start(target);
    let prefix = format!("/{}", unique_name("partition"));
    let b = EtcdBackend::connect_with_prefix(&[server.endpoint()], &prefix)
        .await
        .unwrap();
    let watcher = EtcdBackend::connect_with_prefix(&[proxy.url()], &prefix)
        .await
        .unwrap();

    let r0 = b.revision().await.unwrap();
    let mut w = watcher.watch("/k/", r0).await.unwrap();
    let mut revs = BTreeMap::new();
    for i in 0..20 {
        let key = format!("/k/{i:02}");
        revs.insert(key.clone(), b.create(&key, "1").await.unwrap());
    }
    let mut view = View::new(r0);
    for _ in 0..20 {
        view.apply(next_event(&mut w).await);
    }

    proxy.cut();
    for i in 0..10 {
        let key = format!("/k/{i:02}");
        b.update(&key, "2", revs[&key]).await.unwrap();
    }
    for i in 10..15 {
        b.delete(&format!("/k/{i:02}"), None).await.unwrap();
    }
    let r_compact = b.revision().await.unwrap();
    b.compact(r_compact).await.unwrap();
    let r_last = b.create("/k/last", "1").await.unwrap();
    proxy.restore();

    while view.last < r_last {
        view.apply(next_event(&mut w).await);
    }
    assert_eq!(view.resyncs, 1, "the watcher should have resynced once");
    let listing = b.list("/k/").await.unwrap();
    let store: BTreeMap<String, (String, i64)> = listing
        .items
        .into_iter()
        .map(|kv| (kv.key, (kv.value, kv.mod_revision)))
        .collect();
    assert_eq!(view.keys, store);
    assert_eq!(store.len(), 16);
}
