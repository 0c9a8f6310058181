//! The [`Speaker`]: one BGP instance. Inputs and timers in, actions out; this module holds the
//! state and the dispatch, the FSM lives in `session`, UPDATE handling in `import`, selection and
//! advertisement in `export`, graceful restart in `gr`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bgp_wire::{Message, Notification, SessionContext, iana::error_code};
use bytes::Bytes;

use crate::attrs::{Interner, RouteAttrs};
use crate::config::{PeerConfig, SpeakerConfig};
use crate::decision::PeerFacts;
use crate::driver::{Action, ConnId, DownReason, Input, NextHopCost, State};
use crate::error::{ConfigError, InputError};
use crate::peer::{Conn, Counters, Peer};
use crate::policy::{PeerType, peer_type};
use crate::rib::{AdjRibOut, DestId, Table};
use crate::time::Instant;
use crate::timers::{TimerKey, Timers};

/// A selection snapshot taken when a destination is first queued: (peer slot, attributes) of
/// the selected paths, to detect changes.
pub(crate) type Snapshot = Vec<(u16, Arc<RouteAttrs>)>;

/// One BGP instance (router id, local AS) with its peers and RIBs. See the crate docs for the
/// driver contract.
#[derive(Debug)]
pub struct Speaker {
    pub(crate) cfg: SpeakerConfig,
    /// OPENs carry the R bit (until the deferral ends).
    pub(crate) restart_state: bool,
    /// Route selection is deferred (restarting speaker).
    pub(crate) deferring: bool,
    pub(crate) deferral_armed: bool,
    pub(crate) shut_down: bool,
    pub(crate) by_addr: BTreeMap<IpAddr, u16>,
    /// Peers by slot; slot 0 is our own originations.
    pub(crate) peers: Vec<Option<Peer>>,
    pub(crate) facts: Vec<Option<PeerFacts>>,
    pub(crate) conns: BTreeMap<ConnId, Conn>,
    pub(crate) next_conn: u64,
    pub(crate) timers: Timers,
    pub(crate) table: Table,
    pub(crate) interner: Interner,
    pub(crate) nh_costs: BTreeMap<IpAddr, NextHopCost>,
    pub(crate) dirty: Vec<(DestId, Snapshot)>,
    /// Peers waiting for a full export at the next flush, and whether End-of-RIB follows.
    pub(crate) pending_sync: Vec<(u16, bool)>,
}

