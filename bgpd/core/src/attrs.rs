//! Route attributes as the RIBs hold them, and the interner that makes every distinct attribute
//! set exist once: a million routes sharing one set share one allocation.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bgp_wire::{NextHop, Origin, PathAttributes};

use crate::hash::FxBuild;

/// The attributes of one route: the path attributes (with `path.next_hop` always `None`) and the
/// next hop, whichever field it came in (NEXT_HOP or MP_REACH_NLRI). Interned: compare with
/// [`Arc::ptr_eq`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    /// Path attributes other than the next hop.
    pub path: PathAttributes,
    /// The next hop. For our own originations without an override it is the unspecified
    /// address, meaning "the session's own address" on export.
    pub next_hop: NextHop,
}

impl RouteAttrs {
    /// LOCAL_PREF, defaulting to 100 (RFC 4271 §5.1.5 leaves the default to the operator; 100
    /// is what BIRD, FRR and GoBGP use).
    pub fn local_pref(&self) -> u32 {
        self.path.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)
    }

    /// MULTI_EXIT_DISC, a missing one counting as 0 (RFC 4271 §9.1.2.2 c).
    pub fn med(&self) -> u32 {
        self.path.multi_exit_disc.unwrap_or(0)
    }

    /// ORIGIN, defaulting to INCOMPLETE when absent.
    pub fn origin(&self) -> Origin {
        self.path.origin.unwrap_or(Origin::Incomplete)
    }

    /// AS path length for the decision process.
    pub fn as_path_len(&self) -> usize {
        self.path.as_path.as_ref().map_or(0, |p| p.path_len())
    }

    /// The next hop as one address: IPv4, or the IPv6 global (link-local if the global is
    /// unspecified).
    pub fn next_hop_addr(&self) -> IpAddr {
        next_hop_addr(&self.next_hop)
    }

    /// Whether the next hop is the "our own address" placeholder.
    pub fn next_hop_is_self(&self) -> bool {
        self.next_hop_addr().is_unspecified()
    }
}

/// The default LOCAL_PREF.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The next hop as one address (see [`RouteAttrs::next_hop_addr`]).
pub fn next_hop_addr(nh: &NextHop) -> IpAddr {
    match *nh {
        NextHop::V4(a) => IpAddr::V4(a),
        NextHop::V6 { global, link_local } => match link_local {
            Some(ll) if global.is_unspecified() => IpAddr::V6(ll),
            _ => IpAddr::V6(global),
        },
    }
}

/// The "use our own address" next-hop placeholder for a family.
pub(crate) fn self_next_hop(v6: bool) -> NextHop {
    if v6 {
        NextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: None,
        }
    } else {
        NextHop::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// The interner: one `Arc` per distinct [`RouteAttrs`]. Unused sets are swept when the table
/// has doubled since the last sweep (amortized O(1); never observable in outputs).
#[derive(Debug, Default)]
pub(crate) struct Interner {
    set: HashSet<Arc<RouteAttrs>, FxBuild>,
    swept_at: usize,
}

impl Interner {
    /// The shared copy of `attrs`.
    pub(crate) fn intern(&mut self, attrs: RouteAttrs) -> Arc<RouteAttrs> {
        if let Some(a) = self.set.get(&attrs) {
            return a.clone();
        }
        if self.set.len() >= self.swept_at.max(1024) * 2 {
            self.sweep();
        }
        let a = Arc::new(attrs);
        self.set.insert(a.clone());
        a
    }

    /// Drops the sets nobody but the interner holds.
    pub(crate) fn sweep(&mut self) {
        self.set.retain(|a| Arc::strong_count(a) > 1);
        self.swept_at = self.set.len();
    }

    /// Number of interned sets (including not yet swept unused ones).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(lp: u32) -> RouteAttrs {
        RouteAttrs {
            path: PathAttributes {
                local_pref: Some(lp),
                ..PathAttributes::default()
            },
            next_hop: NextHop::V4(Ipv4Addr::new(10, 0, 0, 1)),
        }
    }

    #[test]
    fn equal_attribute_sets_share_one_allocation() {
        let mut i = Interner::default();
        let a = i.intern(attrs(100));
        let b = i.intern(attrs(100));
        let c = i.intern(attrs(200));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn a_sweep_drops_only_unused_sets() {
        let mut i = Interner::default();
        let a = i.intern(attrs(1));
        drop(i.intern(attrs(2)));
        i.sweep();
        assert_eq!(i.len(), 1);
        assert!(Arc::ptr_eq(&a, &i.intern(attrs(1))));
    }
}
