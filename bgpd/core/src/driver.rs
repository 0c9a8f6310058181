//! The driver contract: what the driver feeds the speaker ([`Input`]) and what it must do for
//! each [`Action`]. See the crate docs for the whole picture.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bgp_wire::{AfiSafi, Community, LargeCommunity, NextHop, Notification, Prefix};
use bytes::Bytes;

use crate::attrs::RouteAttrs;
use crate::config::PeerConfig;
use crate::family::FamilySet;

/// A transport connection. Every id is allocated by the speaker: outbound ones in
/// [`Action::Connect`], inbound ones by [`crate::Speaker::accept`]. Ids are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Session state (RFC 4271 §8.2.2) as reported for a peer: the most advanced of its
/// connections, or Idle/Connect/Active when it has none past connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Not trying: administratively down, idle hold after an error, or removed.
    Idle,
    /// An outbound connection attempt is in progress.
    Connect,
    /// Waiting for the ConnectRetry timer or for the peer to connect.
    Active,
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for KEEPALIVE.
    OpenConfirm,
    /// Exchanging routes.
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Reachability and cost of a next hop for the decision process (RFC 4271 §9.1.2.2 e). Next
/// hops never set are reachable at cost 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHopCost {
    /// Reachable at this IGP cost.
    Reachable(u32),
    /// Unreachable: routes through it are ineligible.
    Unreachable,
}

/// Attributes of a locally originated route (Calico: an IPAM block, a borrowed /32, a
/// service range). ORIGIN is IGP and the AS path empty (our AS is prepended on eBGP export).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OriginAttributes {
    /// Standard communities.
    pub communities: Vec<Community>,
    /// Large communities.
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF (default 100).
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// Next hop to advertise instead of the session's own address.
    pub next_hop: Option<IpAddr>,
}

/// Everything the driver tells the speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Configure a new peer (starts connecting unless passive).
    AddPeer(PeerConfig),
    /// Change a peer. Identity, capability, timer or route-reflection changes reset the
    /// session (Cease/6); policy and next-hop changes apply as a soft reset.
    UpdatePeer(PeerConfig),
    /// Remove a peer (Cease/3 Peer De-configured) and its routes.
    RemovePeer(IpAddr),
    /// An outbound connection from [`Action::Connect`] is up.
    Connected {
        /// The id from the Connect action.
        conn: ConnId,
        /// Our end.
        local: SocketAddr,
        /// The peer's end.
        remote: SocketAddr,
    },
    /// An outbound connection attempt failed (refused, unreachable, timed out).
    ConnectFailed {
        /// The id from the Connect action.
        conn: ConnId,
    },
    /// The connection was closed or reset by the other side (or a write failed).
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// One whole BGP message, header included, as framed with the session's maximum length.
    Received {
        /// The connection it arrived on.
        conn: ConnId,
        /// The message.
        frame: Bytes,
    },
    /// Originate (or replace) a local route.
    Originate {
        /// The prefix (host bits clear).
        prefix: Prefix,
        /// Its attributes.
        attrs: OriginAttributes,
    },
    /// Withdraw a local route.
    WithdrawOrigin {
        /// The prefix.
        prefix: Prefix,
    },
    /// Ask the peer to re-send its routes of a family (soft inbound reset, RFC 2918).
    RouteRefresh {
        /// The peer.
        peer: IpAddr,
        /// The family.
        family: AfiSafi,
    },
    /// Set how a next hop is reached (the IGP-cost hook of the decision process).
    NextHopCost {
        /// The next hop.
        next_hop: IpAddr,
        /// Its cost, or unreachable; `None` forgets it (reachable at cost 0).
        cost: Option<NextHopCost>,
    },
    /// Take a peer down with Cease/2 Administrative Shutdown carrying `message` (RFC 8203)
    /// and keep it down.
    AdminDown {
        /// The peer.
        peer: IpAddr,
        /// Shutdown communication (at most 255 octets of UTF-8; longer is cut at a character
        /// boundary).
        message: String,
    },
    /// Bring an administratively down (or max-prefix stopped) peer back.
    AdminUp {
        /// The peer.
        peer: IpAddr,
    },
    /// Stop the speaker. `restart: true` closes every connection without NOTIFICATION and
    /// without withdrawing routes from the driver (a graceful restart: peers keep our routes
    /// stale, felix keeps the kernel routes); `false` sends Cease/2 and withdraws everything.
    Shutdown {
        /// A graceful restart follows.
        restart: bool,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION; `cause` says why in words.
    NotificationSent {
        /// The NOTIFICATION.
        notification: Notification,
        /// The rule or event behind it.
        cause: String,
    },
    /// The peer sent this NOTIFICATION.
    NotificationReceived(Notification),
    /// The transport closed without a NOTIFICATION.
    ConnectionClosed,
    /// The speaker shut down for a graceful restart (no NOTIFICATION).
    Shutdown,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::NotificationSent {
                notification,
                cause,
            } => write!(f, "sent {notification}: {cause}"),
            DownReason::NotificationReceived(n) => write!(f, "received {n}"),
            DownReason::ConnectionClosed => f.write_str("connection closed"),
            DownReason::Shutdown => f.write_str("speaker shut down for restart"),
        }
    }
}

/// One path of a best-path result: where it came from and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePath {
    /// The peer it was learned from; `None` for our own originations.
    pub peer: Option<IpAddr>,
    /// Its attributes (interned: shared by every route with the same set).
    pub attrs: Arc<RouteAttrs>,
}

impl RoutePath {
    /// The next hop (for our own originations: the override or the unspecified address).
    pub fn next_hop(&self) -> &NextHop {
        &self.attrs.next_hop
    }

    /// The next hop as one address.
    pub fn next_hop_addr(&self) -> IpAddr {
        self.attrs.next_hop_addr()
    }
}

/// Everything the speaker asks of the driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to `remote` (from `local` if given) and report `Connected` or
    /// `ConnectFailed` with `conn`.
    Connect {
        /// Id for the connection.
        conn: ConnId,
        /// The peer.
        peer: IpAddr,
        /// Where to connect.
        remote: SocketAddr,
        /// Source address to bind.
        local: Option<IpAddr>,
    },
    /// Write these whole messages, in order, after anything queued before.
    Send {
        /// The connection.
        conn: ConnId,
        /// Messages, header included.
        frames: Vec<Bytes>,
    },
    /// Close the connection after the queued messages are written; report nothing back.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// A session reached Established. Frame incoming messages with `max_message_len` from now.
    SessionEstablished {
        /// The peer.
        peer: IpAddr,
        /// The connection that carries the session.
        conn: ConnId,
        /// Largest message either side may send (4096, or 65535 with RFC 8654).
        max_message_len: usize,
        /// Families negotiated.
        families: FamilySet,
    },
    /// The Established session with `peer` ended.
    SessionDown {
        /// The peer.
        peer: IpAddr,
        /// Why.
        reason: DownReason,
    },
    /// The Loc-RIB selection for a prefix changed: best first, then the rest of the ECMP set.
    /// Empty: the prefix is unreachable (withdrawn).
    BestPathChanged {
        /// The prefix.
        prefix: Prefix,
        /// Selected paths.
        paths: Vec<RoutePath>,
    },
    /// A peer's reported state changed.
    PeerStateChanged {
        /// The peer.
        peer: IpAddr,
        /// Old state.
        from: State,
        /// New state.
        to: State,
    },
}
