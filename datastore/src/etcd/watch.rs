//! The etcd watch with reconnect: resumes from the last delivered revision + 1 after a broken
//! stream or an etcd restart, and turns "that revision was compacted" into a `Resync`.

use etcd_client::{EventType, WatchOptions, WatchResponse};
use tokio::sync::mpsc;

use super::{EtcdBackend, header_revision, prefix_end};
use crate::backend::{BackendError, Revision, WatchEvent, WatchStream};
use crate::changelog::{Backoff, WATCH_BUFFER};

type Sender = mpsc::Sender<Result<WatchEvent, BackendError>>;

/// Starts the watch task.
pub(super) fn spawn(backend: EtcdBackend, prefix: String, from: Revision) -> WatchStream {
    let (tx, rx) = mpsc::channel(WATCH_BUFFER);
    tokio::spawn(async move {
        let mut watch = Watch {
            backend,
            prefix,
            last: from,
            tx,
            backoff: Backoff::new(),
        };
        watch.run().await;
    });
    rx
}

/// Why one etcd watch stream ended.
enum StreamEnd {
    /// The consumer dropped its receiver, or a fatal error was delivered.
    Stop,
    /// The history after `last` is gone; a resync is needed.
    Compacted(Revision),
    /// The stream broke; reconnect after a backoff.
    Broken(String),
}

struct Watch {
    backend: EtcdBackend,
    prefix: String,
    /// The revision of the last event delivered (or of the last resync).
    last: Revision,
    tx: Sender,
    backoff: Backoff,
}

impl Watch {
    async fn run(&mut self) {
        loop {
            match self.stream_once().await {
                StreamEnd::Stop => return,
                StreamEnd::Compacted(compacted) => {
                    tracing::info!(prefix = %self.prefix, from = self.last, compacted,
                        "etcd watch history compacted, resyncing");
                    if !self.resync().await {
                        return;
                    }
                }
                StreamEnd::Broken(reason) => {
                    let delay = self.backoff.next_delay();
                    tracing::warn!(endpoints = %self.backend.endpoints, prefix = %self.prefix,
                        resume_after = self.last, reason = %reason,
                        retry_in_ms = delay.as_millis() as u64, "etcd watch broken, reconnecting");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.tx.closed() => return,
                    }
                }
            }
        }
    }

    /// Opens one watch stream from `last + 1` and forwards its events until it ends.
    async fn stream_once(&mut self) -> StreamEnd {
        let full = self.backend.full(&self.prefix);
        let options = WatchOptions::new()
            .with_range(prefix_end(full.as_bytes()))
            .with_start_revision(self.last + 1)
            .with_progress_notify();
        let mut client = self.backend.watch_client();
        let opened = tokio::select! {
            opened = client.watch(full, Some(options)) => opened,
            () = self.tx.closed() => return StreamEnd::Stop,
        };
        // The stream must stay alive while we read: dropping it cancels the watch.
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(e) => return StreamEnd::Broken(e.to_string()),
        };
        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                () = self.tx.closed() => return StreamEnd::Stop,
            };
            let response = match message {
                Ok(Some(response)) => response,
                Ok(None) => return StreamEnd::Broken("the server closed the watch stream".into()),
                Err(e) => return StreamEnd::Broken(e.to_string()),
            };
            if let Some(end) = self.handle(response).await {
                return end;
            }
        }
    }

    /// Forwards one response; `Some` when the stream is done.
    async fn handle(&mut self, response: WatchResponse) -> Option<StreamEnd> {
        if response.compact_revision() > 0 {
            return Some(StreamEnd::Compacted(response.compact_revision()));
        }
        if response.canceled() {
            return Some(StreamEnd::Broken(format!(
                "etcd canceled the watch: {}",
                response.cancel_reason()
            )));
        }
        if response.created() {
            self.backoff.reset();
            return None;
        }
        if response.events().is_empty() {
            // A progress notification: every event up to the header revision was sent.
            self.last = self.last.max(header_revision(response.header()));
            return None;
        }
        // The events of one revision (a transaction) all come in one response, so anything at
        // or below what was delivered before this response is a repeat; events of this
        // response share revisions and are all new.
        let delivered = self.last;
        for event in response.events() {
            let item = match self.convert(event, delivered) {
                Ok(Some(item)) => Ok(item),
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            let fatal = item.is_err();
            if self.tx.send(item).await.is_err() || fatal {
                return Some(StreamEnd::Stop);
            }
        }
        None
    }

    /// Our event for an etcd event; `None` for one at or below `delivered` (already sent).
    fn convert(
        &mut self,
        event: &etcd_client::Event,
        delivered: Revision,
    ) -> Result<Option<WatchEvent>, BackendError> {
        let Some(kv) = event.kv() else {
            return Ok(None);
        };
        let revision = kv.mod_revision();
        if revision <= delivered {
            return Ok(None);
        }
        self.last = self.last.max(revision);
        Ok(Some(match event.event_type() {
            EventType::Put => WatchEvent::Put(self.backend.kv_of(kv)?),
            EventType::Delete => WatchEvent::Delete {
                key: self.backend.key_of(kv.key())?,
                mod_revision: revision,
            },
        }))
    }

    /// Lists the prefix (retrying while etcd is unavailable) and sends it as a `Resync`.
    /// False when the consumer is gone or a fatal error was delivered.
    async fn resync(&mut self) -> bool {
        use crate::backend::Backend;
        loop {
            match self.backend.list(&self.prefix).await {
                Ok(listing) => {
                    self.last = listing.revision;
                    return self.tx.send(Ok(WatchEvent::Resync(listing))).await.is_ok();
                }
                Err(e) if e.is_unavailable() => {
                    let delay = self.backoff.next_delay();
                    tracing::warn!(prefix = %self.prefix, error = %e,
                        retry_in_ms = delay.as_millis() as u64, "etcd resync list failed, retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.tx.closed() => return false,
                    }
                }
                Err(e) => {
                    let _ = self.tx.send(Err(e)).await;
                    return false;
                }
            }
        }
    }
}
