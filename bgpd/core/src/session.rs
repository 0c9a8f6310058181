//! The session FSM (RFC 4271 §8) per connection, and the peer-level life cycle around it:
//! connect and ConnectRetry, OPEN exchange and capability negotiation, collision detection
//! (§6.8), Hold and Keepalive timers, idle hold with exponential backoff.

use std::net::SocketAddr;
use std::time::Duration;

use bgp_wire::{
    Capability, GracefulRestart, Message, Notification, Open, PeerKind, SessionContext,
    iana::error_code,
};
use bytes::BytesMut;

use crate::driver::{Action, ConnId, DownReason, State};
use crate::family::{Family, FamilySet};
use crate::peer::{Conn, ConnState, Session};
use crate::speaker::Speaker;
use crate::time::Instant;
use crate::timers::TimerKey;

/// Hold time used in OpenSent before the peer's OPEN arrives (RFC 4271 §8.2.2: "a large
/// value", 4 minutes suggested).
const OPEN_SENT_HOLD: Duration = Duration::from_secs(240);

/// What happens to the peer after its last connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterLoss {
    /// Reconnect (after idle hold on errors, ConnectRetry otherwise).
    Reconnect,
    /// Stay down; the caller decides.
    Stay,
}

fn is_error(reason: &DownReason) -> bool {
    match reason {
        DownReason::NotificationSent {
            notification: n, ..
        }
        | DownReason::NotificationReceived(n) => {
            !(n.code == error_code::CEASE
                && n.subcode == error_code::cease::CONNECTION_COLLISION_RESOLUTION)
        }
        DownReason::ConnectionClosed | DownReason::Shutdown => false,
    }
}

fn fsm_error(subcode: u8) -> Notification {
    Notification::new(error_code::FSM, subcode, Vec::new())
}

fn collision() -> Notification {
    Notification::new(
        error_code::CEASE,
        error_code::cease::CONNECTION_COLLISION_RESOLUTION,
        Vec::new(),
    )
}

impl Speaker {
    /// Starts (or restarts) a peer: connect unless passive.
    pub(crate) fn start_peer(&mut self, now: Instant, slot: u16, out: &mut Vec<Action>) {
        self.timers.clear(TimerKey::IdleHold(slot));
        let shut_down = self.shut_down;
        let Some(p) = self.peer_mut(slot) else {
            return;
        };
        if p.admin_down || p.max_prefix_stopped || shut_down {
            p.idle = true;
        } else {
            p.idle = false;
            if !p.cfg.passive {
                self.initiate_connect(now, slot, out);
            }
        }
        self.refresh_state(now, slot, out);
    }

    fn initiate_connect(&mut self, now: Instant, slot: u16, out: &mut Vec<Action>) {
        let Some(p) = self.peer(slot) else {
            return;
        };
        let has_outbound = p
            .conns
            .iter()
            .any(|c| self.conns.get(c).is_some_and(|c| !c.inbound));
        if has_outbound || p.session.is_some() {
            return;
        }
        let remote = SocketAddr::new(p.cfg.address, p.cfg.port);
        let (peer, local) = (p.cfg.address, p.cfg.local_address);
        let conn = self.alloc_conn();
        self.conns.insert(
            conn,
            Conn {
                slot,
                inbound: false,
                state: ConnState::Connecting,
                local: None,
                remote,
                ctx: SessionContext::default(),
                sent_open: None,
                remote_open: None,
                hold: Duration::ZERO,
                keepalive: Duration::ZERO,
            },
        );
        if let Some(p) = self.peer_mut(slot) {
            p.conns.push(conn);
        }
        out.push(Action::Connect {
            conn,
            peer,
            remote,
            local,
        });
        self.timers
            .set(TimerKey::ConnectRetry(slot), now + self.cfg.connect_retry);
    }

