//! The main loop: feeds the calc graph, decides when to flush and what to resync, hands jobs
//! to the kernel thread, and turns their results into health, metrics and retries.

use std::collections::HashSet;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fabric_api::Node;
use fabric_datastore::Client;
use fabric_datastore::syncer::{self, SyncEvent};
use ipnet::IpNet;
use tokio::sync::mpsc;

use super::config::FelixConfig;
use super::health::{HealthShared, ServerSlot, health_app, metrics_app};
use super::kernel::{Job, JobResult, KernelThread, Resync};
use super::metrics::{Metrics, gauge_value};
use super::{FelixError, LearnedRoutesUpdate};
use crate::calc::{
    CalcGraph, CalcInput, DataplaneChanges, LearnedRoute, Settings, decode_sync_event,
    effective_settings, sync_prefixes,
};
use crate::dataplane::links::IPIP_UNSUPPORTED;
use crate::dataplane::{IpFamily, IpipStatus, MacAddr};

/// The longest the loop sleeps (it refreshes the liveness heartbeat when it wakes).
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How often routes waiting for an interface are retried.
const WAITING_RETRY: Duration = Duration::from_secs(1);
/// The longest pause between datastore connection attempts.
const CONNECT_RETRY_MAX: Duration = Duration::from_secs(10);

/// Learned-route bookkeeping around bgpd restarts.
#[derive(Debug)]
struct Learned {
    /// There is a BGP source at all.
    source: bool,
    in_sync: bool,
    grace_until: Instant,
    /// Prefixes heard since a `Reset`, while its full table is being re-sent.
    resetting: Option<HashSet<IpNet>>,
    /// Every prefix currently learned (to withdraw the ones not re-sent after a reset).
    current: HashSet<IpNet>,
}

/// When each periodic resync is next due (`None`: disabled).
#[derive(Debug, Default)]
struct ResyncTimers {
    routes: Option<Instant>,
    interfaces: Option<Instant>,
    iptables: Option<Instant>,
}

fn next_after(now: Instant, every: Duration) -> Option<Instant> {
    // An interval too long to represent as an instant never comes due: disabled, like zero.
    (!every.is_zero()).then(|| now.checked_add(every)).flatten()
}

impl ResyncTimers {
    fn schedule(&mut self, now: Instant, s: &Settings) {
        self.routes = next_after(now, s.route_refresh_interval);
        self.interfaces = next_after(now, s.interface_refresh_interval);
        self.iptables = next_after(
            now,
            s.iptables_refresh_interval.min(s.ipsets_refresh_interval),
        )
        .or_else(|| {
            next_after(
                now,
                s.iptables_refresh_interval.max(s.ipsets_refresh_interval),
            )
        });
    }

    fn due(&self, now: Instant) -> Resync {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        Resync {
            routes: due(self.routes),
            interfaces: due(self.interfaces),
            iptables: due(self.iptables),
        }
    }

    fn earliest(&self) -> Option<Instant> {
        [self.routes, self.interfaces, self.iptables]
            .into_iter()
            .flatten()
            .min()
    }

    fn done(&mut self, done: Resync, now: Instant, s: &Settings) {
        let mut fresh = ResyncTimers::default();
        fresh.schedule(now, s);
        if done.routes {
            self.routes = fresh.routes;
        }
        if done.interfaces {
            self.interfaces = fresh.interfaces;
        }
        if done.iptables {
            self.iptables = fresh.iptables;
        }
    }
}

/// The main loop's state.
pub(crate) struct Driver {
    config: FelixConfig,
    graph: CalcGraph,
    kernel: KernelThread,
    results: mpsc::UnboundedReceiver<JobResult>,
    health: Arc<HealthShared>,
    metrics: Metrics,
    health_server: ServerSlot,
    metrics_server: ServerSlot,
    settings: Settings,
    /// Changes flushed from the graph but not yet handed to the kernel thread.
    pending: DataplaneChanges,
    in_flight: Option<Resync>,
    last_apply: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Duration,
    waiting_retry_at: Option<Instant>,
    timers: ResyncTimers,
    /// The node addresses the underlay interface was last detected for.
    detected_for: Option<Vec<IpAddr>>,
    learned: Learned,
    /// The route in-sync flag the kernel thread last got.
    routes_in_sync_sent: bool,
    /// Typed datastore access, for publishing our VXLAN MAC on our Node.
    client: Option<Client>,
    /// A MAC write is running.
    mac_write_running: Arc<AtomicBool>,
    calc_time: Duration,
}

