//! Routes coming in: UPDATE processing with the RFC 7606 reactions and the checks the codec
//! leaves to the speaker (own next hop, first AS, AS loop, route reflection loops), import
//! policy, Adj-RIB-In bookkeeping, max-prefix, End-of-RIB, ROUTE-REFRESH, and our own
//! originations.

use std::net::IpAddr;
use std::sync::Arc;

use bgp_wire::{
    AfiSafi, AsPath, Message, NextHop, Nlri, Notification, Origin, PathAttributes, Prefix,
    RouteRefresh, RouteRefreshSubtype, Update, iana::error_code,
};

use crate::attrs::{DEFAULT_LOCAL_PREF, RouteAttrs, self_next_hop};
use crate::driver::{Action, ConnId, OriginAttributes};
use crate::error::{ConfigError, InputError};
use crate::family::Family;
use crate::peer::Peer;
use crate::policy::{
    Outcome, PeerType, Policy, PolicyContext, RouteSource, Verdict, apply_operations,
};
use crate::rib::{DIRTY, DestId, LOCAL, Path, REFRESH_STALE};
use crate::speaker::Speaker;
use crate::time::Instant;
use crate::timers::TimerKey;

/// Why a route is treated as withdrawn (RFC 7606 §7.3, RFC 4271 §6.3).
fn semantic_error(p: &Peer, local: Option<IpAddr>, attrs: &RouteAttrs) -> Option<String> {
    let nh = attrs.next_hop_addr();
    if Some(nh) == local {
        return Some(format!("NEXT_HOP {nh} is our own address (RFC 4271 §6.3)"));
    }
    if let NextHop::V6 { global, link_local } = attrs.next_hop
        && ((global.is_unspecified() && link_local.is_none()) || global.is_multicast())
    {
        return Some(format!(
            "IPv6 next hop {global} is not a unicast address (RFC 2545 §3)"
        ));
    }
    if p.ebgp && p.cfg.enforce_first_as {
        let first = attrs.path.as_path.as_ref().and_then(AsPath::first_asn);
        if first != Some(p.cfg.remote_as) {
            return Some(format!(
                "AS_PATH starts with {first:?}, not the peer's AS {} (RFC 4271 §6.3, RFC 7606 §7.2)",
                p.cfg.remote_as
            ));
        }
    }
    None
}

impl Speaker {
    /// Queues a destination for the decision process, remembering its current selection.
    pub(crate) fn mark_dirty(&mut self, id: DestId) {
        let Some(d) = self.table.get_mut(id) else {
            return;
        };
        if d.flags & DIRTY != 0 {
            return;
        }
        d.flags |= DIRTY;
        let snap = d
            .selection()
            .iter()
            .filter_map(|p| Some((p.peer, p.attrs.clone()?)))
            .collect();
        self.dirty.push((id, snap));
    }

    fn count(&mut self, slot: u16, f: Family, old: Option<&Path>, new: Option<&Path>) {
        let Some(p) = self.peer_mut(slot) else {
            return;
        };
        let i = f.index();
        let c = &mut p.counters;
        let acc = |x: Option<&Path>| u32::from(x.is_some_and(|p| p.attrs.is_some()));
        let rec = |x: Option<&Path>| u32::from(x.is_some());
        c.received[i] = (c.received[i] + rec(new)).saturating_sub(rec(old));
        c.accepted[i] = (c.accepted[i] + acc(new)).saturating_sub(acc(old));
    }

    /// Sets the path of `path.peer` for `prefix`.
    pub(crate) fn set_path(&mut self, prefix: Prefix, path: Path) {
        let id = self.table.find_or_insert(prefix);
        self.mark_dirty(id);
        let (slot, f) = (path.peer, Family::of(&prefix));
        let counted = path.clone();
        let old = self.table.get_mut(id).and_then(|d| d.paths.upsert(path));
        self.count(slot, f, old.as_ref(), Some(&counted));
    }

