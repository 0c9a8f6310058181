//! The route tables: one prefix table whose entries (destinations) hold every peer's path for
//! the prefix (the Adj-RIBs-In, pre- and post-policy) with the Loc-RIB selection at the front,
//! and the per-peer Adj-RIB-Out.
//!
//! Memory layout, per prefix: a 56-octet [`Dest`] in a paged slab (no doubling slack), a 4-octet
//! id in a hash index, and per path a 24-octet [`Path`] holding two interned attribute pointers.
//! Each Adj-RIB-Out entry is one 8-octet pointer in a paged array indexed by the prefix id.

use std::sync::Arc;

use bgp_wire::Prefix;
use hashbrown::HashTable;

use crate::attrs::RouteAttrs;
use crate::decision::DecisionReason;
use crate::family::Family;
use crate::hash::hash_one;

/// Index of a destination in the [`Table`].
pub(crate) type DestId = u32;

/// Peer slot of our own originations.
pub(crate) const LOCAL: u16 = 0;

/// Path flag: kept from a session that went down, awaiting its return (RFC 4724).
pub(crate) const STALE: u8 = 1;
/// Path flag: awaiting re-advertisement during an enhanced route refresh (RFC 7313).
pub(crate) const REFRESH_STALE: u8 = 2;

/// One peer's path to a prefix.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    /// Attributes as received (pre-policy).
    pub raw: Arc<RouteAttrs>,
    /// Attributes after checks and import policy; `None` when rejected (kept for soft
    /// reconfiguration).
    pub attrs: Option<Arc<RouteAttrs>>,
    /// Peer slot ([`LOCAL`] for our own).
    pub peer: u16,
    /// [`STALE`], [`REFRESH_STALE`].
    pub flags: u8,
}

/// The paths of a destination; one inline, more in a vector.
#[derive(Debug, Default)]
pub(crate) enum Paths {
    #[default]
    Empty,
    One(Path),
    Many(Vec<Path>),
}

impl Paths {
    pub(crate) fn as_slice(&self) -> &[Path] {
        match self {
            Paths::Empty => &[],
            Paths::One(p) => std::slice::from_ref(p),
            Paths::Many(v) => v,
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [Path] {
        match self {
            Paths::Empty => &mut [],
            Paths::One(p) => std::slice::from_mut(p),
            Paths::Many(v) => v,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Paths::Empty)
    }

    /// Replaces the path of `path.peer` or adds it; returns the old one.
    pub(crate) fn upsert(&mut self, path: Path) -> Option<Path> {
        if let Some(slot) = self.as_mut_slice().iter_mut().find(|p| p.peer == path.peer) {
            return Some(std::mem::replace(slot, path));
        }
        *self = match std::mem::take(self) {
            Paths::Empty => Paths::One(path),
            Paths::One(p) => Paths::Many(vec![p, path]),
            Paths::Many(mut v) => {
                v.push(path);
                Paths::Many(v)
            }
        };
        None
    }

    /// Removes the path of `peer`.
    pub(crate) fn remove(&mut self, peer: u16) -> Option<Path> {
        match std::mem::take(self) {
            Paths::Empty => None,
            Paths::One(p) if p.peer == peer => Some(p),
            Paths::One(p) => {
                *self = Paths::One(p);
                None
            }
            Paths::Many(mut v) => {
                let removed = v.iter().position(|p| p.peer == peer).map(|i| v.remove(i));
                *self = match v.len() {
                    0 => Paths::Empty,
                    1 => v.pop().map_or(Paths::Empty, Paths::One),
                    _ => Paths::Many(v),
                };
                removed
            }
        }
    }

    /// Reorders the paths by `rank` (lower first; stable).
    pub(crate) fn reorder(&mut self, rank: impl Fn(&Path) -> usize) {
        if let Paths::Many(v) = self {
            v.sort_by_key(|p| rank(p));
        }
    }
}

/// Destination flag: queued for the decision process.
pub(crate) const DIRTY: u8 = 1;
/// Destination flag: the slot is in use.
pub(crate) const LIVE: u8 = 2;

/// One prefix: its paths (selected ones first) and the selection.
#[derive(Debug)]
pub(crate) struct Dest {
    pub prefix: Prefix,
    /// Number of selected paths at the front of `paths` (0: unreachable).
    pub selected: u8,
    /// Why `paths[0]` won.
    pub reason: DecisionReason,
    pub flags: u8,
    pub paths: Paths,
}

impl Dest {
    /// The selected paths (best first, then the rest of the ECMP set).
    pub(crate) fn selection(&self) -> &[Path] {
        let all = self.paths.as_slice();
        all.get(..usize::from(self.selected)).unwrap_or(all)
    }

    /// The best path, if any.
    pub(crate) fn best(&self) -> Option<&Path> {
        self.selection().first()
    }

    pub(crate) fn family(&self) -> Family {
        Family::of(&self.prefix)
    }
}

const PAGE: usize = 4096;

/// The prefix table: a paged slab of [`Dest`]s and a hash index from prefix to id.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pages: Vec<Vec<Dest>>,
    free: Vec<DestId>,
    index: HashTable<DestId>,
}

fn split(id: DestId) -> (usize, usize) {
    let id = id as usize;
    (id / PAGE, id % PAGE)
}

impl Table {
    pub(crate) fn get(&self, id: DestId) -> Option<&Dest> {
        let (p, i) = split(id);
        self.pages.get(p)?.get(i).filter(|d| d.flags & LIVE != 0)
    }

