//! The synchronous sqlite side of `SqliteBackend`: the schema, connection setup and every
//! read and write as one sqlite transaction. Called from blocking threads only.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::backend::{
    BackendError, CasOutcome, KeyValue, Listing, Revision, TxnOp, TxnOutcome, WatchEvent,
};
use crate::changelog::{LOG_PAGE, LogRead};

/// The schema this build writes and reads. Version 2 keys the change log by `(revision, sub)`
/// so one transaction's changes share a revision; a version 1 file is upgraded on open.
pub(super) const SCHEMA_VERSION: i64 = 2;

/// Marks a sqlite file as ours (`PRAGMA application_id`): "FBDS".
const APPLICATION_ID: i64 = 0x4642_4453;

/// `meta` and `kv`, the same in every schema version. A new file is stamped with the current
/// version; an existing one keeps its own until it is upgraded.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
    key             TEXT PRIMARY KEY,
    value           TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', 2);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 1);
INSERT OR IGNORE INTO meta (name, value) VALUES ('compacted', 0);
";

/// The change log of schema version 2: one row per changed key, `sub` numbering the keys of
/// one revision (a transaction) in the order of its operations. `sub` defaults to 0, so a
/// single-key insert that does not name it (as version 1 wrote) still fits.
const CHANGES_V2: &str = "
CREATE TABLE IF NOT EXISTS changes (
    revision        INTEGER NOT NULL,
    sub             INTEGER NOT NULL DEFAULT 0,
    key             TEXT NOT NULL,
    value           TEXT,
    create_revision INTEGER NOT NULL,
    PRIMARY KEY (revision, sub)
) WITHOUT ROWID;
";

/// Version 1 -> 2: the change log, one row per revision before, gets its `(revision, sub)` key.
const UPGRADE_V1_TO_V2: &str = "
ALTER TABLE changes RENAME TO changes_v1;
CREATE TABLE changes (
    revision        INTEGER NOT NULL,
    sub             INTEGER NOT NULL DEFAULT 0,
    key             TEXT NOT NULL,
    value           TEXT,
    create_revision INTEGER NOT NULL,
    PRIMARY KEY (revision, sub)
) WITHOUT ROWID;
INSERT INTO changes (revision, sub, key, value, create_revision)
    SELECT revision, 0, key, value, create_revision FROM changes_v1;
DROP TABLE changes_v1;
UPDATE meta SET value = 2 WHERE name = 'schema_version';
";

/// Tuning of a sqlite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How many revisions of change history to keep for watchers (at least 1). A watcher that
    /// falls further behind, or starts from an older revision, gets a `Resync`. Default 10,000.
    pub history_revisions: i64,
    /// How long one operation waits for another process's write lock before it fails with
    /// `Unavailable`. Default 10 s.
    pub busy_timeout: Duration,
    /// How often watchers look for commits made by other processes (in-process writes wake
    /// them at once). Default 10 ms.
    pub poll_interval: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            history_revisions: 10_000,
            busy_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(10),
        }
    }
}

/// Maps a sqlite error: busy/locked become `Unavailable`, the rest `Sqlite`.
pub(super) fn sql_error(
    operation: &'static str,
    path: &Path,
    source: rusqlite::Error,
) -> BackendError {
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => BackendError::Unavailable {
            datastore: path.display().to_string(),
            source: Box::new(source),
        },
        _ => BackendError::Sqlite {
            operation,
            path: path.to_path_buf(),
            source,
        },
    }
}

