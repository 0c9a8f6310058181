//! Routes going out: the decision process over queued destinations, `BestPathChanged`, and per
//! peer the export rules (iBGP split horizon, route reflection per RFC 4456, well-known
//! communities, export policy), attribute rewriting (AS prepend, LOCAL_PREF, MED,
//! ORIGINATOR_ID/CLUSTER_LIST, next hop) and the Adj-RIB-Out diff packed into UPDATEs grouped
//! by attribute set.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bgp_wire::{
    Community, Message, NextHop, Nlri, Prefix, RouteRefresh, RouteRefreshSubtype, SessionContext,
    end_of_rib, pack_announce, pack_withdraw,
};
use bytes::Bytes;

use crate::attrs::{DEFAULT_LOCAL_PREF, RouteAttrs};
use crate::config::{NextHopMode, is_link_local};
use crate::decision::{DecisionInput, decide};
use crate::driver::{Action, RoutePath};
use crate::family::Family;
use crate::hash::FxBuild;
use crate::policy::{
    Outcome, PeerType, Policy, PolicyContext, RouteSource, Verdict, apply_operations,
};
use crate::rib::{Dest, DestId, LOCAL};
use crate::speaker::{Speaker, push_frames};
use crate::time::Instant;

/// Outbound changes for one peer, grouped by family and attribute set in first-seen order.
#[derive(Default)]
struct Batch {
    withdraw: [Vec<Nlri>; 2],
    announce: [Vec<(Arc<RouteAttrs>, Vec<Nlri>)>; 2],
    groups: HashMap<usize, usize, FxBuild>,
}

impl Batch {
    fn announce(&mut self, f: Family, attrs: &Arc<RouteAttrs>, prefix: Prefix) {
        let list = &mut self.announce[f.index()];
        let key = Arc::as_ptr(attrs) as usize;
        let i = *self.groups.entry(key).or_insert_with(|| {
            list.push((attrs.clone(), Vec::new()));
            list.len() - 1
        });
        if let Some((_, nlri)) = list.get_mut(i) {
            nlri.push(Nlri::new(prefix));
        }
    }

    fn withdraw(&mut self, f: Family, prefix: Prefix) {
        self.withdraw[f.index()].push(Nlri::new(prefix));
    }

    fn encode(self, ctx: &SessionContext) -> Vec<Bytes> {
        let mut frames = Vec::new();
        for f in Family::ALL {
            let af = f.afi_safi();
            let w = &self.withdraw[f.index()];
            match pack_withdraw(ctx, af, w) {
                Ok(m) => frames.extend(m),
                Err(e) => tracing::error!(error = %e, "cannot encode withdrawals"),
            }
            for (attrs, nlri) in &self.announce[f.index()] {
                match pack_announce(ctx, af, &attrs.path, attrs.next_hop, nlri) {
                    Ok(m) => frames.extend(m),
                    Err(e) => {
                        tracing::error!(error = %e, count = nlri.len(), "cannot encode routes")
                    }
                }
            }
        }
        frames
    }
}

/// Cache key of an export transformation: source attributes, source slot, policy outcome.
type ExportKey = (usize, u16, Outcome);

