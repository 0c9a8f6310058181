//! The timer queue: every running timer once, ordered by deadline then key, so expiry order is
//! deterministic.

use std::collections::{BTreeMap, BTreeSet};

use crate::driver::ConnId;
use crate::time::Instant;

/// A timer. Peer timers are keyed by peer slot, session timers by connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKey {
    /// RFC 4271 ConnectRetryTimer.
    ConnectRetry(u16),
    /// Idle hold (backoff after an error; delay before the first connect; max-prefix restart).
    IdleHold(u16),
    /// GR helper: the peer's restart time (RFC 4724 §4.2).
    GrRestart(u16),
    /// GR helper: waiting for End-of-RIB after the peer is back.
    GrStale(u16),
    /// RFC 4271 HoldTimer of a connection.
    Hold(ConnId),
    /// RFC 4271 KeepaliveTimer of a connection.
    Keepalive(ConnId),
    /// Restarting speaker: selection deferral (RFC 4724 §4.1).
    Deferral,
}

/// Running timers.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_key: BTreeMap<TimerKey, Instant>,
    queue: BTreeSet<(Instant, TimerKey)>,
}

impl Timers {
    /// Starts (or restarts) `key` to fire at `at`.
    pub(crate) fn set(&mut self, key: TimerKey, at: Instant) {
        if let Some(old) = self.by_key.insert(key, at) {
            self.queue.remove(&(old, key));
        }
        self.queue.insert((at, key));
    }

    /// Stops `key`.
    pub(crate) fn clear(&mut self, key: TimerKey) {
        if let Some(old) = self.by_key.remove(&key) {
            self.queue.remove(&(old, key));
        }
    }

    /// When `key` fires, if running.
    pub(crate) fn get(&self, key: TimerKey) -> Option<Instant> {
        self.by_key.get(&key).copied()
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        let &(at, key) = self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.remove(&(at, key));
        self.by_key.remove(&key);
        Some(key)
    }

    /// Stops every timer of a peer slot.
    pub(crate) fn clear_slot(&mut self, slot: u16) {
        for key in [
            TimerKey::ConnectRetry(slot),
            TimerKey::IdleHold(slot),
            TimerKey::GrRestart(slot),
            TimerKey::GrStale(slot),
        ] {
            self.clear(key);
        }
    }

    /// Stops every timer of a connection.
    pub(crate) fn clear_conn(&mut self, conn: ConnId) {
        self.clear(TimerKey::Hold(conn));
        self.clear(TimerKey::Keepalive(conn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_deadline_order_and_restarts_replace() {
        let mut t = Timers::default();
        t.set(TimerKey::Deferral, Instant(30));
        t.set(TimerKey::ConnectRetry(1), Instant(10));
        t.set(TimerKey::ConnectRetry(1), Instant(20));
        t.set(TimerKey::IdleHold(2), Instant(5));
        t.clear(TimerKey::IdleHold(2));
        assert_eq!(t.next(), Some(Instant(20)));
        assert_eq!(t.pop_due(Instant(19)), None);
        assert_eq!(t.pop_due(Instant(40)), Some(TimerKey::ConnectRetry(1)));
        assert_eq!(t.pop_due(Instant(40)), Some(TimerKey::Deferral));
        assert_eq!(t.next(), None);
    }
}