/// `rusqlite::Result` -> `BackendError` with the operation and path.
pub(super) trait At<T> {
    fn at(self, operation: &'static str, path: &Path) -> Result<T, BackendError>;
}

impl<T> At<T> for rusqlite::Result<T> {
    fn at(self, operation: &'static str, path: &Path) -> Result<T, BackendError> {
        self.map_err(|e| sql_error(operation, path, e))
    }
}

/// Opens one connection and configures it: our busy handler, WAL, full sync.
pub(super) fn open_connection(
    path: &Path,
    options: &SqliteOptions,
) -> Result<Connection, BackendError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).at("opening", path)?;
    install_busy_handler(&mut conn, options.busy_timeout).at("configuring", path)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .at("switching to WAL mode", path)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(BackendError::NotADatastore {
            path: path.to_path_buf(),
            reason: format!("the file refuses WAL mode (journal_mode is {mode})"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .at("configuring", path)?;
    Ok(conn)
}

/// Creates the schema in a new file, or checks the schema of an existing one.
pub(super) fn init_schema(conn: &mut Connection, path: &Path) -> Result<(), BackendError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .at("creating the schema", path)?;
    let app_id: i64 = tx
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .at("reading the schema", path)?;
    let tables: i64 = tx
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .at("reading the schema", path)?;
    if app_id == 0 && tables == 0 {
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .at("creating the schema", path)?;
    } else if app_id != APPLICATION_ID {
        return Err(BackendError::NotADatastore {
            path: path.to_path_buf(),
            reason: format!(
                "it is another application's sqlite database (application_id {app_id:#x}, {tables} schema objects)"
            ),
        });
    }
    tx.execute_batch(SCHEMA).at("creating the schema", path)?;
    let mut found: i64 = meta(&tx, "schema_version").at("reading the schema", path)?;
    if found == 1 {
        tx.execute_batch(UPGRADE_V1_TO_V2)
            .at("upgrading the schema from version 1", path)?;
        tracing::info!(path = %path.display(), "sqlite datastore upgraded to schema version 2");
        found = 2;
    }
    if found == SCHEMA_VERSION {
        tx.execute_batch(CHANGES_V2)
            .at("creating the schema", path)?;
    }
    if found != SCHEMA_VERSION {
        return Err(BackendError::SchemaVersion {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    tx.commit().at("creating the schema", path)
}

/// Retries a busy write lock with short random sleeps (10 µs to 1 ms) until `timeout`.
///
/// sqlite's own busy timeout sleeps 1, 2, 5, 10 ... 100 ms between attempts, which wastes most
/// of the time when many processes take turns holding the lock for a few hundred µs each.
fn install_busy_handler(conn: &mut Connection, timeout: Duration) -> rusqlite::Result<()> {
    let mut started = Instant::now();
    let mut rng = seed();
    conn.busy_handler(Some(move |count: i32| -> bool {
        if count == 0 {
            started = Instant::now();
        }
        if started.elapsed() >= timeout {
            return false;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let cap_us = (20u64 << count.clamp(0, 6)).min(1000);
        std::thread::sleep(Duration::from_micros(10 + rng % cap_us));
        true
    }))
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    (u64::from(std::process::id()) << 32) ^ nanos ^ 0x9E37_79B9_7F4A_7C15
}

fn meta(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
}

fn set_meta(conn: &Connection, name: &str, value: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")?
        .execute(params![name, value])?;
    Ok(())
}

fn kv_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: row.get(0)?,
        value: row.get(1)?,
        create_revision: row.get(2)?,
        mod_revision: row.get(3)?,
    })
}

fn get_kv(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    conn.prepare_cached("SELECT key, value, create_revision, mod_revision FROM kv WHERE key = ?1")?
        .query_row([key], kv_row)
        .optional()
}

fn listing(conn: &Connection, prefix: &str) -> rusqlite::Result<Listing> {
    let revision = meta(conn, "revision")?;
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ?1 ORDER BY key",
    )?;
    let mut rows = stmt.query([prefix])?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        let kv = kv_row(row)?;
        if !kv.key.starts_with(prefix) {
            break;
        }
        items.push(kv);
    }
    Ok(Listing { items, revision })
}

/// A single-key read.
pub(super) fn get(
    conn: &Connection,
    path: &Path,
    key: &str,
) -> Result<Option<KeyValue>, BackendError> {
    get_kv(conn, key).at("reading", path)
}

/// A consistent listing: revision and rows from one read transaction.
pub(super) fn list(
    conn: &mut Connection,
    path: &Path,
    prefix: &str,
) -> Result<Listing, BackendError> {
    let tx = conn.transaction().at("listing", path)?;
    let listing = listing(&tx, prefix).at("listing", path)?;
    tx.commit().at("listing", path)?;
    Ok(listing)
}

/// The current store revision.
pub(super) fn revision(conn: &Connection, path: &Path) -> Result<Revision, BackendError> {
    meta(conn, "revision").at("reading the revision", path)
}

/// What a write does once the precondition holds.
pub(super) enum Write {
    Create { value: String },
    Update { value: String, expected: Revision },
    Delete { expected: Option<Revision> },
}