impl Speaker {
    /// Runs the decision process over the queued destinations and advertises the changes.
    pub(crate) fn flush(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.deferring {
            return;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let mut changed: Vec<DestId> = Vec::new();
        let mut empty: Vec<DestId> = Vec::new();
        {
            let costs = &self.nh_costs;
            let cost = |a: IpAddr| costs.get(&a).copied();
            let input = DecisionInput {
                cfg: &self.cfg.decision,
                facts: &self.facts,
                local_as: self.cfg.local_as,
                router_id: self.cfg.router_id,
                cost: &cost,
            };
            for (id, snap) in dirty {
                let Some(d) = self.table.get_mut(id) else {
                    continue;
                };
                d.flags &= !crate::rib::DIRTY;
                decide(d, &input);
                let sel = d.selection();
                let same = sel.len() == snap.len()
                    && sel.iter().zip(&snap).all(|(p, (peer, a))| {
                        p.peer == *peer && p.attrs.as_ref().is_some_and(|x| Arc::ptr_eq(x, a))
                    });
                if d.paths.is_empty() {
                    empty.push(id);
                }
                if same {
                    continue;
                }
                let paths = sel
                    .iter()
                    .filter_map(|p| {
                        Some(RoutePath {
                            peer: (p.peer != LOCAL)
                                .then(|| self.facts.get(usize::from(p.peer)).copied().flatten())
                                .flatten()
                                .map(|f| f.address),
                            attrs: p.attrs.clone()?,
                        })
                    })
                    .collect();
                out.push(Action::BestPathChanged {
                    prefix: d.prefix,
                    paths,
                });
                changed.push(id);
            }
        }
        let pending: Vec<u16> = self.pending_sync.iter().map(|(s, _)| *s).collect();
        if !changed.is_empty() {
            for slot in self.slots() {
                let synced = self
                    .peer(slot)
                    .and_then(|p| p.session.as_ref())
                    .is_some_and(|s| s.synced);
                if synced && !pending.contains(&slot) {
                    self.export_ids(now, slot, &changed, out);
                }
            }
        }
        let mut syncs = std::mem::take(&mut self.pending_sync);
        syncs.sort_by_key(|(s, _)| *s);
        syncs.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 |= b.1;
                true
            } else {
                false
            }
        });
        for (slot, eor) in syncs {
            self.full_sync(now, slot, eor, out);
        }
        for id in empty {
            if self
                .table
                .get(id)
                .is_some_and(|d| d.paths.is_empty() && d.flags & crate::rib::DIRTY == 0)
            {
                self.table.release(id);
            }
        }
    }

    /// Sends a peer everything (diffed against its Adj-RIB-Out), then End-of-RIB if asked.
    pub(crate) fn full_sync(&mut self, now: Instant, slot: u16, eor: bool, out: &mut Vec<Action>) {
        let Some(s) = self.peer(slot).and_then(|p| p.session.as_ref()) else {
            return;
        };
        let (conn, ctx, families) = (s.conn, s.ctx, s.families);
        let ids: Vec<DestId> = self.table.ids().collect();
        self.export_ids(now, slot, &ids, out);
        if eor {
            let mut frames = Vec::new();
            for f in families.iter() {
                match end_of_rib(&ctx, f.afi_safi()) {
                    Ok(b) => frames.push(b),
                    Err(e) => tracing::error!(error = %e, "cannot encode End-of-RIB"),
                }
            }
            push_frames(out, conn, frames);
        }
        if let Some(s) = self.peer_mut(slot).and_then(|p| p.session.as_mut()) {
            s.synced = true;
            if eor {
                s.eor_sent = families;
            }
        }
    }

    /// Re-sends the Adj-RIB-Out of a family (answer to ROUTE-REFRESH; BoRR/EoRR around it
    /// when Enhanced Route Refresh is negotiated).
    pub(crate) fn resend_adj_out(
        &mut self,
        now: Instant,
        slot: u16,
        f: Family,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.peer(slot) else {
            return;
        };
        let Some(s) = p.session.as_ref() else {
            return;
        };
        let (conn, ctx, enhanced) = (s.conn, s.ctx, s.enhanced_route_refresh);
        let marker = |subtype| {
            Speaker::encode(
                &Message::RouteRefresh(RouteRefresh {
                    afi_safi: f.afi_safi(),
                    subtype,
                }),
                &ctx,
            )
        };
        let mut frames = Vec::new();
        if enhanced {
            frames.extend(marker(RouteRefreshSubtype::BeginningOfRib));
        }
        let mut batch = Batch::default();
        for (id, a) in p.adj_out.iter() {
            if let Some(d) = self.table.get(id).filter(|d| d.family() == f) {
                batch.announce(f, a, d.prefix);
            }
        }
        frames.extend(batch.encode(&ctx));
        if enhanced {
            frames.extend(marker(RouteRefreshSubtype::EndOfRib));
        }
        push_frames(out, conn, frames);
        self.restart_keepalive(now, conn);
    }

    /// Exports the given destinations to a peer and sends the difference.
    fn export_ids(&mut self, now: Instant, slot: u16, ids: &[DestId], out: &mut Vec<Action>) {
        let Some(p) = self.peer_mut(slot) else {
            return;
        };
        let Some(s) = p.session.as_ref() else {
            return;
        };
        let (conn, ctx, families) = (s.conn, s.ctx, s.families);
        let policy = std::mem::take(&mut p.cfg.export_policy);
        let mut adj_out = std::mem::take(&mut p.adj_out);
        let mut cache: HashMap<ExportKey, Option<Arc<RouteAttrs>>, FxBuild> = HashMap::default();
        let mut batch = Batch::default();
        for &id in ids {
            let Some(d) = self.table.get(id) else {
                continue;
            };
            let f = d.family();
            if !families.contains(f) {
                continue;
            }
            let prefix = d.prefix;
            let desired = match self.export_decision(slot, d, &policy) {
                None => None,
                Some((src_attrs, src, outcome)) => {
                    let key = (Arc::as_ptr(&src_attrs) as usize, src, outcome);
                    match cache.get(&key) {
                        Some(a) => a.clone(),
                        None => {
                            let a = self
                                .transform(slot, src, &src_attrs, policy.operations(outcome), f)
                                .map(|a| self.interner.intern(a));
                            cache.insert(key, a.clone());
                            a
                        }
                    }
                }
            };
            let old = adj_out.get(id);
            match (old, desired) {
                (Some(o), Some(n)) if Arc::ptr_eq(o, &n) => {}
                (_, Some(n)) => {
                    batch.announce(f, &n, prefix);
                    adj_out.set(id, f, Some(n));
                }
                (Some(_), None) => {
                    batch.withdraw(f, prefix);
                    adj_out.set(id, f, None);
                }
                (None, None) => {}
            }
        }
        if let Some(p) = self.peer_mut(slot) {
            p.cfg.export_policy = policy;
            p.adj_out = adj_out;
        }
        let frames = batch.encode(&ctx);
        if !frames.is_empty() {
            push_frames(out, conn, frames);
            self.restart_keepalive(now, conn);
        }
    }

    /// Whether the best path of `d` goes to peer `slot`, and with which policy outcome.
    fn export_decision(
        &self,
        slot: u16,
        d: &Dest,
        policy: &Policy,
    ) -> Option<(Arc<RouteAttrs>, u16, Outcome)> {
        let best = d.best()?;
        let attrs = best.attrs.clone()?;
        let src = best.peer;
        if src == slot {
            return None;
        }
        let dst = self.peer(slot)?;
        if src != LOCAL {
            let src_ebgp = self.facts.get(usize::from(src)).copied().flatten()?.ebgp;
            let src_client = self.peer(src).is_some_and(|p| p.cfg.route_reflector_client);
            // iBGP split horizon; route reflection (RFC 4456 §6): from a client to everyone,
            // from a non-client to clients only.
            if !src_ebgp && !dst.ebgp && !src_client && !dst.cfg.route_reflector_client {
                return None;
            }
        }
        let cs = &attrs.path.communities;
        if cs.contains(&Community::NO_ADVERTISE)
            || (dst.ebgp
                && (cs.contains(&Community::NO_EXPORT)
                    || cs.contains(&Community::NO_EXPORT_SUBCONFED)))
        {
            return None;
        }
        let ctx = PolicyContext {
            peer_type: if dst.ebgp {
                PeerType::External
            } else {
                PeerType::Internal
            },
            source: if src == LOCAL {
                RouteSource::Local
            } else {
                RouteSource::Remote
            },
        };
        let outcome = if policy.is_trivial() {
            Outcome {
                verdict: policy.default_action,
                rule: None,
            }
        } else {
            policy.evaluate(&d.prefix, &attrs, ctx)
        };
        (outcome.verdict == Verdict::Accept).then_some((attrs, src, outcome))
    }

    /// The attributes sent to peer `slot` for a route from `src`.
    fn transform(
        &self,
        slot: u16,
        src: u16,
        a: &RouteAttrs,
        ops: &[crate::policy::Operation],
        f: Family,
    ) -> Option<RouteAttrs> {
        let dst = self.peer(slot)?;
        let local_route = src == LOCAL;
        let src_facts = self.facts.get(usize::from(src)).copied().flatten();
        let src_ibgp = !local_route && src_facts.is_some_and(|s| !s.ebgp);
        let mut o = a.clone();
        if dst.ebgp {
            o.path
                .as_path
                .get_or_insert_with(Default::default)
                .prepend(dst.local_as);
            o.path.local_pref = None;
            if !local_route {
                // MED is not passed on to other ASes (RFC 4271 §5.1.4).
                o.path.multi_exit_disc = None;
            }
            o.path.originator_id = None;
            o.path.cluster_list.clear();
        } else {
            o.path.local_pref.get_or_insert(DEFAULT_LOCAL_PREF);
            if src_ibgp {
                // Reflection (RFC 4456 §8).
                if o.path.originator_id.is_none() {
                    o.path.originator_id = src_facts.map(|s| s.remote_id);
                }
                o.path.cluster_list.insert(0, self.cfg.cluster_id());
            }
        }
        let use_self = match dst.cfg.next_hop_mode {
            NextHopMode::Auto => dst.ebgp || local_route,
            NextHopMode::SelfAddress => true,
            NextHopMode::Keep => false,
        };
        let has_override = local_route && !a.next_hop_is_self();
        if a.next_hop_is_self() || (use_self && !has_override) {
            o.next_hop = self.own_next_hop(slot, f)?;
        }
        apply_operations(&mut o, ops, dst.local_as);
        if o.next_hop_addr() == dst.cfg.address {
            return None;
        }
        Some(o)
    }

    /// Our next hop towards peer `slot` for family `f`.
    fn own_next_hop(&self, slot: u16, f: Family) -> Option<NextHop> {
        let p = self.peer(slot)?;
        let local = p.session.as_ref()?.local.ip();
        match f {
            Family::Ipv4Unicast => {
                let a = p.cfg.next_hop_v4.or(match local {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })?;
                Some(NextHop::V4(a))
            }
            Family::Ipv6Unicast => {
                let (session_global, session_ll) = match local {
                    IpAddr::V6(a) if is_link_local(a) => (None, Some(a)),
                    IpAddr::V6(a) => (Some(a), None),
                    IpAddr::V4(_) => (None, None),
                };
                let ll = p.cfg.link_local_next_hop.or(session_ll);
                let global = p.cfg.next_hop_v6.or(session_global).or(ll)?;
                Some(NextHop::V6 {
                    global,
                    link_local: ll.filter(|l| *l != global),
                })
            }
        }
    }
}
