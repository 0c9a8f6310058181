//! The revisioned key-value `Backend` trait, its value types and its error type.

use std::path::PathBuf;

/// A store-wide revision, as in etcd: one counter for the whole store, raised by every write.
///
/// An empty store is at revision 1; the first write gets revision 2. Revisions are always > 0.
pub type Revision = i64;

/// One stored key with its JSON value and the revisions that created and last changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/calico/ipam/v2/handle/k8s-pod-network.abc`.
    pub key: String,
    /// The value: JSON text.
    pub value: String,
    /// The revision of the write that created the key (stays the same across updates).
    pub create_revision: Revision,
    /// The revision of the last write to the key: the token for compare-and-swap.
    pub mod_revision: Revision,
}

/// A consistent snapshot of every key under a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    /// The keys under the prefix, sorted by key (byte order).
    pub items: Vec<KeyValue>,
    /// The store revision the snapshot was taken at; watch from here to follow it.
    pub revision: Revision,
}

/// One item of a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created or updated (in revision order).
    Put(KeyValue),
    /// A key was deleted.
    Delete {
        /// The deleted key.
        key: String,
        /// The revision of the delete.
        mod_revision: Revision,
    },
    /// The watch could not be continued without a gap (its history was compacted, or it
    /// reconnected after an outage to a store that no longer has the revisions it needed).
    /// The listing is the full current state under the prefix and replaces whatever the
    /// consumer held; events continue with revisions after `listing.revision`.
    Resync(Listing),
}

impl WatchEvent {
    /// The revision this event brings the consumer to.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { mod_revision, .. } => *mod_revision,
            WatchEvent::Resync(listing) => listing.revision,
        }
    }
}

/// The outcome of [`Backend::compare_and_swap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The write happened; this is its revision.
    Swapped(Revision),
    /// The key's revision was not the expected one; this is what the key holds now
    /// (`None`: absent), read in the same step, ready for the next attempt.
    Current(Option<KeyValue>),
}

/// The most operations one [`Backend::transaction`] may hold: etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

/// One operation of a [`Backend::transaction`]. Every operation compares the key's
/// `mod_revision` with `expected`; only when every comparison holds are the writes applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Writes `value` if the key's mod_revision is `expected` (`0`: the key must be absent).
    Put {
        /// The key.
        key: String,
        /// The new value: JSON text.
        value: String,
        /// The key's current mod_revision, or 0 for "absent".
        expected: Revision,
    },
    /// Deletes the key if its mod_revision is `expected` (> 0: the key must exist).
    Delete {
        /// The key.
        key: String,
        /// The key's current mod_revision.
        expected: Revision,
    },
    /// Writes nothing: the transaction only requires the key's mod_revision to be `expected`
    /// (`0`: absent), so a write elsewhere can depend on a key it does not change.
    Check {
        /// The key.
        key: String,
        /// The key's current mod_revision, or 0 for "absent".
        expected: Revision,
    },
}

impl TxnOp {
    /// The operation's key.
    pub fn key(&self) -> &str {
        match self {
            TxnOp::Put { key, .. } | TxnOp::Delete { key, .. } | TxnOp::Check { key, .. } => key,
        }
    }

    /// The mod_revision the operation requires (0: absent).
    pub fn expected(&self) -> Revision {
        match self {
            TxnOp::Put { expected, .. }
            | TxnOp::Delete { expected, .. }
            | TxnOp::Check { expected, .. } => *expected,
        }
    }
}

/// The outcome of [`Backend::transaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Every comparison held; every write happened at this one revision (for a transaction
    /// that only checks, the store's revision at the time).
    Committed(Revision),
    /// At least one comparison failed and nothing was written. The current state of each
    /// operation's key, in the order of the operations (`None`: absent), read in the same
    /// step, ready for the next attempt.
    Current(Vec<Option<KeyValue>>),
}

/// The receiving end of a watch.
///
/// Items come in revision order, each change exactly once. The changes of one transaction
/// share its revision and come one after another, in the order of its operations. Transient failures (an etcd
/// restart, a busy sqlite file) are retried inside the backend with backoff and never show
/// up here; an `Err` item means the watch cannot go on, and the channel closes after it.
/// Dropping the receiver stops the watch.
pub type WatchStream = tokio::sync::mpsc::Receiver<Result<WatchEvent, BackendError>>;

