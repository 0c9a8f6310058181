//! Read-only views for the status API (`calicoctl node status`, the daemon's local API) and for
//! tests: peers, the Loc-RIB with best/ECMP marks and decision reasons, Adj-RIB-In/Out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bgp_wire::Prefix;

use crate::attrs::RouteAttrs;
use crate::decision::DecisionReason;
use crate::driver::{DownReason, State};
use crate::family::{Family, FamilySet};
use crate::peer::Peer;
use crate::rib::{Dest, LOCAL, STALE};
use crate::speaker::Speaker;
use crate::time::Instant;

/// Per-family prefix counters of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyCounters {
    /// The family.
    pub family: Family,
    /// Prefixes held in the Adj-RIB-In (filtered ones included).
    pub received: u32,
    /// Prefixes accepted by checks and import policy.
    pub accepted: u32,
    /// Prefixes in the Adj-RIB-Out.
    pub advertised: u32,
}

/// The negotiated facts of an Established session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    /// Our end.
    pub local: SocketAddr,
    /// The peer's end.
    pub remote: SocketAddr,
    /// The peer's BGP identifier.
    pub remote_id: Ipv4Addr,
    /// Families negotiated.
    pub families: FamilySet,
    /// Negotiated hold time.
    pub hold_time: Duration,
    /// Keepalive interval.
    pub keepalive: Duration,
    /// 4-octet AS numbers on the wire.
    pub four_octet_as: bool,
    /// The peer accepts ROUTE-REFRESH.
    pub route_refresh: bool,
    /// Enhanced Route Refresh negotiated.
    pub enhanced_route_refresh: bool,
    /// Extended Message negotiated.
    pub extended_message: bool,
    /// The peer's GR restart time, when GR was negotiated.
    pub graceful_restart: Option<Duration>,
    /// Families the peer sent End-of-RIB for.
    pub end_of_rib_received: FamilySet,
    /// When the session came up.
    pub since: Instant,
}

/// A peer as the status API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Address.
    pub address: IpAddr,
    /// The peer's AS.
    pub remote_as: u32,
    /// Our AS on the session.
    pub local_as: u32,
    /// Reported state.
    pub state: State,
    /// When the state last changed.
    pub since: Instant,
    /// Configured passive.
    pub passive: bool,
    /// A route reflector client of ours.
    pub route_reflector_client: bool,
    /// Administratively down.
    pub admin_down: bool,
    /// Negotiated session facts, when Established.
    pub session: Option<SessionStatus>,
    /// Counters per negotiated (or configured) family.
    pub prefixes: Vec<FamilyCounters>,
    /// The last session error and when.
    pub last_error: Option<(Instant, DownReason)>,
    /// Routes of this peer are kept stale (graceful restart helper).
    pub graceful_restart_stale: bool,
    /// How many times the session reached Established.
    pub established_transitions: u32,
}

/// One path of a Loc-RIB route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathView {
    /// Learned from (`None`: our own origination).
    pub peer: Option<IpAddr>,
    /// Post-policy attributes (next hop, AS path, communities, LOCAL_PREF, MED, ORIGIN).
    pub attrs: Arc<RouteAttrs>,
    /// The best path.
    pub best: bool,
    /// In the ECMP set (the best path included).
    pub ecmp: bool,
    /// Kept from a restarting peer.
    pub stale: bool,
}

/// A Loc-RIB entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    /// The prefix.
    pub prefix: Prefix,
    /// Why the best path won.
    pub reason: DecisionReason,
    /// Paths: the selected ones first (best, then ECMP order), then the others by peer address.
    pub paths: Vec<PathView>,
}

impl RouteView {
    /// The best path.
    pub fn best(&self) -> Option<&PathView> {
        self.paths.first().filter(|p| p.best)
    }
}

impl Speaker {
    fn status(&self, p: &Peer) -> PeerStatus {
        let session = p.session.as_ref().map(|s| SessionStatus {
            local: s.local,
            remote: s.remote,
            remote_id: s.remote_open.bgp_identifier,
            families: s.families,
            hold_time: s.hold,
            keepalive: s.keepalive,
            four_octet_as: s.ctx.four_octet_as,
            route_refresh: s.route_refresh,
            enhanced_route_refresh: s.enhanced_route_refresh,
            extended_message: s.ctx.extended_message,
            graceful_restart: s
                .peer_gr
                .as_ref()
                .map(|g| Duration::from_secs(u64::from(g.restart_time))),
            end_of_rib_received: s.eor_received,
            since: s.since,
        });
        let families = p.session.as_ref().map_or(p.cfg.families, |s| s.families);
        PeerStatus {
            address: p.cfg.address,
            remote_as: p.cfg.remote_as,
            local_as: p.local_as,
            state: p.state,
            since: p.since,
            passive: p.cfg.passive,
            route_reflector_client: p.cfg.route_reflector_client,
            admin_down: p.admin_down,
            session,
            prefixes: families
                .iter()
                .map(|f| FamilyCounters {
                    family: f,
                    received: p.counters.received[f.index()],
                    accepted: p.counters.accepted[f.index()],
                    advertised: p.adj_out.count(f),
                })
                .collect(),
            last_error: p.last_error.clone(),
            graceful_restart_stale: p.gr.is_some(),
            established_transitions: p.established_transitions,
        }
    }

