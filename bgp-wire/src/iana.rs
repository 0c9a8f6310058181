//! IANA code points used on the wire: message types, AFI/SAFI, capability codes, path attribute
//! type codes and flags, and NOTIFICATION error codes and subcodes.

use std::fmt;

/// BGP message types (RFC 4271 §4.1, RFC 2918 §3).
pub mod message_type {
    /// OPEN (RFC 4271 §4.2).
    pub const OPEN: u8 = 1;
    /// UPDATE (RFC 4271 §4.3).
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION (RFC 4271 §4.5).
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE (RFC 4271 §4.4).
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH (RFC 2918 §3).
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Address Family Identifiers (IANA "Address Family Numbers").
pub mod afi {
    /// IPv4.
    pub const IPV4: u16 = 1;
    /// IPv6.
    pub const IPV6: u16 = 2;
}

/// Subsequent Address Family Identifiers (RFC 4760 §6).
pub mod safi {
    /// Unicast forwarding.
    pub const UNICAST: u8 = 1;
    /// Multicast forwarding (RPF).
    pub const MULTICAST: u8 = 2;
}

/// Capability codes (RFC 5492 and the IANA "Capability Codes" registry).
pub mod capability {
    /// Multiprotocol Extensions (RFC 4760).
    pub const MULTIPROTOCOL: u8 = 1;
    /// Route Refresh (RFC 2918).
    pub const ROUTE_REFRESH: u8 = 2;
    /// Extended Next Hop Encoding (RFC 8950).
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    /// BGP Extended Message (RFC 8654).
    pub const EXTENDED_MESSAGE: u8 = 6;
    /// Graceful Restart (RFC 4724).
    pub const GRACEFUL_RESTART: u8 = 64;
    /// Support for 4-octet AS number (RFC 6793).
    pub const FOUR_OCTET_AS: u8 = 65;
    /// ADD-PATH (RFC 7911).
    pub const ADD_PATH: u8 = 69;
    /// Enhanced Route Refresh (RFC 7313).
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    /// FQDN / hostname (draft-walton-bgp-hostname-capability).
    pub const FQDN: u8 = 73;
}

/// OPEN optional parameter types (RFC 5492 §4, RFC 9072).
pub mod open_param {
    /// Capabilities optional parameter (RFC 5492).
    pub const CAPABILITIES: u8 = 2;
    /// Marker in the Non-Ext OP Type position announcing the extended format (RFC 9072 §2).
    pub const EXTENDED_LENGTH: u8 = 255;
}

/// Path attribute type codes.
pub mod attr {
    /// ORIGIN (RFC 4271 §5.1.1).
    pub const ORIGIN: u8 = 1;
    /// AS_PATH (RFC 4271 §5.1.2).
    pub const AS_PATH: u8 = 2;
    /// NEXT_HOP (RFC 4271 §5.1.3).
    pub const NEXT_HOP: u8 = 3;
    /// MULTI_EXIT_DISC (RFC 4271 §5.1.4).
    pub const MULTI_EXIT_DISC: u8 = 4;
    /// LOCAL_PREF (RFC 4271 §5.1.5).
    pub const LOCAL_PREF: u8 = 5;
    /// ATOMIC_AGGREGATE (RFC 4271 §5.1.6).
    pub const ATOMIC_AGGREGATE: u8 = 6;
    /// AGGREGATOR (RFC 4271 §5.1.7).
    pub const AGGREGATOR: u8 = 7;
    /// COMMUNITIES (RFC 1997).
    pub const COMMUNITIES: u8 = 8;
    /// ORIGINATOR_ID (RFC 4456).
    pub const ORIGINATOR_ID: u8 = 9;
    /// CLUSTER_LIST (RFC 4456).
    pub const CLUSTER_LIST: u8 = 10;
    /// MP_REACH_NLRI (RFC 4760).
    pub const MP_REACH_NLRI: u8 = 14;
    /// MP_UNREACH_NLRI (RFC 4760).
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// EXTENDED COMMUNITIES (RFC 4360).
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    /// AS4_PATH (RFC 6793).
    pub const AS4_PATH: u8 = 17;
    /// AS4_AGGREGATOR (RFC 6793).
    pub const AS4_AGGREGATOR: u8 = 18;
    /// LARGE_COMMUNITY (RFC 8092).
    pub const LARGE_COMMUNITY: u8 = 32;

