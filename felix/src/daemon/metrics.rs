//! Prometheus metrics (Calico's names where Calico has one), registered once and updated by
//! the main loop; `/metrics` encodes the registry.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// felix's metrics.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    /// `felix_int_dataplane_apply_time_seconds`: kernel time per apply.
    pub apply_seconds: Histogram,
    /// `felix_int_dataplane_failures`: applies with a failed write.
    pub failures: Counter,
    /// `felix_resyncs_started`: reconciler re-reads of the kernel.
    pub resyncs: Counter,
    /// `felix_calc_graph_update_time_seconds`: calc graph time per batch of inputs.
    pub calc_seconds: Histogram,
    /// `felix_routes`: own routes in the kernel.
    pub routes: Gauge,
    /// `felix_ipsets_calico`: our ipsets in the kernel.
    pub ipsets: Gauge,
    /// `felix_iptables_rules`: our iptables rules in the kernel.
    pub rules: Gauge,
    /// `felix_active_local_endpoints`: local workload endpoints.
    pub local_endpoints: Gauge,
    /// `felix_in_sync`: 1 once the datastore snapshot was seen.
    pub in_sync: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let apply_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 18));
        let calc_seconds = Histogram::new(exponential_buckets(0.000_01, 2.0, 18));
        let failures = Counter::default();
        let resyncs = Counter::default();
        let routes = Gauge::default();
        let ipsets = Gauge::default();
        let rules = Gauge::default();
        let local_endpoints = Gauge::default();
        let in_sync = Gauge::default();
        let mut r = Registry::default();
        r.register(
            "felix_int_dataplane_apply_time_seconds",
            "Time spent applying changes to the kernel",
            apply_seconds.clone(),
        );
        r.register(
            "felix_int_dataplane_failures",
            "Dataplane applies that failed and were retried",
            failures.clone(),
        );
        r.register(
            "felix_resyncs_started",
            "Kernel re-reads by the reconcilers (periodic refresh, after errors, at start)",
            resyncs.clone(),
        );
        r.register(
            "felix_calc_graph_update_time_seconds",
            "Time the calc graph spent on a batch of updates",
            calc_seconds.clone(),
        );
        r.register(
            "felix_routes",
            "Routes felix owns in the kernel",
            routes.clone(),
        );
        r.register(
            "felix_ipsets_calico",
            "ipsets felix owns in the kernel",
            ipsets.clone(),
        );
        r.register(
            "felix_iptables_rules",
            "iptables rules felix owns in the kernel",
            rules.clone(),
        );
        r.register(
            "felix_active_local_endpoints",
            "Workload endpoints on this node",
            local_endpoints.clone(),
        );
        r.register(
            "felix_in_sync",
            "1 when felix has the complete datastore snapshot",
            in_sync.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            apply_seconds,
            failures,
            resyncs,
            calc_seconds,
            routes,
            ipsets,
            rules,
            local_endpoints,
            in_sync,
        }
    }
}

impl Metrics {
    /// The metrics in the Prometheus/OpenMetrics text format.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// A gauge value from a count.
pub(crate) fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_with_its_calico_name() {
        let m = Metrics::default();
        m.failures.inc();
        m.routes.set(3);
        m.apply_seconds.observe(0.01);
        let text = m.encode();
        for name in [
            "felix_int_dataplane_apply_time_seconds_bucket",
            "felix_int_dataplane_failures_total 1",
            "felix_resyncs_started_total",
            "felix_calc_graph_update_time_seconds_count",
            "felix_routes 3",
            "felix_ipsets_calico",
            "felix_iptables_rules",
            "felix_active_local_endpoints",
            "felix_in_sync",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