    /// Removes the path of `slot` from a destination.
    pub(crate) fn remove_path(&mut self, id: DestId, slot: u16) -> Option<Path> {
        let d = self.table.get(id)?;
        if !d.paths.as_slice().iter().any(|p| p.peer == slot) {
            return None;
        }
        let f = d.family();
        self.mark_dirty(id);
        let old = self.table.get_mut(id).and_then(|d| d.paths.remove(slot));
        self.count(slot, f, old.as_ref(), None);
        old
    }

    fn withdraw_prefix(&mut self, slot: u16, prefix: &Prefix) {
        if let Some(id) = self.table.find(prefix) {
            self.remove_path(id, slot);
        }
    }

    /// Removes every path of a peer.
    pub(crate) fn flush_peer_routes(&mut self, slot: u16) {
        let ids: Vec<DestId> = self.table.ids().collect();
        for id in ids {
            self.remove_path(id, slot);
        }
    }

    /// An UPDATE on an Established session.
    pub(crate) fn process_update(
        &mut self,
        now: Instant,
        conn: ConnId,
        update: Update,
        out: &mut Vec<Action>,
    ) {
        let Some(slot) = self.conns.get(&conn).map(|c| c.slot) else {
            return;
        };
        let Some(families) = self
            .peer(slot)
            .and_then(|p| p.session.as_ref())
            .map(|s| s.families)
        else {
            return;
        };
        if let Some(af) = update.as_end_of_rib() {
            if let Some(f) = Family::from_afi_safi(af).filter(|f| families.contains(*f)) {
                self.on_end_of_rib(slot, f);
            }
            return;
        }
        for e in &update.errors {
            tracing::warn!(%conn, error = %e, "UPDATE error handled per RFC 7606");
        }
        let v4 = Family::Ipv4Unicast;
        if families.contains(v4) {
            for n in &update.withdrawn {
                self.withdraw_prefix(slot, &n.prefix);
            }
        }
        if let Some(u) = &update.mp_unreach
            && Family::from_afi_safi(u.afi_safi).is_some_and(|f| families.contains(f))
        {
            for n in &u.withdrawn {
                self.withdraw_prefix(slot, &n.prefix);
            }
        }
        let withdraw_all = update.treat_as_withdraw();
        let mut path = update.attributes;
        let classic_nh = path.next_hop.take();
        if !update.nlri.is_empty() && families.contains(v4) {
            match classic_nh {
                Some(nh) if !withdraw_all => {
                    self.announce(slot, NextHop::V4(nh), path.clone(), &update.nlri)
                }
                _ => update
                    .nlri
                    .iter()
                    .for_each(|n| self.withdraw_prefix(slot, &n.prefix)),
            }
        }
        if let Some(mp) = update.mp_reach
            && Family::from_afi_safi(mp.afi_safi).is_some_and(|f| families.contains(f))
        {
            if withdraw_all {
                mp.nlri
                    .iter()
                    .for_each(|n| self.withdraw_prefix(slot, &n.prefix));
            } else {
                self.announce(slot, mp.next_hop, path, &mp.nlri);
            }
        }
        self.check_max_prefix(now, slot, out);
    }

