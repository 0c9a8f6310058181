//! The running node: startup, then felix and bgpd in one tokio runtime. bgpd's best paths go
//! to felix as learned routes; the fabric applier keeps bgpd's configuration computed from the
//! datastore; bgpd's status socket is the node's status socket.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bgpd::fabric::{Applier, FabricSettings, Secrets};
use bgpd::{Daemon, DaemonHandle, RouteReceiver};
use fabric_datastore::{Client, DatastoreConfig};
use felix::{ConfigOverrides, FelixConfig, LearnedRoute, LearnedRoutesUpdate};
use tokio::sync::mpsc;

use crate::autodetect;
use crate::settings::NodeSettings;
use crate::startup;

/// How often the learned-routes in-sync check polls bgpd.
const IN_SYNC_POLL: Duration = Duration::from_millis(250);

/// Everything `calico-node` runs with.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// calico-node's own settings.
    pub settings: NodeSettings,
    /// The datastore.
    pub datastore: DatastoreConfig,
    /// `FELIX_*` overrides (health is switched on unless `FELIX_HEALTHENABLED` says no).
    pub felix_overrides: ConfigOverrides,
}

impl RunConfig {
    /// Reads the whole configuration from the environment; nothing is written.
    pub fn from_env() -> anyhow::Result<RunConfig> {
        let settings = NodeSettings::from_env()?;
        let datastore = DatastoreConfig::load(None).context("datastore configuration")?;
        let mut felix_overrides = ConfigOverrides::from_lookup(|n| std::env::var(n).ok())
            .map_err(|e| anyhow!(e))
            .context("felix setting")?;
        felix_overrides.health_enabled.get_or_insert(true);
        Ok(RunConfig {
            settings,
            datastore,
            felix_overrides,
        })
    }
}

/// Registers the node (detecting its addresses first) and writes the nodename file.
pub async fn startup(
    config: &RunConfig,
) -> anyhow::Result<(Client, Arc<dyn fabric_datastore::Backend>)> {
    let ifaces = autodetect::host_interfaces().context("listing network interfaces")?;
    let addrs = startup::resolve_addresses(&config.settings, &ifaces)?;
    let backend = config
        .datastore
        .connect()
        .await
        .map_err(|e| anyhow!(e))
        .context("connecting to the datastore")?;
    let client = Client::new(backend.clone());
    startup::register(&config.settings, &addrs, &client).await?;
    startup::write_nodename(&config.settings.nodename_file, &config.settings.node_name)?;
    Ok((client, backend))
}

/// Runs the node until `shutdown` completes (or a part fails).
pub async fn run(config: RunConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let (_client, backend) = startup(&config).await?;
    let s = &config.settings;
    let mut felix_config = FelixConfig::new(s.node_name.clone(), config.datastore.clone());
    felix_config.overrides = config.felix_overrides.clone();

    let mut bgp: Option<(DaemonHandle, tokio::task::JoinHandle<()>)> = None;
    let mut learned_rx = None;
    if s.bgp() {
        if let Some(dir) = s.status_socket.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let fabric = FabricSettings {
            router_id: s.router_id,
            status_socket: Some(s.status_socket.clone()),
            state_file: Some(s.status_socket.with_extension("gr-state")),
            metrics_address: None,
        };
        let mut applier = Applier::start(
            backend.clone(),
            &s.node_name,
            fabric,
            Secrets::dir_from_env(),
        );
        let initial = applier
            .initial_config()
            .await
            .map_err(|e| anyhow!(e))
            .context("computing the first BGP configuration")?;
        let daemon = Daemon::start(initial)
            .await
            .map_err(|e| anyhow!(error_chain(&e)))
            .context("starting bgpd")?;
        tracing::info!(socket = %s.status_socket.display(), "bgpd started");
        let routes = daemon
            .routes()
            .await
            .map_err(|e| anyhow!(e))
            .context("subscribing to bgpd's routes")?;
        let (tx, rx) = mpsc::channel(64);
        learned_rx = Some(rx);
        tokio::spawn(forward_routes(routes, tx.clone()));
        tokio::spawn(signal_in_sync(daemon.clone(), tx));
        let d = daemon.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = applier.run(d).await {
                tracing::error!(error = %e, "the fabric applier stopped");
            }
        });
        bgp = Some((daemon, task));
    }

    // The node-local IPAM service the CNI plugin asks first (see fabric_ipam::service). It
    // only saves work: without it the plugin uses the datastore, so a failure to start it is
    // logged and the node runs on.
    let _ipam_service = match &s.ipam_socket {
        Some(path) => {
            let ipam = fabric_ipam::Ipam::from_backend(backend.clone());
            match fabric_ipam::service::Service::start(ipam, &s.node_name, path).await {
                Ok(service) => Some(service),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %error_chain(&e), "cannot start the IPAM service; the CNI plugin will use the datastore");
                    None
                }
            }
        }
        None => None,
    };

    let (felix_stop_tx, felix_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let felix = tokio::spawn(felix::run(felix_config, learned_rx, async move {
        let _ = felix_stop_rx.await;
    }));
    tokio::pin!(felix);
    let bgp_stopped = async {
        match &bgp {
            Some((d, _)) => d.stopped().await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        () = shutdown => Ok(()),
        r = &mut felix => match r {
            Ok(Ok(())) => Err(anyhow!("felix stopped")),
            Ok(Err(e)) => Err(anyhow!(error_chain(&e))).context("felix failed"),
            Err(e) => Err(anyhow!(e)).context("felix panicked"),
        },
        () = bgp_stopped => Err(anyhow!("bgpd's speaker stopped unexpectedly")),
    };
    if let Some((daemon, task)) = bgp {
        task.abort();
        // A clean stop: Cease to the peers; the state file goes, so the next start is fresh.
        let _ = daemon.shutdown(false).await;
    }
    let _ = felix_stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), felix).await;
    result
}