    pub(crate) fn on_connected(
        &mut self,
        now: Instant,
        conn: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            out.push(Action::Close { conn });
            return;
        };
        if c.state != ConnState::Connecting {
            return;
        }
        c.local = Some(local);
        c.remote = remote;
        c.state = ConnState::OpenSent;
        let slot = c.slot;
        self.send_open(now, conn, out);
        self.refresh_state(now, slot, out);
    }

    /// Registers an accepted inbound connection and sends our OPEN.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open_connection(
        &mut self,
        now: Instant,
        slot: u16,
        conn: ConnId,
        inbound: bool,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        out: &mut Vec<Action>,
    ) {
        self.conns.insert(
            conn,
            Conn {
                slot,
                inbound,
                state: ConnState::OpenSent,
                local,
                remote,
                ctx: SessionContext::default(),
                sent_open: None,
                remote_open: None,
                hold: Duration::ZERO,
                keepalive: Duration::ZERO,
            },
        );
        if let Some(p) = self.peer_mut(slot) {
            p.conns.push(conn);
        }
        self.send_open(now, conn, out);
        self.refresh_state(now, slot, out);
    }

    /// Our OPEN for a peer.
    pub(crate) fn build_open(&self, slot: u16) -> Option<Open> {
        let p = self.peer(slot)?;
        let mut caps: Vec<Capability> = p
            .cfg
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(f.afi_safi()))
            .collect();
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::EnhancedRouteRefresh);
        if self.cfg.extended_message {
            caps.push(Capability::ExtendedMessage);
        }
        let gr = &self.cfg.graceful_restart;
        if gr.enabled && p.cfg.graceful_restart {
            caps.push(Capability::GracefulRestart(GracefulRestart {
                restart_state: self.restart_state,
                notification: false,
                restart_time: u16::try_from(gr.restart_time.as_secs()).unwrap_or(4095),
                families: p
                    .cfg
                    .families
                    .iter()
                    .map(|f| (f.afi_safi(), gr.forwarding_preserved))
                    .collect(),
            }));
        }
        let hold = p.cfg.hold_time.unwrap_or(self.cfg.hold_time).as_secs();
        Some(Open::new(
            p.local_as,
            u16::try_from(hold).unwrap_or(u16::MAX),
            self.cfg.router_id,
            caps,
        ))
    }

    fn send_open(&mut self, now: Instant, conn: ConnId, out: &mut Vec<Action>) {
        let Some(slot) = self.conns.get(&conn).map(|c| c.slot) else {
            return;
        };
        let Some(open) = self.build_open(slot) else {
            return;
        };
        self.send_message(
            conn,
            &SessionContext::default(),
            &Message::Open(open.clone()),
            out,
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.sent_open = Some(open);
        }
        self.timers.set(TimerKey::Hold(conn), now + OPEN_SENT_HOLD);
    }

    /// The driver reported a connect failure or a closed connection.
    pub(crate) fn on_transport_closed(
        &mut self,
        now: Instant,
        conn: ConnId,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.state == ConnState::Connecting {
            let slot = c.slot;
            self.remove_conn(conn);
            tracing::debug!(%conn, "connection attempt failed");
            self.refresh_state(now, slot, out);
            return;
        }
        self.drop_conn(now, conn, DownReason::ConnectionClosed, true, out);
    }

    fn remove_conn(&mut self, conn: ConnId) -> Option<Conn> {
        let c = self.conns.remove(&conn)?;
        self.timers.clear_conn(conn);
        if let Some(p) = self.peer_mut(c.slot) {
            p.conns.retain(|x| *x != conn);
        }
        Some(c)
    }

    /// Forgets a connection (the caller already queued `Close` if needed). If it carried the
    /// session, the session goes down; if it was the peer's last, the peer reconnects.
    pub(crate) fn drop_conn(
        &mut self,
        now: Instant,
        conn: ConnId,
        reason: DownReason,
        gr_eligible: bool,
        out: &mut Vec<Action>,
    ) {
        self.drop_conn_then(now, conn, reason, gr_eligible, AfterLoss::Reconnect, out);
    }

    pub(crate) fn drop_conn_then(
        &mut self,
        now: Instant,
        conn: ConnId,
        reason: DownReason,
        gr_eligible: bool,
        then: AfterLoss,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.remove_conn(conn) else {
            return;
        };
        let slot = c.slot;
        let carried = self
            .peer(slot)
            .and_then(|p| p.session.as_ref())
            .is_some_and(|s| s.conn == conn);
        if carried {
            self.session_down(now, slot, reason.clone(), gr_eligible, out);
        } else if is_error(&reason)
            && let Some(p) = self.peer_mut(slot)
        {
            tracing::info!(peer = %p.cfg.address, %reason, "connection failed");
            p.last_error = Some((now, reason.clone()));
        }
        let alone = self
            .peer(slot)
            .is_some_and(|p| p.conns.is_empty() && p.session.is_none());
        if alone && then == AfterLoss::Reconnect && !self.shut_down {
            if carried || is_error(&reason) {
                self.enter_idle_hold(now, slot);
            } else if let Some(p) = self.peer(slot)
                && !p.cfg.passive
                && !p.idle
                && self.timers.get(TimerKey::ConnectRetry(slot)).is_none()
            {
                self.timers
                    .set(TimerKey::ConnectRetry(slot), now + self.cfg.connect_retry);
            }
        }
        self.refresh_state(now, slot, out);
    }

    fn enter_idle_hold(&mut self, now: Instant, slot: u16) {
        let max = self.cfg.idle_hold_max;
        let Some(p) = self.peer_mut(slot) else {
            return;
        };
        if p.admin_down || p.max_prefix_stopped {
            return;
        }
        let hold = p.idle_hold;
        p.idle = true;
        p.idle_hold = (hold * 2).min(max);
        self.timers.clear(TimerKey::ConnectRetry(slot));
        self.timers.set(TimerKey::IdleHold(slot), now + hold);
    }

    /// The Established session of `slot` ended.
    fn session_down(
        &mut self,
        now: Instant,
        slot: u16,
        reason: DownReason,
        gr_eligible: bool,
        out: &mut Vec<Action>,
    ) {
        let reset_after = self.cfg.idle_hold_reset_after;
        let initial = self.cfg.idle_hold_initial;
        let Some(p) = self.peer_mut(slot) else {
            return;
        };
        let Some(session) = p.session.take() else {
            return;
        };
        tracing::info!(peer = %p.cfg.address, %reason, "session down");
        if now.saturating_since(session.since) >= reset_after {
            p.idle_hold = initial;
        }
        p.last_error = Some((now, reason.clone()));
        p.adj_out.clear();
        let addr = p.cfg.address;
        out.push(Action::SessionDown { peer: addr, reason });
        self.pending_sync.retain(|(s, _)| *s != slot);
        let graceful = gr_eligible && session.peer_gr.is_some();
        if graceful {
            self.gr_session_down(now, slot, &session);
        } else {
            self.gr_flush_stale(slot, None);
            self.flush_peer_routes(slot);
        }
    }

    /// Sends `n` on `conn`, closes it and drops it.
    pub(crate) fn protocol_error(
        &mut self,
        now: Instant,
        conn: ConnId,
        n: Notification,
        cause: String,
        out: &mut Vec<Action>,
    ) {
        let ctx = self.conns.get(&conn).map(|c| c.ctx).unwrap_or_default();
        if let Some(c) = self.conns.get(&conn)
            && let Some(p) = self.peer(c.slot)
        {
            tracing::warn!(peer = %p.cfg.address, %conn, notification = %n, %cause, "closing connection");
        }
        self.send_notification(conn, &ctx, &n, out);
        out.push(Action::Close { conn });
        let reason = DownReason::NotificationSent {
            notification: n,
            cause,
        };
        self.drop_conn(now, conn, reason, false, out);
    }

    /// Closes every connection of a peer, with `n` where a NOTIFICATION may be sent.
    pub(crate) fn stop_peer(
        &mut self,
        now: Instant,
        slot: u16,
        n: Option<Notification>,
        cause: &str,
        out: &mut Vec<Action>,
    ) {
        let conns = self.peer(slot).map(|p| p.conns.clone()).unwrap_or_default();
        for conn in conns {
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            let (state, ctx) = (c.state, c.ctx);
            let reason = match &n {
                Some(n) if state != ConnState::Connecting => {
                    self.send_notification(conn, &ctx, n, out);
                    DownReason::NotificationSent {
                        notification: n.clone(),
                        cause: cause.to_string(),
                    }
                }
                _ => DownReason::Shutdown,
            };
            out.push(Action::Close { conn });
            self.drop_conn_then(now, conn, reason, false, AfterLoss::Stay, out);
        }
        self.timers.clear(TimerKey::ConnectRetry(slot));
    }

    pub(crate) fn on_connect_retry(&mut self, now: Instant, slot: u16, out: &mut Vec<Action>) {
        let Some(p) = self.peer(slot) else {
            return;
        };
        if p.session.is_some() || p.idle || p.admin_down || p.cfg.passive || self.shut_down {
            return;
        }
        let outbound: Vec<(ConnId, ConnState)> = p
            .conns
            .iter()
            .filter_map(|id| {
                self.conns
                    .get(id)
                    .filter(|c| !c.inbound)
                    .map(|c| (*id, c.state))
            })
            .collect();
        if outbound.iter().any(|(_, s)| *s != ConnState::Connecting) {
            return;
        }
        for (conn, _) in outbound {
            out.push(Action::Close { conn });
            self.remove_conn(conn);
        }
        self.initiate_connect(now, slot, out);
        self.refresh_state(now, slot, out);
    }

    pub(crate) fn on_idle_hold_expired(&mut self, now: Instant, slot: u16, out: &mut Vec<Action>) {
        self.start_peer(now, slot, out);
    }

    pub(crate) fn on_hold_expired(&mut self, now: Instant, conn: ConnId, out: &mut Vec<Action>) {
        let n = Notification::new(error_code::HOLD_TIMER_EXPIRED, 0, Vec::new());
        self.protocol_error(
            now,
            conn,
            n,
            "hold timer expired (RFC 4271 §6.5)".into(),
            out,
        );
    }

    pub(crate) fn on_keepalive_due(&mut self, now: Instant, conn: ConnId, out: &mut Vec<Action>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if !matches!(c.state, ConnState::OpenConfirm | ConnState::Established)
            || c.keepalive.is_zero()
        {
            return;
        }
        let (ctx, ka) = (c.ctx, c.keepalive);
        self.send_message(conn, &ctx, &Message::Keepalive, out);
        self.timers.set(TimerKey::Keepalive(conn), now + ka);
    }

    fn restart_hold(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn)
            && !c.hold.is_zero()
        {
            self.timers.set(TimerKey::Hold(conn), now + c.hold);
        }
    }

    /// Restarts the KeepaliveTimer after an UPDATE was sent (RFC 4271 §4.4).
    pub(crate) fn restart_keepalive(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn)
            && !c.keepalive.is_zero()
        {
            self.timers
                .set(TimerKey::Keepalive(conn), now + c.keepalive);
        }
    }

    /// One whole message from the driver.
    pub(crate) fn on_frame(
        &mut self,
        now: Instant,
        conn: ConnId,
        frame: &[u8],
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (state, ctx) = (c.state, c.ctx);
        let msg = match Message::decode(frame, &ctx) {
            Ok(m) => m,
            Err(e) => {
                // AFI/SAFI disable is not implemented: it resets the session (RFC 7606 §2
                // allows this).
                let cause = e.reason.to_string();
                self.protocol_error(now, conn, e.to_notification(), cause, out);
                return;
            }
        };
        match (state, msg) {
            (_, Message::Notification(n)) => {
                tracing::info!(%conn, notification = %n, "NOTIFICATION received");
                out.push(Action::Close { conn });
                self.drop_conn(now, conn, DownReason::NotificationReceived(n), false, out);
            }
            (ConnState::OpenSent, Message::Open(open)) => self.on_open(now, conn, open, out),
            (ConnState::OpenSent, m) => {
                let cause = format!("message type {} in OpenSent (RFC 6608)", m.msg_type());
                self.protocol_error(now, conn, fsm_error(1), cause, out);
            }
            (ConnState::OpenConfirm, Message::Keepalive) => {
                self.restart_hold(now, conn);
                self.on_established(now, conn, out);
            }
            (ConnState::OpenConfirm, m) => {
                let cause = format!("message type {} in OpenConfirm (RFC 6608)", m.msg_type());
                self.protocol_error(now, conn, fsm_error(2), cause, out);
            }
            (ConnState::Established, Message::Keepalive) => self.restart_hold(now, conn),
            (ConnState::Established, Message::Update(u)) => {
                self.restart_hold(now, conn);
                self.process_update(now, conn, u, out);
            }
            (ConnState::Established, Message::RouteRefresh(r)) => {
                self.restart_hold(now, conn);
                self.on_route_refresh(now, conn, r, out);
            }
            (ConnState::Established, Message::Open(_)) => {
                let cause = "OPEN in Established (RFC 6608)".to_string();
                self.protocol_error(now, conn, fsm_error(3), cause, out);
            }
            (ConnState::Connecting, _) => {}
        }
    }

    fn on_open(&mut self, now: Instant, conn: ConnId, open: Open, out: &mut Vec<Action>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let slot = c.slot;
        let Some(p) = self.peer(slot) else {
            return;
        };
        if let Err(e) = open.check_peer_as(p.cfg.remote_as) {
            let cause = e.reason.to_string();
            self.protocol_error(now, conn, e.to_notification(), cause, out);
            return;
        }
        if !p.ebgp && open.bgp_identifier == self.cfg.router_id {
            let n = Notification::new(
                error_code::OPEN_MESSAGE,
                error_code::open::BAD_BGP_IDENTIFIER,
                open.bgp_identifier.octets().to_vec(),
            );
            let cause = "an iBGP peer's BGP identifier equals ours (RFC 6286 §2.2)".to_string();
            self.protocol_error(now, conn, n, cause, out);
            return;
        }
        let mut remote: FamilySet = open
            .multiprotocol()
            .filter_map(Family::from_afi_safi)
            .collect();
        if open.multiprotocol().next().is_none() {
            // No Multiprotocol capability: IPv4 unicast only (RFC 4760 §8).
            remote.insert(Family::Ipv4Unicast);
        }
        let negotiated = p.cfg.families.intersection(remote);
        let missing = p.cfg.families.iter().find(|f| !remote.contains(*f));
        if let Some(f) = missing
            && (negotiated.is_empty() || p.cfg.require_all_families)
        {
            let mut tlv = BytesMut::new();
            let _ = Capability::Multiprotocol(f.afi_safi()).encode(&mut tlv);
            let e = bgp_wire::DecodeError::unsupported_capability(
                bgp_wire::iana::capability::MULTIPROTOCOL,
                tlv.to_vec(),
            );
            let cause =
                format!("the peer does not support {f}, which this session requires (RFC 5492 §5)");
            self.protocol_error(now, conn, e.to_notification(), cause, out);
            return;
        }
        if !self.resolve_collision(now, conn, &open, out) {
            return;
        }
        let Some(p) = self.peer(slot) else {
            return;
        };
        let kind = if p.ebgp {
            PeerKind::External
        } else {
            PeerKind::Internal
        };
        let ours = p.cfg.hold_time.unwrap_or(self.cfg.hold_time).as_secs();
        let hold = Duration::from_secs(ours.min(u64::from(open.hold_time)));
        let keepalive = if hold.is_zero() {
            Duration::ZERO
        } else {
            let third = (hold / 3).max(Duration::from_secs(1));
            p.cfg
                .keepalive
                .or(self.cfg.keepalive)
                .map_or(third, |k| k.min(third))
                .max(Duration::from_millis(100))
        };
        let remote_id = open.bgp_identifier;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let sent = c.sent_open.clone().unwrap_or_else(|| open.clone());
        c.ctx = SessionContext::negotiate(&sent, &open, kind);
        c.remote_open = Some(open);
        c.hold = hold;
        c.keepalive = keepalive;
        c.state = ConnState::OpenConfirm;
        let ctx = c.ctx;
        if let Some(p) = self.peer_mut(slot) {
            p.remote_id = Some(remote_id);
        }
        if let Some(f) = self
            .facts
            .get_mut(usize::from(slot))
            .and_then(Option::as_mut)
        {
            f.remote_id = remote_id;
        }
        self.send_message(conn, &ctx, &Message::Keepalive, out);
        if hold.is_zero() {
            self.timers.clear(TimerKey::Hold(conn));
        } else {
            self.timers.set(TimerKey::Hold(conn), now + hold);
        }
        if !keepalive.is_zero() {
            self.timers.set(TimerKey::Keepalive(conn), now + keepalive);
        }
        self.timers.clear(TimerKey::ConnectRetry(slot));
        self.refresh_state(now, slot, out);
    }

    /// Connection collision detection (RFC 4271 §6.8) when `conn` received `open`. Returns
    /// false if `conn` itself was closed.
    fn resolve_collision(
        &mut self,
        now: Instant,
        conn: ConnId,
        open: &Open,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        let (slot, inbound) = (c.slot, c.inbound);
        let Some(p) = self.peer(slot) else {
            return false;
        };
        let others: Vec<(ConnId, bool, ConnState)> = p
            .conns
            .iter()
            .filter(|o| **o != conn)
            .filter_map(|o| self.conns.get(o).map(|oc| (*o, oc.inbound, oc.state)))
            .collect();
        let local_id = self.cfg.router_id;
        let (local_as, remote_as) = (p.local_as, p.cfg.remote_as);
        let peer_gr = p.session.as_ref().is_some_and(|s| s.peer_gr.is_some());
        let restarting = open
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::GracefulRestart(_)));
        for (other, other_inbound, state) in others {
            match state {
                ConnState::Connecting => {}
                ConnState::Established => {
                    if peer_gr && restarting {
                        // RFC 4724 §4.2: the peer restarted; the old session is gone.
                        tracing::info!(%conn, "peer restarted with graceful restart; replacing the session");
                        out.push(Action::Close { conn: other });
                        self.drop_conn_then(
                            now,
                            other,
                            DownReason::ConnectionClosed,
                            true,
                            AfterLoss::Stay,
                            out,
                        );
                    } else {
                        let cause = "collision with an Established session (RFC 4271 §6.8)";
                        self.protocol_error(now, conn, collision(), cause.into(), out);
                        return false;
                    }
                }
                ConnState::OpenSent | ConnState::OpenConfirm => {
                    // Keep the connection initiated by the speaker with the higher identifier
                    // (equal identifiers between ASes: the higher AS, RFC 6286 §2.3).
                    let keep_inbound = match local_id.cmp(&open.bgp_identifier) {
                        std::cmp::Ordering::Less => true,
                        std::cmp::Ordering::Greater => false,
                        std::cmp::Ordering::Equal => local_as < remote_as,
                    };
                    let loser = if inbound == other_inbound || inbound == keep_inbound {
                        other
                    } else {
                        conn
                    };
                    let cause = "connection collision resolution (RFC 4271 §6.8)".to_string();
                    self.protocol_error(now, loser, collision(), cause, out);
                    if loser == conn {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn on_established(&mut self, now: Instant, conn: ConnId, out: &mut Vec<Action>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.state = ConnState::Established;
        let slot = c.slot;
        let Some(open) = c.remote_open.clone() else {
            return;
        };
        let (ctx, hold, keepalive, remote) = (c.ctx, c.hold, c.keepalive, c.remote);
        let local = c
            .local
            .unwrap_or(SocketAddr::new(std::net::IpAddr::V4(self.cfg.router_id), 0));
        let others: Vec<ConnId> = self
            .peer(slot)
            .map(|p| p.conns.iter().copied().filter(|o| *o != conn).collect())
            .unwrap_or_default();
        for other in others {
            let connecting = self
                .conns
                .get(&other)
                .is_some_and(|o| o.state == ConnState::Connecting);
            if connecting {
                out.push(Action::Close { conn: other });
                self.drop_conn_then(
                    now,
                    other,
                    DownReason::Shutdown,
                    false,
                    AfterLoss::Stay,
                    out,
                );
            } else {
                let cause = "another connection reached Established (RFC 4271 §6.8)".to_string();
                self.protocol_error(now, other, collision(), cause, out);
            }
        }
        let gr_enabled = self.cfg.graceful_restart.enabled;
        let Some(p) = self.peer_mut(slot) else {
            return;
        };
        let mut remote_fams: FamilySet = open
            .multiprotocol()
            .filter_map(Family::from_afi_safi)
            .collect();
        if open.multiprotocol().next().is_none() {
            remote_fams.insert(Family::Ipv4Unicast);
        }
        let families = p.cfg.families.intersection(remote_fams);
        let peer_gr = open.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(g) if gr_enabled && p.cfg.graceful_restart => {
                Some(g.clone())
            }
            _ => None,
        });
        let route_refresh = open.has_capability(bgp_wire::iana::capability::ROUTE_REFRESH)
            || ctx.enhanced_route_refresh;
        p.session = Some(Session {
            conn,
            ctx,
            families,
            hold,
            keepalive,
            local,
            remote,
            since: now,
            remote_open: open,
            route_refresh,
            enhanced_route_refresh: ctx.enhanced_route_refresh,
            peer_gr,
            eor_received: FamilySet::EMPTY,
            eor_sent: FamilySet::EMPTY,
            synced: false,
        });
        p.established_transitions += 1;
        p.idle = false;
        let addr = p.cfg.address;
        tracing::info!(peer = %addr, %families, "session established");
        out.push(Action::SessionEstablished {
            peer: addr,
            conn,
            max_message_len: ctx.max_message_len(),
            families,
        });
        self.gr_session_up(now, slot);
        if !self.deferring {
            self.pending_sync.push((slot, true));
        }
        self.set_state(now, slot, State::Established, out);
    }
}
