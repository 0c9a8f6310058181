//! The status model shared by the library API ([`crate::DaemonHandle::status`]), the Unix status
//! socket and `bgpd show`: neighbours and Loc-RIB routes as plain serde types, built from the
//! core's read-only views.

pub mod protocol;
pub mod table;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bgp_wire::{AsPath, Origin, SegmentType};
use bgpd_core::{DecisionReason, DownReason, PathView, PeerStatus, RouteView};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The whole daemon at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Local AS.
    pub asn: u32,
    /// This process started as a graceful-restarting speaker (R bit).
    pub restarting: bool,
    /// When the daemon started, Unix milliseconds.
    pub started_unix_ms: u64,
    /// Prefixes in the table (with any path, filtered ones included; per-neighbour counters are
    /// in `neighbors`).
    pub table_prefixes: usize,
    /// Neighbours, by address.
    pub neighbors: Vec<NeighborStatus>,
}

/// Prefix counters of one family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyPrefixes {
    /// `ipv4-unicast` or `ipv6-unicast`.
    pub family: String,
    /// Held in the Adj-RIB-In (filtered ones included).
    pub received: u32,
    /// Accepted by checks and import policy.
    pub accepted: u32,
    /// In the Adj-RIB-Out.
    pub advertised: u32,
}

/// Facts negotiated on an Established session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Our end.
    pub local: SocketAddr,
    /// The neighbour's end.
    pub remote: SocketAddr,
    /// The neighbour's BGP identifier.
    pub remote_router_id: Ipv4Addr,
    /// Negotiated hold time, seconds.
    pub hold_time: u64,
    /// Keepalive interval, seconds.
    pub keepalive: u64,
    /// Families negotiated.
    pub families: Vec<String>,
    /// 4-octet AS numbers.
    pub four_octet_as: bool,
    /// ROUTE-REFRESH accepted by the neighbour.
    pub route_refresh: bool,
    /// Extended Message negotiated.
    pub extended_message: bool,
    /// The neighbour's graceful-restart time, seconds, when negotiated.
    pub graceful_restart_time: Option<u64>,
    /// Families the neighbour sent End-of-RIB for.
    pub end_of_rib_received: Vec<String>,
}

/// The last error of a neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// When, Unix milliseconds.
    pub at_unix_ms: u64,
    /// What happened, in words (NOTIFICATION code/subcode and cause, or a socket error).
    pub message: String,
}

/// Message counters by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCounts {
    /// OPEN.
    pub open: u64,
    /// UPDATE.
    pub update: u64,
    /// NOTIFICATION.
    pub notification: u64,
    /// KEEPALIVE.
    pub keepalive: u64,
    /// ROUTE-REFRESH.
    pub route_refresh: u64,
}

impl MessageCounts {
    /// Counts one message of wire type `t` (others are ignored).
    pub fn count(&mut self, t: u8) {
        match t {
            1 => self.open += 1,
            2 => self.update += 1,
            3 => self.notification += 1,
            4 => self.keepalive += 1,
            5 => self.route_refresh += 1,
            _ => {}
        }
    }

    /// `(type name, count)` pairs.
    pub fn by_type(&self) -> [(&'static str, u64); 5] {
        [
            ("open", self.open),
            ("update", self.update),
            ("notification", self.notification),
            ("keepalive", self.keepalive),
            ("route_refresh", self.route_refresh),
        ]
    }

    /// Sum over all types.
    pub fn total(&self) -> u64 {
        self.by_type().iter().map(|(_, n)| n).sum()
    }
}

/// One neighbour. `calicoctl node status` prints `address`, `description` (the peer type),
/// `state` (`up` when Established), `since` and `info` (state and last error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborStatus {
    /// Address.
    pub address: IpAddr,
    /// The neighbour's AS.
    pub remote_asn: u32,
    /// Our AS on the session.
    pub local_asn: u32,
    /// `internal` (iBGP) or `external` (eBGP).
    pub peer_type: String,
    /// The configured description (Calico: `node-to-node mesh`, `global`, `node specific`).
    pub description: Option<String>,
    /// RFC 4271 state: `Idle`, `Connect`, `Active`, `OpenSent`, `OpenConfirm`, `Established`.
    pub state: String,
    /// When the state last changed, Unix milliseconds.
    pub since_unix_ms: u64,
    /// Configured passive.
    pub passive: bool,
    /// A route reflector client of ours.
    pub route_reflector_client: bool,
    /// Administratively down.
    pub admin_down: bool,
    /// TCP MD5 configured.
    pub md5: bool,
    /// Negotiated facts when Established.
    pub session: Option<SessionInfo>,
    /// Prefix counters per family.
    pub prefixes: Vec<FamilyPrefixes>,
    /// The most recent error (session or socket).
    pub last_error: Option<LastError>,
    /// Routes of this neighbour are kept stale (we are its graceful-restart helper).
    pub graceful_restart_stale: bool,
    /// How many times the session reached Established.
    pub established_transitions: u32,
    /// How many times an Established session went down.
    pub flaps: u64,
    /// Messages received.
    pub messages_received: MessageCounts,
    /// Messages sent.
    pub messages_sent: MessageCounts,
}