impl Speaker {
    /// A speaker with no peers. Fails if the configuration breaks a rule.
    pub fn new(config: SpeakerConfig) -> Result<Speaker, ConfigError> {
        config.validate()?;
        let restarting = config.graceful_restart.enabled && config.graceful_restart.restarting;
        Ok(Speaker {
            restart_state: restarting,
            deferring: restarting,
            deferral_armed: false,
            shut_down: false,
            by_addr: BTreeMap::new(),
            peers: vec![None],
            facts: vec![None],
            conns: BTreeMap::new(),
            next_conn: 1,
            timers: Timers::default(),
            table: Table::default(),
            interner: Interner::default(),
            nh_costs: BTreeMap::new(),
            dirty: Vec::new(),
            pending_sync: Vec::new(),
            cfg: config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SpeakerConfig {
        &self.cfg
    }

    /// Applies one input and appends the resulting actions to `out`. An `Err` means the input
    /// was refused and nothing changed.
    pub fn handle(
        &mut self,
        now: Instant,
        input: Input,
        out: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        self.arm_deferral(now);
        let result = self.dispatch(now, input, out);
        self.after_event(now, out);
        result
    }

    fn dispatch(
        &mut self,
        now: Instant,
        input: Input,
        out: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        if self.shut_down && !matches!(input, Input::Closed { .. } | Input::ConnectFailed { .. }) {
            return Err(InputError::ShutDown);
        }
        match input {
            Input::AddPeer(cfg) => self.add_peer(now, cfg, out),
            Input::UpdatePeer(cfg) => self.update_peer(now, cfg, out),
            Input::RemovePeer(addr) => self.remove_peer(now, addr, out),
            Input::Connected {
                conn,
                local,
                remote,
            } => {
                self.on_connected(now, conn, local, remote, out);
                Ok(())
            }
            Input::ConnectFailed { conn } | Input::Closed { conn } => {
                self.on_transport_closed(now, conn, out);
                Ok(())
            }
            Input::Received { conn, frame } => {
                self.on_frame(now, conn, &frame, out);
                Ok(())
            }
            Input::Originate { prefix, attrs } => self.originate(prefix, attrs),
            Input::WithdrawOrigin { prefix } => {
                self.withdraw_origin(prefix);
                Ok(())
            }
            Input::RouteRefresh { peer, family } => self.request_refresh(peer, family, out),
            Input::NextHopCost { next_hop, cost } => {
                self.set_next_hop_cost(next_hop, cost);
                Ok(())
            }
            Input::AdminDown { peer, message } => self.admin_down(now, peer, &message, out),
            Input::AdminUp { peer } => self.admin_up(now, peer, out),
            Input::Shutdown { restart } => {
                self.shutdown(now, restart, out);
                Ok(())
            }
        }
    }

    /// Fires every timer due at `now` and appends the resulting actions.
    pub fn poll_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.arm_deferral(now);
        while let Some(key) = self.timers.pop_due(now) {
            self.on_timer(now, key, out);
        }
        self.after_event(now, out);
    }

    /// The earliest time [`Speaker::poll_timers`] has work, if any timer runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// An inbound connection was accepted by the driver from `remote` to our `local` address.
    /// Returns the id for it. Connections from unknown peers are refused: the returned
    /// actions contain only `Close` for the id. Administratively down peers get Cease/5
    /// (Connection Rejected) before the close.
    pub fn accept(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        out: &mut Vec<Action>,
    ) -> ConnId {
        self.arm_deferral(now);
        let conn = self.alloc_conn();
        let slot = self.by_addr.get(&remote.ip()).copied();
        match slot.and_then(|s| self.peer(s).map(|p| (s, p))) {
            None => {
                tracing::info!(remote = %remote, "refusing connection from an unknown peer");
                out.push(Action::Close { conn });
            }
            Some((slot, p)) if p.admin_down || p.max_prefix_stopped || self.shut_down => {
                tracing::info!(peer = %p.cfg.address, "refusing connection: peer is down");
                let _ = slot;
                let n = Notification::new(
                    error_code::CEASE,
                    error_code::cease::CONNECTION_REJECTED,
                    Vec::new(),
                );
                self.send_notification(conn, &SessionContext::default(), &n, out);
                out.push(Action::Close { conn });
            }
            Some((slot, _)) => {
                self.open_connection(now, slot, conn, true, Some(local), remote, out);
            }
        }
        self.after_event(now, out);
        conn
    }

    fn on_timer(&mut self, now: Instant, key: TimerKey, out: &mut Vec<Action>) {
        match key {
            TimerKey::ConnectRetry(slot) => self.on_connect_retry(now, slot, out),
            TimerKey::IdleHold(slot) => self.on_idle_hold_expired(now, slot, out),
            TimerKey::Hold(conn) => self.on_hold_expired(now, conn, out),
            TimerKey::Keepalive(conn) => self.on_keepalive_due(now, conn, out),
            TimerKey::GrRestart(slot) | TimerKey::GrStale(slot) => {
                self.gr_flush_stale(slot, None);
                if let Some(p) = self.peer_mut(slot) {
                    p.gr = None;
                }
                self.timers.clear(TimerKey::GrRestart(slot));
                self.timers.clear(TimerKey::GrStale(slot));
            }
            TimerKey::Deferral => {
                tracing::info!("selection deferral timer expired; selecting routes");
                self.end_deferral(now);
            }
        }
    }

    /// Work done after every input or timer batch: the deferral check, then selection and
    /// advertisement of everything that changed.
    fn after_event(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.check_deferral(now);
        self.flush(now, out);
    }

    // ----- peers -----

    pub(crate) fn peer(&self, slot: u16) -> Option<&Peer> {
        self.peers.get(usize::from(slot))?.as_ref()
    }

    pub(crate) fn peer_mut(&mut self, slot: u16) -> Option<&mut Peer> {
        self.peers.get_mut(usize::from(slot))?.as_mut()
    }

    fn slot_of(&self, addr: IpAddr) -> Result<u16, InputError> {
        self.by_addr
            .get(&addr)
            .copied()
            .ok_or(InputError::UnknownPeer(addr))
    }

    /// Slots of configured peers, ascending.
    pub(crate) fn slots(&self) -> Vec<u16> {
        (0..self.peers.len())
            .filter(|&i| self.peers[i].is_some())
            .filter_map(|i| u16::try_from(i).ok())
            .collect()
    }

    fn new_peer(&self, cfg: PeerConfig, now: Instant) -> Peer {
        let local_as = cfg.local_as.unwrap_or(self.cfg.local_as);
        Peer {
            ebgp: peer_type(local_as, cfg.remote_as) == PeerType::External,
            local_as,
            state: State::Idle,
            since: now,
            admin_down: false,
            max_prefix_stopped: false,
            idle: true,
            conns: Vec::new(),
            session: None,
            remote_id: None,
            idle_hold: self.cfg.idle_hold_initial,
            last_error: None,
            adj_out: AdjRibOut::default(),
            counters: Counters::default(),
            gr: None,
            established_transitions: 0,
            cfg,
        }
    }

    fn add_peer(
        &mut self,
        now: Instant,
        cfg: PeerConfig,
        out: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        cfg.validate(&self.cfg)?;
        if self.by_addr.contains_key(&cfg.address) {
            return Err(InputError::DuplicatePeer(cfg.address));
        }
        let slot = match self.peers.iter().skip(1).position(Option::is_none) {
            Some(i) => i + 1,
            None => {
                self.peers.push(None);
                self.facts.push(None);
                self.peers.len() - 1
            }
        };
        let slot = u16::try_from(slot).map_err(|_| {
            ConfigError::invalid(
                "peers",
                cfg.address.to_string(),
                "at most 65535 peers can be configured",
            )
        })?;
        let addr = cfg.address;
        let peer = self.new_peer(cfg, now);
        self.facts[usize::from(slot)] = Some(PeerFacts {
            address: addr,
            ebgp: peer.ebgp,
            remote_id: std::net::Ipv4Addr::UNSPECIFIED,
        });
        self.peers[usize::from(slot)] = Some(peer);
        self.by_addr.insert(addr, slot);
        tracing::info!(peer = %addr, "peer added");
        let delay = self.cfg.connect_delay;
        if delay.is_zero() {
            self.start_peer(now, slot, out);
        } else {
            self.timers.set(TimerKey::IdleHold(slot), now + delay);
        }
        Ok(())
    }

    fn update_peer(
        &mut self,
        now: Instant,
        cfg: PeerConfig,
        out: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        cfg.validate(&self.cfg)?;
        let slot = self.slot_of(cfg.address)?;
        let Some(p) = self.peer(slot) else {
            return Err(InputError::UnknownPeer(cfg.address));
        };
        if p.cfg == cfg {
            return Ok(());
        }
        if p.cfg.session_relevant_change(&cfg) {
            tracing::info!(peer = %cfg.address, "session-relevant configuration change; resetting");
            let n = Notification::new(
                error_code::CEASE,
                error_code::cease::OTHER_CONFIGURATION_CHANGE,
                Vec::new(),
            );
            self.stop_peer(now, slot, Some(n), "configuration changed", out);
            self.gr_flush_stale(slot, None);
            self.flush_peer_routes(slot);
            let addr = cfg.address;
            let mut fresh = self.new_peer(cfg, now);
            if let Some(old) = self.peer(slot) {
                fresh.admin_down = old.admin_down;
                fresh.state = old.state;
                fresh.since = old.since;
            }
            if let Some(f) = self
                .facts
                .get_mut(usize::from(slot))
                .and_then(Option::as_mut)
            {
                f.ebgp = fresh.ebgp;
                f.address = addr;
            }
            self.peers[usize::from(slot)] = Some(fresh);
            self.start_peer(now, slot, out);
            return Ok(());
        }
        let import_changed = p.cfg.import_policy != cfg.import_policy
            || p.cfg.allow_local_as != cfg.allow_local_as
            || p.cfg.enforce_first_as != cfg.enforce_first_as;
        let export_changed = p.cfg.export_policy != cfg.export_policy
            || p.cfg.next_hop_mode != cfg.next_hop_mode
            || p.cfg.next_hop_v4 != cfg.next_hop_v4
            || p.cfg.next_hop_v6 != cfg.next_hop_v6
            || p.cfg.link_local_next_hop != cfg.link_local_next_hop;
        if let Some(p) = self.peer_mut(slot) {
            p.cfg = cfg;
        }
        if import_changed {
            self.reimport(slot);
        }
        if export_changed
            && self
                .peer(slot)
                .and_then(|p| p.session.as_ref())
                .is_some_and(|s| s.synced)
        {
            self.pending_sync.push((slot, false));
        }
        self.check_max_prefix(now, slot, out);
        Ok(())
    }

    fn remove_peer(
        &mut self,
        now: Instant,
        addr: IpAddr,
        out: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let slot = self.slot_of(addr)?;
        let n = Notification::new(
            error_code::CEASE,
            error_code::cease::PEER_DECONFIGURED,
            Vec::new(),
        );
        self.stop_peer(now, slot, Some(n), "peer removed", out);
        self.gr_flush_stale(slot, None);
        self.flush_peer_routes(slot);
        self.timers.clear_slot(slot);
        self.set_state(now, slot, State::Idle, out);
        self.by_addr.remove(&addr);
        self.peers[usize::from(slot)] = None;
        self.pending_sync.retain(|(s, _)| *s != slot);
        // The slot's facts stay until the flush has withdrawn its paths; a later AddPeer
        // overwrites them.
        tracing::info!(peer = %addr, "peer removed");
        Ok(())
    }

    fn admin_down(
        &mut self,
        now: Instant,
        addr: IpAddr,
        message: &str,
        out: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let slot = self.slot_of(addr)?;
        let mut msg = message;
        while msg.len() > bgp_wire::notification::MAX_SHUTDOWN_COMMUNICATION {
            let mut cut = bgp_wire::notification::MAX_SHUTDOWN_COMMUNICATION;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg = &msg[..cut];
        }
        let n = Notification::with_shutdown_communication(
            error_code::cease::ADMINISTRATIVE_SHUTDOWN,
            msg,
        )
        .unwrap_or_else(|_| {
            Notification::new(
                error_code::CEASE,
                error_code::cease::ADMINISTRATIVE_SHUTDOWN,
                vec![0],
            )
        });
        self.stop_peer(now, slot, Some(n), "administratively shut down", out);
        self.gr_flush_stale(slot, None);
        self.flush_peer_routes(slot);
        if let Some(p) = self.peer_mut(slot) {
            p.admin_down = true;
            p.idle = true;
        }
        self.timers.clear_slot(slot);
        self.set_state(now, slot, State::Idle, out);
        Ok(())
    }

    fn admin_up(
        &mut self,
        now: Instant,
        addr: IpAddr,
        out: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let slot = self.slot_of(addr)?;
        let initial = self.cfg.idle_hold_initial;
        let Some(p) = self.peer_mut(slot) else {
            return Ok(());
        };
        if !p.admin_down && !p.max_prefix_stopped {
            return Ok(());
        }
        p.admin_down = false;
        p.max_prefix_stopped = false;
        p.idle_hold = initial;
        self.start_peer(now, slot, out);
        Ok(())
    }

    fn shutdown(&mut self, now: Instant, restart: bool, out: &mut Vec<Action>) {
        for slot in self.slots() {
            if restart {
                let conns = self.peer(slot).map(|p| p.conns.clone()).unwrap_or_default();
                for conn in conns {
                    out.push(Action::Close { conn });
                    self.drop_conn(now, conn, DownReason::Shutdown, false, out);
                }
            } else {
                let n = Notification::with_shutdown_communication(
                    error_code::cease::ADMINISTRATIVE_SHUTDOWN,
                    "speaker shutting down",
                )
                .unwrap_or_else(|_| {
                    Notification::new(
                        error_code::CEASE,
                        error_code::cease::ADMINISTRATIVE_SHUTDOWN,
                        vec![],
                    )
                });
                self.stop_peer(now, slot, Some(n), "speaker shutting down", out);
                self.gr_flush_stale(slot, None);
                self.flush_peer_routes(slot);
            }
            if let Some(p) = self.peer_mut(slot) {
                p.admin_down = true;
                p.idle = true;
            }
            self.timers.clear_slot(slot);
            self.set_state(now, slot, State::Idle, out);
        }
        self.timers.clear(TimerKey::Deferral);
        if restart {
            // Nothing is withdrawn towards the driver: felix keeps its routes.
            self.dirty.clear();
        } else {
            for id in self.table.ids().collect::<Vec<_>>() {
                self.remove_path(id, crate::rib::LOCAL);
            }
            self.deferring = false;
        }
        self.shut_down = true;
    }

    // ----- connections and messages -----

    pub(crate) fn alloc_conn(&mut self) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        id
    }

    /// Encodes and queues one message; encoding failures are logged (they mean a bug).
    pub(crate) fn encode(msg: &Message, ctx: &SessionContext) -> Option<Bytes> {
        match msg.encode(ctx) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode message");
                None
            }
        }
    }

    pub(crate) fn send_message(
        &mut self,
        conn: ConnId,
        ctx: &SessionContext,
        msg: &Message,
        out: &mut Vec<Action>,
    ) {
        if let Some(frame) = Self::encode(msg, ctx) {
            push_frames(out, conn, vec![frame]);
        }
    }

    pub(crate) fn send_notification(
        &mut self,
        conn: ConnId,
        ctx: &SessionContext,
        n: &Notification,
        out: &mut Vec<Action>,
    ) {
        let mut n = n.clone();
        // Data that would not fit is cut (RFC 4271 leaves the data length to the message).
        n.data.truncate(ctx.max_message_len().saturating_sub(21));
        self.send_message(conn, ctx, &Message::Notification(n), out);
    }

    /// Sets the reported state of a peer, emitting `PeerStateChanged`.
    pub(crate) fn set_state(&mut self, now: Instant, slot: u16, to: State, out: &mut Vec<Action>) {
        let Some(p) = self.peer_mut(slot) else {
            return;
        };
        if p.state == to {
            return;
        }
        let from = p.state;
        p.state = to;
        p.since = now;
        tracing::debug!(peer = %p.cfg.address, %from, %to, "peer state changed");
        out.push(Action::PeerStateChanged {
            peer: p.cfg.address,
            from,
            to,
        });
    }

    /// Recomputes the reported state from the connections.
    pub(crate) fn refresh_state(&mut self, now: Instant, slot: u16, out: &mut Vec<Action>) {
        let Some(p) = self.peer(slot) else {
            return;
        };
        let best = p
            .conns
            .iter()
            .filter_map(|c| self.conns.get(c))
            .map(|c| c.state)
            .max();
        let to = match best {
            Some(s) => s.reported(),
            None if p.idle || p.admin_down || p.max_prefix_stopped => State::Idle,
            None => State::Active,
        };
        self.set_state(now, slot, to, out);
    }

    fn set_next_hop_cost(&mut self, next_hop: IpAddr, cost: Option<NextHopCost>) {
        let old = match cost {
            Some(c) => self.nh_costs.insert(next_hop, c),
            None => self.nh_costs.remove(&next_hop),
        };
        if old == cost {
            return;
        }
        for id in self.table.ids().collect::<Vec<_>>() {
            let uses = self.table.get(id).is_some_and(|d| {
                d.paths.as_slice().iter().any(|p| {
                    p.attrs
                        .as_ref()
                        .is_some_and(|a| a.next_hop_addr() == next_hop)
                })
            });
            if uses {
                self.mark_dirty(id);
            }
        }
    }
}

/// Appends frames to the last action if it is a Send on the same connection, else a new Send.
pub(crate) fn push_frames(out: &mut Vec<Action>, conn: ConnId, frames: Vec<Bytes>) {
    if frames.is_empty() {
        return;
    }
    if let Some(Action::Send { conn: c, frames: f }) = out.last_mut()
        && *c == conn
    {
        f.extend(frames);
        return;
    }
    out.push(Action::Send { conn, frames });
}
