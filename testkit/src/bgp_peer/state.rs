//! What a raw test peer has seen: the OPENs, the negotiated session, the routes it holds, the
//! NOTIFICATIONs and End-of-RIB markers it received, and whether the connection closed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Instant;

use bgp_wire::{
    AfiSafi, DecodeError, NextHop, Nlri, Notification, Open, PathAttributes, Prefix, RouteRefresh,
    SessionContext, Update,
};

use super::config::TableMode;

/// One received route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// NEXT_HOP for classic IPv4 NLRI, or the MP_REACH_NLRI next hop.
    pub next_hop: Option<NextHop>,
    /// The attributes of the UPDATE that announced it (shared by its prefixes).
    pub attributes: Arc<PathAttributes>,
}

/// Everything the peer has observed. Read it through [`crate::bgp_peer::BgpPeer::with_state`]
/// or in a [`crate::bgp_peer::BgpPeer::wait_for`] predicate.
#[derive(Debug)]
pub struct PeerState {
    /// The OPEN we sent, once sent.
    pub local_open: Option<Open>,
    /// The OPEN the speaker sent.
    pub remote_open: Option<Open>,
    /// The negotiated session (the default until both OPENs are known).
    pub context: SessionContext,
    /// min(our hold time, theirs), once both OPENs are known.
    pub negotiated_hold_time: Option<u16>,
    /// Our KEEPALIVE confirming their OPEN has been written.
    pub(crate) open_confirmed: bool,
    /// A KEEPALIVE arrived after the speaker's OPEN.
    pub(crate) remote_confirmed: bool,
    /// The speaker's KEEPALIVE after its OPEN arrived and ours went out: the session is up.
    pub established: bool,
    /// KEEPALIVEs received.
    pub keepalives_received: u64,
    /// When the last KEEPALIVE arrived.
    pub last_keepalive_at: Option<Instant>,
    /// UPDATEs received (End-of-RIB markers included).
    pub updates_received: u64,
    /// When the first UPDATE carrying a route arrived.
    pub first_route_update_at: Option<Instant>,
    /// Routes held (full table mode), keyed by prefix and path identifier.
    pub routes: BTreeMap<Nlri, Route>,
    /// Every NLRI an UPDATE withdrew (explicitly or by treat-as-withdraw), in arrival order.
    pub withdrawn: Vec<Nlri>,
    /// NOTIFICATIONs received, in order.
    pub notifications: Vec<Notification>,
    /// Families whose End-of-RIB marker arrived.
    pub end_of_rib: BTreeSet<AfiSafi>,
    /// ROUTE-REFRESH messages received.
    pub route_refreshes: Vec<RouteRefresh>,
    /// Messages from the speaker this codec found malformed (framing errors end the reading).
    pub decode_errors: Vec<DecodeError>,
    /// The TCP connection is closed (EOF or error); nothing more will arrive.
    pub closed: bool,
    /// Why reading stopped, if it did.
    pub close_reason: Option<String>,
    /// The table mode this state was built for.
    pub table: TableMode,
    /// Prefixes held in counting mode.
    counted: HashSet<Nlri, BuildHasherDefault<PrefixHasher>>,
    /// When the held count first reached the counting target.
    pub target_reached_at: Option<Instant>,
}

impl PeerState {
    pub(crate) fn new(table: TableMode) -> PeerState {
        let counted = match table {
            TableMode::Count { target } => {
                HashSet::with_capacity_and_hasher(target, BuildHasherDefault::default())
            }
            TableMode::Full => HashSet::default(),
        };
        PeerState {
            local_open: None,
            remote_open: None,
            context: SessionContext::default(),
            negotiated_hold_time: None,
            open_confirmed: false,
            remote_confirmed: false,
            established: false,
            keepalives_received: 0,
            last_keepalive_at: None,
            updates_received: 0,
            first_route_update_at: None,
            routes: BTreeMap::new(),
            withdrawn: Vec::new(),
            notifications: Vec::new(),
            end_of_rib: BTreeSet::new(),
            route_refreshes: Vec::new(),
            decode_errors: Vec::new(),
            closed: false,
            close_reason: None,
            table,
            counted,
            target_reached_at: None,
        }
    }

