//! The best-path stream for the dataplane (felix): changes are coalesced per prefix in a map the
//! speaker task fills without ever waiting, and the consumer takes the whole map at once. A slow
//! consumer therefore costs at most one entry per prefix, and sees only the latest selection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bgpd_core::RoutePath;
use ipnet::IpNet;
use tokio::sync::Notify;

/// A change of the Loc-RIB selection for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteUpdate {
    /// The prefix.
    pub prefix: IpNet,
    /// The selected paths, best first then the rest of the ECMP set; empty = withdrawn.
    /// `peer: None` marks our own originations.
    pub paths: Vec<RoutePath>,
}

#[derive(Debug, Default)]
struct Pending {
    changes: HashMap<IpNet, Vec<RoutePath>>,
    closed: bool,
}

/// The shared state of one subscription.
#[derive(Debug, Default)]
pub(crate) struct RouteSink {
    pending: Mutex<Pending>,
    notify: Notify,
}

fn lock(m: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RouteSink {
    /// Records changes (later ones replace earlier ones for the same prefix) and wakes the
    /// consumer.
    pub(crate) fn push(&self, changes: &[(IpNet, Vec<RoutePath>)]) {
        if changes.is_empty() {
            return;
        }
        {
            let mut p = lock(&self.pending);
            for (prefix, paths) in changes {
                p.changes.insert(*prefix, paths.clone());
            }
        }
        self.notify.notify_one();
    }

    /// Ends the stream after the pending changes.
    pub(crate) fn close(&self) {
        lock(&self.pending).closed = true;
        self.notify.notify_one();
    }
}

/// Receives best-path changes. The first batch is the whole Loc-RIB at subscription time; after
/// that each batch holds every prefix whose selection changed since the previous batch, with
/// its latest selection. Dropping the receiver ends the subscription.
#[derive(Debug)]
pub struct RouteReceiver {
    pub(crate) sink: Arc<RouteSink>,
}

impl RouteReceiver {
    /// Waits for the next batch; `None` once the daemon has shut down and everything was taken.
    pub async fn recv(&mut self) -> Option<Vec<RouteUpdate>> {
        loop {
            {
                let mut p = lock(&self.sink.pending);
                if !p.changes.is_empty() {
                    let mut batch: Vec<RouteUpdate> = p
                        .changes
                        .drain()
                        .map(|(prefix, paths)| RouteUpdate { prefix, paths })
                        .collect();
                    batch.sort_by_key(|u| u.prefix);
                    return Some(batch);
                }
                if p.closed {
                    return None;
                }
            }
            self.sink.notify.notified().await;
        }
    }

    /// The next batch if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<Vec<RouteUpdate>> {
        let mut p = lock(&self.sink.pending);
        if p.changes.is_empty() {
            return None;
        }
        let mut batch: Vec<RouteUpdate> = p
            .changes
            .drain()
            .map(|(prefix, paths)| RouteUpdate { prefix, paths })
            .collect();
        batch.sort_by_key(|u| u.prefix);
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn changes_to_one_prefix_are_coalesced_to_the_latest() {
        let sink = Arc::new(RouteSink::default());
        let mut rx = RouteReceiver { sink: sink.clone() };
        let p: IpNet = "10.0.0.0/24".parse().unwrap();
        let path = RoutePath {
            peer: None,
            attrs: Arc::new(bgpd_core::RouteAttrs {
                path: bgp_wire::PathAttributes::default(),
                next_hop: bgp_wire::NextHop::V4(std::net::Ipv4Addr::UNSPECIFIED),
            }),
        };
        sink.push(&[(p, vec![path])]);
        sink.push(&[(p, vec![])]);
        let batch = rx.recv().await.unwrap();
        assert_eq!(
            batch,
            vec![RouteUpdate {
                prefix: p,
                paths: vec![]
            }]
        );
        sink.close();
        assert!(rx.recv().await.is_none());
    }
}