impl NeighborStatus {
    /// Prefixes received over all families.
    pub fn received(&self) -> u64 {
        self.prefixes.iter().map(|p| u64::from(p.received)).sum()
    }
    /// Prefixes accepted over all families.
    pub fn accepted(&self) -> u64 {
        self.prefixes.iter().map(|p| u64::from(p.accepted)).sum()
    }
    /// Prefixes advertised over all families.
    pub fn advertised(&self) -> u64 {
        self.prefixes.iter().map(|p| u64::from(p.advertised)).sum()
    }
}

/// One path of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStatus {
    /// Learned from this neighbour; `None` for our own originations.
    pub from: Option<IpAddr>,
    /// Next hop (unspecified for our own: the session address is used).
    pub next_hop: IpAddr,
    /// AS path as text (`65001 65002 {65003,65004}`).
    pub as_path: String,
    /// `igp`, `egp` or `incomplete`.
    pub origin: String,
    /// LOCAL_PREF (100 when absent).
    pub local_pref: u32,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// Standard communities (`aa:nn`).
    pub communities: Vec<String>,
    /// Large communities (`aa:nn:mm`).
    pub large_communities: Vec<String>,
    /// ORIGINATOR_ID.
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST.
    pub cluster_list: Vec<Ipv4Addr>,
    /// The best path.
    pub best: bool,
    /// In the ECMP set.
    pub ecmp: bool,
    /// Kept stale from a restarting neighbour.
    pub stale: bool,
}

/// One Loc-RIB entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStatus {
    /// The prefix.
    pub prefix: IpNet,
    /// Why the best path won, in words.
    pub reason: String,
    /// Paths: the selected ones first (best, then ECMP), then the others.
    pub paths: Vec<PathStatus>,
}

/// The decision step that chose the best path, in words.
pub fn reason_text(r: DecisionReason) -> &'static str {
    match r {
        DecisionReason::OnlyPath => "only path",
        DecisionReason::LocallyOriginated => "locally originated",
        DecisionReason::LocalPref => "higher LOCAL_PREF",
        DecisionReason::AsPathLength => "shorter AS path",
        DecisionReason::Origin => "lower ORIGIN",
        DecisionReason::Med => "lower MED",
        DecisionReason::EbgpOverIbgp => "eBGP over iBGP",
        DecisionReason::IgpCost => "lower IGP cost",
        DecisionReason::ClusterListLength => "shorter CLUSTER_LIST",
        DecisionReason::RouterId => "lower router id",
        DecisionReason::PeerAddress => "lower neighbour address",
    }
}

/// An AS path as text: sequences space-separated, sets in braces, confederation segments in
/// parentheses.
pub fn as_path_text(p: Option<&AsPath>) -> String {
    let Some(p) = p else {
        return String::new();
    };
    let mut parts = Vec::new();
    for s in &p.segments {
        let asns: Vec<String> = s.asns.iter().map(u32::to_string).collect();
        parts.push(match s.kind {
            SegmentType::AsSequence => asns.join(" "),
            SegmentType::AsSet => format!("{{{}}}", asns.join(",")),
            _ => format!("({})", asns.join(" ")),
        });
    }
    parts.join(" ")
}

fn origin_text(o: Origin) -> &'static str {
    match o {
        Origin::Igp => "igp",
        Origin::Egp => "egp",
        Origin::Incomplete => "incomplete",
    }
}

