//! IP prefixes as carried in NLRI fields (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3).
//!
//! ```text
//! +---------------------------+
//! | Path Identifier (4 octets) |   only when ADD-PATH is negotiated for the family
//! +---------------------------+
//! |   Length (1 octet)        |   prefix length in bits
//! +---------------------------+
//! |   Prefix (variable)       |   ceil(Length / 8) octets
//! +---------------------------+
//! ```
//!
//! **Trailing bits.** RFC 4271 §4.3 says the bits after the prefix length are padding whose
//! value "is irrelevant". Like BIRD, FRR and GoBGP, the decoder accepts any value there and
//! clears them, so `10.1.2.3/24` on the wire decodes as `10.1.2.0/24`. The encoder always
//! writes them as zero.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::Reason;
use crate::iana::AfiSafi;
use crate::reader::Reader;

/// An IPv4 or IPv6 prefix with host bits clear: `ipnet::IpNet` (`Copy + Ord + Hash`).
pub type Prefix = IpNet;

/// One NLRI entry: a prefix and, under ADD-PATH, its path identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nlri {
    /// The prefix.
    pub prefix: Prefix,
    /// The RFC 7911 path identifier, present exactly when ADD-PATH applies to the family.
    pub path_id: Option<u32>,
}

impl Nlri {
    /// An NLRI without path identifier. Host bits are cleared.
    pub fn new(prefix: impl Into<Prefix>) -> Nlri {
        Nlri {
            prefix: prefix.into().trunc(),
            path_id: None,
        }
    }

    /// An NLRI with a path identifier. Host bits are cleared.
    pub fn with_path_id(prefix: impl Into<Prefix>, path_id: u32) -> Nlri {
        Nlri {
            prefix: prefix.into().trunc(),
            path_id: Some(path_id),
        }
    }

    /// Octets this entry takes on the wire.
    pub fn encoded_len(&self) -> usize {
        let id = if self.path_id.is_some() { 4 } else { 0 };
        id + 1 + usize::from(self.prefix.prefix_len()).div_ceil(8)
    }

    /// Whether the prefix belongs to the family's address family.
    pub fn matches(&self, af: AfiSafi) -> bool {
        match self.prefix {
            IpNet::V4(_) => af.afi == crate::iana::afi::IPV4,
            IpNet::V6(_) => af.afi == crate::iana::afi::IPV6,
        }
    }
}

/// Decodes an NLRI field into `out`. `v6` selects the address family; `add_path` whether each
/// entry starts with a path identifier. Each entry consumes at least one octet, so the loop ends
/// and `out` grows by at most `buf.len()` entries.
pub(crate) fn decode_nlri(
    buf: &[u8],
    v6: bool,
    add_path: bool,
    field: &'static str,
    out: &mut Vec<Nlri>,
) -> Result<(), Reason> {
    // Typical entries are 4 (IPv4 /24) or 9 (IPv6 /64) octets: reserve for that, grow if smaller.
    out.reserve(buf.len() / if v6 { 9 } else { 4 });
    let max = if v6 { 128 } else { 32 };
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let path_id = if add_path {
            let available = r.remaining();
            Some(r.u32().ok_or(Reason::TruncatedNlri {
                field,
                needed: 5,
                available,
            })?)
        } else {
            None
        };
        let Some(length) = r.u8() else {
            return Err(Reason::TruncatedNlri {
                field,
                needed: 1,
                available: 0,
            });
        };
        if length > max {
            return Err(Reason::PrefixLength { field, length, max });
        }
        let n = usize::from(length).div_ceil(8);
        let available = r.remaining();
        // Read a whole address when the input has that many octets left (the extra octets are
        // masked off), else assemble it octet by octet: no variable-length copy per prefix.
        let rest = r.rest();
        let bytes = r.take(n).ok_or(Reason::TruncatedNlri {
            field,
            needed: n,
            available,
        })?;
        let prefix = if v6 {
            let bits = match rest.first_chunk::<16>() {
                Some(whole) => u128::from_be_bytes(*whole),
                None => bytes
                    .iter()
                    .enumerate()
                    .fold(0, |acc, (i, &b)| acc | u128::from(b) << (120 - 8 * i)),
            };
            Ipv6Net::new(Ipv6Addr::from(bits & mask128(length)), length).map(IpNet::V6)
        } else {
            let bits = match rest.first_chunk::<4>() {
                Some(whole) => u32::from_be_bytes(*whole),
                None => bytes
                    .iter()
                    .enumerate()
                    .fold(0, |acc, (i, &b)| acc | u32::from(b) << (24 - 8 * i)),
            };
            Ipv4Net::new(Ipv4Addr::from(bits & mask32(length)), length).map(IpNet::V4)
        };
        let prefix = prefix.map_err(|_| Reason::PrefixLength { field, length, max })?;
        out.push(Nlri { prefix, path_id });
    }
    Ok(())
}

fn mask32(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

/// Appends one NLRI entry. The path identifier is written when `add_path` is true (0 when the
/// entry has none; callers check consistency first).
pub(crate) fn encode_nlri(n: &Nlri, add_path: bool, out: &mut BytesMut) {
    if add_path {
        out.put_u32(n.path_id.unwrap_or(0));
    }
    let len = n.prefix.prefix_len();
    let bytes = usize::from(len).div_ceil(8);
    let mut buf = [0u8; 17];
    buf[0] = len;
    match n.prefix {
        IpNet::V4(p) => {
            buf[1..5].copy_from_slice(&(u32::from(p.addr()) & mask32(len)).to_be_bytes())
        }
        IpNet::V6(p) => {
            buf[1..17].copy_from_slice(&(u128::from(p.addr()) & mask128(len)).to_be_bytes())
        }
    }
    out.extend_from_slice(&buf[..=bytes]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_host_bits_are_cleared_on_decode() {
        let mut out = Vec::new();
        decode_nlri(&[24, 10, 1, 2], false, false, "NLRI", &mut out).unwrap();
        decode_nlri(&[20, 10, 1, 0xff], false, false, "NLRI", &mut out).unwrap();
        assert_eq!(out[0].prefix.to_string(), "10.1.2.0/24");
        assert_eq!(out[1].prefix.to_string(), "10.1.240.0/20");
    }

    #[test]
    fn a_prefix_length_over_32_is_rejected() {
        let mut out = Vec::new();
        let err = decode_nlri(&[33, 1, 2, 3, 4, 5], false, false, "NLRI", &mut out).unwrap_err();
        assert_eq!(
            err,
            Reason::PrefixLength {
                field: "NLRI",
                length: 33,
                max: 32
            }
        );
    }

    #[test]
    fn default_routes_and_host_routes_round_trip() {
        for (text, v6) in [
            ("0.0.0.0/0", false),
            ("192.0.2.1/32", false),
            ("::/0", true),
            ("2001:db8::1/128", true),
        ] {
            let n = Nlri::new(text.parse::<IpNet>().unwrap());
            let mut buf = BytesMut::new();
            encode_nlri(&n, false, &mut buf);
            assert_eq!(buf.len(), n.encoded_len());
            let mut out = Vec::new();
            decode_nlri(&buf, v6, false, "NLRI", &mut out).unwrap();
            assert_eq!(out, vec![n]);
        }
    }
}