impl Driver {
    /// Starts the kernel thread (in the calling thread's namespace) and the HTTP servers.
    pub(crate) async fn start(config: FelixConfig, bgp_source: bool) -> Result<Driver, FelixError> {
        let (kernel, results) = KernelThread::start().map_err(FelixError::Kernel)?;
        let (settings, _) = effective_settings(&[], &config.overrides);
        let now = Instant::now();
        let mut d = Driver {
            graph: CalcGraph::new(config.node_name.clone(), config.overrides.clone()),
            kernel,
            results,
            health: Arc::new(HealthShared::default()),
            metrics: Metrics::default(),
            health_server: ServerSlot::default(),
            metrics_server: ServerSlot::default(),
            settings,
            pending: DataplaneChanges::default(),
            in_flight: None,
            last_apply: None,
            retry_at: None,
            backoff: config.retry_min,
            waiting_retry_at: None,
            timers: ResyncTimers::default(),
            detected_for: None,
            learned: Learned {
                source: bgp_source,
                in_sync: !bgp_source,
                grace_until: now + config.learned_routes_grace,
                resetting: None,
                current: HashSet::new(),
            },
            routes_in_sync_sent: false,
            client: None,
            mac_write_running: Arc::new(AtomicBool::new(false)),
            calc_time: Duration::ZERO,
            config,
        };
        d.ensure_servers().await;
        tracing::info!(node = %d.config.node_name, bgp = bgp_source, "felix started");
        Ok(d)
    }

    async fn ensure_servers(&mut self) {
        let s = &self.settings;
        let health = s
            .health_enabled
            .then(|| (s.health_host.clone(), s.health_port));
        let metrics = s
            .prometheus_metrics_enabled
            .then(|| (s.prometheus_metrics_host.clone(), s.prometheus_metrics_port));
        let state = self.health.clone();
        self.health_server
            .ensure("health", health, || health_app(state))
            .await;
        let m = self.metrics.clone();
        self.metrics_server
            .ensure("metrics", metrics, || metrics_app(m))
            .await;
    }

    /// The loop; returns when `shutdown` completes or a part it needs has stopped.
    pub(crate) async fn run(
        mut self,
        mut learned_rx: Option<mpsc::Receiver<LearnedRoutesUpdate>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), FelixError> {
        tokio::pin!(shutdown);
        let Some(mut sync_rx) = self.connect(&mut shutdown).await else {
            self.kernel.stop();
            return Ok(());
        };
        let outcome = loop {
            self.health.heartbeat();
            let deadline = tokio::time::Instant::from_std(self.next_deadline(Instant::now()));
            tokio::select! {
                biased;
                () = &mut shutdown => break Ok(()),
                result = self.results.recv() => match result {
                    Some(r) => self.on_result(r),
                    None => {
                        self.health.kernel_died();
                        break Err(FelixError::KernelStopped);
                    }
                },
                event = sync_rx.recv() => match event {
                    Some(e) => {
                        self.on_sync(e);
                        while let Ok(e) = sync_rx.try_recv() {
                            self.on_sync(e);
                        }
                    }
                    None => break Err(FelixError::SyncerStopped),
                },
                update = recv_learned(&mut learned_rx) => match update {
                    Some(u) => self.on_learned(u),
                    None => {
                        tracing::warn!("the learned-route source closed; learned routes stay as they are");
                        learned_rx = None;
                    }
                },
                () = tokio::time::sleep_until(deadline) => {}
            }
            self.dispatch().await;
        };
        self.kernel.stop();
        tracing::info!("felix stopped; the dataplane is left as it is");
        outcome
    }