/// A boxed error from a lower layer, for [`BackendError::Unavailable`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong in a backend operation.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `create` of a key that is already present.
    #[error("key {key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// `update` or `delete` of a key that is not present.
    #[error("key {key} does not exist")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The key's mod_revision was not the expected one: someone else wrote it first.
    #[error("revision conflict on key {key}: expected mod_revision {expected}, found {}",
        actual.map_or_else(|| "another".to_string(), |r| r.to_string()))]
    Conflict {
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The key's current mod_revision. The backends of this crate always fill it in;
        /// `None` is for backends that cannot tell (a Kubernetes resourceVersion conflict).
        actual: Option<Revision>,
    },
    /// The key breaks the key rules (empty, or containing NUL).
    #[error("invalid key {key:?}: {rule}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// The rule it broke.
        rule: &'static str,
    },
    /// The value is not JSON text.
    #[error("value for key {key} is not valid JSON")]
    InvalidValue {
        /// The key.
        key: String,
        /// The JSON parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A revision that cannot be a stored revision (revisions are > 0).
    #[error("revision {revision} given for key {key} is not a stored revision (must be > 0)")]
    InvalidRevision {
        /// The key.
        key: String,
        /// The revision as given.
        revision: Revision,
    },
    /// A transaction breaks a rule (too many operations, a key twice); nothing was written.
    #[error("invalid transaction: {rule}")]
    InvalidTransaction {
        /// The rule it broke, with the numbers or key involved.
        rule: String,
    },
    /// The datastore cannot be reached or is busy right now; retrying later may succeed.
    #[error("datastore {datastore} is unavailable")]
    Unavailable {
        /// The datastore: the sqlite path or the etcd endpoints.
        datastore: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A file-system operation around the sqlite file failed.
    #[error("{operation} {path}")]
    Io {
        /// What was being done, e.g. "creating the directory".
        operation: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A sqlite operation failed (bad path, corrupt file, disk full, ...).
    #[error("sqlite database {path}: {operation}")]
    Sqlite {
        /// What was being done, e.g. "opening".
        operation: &'static str,
        /// The database file.
        path: PathBuf,
        /// The sqlite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The sqlite file was written by a newer, incompatible version of this crate.
    #[error(
        "sqlite database {path} has schema version {found}; this build understands {supported}"
    )]
    SchemaVersion {
        /// The database file.
        path: PathBuf,
        /// The version stored in the file.
        found: i64,
        /// The version this build writes.
        supported: i64,
    },
    /// The file is a sqlite database, but not one of ours.
    #[error("sqlite database {path} is not a fabric datastore: {reason}")]
    NotADatastore {
        /// The database file.
        path: PathBuf,
        /// Why it is not.
        reason: String,
    },
    /// An etcd request failed for a reason other than being unreachable.
    #[error("etcd {operation} at {endpoints}")]
    Etcd {
        /// What was being done, e.g. "txn update".
        operation: &'static str,
        /// The endpoints, comma-separated.
        endpoints: String,
        /// The client error.
        #[source]
        source: etcd_client::Error,
    },
    /// The store holds something this crate cannot read (e.g. a non-UTF-8 key in etcd).
    #[error("stored data under key {key:?} is unreadable: {reason}")]
    Corrupt {
        /// The key, as far as it could be read.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A backend task stopped (the runtime is shutting down).
    #[error("backend task for {datastore} stopped")]
    TaskStopped {
        /// The datastore.
        datastore: String,
    },
}

impl BackendError {
    /// True for errors that may go away on retry (the datastore was unreachable or busy).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, BackendError::Unavailable { .. })
    }
}

/// A revisioned key-value store with etcd semantics; values are JSON text.
///
/// Every write raises the store-wide revision by one and returns it. `update` and `delete`
/// compare-and-swap on the key's `mod_revision`; `create` fails when the key exists. A failed
/// write changes nothing.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The key's current value, if present.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, BackendError>;

    /// Every key starting with `prefix` (plain string prefix; `""` lists everything), sorted
    /// by key, from one consistent snapshot.
    async fn list(&self, prefix: &str) -> Result<Listing, BackendError>;

    /// Creates the key; fails with `AlreadyExists` if present. Returns the new revision.
    async fn create(&self, key: &str, value: &str) -> Result<Revision, BackendError>;

    /// Replaces the value if the key's mod_revision is `expected`; fails with `Conflict`
    /// (carrying the actual revision) otherwise, `NotFound` if absent. Returns the new revision.
    async fn update(
        &self,
        key: &str,
        value: &str,
        expected: Revision,
    ) -> Result<Revision, BackendError>;

    /// Writes `value` if the key's mod_revision is `expected` (`0`: if the key is absent);
    /// otherwise returns what the key holds now, read in the same step. One round trip on
    /// etcd (the transaction's else branch reads the key), so a retry loop needs no extra
    /// read after a conflict. The default does `create`/`update` and then a `get`.
    async fn compare_and_swap(
        &self,
        key: &str,
        value: &str,
        expected: Revision,
    ) -> Result<CasOutcome, BackendError> {
        let written = if expected == 0 {
            self.create(key, value).await
        } else {
            check_expected(key, expected)?;
            self.update(key, value, expected).await
        };
        match written {
            Ok(revision) => Ok(CasOutcome::Swapped(revision)),
            Err(
                BackendError::Conflict { .. }
                | BackendError::AlreadyExists { .. }
                | BackendError::NotFound { .. },
            ) => Ok(CasOutcome::Current(self.get(key).await?)),
            Err(e) => Err(e),
        }
    }

    /// Deletes the key; with `Some(expected)` only if its mod_revision is `expected`
    /// (`Conflict` otherwise). `NotFound` if absent. Returns the revision of the delete.
    async fn delete(&self, key: &str, expected: Option<Revision>)
    -> Result<Revision, BackendError>;

    /// Applies `ops` atomically: when every key's mod_revision is the one its operation
    /// expects, all puts and deletes happen at one new revision; otherwise nothing is written
    /// and the current state of every key is returned, read in the same step (one round trip
    /// on etcd: a `Txn` with the comparisons, the writes in its `then` branch and reads of
    /// every key in its `else` branch). A watch sees each written key's change, all at that
    /// revision, in the order of `ops`. At most [`MAX_TXN_OPS`] operations, each key at most
    /// once (`InvalidTransaction` otherwise); keys, values and revisions are checked as for
    /// single writes, all before anything is written.
    async fn transaction(&self, ops: &[TxnOp]) -> Result<TxnOutcome, BackendError>;

    /// Follows every change under `prefix` with a revision greater than `from`: past ones
    /// first (history replay), then live ones. When the history after `from` is gone
    /// (compacted), the first item is a `Resync`. See [`WatchStream`].
    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, BackendError>;

    /// The store's current revision.
    async fn revision(&self) -> Result<Revision, BackendError>;

    /// Discards the change history up to and including `revision` (etcd compaction). A watch
    /// from a revision below it starts with a `Resync`. Compacting to a revision at or below
    /// the last compaction does nothing; a revision above the current one is clamped to it.
    async fn compact(&self, revision: Revision) -> Result<(), BackendError>;
}

