//! The daemon: [`Daemon::start`] binds the sockets and spawns the speaker task, and the
//! [`DaemonHandle`] it returns is the whole API (reconfigure, route stream, status, shutdown).
//! The standalone binary and calico-node both drive bgpd through it.

mod conn;
mod owner;
mod reconfig;
mod restart;
mod routes;
mod servers;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use bgpd_core::Speaker;
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot, watch};

pub use reconfig::ReconfigureReport;
pub use routes::{RouteReceiver, RouteUpdate};

use crate::config::{Config, ConfigError};
use crate::metrics::{LiveMetrics, render};
use crate::status::{NeighborStatus, RouteStatus, Status};
use owner::{Clock, Control, Event, ListenerTask, Owner};
use restart::StateFile;
use servers::Servers;

/// Capacity of the speaker task's inbox (frame batches, connection events, requests).
const INBOX: usize = 1024;

/// A function that re-reads the configuration (the binary: the TOML file). Used by the status
/// socket's `reload` request and by [`DaemonHandle::reload`].
pub type Reloader = Arc<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// The daemon could not start, or a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration was refused.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    /// The graceful-restart state file could not be used.
    #[error("graceful-restart state file {path}")]
    StateFile {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The status socket or metrics endpoint could not be bound.
    #[error("cannot bind {what}")]
    Bind {
        /// What was being bound.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The speaker thread could not be started.
    #[error("cannot start the speaker thread")]
    Thread {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The daemon has shut down.
    #[error("the daemon has shut down")]
    Stopped,
    /// The daemon refused a request.
    #[error("{0}")]
    Refused(String),
    /// No reloader was given to [`Daemon::start_with_reloader`].
    #[error("reload is not available: this daemon has no configuration source to re-read")]
    NoReloader,
}

/// Entry point of the daemon.
#[derive(Debug)]
pub struct Daemon;

impl Daemon {
    /// Checks `config`, binds the listeners, the status socket and the metrics endpoint, and
    /// starts the speaker on its own thread. Must run inside a tokio runtime whose drivers keep
    /// running: a multi-thread runtime, or a current-thread one that some thread keeps inside
    /// `Runtime::block_on` (the speaker thread uses the runtime's timers and sockets).
    pub async fn start(config: Config) -> Result<DaemonHandle, DaemonError> {
        Self::start_with_reloader(config, None).await
    }

    /// As [`Daemon::start`], with a function that re-reads the configuration on `reload`.
    pub async fn start_with_reloader(
        config: Config,
        reloader: Option<Reloader>,
    ) -> Result<DaemonHandle, DaemonError> {
        config.validate()?;
        let listeners = reconfig::bind_new_listeners(&config, &|_| false)?;
        let (state_file, restarting) = match &config.state_file {
            Some(path) => {
                let (f, restarting) =
                    StateFile::claim(path).map_err(|source| DaemonError::StateFile {
                        path: path.clone(),
                        source,
                    })?;
                (Some(f), restarting)
            }
            None => (None, false),
        };
        if restarting {
            tracing::warn!(
                "the state file of a previous bgpd is present: starting as a graceful-restarting speaker"
            );
        }
        let servers = Servers::bind(&config).await?;
        let speaker = Speaker::new(config.speaker_config(restarting))
            .map_err(|e| ConfigError::invalid(e.path, e.value, e.rule))?;
        let (tx, rx) = mpsc::channel(INBOX);
        let mut owner = Owner {
            speaker,
            config: Config {
                neighbors: Vec::new(),
                originate: Vec::new(),
                ..config.clone()
            },
            restarting,
            clock: Clock::new(),
            generation: 0,
            events: tx.clone(),
            conns: HashMap::new(),
            connecting: HashMap::new(),
            closing: Vec::new(),
            listeners: BTreeMap::new(),
            transports: HashMap::new(),
            facts: HashMap::new(),
            subscribers: Vec::new(),
            route_changes: Vec::new(),
            overflowed: Vec::new(),
            out: Vec::new(),
            live: LiveMetrics::default(),
            state_file,
        };
        for (addr, l) in listeners {
            owner
                .listeners
                .insert(addr, ListenerTask::start(l, tx.clone()));
        }
        let empty = owner.config.clone();
        owner.config = config.clone();
        owner.install_transports(&empty);
        owner.add_everything();
        tracing::info!(
            router_id = %config.router_id, asn = config.asn, restarting,
            neighbors = config.neighbors.len(), "bgpd started"
        );
        let (done_tx, done_rx) = watch::channel(false);
        // The speaker task gets its own thread (driven through the runtime's handle, so its
        // timers, I/O and spawns still belong to the runtime): its CPU bursts never hold up the
        // reader and writer tasks on the runtime's workers, and the writers it wakes are queued
        // where any idle worker picks them up at once.
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("bgpd-speaker".into())
            .spawn(move || {
                runtime.block_on(owner.run(rx));
                let _ = done_tx.send(true);
            })
            .map_err(|source| DaemonError::Thread { source })?;
        let handle = DaemonHandle {
            inner: Arc::new(Inner {
                events: tx,
                reloader,
                servers: Mutex::new(None),
                config: Mutex::new(config),
                done: done_rx,
            }),
        };
        let started = servers.start(handle.clone());
        *handle.inner.lock_servers() = Some(started);
        Ok(handle)
    }
}

struct Inner {
    events: mpsc::Sender<Event>,
    reloader: Option<Reloader>,
    servers: Mutex<Option<servers::Running>>,
    config: Mutex<Config>,
    done: watch::Receiver<bool>,
}

impl Inner {
    fn lock_servers(&self) -> std::sync::MutexGuard<'_, Option<servers::Running>> {
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn lock_config(&self) -> std::sync::MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonHandle").finish_non_exhaustive()
    }
}

/// A running daemon. Cheap to clone; every clone talks to the same speaker task.
#[derive(Debug, Clone)]
pub struct DaemonHandle {
    inner: Arc<Inner>,
}

impl DaemonHandle {
    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Result<T, DaemonError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .events
            .send(Event::Control(make(tx)))
            .await
            .map_err(|_| DaemonError::Stopped)?;
        rx.await.map_err(|_| DaemonError::Stopped)
    }

    /// Applies a new configuration incrementally: added, removed and changed neighbours and
    /// originations; unaffected sessions are not reset. A change of the router id, the AS or
    /// another speaker-wide setting restarts the speaker. A refused configuration changes
    /// nothing.
    pub async fn reconfigure(&self, config: Config) -> Result<ReconfigureReport, DaemonError> {
        config.validate()?;
        let current = self.inner.lock_config().clone();
        let staged = Servers::rebind(&current, &config).await?;
        let result = self
            .request(|reply| Control::Reconfigure {
                config: Box::new(config.clone()),
                reply,
            })
            .await;
        let report = match result {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => {
                staged.discard();
                return Err(e.into());
            }
            Err(e) => {
                staged.discard();
                return Err(e);
            }
        };
        {
            let mut running = self.inner.lock_servers();
            if let Some(r) = running.as_mut() {
                r.replace(staged, self.clone());
            }
        }
        *self.inner.lock_config() = config;
        Ok(report)
    }

    /// Re-reads the configuration with the reloader given at start and applies it.
    pub async fn reload(&self) -> Result<ReconfigureReport, DaemonError> {
        let reloader = self.inner.reloader.clone().ok_or(DaemonError::NoReloader)?;
        let config = reloader()?;
        self.reconfigure(config).await
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.inner.lock_config().clone()
    }

    /// Subscribes to best-path changes (the first batch is the whole Loc-RIB). bgpd itself
    /// writes nothing to the kernel: the embedding program (felix) installs these routes.
    pub async fn routes(&self) -> Result<RouteReceiver, DaemonError> {
        self.request(Control::Subscribe).await
    }

    /// The daemon and its neighbours.
    pub async fn status(&self) -> Result<Status, DaemonError> {
        self.request(Control::Status).await
    }

    /// The neighbours.
    pub async fn neighbors(&self) -> Result<Vec<NeighborStatus>, DaemonError> {
        Ok(self.status().await?.neighbors)
    }

    /// Loc-RIB routes with every path, best/ECMP marks and the decision reason: all of them,
    /// or the one for `prefix`.
    pub async fn loc_rib(&self, prefix: Option<IpNet>) -> Result<Vec<RouteStatus>, DaemonError> {
        self.request(|reply| Control::Routes { prefix, reply })
            .await
    }

    /// Takes a neighbour down (Cease/Administrative Shutdown with `message`) until
    /// [`DaemonHandle::admin_up`].
    pub async fn admin_down(&self, peer: IpAddr, message: String) -> Result<(), DaemonError> {
        self.request(|reply| Control::AdminDown {
            peer,
            message,
            reply,
        })
        .await?
        .map_err(DaemonError::Refused)
    }

    /// Brings an administratively down neighbour back.
    pub async fn admin_up(&self, peer: IpAddr) -> Result<(), DaemonError> {
        self.request(|reply| Control::AdminUp { peer, reply })
            .await?
            .map_err(DaemonError::Refused)
    }

    /// The Prometheus text exposition of the daemon's metrics.
    pub async fn metrics(&self) -> Result<String, DaemonError> {
        let snapshot = self.request(Control::Metrics).await?;
        Ok(render(&snapshot))
    }

    /// Stops the daemon. `restart: false` sends Cease to every neighbour, withdraws every route
    /// from the route stream and removes the state file; `restart: true` closes the sessions
    /// without NOTIFICATION and keeps the state file, so neighbours keep our routes (graceful
    /// restart) and the next start is a restarting one.
    pub async fn shutdown(&self, restart: bool) -> Result<(), DaemonError> {
        let r = self
            .request(|reply| Control::Shutdown { restart, reply })
            .await;
        if let Some(s) = self.inner.lock_servers().take() {
            s.stop();
        }
        r
    }

    /// Waits until the daemon has stopped.
    pub async fn stopped(&self) {
        let mut done = self.inner.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }
}
