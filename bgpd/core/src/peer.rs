//! Per-peer and per-connection state held by the speaker.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp_wire::{GracefulRestart, Open, SessionContext};

use crate::config::PeerConfig;
use crate::driver::{ConnId, DownReason, State};
use crate::family::{Family, FamilySet};
use crate::rib::AdjRibOut;
use crate::time::Instant;

/// Where one transport connection is in the RFC 4271 FSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ConnState {
    /// Outbound, TCP not up yet (Connect state).
    Connecting,
    OpenSent,
    OpenConfirm,
    Established,
}

impl ConnState {
    pub(crate) fn reported(self) -> State {
        match self {
            ConnState::Connecting => State::Connect,
            ConnState::OpenSent => State::OpenSent,
            ConnState::OpenConfirm => State::OpenConfirm,
            ConnState::Established => State::Established,
        }
    }
}

/// One transport connection to a peer.
#[derive(Debug)]
pub(crate) struct Conn {
    pub slot: u16,
    pub inbound: bool,
    pub state: ConnState,
    pub local: Option<SocketAddr>,
    pub remote: SocketAddr,
    pub ctx: SessionContext,
    pub sent_open: Option<Open>,
    pub remote_open: Option<Open>,
    /// Negotiated hold time (0 = none).
    pub hold: Duration,
    /// Keepalive interval (zero = none).
    pub keepalive: Duration,
}

/// The Established session of a peer.
#[derive(Debug)]
pub(crate) struct Session {
    pub conn: ConnId,
    pub ctx: SessionContext,
    pub families: FamilySet,
    pub hold: Duration,
    pub keepalive: Duration,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub since: Instant,
    pub remote_open: Open,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// The peer's GR capability, if both sides advertised GR.
    pub peer_gr: Option<GracefulRestart>,
    pub eor_received: FamilySet,
    pub eor_sent: FamilySet,
    /// The initial advertisement has been sent.
    pub synced: bool,
}

/// GR helper state for a peer whose session went down gracefully.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GrHelper {
    /// Families whose routes are kept stale.
    pub families: FamilySet,
    /// The peer is back and we wait for its End-of-RIB.
    pub awaiting_eor: bool,
}

/// Per-family counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub received: [u32; 2],
    pub accepted: [u32; 2],
}

/// A configured peer.
#[derive(Debug)]
pub(crate) struct Peer {
    pub cfg: PeerConfig,
    pub local_as: u32,
    pub ebgp: bool,
    pub state: State,
    pub since: Instant,
    pub admin_down: bool,
    /// Stopped by max-prefix without automatic restart.
    pub max_prefix_stopped: bool,
    /// Our own connection attempts wait for the IdleHold timer.
    pub idle: bool,
    pub conns: Vec<ConnId>,
    pub session: Option<Session>,
    pub remote_id: Option<Ipv4Addr>,
    /// The idle hold the next error will use.
    pub idle_hold: Duration,
    pub last_error: Option<(Instant, DownReason)>,
    pub adj_out: AdjRibOut,
    pub counters: Counters,
    pub gr: Option<GrHelper>,
    pub established_transitions: u32,
}

impl Peer {
    pub(crate) fn received(&self, f: Family) -> u32 {
        self.counters.received[f.index()]
    }
}