    /// Number of distinct (prefix, path identifier) pairs currently held, in either table mode.
    pub fn held(&self) -> usize {
        match self.table {
            TableMode::Full => self.routes.len(),
            TableMode::Count { .. } => self.counted.len(),
        }
    }

    /// Whether a route for `prefix` (any path identifier) is held, in either table mode.
    pub fn has_prefix(&self, prefix: Prefix) -> bool {
        let prefix = prefix.trunc();
        match self.table {
            TableMode::Full => self
                .routes
                .range(Nlri::new(prefix)..)
                .next()
                .is_some_and(|(n, _)| n.prefix == prefix),
            TableMode::Count { .. } => {
                self.counted.contains(&Nlri::new(prefix))
                    || self.counted.iter().any(|n| n.prefix == prefix)
            }
        }
    }

    /// The route for `prefix` without path identifier (full table mode).
    pub fn route(&self, prefix: Prefix) -> Option<&Route> {
        self.routes.get(&Nlri::new(prefix))
    }

    /// The prefixes held (full table mode), sorted.
    pub fn prefixes(&self) -> Vec<Prefix> {
        let set: BTreeSet<Prefix> = self.routes.keys().map(|n| n.prefix).collect();
        set.into_iter().collect()
    }

    /// The last NOTIFICATION received as (code, subcode).
    pub fn last_notification(&self) -> Option<(u8, u8)> {
        self.notifications.last().map(|n| (n.code, n.subcode))
    }

    /// A one-line summary for timeout messages.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "established={} closed={} held={} updates={} keepalives={}",
            self.established,
            self.closed,
            self.held(),
            self.updates_received,
            self.keepalives_received
        );
        for n in &self.notifications {
            let _ = write!(s, " notification={}/{}", n.code, n.subcode);
        }
        if !self.end_of_rib.is_empty() {
            let eor: Vec<String> = self.end_of_rib.iter().map(ToString::to_string).collect();
            let _ = write!(s, " end-of-rib=[{}]", eor.join(","));
        }
        if let Some(e) = self.decode_errors.last() {
            let _ = write!(s, " last-decode-error={e}");
        }
        if let Some(r) = &self.close_reason {
            let _ = write!(s, " close-reason={r}");
        }
        s
    }

    /// Applies a decoded UPDATE: End-of-RIB, withdrawals, then announcements (withdrawn
    /// instead when the UPDATE is treat-as-withdraw, RFC 7606 §2).
    pub(crate) fn apply_update(&mut self, update: Update, now: Instant) {
        self.updates_received += 1;
        if let Some(af) = update.as_end_of_rib() {
            self.end_of_rib.insert(af);
            return;
        }
        if self.first_route_update_at.is_none() && update.has_routes() {
            self.first_route_update_at = Some(now);
        }
        let withdraw_all = update.treat_as_withdraw();
        if !update.errors.is_empty() {
            self.decode_errors.extend(update.errors.iter().cloned());
        }
        let Update {
            withdrawn,
            attributes,
            nlri,
            mp_reach,
            mp_unreach,
            ..
        } = update;
        for n in withdrawn
            .iter()
            .chain(mp_unreach.iter().flat_map(|m| m.withdrawn.iter()))
        {
            self.withdrawn.push(*n);
            self.remove(n);
        }
        let v4_next_hop = attributes.next_hop.map(NextHop::V4);
        let attributes = Arc::new(attributes);
        let announced = nlri.iter().map(|n| (n, v4_next_hop)).chain(
            mp_reach
                .iter()
                .flat_map(|m| m.nlri.iter().map(|n| (n, Some(m.next_hop)))),
        );
        for (n, next_hop) in announced {
            if withdraw_all {
                self.withdrawn.push(*n);
                self.remove(n);
            } else {
                self.insert(*n, next_hop, &attributes);
            }
        }
        if let TableMode::Count { target } = self.table
            && self.target_reached_at.is_none()
            && self.counted.len() >= target
        {
            self.target_reached_at = Some(now);
        }
    }

    fn remove(&mut self, n: &Nlri) {
        match self.table {
            TableMode::Full => {
                self.routes.remove(n);
            }
            TableMode::Count { .. } => {
                self.counted.remove(n);
            }
        }
    }

    fn insert(&mut self, n: Nlri, next_hop: Option<NextHop>, attributes: &Arc<PathAttributes>) {
        match self.table {
            TableMode::Full => {
                self.routes.insert(
                    n,
                    Route {
                        next_hop,
                        attributes: attributes.clone(),
                    },
                );
            }
            TableMode::Count { .. } => {
                self.counted.insert(n);
            }
        }
    }
}