    /// Routes announced with one attribute set.
    fn announce(&mut self, slot: u16, next_hop: NextHop, path: PathAttributes, nlri: &[Nlri]) {
        let Some(p) = self.peer(slot) else {
            return;
        };
        let local = p.session.as_ref().map(|s| s.local.ip());
        let raw = RouteAttrs { path, next_hop };
        let v4_nlri = nlri.first().is_some_and(|n| n.prefix.addr().is_ipv4());
        let why = if v4_nlri && matches!(next_hop, NextHop::V6 { .. }) {
            Some("an IPv6 next hop for IPv4 NLRI needs Extended Next Hop, which is not negotiated (RFC 8950 §4)".to_string())
        } else {
            semantic_error(p, local, &raw)
        };
        if let Some(why) = why {
            tracing::warn!(peer = %p.cfg.address, %why, count = nlri.len(), "routes treated as withdrawn");
            for n in nlri {
                self.withdraw_prefix(slot, &n.prefix);
            }
            return;
        }
        let raw = self.interner.intern(raw);
        let Some(p) = self.peer_mut(slot) else {
            return;
        };
        let policy = std::mem::take(&mut p.cfg.import_policy);
        let mut cache: Vec<(Outcome, Option<Arc<RouteAttrs>>)> = Vec::new();
        for n in nlri {
            let post = self.import_one(slot, &policy, &n.prefix, &raw, &mut cache);
            self.set_path(
                n.prefix,
                Path {
                    raw: raw.clone(),
                    attrs: post,
                    peer: slot,
                    flags: 0,
                },
            );
        }
        if let Some(p) = self.peer_mut(slot) {
            p.cfg.import_policy = policy;
        }
    }

    /// The post-policy attributes of one received route (`None`: rejected or looped).
    fn import_one(
        &mut self,
        slot: u16,
        policy: &Policy,
        prefix: &Prefix,
        raw: &Arc<RouteAttrs>,
        cache: &mut Vec<(Outcome, Option<Arc<RouteAttrs>>)>,
    ) -> Option<Arc<RouteAttrs>> {
        let (ebgp, local_as, looped) = {
            let p = self.peer(slot)?;
            (p.ebgp, p.local_as, self.is_looped(p, raw))
        };
        if looped {
            return None;
        }
        let ctx = PolicyContext {
            peer_type: if ebgp {
                PeerType::External
            } else {
                PeerType::Internal
            },
            source: RouteSource::Remote,
        };
        let outcome = if policy.is_trivial() {
            Outcome {
                verdict: policy.default_action,
                rule: None,
            }
        } else {
            policy.evaluate(prefix, raw, ctx)
        };
        if outcome.verdict == Verdict::Reject {
            return None;
        }
        if let Some((_, a)) = cache.iter().find(|(o, _)| *o == outcome) {
            return a.clone();
        }
        let mut a = (**raw).clone();
        if ebgp || a.path.local_pref.is_none() {
            // eBGP routes get the default LOCAL_PREF; iBGP routes without one too.
            a.path.local_pref = Some(DEFAULT_LOCAL_PREF);
        }
        apply_operations(&mut a, policy.operations(outcome), local_as);
        let a = Some(self.interner.intern(a));
        cache.push((outcome, a.clone()));
        a
    }

    /// AS loop (RFC 4271 §9.1.2, with `allow_local_as`) and route reflection loops (RFC 4456
    /// §8: our ORIGINATOR_ID, our cluster id in CLUSTER_LIST).
    fn is_looped(&self, p: &Peer, a: &RouteAttrs) -> bool {
        let ours = |asn: u32| asn == p.local_as || asn == self.cfg.local_as;
        let count = a.path.as_path.as_ref().map_or(0, |path| {
            path.segments
                .iter()
                .flat_map(|s| s.asns.iter())
                .filter(|a| ours(**a))
                .count()
        });
        count > usize::from(p.cfg.allow_local_as)
            || a.path.originator_id == Some(self.cfg.router_id)
            || a.path.cluster_list.contains(&self.cfg.cluster_id())
    }