/// Checks a key against the rules every backend enforces.
pub(crate) fn check_key(key: &str) -> Result<(), BackendError> {
    let rule = if key.is_empty() {
        "a key must not be empty"
    } else if key.contains('\0') {
        "a key must not contain NUL"
    } else {
        return Ok(());
    };
    Err(BackendError::InvalidKey {
        key: key.to_string(),
        rule,
    })
}

/// Checks that `value` is JSON text (any JSON value).
pub(crate) fn check_value(key: &str, value: &str) -> Result<(), BackendError> {
    serde_json::from_str::<serde::de::IgnoredAny>(value)
        .map(|_| ())
        .map_err(|source| BackendError::InvalidValue {
            key: key.to_string(),
            source,
        })
}

/// Checks a write's key and value.
pub(crate) fn check_write(key: &str, value: &str) -> Result<(), BackendError> {
    check_key(key)?;
    check_value(key, value)
}

/// Checks the expected revision of a compare-and-swap: 0 (absent) or a stored revision.
pub(crate) fn check_swap_expected(key: &str, expected: Revision) -> Result<(), BackendError> {
    if expected == 0 {
        Ok(())
    } else {
        check_expected(key, expected)
    }
}

/// Checks a transaction before anything is written: the number of operations, each key once,
/// every key, value and expected revision.
pub(crate) fn check_txn(ops: &[TxnOp]) -> Result<(), BackendError> {
    if ops.len() > MAX_TXN_OPS {
        return Err(BackendError::InvalidTransaction {
            rule: format!(
                "it has {} operations; at most {MAX_TXN_OPS} are allowed (etcd's default --max-txn-ops)",
                ops.len()
            ),
        });
    }
    let mut seen = std::collections::HashMap::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if let Some(first) = seen.insert(op.key(), i) {
            return Err(BackendError::InvalidTransaction {
                rule: format!(
                    "key {} appears in operations {first} and {i}; each key may appear once",
                    op.key()
                ),
            });
        }
        match op {
            TxnOp::Put {
                key,
                value,
                expected,
            } => {
                check_write(key, value)?;
                check_swap_expected(key, *expected)?;
            }
            TxnOp::Delete { key, expected } => {
                check_key(key)?;
                check_expected(key, *expected)?;
            }
            TxnOp::Check { key, expected } => {
                check_key(key)?;
                check_swap_expected(key, *expected)?;
            }
        }
    }
    Ok(())
}

