//! The raw syncer: snapshot, one InSync, then deltas; a backend resync reaches the consumer as
//! exactly the difference (no gap, nothing repeated).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fabric_datastore::syncer::{self, SyncEvent};
use fabric_datastore::{Backend, KeyValue};
use tokio::sync::mpsc::Receiver;

async fn next(rx: &mut Receiver<SyncEvent>) -> SyncEvent {
    match tokio::time::timeout(common::EVENT_TIMEOUT, rx.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("syncer stopped"),
        Err(_) => panic!("no sync event within {:?}", common::EVENT_TIMEOUT),
    }
}

/// What a consumer holds; panics on an event that repeats what it already has.
#[derive(Default)]
struct View {
    keys: BTreeMap<String, KeyValue>,
    events: usize,
}

impl View {
    fn apply(&mut self, event: SyncEvent) {
        self.events += 1;
        match event {
            SyncEvent::Update(kv) => {
                if let Some(old) = self.keys.get(&kv.key) {
                    assert!(
                        kv.mod_revision > old.mod_revision,
                        "update of {} repeats or goes back: {} after {}",
                        kv.key,
                        kv.mod_revision,
                        old.mod_revision
                    );
                }
                self.keys.insert(kv.key.clone(), kv);
            }
            SyncEvent::Delete { key } => {
                assert!(
                    self.keys.remove(&key).is_some(),
                    "delete of unknown key {key}"
                );
            }
            SyncEvent::InSync => panic!("a second InSync"),
        }
    }

    /// Applies events until InSync.
    async fn until_in_sync(&mut self, rx: &mut Receiver<SyncEvent>) {
        loop {
            match next(rx).await {
                SyncEvent::InSync => return,
                event => self.apply(event),
            }
        }
    }
}

async fn listed(b: &dyn Backend, prefixes: &[&str]) -> BTreeMap<String, KeyValue> {
    let mut out = BTreeMap::new();
    for p in prefixes {
        for kv in b.list(p).await.unwrap().items {
            out.insert(kv.key.clone(), kv);
        }
    }
    out
}

/// The same checks on any backend.
async fn snapshot_then_in_sync_then_deltas(b: Arc<dyn Backend>) {
    for k in ["/s/a/1", "/s/a/2", "/s/b/1", "/other/x"] {
        b.create(k, r#"{"v":1}"#).await.unwrap();
    }
    let prefixes = ["/s/a/", "/s/b/"];
    let mut rx = syncer::start(b.clone(), prefixes.iter().map(|p| p.to_string()).collect());
    let mut view = View::default();
    view.until_in_sync(&mut rx).await;
    assert_eq!(view.keys, listed(b.as_ref(), &prefixes).await);
    assert_eq!(view.keys.len(), 3);

    let a1 = b.get("/s/a/1").await.unwrap().unwrap();
    b.update("/s/a/1", r#"{"v":2}"#, a1.mod_revision)
        .await
        .unwrap();
    b.delete("/s/a/2", None).await.unwrap();
    b.create("/s/b/2", "{}").await.unwrap();
    b.create("/other/y", "{}").await.unwrap();
    let r = b.create("/s/a/zz", "{}").await.unwrap();
    // Four deltas, then nothing else (the write outside the prefixes is not seen).
    let mut a_events = Vec::new();
    for _ in 0..4 {
        match next(&mut rx).await {
            event @ (SyncEvent::Update(_) | SyncEvent::Delete { .. }) => {
                let key = match &event {
                    SyncEvent::Update(kv) => kv.key.clone(),
                    SyncEvent::Delete { key } => key.clone(),
                    SyncEvent::InSync => unreachable!(),
                };
                if key.starts_with("/s/a/") {
                    a_events.push(event.clone());
                }
                view.apply(event);
            }
            SyncEvent::InSync => panic!("a second InSync"),
        }
    }
    // Within one prefix, deltas come in revision order.
    assert!(matches!(&a_events[0], SyncEvent::Update(kv) if kv.key == "/s/a/1"));
    assert_eq!(
        a_events[1],
        SyncEvent::Delete {
            key: "/s/a/2".into()
        }
    );
    assert!(matches!(&a_events[2], SyncEvent::Update(kv) if kv.mod_revision == r));
    assert_eq!(view.keys, listed(b.as_ref(), &prefixes).await);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err(),
        "an unexpected extra event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_syncer_on_mem_sends_the_snapshot_then_in_sync_then_deltas() {
    snapshot_then_in_sync_then_deltas(Arc::new(common::mem())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_syncer_on_sqlite_sends_the_snapshot_then_in_sync_then_deltas() {
    let (_dir, b) = common::sqlite();
    snapshot_then_in_sync_then_deltas(Arc::new(b)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_syncer_on_etcd_sends_the_snapshot_then_in_sync_then_deltas() {
    let (_etcd, b) = common::etcd().await;
    snapshot_then_in_sync_then_deltas(Arc::new(b)).await;
}

/// The consumer stops reading, so the watch behind the syncer stalls on its full buffers;
/// meanwhile thousands of changes are made and the history is compacted. When the consumer
/// reads again, the watch must resync, and the syncer must turn that into the difference:
/// the consumer ends up with exactly the store, having never been told anything twice, and
/// with far fewer events than there were writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_reaches_the_consumer_as_exactly_the_difference() {
    let b = Arc::new(common::mem());
    let mut revs = BTreeMap::new();
    for i in 0..100 {
        let key = format!("/s/{i:03}");
        revs.insert(key.clone(), b.create(&key, "0").await.unwrap());
    }
    let mut rx = syncer::start(b.clone(), vec!["/s/".into()]);
    let mut view = View::default();
    view.until_in_sync(&mut rx).await;
    view.events = 0;

    let rounds = 60;
    for round in 1..=rounds {
        for i in 0..100 {
            let key = format!("/s/{i:03}");
            let rev = revs[&key];
            revs.insert(
                key.clone(),
                b.update(&key, &round.to_string(), rev).await.unwrap(),
            );
        }
    }
    for i in 0..10 {
        b.delete(&format!("/s/{i:03}"), None).await.unwrap();
    }
    b.create("/s/new", "1").await.unwrap();
    let writes = rounds * 100 + 11;
    b.compact(b.revision().await.unwrap()).await.unwrap();

    let expected = listed(b.as_ref(), &["/s/"]).await;
    while view.keys != expected {
        view.apply(next(&mut rx).await);
    }
    assert!(
        view.events < writes,
        "{} events for {writes} writes: the resync did not coalesce",
        view.events
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err(),
        "an unexpected extra event"
    );
}