/// A small multiplicative hasher for prefix keys (the counting set hashes a million prefixes;
/// SipHash's DoS resistance buys nothing against our own test traffic).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_wire::{MpReach, MpUnreach};

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn announce(prefixes: &[&str]) -> Update {
        Update {
            attributes: PathAttributes {
                next_hop: Some("192.0.2.1".parse().unwrap()),
                ..crate::bgp_peer::ebgp_attributes(&[65001])
            },
            nlri: prefixes.iter().map(|s| Nlri::new(p(s))).collect(),
            ..Update::default()
        }
    }

    #[test]
    fn announcements_then_withdrawals_leave_the_rest_held() {
        for table in [TableMode::Full, TableMode::Count { target: 3 }] {
            let mut s = PeerState::new(table);
            s.apply_update(
                announce(&["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]),
                Instant::now(),
            );
            assert_eq!(s.held(), 3);
            s.apply_update(
                Update {
                    withdrawn: vec![Nlri::new(p("10.0.1.0/24"))],
                    ..Update::default()
                },
                Instant::now(),
            );
            assert_eq!(s.held(), 2, "{table:?}");
            assert!(s.has_prefix(p("10.0.2.0/24")));
            assert!(!s.has_prefix(p("10.0.1.0/24")));
        }
    }

    #[test]
    fn the_counting_target_time_is_set_once_when_first_reached() {
        let mut s = PeerState::new(TableMode::Count { target: 2 });
        s.apply_update(announce(&["10.0.0.0/24"]), Instant::now());
        assert!(s.target_reached_at.is_none());
        s.apply_update(announce(&["10.0.1.0/24", "10.0.0.0/24"]), Instant::now());
        let first = s.target_reached_at.unwrap();
        s.apply_update(announce(&["10.0.2.0/24"]), Instant::now());
        assert_eq!(s.target_reached_at, Some(first));
    }

    #[test]
    fn mp_reach_routes_keep_their_own_next_hop_and_end_of_rib_is_recorded() {
        let mut s = PeerState::new(TableMode::Full);
        let nh = NextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: None,
        };
        s.apply_update(
            Update {
                attributes: crate::bgp_peer::ebgp_attributes(&[65001]),
                mp_reach: Some(MpReach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    next_hop: nh,
                    nlri: vec![Nlri::new(p("2001:db8:1::/48"))],
                }),
                ..Update::default()
            },
            Instant::now(),
        );
        assert_eq!(s.route(p("2001:db8:1::/48")).unwrap().next_hop, Some(nh));
        s.apply_update(Update::end_of_rib(AfiSafi::IPV6_UNICAST), Instant::now());
        assert!(s.end_of_rib.contains(&AfiSafi::IPV6_UNICAST));
        s.apply_update(
            Update {
                mp_unreach: Some(MpUnreach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    withdrawn: vec![Nlri::new(p("2001:db8:1::/48"))],
                }),
                ..Update::default()
            },
            Instant::now(),
        );
        assert_eq!(s.held(), 0);
    }
}
