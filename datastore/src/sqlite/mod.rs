//! `SqliteBackend`: one sqlite file shared safely by every process of a host.
//!
//! - WAL mode, so readers never block the writer; `synchronous=FULL`, so a returned write
//!   survives a power cut.
//! - Every write is one `BEGIN IMMEDIATE` transaction: it takes the file's write lock first,
//!   then checks the precondition (absent / mod_revision), bumps the store-wide revision,
//!   writes the row and appends to the `changes` table. A multi-key [`Backend::transaction`]
//!   is one such transaction too: all comparisons, then all rows at one revision, appended to
//!   `changes` as `(revision, sub)` in the order of its operations.
//! - Writers queue before that: on an in-process mutex, then on an exclusive `flock` of the
//!   side file `<db>-lock`, which the kernel hands to the next waiting process the moment it
//!   is released. (sqlite's own lock has no queue: waiters poll, and under contention the lock
//!   sits idle between polls.) The busy handler (short random sleeps, up to
//!   [`SqliteOptions::busy_timeout`], then `Unavailable`) remains for writers that do not take
//!   the flock, such as the `sqlite3` shell.
//! - Watch: the `changes` table is the history. Each watch task reads it after its last
//!   revision. Writes from this process wake watchers at once; writes from other processes
//!   are noticed by one poller thread per backend that checks `PRAGMA data_version` (a counter
//!   in shared memory, no table read) every [`SqliteOptions::poll_interval`] (10 ms), so the
//!   cross-process watch latency is at most about one poll interval plus the read.
//! - Compaction: see [`SqliteOptions::history_revisions`]; the log keeps the last 10,000 to
//!   11,000 revisions by default. A watch from an older revision starts with `Resync`.
//! - All sqlite calls run on tokio's blocking pool, never on the async workers.

mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use rusqlite::Connection;
use tokio::sync::watch;

pub use store::SqliteOptions;
use store::Write;

use crate::backend::{
    Backend, BackendError, CasOutcome, KeyValue, Listing, Revision, TxnOp, TxnOutcome, WatchStream,
    check_expected, check_key, check_swap_expected, check_txn, check_write,
};
use crate::changelog::{ChangeLog, LogRead, spawn_watch};

/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

/// A store in one sqlite file. Clones share connections.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    inner: Arc<SqliteInner>,
}

struct SqliteInner {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Connection>,
    /// `<db>-lock`, flocked around every write transaction.
    lock_file: std::fs::File,
    lock_path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    ticks: watch::Sender<u64>,
    poller: OnceLock<Result<(), String>>,
}

impl std::fmt::Debug for SqliteInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteInner")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A connection whose user panicked is still usable: sqlite rolls back the open
    // transaction when the Transaction value is dropped during unwinding.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SqliteBackend {
    /// Opens (creating if needed, with its parent directories) the store at `path`.
    ///
    /// Blocks for the few milliseconds the open takes. Fails with a clear error when the path
    /// cannot be created or opened, the file is not a sqlite database (or is corrupt), is
    /// another application's database, or has a newer schema.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteBackend, BackendError> {
        SqliteBackend::open_with(path, SqliteOptions::default())
    }

    /// [`SqliteBackend::open`] with explicit options.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteBackend, BackendError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| BackendError::Io {
                operation: "creating the directory",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut lock_path = path.clone().into_os_string();
        lock_path.push("-lock");
        let lock_path = PathBuf::from(lock_path);
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| BackendError::Io {
                operation: "opening the write lock file",
                path: lock_path.clone(),
                source,
            })?;
        // Several processes opening a new file at once (calico-nodes starting together) race
        // to switch it to WAL mode and create the schema; sqlite answers some of those steps
        // busy without calling the busy handler (waiting could deadlock), so the whole open
        // is retried while the busy timeout lasts.
        let started = std::time::Instant::now();
        let writer = loop {
            let opened = store::open_connection(&path, &options).and_then(|mut conn| {
                store::init_schema(&mut conn, &path)?;
                Ok(conn)
            });
            match opened {
                Err(BackendError::Unavailable { .. })
                    if started.elapsed() < options.busy_timeout =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => break other?,
            }
        };
        tracing::debug!(path = %path.display(), "sqlite datastore opened");
        Ok(SqliteBackend {
            inner: Arc::new(SqliteInner {
                path,
                options,
                writer: Mutex::new(writer),
                lock_file,
                lock_path,
                readers: Mutex::new(Vec::new()),
                ticks: watch::Sender::new(0),
                poller: OnceLock::new(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SqliteInner) -> Result<T, BackendError> + Send + 'static,
    ) -> Result<T, BackendError> {
        run_blocking(self.inner.clone(), f).await
    }

    async fn write(&self, key: &str, op: Write) -> Result<Revision, BackendError> {
        let key = key.to_string();
        let revision = self
            .blocking(move |inner| {
                inner.with_writer(|conn| store::write(conn, &inner.path, &inner.options, &key, op))
            })
            .await?;
        self.inner.ticks.send_modify(|t| *t += 1);
        Ok(revision)
    }
}

async fn run_blocking<T: Send + 'static>(
    inner: Arc<SqliteInner>,
    f: impl FnOnce(&SqliteInner) -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    let datastore = inner.path.display().to_string();
    match tokio::task::spawn_blocking(move || f(&inner)).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => Err(BackendError::TaskStopped { datastore }),
    }
}

/// Holds the flock of the write lock file; releases it when dropped (also on a panic).
struct FileLockGuard<'a>(&'a std::fs::File);

