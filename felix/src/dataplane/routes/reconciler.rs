//! The route reconciler: desired routes vs. the kernel's protocol-80 routes, written in batches.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use super::kernel::{KernelNextHop, KernelRoute, KernelTarget, RouteKernel, RouteWrite};
use super::{Route, RouteConfig, RouteTarget};
use crate::dataplane::Reconciler;
use crate::dataplane::addr::IpFamily;
use crate::dataplane::netlink::KernelErrno;
use crate::dataplane::status::{
    ApplyReport, DataplaneError, Health, InvalidInput, WriteOp, error_chain,
};

/// Keeps the kernel's routes with our protocol in our table equal to the desired routes.
///
/// Routes to an interface that does not exist yet wait (they are not errors) and are written
/// once the interface appears. Foreign routes are never modified, except a foreign route out of
/// a `takeover_interface_prefixes` interface that holds one of our destinations.
#[derive(Debug)]
pub struct RouteReconciler<K: RouteKernel> {
    kernel: K,
    config: RouteConfig,
    desired: HashMap<IpNet, Route>,
    /// Own routes in the kernel, as last read or written (one per destination).
    actual: HashMap<IpNet, KernelRoute>,
    /// Own routes at another metric, or a second own route for one destination: stale.
    duplicates: Vec<KernelRoute>,
    /// Foreign routes in our table, by destination.
    foreign: HashMap<IpNet, Vec<KernelRoute>>,
    interfaces: HashMap<String, u32>,
    interfaces_stale: bool,
    /// Destinations to look at in the next apply.
    dirty: HashSet<IpNet>,
    /// Desired routes whose interface does not exist, with that interface.
    waiting: HashMap<IpNet, String>,
    /// Destinations held by a foreign route, with its protocol (retried after a re-read).
    conflicts: HashMap<IpNet, u8>,
    needs_read: bool,
    in_sync: bool,
    health: Health,
}

impl<K: RouteKernel> RouteReconciler<K> {
    /// A reconciler over `kernel`; it reads the kernel on its first apply.
    pub fn new(kernel: K, config: RouteConfig) -> Result<RouteReconciler<K>, InvalidInput> {
        config.validate()?;
        Ok(RouteReconciler {
            kernel,
            config,
            desired: HashMap::new(),
            actual: HashMap::new(),
            duplicates: Vec::new(),
            foreign: HashMap::new(),
            interfaces: HashMap::new(),
            interfaces_stale: true,
            dirty: HashSet::new(),
            waiting: HashMap::new(),
            conflicts: HashMap::new(),
            needs_read: true,
            in_sync: false,
            health: Health::healthy(),
        })
    }

    /// Replaces the whole desired state. Rejects (and changes nothing) on an invalid route or
    /// two routes for one destination. No I/O.
    pub fn set_desired(
        &mut self,
        routes: impl IntoIterator<Item = Route>,
    ) -> Result<(), InvalidInput> {
        let mut next: HashMap<IpNet, Route> = HashMap::new();
        for route in routes {
            route.validate()?;
            if let Some(first) = next.get(&route.dst) {
                return Err(InvalidInput::new(
                    format!("routes[{}]", route.dst),
                    &route,
                    format!("the destination already has a route ({first})"),
                ));
            }
            next.insert(route.dst, route);
        }
        for (dst, route) in &next {
            if self.desired.get(dst) != Some(route) {
                self.dirty.insert(*dst);
            }
        }
        for dst in self.desired.keys() {
            if !next.contains_key(dst) {
                self.dirty.insert(*dst);
            }
        }
        self.desired = next;
        Ok(())
    }

    /// Adds or changes one desired route. No I/O.
    pub fn upsert(&mut self, route: Route) -> Result<(), InvalidInput> {
        route.validate()?;
        if self.desired.get(&route.dst) != Some(&route) {
            self.dirty.insert(route.dst);
            self.desired.insert(route.dst, route);
        }
        Ok(())
    }

    /// Removes one desired route (it is deleted from the kernel once in sync). No I/O.
    pub fn remove(&mut self, dst: &IpNet) {
        if self.desired.remove(dst).is_some() {
            self.dirty.insert(*dst);
        }
    }

    /// Tells the reconciler that interfaces changed (a `cali*` veth appeared or was recreated).
    pub fn interfaces_changed(&mut self) {
        self.interfaces_stale = true;
    }