    /// Human name of an attribute type code, for error messages.
    pub fn name(code: u8) -> &'static str {
        match code {
            ORIGIN => "ORIGIN",
            AS_PATH => "AS_PATH",
            NEXT_HOP => "NEXT_HOP",
            MULTI_EXIT_DISC => "MULTI_EXIT_DISC",
            LOCAL_PREF => "LOCAL_PREF",
            ATOMIC_AGGREGATE => "ATOMIC_AGGREGATE",
            AGGREGATOR => "AGGREGATOR",
            COMMUNITIES => "COMMUNITIES",
            ORIGINATOR_ID => "ORIGINATOR_ID",
            CLUSTER_LIST => "CLUSTER_LIST",
            MP_REACH_NLRI => "MP_REACH_NLRI",
            MP_UNREACH_NLRI => "MP_UNREACH_NLRI",
            EXTENDED_COMMUNITIES => "EXTENDED_COMMUNITIES",
            AS4_PATH => "AS4_PATH",
            AS4_AGGREGATOR => "AS4_AGGREGATOR",
            LARGE_COMMUNITY => "LARGE_COMMUNITY",
            _ => "unrecognized attribute",
        }
    }
}

/// Path attribute flag bits (RFC 4271 §4.3).
pub mod attr_flags {
    /// Optional bit: 1 = optional, 0 = well-known.
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive bit.
    pub const TRANSITIVE: u8 = 0x40;
    /// Partial bit.
    pub const PARTIAL: u8 = 0x20;
    /// Extended Length bit: the length field is two octets.
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// NOTIFICATION error codes (RFC 4271 §4.5) and subcodes (RFC 4271 §6, RFC 4486, RFC 7313).
pub mod error_code {
    /// Message Header Error.
    pub const MESSAGE_HEADER: u8 = 1;
    /// OPEN Message Error.
    pub const OPEN_MESSAGE: u8 = 2;
    /// UPDATE Message Error.
    pub const UPDATE_MESSAGE: u8 = 3;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Cease.
    pub const CEASE: u8 = 6;
    /// ROUTE-REFRESH Message Error (RFC 7313).
    pub const ROUTE_REFRESH_MESSAGE: u8 = 7;