/// bgpd's best paths as felix's learned routes: paths learned from a peer become next hops;
/// our own originations are not routes for the kernel.
async fn forward_routes(mut routes: RouteReceiver, tx: mpsc::Sender<LearnedRoutesUpdate>) {
    while let Some(batch) = routes.recv().await {
        let learned: Vec<LearnedRoute> = batch
            .into_iter()
            .map(|u| {
                let mut hops: Vec<IpAddr> = u
                    .paths
                    .iter()
                    .filter(|p| p.peer.is_some())
                    .map(|p| p.next_hop_addr())
                    .filter(|a| !a.is_unspecified())
                    .collect();
                hops.dedup();
                LearnedRoute::new(u.prefix, hops)
            })
            .collect();
        if learned.is_empty() {
            continue;
        }
        if tx.send(LearnedRoutesUpdate::Routes(learned)).await.is_err() {
            return;
        }
    }
}

/// Tells felix the learned routes are complete: every configured session is Established and
/// has sent End-of-RIB for each negotiated family (or has been up for [`EOR_WAIT`] without
/// one), in two polls in a row, so the routes the End-of-RIB released have reached felix's
/// channel first. Until then felix deletes no route it learned before a restart: a BIRD peer
/// sends its UPDATEs and End-of-RIB most of a second after the session comes up. felix's own
/// grace period covers a session that never comes up.
async fn signal_in_sync(daemon: DaemonHandle, tx: mpsc::Sender<LearnedRoutesUpdate>) {
    let mut seen_synced = false;
    loop {
        tokio::time::sleep(IN_SYNC_POLL).await;
        let Ok(neighbors) = daemon.neighbors().await else {
            return;
        };
        let now_ms = unix_ms();
        let synced = neighbors.iter().all(|n| session_synced(n, now_ms));
        if synced && seen_synced {
            let _ = tx.send(LearnedRoutesUpdate::InSync).await;
            tracing::info!(sessions = neighbors.len(), "learned routes in sync");
            return;
        }
        seen_synced = synced;
    }
}

/// How long an Established session that sent no End-of-RIB is waited for (RFC 4724 makes
/// End-of-RIB a graceful-restart feature; a peer without it may never send one).
const EOR_WAIT: Duration = Duration::from_secs(5);

/// Whether a session has delivered its whole Adj-RIB-In.
fn session_synced(n: &bgpd::status::NeighborStatus, now_ms: u64) -> bool {
    let Some(session) = n.session.as_ref().filter(|_| n.state == "Established") else {
        return false;
    };
    let eor = session
        .families
        .iter()
        .all(|f| session.end_of_rib_received.contains(f));
    let waited = u128::from(now_ms.saturating_sub(n.since_unix_ms)) >= EOR_WAIT.as_millis();
    eor || waited
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub use fabric_api::error_chain;
