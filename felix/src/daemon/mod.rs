//! The felix daemon: datastore syncer and learned routes in, calc graph, then the kernel
//! thread applying the desired state in dependency order; health, metrics, batching, in-sync
//! gating, periodic resyncs and retries.
//!
//! # Flow
//!
//! ```text
//!  datastore ──syncer──► main loop (tokio) ──update──► CalcGraph (pure)
//!  bgpd ──LearnedRoutesUpdate──┘   │  flush at most every apply_interval
//!                                  ▼
//!                     Job (changes, in-sync flags, resyncs) ──► kernel thread (std)
//!                                  ▲                          links → VTEPs → sysctls →
//!                     JobResult ◄──┘                          routes → VTEP/link removals → NAT
//! ```
//!
//! - **Batching.** Syncer events are drained as they come; the graph is flushed and a job sent
//!   at most every [`FelixConfig::apply_interval`], and never while a job runs: updates that
//!   arrive meanwhile are coalesced into the next job.
//! - **In-sync gating.** Nothing is applied before the datastore snapshot is complete (a
//!   partial snapshot could compute a wrong route and replace a good one). Links, neighbours,
//!   sysctls and NAT delete stale objects once the datastore is in sync; routes also wait for
//!   the learned routes to be in sync ([`LearnedRoutesUpdate::InSync`], or no BGP source, or
//!   [`FelixConfig::learned_routes_grace`] after start).
//! - **Resyncs.** `routeRefreshInterval` re-reads routes and VXLAN neighbours,
//!   `interfaceRefreshInterval` tunnel devices, sysctls and the underlay interface,
//!   `iptablesRefreshInterval`/`ipsetsRefreshInterval` the NAT chains and sets.
//! - **Retries.** A failed write is retried after [`FelixConfig::retry_min`], doubling up to
//!   [`FelixConfig::retry_max`]. Routes waiting for a `cali*` interface are retried every
//!   second.
//! - **Namespaces.** The kernel thread is spawned by [`run`], so felix programs the network
//!   namespace of the thread that first polls `run` (build the runtime inside the namespace).
//! - **Shutdown** leaves the kernel as it is: a restarted felix finds its routes and changes
//!   nothing that is still right, so traffic does not stop.

mod config;
mod driver;
mod health;
mod kernel;
mod metrics;

use std::future::Future;

use tokio::sync::mpsc;

pub use config::{ConfigError, FelixConfig};
pub use health::HealthReport;
pub use kernel::KernelStartError;

use crate::calc::LearnedRoute;

/// What bgpd (through calico-node) sends felix about learned routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnedRoutesUpdate {
    /// Changed routes; a route with no next hops is withdrawn.
    Routes(Vec<LearnedRoute>),
    /// Every route bgpd will re-learn after its (re)start has been sent: learned routes felix
    /// has not heard about since the start (or the last [`LearnedRoutesUpdate::Reset`]) may be
    /// deleted now.
    InSync,
    /// bgpd restarted: a full table follows, then `InSync`; until then the current learned
    /// routes stay installed.
    Reset,
}

/// Why felix stopped.
#[derive(Debug, thiserror::Error)]
pub enum FelixError {
    /// The kernel thread could not start.
    #[error("starting the kernel thread")]
    Kernel(#[source] KernelStartError),
    /// The datastore syncer ended (it only ends when its consumer is gone, so this is a bug).
    #[error("the datastore syncer stopped")]
    SyncerStopped,
    /// The kernel thread ended (it panicked).
    #[error("the kernel thread stopped")]
    KernelStopped,
}

/// Runs felix until `shutdown` completes.
///
/// `learned_routes` is the stream of BGP-learned routes (calico-node feeds it from bgpd);
/// `None` means there is no BGP on this node (a VXLAN-only cluster): learned routes are then
/// in sync at once. The kernel state is left in place on shutdown.
pub async fn run(
    config: FelixConfig,
    learned_routes: Option<mpsc::Receiver<LearnedRoutesUpdate>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), FelixError> {
    driver::Driver::start(config, learned_routes.is_some())
        .await?
        .run(learned_routes, shutdown)
        .await
}
