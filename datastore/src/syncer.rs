//! The raw syncer: a snapshot of several key prefixes, one `InSync`, then every change, with
//! backend resyncs turned into exact differences so consumers never see a gap.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::backend::{Backend, KeyValue, Listing, Revision, WatchEvent};
use crate::changelog::Backoff;

/// How many events may wait for the consumer.
const SYNC_BUFFER: usize = 1024;

/// One item of the syncer's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A key now has this value (created, updated, or changed while the watch was resyncing).
    Update(KeyValue),
    /// A key is gone.
    Delete {
        /// The key.
        key: String,
    },
    /// Every prefix's snapshot has been sent; sent exactly once, before any delta.
    InSync,
}

/// Starts syncing `prefixes` from `backend`; must be called inside a tokio runtime.
///
/// Lists every prefix and emits the snapshot as `Update`s, then `InSync` once, then the
/// changes as they happen. A backend `Resync` (compaction, reconnect) is turned into the exact
/// `Update`/`Delete` differences against what was already emitted: no gaps, no repeats (an
/// `Update` is only sent when the key's mod_revision differs from the one last emitted).
/// Overlapping prefixes are merged (`/a/` covers `/a/b/`). Errors (an unreachable datastore)
/// are retried with backoff, up to 5 s apart, and logged. Dropping the receiver stops it.
///
/// Order: changes under one prefix come in revision order; changes under different prefixes
/// are interleaved as they arrive.
pub fn start(backend: Arc<dyn Backend>, prefixes: Vec<String>) -> mpsc::Receiver<SyncEvent> {
    let prefixes = normalize(prefixes);
    let (tx, rx) = mpsc::channel(SYNC_BUFFER);
    tokio::spawn(run(backend, prefixes, tx));
    rx
}

/// Sorts, deduplicates and drops prefixes covered by a shorter one.
fn normalize(mut prefixes: Vec<String>) -> Vec<String> {
    prefixes.sort();
    prefixes.dedup();
    let mut kept: Vec<String> = Vec::new();
    for p in prefixes {
        if !kept.iter().any(|k| p.starts_with(k.as_str())) {
            kept.push(p);
        }
    }
    kept
}

/// What the consumer has been told: key -> mod_revision.
#[derive(Debug, Default)]
struct Emitted {
    keys: BTreeMap<String, Revision>,
}

impl Emitted {
    /// The sync events that bring the consumer from what it was told to `event`.
    fn apply(&mut self, prefix: &str, event: WatchEvent) -> Vec<SyncEvent> {
        match event {
            WatchEvent::Put(kv) => self.put(kv).into_iter().collect(),
            WatchEvent::Delete { key, .. } => match self.keys.remove(&key) {
                Some(_) => vec![SyncEvent::Delete { key }],
                None => Vec::new(),
            },
            WatchEvent::Resync(listing) => self.resync(prefix, listing),
        }
    }

    fn put(&mut self, kv: KeyValue) -> Option<SyncEvent> {
        if self.keys.get(&kv.key) == Some(&kv.mod_revision) {
            return None;
        }
        self.keys.insert(kv.key.clone(), kv.mod_revision);
        Some(SyncEvent::Update(kv))
    }

