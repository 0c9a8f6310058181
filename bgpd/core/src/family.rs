//! The address families the speaker carries (IPv4 and IPv6 unicast) and small sets of them.

use std::fmt;

use bgp_wire::{AfiSafi, Prefix};

/// An address family the speaker exchanges routes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4 unicast (AFI 1, SAFI 1).
    Ipv4Unicast,
    /// IPv6 unicast (AFI 2, SAFI 1).
    Ipv6Unicast,
}

impl Family {
    /// Both families, in a fixed order.
    pub const ALL: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

    /// The wire AFI/SAFI.
    pub fn afi_safi(self) -> AfiSafi {
        match self {
            Family::Ipv4Unicast => AfiSafi::IPV4_UNICAST,
            Family::Ipv6Unicast => AfiSafi::IPV6_UNICAST,
        }
    }

    /// The family of a wire AFI/SAFI, if the speaker carries it.
    pub fn from_afi_safi(af: AfiSafi) -> Option<Family> {
        match af {
            AfiSafi::IPV4_UNICAST => Some(Family::Ipv4Unicast),
            AfiSafi::IPV6_UNICAST => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    /// The family a prefix belongs to.
    pub fn of(prefix: &Prefix) -> Family {
        match prefix {
            Prefix::V4(_) => Family::Ipv4Unicast,
            Prefix::V6(_) => Family::Ipv6Unicast,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Family::Ipv4Unicast => 0,
            Family::Ipv6Unicast => 1,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.afi_safi(), f)
    }
}

/// A set of [`Family`] values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FamilySet(u8);

impl FamilySet {
    /// No family.
    pub const EMPTY: FamilySet = FamilySet(0);
    /// IPv4 unicast only.
    pub const IPV4: FamilySet = FamilySet(1);
    /// IPv6 unicast only.
    pub const IPV6: FamilySet = FamilySet(2);
    /// Both.
    pub const BOTH: FamilySet = FamilySet(3);

    fn bit(f: Family) -> u8 {
        1 << f.index()
    }

    /// Whether `f` is in the set.
    pub fn contains(self, f: Family) -> bool {
        self.0 & Self::bit(f) != 0
    }

    /// Adds `f`.
    pub fn insert(&mut self, f: Family) {
        self.0 |= Self::bit(f);
    }

    /// Removes `f`.
    pub fn remove(&mut self, f: Family) {
        self.0 &= !Self::bit(f);
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Families in both sets.
    pub fn intersection(self, other: FamilySet) -> FamilySet {
        FamilySet(self.0 & other.0)
    }

    /// Whether every family of `other` is in `self`.
    pub fn is_superset(self, other: FamilySet) -> bool {
        self.0 & other.0 == other.0
    }

    /// The families, in [`Family::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Family> {
        Family::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl FromIterator<Family> for FamilySet {
    fn from_iter<I: IntoIterator<Item = Family>>(iter: I) -> Self {
        let mut s = FamilySet::EMPTY;
        for f in iter {
            s.insert(f);
        }
        s
    }
}

impl fmt::Display for FamilySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.iter().map(|x| x.to_string()).collect();
        write!(f, "[{}]", names.join(", "))
    }
}
