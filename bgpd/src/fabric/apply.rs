//! The applier: watches the datastore through the syncer, recomputes the configuration after
//! each burst of changes (coalesced) and hands it to the running daemon, which applies only
//! the differences (a change to one neighbour resets that session only).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_datastore::Backend;
use fabric_datastore::syncer::{self, SyncEvent};
use ipnet::IpNet;
use tokio::sync::{mpsc, watch};

use super::{
    FabricOutput, FabricSettings, FabricWarning, Secrets, Snapshot, StaticRoute, compute,
    referenced_secrets, sync_prefixes,
};
use crate::config::Config;
use crate::daemon::{DaemonError, DaemonHandle};

/// How long the applier waits for more changes after one arrives before recomputing.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);
/// The longest a steady stream of changes can hold a recomputation back.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// Secret files are re-read this often (there is no watch on them).
const SECRETS_REFRESH: Duration = Duration::from_secs(30);

/// What the applier last computed, for status reporting and for the embedding program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FabricState {
    /// The last computation's warnings.
    pub warnings: Vec<FabricWarning>,
    /// Why the last computation or reconfiguration failed (the previous configuration stays).
    pub error: Option<String>,
    /// Host routes to peers asked for by `reachableBy` (not installed).
    pub static_routes: Vec<StaticRoute>,
    /// Ranges that must not reach the kernel from BGP (service ranges).
    pub kernel_reject: Vec<IpNet>,
    /// This node's confirmed blocks.
    pub own_blocks: Vec<IpNet>,
    /// How many neighbours the configuration has.
    pub neighbors: usize,
}

/// The applier failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ApplierError {
    /// The datastore syncer stopped (it only stops when dropped: a bug).
    #[error("the datastore syncer stopped")]
    SyncerStopped,
    /// The daemon has shut down.
    #[error("the bgpd daemon stopped")]
    DaemonStopped,
}

/// Keeps a daemon's configuration computed from the datastore.
#[derive(Debug)]
pub struct Applier {
    settings: FabricSettings,
    secrets_dir: PathBuf,
    snapshot: Snapshot,
    events: mpsc::Receiver<SyncEvent>,
    state: watch::Sender<FabricState>,
    debounce: Duration,
    last_warnings: Vec<FabricWarning>,
    last_error: Option<String>,
}

impl Applier {
    /// Starts watching the datastore for node `node` (must run inside a tokio runtime).
    /// Passwords are read from `secrets_dir` (see [`super::Secrets`]).
    pub fn start(
        backend: Arc<dyn Backend>,
        node: &str,
        settings: FabricSettings,
        secrets_dir: PathBuf,
    ) -> Applier {
        let events = syncer::start(backend, sync_prefixes(node));
        let (state, _) = watch::channel(FabricState::default());
        Applier {
            settings,
            secrets_dir,
            snapshot: Snapshot::new(node),
            events,
            state,
            debounce: DEFAULT_DEBOUNCE,
            last_warnings: Vec::new(),
            last_error: None,
        }
    }

    /// Sets the coalescing window.
    pub fn with_debounce(mut self, debounce: Duration) -> Applier {
        self.debounce = debounce;
        self
    }

    /// Follows the last computation.
    pub fn state(&self) -> watch::Receiver<FabricState> {
        self.state.subscribe()
    }

    /// The settings the configuration is computed with.
    pub fn settings(&self) -> &FabricSettings {
        &self.settings
    }

    /// Waits for the datastore snapshot and returns the first configuration that computes
    /// (each failure is logged once and retried after the next change).
    pub async fn initial_config(&mut self) -> Result<Config, ApplierError> {
        while !self.snapshot.in_sync {
            let event = self
                .events
                .recv()
                .await
                .ok_or(ApplierError::SyncerStopped)?;
            self.snapshot.apply(event);
        }
        loop {
            if let Some(out) = self.recompute() {
                return Ok(out.config);
            }
            self.next_burst(None).await?;
        }
    }

    /// Applies changes to `daemon` until the daemon or the syncer stops.
    pub async fn run(mut self, daemon: DaemonHandle) -> Result<(), ApplierError> {
        loop {
            self.next_burst(Some(SECRETS_REFRESH)).await?;
            let Some(out) = self.recompute() else {
                continue;
            };
            if out.config == daemon.config() {
                continue;
            }
            match daemon.reconfigure(out.config).await {
                Ok(report) if report.is_empty() => {}
                Ok(report) => {
                    tracing::info!(
                        speaker_restarted = report.speaker_restarted,
                        added = ?report.neighbors_added,
                        removed = ?report.neighbors_removed,
                        changed = ?report.neighbors_changed,
                        originated = ?report.originations_changed,
                        withdrawn = ?report.originations_withdrawn,
                        "bgpd reconfigured from the datastore"
                    );
                }
                Err(DaemonError::Stopped) => return Err(ApplierError::DaemonStopped),
                Err(e) => {
                    let text = fabric_api::error_chain(&e);
                    tracing::error!(error = %text, "bgpd refused the computed configuration; the previous one stays");
                    self.state.send_modify(|s| s.error = Some(text));
                }
            }
        }
    }

    /// Waits for a change (or `refresh`), then for quiet (`debounce`, at most [`MAX_DELAY`]).
    async fn next_burst(&mut self, refresh: Option<Duration>) -> Result<(), ApplierError> {
        let first = match refresh {
            Some(t) => match tokio::time::timeout(t, self.events.recv()).await {
                Ok(e) => Some(e.ok_or(ApplierError::SyncerStopped)?),
                Err(_) => None,
            },
            None => Some(
                self.events
                    .recv()
                    .await
                    .ok_or(ApplierError::SyncerStopped)?,
            ),
        };
        let Some(first) = first else {
            return Ok(());
        };
        self.snapshot.apply(first);
        let started = Instant::now();
        loop {
            let left = MAX_DELAY.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(());
            }
            match tokio::time::timeout(self.debounce.min(left), self.events.recv()).await {
                Ok(Some(e)) => {
                    self.snapshot.apply(e);
                }
                Ok(None) => return Err(ApplierError::SyncerStopped),
                Err(_) => return Ok(()),
            }
        }
    }

    /// Computes from the snapshot (with fresh secrets); logs warnings and errors when they
    /// change; publishes the state.
    fn recompute(&mut self) -> Option<FabricOutput> {
        let refs = referenced_secrets(&self.snapshot.input);
        self.snapshot.input.secrets = Secrets::read(&self.secrets_dir, &refs);
        match compute(&self.snapshot.input, &self.settings) {
            Ok(out) => {
                if out.warnings != self.last_warnings {
                    for w in &out.warnings {
                        tracing::warn!(resource = %w.resource, field = %w.field, "{}", w.message);
                    }
                    self.last_warnings = out.warnings.clone();
                }
                self.last_error = None;
                self.state.send_replace(FabricState {
                    warnings: out.warnings.clone(),
                    error: None,
                    static_routes: out.static_routes.clone(),
                    kernel_reject: out.kernel_reject.clone(),
                    own_blocks: out.own_blocks.clone(),
                    neighbors: out.config.neighbors.len(),
                });
                Some(out)
            }
            Err(e) => {
                let text = fabric_api::error_chain(&e);
                if self.last_error.as_ref() != Some(&text) {
                    tracing::error!(error = %text, "cannot compute the BGP configuration; the previous one stays");
                    self.last_error = Some(text.clone());
                }
                self.state.send_modify(|s| s.error = Some(text));
                None
            }
        }
    }
}
