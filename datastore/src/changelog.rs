//! The watch loop shared by the backends that keep their own change log (mem and sqlite).
//!
//! A store with a change log answers one question, "what changed under this prefix after
//! revision N", and ticks a `tokio::sync::watch` channel whenever it may have changed. The
//! loop here turns that into a [`WatchStream`]: replay, then follow, with `Resync` when the
//! log no longer reaches back far enough.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::backend::{BackendError, Listing, Revision, WatchEvent, WatchStream};

/// How many watch items may wait in a channel before the watch task waits for the consumer.
pub(crate) const WATCH_BUFFER: usize = 1024;

/// How many revisions one read of the log may cover.
pub(crate) const LOG_PAGE: i64 = 1000;

/// The answer of a change log to "what changed after revision N".
#[derive(Debug)]
pub(crate) enum LogRead {
    /// The changes under the prefix with revisions in `(after, scanned_to]`, in order.
    Changes {
        events: Vec<WatchEvent>,
        scanned_to: Revision,
        /// True when `scanned_to` is the store's current revision.
        caught_up: bool,
    },
    /// The log was compacted past `after`: here is the current state under the prefix.
    Compacted(Listing),
}

/// A store that keeps a change log a watch can read.
#[async_trait::async_trait]
pub(crate) trait ChangeLog: Send + Sync + 'static {
    /// Changes under `prefix` after `after`, covering at most [`LOG_PAGE`] revisions.
    async fn read_after(&self, prefix: &str, after: Revision) -> Result<LogRead, BackendError>;

    /// A channel that ticks whenever the store may have changed.
    fn subscribe(&self) -> watch::Receiver<u64>;

    /// The datastore's name for logs.
    fn name(&self) -> String;
}

/// Starts a task that follows `log` under `prefix` from `from` and returns its stream.
pub(crate) fn spawn_watch(log: Arc<dyn ChangeLog>, prefix: String, from: Revision) -> WatchStream {
    let (tx, rx) = mpsc::channel(WATCH_BUFFER);
    tokio::spawn(async move {
        let mut ticks = log.subscribe();
        let mut last = from;
        let mut backoff = Backoff::new();
        loop {
            ticks.borrow_and_update();
            // Drain everything up to the current revision.
            loop {
                match log.read_after(&prefix, last).await {
                    Ok(LogRead::Changes {
                        events,
                        scanned_to,
                        caught_up,
                    }) => {
                        backoff.reset();
                        for event in events {
                            if tx.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                        last = last.max(scanned_to);
                        if caught_up {
                            break;
                        }
                    }
                    Ok(LogRead::Compacted(listing)) => {
                        backoff.reset();
                        tracing::info!(prefix = %prefix, from = last, to = listing.revision,
                            "watch history compacted, resyncing");
                        last = listing.revision;
                        if tx.send(Ok(WatchEvent::Resync(listing))).await.is_err() {
                            return;
                        }
                    }
                    Err(err) if err.is_unavailable() => {
                        let delay = backoff.next_delay();
                        tracing::warn!(datastore = %log.name(), prefix = %prefix, error = %err,
                            retry_in_ms = delay.as_millis() as u64, "watch read failed, retrying");
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            () = tx.closed() => return,
                        }
                    }
                    Err(err) => {
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                }
            }
            tokio::select! {
                changed = ticks.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
        }
    });
    rx
}

/// Exponential backoff from 50 ms to 5 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The delay before the next attempt; doubles each call up to the maximum.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }

    /// Back to the first delay after a success.
    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum_and_resets() {
        let mut b = Backoff::new();
        assert_eq!(b.next_delay(), Duration::from_millis(50));
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        for _ in 0..10 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::from_secs(5));
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(50));
    }
}
