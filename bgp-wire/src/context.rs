//! The negotiated facts of one session that decoding and encoding depend on.

use crate::capability::{AddPathMode, Capability};
use crate::iana::AfiSafi;
use crate::open::Open;
use crate::{EXTENDED_MAX_MESSAGE_LEN, MAX_MESSAGE_LEN};

/// Whether the peer is in the local AS (iBGP) or not (eBGP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PeerKind {
    /// eBGP: LOCAL_PREF from this peer is discarded (RFC 7606 §7.5).
    #[default]
    External,
    /// iBGP.
    Internal,
}

/// A small set of the AFI/SAFIs whose NLRI this codec decodes (IPv4/IPv6 unicast and
/// multicast).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AfiSafiSet(u8);

impl AfiSafiSet {
    /// The empty set.
    pub const EMPTY: AfiSafiSet = AfiSafiSet(0);

    fn bit(af: AfiSafi) -> Option<u8> {
        match af {
            AfiSafi::IPV4_UNICAST => Some(1),
            AfiSafi::IPV6_UNICAST => Some(2),
            AfiSafi::IPV4_MULTICAST => Some(4),
            AfiSafi::IPV6_MULTICAST => Some(8),
            _ => None,
        }
    }

    /// Adds a family; returns false (and changes nothing) for a family the codec cannot decode.
    pub fn insert(&mut self, af: AfiSafi) -> bool {
        match Self::bit(af) {
            Some(b) => {
                self.0 |= b;
                true
            }
            None => false,
        }
    }

    /// Whether the family is in the set.
    pub fn contains(&self, af: AfiSafi) -> bool {
        Self::bit(af).is_some_and(|b| self.0 & b != 0)
    }

    /// Builds a set from families (unsupported ones are ignored).
    pub fn from_families(families: impl IntoIterator<Item = AfiSafi>) -> Self {
        let mut set = AfiSafiSet::EMPTY;
        for af in families {
            set.insert(af);
        }
        set
    }
}

/// Negotiated session facts. [`SessionContext::default`] is the state before OPENs are exchanged:
/// 2-octet AS, 4096-octet messages, no ADD-PATH, external peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SessionContext {
    /// Both sides advertised 4-octet AS support (RFC 6793): AS_PATH and AGGREGATOR use 4-octet
    /// AS numbers and AS4_PATH/AS4_AGGREGATOR are neither sent nor accepted.
    pub four_octet_as: bool,
    /// Both sides advertised the Extended Message capability (RFC 8654): UPDATE, NOTIFICATION and
    /// ROUTE-REFRESH may be up to 65535 octets.
    pub extended_message: bool,
    /// Both sides advertised Enhanced Route Refresh (RFC 7313): a bad ROUTE-REFRESH length is
    /// reported with code 7 instead of a header error.
    pub enhanced_route_refresh: bool,
    /// iBGP or eBGP.
    pub peer_kind: PeerKind,
    /// Families whose received NLRI carry a path identifier (we advertised receive, the peer send).
    pub add_path_receive: AfiSafiSet,
    /// Families whose sent NLRI carry a path identifier (we advertised send, the peer receive).
    pub add_path_send: AfiSafiSet,
}

impl SessionContext {
    /// The largest message the session may carry (RFC 4271 §4.1, RFC 8654).
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            EXTENDED_MAX_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }

    /// Negotiates the context from the OPEN we sent and the OPEN we received.
    pub fn negotiate(local: &Open, remote: &Open, peer_kind: PeerKind) -> SessionContext {
        let both = |f: fn(&Capability) -> bool| {
            local.capabilities.iter().any(f) && remote.capabilities.iter().any(f)
        };
        let mut ctx = SessionContext {
            four_octet_as: both(|c| matches!(c, Capability::FourOctetAs(_))),
            extended_message: both(|c| matches!(c, Capability::ExtendedMessage)),
            enhanced_route_refresh: both(|c| matches!(c, Capability::EnhancedRouteRefresh)),
            peer_kind,
            ..SessionContext::default()
        };
        for (af, mode) in local.add_path() {
            let Some(peer) = remote.add_path().find(|(a, _)| *a == af).map(|(_, m)| m) else {
                continue;
            };
            if mode.receives() && peer.sends() {
                ctx.add_path_receive.insert(af);
            }
            if mode.sends() && peer.receives() {
                ctx.add_path_send.insert(af);
            }
        }
        ctx
    }

    /// The context the peer uses to decode what we send with `self` (send and receive swapped),
    /// handy for loopback tests.
    pub fn mirrored(&self) -> SessionContext {
        SessionContext {
            add_path_receive: self.add_path_send,
            add_path_send: self.add_path_receive,
            ..*self
        }
    }
}

impl AddPathMode {
    /// The speaker receives path identifiers for the family.
    pub fn receives(self) -> bool {
        matches!(self, AddPathMode::Receive | AddPathMode::Both)
    }
    /// The speaker sends path identifiers for the family.
    pub fn sends(self) -> bool {
        matches!(self, AddPathMode::Send | AddPathMode::Both)
    }
}