impl Drop for FileLockGuard<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.0.unlock() {
            tracing::warn!(error = %err, "releasing the sqlite write lock file failed");
        }
    }
}

impl SqliteInner {
    /// Runs `f` on the write connection, holding the in-process mutex and the file lock.
    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let mut conn = lock(&self.writer);
        self.lock_file.lock().map_err(|source| BackendError::Io {
            operation: "locking the write lock file",
            path: self.lock_path.clone(),
            source,
        })?;
        let _guard = FileLockGuard(&self.lock_file);
        f(&mut conn)
    }

    /// Runs `f` on an idle read connection (opening one when none is idle).
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let idle = lock(&self.readers).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => store::open_connection(&self.path, &self.options)?,
        };
        let result = f(&mut conn);
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Starts the cross-process change poller once; later calls return its start result.
    fn ensure_poller(self: &Arc<Self>) -> Result<(), BackendError> {
        let started = self.poller.get_or_init(|| {
            let conn =
                store::open_connection(&self.path, &self.options).map_err(|e| e.to_string())?;
            let weak = Arc::downgrade(self);
            let interval = self.options.poll_interval;
            std::thread::Builder::new()
                .name("sqlite-poller".into())
                .spawn(move || poll_data_version(conn, weak, interval))
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        started.clone().map_err(|reason| BackendError::Unavailable {
            datastore: self.path.display().to_string(),
            source: format!("cannot start the change poller: {reason}").into(),
        })
    }
}

/// The poller thread: ticks the watchers when another connection committed. Ends when the
/// backend and all its watchers are gone.
fn poll_data_version(conn: Connection, inner: Weak<SqliteInner>, interval: std::time::Duration) {
    let mut last = store::data_version(&conn).ok();
    loop {
        std::thread::sleep(interval);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.ticks.receiver_count() == 0 {
            continue;
        }
        match store::data_version(&conn) {
            Ok(version) if Some(version) != last => {
                last = Some(version);
                inner.ticks.send_modify(|t| *t += 1);
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(path = %inner.path.display(), error = %err,
                    "sqlite change poll failed");
            }
        }
    }
}

/// The change log view of a sqlite store, for the shared watch loop.
#[derive(Debug)]
struct SqliteLog(Arc<SqliteInner>);

#[async_trait::async_trait]
impl ChangeLog for SqliteLog {
    async fn read_after(&self, prefix: &str, after: Revision) -> Result<LogRead, BackendError> {
        let prefix = prefix.to_string();
        run_blocking(self.0.clone(), move |inner| {
            inner.with_reader(|conn| store::read_after(conn, &inner.path, &prefix, after))
        })
        .await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.ticks.subscribe()
    }

    fn name(&self) -> String {
        self.0.path.display().to_string()
    }
}

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, BackendError> {
        check_key(key)?;
        let key = key.to_string();
        self.blocking(move |inner| inner.with_reader(|conn| store::get(conn, &inner.path, &key)))
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Listing, BackendError> {
        let prefix = prefix.to_string();
        self.blocking(move |inner| {
            inner.with_reader(|conn| store::list(conn, &inner.path, &prefix))
        })
        .await
    }

    async fn create(&self, key: &str, value: &str) -> Result<Revision, BackendError> {
        check_write(key, value)?;
        let value = value.to_string();
        self.write(key, Write::Create { value }).await
    }

    async fn update(
        &self,
        key: &str,
        value: &str,
        expected: Revision,
    ) -> Result<Revision, BackendError> {
        check_write(key, value)?;
        check_expected(key, expected)?;
        let value = value.to_string();
        self.write(key, Write::Update { value, expected }).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        value: &str,
        expected: Revision,
    ) -> Result<CasOutcome, BackendError> {
        check_write(key, value)?;
        check_swap_expected(key, expected)?;
        let (key, value) = (key.to_string(), value.to_string());
        let outcome = self
            .blocking(move |inner| {
                inner.with_writer(|conn| {
                    store::swap(conn, &inner.path, &inner.options, &key, &value, expected)
                })
            })
            .await?;
        if matches!(outcome, CasOutcome::Swapped(_)) {
            self.inner.ticks.send_modify(|t| *t += 1);
        }
        Ok(outcome)
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
        self.write(key, Write::Delete { expected }).await
    }

    async fn transaction(&self, ops: &[TxnOp]) -> Result<TxnOutcome, BackendError> {
        check_txn(ops)?;
        let writes = ops.iter().any(|op| !matches!(op, TxnOp::Check { .. }));
        let ops = ops.to_vec();
        let outcome = self
            .blocking(move |inner| {
                inner
                    .with_writer(|conn| store::transaction(conn, &inner.path, &inner.options, &ops))
            })
            .await?;
        if writes && matches!(outcome, TxnOutcome::Committed(_)) {
            self.inner.ticks.send_modify(|t| *t += 1);
        }
        Ok(outcome)
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, BackendError> {
        self.inner.ensure_poller()?;
        let log = Arc::new(SqliteLog(self.inner.clone()));
        Ok(spawn_watch(log, prefix.to_string(), from))
    }

    async fn revision(&self) -> Result<Revision, BackendError> {
        self.blocking(|inner| inner.with_reader(|conn| store::revision(conn, &inner.path)))
            .await
    }

    async fn compact(&self, revision: Revision) -> Result<(), BackendError> {
        self.blocking(move |inner| {
            inner.with_writer(|conn| store::compact(conn, &inner.path, revision))
        })
        .await
    }
}
