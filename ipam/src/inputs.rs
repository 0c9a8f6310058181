//! The IPAM inputs of a request (pools, reservations, configuration): read from the datastore
//! for every request by default (the CNI plugin's case: one process per request), or kept in
//! memory by a watch for long-lived allocators, which saves that read on every allocation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fabric_datastore::syncer::{self, SyncEvent};
use fabric_datastore::{BackendError, KeyValue};
use tokio::sync::watch;

use crate::Ipam;
use crate::error::IpamError;
use crate::pools::{self, Env};
use crate::store;

/// How long [`Ipam::watch_inputs`] waits for the first snapshot.
const IN_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// The receiving end of a running inputs watch: `None` until the first snapshot is in.
pub(crate) type InputsWatch = watch::Receiver<Option<Arc<Env>>>;

/// The inputs read last, with the keys and revisions they were decoded from.
pub(crate) type LastInputs = Option<(Vec<(String, i64)>, Arc<Env>)>;

fn unavailable(ipam: &Ipam, why: &str) -> IpamError {
    IpamError::Backend(BackendError::Unavailable {
        datastore: format!("{:?}", ipam.backend),
        source: why.to_string().into(),
    })
}

impl Ipam {
    /// Keeps pools, reservations and the IPAM configuration in memory from now on, fed by a
    /// watch (the datastore syncer), instead of reading them for every request; returns once
    /// the first snapshot is in (or fails after 30 s). For long-lived allocators (calico-node,
    /// a CNI daemon, benchmarks). A change reaches later requests as soon as the watch
    /// delivers it (milliseconds); a request already running uses what it read. The watch
    /// stops when the last clone of this `Ipam` is dropped. Calling it again does nothing.
    pub async fn watch_inputs(&self) -> Result<(), IpamError> {
        let mut rx = {
            let mut slot = self
                .inputs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match slot.as_ref() {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    let prefix = pools::ipam_resources_prefix();
                    let events = syncer::start(self.backend.clone(), vec![prefix]);
                    tokio::spawn(follow(events, tx));
                    *slot = Some(rx.clone());
                    rx
                }
            }
        };
        let ready = tokio::time::timeout(IN_SYNC_TIMEOUT, rx.wait_for(Option::is_some)).await;
        match ready {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(unavailable(self, "the IPAM inputs watch stopped")),
            Err(_) => Err(unavailable(
                self,
                "the IPAM inputs watch did not get its first snapshot within 30 s",
            )),
        }
    }

    /// The inputs of one request: the watched ones when [`Ipam::watch_inputs`] is running and
    /// in sync, else read now (decoded again only when a key or revision changed).
    pub(crate) async fn env(&self) -> Result<Arc<Env>, IpamError> {
        let watched = self
            .inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .and_then(|rx| rx.borrow().clone());
        if let Some(env) = watched {
            return Ok(env);
        }
        let items = store::list(self.backend.as_ref(), &pools::ipam_resources_prefix()).await?;
        let revisions: Vec<(String, i64)> = items
            .iter()
            .map(|kv| (kv.key.clone(), kv.mod_revision))
            .collect();
        let mut last = self
            .last_inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, env)) = last.as_ref()
            && *seen == revisions
        {
            // Nothing changed since the last request: skip decoding.
            return Ok(env.clone());
        }
        let env = Arc::new(pools::env_from(items.iter())?);
        *last = Some((revisions, env.clone()));
        Ok(env)
    }
}

/// Applies the syncer's events and publishes a new snapshot after the first `InSync` and after
/// every change; stops when every receiver is gone or the syncer ends.
async fn follow(
    mut events: tokio::sync::mpsc::Receiver<SyncEvent>,
    tx: watch::Sender<Option<Arc<Env>>>,
) {
    let mut items: BTreeMap<String, KeyValue> = BTreeMap::new();
    let mut in_sync = false;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = tx.closed() => return,
        };
        let Some(event) = event else {
            tracing::warn!("the IPAM inputs watch ended; requests read their inputs again");
            tx.send_replace(None);
            return;
        };
        match event {
            SyncEvent::Update(kv) => {
                items.insert(kv.key.clone(), kv);
            }
            SyncEvent::Delete { key } => {
                items.remove(&key);
            }
            SyncEvent::InSync => in_sync = true,
        }
        if !in_sync {
            continue;
        }
        match pools::env_from(items.values()) {
            Ok(env) => {
                tx.send_replace(Some(Arc::new(env)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "IPAM inputs do not decode; requests read them again");
                tx.send_replace(None);
            }
        }
    }
}
