//! MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3, §4) for IPv4/IPv6 unicast and multicast,
//! with IPv6 next hops of 16 or 32 octets (RFC 2545 §3) and IPv6 next hops for IPv4 NLRI
//! (RFC 8950 §3), decoded in full and never truncated.
//!
//! ```text
//! MP_REACH_NLRI                                MP_UNREACH_NLRI
//! +---------------------------------------+    +---------------------------------------+
//! | AFI (2) | SAFI (1)                    |    | AFI (2) | SAFI (1)                    |
//! +---------------------------------------+    +---------------------------------------+
//! | Length of Next Hop Address (1)        |    | Withdrawn Routes (variable)           |
//! +---------------------------------------+    +---------------------------------------+
//! | Next Hop Address (4, 16 or 32)        |
//! +---------------------------------------+
//! | Reserved (1)                          |
//! +---------------------------------------+
//! | NLRI (variable)                       |
//! +---------------------------------------+
//! ```

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use crate::context::SessionContext;
use crate::error::{AttrName, DecodeError, ErrorAction, Reason};
use crate::iana::{AfiSafi, afi, attr, error_code::update as sub};
use crate::prefix::{Nlri, decode_nlri, encode_nlri};
use crate::reader::Reader;

/// A next hop as carried in NEXT_HOP or MP_REACH_NLRI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHop {
    /// An IPv4 next hop.
    V4(Ipv4Addr),
    /// An IPv6 global next hop, optionally followed by a link-local one (32-octet form).
    V6 {
        /// Global address.
        global: Ipv6Addr,
        /// Link-local address.
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    /// Octets of the next hop field.
    pub fn encoded_len(&self) -> usize {
        match self {
            NextHop::V4(_) => 4,
            NextHop::V6 {
                link_local: None, ..
            } => 16,
            NextHop::V6 {
                link_local: Some(_),
                ..
            } => 32,
        }
    }

    fn encode(&self, out: &mut BytesMut) {
        match self {
            NextHop::V4(a) => out.put_slice(&a.octets()),
            NextHop::V6 { global, link_local } => {
                out.put_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.put_slice(&ll.octets());
                }
            }
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::V4(a) => write!(f, "{a}"),
            NextHop::V6 {
                global,
                link_local: None,
            } => write!(f, "{global}"),
            NextHop::V6 {
                global,
                link_local: Some(ll),
            } => write!(f, "{global} ({ll})"),
        }
    }
}

/// A decoded MP_REACH_NLRI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    /// Family.
    pub afi_safi: AfiSafi,
    /// Next hop.
    pub next_hop: NextHop,
    /// Announced NLRI.
    pub nlri: Vec<Nlri>,
}

/// A decoded MP_UNREACH_NLRI. An empty `withdrawn` list alone in an UPDATE is the End-of-RIB
/// marker for the family (RFC 4724 §2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    /// Family.
    pub afi_safi: AfiSafi,
    /// Withdrawn NLRI.
    pub withdrawn: Vec<Nlri>,
}

fn error(subcode: u8, whole: &[u8], action: ErrorAction, reason: Reason) -> DecodeError {
    let data = if subcode == sub::INVALID_NETWORK_FIELD {
        Vec::new()
    } else {
        whole.to_vec()
    };
    DecodeError::update(subcode, data, action, reason)
}

/// Reads AFI/SAFI; an attribute too short to name its family is a session reset, an
/// unsupported family disables it (RFC 7606 §7.11, RFC 4760 §7).
fn family(
    r: &mut Reader<'_>,
    code: u8,
    value: &[u8],
    whole: &[u8],
) -> Result<AfiSafi, DecodeError> {
    let (Some(a), Some(s)) = (r.u16(), r.u8()) else {
        return Err(error(
            sub::OPTIONAL_ATTRIBUTE,
            whole,
            ErrorAction::SessionReset,
            Reason::MpTooShort {
                attr: AttrName(code),
                length: value.len(),
            },
        ));
    };
    let af = AfiSafi::new(a, s);
    if !af.is_ip() {
        return Err(error(
            sub::OPTIONAL_ATTRIBUTE,
            whole,
            ErrorAction::AfiSafiDisable(af),
            Reason::MpUnsupportedFamily {
                attr: AttrName(code),
                afi_safi: af,
            },
        ));
    }
    Ok(af)
}