    /// Connects to the datastore (retrying) and starts the syncer; `None` on shutdown.
    async fn connect(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Option<mpsc::Receiver<SyncEvent>> {
        let mut delay = Duration::from_millis(200);
        loop {
            let attempt = tokio::select! {
                () = shutdown.as_mut() => return None,
                r = self.config.datastore.connect() => r,
            };
            match attempt {
                Ok(backend) => {
                    self.client = Some(Client::new(backend.clone()));
                    return Some(syncer::start(backend, sync_prefixes()));
                }
                Err(e) => {
                    tracing::error!(error = %crate::dataplane::status::error_chain(&e), retry_in_ms = delay.as_millis() as u64, "cannot connect to the datastore");
                    tokio::select! {
                        () = shutdown.as_mut() => return None,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(CONNECT_RETRY_MAX);
                }
            }
        }
    }

    fn on_sync(&mut self, event: SyncEvent) {
        let started = Instant::now();
        let decoded = decode_sync_event(&event);
        if let Some(problem) = decoded.problem {
            tracing::warn!(problem = %problem, "datastore value ignored");
        }
        if let Some(input) = decoded.input {
            let in_sync = matches!(input, CalcInput::DatastoreInSync);
            self.graph.update(input);
            if in_sync {
                tracing::info!(
                    endpoints = self.graph.local_endpoints(),
                    "in sync with the datastore"
                );
                self.health.set_in_sync();
                self.metrics.in_sync.set(1);
                self.timers.schedule(Instant::now(), &self.settings);
            }
        }
        self.calc_time += started.elapsed();
    }

    fn on_learned(&mut self, update: LearnedRoutesUpdate) {
        let started = Instant::now();
        match update {
            LearnedRoutesUpdate::Routes(routes) => {
                for r in routes {
                    let prefix = r.prefix.trunc();
                    if r.next_hops.is_empty() {
                        self.learned.current.remove(&prefix);
                    } else {
                        self.learned.current.insert(prefix);
                        if let Some(seen) = &mut self.learned.resetting {
                            seen.insert(prefix);
                        }
                    }
                    self.graph.update(CalcInput::Learned(r));
                }
            }
            LearnedRoutesUpdate::Reset => {
                tracing::info!(
                    "learned routes reset: the current ones stay until the new table is complete"
                );
                self.learned.resetting = Some(HashSet::new());
            }
            LearnedRoutesUpdate::InSync => {
                if let Some(seen) = self.learned.resetting.take() {
                    let gone: Vec<IpNet> = self
                        .learned
                        .current
                        .iter()
                        .filter(|p| !seen.contains(p))
                        .copied()
                        .collect();
                    for p in gone {
                        self.learned.current.remove(&p);
                        self.graph
                            .update(CalcInput::Learned(LearnedRoute::withdrawn(p)));
                    }
                }
                if !self.learned.in_sync {
                    tracing::info!(
                        routes = self.learned.current.len(),
                        "learned routes in sync"
                    );
                }
                self.learned.in_sync = true;
                self.graph.update(CalcInput::LearnedRoutesInSync);
            }
        }
        self.calc_time += started.elapsed();
    }

    fn routes_in_sync(&self, now: Instant) -> bool {
        self.graph.datastore_in_sync() && (self.learned.in_sync || now >= self.learned.grace_until)
    }

    fn next_deadline(&self, now: Instant) -> Instant {
        let mut at = now + HEARTBEAT;
        if self.graph.datastore_in_sync() && self.in_flight.is_none() {
            let mut consider = |t: Option<Instant>| {
                if let Some(t) = t {
                    at = at.min(t);
                }
            };
            if self.graph.has_pending_work() || !self.pending.is_empty() {
                consider(Some(
                    self.last_apply
                        .map_or(now, |t| t + self.config.apply_interval),
                ));
            }
            consider(self.retry_at);
            consider(self.waiting_retry_at);
            consider(self.timers.earliest());
            if !self.learned.in_sync {
                consider(Some(self.learned.grace_until));
            }
            if self.routes_in_sync(now) != self.routes_in_sync_sent {
                consider(Some(now));
            }
        }
        at.max(now)
    }

    /// Sends the next job if one is due.
    async fn dispatch(&mut self) {
        if self.in_flight.is_some() || !self.graph.datastore_in_sync() {
            return;
        }
        let now = Instant::now();
        let addresses = self.graph.node_addresses();
        if self.detected_for.as_ref() != Some(&addresses) {
            // Find the underlay first, so the first apply already has the right MTUs and
            // direct-route devices (a restart must not rewrite correct state twice).
            self.detected_for = Some(addresses.clone());
            self.send(Job {
                detect: Some(addresses),
                detect_only: true,
                ..Job::default()
            });
            return;
        }
        let resync = self.timers.due(now);
        let apply_due = (self.graph.has_pending_work() || !self.pending.is_empty())
            && self
                .last_apply
                .is_none_or(|t| now >= t + self.config.apply_interval);
        let retry_due = self.retry_at.is_some_and(|t| now >= t);
        let waiting_due = self.waiting_retry_at.is_some_and(|t| now >= t);
        let routes_in_sync = self.routes_in_sync(now);
        // Route deletions become allowed (learned routes in sync, or the grace time is over).
        let gating_changed = routes_in_sync != self.routes_in_sync_sent;
        if !(apply_due || retry_due || waiting_due || resync.any() || gating_changed) {
            return;
        }
        let started = Instant::now();
        let changes = self.graph.flush();
        let calc = self.calc_time + started.elapsed();
        self.calc_time = Duration::ZERO;
        self.metrics.calc_seconds.observe(calc.as_secs_f64());
        for problem in self.graph.take_problems() {
            tracing::warn!(problem = %problem, "input ignored");
        }
        if let Some(s) = &changes.settings {
            self.settings_changed(s.clone(), now).await;
        }
        self.pending.merge(changes);
        let mut changes = std::mem::take(&mut self.pending);
        if waiting_due {
            // Routes wait for interfaces: re-read them all.
            changes.endpoints_replaced = true;
        }
        self.metrics
            .local_endpoints
            .set(gauge_value(self.graph.local_endpoints()));
        let detect = resync.interfaces.then(|| self.graph.node_addresses());
        self.last_apply = Some(now);
        self.retry_at = None;
        self.waiting_retry_at = None;
        if self.learned.source && !self.learned.in_sync && routes_in_sync {
            tracing::warn!(
                "no learned-routes in-sync marker within the grace time; stale learned routes may now be deleted"
            );
            self.learned.in_sync = true;
        }
        self.routes_in_sync_sent = routes_in_sync;
        self.send(Job {
            changes,
            datastore_in_sync: true,
            routes_in_sync,
            resync,
            detect,
            detect_only: false,
        });
        self.timers.done(resync, now, &self.settings);
    }

    fn send(&mut self, job: Job) {
        let resync = job.resync;
        if self.kernel.send(job) {
            self.in_flight = Some(resync);
            self.health.apply_started();
        } else {
            self.health.kernel_died();
        }
    }

    async fn settings_changed(&mut self, settings: Settings, now: Instant) {
        let timers_changed = settings.route_refresh_interval
            != self.settings.route_refresh_interval
            || settings.interface_refresh_interval != self.settings.interface_refresh_interval
            || settings.iptables_refresh_interval != self.settings.iptables_refresh_interval
            || settings.ipsets_refresh_interval != self.settings.ipsets_refresh_interval;
        self.settings = settings;
        if timers_changed {
            self.timers.schedule(now, &self.settings);
        }
        self.ensure_servers().await;
    }

    fn on_result(&mut self, r: JobResult) {
        let Some(resync) = self.in_flight.take() else {
            return;
        };
        if let Some(host) = r.host_interface {
            tracing::debug!(host = ?host, "underlay interface");
            self.graph.update(CalcInput::HostInterface(host));
        }
        let now = Instant::now();
        if resync.any() || r.resyncs > 0 {
            self.metrics.resyncs.inc_by(r.resyncs as u64);
        }
        if r.health.is_empty() {
            // A detection-only job.
            return;
        }
        self.metrics.apply_seconds.observe(r.duration.as_secs_f64());
        self.metrics.routes.set(gauge_value(r.routes_installed));
        self.metrics.ipsets.set(gauge_value(r.ipsets));
        self.metrics.rules.set(gauge_value(r.rules));
        if r.failed {
            self.metrics.failures.inc();
            self.retry_at = Some(now + self.backoff);
            tracing::warn!(errors = ?r.errors, retry_in_ms = self.backoff.as_millis() as u64, "dataplane apply failed");
            self.backoff = (self.backoff * 2).min(self.config.retry_max);
        } else {
            self.backoff = self.config.retry_min;
        }
        if r.waiting > 0 {
            self.waiting_retry_at = Some(now + WAITING_RETRY);
        }
        let mut reasons: Vec<String> = r
            .health
            .iter()
            .flat_map(|(name, h)| {
                h.reasons
                    .iter()
                    .filter(|reason| reason.as_str() != IPIP_UNSUPPORTED)
                    .map(move |reason| format!("{name}: {reason}"))
            })
            .collect();
        if let Some(IpipStatus::Unsupported(why)) = &r.ipip {
            let pools: Vec<String> = self
                .graph
                .ipip_pools()
                .into_iter()
                .map(|(n, c)| format!("{n} ({c})"))
                .collect();
            if !pools.is_empty() {
                reasons.push(format!(
                    "{IPIP_UNSUPPORTED} ({why}): IP pool(s) {} use ipipMode, so routes to their remote blocks via tunl0 cannot work on this node; VXLAN and unencapsulated pools are unaffected",
                    pools.join(", ")
                ));
            }
        }
        self.health.apply_finished(!r.failed, reasons);
        self.publish_vxlan_macs(&r.vxlan_macs);
    }

    /// Writes the kernel-chosen VXLAN MAC into our Node when the Node has none (one write at a
    /// time; the Node update comes back through the syncer).
    fn publish_vxlan_macs(&mut self, macs: &[(IpFamily, MacAddr)]) {
        let missing = self.graph.missing_vxlan_macs();
        let wanted: Vec<(IpFamily, MacAddr)> = macs
            .iter()
            .filter(|(f, _)| missing.contains(f))
            .copied()
            .collect();
        let Some(client) = self.client.clone() else {
            return;
        };
        if wanted.is_empty() || self.mac_write_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let running = self.mac_write_running.clone();
        let name = self.config.node_name.clone();
        tokio::spawn(async move {
            match write_vxlan_macs(&client, &name, &wanted).await {
                Ok(()) => {
                    tracing::info!(node = %name, macs = ?wanted, "published the VXLAN MAC on the Node")
                }
                Err(e) => {
                    tracing::warn!(node = %name, error = %crate::dataplane::status::error_chain(&e), "publishing the VXLAN MAC failed; retrying after the next apply")
                }
            }
            running.store(false, Ordering::Release);
        });
    }
}

/// Sets the empty VXLAN MAC fields of Node `name` (compare-and-swap on its revision).
async fn write_vxlan_macs(
    client: &Client,
    name: &str,
    macs: &[(IpFamily, MacAddr)],
) -> Result<(), fabric_datastore::ClientError> {
    let mut node: Node = client.get(None, name).await?;
    let mut changed = false;
    for (family, mac) in macs {
        let field = match family {
            IpFamily::V4 => &mut node.spec.vxlan_tunnel_mac_addr,
            IpFamily::V6 => &mut node.spec.vxlan_tunnel_mac_addr_v6,
        };
        if field.is_empty() {
            *field = mac.to_string();
            changed = true;
        }
    }
    if changed {
        client.replace(node).await?;
    }
    Ok(())
}

async fn recv_learned(
    rx: &mut Option<mpsc::Receiver<LearnedRoutesUpdate>>,
) -> Option<LearnedRoutesUpdate> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_timers_follow_the_settings_and_zero_disables_one() {
        let s = Settings {
            route_refresh_interval: Duration::from_secs(1),
            interface_refresh_interval: Duration::ZERO,
            iptables_refresh_interval: Duration::from_secs(5),
            ipsets_refresh_interval: Duration::from_secs(3),
            ..Settings::default()
        };
        let t0 = Instant::now();
        let mut timers = ResyncTimers::default();
        timers.schedule(t0, &s);
        assert_eq!(timers.interfaces, None);
        assert_eq!(timers.earliest(), Some(t0 + Duration::from_secs(1)));
        assert!(!timers.due(t0).any());
        let due = timers.due(t0 + Duration::from_secs(3));
        assert_eq!(
            due,
            Resync {
                routes: true,
                interfaces: false,
                iptables: true
            }
        );
        timers.done(due, t0 + Duration::from_secs(3), &s);
        assert_eq!(timers.routes, Some(t0 + Duration::from_secs(4)));
        assert_eq!(timers.iptables, Some(t0 + Duration::from_secs(6)));
    }

    #[test]
    fn an_interval_too_long_for_an_instant_disables_the_timer_instead_of_panicking() {
        assert_eq!(next_after(Instant::now(), Duration::MAX), None);
    }
}