    /// Desired routes waiting for their interface, with the interface name.
    pub fn waiting(&self) -> Vec<(IpNet, String)> {
        let mut out: Vec<_> = self.waiting.iter().map(|(d, i)| (*d, i.clone())).collect();
        out.sort();
        out
    }

    /// Destinations held by foreign routes, with the foreign protocol.
    pub fn conflicts(&self) -> Vec<(IpNet, u8)> {
        let mut out: Vec<_> = self.conflicts.iter().map(|(d, p)| (*d, *p)).collect();
        out.sort();
        out
    }

    /// How many own routes the reconciler believes are in the kernel.
    pub fn installed(&self) -> usize {
        self.actual.len() + self.duplicates.len()
    }

    /// The kernel access (tests use it to tamper with a fake kernel).
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.desired.keys().copied());
        self.dirty.extend(self.actual.keys().copied());
    }

    /// Reads own and foreign routes of our table from the kernel.
    fn read_routes(&mut self) -> Result<(), DataplaneError> {
        let routes = self
            .kernel
            .dump_routes(self.config.table)
            .map_err(|source| DataplaneError::Read {
                what: "routes",
                source,
            })?;
        self.actual.clear();
        self.duplicates.clear();
        self.foreign.clear();
        for route in routes {
            if route.table != self.config.table {
                continue;
            }
            if route.protocol != self.config.protocol {
                self.foreign.entry(route.dst).or_default().push(route);
                continue;
            }
            // We only ever write at our metric: an own route at another metric is stale
            // (left by an older configuration) and goes once in sync.
            let ours = self.config.effective_metric(IpFamily::of_net(&route.dst));
            if route.metric != ours || self.actual.contains_key(&route.dst) {
                self.duplicates.push(route);
            } else {
                self.actual.insert(route.dst, route);
            }
        }
        self.needs_read = false;
        self.conflicts.clear();
        Ok(())
    }

    /// Re-reads the interface map. Returns true if a known interface changed its index or
    /// vanished (the kernel then dropped the routes through it).
    fn refresh_interfaces(&mut self) -> Result<bool, DataplaneError> {
        let fresh = self
            .kernel
            .interfaces()
            .map_err(|source| DataplaneError::Read {
                what: "interfaces",
                source,
            })?;
        let used: HashSet<u32> = self.actual.values().flat_map(KernelRoute::oifs).collect();
        let changed = self
            .interfaces
            .iter()
            .any(|(name, idx)| fresh.get(name) != Some(idx) && used.contains(idx));
        self.interfaces = fresh;
        self.interfaces_stale = false;
        self.dirty.extend(self.waiting.keys().copied());
        Ok(changed)
    }

    /// The kernel form of `route`, or the name of a missing interface.
    fn resolve(&self, route: &Route) -> Result<KernelRoute, String> {
        let index = |name: &str| self.interfaces.get(name).copied().ok_or(name.to_string());
        let hop = |nh: &super::NextHop| -> Result<KernelNextHop, String> {
            Ok(KernelNextHop {
                gateway: nh.gateway,
                oif: nh.interface.as_deref().map(index).transpose()?,
                onlink: nh.onlink,
            })
        };
        let target = match &route.target {
            RouteTarget::Interface(name) => KernelTarget::Device { oif: index(name)? },
            RouteTarget::Blackhole => KernelTarget::Blackhole,
            RouteTarget::Gateway(nh) => KernelTarget::Gateway(hop(nh)?),
            RouteTarget::Multipath(nhs) => {
                let mut hops = nhs.iter().map(hop).collect::<Result<Vec<_>, _>>()?;
                hops.sort();
                KernelTarget::Multipath(hops)
            }
        };
        Ok(KernelRoute {
            dst: route.dst,
            table: self.config.table,
            protocol: self.config.protocol,
            metric: self.config.effective_metric(IpFamily::of_net(&route.dst)),
            target,
        })
    }

    /// The foreign route at `dst` with our metric, if any.
    fn foreign_at(&self, dst: &IpNet) -> Option<&KernelRoute> {
        let metric = self.config.effective_metric(IpFamily::of_net(dst));
        self.foreign
            .get(dst)
            .and_then(|rs| rs.iter().find(|r| r.metric == metric))
    }

    fn may_take_over(&self, foreign: &KernelRoute) -> bool {
        let oifs = foreign.oifs();
        !oifs.is_empty()
            && oifs.iter().all(|oif| {
                self.interfaces.iter().any(|(name, idx)| {
                    idx == oif
                        && self
                            .config
                            .takeover_interface_prefixes
                            .iter()
                            .any(|p| name.starts_with(p.as_str()))
                })
            })
    }

    /// Turns the dirty destinations into writes.
    fn plan(&mut self, report: &mut ApplyReport) -> Vec<RouteWrite> {
        let mut writes = Vec::new();
        let keys: Vec<IpNet> = self.dirty.drain().collect();
        for dst in keys {
            let Some(route) = self.desired.get(&dst) else {
                self.waiting.remove(&dst);
                self.conflicts.remove(&dst);
                if let Some(stale) = self.actual.get(&dst) {
                    if self.in_sync {
                        writes.push(RouteWrite::Delete(stale.clone()));
                    } else {
                        report.deferred_deletes += 1;
                    }
                }
                continue;
            };
            // An interface not in the cached map (a new workload) is looked up by name
            // rather than by re-reading every interface.
            let unknown: Vec<String> = route
                .interfaces()
                .into_iter()
                .filter(|i| !self.interfaces.contains_key(*i))
                .map(str::to_string)
                .collect();
            for name in unknown {
                if let Ok(Some(index)) = self.kernel.interface_index(&name) {
                    self.interfaces.insert(name, index);
                }
            }
            let Some(route) = self.desired.get(&dst) else {
                continue;
            };
            let wanted = match self.resolve(route) {
                Ok(w) => w,
                Err(interface) => {
                    self.waiting.insert(dst, interface);
                    continue;
                }
            };
            self.waiting.remove(&dst);
            match self.actual.get(&dst) {
                Some(current) if *current == wanted => {}
                Some(_) => writes.push(RouteWrite::Replace(wanted)),
                None => match self.foreign_at(&dst) {
                    None => writes.push(RouteWrite::Create(wanted)),
                    Some(f) if self.may_take_over(f) => {
                        tracing::info!(dst = %dst, protocol = f.protocol, "taking over a foreign route on a workload interface");
                        writes.push(RouteWrite::Replace(wanted));
                    }
                    Some(f) => {
                        let protocol = f.protocol;
                        if self.conflicts.insert(dst, protocol).is_none() {
                            tracing::warn!(dst = %dst, protocol, "a foreign route holds a desired destination; leaving it alone");
                        }
                        report
                            .errors
                            .push(DataplaneError::RouteConflict { dst, protocol });
                    }
                },
            }
        }
        let stale_duplicates = std::mem::take(&mut self.duplicates);
        if self.in_sync {
            writes.extend(stale_duplicates.into_iter().map(RouteWrite::Delete));
        } else {
            report.deferred_deletes += stale_duplicates.len();
            self.duplicates = stale_duplicates;
        }
        writes
    }

    /// Sends `writes` in batches and records the verdicts. Returns the destinations whose
    /// create hit `EEXIST` (someone else holds them).
    fn execute(&mut self, writes: Vec<RouteWrite>, report: &mut ApplyReport) -> Vec<IpNet> {
        let mut exists = Vec::new();
        for chunk in writes.chunks(self.config.batch_size) {
            report.batches += 1;
            match self.kernel.write_routes(chunk) {
                Err(source) => {
                    self.needs_read = true;
                    self.dirty.extend(chunk.iter().map(|w| w.route().dst));
                    report.errors.push(DataplaneError::Batch {
                        what: "route",
                        count: chunk.len(),
                        source,
                    });
                }
                Ok(verdicts) => {
                    for (write, verdict) in chunk.iter().zip(verdicts) {
                        self.record(write, verdict, report, &mut exists);
                    }
                }
            }
        }
        exists
    }

    fn record(
        &mut self,
        write: &RouteWrite,
        verdict: Result<(), KernelErrno>,
        report: &mut ApplyReport,
        exists: &mut Vec<IpNet>,
    ) {
        let route = write.route();
        let dst = route.dst;
        match (write, verdict) {
            (RouteWrite::Create(r), Ok(())) => {
                self.actual.insert(dst, r.clone());
                report.created += 1;
            }
            (RouteWrite::Replace(r), Ok(())) => {
                self.actual.insert(dst, r.clone());
                report.updated += 1;
            }
            (RouteWrite::Delete(r), Ok(())) => {
                self.forget(r);
                report.deleted += 1;
            }
            (RouteWrite::Delete(r), Err(e)) if e.is(libc::ENOENT) || e.is(libc::ESRCH) => {
                tracing::debug!(dst = %dst, "stale route was already gone");
                self.forget(r);
                report.deleted += 1;
            }
            (RouteWrite::Create(_), Err(e)) if e.is(libc::EEXIST) => exists.push(dst),
            (_, Err(e)) if e.is(libc::ENODEV) => {
                let interface = self
                    .desired
                    .get(&dst)
                    .and_then(|r| r.interfaces().first().map(|s| s.to_string()))
                    .unwrap_or_default();
                tracing::debug!(dst = %dst, interface, "interface vanished; the route waits for it");
                self.actual.remove(&dst);
                self.waiting.insert(dst, interface);
                self.interfaces_stale = true;
            }
            (write, Err(source)) => {
                let op = match write {
                    RouteWrite::Create(_) => WriteOp::Create,
                    RouteWrite::Replace(_) => WriteOp::Replace,
                    RouteWrite::Delete(_) => WriteOp::Delete,
                };
                tracing::warn!(dst = %dst, %op, error = %source, "route write failed; will re-read and retry");
                if source.is(libc::ENETUNREACH) {
                    self.interfaces_stale = true;
                }
                self.needs_read = true;
                self.dirty.insert(dst);
                report.errors.push(DataplaneError::Write {
                    op,
                    object: format!("route {dst}"),
                    source,
                });
            }
        }
    }

    fn forget(&mut self, route: &KernelRoute) {
        if self.actual.get(&route.dst) == Some(route) {
            self.actual.remove(&route.dst);
        } else {
            self.duplicates.retain(|d| d != route);
        }
    }

    fn update_health(&mut self, report: &ApplyReport) {
        let mut reasons: Vec<String> = report
            .errors
            .iter()
            .filter(|e| !matches!(e, DataplaneError::RouteConflict { .. }))
            .map(|e| error_chain(e))
            .collect();
        for (dst, protocol) in self.conflicts() {
            reasons.push(DataplaneError::RouteConflict { dst, protocol }.to_string());
        }
        self.health = Health::from_reasons(reasons);
    }

    fn run(&mut self, report: &mut ApplyReport) -> Result<(), DataplaneError> {
        let mut read_now = false;
        if self.needs_read {
            self.read_routes()?;
            self.mark_all_dirty();
            self.interfaces_stale = true;
            report.resynced = true;
            read_now = true;
        }
        if self.interfaces_stale || !self.waiting.is_empty() {
            let changed = self.refresh_interfaces()?;
            if changed && !read_now {
                self.read_routes()?;
                self.mark_all_dirty();
                report.resynced = true;
            }
        }
        let writes = self.plan(report);
        let exists = self.execute(writes, report);
        if !exists.is_empty() {
            // Someone else holds these destinations: look at the kernel again and decide
            // per destination (ours at another state: replace; foreign: conflict or takeover).
            self.read_routes()?;
            report.resynced = true;
            self.dirty.extend(exists);
            let writes = self.plan(report);
            let again = self.execute(writes, report);
            for dst in again {
                self.needs_read = true;
                self.dirty.insert(dst);
                report.errors.push(DataplaneError::Write {
                    op: WriteOp::Create,
                    object: format!("route {dst}"),
                    source: KernelErrno::new(libc::EEXIST),
                });
            }
            // The re-read may have shown other drift; look at everything next time.
            self.mark_all_dirty();
        }
        Ok(())
    }
}

impl<K: RouteKernel> Reconciler for RouteReconciler<K> {
    fn name(&self) -> &'static str {
        "routes"
    }

    fn apply(&mut self) -> ApplyReport {
        let mut report = ApplyReport::default();
        if let Err(e) = self.run(&mut report) {
            self.needs_read = true;
            report.errors.push(e);
        }
        report.waiting = self.waiting.len();
        self.update_health(&report);
        report
    }

    fn resync(&mut self) -> ApplyReport {
        self.needs_read = true;
        self.interfaces_stale = true;
        self.apply()
    }

    fn set_in_sync(&mut self, in_sync: bool) {
        if in_sync && !self.in_sync {
            let stale: Vec<IpNet> = self
                .actual
                .keys()
                .filter(|d| !self.desired.contains_key(d))
                .copied()
                .collect();
            self.dirty.extend(stale);
        }
        self.in_sync = in_sync;
    }

    fn health(&self) -> Health {
        self.health.clone()
    }
}