    /// Subcodes of Message Header Error.
    pub mod header {
        /// Connection Not Synchronized.
        pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
        /// Bad Message Length.
        pub const BAD_MESSAGE_LENGTH: u8 = 2;
        /// Bad Message Type.
        pub const BAD_MESSAGE_TYPE: u8 = 3;
    }
    /// Subcodes of OPEN Message Error.
    pub mod open {
        /// Unspecific.
        pub const UNSPECIFIC: u8 = 0;
        /// Unsupported Version Number.
        pub const UNSUPPORTED_VERSION: u8 = 1;
        /// Bad Peer AS.
        pub const BAD_PEER_AS: u8 = 2;
        /// Bad BGP Identifier.
        pub const BAD_BGP_IDENTIFIER: u8 = 3;
        /// Unsupported Optional Parameter.
        pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
        /// Unacceptable Hold Time.
        pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
        /// Unsupported Capability (RFC 5492).
        pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    }
    /// Subcodes of UPDATE Message Error.
    pub mod update {
        /// Malformed Attribute List.
        pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
        /// Unrecognized Well-known Attribute.
        pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
        /// Missing Well-known Attribute.
        pub const MISSING_WELL_KNOWN: u8 = 3;
        /// Attribute Flags Error.
        pub const ATTRIBUTE_FLAGS: u8 = 4;
        /// Attribute Length Error.
        pub const ATTRIBUTE_LENGTH: u8 = 5;
        /// Invalid ORIGIN Attribute.
        pub const INVALID_ORIGIN: u8 = 6;
        /// Invalid NEXT_HOP Attribute.
        pub const INVALID_NEXT_HOP: u8 = 8;
        /// Optional Attribute Error.
        pub const OPTIONAL_ATTRIBUTE: u8 = 9;
        /// Invalid Network Field.
        pub const INVALID_NETWORK_FIELD: u8 = 10;
        /// Malformed AS_PATH.
        pub const MALFORMED_AS_PATH: u8 = 11;
    }
    /// Subcodes of Cease (RFC 4486).
    pub mod cease {
        /// Maximum Number of Prefixes Reached.
        pub const MAX_PREFIXES: u8 = 1;
        /// Administrative Shutdown (carries an RFC 8203 shutdown communication).
        pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
        /// Peer De-configured.
        pub const PEER_DECONFIGURED: u8 = 3;
        /// Administrative Reset (carries an RFC 8203 shutdown communication).
        pub const ADMINISTRATIVE_RESET: u8 = 4;
        /// Connection Rejected.
        pub const CONNECTION_REJECTED: u8 = 5;
        /// Other Configuration Change.
        pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
        /// Connection Collision Resolution.
        pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
        /// Out of Resources.
        pub const OUT_OF_RESOURCES: u8 = 8;
        /// Hard Reset (RFC 8538).
        pub const HARD_RESET: u8 = 9;
    }
    /// Subcodes of ROUTE-REFRESH Message Error (RFC 7313).
    pub mod route_refresh {
        /// Invalid Message Length.
        pub const INVALID_MESSAGE_LENGTH: u8 = 1;
    }
}

/// The 2-octet placeholder AS number used towards speakers without 4-octet AS support
/// (RFC 6793 §2).
pub const AS_TRANS: u32 = 23456;

/// An AFI/SAFI pair: the address family a capability, an NLRI or a ROUTE-REFRESH is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AfiSafi {
    /// Address Family Identifier.
    pub afi: u16,
    /// Subsequent Address Family Identifier.
    pub safi: u8,
}

impl AfiSafi {
    /// IPv4 unicast.
    pub const IPV4_UNICAST: AfiSafi = AfiSafi {
        afi: afi::IPV4,
        safi: safi::UNICAST,
    };
    /// IPv6 unicast.
    pub const IPV6_UNICAST: AfiSafi = AfiSafi {
        afi: afi::IPV6,
        safi: safi::UNICAST,
    };
    /// IPv4 multicast.
    pub const IPV4_MULTICAST: AfiSafi = AfiSafi {
        afi: afi::IPV4,
        safi: safi::MULTICAST,
    };
    /// IPv6 multicast.
    pub const IPV6_MULTICAST: AfiSafi = AfiSafi {
        afi: afi::IPV6,
        safi: safi::MULTICAST,
    };

    /// Builds an AFI/SAFI pair.
    pub const fn new(afi: u16, safi: u8) -> AfiSafi {
        AfiSafi { afi, safi }
    }

    /// Whether this codec decodes NLRI of this family (IPv4/IPv6 unicast and multicast, which
    /// share the RFC 4271 prefix encoding).
    pub fn is_ip(self) -> bool {
        matches!(self.afi, afi::IPV4 | afi::IPV6)
            && matches!(self.safi, safi::UNICAST | safi::MULTICAST)
    }
}

impl fmt::Display for AfiSafi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let afi = match self.afi {
            afi::IPV4 => "ipv4",
            afi::IPV6 => "ipv6",
            _ => return write!(f, "afi {}/safi {}", self.afi, self.safi),
        };
        match self.safi {
            safi::UNICAST => write!(f, "{afi}-unicast"),
            safi::MULTICAST => write!(f, "{afi}-multicast"),
            s => write!(f, "{afi}/safi {s}"),
        }
    }
}