    /// Re-runs checks and import policy over a peer's Adj-RIB-In (soft reconfiguration).
    pub(crate) fn reimport(&mut self, slot: u16) {
        let Some(p) = self.peer_mut(slot) else {
            return;
        };
        let policy = std::mem::take(&mut p.cfg.import_policy);
        let mut cache: Vec<(usize, Outcome, Option<Arc<RouteAttrs>>)> = Vec::new();
        let ids: Vec<DestId> = self.table.ids().collect();
        for id in ids {
            let Some((prefix, path)) = self.table.get(id).and_then(|d| {
                let p = d.paths.as_slice().iter().find(|p| p.peer == slot)?;
                Some((d.prefix, p.clone()))
            }) else {
                continue;
            };
            let key = Arc::as_ptr(&path.raw) as usize;
            let mut local: Vec<(Outcome, Option<Arc<RouteAttrs>>)> = cache
                .iter()
                .filter(|(k, _, _)| *k == key)
                .map(|(_, o, a)| (*o, a.clone()))
                .collect();
            let before = local.len();
            let post = self.import_one(slot, &policy, &prefix, &path.raw, &mut local);
            cache.extend(local.into_iter().skip(before).map(|(o, a)| (key, o, a)));
            let same = match (&post, &path.attrs) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                self.set_path(
                    prefix,
                    Path {
                        attrs: post,
                        ..path
                    },
                );
            }
        }
        if let Some(p) = self.peer_mut(slot) {
            p.cfg.import_policy = policy;
        }
    }

    /// Cease/1 when a family exceeds its limit (RFC 4486 §4: data AFI, SAFI, upper bound).
    pub(crate) fn check_max_prefix(&mut self, now: Instant, slot: u16, out: &mut Vec<Action>) {
        let Some(p) = self.peer(slot) else {
            return;
        };
        let (Some(mp), Some(s)) = (p.cfg.max_prefix.clone(), p.session.as_ref()) else {
            return;
        };
        let conn = s.conn;
        for f in Family::ALL {
            let Some(limit) = mp.limit(f) else {
                continue;
            };
            if p.received(f) <= limit {
                continue;
            }
            let af = f.afi_safi();
            let mut data = af.afi.to_be_bytes().to_vec();
            data.push(af.safi);
            data.extend_from_slice(&limit.to_be_bytes());
            let n = Notification::new(error_code::CEASE, error_code::cease::MAX_PREFIXES, data);
            let cause = format!(
                "{} {f} prefixes received, over the limit of {limit} (RFC 4486)",
                p.received(f)
            );
            self.protocol_error(now, conn, n, cause, out);
            match mp.restart_after {
                Some(d) => self.timers.set(TimerKey::IdleHold(slot), now + d),
                None => {
                    self.timers.clear(TimerKey::IdleHold(slot));
                    if let Some(p) = self.peer_mut(slot) {
                        p.max_prefix_stopped = true;
                        p.idle = true;
                    }
                }
            }
            self.refresh_state(now, slot, out);
            return;
        }
    }

    fn on_end_of_rib(&mut self, slot: u16, f: Family) {
        let Some(p) = self.peer_mut(slot) else {
            return;
        };
        if let Some(s) = p.session.as_mut() {
            s.eor_received.insert(f);
        }
        tracing::debug!(peer = %p.cfg.address, family = %f, "End-of-RIB received");
        let waiting =
            p.gr.is_some_and(|g| g.awaiting_eor && g.families.contains(f));
        if waiting {
            self.gr_flush_stale(slot, Some(f));
            if let Some(p) = self.peer_mut(slot)
                && let Some(g) = p.gr.as_mut()
            {
                g.families.remove(f);
                if g.families.is_empty() {
                    p.gr = None;
                    self.timers.clear(TimerKey::GrStale(slot));
                }
            }
        }
    }

    /// A ROUTE-REFRESH from the peer.
    pub(crate) fn on_route_refresh(
        &mut self,
        now: Instant,
        conn: ConnId,
        rr: RouteRefresh,
        out: &mut Vec<Action>,
    ) {
        let Some(slot) = self.conns.get(&conn).map(|c| c.slot) else {
            return;
        };
        let Some(s) = self.peer(slot).and_then(|p| p.session.as_ref()) else {
            return;
        };
        // RFC 2918 §4: a family not negotiated is ignored.
        let Some(f) = Family::from_afi_safi(rr.afi_safi).filter(|f| s.families.contains(*f)) else {
            return;
        };
        let enhanced = s.enhanced_route_refresh;
        match rr.subtype {
            RouteRefreshSubtype::Normal => self.resend_adj_out(now, slot, f, out),
            RouteRefreshSubtype::BeginningOfRib if enhanced => {
                for id in self.table.ids().collect::<Vec<_>>() {
                    if let Some(d) = self.table.get_mut(id)
                        && d.family() == f
                    {
                        for p in d.paths.as_mut_slice().iter_mut().filter(|p| p.peer == slot) {
                            p.flags |= REFRESH_STALE;
                        }
                    }
                }
            }
            RouteRefreshSubtype::EndOfRib if enhanced => {
                for id in self.table.ids().collect::<Vec<_>>() {
                    let stale = self.table.get(id).is_some_and(|d| {
                        d.family() == f
                            && d.paths
                                .as_slice()
                                .iter()
                                .any(|p| p.peer == slot && p.flags & REFRESH_STALE != 0)
                    });
                    if stale {
                        self.remove_path(id, slot);
                    }
                }
            }
            // RFC 7313 §4: other subtypes (and BoRR/EoRR without the capability) are ignored.
            _ => {}
        }
    }

    /// `Input::RouteRefresh`: ask the peer to re-send a family.
    pub(crate) fn request_refresh(
        &mut self,
        peer: IpAddr,
        family: AfiSafi,
        out: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let slot = *self
            .by_addr
            .get(&peer)
            .ok_or(InputError::UnknownPeer(peer))?;
        let s = self
            .peer(slot)
            .and_then(|p| p.session.as_ref())
            .ok_or(InputError::NotEstablished { peer })?;
        let ok = Family::from_afi_safi(family).is_some_and(|f| s.families.contains(f));
        if !ok || !s.route_refresh {
            return Err(InputError::RouteRefreshNotNegotiated { peer, family });
        }
        let (conn, ctx) = (s.conn, s.ctx);
        self.send_message(
            conn,
            &ctx,
            &Message::RouteRefresh(RouteRefresh::request(family)),
            out,
        );
        Ok(())
    }

    /// `Input::Originate`.
    pub(crate) fn originate(
        &mut self,
        prefix: Prefix,
        attrs: OriginAttributes,
    ) -> Result<(), InputError> {
        if prefix.trunc() != prefix {
            return Err(ConfigError::invalid(
                "originate.prefix",
                prefix.to_string(),
                "a prefix must not have host bits set",
            )
            .into());
        }
        let v6 = Family::of(&prefix) == Family::Ipv6Unicast;
        let next_hop = match attrs.next_hop {
            None => self_next_hop(v6),
            Some(IpAddr::V4(a)) if !v6 => NextHop::V4(a),
            Some(IpAddr::V6(a)) if v6 => NextHop::V6 {
                global: a,
                link_local: None,
            },
            Some(other) => {
                return Err(ConfigError::invalid(
                    "originate.next_hop",
                    other.to_string(),
                    "the next hop must be of the prefix's address family (RFC 8950 is not supported)",
                )
                .into());
            }
        };
        let a = RouteAttrs {
            path: PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::default()),
                local_pref: Some(attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)),
                multi_exit_disc: attrs.med,
                communities: attrs.communities,
                large_communities: attrs.large_communities,
                ..PathAttributes::default()
            },
            next_hop,
        };
        let a = self.interner.intern(a);
        self.set_path(
            prefix,
            Path {
                raw: a.clone(),
                attrs: Some(a),
                peer: LOCAL,
                flags: 0,
            },
        );
        Ok(())
    }

    /// `Input::WithdrawOrigin`.
    pub(crate) fn withdraw_origin(&mut self, prefix: Prefix) {
        self.withdraw_prefix(LOCAL, &prefix);
    }
}
