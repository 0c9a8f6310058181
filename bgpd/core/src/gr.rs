//! Graceful restart (RFC 4724): the helper side (stale routes kept across a peer's restart,
//! flushed on End-of-RIB, on the restart time or on the stale timer) and the restarting side
//! (route selection deferred until End-of-RIB from every GR peer or the deferral timer).
//!
//! RFC 8538 (GR for NOTIFICATION, Hard Reset) is not implemented: the N bit is never
//! advertised, so any NOTIFICATION, sent or received, ends the session without GR and its
//! routes are withdrawn at once. Only a transport loss keeps them.

use crate::family::{Family, FamilySet};
use crate::peer::{GrHelper, Session};
use crate::rib::{DestId, STALE};
use crate::speaker::Speaker;
use crate::time::Instant;
use crate::timers::TimerKey;

impl Speaker {
    /// Helper: the session of a GR-capable peer was lost without NOTIFICATION.
    pub(crate) fn gr_session_down(&mut self, now: Instant, slot: u16, session: &Session) {
        let Some(cap) = session.peer_gr.as_ref() else {
            return;
        };
        let listed: FamilySet = cap
            .families
            .iter()
            .filter_map(|(af, _)| Family::from_afi_safi(*af))
            .collect();
        let retained = session.families.intersection(listed);
        for f in session.families.iter().filter(|f| !retained.contains(*f)) {
            self.flush_family(slot, f);
        }
        let restart = std::time::Duration::from_secs(u64::from(cap.restart_time));
        if retained.is_empty() || restart.is_zero() {
            self.gr_flush_stale(slot, None);
            self.flush_peer_routes(slot);
            if let Some(p) = self.peer_mut(slot) {
                p.gr = None;
            }
            return;
        }
        for id in self.table.ids().collect::<Vec<DestId>>() {
            if let Some(d) = self.table.get_mut(id)
                && retained.contains(d.family())
            {
                for p in d.paths.as_mut_slice().iter_mut().filter(|p| p.peer == slot) {
                    p.flags |= STALE;
                }
            }
        }
        if let Some(p) = self.peer_mut(slot) {
            tracing::info!(peer = %p.cfg.address, families = %retained, ?restart, "graceful restart: keeping routes stale");
            let previous = p.gr.map_or(FamilySet::EMPTY, |g| g.families);
            p.gr = Some(GrHelper {
                families: FamilySet::BOTH.intersection(retained).union_with(previous),
                awaiting_eor: false,
            });
        }
        self.timers.clear(TimerKey::GrStale(slot));
        self.timers.set(TimerKey::GrRestart(slot), now + restart);
    }

    /// Helper: the peer is back. Families it no longer preserves (no GR capability, F bit
    /// clear, not negotiated) are flushed; the rest wait for End-of-RIB or the stale timer.
    pub(crate) fn gr_session_up(&mut self, now: Instant, slot: u16) {
        let Some(p) = self.peer(slot) else {
            return;
        };
        let (Some(g), Some(s)) = (p.gr, p.session.as_ref()) else {
            return;
        };
        let keep: FamilySet = g
            .families
            .iter()
            .filter(|f| {
                s.families.contains(*f)
                    && s.peer_gr.as_ref().is_some_and(|cap| {
                        cap.families
                            .iter()
                            .any(|(af, forwarding)| *af == f.afi_safi() && *forwarding)
                    })
            })
            .collect();
        for f in g.families.iter().filter(|f| !keep.contains(*f)) {
            self.gr_flush_stale(slot, Some(f));
        }
        self.timers.clear(TimerKey::GrRestart(slot));
        if keep.is_empty() {
            if let Some(p) = self.peer_mut(slot) {
                p.gr = None;
            }
            self.timers.clear(TimerKey::GrStale(slot));
        } else {
            if let Some(p) = self.peer_mut(slot) {
                p.gr = Some(GrHelper {
                    families: keep,
                    awaiting_eor: true,
                });
            }
            let stale = self.cfg.graceful_restart.stale_routes_time;
            self.timers.set(TimerKey::GrStale(slot), now + stale);
        }
    }

    /// Removes the stale paths of a peer (of one family, or all).
    pub(crate) fn gr_flush_stale(&mut self, slot: u16, family: Option<Family>) {
        for id in self.table.ids().collect::<Vec<DestId>>() {
            let stale = self.table.get(id).is_some_and(|d| {
                family.is_none_or(|f| d.family() == f)
                    && d.paths
                        .as_slice()
                        .iter()
                        .any(|p| p.peer == slot && p.flags & STALE != 0)
            });
            if stale {
                self.remove_path(id, slot);
            }
        }
    }

    fn flush_family(&mut self, slot: u16, f: Family) {
        for id in self.table.ids().collect::<Vec<DestId>>() {
            if self.table.get(id).is_some_and(|d| d.family() == f) {
                self.remove_path(id, slot);
            }
        }
    }

    /// Restarting speaker: starts the selection deferral timer at the first event.
    pub(crate) fn arm_deferral(&mut self, now: Instant) {
        if self.deferring && !self.deferral_armed {
            self.deferral_armed = true;
            let d = self.cfg.graceful_restart.selection_deferral;
            self.timers.set(TimerKey::Deferral, now + d);
        }
    }

    /// Restarting speaker: ends the deferral once every enabled peer is Established and has
    /// sent End-of-RIB for every family (peers without GR do not count), or at the deferral
    /// timer. A peer that is down keeps the speaker waiting until the timer (RFC 4724 §4.1).
    pub(crate) fn check_deferral(&mut self, now: Instant) {
        if !self.deferring {
            return;
        }
        let mut peers = self.peers.iter().flatten().peekable();
        // With no peer configured yet there is nobody to wait for but also nobody to
        // learn from: wait for peers (or the timer).
        let done = peers.peek().is_some()
            && peers.all(|p| {
                !p.cfg.graceful_restart
                    || p.admin_down
                    || p.max_prefix_stopped
                    || p.session.as_ref().is_some_and(|s| {
                        s.peer_gr.is_none() || s.eor_received.is_superset(s.families)
                    })
            });
        if done {
            tracing::info!("End-of-RIB received from every peer; selecting routes");
            self.end_deferral(now);
        }
    }

    /// Restarting speaker: runs selection and sends every peer its routes and End-of-RIB.
    pub(crate) fn end_deferral(&mut self, _now: Instant) {
        if !self.deferring {
            return;
        }
        self.deferring = false;
        self.restart_state = false;
        self.timers.clear(TimerKey::Deferral);
        for slot in self.slots() {
            if self.peer(slot).is_some_and(|p| p.session.is_some()) {
                self.pending_sync.push((slot, true));
            }
        }
    }
}

impl FamilySet {
    /// Families in either set.
    pub(crate) fn union_with(self, other: FamilySet) -> FamilySet {
        let mut s = self;
        for f in other.iter() {
            s.insert(f);
        }
        s
    }
}