    fn resync(&mut self, prefix: &str, listing: Listing) -> Vec<SyncEvent> {
        let present: std::collections::HashSet<&str> =
            listing.items.iter().map(|kv| kv.key.as_str()).collect();
        let gone: Vec<String> = self
            .keys
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| !present.contains(k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        let mut events = Vec::new();
        for key in gone {
            self.keys.remove(&key);
            events.push(SyncEvent::Delete { key });
        }
        for kv in listing.items {
            events.extend(self.put(kv));
        }
        events
    }
}

async fn run(backend: Arc<dyn Backend>, prefixes: Vec<String>, out: mpsc::Sender<SyncEvent>) {
    let mut emitted = Emitted::default();
    let mut from = Vec::with_capacity(prefixes.len());
    for prefix in &prefixes {
        let Some(listing) = list_retrying(backend.as_ref(), prefix, &out).await else {
            return;
        };
        from.push(listing.revision);
        for kv in listing.items {
            if let Some(event) = emitted.put(kv)
                && out.send(event).await.is_err()
            {
                return;
            }
        }
    }
    if out.send(SyncEvent::InSync).await.is_err() {
        return;
    }
    let (merged_tx, mut merged) = mpsc::channel(SYNC_BUFFER);
    for (index, (prefix, revision)) in prefixes.iter().zip(from).enumerate() {
        let follower = follow(
            backend.clone(),
            prefix.clone(),
            revision,
            index,
            merged_tx.clone(),
        );
        tokio::spawn(follower);
    }
    drop(merged_tx);
    loop {
        let received = tokio::select! {
            received = merged.recv() => received,
            () = out.closed() => return,
        };
        let Some((index, event)) = received else {
            return;
        };
        for sync_event in emitted.apply(&prefixes[index], event) {
            if out.send(sync_event).await.is_err() {
                return;
            }
        }
    }
}

/// Lists one prefix, retrying every error with backoff; `None` when the consumer is gone.
async fn list_retrying(
    backend: &dyn Backend,
    prefix: &str,
    out: &mpsc::Sender<SyncEvent>,
) -> Option<Listing> {
    let mut backoff = Backoff::new();
    loop {
        match backend.list(prefix).await {
            Ok(listing) => return Some(listing),
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(prefix = %prefix, error = %err,
                    retry_in_ms = delay.as_millis() as u64, "syncer list failed, retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = out.closed() => return None,
                }
            }
        }
    }
}

/// Follows one prefix forever, re-opening the watch from the last revision when it ends.
async fn follow(
    backend: Arc<dyn Backend>,
    prefix: String,
    mut from: Revision,
    index: usize,
    tx: mpsc::Sender<(usize, WatchEvent)>,
) {
    let mut backoff = Backoff::new();
    loop {
        match backend.watch(&prefix, from).await {
            Ok(mut stream) => loop {
                let item = tokio::select! {
                    item = stream.recv() => item,
                    () = tx.closed() => return,
                };
                match item {
                    Some(Ok(event)) => {
                        backoff.reset();
                        from = event.revision();
                        if tx.send((index, event)).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(prefix = %prefix, error = %err, "syncer watch failed");
                        break;
                    }
                    None => break,
                }
            },
            Err(err) => {
                tracing::warn!(prefix = %prefix, error = %err, "syncer cannot open a watch");
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, rev: Revision) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: "{}".into(),
            create_revision: rev,
            mod_revision: rev,
        }
    }

    #[test]
    fn covered_and_duplicate_prefixes_are_merged() {
        let got = normalize(vec![
            "/a/b/".into(),
            "/a/".into(),
            "/c/".into(),
            "/a/".into(),
        ]);
        assert_eq!(got, vec!["/a/".to_string(), "/c/".to_string()]);
    }

    #[test]
    fn a_resync_emits_exactly_the_difference_within_its_prefix() {
        let mut e = Emitted::default();
        for k in [kv("/a/1", 2), kv("/a/2", 3), kv("/a/3", 4), kv("/b/1", 5)] {
            e.put(k);
        }
        let listing = Listing {
            items: vec![kv("/a/1", 2), kv("/a/3", 9), kv("/a/4", 10)],
            revision: 10,
        };
        let got = e.apply("/a/", WatchEvent::Resync(listing));
        assert_eq!(
            got,
            vec![
                SyncEvent::Delete { key: "/a/2".into() },
                SyncEvent::Update(kv("/a/3", 9)),
                SyncEvent::Update(kv("/a/4", 10)),
            ]
        );
        // /b/1 is outside the resynced prefix and stays.
        assert_eq!(e.keys.get("/b/1"), Some(&5));
    }

    #[test]
    fn a_repeated_put_or_a_delete_of_an_unknown_key_emits_nothing() {
        let mut e = Emitted::default();
        assert_eq!(e.apply("/", WatchEvent::Put(kv("/x", 2))).len(), 1);
        assert!(e.apply("/", WatchEvent::Put(kv("/x", 2))).is_empty());
        let delete = WatchEvent::Delete {
            key: "/y".into(),
            mod_revision: 3,
        };
        assert!(e.apply("/", delete).is_empty());
    }
}