impl PathStatus {
    pub(crate) fn from_view(p: &PathView) -> PathStatus {
        let a = &p.attrs;
        PathStatus {
            from: p.peer,
            next_hop: a.next_hop_addr(),
            as_path: as_path_text(a.path.as_path.as_ref()),
            origin: origin_text(a.origin()).to_string(),
            local_pref: a.local_pref(),
            med: a.path.multi_exit_disc,
            communities: a.path.communities.iter().map(|c| c.to_string()).collect(),
            large_communities: a
                .path
                .large_communities
                .iter()
                .map(|c| c.to_string())
                .collect(),
            originator_id: a.path.originator_id,
            cluster_list: a.path.cluster_list.clone(),
            best: p.best,
            ecmp: p.ecmp,
            stale: p.stale,
        }
    }
}

impl RouteStatus {
    pub(crate) fn from_view(r: &RouteView) -> RouteStatus {
        RouteStatus {
            prefix: r.prefix,
            reason: reason_text(r.reason).to_string(),
            paths: r.paths.iter().map(PathStatus::from_view).collect(),
        }
    }
}

/// What the driver knows about a neighbour besides the core's view.
#[derive(Debug, Clone, Default)]
pub(crate) struct DriverPeerFacts {
    pub description: Option<String>,
    pub md5: bool,
    pub transport_error: Option<LastError>,
    pub flaps: u64,
    pub received: MessageCounts,
    pub sent: MessageCounts,
}

/// Builds a neighbour's status; `wall` turns a core instant into Unix milliseconds.
pub(crate) fn neighbor_status(
    p: &PeerStatus,
    facts: &DriverPeerFacts,
    wall: impl Fn(bgpd_core::Instant) -> u64,
) -> NeighborStatus {
    let core_error = p.last_error.as_ref().map(|(at, reason)| LastError {
        at_unix_ms: wall(*at),
        message: down_reason_text(reason),
    });
    // A socket error says why a connection closed: it wins over the core's "connection closed"
    // recorded right after it.
    let closed = matches!(p.last_error, Some((_, DownReason::ConnectionClosed)));
    let last_error = match (core_error, facts.transport_error.clone()) {
        (Some(a), Some(b)) => {
            let explains = closed && b.at_unix_ms + 1000 >= a.at_unix_ms;
            Some(if explains || b.at_unix_ms > a.at_unix_ms {
                b
            } else {
                a
            })
        }
        (a, b) => a.or(b),
    };
    let families = |f: bgpd_core::FamilySet| f.iter().map(|f| f.to_string()).collect();
    NeighborStatus {
        address: p.address,
        remote_asn: p.remote_as,
        local_asn: p.local_as,
        peer_type: if p.remote_as == p.local_as {
            "internal"
        } else {
            "external"
        }
        .to_string(),
        description: facts.description.clone(),
        state: p.state.to_string(),
        since_unix_ms: wall(p.since),
        passive: p.passive,
        route_reflector_client: p.route_reflector_client,
        admin_down: p.admin_down,
        md5: facts.md5,
        session: p.session.as_ref().map(|s| SessionInfo {
            local: s.local,
            remote: s.remote,
            remote_router_id: s.remote_id,
            hold_time: s.hold_time.as_secs(),
            keepalive: s.keepalive.as_secs(),
            families: families(s.families),
            four_octet_as: s.four_octet_as,
            route_refresh: s.route_refresh,
            extended_message: s.extended_message,
            graceful_restart_time: s.graceful_restart.map(|d| d.as_secs()),
            end_of_rib_received: families(s.end_of_rib_received),
        }),
        prefixes: p
            .prefixes
            .iter()
            .map(|c| FamilyPrefixes {
                family: c.family.to_string(),
                received: c.received,
                accepted: c.accepted,
                advertised: c.advertised,
            })
            .collect(),
        last_error,
        graceful_restart_stale: p.graceful_restart_stale,
        established_transitions: p.established_transitions,
        flaps: facts.flaps,
        messages_received: facts.received,
        messages_sent: facts.sent,
    }
}

/// A session-down reason in words.
pub fn down_reason_text(r: &DownReason) -> String {
    r.to_string()
}
