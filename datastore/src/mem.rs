//! `MemBackend`: the in-memory backend for unit tests, with etcd semantics including watch,
//! history replay and compaction.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::backend::{
    Backend, BackendError, CasOutcome, KeyValue, Listing, Revision, TxnOp, TxnOutcome, WatchEvent,
    WatchStream, check_expected, check_key, check_swap_expected, check_txn, check_write,
};
use crate::changelog::{ChangeLog, LOG_PAGE, LogRead, spawn_watch};

/// An in-memory store. Clones share the same data. History is kept until [`Backend::compact`].
#[derive(Debug, Clone)]
pub struct MemBackend {
    inner: Arc<MemInner>,
}

#[derive(Debug)]
struct MemInner {
    state: Mutex<MemState>,
    ticks: watch::Sender<u64>,
}

#[derive(Debug)]
struct MemState {
    revision: Revision,
    compacted: Revision,
    kv: BTreeMap<String, KeyValue>,
    /// Changes with revisions above `compacted`, in revision order.
    log: VecDeque<Change>,
}

#[derive(Debug)]
struct Change {
    revision: Revision,
    key: String,
    /// The new value; `None` for a delete.
    kv: Option<KeyValue>,
}

impl Change {
    fn event(&self) -> WatchEvent {
        match &self.kv {
            Some(kv) => WatchEvent::Put(kv.clone()),
            None => WatchEvent::Delete {
                key: self.key.clone(),
                mod_revision: self.revision,
            },
        }
    }
}

impl MemState {
    fn listing(&self, prefix: &str) -> Listing {
        let items = self
            .kv
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        Listing {
            items,
            revision: self.revision,
        }
    }

    fn record(&mut self, key: &str, kv: Option<KeyValue>) -> Revision {
        let revision = self.revision;
        match &kv {
            Some(kv) => self.kv.insert(key.to_string(), kv.clone()),
            None => self.kv.remove(key),
        };
        self.log.push_back(Change {
            revision,
            key: key.to_string(),
            kv,
        });
        revision
    }
}

impl Default for MemBackend {
    fn default() -> Self {
        MemBackend::new()
    }
}

