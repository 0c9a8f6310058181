//! The kernel thread: it owns every reconciler (they act on the network namespace of the thread
//! that opened them) and applies each job in dependency order — the sequencer.

use std::net::IpAddr;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::calc::{DataplaneChanges, HostInterface, IptablesBackendChoice, Settings};
use crate::dataplane::links::LinkKernel;
use crate::dataplane::routes::{VXLAN_DEVICE, VXLAN_V6_DEVICE};
use crate::dataplane::status::DataplaneError;
use crate::dataplane::{
    ApplyReport, DesiredLinks, Health, IpFamily, IpipStatus, IpsetCommand, IptablesCommands,
    LinkConfig, LinkReconciler, MacAddr, NatConfig, NatPool, NatReconciler, NeighbourReconciler,
    NetlinkLinkKernel, NetlinkNeighbourKernel, NetlinkRouteKernel, PolicyReconciler, ProcSys,
    Reconciler, RouteConfig, RouteReconciler, SysctlReconciler, VtepNeighbour,
};

/// Which reconcilers re-read the kernel in a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Resync {
    /// Routes and VXLAN neighbours (`routeRefreshInterval`).
    pub routes: bool,
    /// Tunnel devices, sysctls and the underlay interface (`interfaceRefreshInterval`).
    pub interfaces: bool,
    /// iptables chains and ipsets (`iptablesRefreshInterval`, `ipsetsRefreshInterval`).
    pub iptables: bool,
}

impl Resync {
    pub(crate) fn any(self) -> bool {
        self.routes || self.interfaces || self.iptables
    }
}

/// One unit of kernel work.
#[derive(Debug, Default)]
pub(crate) struct Job {
    /// What changed in the desired state.
    pub changes: DataplaneChanges,
    /// Deletions of stale links, neighbours, sysctls, NAT objects are allowed.
    pub datastore_in_sync: bool,
    /// Deletions of stale routes are allowed (datastore and learned routes in sync).
    pub routes_in_sync: bool,
    /// Which reconcilers re-read the kernel.
    pub resync: Resync,
    /// Find the interface holding one of these addresses (before applying).
    pub detect: Option<Vec<IpAddr>>,
    /// Only detect; do not apply.
    pub detect_only: bool,
}