    pub(crate) fn get_mut(&mut self, id: DestId) -> Option<&mut Dest> {
        let (p, i) = split(id);
        self.pages
            .get_mut(p)?
            .get_mut(i)
            .filter(|d| d.flags & LIVE != 0)
    }

    /// The id of `prefix`, if present.
    pub(crate) fn find(&self, prefix: &Prefix) -> Option<DestId> {
        let pages = &self.pages;
        self.index
            .find(hash_one(prefix), |&id| {
                let (p, i) = split(id);
                pages.get(p).and_then(|pg| pg.get(i)).map(|d| &d.prefix) == Some(prefix)
            })
            .copied()
    }

    /// The id of `prefix`, inserting an empty destination if absent.
    pub(crate) fn find_or_insert(&mut self, prefix: Prefix) -> DestId {
        if let Some(id) = self.find(&prefix) {
            return id;
        }
        let dest = Dest {
            prefix,
            selected: 0,
            reason: DecisionReason::OnlyPath,
            flags: LIVE,
            paths: Paths::Empty,
        };
        let id = match self.free.pop() {
            Some(id) => {
                let (p, i) = split(id);
                if let Some(slot) = self.pages.get_mut(p).and_then(|pg| pg.get_mut(i)) {
                    *slot = dest;
                }
                id
            }
            None => {
                if self.pages.last().is_none_or(|pg| pg.len() == PAGE) {
                    self.pages.push(Vec::with_capacity(PAGE));
                }
                let p = self.pages.len() - 1;
                let page = &mut self.pages[p];
                page.push(dest);
                (p * PAGE + page.len() - 1) as DestId
            }
        };
        let pages = &self.pages;
        self.index.insert_unique(hash_one(&prefix), id, |&id| {
            let (p, i) = split(id);
            pages
                .get(p)
                .and_then(|pg| pg.get(i))
                .map_or(0, |d| hash_one(&d.prefix))
        });
        id
    }

    /// Frees an empty destination.
    pub(crate) fn release(&mut self, id: DestId) {
        let Some(prefix) = self
            .get(id)
            .filter(|d| d.paths.is_empty())
            .map(|d| d.prefix)
        else {
            return;
        };
        if let Ok(entry) = self.index.find_entry(hash_one(&prefix), |&x| x == id) {
            entry.remove();
        }
        let (p, i) = split(id);
        if let Some(d) = self.pages.get_mut(p).and_then(|pg| pg.get_mut(i)) {
            d.flags = 0;
            d.selected = 0;
        }
        self.free.push(id);
    }

    /// Ids of the live destinations, ascending.
    pub(crate) fn ids(&self) -> impl Iterator<Item = DestId> + '_ {
        self.pages.iter().enumerate().flat_map(|(p, pg)| {
            pg.iter()
                .enumerate()
                .filter(|(_, d)| d.flags & LIVE != 0)
                .map(move |(i, _)| (p * PAGE + i) as DestId)
        })
    }

    /// Number of live destinations.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}

const OUT_PAGE: usize = 1024;

/// One page of an Adj-RIB-Out.
type OutPage = Box<[Option<Arc<RouteAttrs>>]>;

/// What was last advertised to one peer: an attribute pointer per prefix id.
#[derive(Debug, Default)]
pub(crate) struct AdjRibOut {
    pages: Vec<Option<OutPage>>,
    count: [u32; 2],
}

impl AdjRibOut {
    pub(crate) fn get(&self, id: DestId) -> Option<&Arc<RouteAttrs>> {
        let (p, i) = (id as usize / OUT_PAGE, id as usize % OUT_PAGE);
        self.pages.get(p)?.as_ref()?.get(i)?.as_ref()
    }