/// One compare-and-swap write in a `BEGIN IMMEDIATE` transaction; returns the new revision.
pub(super) fn write(
    conn: &mut Connection,
    path: &Path,
    options: &SqliteOptions,
    key: &str,
    op: Write,
) -> Result<Revision, BackendError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .at("starting a write", path)?;
    let current = get_kv(&tx, key).at("reading before a write", path)?;
    let check = |expected: Option<Revision>| match (&current, expected) {
        (None, _) => Err(BackendError::NotFound { key: key.into() }),
        (Some(kv), Some(expected)) if kv.mod_revision != expected => Err(BackendError::Conflict {
            key: key.into(),
            expected,
            actual: Some(kv.mod_revision),
        }),
        (Some(kv), _) => Ok(kv.create_revision),
    };
    let (value, create_revision) = match op {
        Write::Create { value } => {
            if current.is_some() {
                return Err(BackendError::AlreadyExists { key: key.into() });
            }
            (Some(value), None)
        }
        Write::Update { value, expected } => (Some(value), Some(check(Some(expected))?)),
        Write::Delete { expected } => (None, Some(check(expected)?)),
    };
    let revision = apply_change(&tx, path, options, key, value.as_deref(), create_revision)?;
    tx.commit().at("committing a write", path)?;
    Ok(revision)
}

/// A compare-and-swap that returns the current row on a mismatch (`expected == 0`: absent).
pub(super) fn swap(
    conn: &mut Connection,
    path: &Path,
    options: &SqliteOptions,
    key: &str,
    value: &str,
    expected: Revision,
) -> Result<CasOutcome, BackendError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .at("starting a write", path)?;
    let current = get_kv(&tx, key).at("reading before a write", path)?;
    if current.as_ref().map_or(0, |kv| kv.mod_revision) != expected {
        return Ok(CasOutcome::Current(current));
    }
    let create_revision = current.map(|kv| kv.create_revision);
    let revision = apply_change(&tx, path, options, key, Some(value), create_revision)?;
    tx.commit().at("committing a write", path)?;
    Ok(CasOutcome::Swapped(revision))
}

/// Inside a write transaction whose precondition held: bumps the revision, writes (or deletes,
/// for `value: None`) the row, appends to the change log and compacts it per the policy.
/// `create_revision: None` means the key is new.
fn apply_change(
    tx: &Connection,
    path: &Path,
    options: &SqliteOptions,
    key: &str,
    value: Option<&str>,
    create_revision: Option<Revision>,
) -> Result<Revision, BackendError> {
    let revision = next_revision(tx, path)?;
    record_change(tx, path, revision, 0, key, value, create_revision)?;
    compact_by_policy(tx, path, options, revision)?;
    Ok(revision)
}

/// Raises the store revision by one and returns it (inside a write transaction).
fn next_revision(tx: &Connection, path: &Path) -> Result<Revision, BackendError> {
    let revision = meta(tx, "revision").at("writing", path)? + 1;
    set_meta(tx, "revision", revision).at("writing", path)?;
    Ok(revision)
}

/// Writes (or deletes, for `value: None`) one row at `revision` and appends it to the change
/// log as the `sub`-th change of that revision.
fn record_change(
    tx: &Connection,
    path: &Path,
    revision: Revision,
    sub: i64,
    key: &str,
    value: Option<&str>,
    create_revision: Option<Revision>,
) -> Result<(), BackendError> {
    let create_revision = create_revision.unwrap_or(revision);
    match value {
        Some(value) => tx
            .prepare_cached(
                "INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET value = ?2, mod_revision = ?4",
            )
            .and_then(|mut s| s.execute(params![key, value, create_revision, revision])),
        None => tx
            .prepare_cached("DELETE FROM kv WHERE key = ?1")
            .and_then(|mut s| s.execute([key])),
    }
    .at("writing", path)?;
    tx.prepare_cached(
        "INSERT INTO changes (revision, sub, key, value, create_revision)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![revision, sub, key, value, create_revision]))
    .at("writing the change log", path)?;
    Ok(())
}

fn compact_by_policy(
    tx: &Connection,
    path: &Path,
    options: &SqliteOptions,
    revision: Revision,
) -> Result<(), BackendError> {
    auto_compact(tx, revision, options.history_revisions.max(1))
        .at("compacting the change log", path)
}

/// A multi-key transaction in one `BEGIN IMMEDIATE` transaction: every comparison, then every
/// write at one new revision (change log rows numbered in the order of `ops`), or the current
/// rows of every key when a comparison fails. The caller checked `ops`.
pub(super) fn transaction(
    conn: &mut Connection,
    path: &Path,
    options: &SqliteOptions,
    ops: &[TxnOp],
) -> Result<TxnOutcome, BackendError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .at("starting a transaction", path)?;
    let mut current = Vec::with_capacity(ops.len());
    for op in ops {
        current.push(get_kv(&tx, op.key()).at("reading before a transaction", path)?);
    }
    let holds = ops
        .iter()
        .zip(&current)
        .all(|(op, kv)| kv.as_ref().map_or(0, |kv| kv.mod_revision) == op.expected());
    if !holds {
        return Ok(TxnOutcome::Current(current));
    }
    if ops.iter().all(|op| matches!(op, TxnOp::Check { .. })) {
        return Ok(TxnOutcome::Committed(
            meta(&tx, "revision").at("reading the revision", path)?,
        ));
    }
    let revision = next_revision(&tx, path)?;
    let mut sub = 0;
    for (op, kv) in ops.iter().zip(&current) {
        let create_revision = kv.as_ref().map(|kv| kv.create_revision);
        let value = match op {
            TxnOp::Put { value, .. } => Some(value.as_str()),
            TxnOp::Delete { .. } => None,
            TxnOp::Check { .. } => continue,
        };
        record_change(&tx, path, revision, sub, op.key(), value, create_revision)?;
        sub += 1;
    }
    compact_by_policy(&tx, path, options, revision)?;
    tx.commit().at("committing a transaction", path)?;
    Ok(TxnOutcome::Committed(revision))
}