impl MemBackend {
    /// An empty store at revision 1.
    pub fn new() -> MemBackend {
        MemBackend {
            inner: Arc::new(MemInner {
                state: Mutex::new(MemState {
                    revision: 1,
                    compacted: 0,
                    kv: BTreeMap::new(),
                    log: VecDeque::new(),
                }),
                ticks: watch::Sender::new(0),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, MemState> {
        self.inner.state()
    }

    /// Runs one write under the lock and ticks the watchers when it changed something.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut MemState) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let result = f(&mut self.state());
        if result.is_ok() {
            self.inner.ticks.send_modify(|t| *t += 1);
        }
        result
    }
}

impl MemInner {
    fn state(&self) -> MutexGuard<'_, MemState> {
        // A panic while holding the lock leaves consistent data (a write, also a transaction's,
        // is checked in full before its first insert, and inserts do not panic).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Backend for MemBackend {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, BackendError> {
        check_key(key)?;
        Ok(self.state().kv.get(key).cloned())
    }

    async fn list(&self, prefix: &str) -> Result<Listing, BackendError> {
        Ok(self.state().listing(prefix))
    }

    async fn create(&self, key: &str, value: &str) -> Result<Revision, BackendError> {
        check_write(key, value)?;
        self.write(|s| {
            if s.kv.contains_key(key) {
                return Err(BackendError::AlreadyExists { key: key.into() });
            }
            s.revision += 1;
            let kv = KeyValue {
                key: key.into(),
                value: value.into(),
                create_revision: s.revision,
                mod_revision: s.revision,
            };
            Ok(s.record(key, Some(kv)))
        })
    }

    async fn update(
        &self,
        key: &str,
        value: &str,
        expected: Revision,
    ) -> Result<Revision, BackendError> {
        check_write(key, value)?;
        check_expected(key, expected)?;
        self.write(|s| {
            let current =
                s.kv.get(key)
                    .ok_or_else(|| BackendError::NotFound { key: key.into() })?;
            if current.mod_revision != expected {
                return Err(BackendError::Conflict {
                    key: key.into(),
                    expected,
                    actual: Some(current.mod_revision),
                });
            }
            let create_revision = current.create_revision;
            s.revision += 1;
            let kv = KeyValue {
                key: key.into(),
                value: value.into(),
                create_revision,
                mod_revision: s.revision,
            };
            Ok(s.record(key, Some(kv)))
        })
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        value: &str,
        expected: Revision,
    ) -> Result<CasOutcome, BackendError> {
        check_write(key, value)?;
        check_swap_expected(key, expected)?;
        self.write(|s| {
            let current = s.kv.get(key);
            if current.map_or(0, |kv| kv.mod_revision) != expected {
                return Ok(CasOutcome::Current(current.cloned()));
            }
            let create_revision = current.map(|kv| kv.create_revision);
            s.revision += 1;
            let kv = KeyValue {
                key: key.into(),
                value: value.into(),
                create_revision: create_revision.unwrap_or(s.revision),
                mod_revision: s.revision,
            };
            Ok(CasOutcome::Swapped(s.record(key, Some(kv))))
        })
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<Revision, BackendError> {
        check_key(key)?;
        if let Some(expected) = expected {
            check_expected(key, expected)?;
        }
        self.write(|s| {
            let current =
                s.kv.get(key)
                    .ok_or_else(|| BackendError::NotFound { key: key.into() })?;
            if let Some(expected) = expected
                && current.mod_revision != expected
            {
                return Err(BackendError::Conflict {
                    key: key.into(),
                    expected,
                    actual: Some(current.mod_revision),
                });
            }
            s.revision += 1;
            Ok(s.record(key, None))
        })
    }

    async fn transaction(&self, ops: &[TxnOp]) -> Result<TxnOutcome, BackendError> {
        check_txn(ops)?;
        let writes = ops.iter().any(|op| !matches!(op, TxnOp::Check { .. }));
        let mut s = self.state();
        let holds = ops
            .iter()
            .all(|op| s.kv.get(op.key()).map_or(0, |kv| kv.mod_revision) == op.expected());
        if !holds {
            let current = ops.iter().map(|op| s.kv.get(op.key()).cloned()).collect();
            return Ok(TxnOutcome::Current(current));
        }
        if !writes {
            return Ok(TxnOutcome::Committed(s.revision));
        }
        s.revision += 1;
        let revision = s.revision;
        for op in ops {
            match op {
                TxnOp::Put { key, value, .. } => {
                    let create_revision = s.kv.get(key).map_or(revision, |kv| kv.create_revision);
                    let kv = KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision,
                        mod_revision: revision,
                    };
                    s.record(key, Some(kv));
                }
                TxnOp::Delete { key, .. } => {
                    s.record(key, None);
                }
                TxnOp::Check { .. } => {}
            }
        }
        drop(s);
        self.inner.ticks.send_modify(|t| *t += 1);
        Ok(TxnOutcome::Committed(revision))
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, BackendError> {
        Ok(spawn_watch(self.inner.clone(), prefix.to_string(), from))
    }

    async fn revision(&self) -> Result<Revision, BackendError> {
        Ok(self.state().revision)
    }

    async fn compact(&self, revision: Revision) -> Result<(), BackendError> {
        let mut s = self.state();
        let target = revision.min(s.revision);
        if target <= s.compacted {
            return Ok(());
        }
        while s.log.front().is_some_and(|c| c.revision <= target) {
            s.log.pop_front();
        }
        s.compacted = target;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ChangeLog for MemInner {
    async fn read_after(&self, prefix: &str, after: Revision) -> Result<LogRead, BackendError> {
        let s = self.state();
        if after < s.compacted {
            return Ok(LogRead::Compacted(s.listing(prefix)));
        }
        let upto = s.revision.min(after.saturating_add(LOG_PAGE));
        let start = s.log.partition_point(|c| c.revision <= after);
        let events = s
            .log
            .range(start..)
            .take_while(|c| c.revision <= upto)
            .filter(|c| c.key.starts_with(prefix))
            .map(Change::event)
            .collect();
        Ok(LogRead::Changes {
            events,
            scanned_to: upto.max(after),
            caught_up: upto >= s.revision,
        })
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.ticks.subscribe()
    }

    fn name(&self) -> String {
        "memory".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fresh_store_is_at_revision_one_and_the_first_write_gets_two() {
        let b = MemBackend::new();
        assert_eq!(b.revision().await.unwrap(), 1);
        assert_eq!(b.create("/a", "1").await.unwrap(), 2);
    }

    #[tokio::test]
    async fn compaction_past_the_current_revision_is_clamped() {
        let b = MemBackend::new();
        b.create("/a", "1").await.unwrap();
        b.compact(100).await.unwrap();
        assert_eq!(b.state().compacted, 2);
        assert!(b.state().log.is_empty());
    }
}