    /// Sets the entry for `id` (of family `f`); returns the old one.
    pub(crate) fn set(
        &mut self,
        id: DestId,
        f: Family,
        v: Option<Arc<RouteAttrs>>,
    ) -> Option<Arc<RouteAttrs>> {
        let (p, i) = (id as usize / OUT_PAGE, id as usize % OUT_PAGE);
        if self.pages.len() <= p {
            v.as_ref()?;
            self.pages.resize_with(p + 1, || None);
        }
        let page = self.pages[p].get_or_insert_with(|| vec![None; OUT_PAGE].into_boxed_slice());
        let slot = &mut page[i];
        let added = v.is_some();
        let old = std::mem::replace(slot, v);
        let c = &mut self.count[f.index()];
        match (old.is_some(), added) {
            (false, true) => *c += 1,
            (true, false) => *c = c.saturating_sub(1),
            _ => {}
        }
        old
    }

    /// Entries in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (DestId, &Arc<RouteAttrs>)> + '_ {
        self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.iter().flat_map(move |pg| {
                pg.iter()
                    .enumerate()
                    .filter_map(move |(i, a)| a.as_ref().map(|a| ((p * OUT_PAGE + i) as DestId, a)))
            })
        })
    }

    /// Entries of a family.
    pub(crate) fn count(&self, f: Family) -> u32 {
        self.count[f.index()]
    }

    pub(crate) fn clear(&mut self) {
        self.pages.clear();
        self.count = [0; 2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_wire::{NextHop, PathAttributes};
    use std::net::Ipv4Addr;

    fn path(peer: u16) -> Path {
        let a = Arc::new(RouteAttrs {
            path: PathAttributes::default(),
            next_hop: NextHop::V4(Ipv4Addr::LOCALHOST),
        });
        Path {
            raw: a.clone(),
            attrs: Some(a),
            peer,
            flags: 0,
        }
    }

    #[test]
    fn the_per_route_structures_stay_small() {
        assert!(size_of::<Path>() <= 24);
        assert!(size_of::<Dest>() <= 56, "{}", size_of::<Dest>());
    }

    #[test]
    fn paths_upsert_replace_and_remove_by_peer() {
        let mut ps = Paths::Empty;
        assert!(ps.upsert(path(1)).is_none());
        assert!(ps.upsert(path(2)).is_none());
        assert!(ps.upsert(path(1)).is_some());
        assert_eq!(ps.as_slice().len(), 2);
        assert!(ps.remove(1).is_some());
        assert!(matches!(ps, Paths::One(_)));
        assert!(ps.remove(3).is_none());
        assert!(ps.remove(2).is_some());
        assert!(ps.is_empty());
    }

    #[test]
    fn released_ids_are_reused_and_lookups_follow() {
        let mut t = Table::default();
        let a: Prefix = "10.0.0.0/24".parse().unwrap();
        let b: Prefix = "10.0.1.0/24".parse().unwrap();
        let ia = t.find_or_insert(a);
        let ib = t.find_or_insert(b);
        assert_ne!(ia, ib);
        assert_eq!(t.find(&a), Some(ia));
        t.release(ia);
        assert_eq!(t.find(&a), None);
        let c: Prefix = "2001:db8::/64".parse().unwrap();
        assert_eq!(t.find_or_insert(c), ia);
        assert_eq!(t.find(&c), Some(ia));
        assert_eq!(t.find(&b), Some(ib));
        assert_eq!(t.ids().collect::<Vec<_>>(), vec![ia.min(ib), ia.max(ib)]);
    }

    #[test]
    fn adj_rib_out_counts_entries_per_family() {
        let mut out = AdjRibOut::default();
        let a = path(1).raw;
        out.set(5000, Family::Ipv4Unicast, Some(a.clone()));
        out.set(7, Family::Ipv6Unicast, Some(a.clone()));
        assert_eq!(out.count(Family::Ipv4Unicast), 1);
        assert_eq!(
            out.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            vec![7, 5000]
        );
        assert!(out.set(5000, Family::Ipv4Unicast, None).is_some());
        assert_eq!(out.count(Family::Ipv4Unicast), 0);
    }
}