/// The compaction policy: every `history/10` revisions (at least every revision for tiny
/// histories), drop the changes older than the last `history` revisions. The change log thus
/// holds between `history` and `1.1 * history` revisions.
fn auto_compact(conn: &Connection, revision: Revision, history: i64) -> rusqlite::Result<()> {
    let step = (history / 10).max(1);
    if revision % step == 0 && revision > history {
        compact_to(conn, revision - history)?;
    }
    Ok(())
}

fn compact_to(conn: &Connection, target: Revision) -> rusqlite::Result<()> {
    let compacted = meta(conn, "compacted")?;
    if target > compacted {
        conn.prepare_cached("DELETE FROM changes WHERE revision <= ?1")?
            .execute([target])?;
        set_meta(conn, "compacted", target)?;
    }
    Ok(())
}

/// Explicit compaction up to `revision` (clamped to the current revision).
pub(super) fn compact(
    conn: &mut Connection,
    path: &Path,
    revision: Revision,
) -> Result<(), BackendError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .at("starting a compaction", path)?;
    let current = meta(&tx, "revision").at("compacting", path)?;
    compact_to(&tx, revision.min(current)).at("compacting", path)?;
    tx.commit().at("committing a compaction", path)
}

/// The watch query: changes under `prefix` after `after`, from one read snapshot.
pub(super) fn read_after(
    conn: &mut Connection,
    path: &Path,
    prefix: &str,
    after: Revision,
) -> Result<LogRead, BackendError> {
    let tx = conn.transaction().at("reading the change log", path)?;
    let read = (|| -> rusqlite::Result<LogRead> {
        let current = meta(&tx, "revision")?;
        let compacted = meta(&tx, "compacted")?;
        if after < compacted {
            return Ok(LogRead::Compacted(listing(&tx, prefix)?));
        }
        let upto = current.min(after.saturating_add(LOG_PAGE));
        let mut stmt = tx.prepare_cached(
            "SELECT revision, key, value, create_revision FROM changes
             WHERE revision > ?1 AND revision <= ?2 ORDER BY revision, sub",
        )?;
        let mut rows = stmt.query([after, upto])?;
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            let key: String = row.get(1)?;
            if !key.starts_with(prefix) {
                continue;
            }
            let revision: Revision = row.get(0)?;
            let value: Option<String> = row.get(2)?;
            events.push(match value {
                Some(value) => WatchEvent::Put(KeyValue {
                    key,
                    value,
                    create_revision: row.get(3)?,
                    mod_revision: revision,
                }),
                None => WatchEvent::Delete {
                    key,
                    mod_revision: revision,
                },
            });
        }
        Ok(LogRead::Changes {
            events,
            scanned_to: upto.max(after),
            caught_up: upto >= current,
        })
    })()
    .at("reading the change log", path)?;
    tx.commit().at("reading the change log", path)?;
    Ok(read)
}

/// `PRAGMA data_version`: changes whenever another connection commits.
pub(super) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "data_version", |r| r.get(0))
}