/// Checks that an expected revision could be a stored one.
pub(crate) fn check_expected(key: &str, expected: Revision) -> Result<(), BackendError> {
    if expected > 0 {
        Ok(())
    } else {
        Err(BackendError::InvalidRevision {
            key: key.to_string(),
            revision: expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_key_is_rejected_naming_the_rule() {
        let err = check_key("").unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }

    #[test]
    fn a_value_that_is_not_json_is_rejected() {
        let err = check_write("/k", "{not json").unwrap_err();
        assert!(matches!(err, BackendError::InvalidValue { .. }), "{err}");
        check_write("/k", r#"{"a":1}"#).unwrap();
        check_write("/k", "3").unwrap();
    }

    #[test]
    fn a_conflict_message_names_both_revisions() {
        let err = BackendError::Conflict {
            key: "/k".into(),
            expected: 3,
            actual: Some(7),
        };
        assert_eq!(
            err.to_string(),
            "revision conflict on key /k: expected mod_revision 3, found 7"
        );
    }

    #[test]
    fn a_transaction_over_the_operation_limit_is_rejected_naming_both_numbers() {
        let ops: Vec<TxnOp> = (0..=MAX_TXN_OPS)
            .map(|i| TxnOp::Check {
                key: format!("/k{i}"),
                expected: 0,
            })
            .collect();
        let err = check_txn(&ops).unwrap_err();
        assert!(
            err.to_string()
                .contains("it has 129 operations; at most 128"),
            "{err}"
        );
        check_txn(&ops[..MAX_TXN_OPS]).unwrap();
    }

    #[test]
    fn a_key_twice_in_one_transaction_is_rejected_naming_the_key() {
        let ops = [
            TxnOp::Put {
                key: "/a".into(),
                value: "1".into(),
                expected: 0,
            },
            TxnOp::Delete {
                key: "/a".into(),
                expected: 3,
            },
        ];
        let err = check_txn(&ops).unwrap_err();
        assert!(
            err.to_string()
                .contains("key /a appears in operations 0 and 1"),
            "{err}"
        );
    }

    #[test]
    fn a_delete_in_a_transaction_needs_a_stored_revision() {
        let ops = [TxnOp::Delete {
            key: "/a".into(),
            expected: 0,
        }];
        assert!(matches!(
            check_txn(&ops),
            Err(BackendError::InvalidRevision { .. })
        ));
    }

    #[test]
    fn a_zero_expected_revision_is_invalid() {
        assert!(check_expected("/k", 0).is_err());
        assert!(check_expected("/k", 1).is_ok());
    }
}