fn nlri(
    buf: &[u8],
    af: AfiSafi,
    ctx: &SessionContext,
    field: &'static str,
    whole: &[u8],
) -> Result<Vec<Nlri>, DecodeError> {
    let mut out = Vec::new();
    decode_nlri(
        buf,
        af.afi == afi::IPV6,
        ctx.add_path_receive.contains(af),
        field,
        &mut out,
    )
    .map_err(|reason| {
        error(
            sub::INVALID_NETWORK_FIELD,
            whole,
            ErrorAction::AfiSafiDisable(af),
            reason,
        )
    })?;
    Ok(out)
}

/// Decodes an MP_REACH_NLRI value. `whole` is the attribute with its header, for error data.
pub(crate) fn decode_mp_reach(
    value: &[u8],
    whole: &[u8],
    ctx: &SessionContext,
) -> Result<MpReach, DecodeError> {
    let mut r = Reader::new(value);
    let af = family(&mut r, attr::MP_REACH_NLRI, value, whole)?;
    let bad_nh = |length: u8| {
        error(
            sub::OPTIONAL_ATTRIBUTE,
            whole,
            ErrorAction::AfiSafiDisable(af),
            Reason::MpNextHopLength {
                afi_safi: af,
                length,
            },
        )
    };
    let nh_len = r.u8().ok_or_else(|| bad_nh(0))?;
    let nh = r.take(usize::from(nh_len)).ok_or_else(|| bad_nh(nh_len))?;
    let v6 = |b: &[u8]| <[u8; 16]>::try_from(b).ok().map(Ipv6Addr::from);
    let next_hop = match (af.afi, nh.len()) {
        (afi::IPV4, 4) => <[u8; 4]>::try_from(nh)
            .ok()
            .map(|o| NextHop::V4(Ipv4Addr::from(o))),
        // IPv6 next hop, for IPv6 NLRI (RFC 2545) or for IPv4 NLRI (RFC 8950).
        (_, 16) => v6(nh).map(|global| NextHop::V6 {
            global,
            link_local: None,
        }),
        (_, 32) => match (v6(&nh[..16]), v6(&nh[16..])) {
            (Some(global), Some(ll)) => Some(NextHop::V6 {
                global,
                link_local: Some(ll),
            }),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| bad_nh(nh_len))?;
    // Reserved octet (formerly the SNPA count): must be present, value ignored (RFC 4760 §3).
    r.u8().ok_or_else(|| bad_nh(nh_len))?;
    let nlri = nlri(r.rest(), af, ctx, "MP_REACH_NLRI", whole)?;
    Ok(MpReach {
        afi_safi: af,
        next_hop,
        nlri,
    })
}

/// Decodes an MP_UNREACH_NLRI value.
pub(crate) fn decode_mp_unreach(
    value: &[u8],
    whole: &[u8],
    ctx: &SessionContext,
) -> Result<MpUnreach, DecodeError> {
    let mut r = Reader::new(value);
    let af = family(&mut r, attr::MP_UNREACH_NLRI, value, whole)?;
    let withdrawn = nlri(r.rest(), af, ctx, "MP_UNREACH_NLRI", whole)?;
    Ok(MpUnreach {
        afi_safi: af,
        withdrawn,
    })
}

/// Appends the MP_REACH_NLRI value prefix (family, next hop, reserved), without NLRI.
pub(crate) fn encode_mp_reach_head(af: AfiSafi, next_hop: &NextHop, out: &mut BytesMut) {
    out.put_u16(af.afi);
    out.put_u8(af.safi);
    out.put_u8(next_hop.encoded_len() as u8);
    next_hop.encode(out);
    out.put_u8(0);
}

/// Appends the MP_UNREACH_NLRI value prefix (family), without NLRI.
pub(crate) fn encode_mp_unreach_head(af: AfiSafi, out: &mut BytesMut) {
    out.put_u16(af.afi);
    out.put_u8(af.safi);
}

/// Appends NLRI entries.
pub(crate) fn encode_nlri_list(nlri: &[Nlri], add_path: bool, out: &mut BytesMut) {
    for n in nlri {
        encode_nlri(n, add_path, out);
    }
}
