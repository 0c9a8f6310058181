//! Prometheus metrics: a snapshot taken by the speaker task at scrape time is rendered into a
//! fresh registry (gauges and counters per neighbour, RIB sizes), plus the UPDATE processing
//! time histogram the speaker task keeps up to date.

use std::net::IpAddr;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::status::NeighborStatus;

type Labels = Vec<(String, String)>;

/// Metrics kept live by the speaker task.
#[derive(Debug, Clone)]
pub(crate) struct LiveMetrics {
    /// Seconds the speaker spent on each received UPDATE (decode, RIBs, decision, export).
    pub update_seconds: Histogram,
    /// Best-path changes reported.
    pub best_path_changes: Counter,
}

impl Default for LiveMetrics {
    fn default() -> Self {
        LiveMetrics {
            update_seconds: Histogram::new(exponential_buckets(0.000_01, 4.0, 10)),
            best_path_changes: Counter::default(),
        }
    }
}

/// What a scrape shows.
#[derive(Debug, Clone)]
pub(crate) struct MetricsSnapshot {
    pub neighbors: Vec<NeighborStatus>,
    pub output_queue: Vec<(IpAddr, usize)>,
    pub table_prefixes: usize,
    pub live: LiveMetrics,
}

/// The numeric value of a state name (Idle 1 ... Established 6; 0 unknown).
fn state_number(state: &str) -> i64 {
    match state {
        "Idle" => 1,
        "Connect" => 2,
        "Active" => 3,
        "OpenSent" => 4,
        "OpenConfirm" => 5,
        "Established" => 6,
        _ => 0,
    }
}

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn to_i64(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

/// Renders the snapshot in the Prometheus text format.
pub(crate) fn render(s: &MetricsSnapshot) -> String {
    let mut reg = Registry::with_prefix("bgpd");
    let state = Family::<Labels, Gauge>::default();
    let up = Family::<Labels, Gauge>::default();
    let prefixes = Family::<Labels, Gauge>::default();
    let msgs_in = Family::<Labels, Counter>::default();
    let msgs_out = Family::<Labels, Counter>::default();
    let flaps = Family::<Labels, Counter>::default();
    let established = Family::<Labels, Counter>::default();
    let queue = Family::<Labels, Gauge>::default();
    for n in &s.neighbors {
        let peer = n.address.to_string();
        let base = labels(&[("peer", peer.clone())]);
        state.get_or_create(&base).set(state_number(&n.state));
        up.get_or_create(&base)
            .set(i64::from(n.state == "Established"));
        for f in &n.prefixes {
            for (kind, v) in [
                ("received", f.received),
                ("accepted", f.accepted),
                ("advertised", f.advertised),
            ] {
                prefixes
                    .get_or_create(&labels(&[
                        ("peer", peer.clone()),
                        ("family", f.family.clone()),
                        ("kind", kind.to_string()),
                    ]))
                    .set(i64::from(v));
            }
        }
        for (counts, family) in [
            (&n.messages_received, &msgs_in),
            (&n.messages_sent, &msgs_out),
        ] {
            for (t, v) in counts.by_type() {
                family
                    .get_or_create(&labels(&[("peer", peer.clone()), ("type", t.to_string())]))
                    .inc_by(v);
            }
        }
        flaps.get_or_create(&base).inc_by(n.flaps);
        established
            .get_or_create(&base)
            .inc_by(u64::from(n.established_transitions));
    }
    for (peer, bytes) in &s.output_queue {
        queue
            .get_or_create(&labels(&[("peer", peer.to_string())]))
            .set(to_i64(*bytes));
    }
    reg.register(
        "peer_state",
        "Session state: 1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established",
        state,
    );
    reg.register("peer_up", "1 when the session is Established", up);
    reg.register(
        "peer_prefixes",
        "Prefixes per neighbour and family: received (Adj-RIB-In), accepted, advertised",
        prefixes,
    );
    reg.register("messages_received", "BGP messages received", msgs_in);
    reg.register("messages_sent", "BGP messages sent", msgs_out);
    reg.register(
        "session_flaps",
        "Established sessions that went down",
        flaps,
    );
    reg.register(
        "session_established",
        "Times a session reached Established",
        established,
    );
    reg.register(
        "output_queue_bytes",
        "Bytes waiting to be written to the neighbour",
        queue,
    );
    let table = Gauge::<i64>::default();
    table.set(to_i64(s.table_prefixes));
    reg.register(
        "table_prefixes",
        "Prefixes known with any path (filtered ones included)",
        table,
    );
    reg.register(
        "update_processing_seconds",
        "Time the speaker spent on one received UPDATE",
        s.live.update_seconds.clone(),
    );
    reg.register(
        "best_path_changes",
        "Loc-RIB selection changes",
        s.live.best_path_changes.clone(),
    );
    let mut text = String::new();
    // Encoding into a String cannot fail.
    let _ = encode(&mut text, &reg);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_snapshot_renders_the_rib_gauges() {
        let s = MetricsSnapshot {
            neighbors: vec![],
            output_queue: vec![],
            table_prefixes: 4,
            live: LiveMetrics::default(),
        };
        let text = render(&s);
        assert!(text.contains("bgpd_table_prefixes 4"), "{text}");
        assert!(
            text.contains("bgpd_update_processing_seconds_bucket"),
            "{text}"
        );
    }
}