    /// Every peer, by address.
    pub fn peers(&self) -> Vec<PeerStatus> {
        self.by_addr
            .values()
            .filter_map(|s| self.peer(*s))
            .map(|p| self.status(p))
            .collect()
    }

    /// The configuration of a peer (for the driver: transport options such as the MD5 key).
    pub fn peer_config(&self, address: IpAddr) -> Option<&crate::config::PeerConfig> {
        let slot = self.by_addr.get(&address)?;
        self.peer(*slot).map(|p| &p.cfg)
    }

    /// One peer.
    pub fn peer_status(&self, address: IpAddr) -> Option<PeerStatus> {
        let slot = self.by_addr.get(&address)?;
        self.peer(*slot).map(|p| self.status(p))
    }

    fn peer_addr(&self, slot: u16) -> Option<IpAddr> {
        if slot == LOCAL {
            return None;
        }
        self.facts
            .get(usize::from(slot))
            .copied()
            .flatten()
            .map(|f| f.address)
    }

    fn route_view(&self, d: &Dest) -> Option<RouteView> {
        let selected = usize::from(d.selected);
        let mut paths: Vec<PathView> = d
            .paths
            .as_slice()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                Some(PathView {
                    peer: self.peer_addr(p.peer),
                    attrs: p.attrs.clone()?,
                    best: i == 0 && selected > 0,
                    ecmp: i < selected,
                    stale: p.flags & STALE != 0,
                })
            })
            .collect();
        if paths.is_empty() {
            return None;
        }
        let rest = paths.split_off(selected.min(paths.len()));
        let mut rest = rest;
        rest.sort_by_key(|p| p.peer);
        paths.extend(rest);
        Some(RouteView {
            prefix: d.prefix,
            reason: d.reason,
            paths,
        })
    }

    /// The Loc-RIB: every prefix with at least one accepted path, by prefix.
    pub fn loc_rib(&self) -> Vec<RouteView> {
        let mut v: Vec<RouteView> = self
            .table
            .ids()
            .filter_map(|id| self.table.get(id))
            .filter_map(|d| self.route_view(d))
            .collect();
        v.sort_by_key(|r| r.prefix);
        v
    }

    /// The Loc-RIB entry of one prefix.
    pub fn route(&self, prefix: &Prefix) -> Option<RouteView> {
        let id = self.table.find(prefix)?;
        self.route_view(self.table.get(id)?)
    }

    /// Number of prefixes in the table (any path, accepted or not).
    pub fn prefix_count(&self) -> usize {
        self.table.len()
    }

    /// A peer's Adj-RIB-In, pre-policy (as received) or post-policy (accepted only), by prefix.
    pub fn adj_rib_in(&self, peer: IpAddr, post_policy: bool) -> Vec<(Prefix, Arc<RouteAttrs>)> {
        let Some(&slot) = self.by_addr.get(&peer) else {
            return Vec::new();
        };
        let mut v: Vec<(Prefix, Arc<RouteAttrs>)> = self
            .table
            .ids()
            .filter_map(|id| self.table.get(id))
            .filter_map(|d| {
                let p = d.paths.as_slice().iter().find(|p| p.peer == slot)?;
                let a = if post_policy {
                    p.attrs.clone()?
                } else {
                    p.raw.clone()
                };
                Some((d.prefix, a))
            })
            .collect();
        v.sort_by_key(|(p, _)| *p);
        v
    }

    /// What was last advertised to a peer, by prefix.
    pub fn adj_rib_out(&self, peer: IpAddr) -> Vec<(Prefix, Arc<RouteAttrs>)> {
        let Some(p) = self.by_addr.get(&peer).and_then(|s| self.peer(*s)) else {
            return Vec::new();
        };
        let mut v: Vec<(Prefix, Arc<RouteAttrs>)> = p
            .adj_out
            .iter()
            .filter_map(|(id, a)| Some((self.table.get(id)?.prefix, a.clone())))
            .collect();
        v.sort_by_key(|(p, _)| *p);
        v
    }
}