/// What a job did.
#[derive(Debug, Default)]
pub(crate) struct JobResult {
    /// How long the kernel work took.
    pub duration: Duration,
    /// Whether anything must be retried (a write failed).
    pub failed: bool,
    /// Every failure, one line each.
    pub errors: Vec<String>,
    /// Desired objects waiting for an interface.
    pub waiting: usize,
    /// Each reconciler's health.
    pub health: Vec<(&'static str, Health)>,
    /// IPIP support as last seen.
    pub ipip: Option<IpipStatus>,
    /// The detected underlay interface, when detection was asked for.
    pub host_interface: Option<Option<HostInterface>>,
    /// Own routes in the kernel.
    pub routes_installed: usize,
    /// Our ipsets in the kernel.
    pub ipsets: usize,
    /// Our iptables rules in the kernel.
    pub rules: usize,
    /// Reconcilers that re-read the kernel.
    pub resyncs: usize,
    /// The MACs of our VXLAN devices as last read.
    pub vxlan_macs: Vec<(IpFamily, MacAddr)>,
}

/// The handle of the kernel thread.
#[derive(Debug)]
pub(crate) struct KernelThread {
    jobs: Option<std_mpsc::Sender<Job>>,
    handle: Option<JoinHandle<()>>,
}

/// Why the kernel thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum KernelStartError {
    /// A netlink socket could not be opened.
    #[error("opening a netlink socket for the {what} reconciler")]
    Netlink {
        /// Which reconciler.
        what: &'static str,
        /// The netlink failure.
        #[source]
        source: crate::dataplane::netlink::NetlinkError,
    },
    /// The thread could not be spawned.
    #[error("spawning the kernel thread")]
    Spawn(#[source] std::io::Error),
    /// The thread ended before it reported back.
    #[error("the kernel thread ended during start-up")]
    Vanished,
    /// The fixed route configuration was rejected.
    #[error("route configuration")]
    Config(#[source] crate::dataplane::InvalidInput),
}

impl KernelThread {
    /// Starts the thread in the calling thread's network namespace; results arrive on the
    /// returned receiver.
    pub(crate) fn start()
    -> Result<(KernelThread, mpsc::UnboundedReceiver<JobResult>), KernelStartError> {
        let (job_tx, job_rx) = std_mpsc::channel::<Job>();
        let (result_tx, result_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("felix-kernel".into())
            .spawn(move || {
                let mut dataplane = match Dataplane::open() {
                    Ok(d) => {
                        let _ = ready_tx.send(Ok(()));
                        d
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = job_rx.recv() {
                    let result = dataplane.run(job);
                    if result_tx.send(result).is_err() {
                        return;
                    }
                }
            })
            .map_err(KernelStartError::Spawn)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((
                KernelThread {
                    jobs: Some(job_tx),
                    handle: Some(handle),
                },
                result_rx,
            )),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => Err(KernelStartError::Vanished),
        }
    }

    /// Queues a job; false when the thread is gone.
    pub(crate) fn send(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }

    /// Stops the thread after its current job (the kernel state stays as it is).
    pub(crate) fn stop(&mut self) {
        self.jobs = None;
        if let Some(h) = self.handle.take()
            && h.join().is_err()
        {
            tracing::error!("the kernel thread panicked");
        }
    }
}

impl Drop for KernelThread {
    fn drop(&mut self) {
        self.stop();
    }
}

type Nat = NatReconciler<IptablesCommands, IpsetCommand>;
type Policy = PolicyReconciler<IptablesCommands, IpsetCommand>;

/// The iptables binaries `choice` selects for `family`.
fn iptables_commands(choice: IptablesBackendChoice, family: IpFamily) -> IptablesCommands {
    match choice {
        IptablesBackendChoice::Auto => IptablesCommands::detect(family),
        IptablesBackendChoice::Legacy => IptablesCommands::legacy(family),
        IptablesBackendChoice::Nft => IptablesCommands::nft(family),
    }
}

/// Every reconciler and the desired state they were last given.
struct Dataplane {
    links: LinkReconciler<NetlinkLinkKernel>,
    neighbours_v4: NeighbourReconciler<NetlinkNeighbourKernel>,
    neighbours_v6: NeighbourReconciler<NetlinkNeighbourKernel>,
    sysctls: SysctlReconciler<ProcSys>,
    routes: RouteReconciler<NetlinkRouteKernel>,
    nat_v4: Option<Nat>,
    nat_v6: Option<Nat>,
    policy: Option<Policy>,
    links_desired: DesiredLinks,
    vteps_v4: Vec<VtepNeighbour>,
    vteps_v6: Vec<VtepNeighbour>,
    nat_pools_v4: Vec<NatPool>,
    nat_pools_v6: Vec<NatPool>,
    settings: Option<Settings>,
    datastore_in_sync: bool,
    routes_in_sync: bool,
}

fn open<T>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, crate::dataplane::netlink::NetlinkError>,
) -> Result<T, KernelStartError> {
    f().map_err(|source| KernelStartError::Netlink { what, source })
}

impl Dataplane {
    fn open() -> Result<Dataplane, KernelStartError> {
        let neighbours = |device: &str, family| -> Result<_, KernelStartError> {
            NeighbourReconciler::new(
                open("neighbour", NetlinkNeighbourKernel::open)?,
                device,
                family,
            )
            .map_err(KernelStartError::Config)
        };
        Ok(Dataplane {
            links: LinkReconciler::new(
                open("link", NetlinkLinkKernel::open)?,
                LinkConfig::default(),
            ),
            neighbours_v4: neighbours(VXLAN_DEVICE, IpFamily::V4)?,
            neighbours_v6: neighbours(VXLAN_V6_DEVICE, IpFamily::V6)?,
            sysctls: SysctlReconciler::new(ProcSys::default()),
            routes: RouteReconciler::new(
                open("route", NetlinkRouteKernel::open)?,
                RouteConfig::default(),
            )
            .map_err(KernelStartError::Config)?,
            nat_v4: None,
            nat_v6: None,
            policy: None,
            links_desired: DesiredLinks::default(),
            vteps_v4: Vec::new(),
            vteps_v6: Vec::new(),
            nat_pools_v4: Vec::new(),
            nat_pools_v6: Vec::new(),
            settings: None,
            datastore_in_sync: false,
            routes_in_sync: false,
        })
    }

    fn run(&mut self, job: Job) -> JobResult {
        let started = Instant::now();
        let mut result = JobResult::default();
        if let Some(addresses) = &job.detect {
            result.host_interface = Some(self.detect(addresses));
        }
        if !job.detect_only {
            self.apply(job, &mut result);
        }
        result.duration = started.elapsed();
        result
    }

    /// The interface holding one of `addresses`, with its MTU.
    fn detect(&mut self, addresses: &[IpAddr]) -> Option<HostInterface> {
        let kernel = self.links.kernel_mut();
        let (links, addrs) = match (kernel.links(), kernel.addresses()) {
            (Ok(l), Ok(a)) => (l, a),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "reading interfaces to find the underlay failed");
                return None;
            }
        };
        let index = addrs
            .iter()
            .find(|(_, net)| addresses.contains(&net.addr()))
            .map(|(i, _)| *i)?;
        let link = links.into_iter().find(|l| l.index == index)?;
        Some(HostInterface {
            name: link.name,
            mtu: link.mtu,
        })
    }

    /// The sequencer: links, then VTEPs, then sysctls, then routes; removals of VTEPs and
    /// tunnel devices only after the routes through them are gone; NAT ipsets before the
    /// rules that use them (inside the NAT reconciler).
    fn apply(&mut self, job: Job, result: &mut JobResult) {
        let Job {
            changes,
            datastore_in_sync,
            routes_in_sync,
            resync,
            ..
        } = job;
        let mut invalid: Vec<String> = Vec::new();
        if let Some(settings) = changes.settings {
            self.apply_settings(settings);
        }
        self.set_in_sync(datastore_in_sync, routes_in_sync);
        let mut report = ApplyReport::default();
        let count = |r: ApplyReport, report: &mut ApplyReport, result: &mut JobResult| {
            if r.resynced {
                result.resyncs += 1;
            }
            report.merge(r);
        };

        // 1. Tunnel devices: the union of old and new, so nothing is removed yet.
        let new_links = changes.links.unwrap_or_else(|| self.links_desired.clone());
        let union = DesiredLinks {
            vxlan_v4: new_links
                .vxlan_v4
                .clone()
                .or_else(|| self.links_desired.vxlan_v4.clone()),
            vxlan_v6: new_links
                .vxlan_v6
                .clone()
                .or_else(|| self.links_desired.vxlan_v6.clone()),
            ipip: new_links
                .ipip
                .clone()
                .or_else(|| self.links_desired.ipip.clone()),
        };
        if let Err(e) = self.links.set_desired(union) {
            invalid.push(e.to_string());
        }
        let links_report = if resync.interfaces {
            self.links.resync()
        } else {
            self.links.apply()
        };
        let devices_changed =
            links_report.created + links_report.updated + links_report.deleted > 0;
        count(links_report, &mut report, result);
        if devices_changed {
            // A (re)created device has no routes or neighbours: re-read them.
            self.routes.interfaces_changed();
        }

        // 2. VTEPs: the union of old and new (adds before routes, removals after).
        let new_v4 = changes.vteps_v4.unwrap_or_else(|| self.vteps_v4.clone());
        let new_v6 = changes.vteps_v6.unwrap_or_else(|| self.vteps_v6.clone());
        let union_v4 = vtep_union(&self.vteps_v4, &new_v4);
        let union_v6 = vtep_union(&self.vteps_v6, &new_v6);
        for (reconciler, union) in [
            (&mut self.neighbours_v4, union_v4),
            (&mut self.neighbours_v6, union_v6),
        ] {
            if let Err(e) = reconciler.set_desired(union) {
                invalid.push(e.to_string());
            }
            let r = if resync.routes || devices_changed {
                reconciler.resync()
            } else {
                reconciler.apply()
            };
            count(r, &mut report, result);
        }
        // 3. Sysctls (workload interfaces before their routes).
        if let Some(s) = changes.sysctls {
            self.sysctls.set_desired(s);
        }
        // New keys (new interfaces) are written by apply; an interface recreated under its
        // old name (a replaced endpoint) has default values again: re-read every key.
        let r = if resync.interfaces || changes.endpoints_replaced {
            self.sysctls.resync()
        } else {
            self.sysctls.apply()
        };
        result.waiting += r.waiting;
        count(r, &mut report, result);
        // 3b. Policy: its ipsets, then its filter chains, then stale sets (a new workload
        // gets its chains before its route; until then the dispatch drops its traffic).
        self.apply_policy(
            changes.policy,
            resync.iptables,
            &mut invalid,
            &mut report,
            result,
        );
        // 4. Routes.
        for (dst, route) in changes.routes {
            match route {
                Some(r) => {
                    if let Err(e) = self.routes.upsert(r) {
                        invalid.push(e.to_string());
                    }
                }
                None => self.routes.remove(&dst),
            }
        }
        // New interfaces are looked up by name; only replaced endpoints (an interface may
        // have been recreated under its old name) need every interface re-read.
        if changes.endpoints_replaced {
            self.routes.interfaces_changed();
        }
        let r = if resync.routes {
            self.routes.resync()
        } else {
            self.routes.apply()
        };
        result.waiting += r.waiting;
        count(r, &mut report, result);

        // 5. Removals: VTEPs and devices no longer wanted, now that no route uses them.
        for (reconciler, new) in [
            (&mut self.neighbours_v4, new_v4.clone()),
            (&mut self.neighbours_v6, new_v6.clone()),
        ] {
            if let Err(e) = reconciler.set_desired(new) {
                invalid.push(e.to_string());
            }
            count(reconciler.apply(), &mut report, result);
        }
        self.vteps_v4 = new_v4;
        self.vteps_v6 = new_v6;
        if let Err(e) = self.links.set_desired(new_links.clone()) {
            invalid.push(e.to_string());
        }
        let r = self.links.apply();
        if r.deleted > 0 {
            self.routes.interfaces_changed();
        }
        count(r, &mut report, result);
        self.links_desired = new_links;

        // 6. NAT: ipsets, then the nat table, then stale sets.
        if let Some(p) = changes.nat_v4 {
            self.nat_pools_v4 = p;
        }
        if let Some(p) = changes.nat_v6 {
            self.nat_pools_v6 = p;
        }
        self.apply_nat(resync.iptables, &mut invalid, &mut report, result);

        if !report.is_noop() || report.deferred_deletes > 0 || !report.errors.is_empty() {
            tracing::debug!(
                created = report.created,
                updated = report.updated,
                deleted = report.deleted,
                deferred_deletes = report.deferred_deletes,
                waiting = report.waiting,
                errors = report.errors.len(),
                "dataplane applied"
            );
        }
        result.ipip = Some(self.links.ipip_status().clone());
        result.vxlan_macs = [
            (IpFamily::V4, VXLAN_DEVICE),
            (IpFamily::V6, VXLAN_V6_DEVICE),
        ]
        .into_iter()
        .filter_map(|(f, name)| Some((f, self.links.mac(name)?)))
        .collect();
        result.routes_installed = self.routes.installed();
        result.failed = report
            .errors
            .iter()
            .any(|e| !matches!(e, DataplaneError::Unsupported { .. }));
        result.errors = report.error_lines();
        for line in &invalid {
            tracing::error!(error = %line, "the calc graph produced desired state a reconciler rejected");
        }
        result.errors.extend(
            invalid
                .into_iter()
                .map(|l| format!("invalid desired state: {l}")),
        );
        result.health = vec![
            ("links", self.links.health()),
            (
                "neighbours",
                merge_health(self.neighbours_v4.health(), self.neighbours_v6.health()),
            ),
            ("sysctls", self.sysctls.health()),
            ("routes", self.routes.health()),
        ];
        for (name, nat) in [("nat", &self.nat_v4), ("nat6", &self.nat_v6)] {
            if let Some(n) = nat {
                result.health.push((name, n.health()));
            }
        }
        if let Some(p) = &self.policy {
            let (ipsets, rules) = p.counts();
            result.ipsets += ipsets;
            result.rules += rules;
            result.health.push(("policy", p.health()));
        }
    }

    fn policy_reconciler(&self) -> Option<Policy> {
        let choice = self.settings.as_ref()?.iptables_backend;
        let primary = move |f| iptables_commands(choice, f);
        // Our chains left in the other backend by an earlier run are removed.
        let in_use = primary(IpFamily::V4).restore;
        let mut other = move |f| {
            if in_use.contains("legacy") {
                IptablesCommands::nft(f)
            } else {
                IptablesCommands::legacy(f)
            }
        };
        let sweep = other(IpFamily::V4).installed();
        let other_ref: Option<&mut dyn FnMut(IpFamily) -> IptablesCommands> =
            if sweep { Some(&mut other) } else { None };
        match PolicyReconciler::new(primary, IpsetCommand::default(), other_ref) {
            Ok(mut p) => {
                p.set_in_sync(self.datastore_in_sync);
                Some(p)
            }
            Err(e) => {
                tracing::error!(error = %e, "policy table configuration rejected");
                None
            }
        }
    }

    fn apply_policy(
        &mut self,
        changes: Option<felix_policy::Changes>,
        resync: bool,
        invalid: &mut Vec<String>,
        report: &mut ApplyReport,
        result: &mut JobResult,
    ) {
        if self.policy.is_none() {
            self.policy = self.policy_reconciler();
        }
        let Some(policy) = &mut self.policy else {
            return;
        };
        if let Some(c) = changes
            && let Err(e) = policy.update(&c)
        {
            invalid.push(e.to_string());
        }
        let r = if resync {
            policy.resync()
        } else {
            policy.apply()
        };
        if r.resynced {
            result.resyncs += 1;
        }
        report.merge(r);
    }

    fn set_in_sync(&mut self, datastore: bool, routes: bool) {
        if datastore != self.datastore_in_sync {
            self.links.set_in_sync(datastore);
            self.neighbours_v4.set_in_sync(datastore);
            self.neighbours_v6.set_in_sync(datastore);
            self.sysctls.set_in_sync(datastore);
            for n in [&mut self.nat_v4, &mut self.nat_v6].into_iter().flatten() {
                n.set_in_sync(datastore);
            }
            if let Some(p) = &mut self.policy {
                p.set_in_sync(datastore);
            }
            self.datastore_in_sync = datastore;
        }
        if routes != self.routes_in_sync {
            self.routes.set_in_sync(routes);
            self.routes_in_sync = routes;
        }
    }

    /// New settings: NAT reconcilers are rebuilt when their configuration changed.
    fn apply_settings(&mut self, settings: Settings) {
        let nat_changed = self.settings.as_ref().is_none_or(|old| {
            old.iptables_backend != settings.iptables_backend
                || old.nat_outgoing_address != settings.nat_outgoing_address
        });
        if nat_changed {
            self.nat_v4 = None;
            self.nat_v6 = None;
        }
        let backend_changed = self
            .settings
            .as_ref()
            .is_some_and(|old| old.iptables_backend != settings.iptables_backend);
        if backend_changed && let Some(p) = &mut self.policy {
            let choice = settings.iptables_backend;
            if let Err(e) = p.switch_backend(|f| iptables_commands(choice, f)) {
                tracing::error!(error = %e, "moving the policy chains to the new iptables backend failed");
            }
        }
        self.settings = Some(settings);
    }

    fn nat_reconciler(&self, family: IpFamily) -> Option<Nat> {
        let settings = self.settings.as_ref()?;
        let commands = iptables_commands(settings.iptables_backend, family);
        let config = NatConfig {
            nat_outgoing_address: settings
                .nat_outgoing_address
                .filter(|a| IpFamily::of(*a) == family),
            ..NatConfig::masquerade(family)
        };
        match NatReconciler::new(commands, IpsetCommand::default(), config) {
            Ok(mut n) => {
                n.set_in_sync(self.datastore_in_sync);
                Some(n)
            }
            Err(e) => {
                tracing::error!(error = %e, "NAT configuration rejected");
                None
            }
        }
    }

    fn apply_nat(
        &mut self,
        resync: bool,
        invalid: &mut Vec<String>,
        report: &mut ApplyReport,
        result: &mut JobResult,
    ) {
        // IPv4 NAT is always programmed (its hook is harmless without pools); IPv6 only when
        // there are IPv6 pools.
        if self.nat_v4.is_none() {
            self.nat_v4 = self.nat_reconciler(IpFamily::V4);
        }
        if self.nat_v6.is_none() && !self.nat_pools_v6.is_empty() {
            self.nat_v6 = self.nat_reconciler(IpFamily::V6);
        }
        result.ipsets = 0;
        result.rules = 0;
        for (nat, pools) in [
            (&mut self.nat_v4, &self.nat_pools_v4),
            (&mut self.nat_v6, &self.nat_pools_v6),
        ] {
            let Some(nat) = nat else {
                continue;
            };
            if let Err(e) = nat.set_desired(pools) {
                invalid.push(e.to_string());
            }
            let r = if resync { nat.resync() } else { nat.apply() };
            if r.resynced {
                result.resyncs += 1;
            }
            report.merge(r);
            result.ipsets += nat.sets_mut().cached().len();
            result.rules += nat
                .table_mut()
                .cached()
                .chains
                .values()
                .map(|rules| rules.iter().filter(|h| h.is_some()).count())
                .sum::<usize>();
        }
    }
}

/// Old and new VTEPs together, with the new entry winning for a tunnel address or MAC that
/// moved (the neighbour reconciler rejects two entries for one address or one MAC).
fn vtep_union(old: &[VtepNeighbour], new: &[VtepNeighbour]) -> Vec<VtepNeighbour> {
    let mut out: Vec<VtepNeighbour> = new.to_vec();
    for o in old {
        let clash = out
            .iter()
            .any(|n| n.tunnel_address == o.tunnel_address || n.mac == o.mac);
        if !clash {
            out.push(o.clone());
        }
    }
    out
}

fn merge_health(a: Health, b: Health) -> Health {
    Health::from_reasons(a.reasons.into_iter().chain(b.reasons).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vtep(addr: &str, mac: &str) -> VtepNeighbour {
        VtepNeighbour {
            tunnel_address: addr.parse().unwrap(),
            mac: mac.parse().unwrap(),
            underlay: "172.16.0.9".parse().unwrap(),
        }
    }

    #[test]
    fn the_vtep_union_keeps_old_entries_unless_the_new_ones_take_their_address_or_mac() {
        let old = [
            vtep("10.0.0.1", "66:00:00:00:00:01"),
            vtep("10.0.0.2", "66:00:00:00:00:02"),
        ];
        let new = [
            vtep("10.0.0.1", "66:00:00:00:00:09"),
            vtep("10.0.0.3", "66:00:00:00:00:02"),
        ];
        let u = vtep_union(&old, &new);
        assert_eq!(u, new.to_vec());
        let u = vtep_union(&old, &[]);
        assert_eq!(u.len(), 2);
    }
}
