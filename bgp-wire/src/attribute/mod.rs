//! Path attributes (RFC 4271 §4.3, §5): the typed [`PathAttributes`] set, the attribute-block
//! decoder with per-type flag and length checks and their RFC 7606 actions, and the encoder.
//!
//! ```text
//! +---------------------------------+----------------------+----------------------+
//! | Attr. Flags (1) | Attr. Type (1) | Length (1, or 2 when | Value (variable)     |
//! | O T P E 0 0 0 0 |                | Extended Length set) |                      |
//! +---------------------------------+----------------------+----------------------+
//! ```

pub mod as_path;
pub mod community;
pub mod mp;

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use self::as_path::AsPath;
use self::community::{Community, ExtendedCommunity, LargeCommunity};
use self::mp::{MpReach, MpUnreach, decode_mp_reach, decode_mp_unreach};
use crate::context::{PeerKind, SessionContext};
use crate::error::{AttrName, DecodeError, EncodeError, ErrorAction, Reason};
use crate::iana::{AS_TRANS, attr, attr_flags as fl, error_code::update as sub};
use crate::reader::Reader;

/// ORIGIN values (RFC 4271 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// 0: interior to the originating AS.
    Igp,
    /// 1: learned via EGP.
    Egp,
    /// 2: learned some other way.
    Incomplete,
}

/// AGGREGATOR / AS4_AGGREGATOR (RFC 4271 §5.1.7, RFC 6793).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Aggregator {
    /// AS of the aggregating speaker (4-octet form).
    pub asn: u32,
    /// Its BGP identifier.
    pub address: Ipv4Addr,
}

/// An unrecognized optional transitive attribute, kept to pass on. It is always sent with
/// the Partial bit set (RFC 4271 §5).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawAttribute {
    /// Attribute type code.
    pub type_code: u8,
    /// Value.
    pub value: Vec<u8>,
}

/// The attribute set of an UPDATE, ready to intern (`Clone + Eq + Hash`). NLRI-bearing
/// attributes (MP_REACH_NLRI, MP_UNREACH_NLRI) live in [`crate::Update`]; AS4_PATH and
/// AS4_AGGREGATOR are folded into `as_path` and `aggregator` on decode and regenerated on encode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PathAttributes {
    /// ORIGIN.
    pub origin: Option<Origin>,
    /// AS_PATH (merged with AS4_PATH for 2-octet sessions).
    pub as_path: Option<AsPath>,
    /// NEXT_HOP (IPv4, for NLRI in the classic NLRI field).
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC.
    pub multi_exit_disc: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE.
    pub atomic_aggregate: bool,
    /// AGGREGATOR (merged with AS4_AGGREGATOR for 2-octet sessions).
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES, in received order.
    pub communities: Vec<Community>,
    /// EXTENDED COMMUNITIES, in received order.
    pub extended_communities: Vec<ExtendedCommunity>,
    /// LARGE_COMMUNITY, in received order.
    pub large_communities: Vec<LargeCommunity>,
    /// ORIGINATOR_ID (RFC 4456).
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST (RFC 4456).
    pub cluster_list: Vec<Ipv4Addr>,
    /// Unrecognized optional transitive attributes.
    pub unknown: Vec<RawAttribute>,
}

/// Required Optional/Transitive bits of each recognized attribute, or `None` if unrecognized.
fn expected_flags(code: u8) -> Option<u8> {
    const WELL_KNOWN: u8 = fl::TRANSITIVE;
    const OPT: u8 = fl::OPTIONAL;
    const OPT_TRANS: u8 = fl::OPTIONAL | fl::TRANSITIVE;
    Some(match code {
        attr::ORIGIN
        | attr::AS_PATH
        | attr::NEXT_HOP
        | attr::LOCAL_PREF
        | attr::ATOMIC_AGGREGATE => WELL_KNOWN,
        attr::MULTI_EXIT_DISC | attr::ORIGINATOR_ID | attr::CLUSTER_LIST => OPT,
        attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI => OPT,
        attr::AGGREGATOR | attr::COMMUNITIES | attr::EXTENDED_COMMUNITIES => OPT_TRANS,
        attr::AS4_PATH | attr::AS4_AGGREGATOR | attr::LARGE_COMMUNITY => OPT_TRANS,
        _ => return None,
    })
}

/// The RFC 7606 action for a malformed attribute of this type (§7, RFC 6793 §6, RFC 8092 §6).
fn malformed_action(code: u8) -> ErrorAction {
    match code {
        attr::ATOMIC_AGGREGATE | attr::AGGREGATOR | attr::AS4_PATH | attr::AS4_AGGREGATOR => {
            ErrorAction::AttributeDiscard
        }
        _ => ErrorAction::TreatAsWithdraw,
    }
}

/// Everything the attribute block yields, before the UPDATE-level checks.
#[derive(Debug, Default)]
pub(crate) struct DecodedAttributes {
    pub attrs: PathAttributes,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub errors: Vec<DecodeError>,
    /// Whether the attribute walk stopped early on a length conflict (RFC 7606 §4).
    pub truncated: bool,
    /// Attribute types seen (first occurrences).
    pub seen: Seen,
    as4_path: Option<AsPath>,
    as4_aggregator: Option<Aggregator>,
}

/// Seen-attribute bitmap for duplicate detection.
#[derive(Debug, Default)]
pub(crate) struct Seen([u64; 4]);

impl Seen {
    pub(crate) fn contains(&self, code: u8) -> bool {
        self.0
            .get(usize::from(code / 64))
            .is_some_and(|w| w & (1 << (code % 64)) != 0)
    }

    fn insert(&mut self, code: u8) -> bool {
        let (word, bit) = (usize::from(code / 64), code % 64);
        let Some(w) = self.0.get_mut(word) else {
            return false;
        };
        let fresh = *w & (1 << bit) == 0;
        *w |= 1 << bit;
        fresh
    }
}

/// Decodes the path attribute block. Session-reset and AFI/SAFI-disable errors return `Err`;
/// treat-as-withdraw and attribute-discard errors are collected in `errors` and the walk goes on
/// so the NLRI in MP attributes can still be found.
pub(crate) fn decode_attributes(
    block: &[u8],
    ctx: &SessionContext,
) -> Result<DecodedAttributes, DecodeError> {
    let mut d = DecodedAttributes::default();
    let mut r = Reader::new(block);
    while !r.is_empty() {
        let start = r.rest();
        let available = r.remaining();
        let flags = r.u8().unwrap_or(0);
        let code = r.u8();
        let len = if flags & fl::EXTENDED_LENGTH != 0 {
            r.u16()
        } else {
            r.u8().map(u16::from)
        };
        let (Some(code), Some(len)) = (code, len) else {
            d.errors.push(overrun(
                code.unwrap_or(0),
                if flags & fl::EXTENDED_LENGTH != 0 {
                    4
                } else {
                    3
                },
                available,
            ));
            d.truncated = true;
            break;
        };
        let header = available - r.remaining();
        let Some(value) = r.take(usize::from(len)) else {
            d.errors
                .push(overrun(code, header + usize::from(len), available));
            d.truncated = true;
            break;
        };
        let whole = start.get(..header + value.len()).unwrap_or(start);
        if !d.seen.insert(code) {
            if matches!(code, attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI) {
                return Err(DecodeError::update(
                    sub::MALFORMED_ATTRIBUTE_LIST,
                    Vec::new(),
                    ErrorAction::SessionReset,
                    Reason::DuplicateAttribute {
                        attr: AttrName(code),
                        handling: "session reset for MP_REACH_NLRI/MP_UNREACH_NLRI",
                    },
                ));
            }
            d.errors.push(DecodeError::update(
                sub::MALFORMED_ATTRIBUTE_LIST,
                Vec::new(),
                ErrorAction::AttributeDiscard,
                Reason::DuplicateAttribute {
                    attr: AttrName(code),
                    handling: "all but the first occurrence are discarded",
                },
            ));
            continue;
        }
        let Some(expected) = expected_flags(code) else {
            unrecognized(&mut d, flags, code, value, whole)?;
            continue;
        };
        if flags & (fl::OPTIONAL | fl::TRANSITIVE) != expected {
            d.errors.push(DecodeError::update(
                sub::ATTRIBUTE_FLAGS,
                whole.to_vec(),
                malformed_action(code),
                Reason::AttributeFlags {
                    attr: AttrName(code),
                    flags,
                    expected,
                },
            ));
            // The NLRI inside MP attributes are still needed to withdraw them.
            if !matches!(code, attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI) {
                continue;
            }
        }
        if let Err(e) = decode_one(&mut d, ctx, code, value, whole) {
            if matches!(
                e.action,
                ErrorAction::SessionReset | ErrorAction::AfiSafiDisable(_)
            ) {
                return Err(e);
            }
            d.errors.push(e);
        }
    }
    d.merge_as4(ctx);
    Ok(d)
}

fn overrun(code: u8, needed: usize, available: usize) -> DecodeError {
    DecodeError::update(
        sub::MALFORMED_ATTRIBUTE_LIST,
        Vec::new(),
        ErrorAction::TreatAsWithdraw,
        Reason::AttributeOverrun {
            attr: AttrName(code),
            needed,
            available,
        },
    )
}

fn unrecognized(
    d: &mut DecodedAttributes,
    flags: u8,
    code: u8,
    value: &[u8],
    whole: &[u8],
) -> Result<(), DecodeError> {
    if flags & fl::OPTIONAL == 0 {
        return Err(DecodeError::update(
            sub::UNRECOGNIZED_WELL_KNOWN,
            whole.to_vec(),
            ErrorAction::SessionReset,
            Reason::UnrecognizedWellKnown { type_code: code },
        ));
    }
    if flags & fl::TRANSITIVE != 0 {
        d.attrs.unknown.push(RawAttribute {
            type_code: code,
            value: value.to_vec(),
        });
    }
    Ok(())
}

fn length_error(
    code: u8,
    length: usize,
    expected: &'static str,
    rule: &'static str,
    whole: &[u8],
) -> DecodeError {
    DecodeError::update(
        sub::ATTRIBUTE_LENGTH,
        whole.to_vec(),
        malformed_action(code),
        Reason::AttributeLength {
            attr: AttrName(code),
            length,
            expected,
            rule,
        },
    )
}

fn u32_of(v: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes)
}

fn multiple_of(v: &[u8], n: usize) -> bool {
    !v.is_empty() && v.len().is_multiple_of(n)
}

fn decode_one(
    d: &mut DecodedAttributes,
    ctx: &SessionContext,
    code: u8,
    v: &[u8],
    whole: &[u8],
) -> Result<(), DecodeError> {
    let exact4 = |rule| u32_of(v).ok_or_else(|| length_error(code, v.len(), "4", rule, whole));
    let a = &mut d.attrs;
    match code {
        attr::ORIGIN => {
            let &[value] = v else {
                return Err(length_error(code, v.len(), "1", "RFC 7606 §7.1", whole));
            };
            a.origin = Some(match value {
                0 => Origin::Igp,
                1 => Origin::Egp,
                2 => Origin::Incomplete,
                _ => {
                    return Err(DecodeError::update(
                        sub::INVALID_ORIGIN,
                        whole.to_vec(),
                        ErrorAction::TreatAsWithdraw,
                        Reason::InvalidOrigin { value },
                    ));
                }
            });
        }
        attr::AS_PATH => {
            let path = AsPath::decode(v, ctx.four_octet_as).map_err(|detail| {
                DecodeError::update(
                    sub::MALFORMED_AS_PATH,
                    Vec::new(),
                    ErrorAction::TreatAsWithdraw,
                    Reason::MalformedAsPath {
                        attr: AttrName(code),
                        detail,
                    },
                )
            })?;
            a.as_path = Some(path);
        }
        attr::NEXT_HOP => a.next_hop = Some(Ipv4Addr::from(exact4("RFC 7606 §7.3")?)),
        attr::MULTI_EXIT_DISC => a.multi_exit_disc = Some(exact4("RFC 7606 §7.4")?),
        attr::LOCAL_PREF => {
            let value = exact4("RFC 7606 §7.5")?;
            if ctx.peer_kind == PeerKind::External {
                return Err(DecodeError::update(
                    sub::MALFORMED_ATTRIBUTE_LIST,
                    whole.to_vec(),
                    ErrorAction::AttributeDiscard,
                    Reason::LocalPrefFromExternal,
                ));
            }
            a.local_pref = Some(value);
        }
        attr::ATOMIC_AGGREGATE => {
            if !v.is_empty() {
                return Err(length_error(code, v.len(), "0", "RFC 7606 §7.6", whole));
            }
            a.atomic_aggregate = true;
        }
        attr::AGGREGATOR => {
            let (want, rule) = if ctx.four_octet_as {
                ("8", 8)
            } else {
                ("6", 6)
            };
            if v.len() != rule {
                return Err(length_error(code, v.len(), want, "RFC 7606 §7.7", whole));
            }
            let (asn, addr) = v.split_at(rule - 4);
            let asn = if ctx.four_octet_as {
                u32_of(asn)
            } else {
                <[u8; 2]>::try_from(asn)
                    .ok()
                    .map(|b| u32::from(u16::from_be_bytes(b)))
            };
            let (Some(asn), Some(addr)) = (asn, u32_of(addr)) else {
                return Err(length_error(code, v.len(), want, "RFC 7606 §7.7", whole));
            };
            a.aggregator = Some(Aggregator {
                asn,
                address: Ipv4Addr::from(addr),
            });
        }
        attr::COMMUNITIES => {
            if !multiple_of(v, 4) {
                return Err(length_error(
                    code,
                    v.len(),
                    "a non-zero multiple of 4",
                    "RFC 7606 §7.8",
                    whole,
                ));
            }
            a.communities = v
                .chunks_exact(4)
                .filter_map(u32_of)
                .map(Community)
                .collect();
        }
        attr::ORIGINATOR_ID => a.originator_id = Some(Ipv4Addr::from(exact4("RFC 7606 §7.9")?)),
        attr::CLUSTER_LIST => {
            if !multiple_of(v, 4) {
                return Err(length_error(
                    code,
                    v.len(),
                    "a non-zero multiple of 4",
                    "RFC 7606 §7.10",
                    whole,
                ));
            }
            a.cluster_list = v
                .chunks_exact(4)
                .filter_map(u32_of)
                .map(Ipv4Addr::from)
                .collect();
        }
        attr::MP_REACH_NLRI => d.mp_reach = Some(decode_mp_reach(v, whole, ctx)?),
        attr::MP_UNREACH_NLRI => d.mp_unreach = Some(decode_mp_unreach(v, whole, ctx)?),
        attr::EXTENDED_COMMUNITIES => {
            if !multiple_of(v, 8) {
                return Err(length_error(
                    code,
                    v.len(),
                    "a non-zero multiple of 8",
                    "RFC 7606 §7.14",
                    whole,
                ));
            }
            a.extended_communities = v
                .chunks_exact(8)
                .filter_map(|c| <[u8; 8]>::try_from(c).ok())
                .map(ExtendedCommunity)
                .collect();
        }
        attr::LARGE_COMMUNITY => {
            if !multiple_of(v, 12) {
                return Err(length_error(
                    code,
                    v.len(),
                    "a non-zero multiple of 12",
                    "RFC 8092 §6",
                    whole,
                ));
            }
            a.large_communities = v
                .chunks_exact(12)
                .filter_map(|c| {
                    let (g, rest) = c.split_at(4);
                    let (l1, l2) = rest.split_at(4);
                    Some(LargeCommunity {
                        global_admin: u32_of(g)?,
                        local_data_1: u32_of(l1)?,
                        local_data_2: u32_of(l2)?,
                    })
                })
                .collect();
        }
        attr::AS4_PATH | attr::AS4_AGGREGATOR if ctx.four_octet_as => {
            return Err(DecodeError::update(
                sub::OPTIONAL_ATTRIBUTE,
                whole.to_vec(),
                ErrorAction::AttributeDiscard,
                Reason::As4FromNewSpeaker {
                    attr: AttrName(code),
                },
            ));
        }
        attr::AS4_PATH => {
            let path = AsPath::decode(v, true).map_err(|detail| {
                DecodeError::update(
                    sub::OPTIONAL_ATTRIBUTE,
                    whole.to_vec(),
                    ErrorAction::AttributeDiscard,
                    Reason::MalformedAsPath {
                        attr: AttrName(code),
                        detail,
                    },
                )
            })?;
            d.as4_path = Some(path);
        }
        attr::AS4_AGGREGATOR => {
            let (Some(asn), Some(addr)) =
                (v.get(..4).and_then(u32_of), v.get(4..).and_then(u32_of))
            else {
                return Err(length_error(code, v.len(), "8", "RFC 6793 §6", whole));
            };
            d.as4_aggregator = Some(Aggregator {
                asn,
                address: Ipv4Addr::from(addr),
            });
        }
        _ => {}
    }
    Ok(())
}

impl DecodedAttributes {
    /// RFC 6793 §4.2.3: fold AS4_AGGREGATOR and AS4_PATH into AGGREGATOR and AS_PATH.
    fn merge_as4(&mut self, ctx: &SessionContext) {
        if ctx.four_octet_as {
            return;
        }
        let (as4_path, as4_agg) = (self.as4_path.take(), self.as4_aggregator.take());
        if let Some(agg) = &mut self.attrs.aggregator {
            if agg.asn != AS_TRANS {
                // Aggregated by a 2-octet speaker: AS4_AGGREGATOR and AS4_PATH are stale.
                return;
            }
            if let Some(a4) = as4_agg {
                *agg = a4;
            }
        }
        if let (Some(as4), Some(path)) = (as4_path, &mut self.attrs.as_path) {
            *path = path.merge_as4(&as4);
        }
    }
}

/// Appends one attribute: flags (Extended Length chosen by size), type, length, value.
pub(crate) fn put_attribute(
    out: &mut BytesMut,
    flags: u8,
    code: u8,
    value: &[u8],
) -> Result<(), EncodeError> {
    let too_long = || EncodeError::AttributeTooLong {
        attr: AttrName(code),
        length: value.len(),
    };
    if let Ok(len) = u8::try_from(value.len()) {
        out.put_u8(flags & !fl::EXTENDED_LENGTH);
        out.put_u8(code);
        out.put_u8(len);
    } else {
        let len = u16::try_from(value.len()).map_err(|_| too_long())?;
        out.put_u8(flags | fl::EXTENDED_LENGTH);
        out.put_u8(code);
        out.put_u16(len);
    }
    out.put_slice(value);
    Ok(())
}

impl PathAttributes {
    /// Appends the attributes (everything but MP_REACH/MP_UNREACH) in type-code order. For a
    /// 2-octet session AS numbers above 65535 become AS_TRANS and AS4_PATH / AS4_AGGREGATOR are
    /// added (RFC 6793 §4.2.2). Unknown attributes whose code this codec recognizes are skipped.
    pub fn encode(&self, ctx: &SessionContext, out: &mut BytesMut) -> Result<(), EncodeError> {
        const WK: u8 = fl::TRANSITIVE;
        const OPT: u8 = fl::OPTIONAL;
        const OT: u8 = fl::OPTIONAL | fl::TRANSITIVE;
        let four = ctx.four_octet_as;
        if let Some(o) = self.origin {
            put_attribute(out, WK, attr::ORIGIN, &[o as u8])?;
        }
        let mut buf = BytesMut::new();
        if let Some(p) = &self.as_path {
            p.encode(four, &mut buf)?;
            put_attribute(out, WK, attr::AS_PATH, &buf)?;
        }
        if let Some(nh) = self.next_hop {
            put_attribute(out, WK, attr::NEXT_HOP, &nh.octets())?;
        }
        if let Some(m) = self.multi_exit_disc {
            put_attribute(out, OPT, attr::MULTI_EXIT_DISC, &m.to_be_bytes())?;
        }
        if let Some(lp) = self.local_pref {
            put_attribute(out, WK, attr::LOCAL_PREF, &lp.to_be_bytes())?;
        }
        if self.atomic_aggregate {
            put_attribute(out, WK, attr::ATOMIC_AGGREGATE, &[])?;
        }
        if let Some(agg) = self.aggregator {
            buf.clear();
            if four {
                buf.put_u32(agg.asn);
            } else {
                buf.put_u16(u16::try_from(agg.asn).unwrap_or(AS_TRANS as u16));
            }
            buf.put_slice(&agg.address.octets());
            put_attribute(out, OT, attr::AGGREGATOR, &buf)?;
        }
        if !self.communities.is_empty() {
            buf.clear();
            self.communities.iter().for_each(|c| buf.put_u32(c.0));
            put_attribute(out, OT, attr::COMMUNITIES, &buf)?;
        }
        if let Some(id) = self.originator_id {
            put_attribute(out, OPT, attr::ORIGINATOR_ID, &id.octets())?;
        }
        if !self.cluster_list.is_empty() {
            buf.clear();
            self.cluster_list
                .iter()
                .for_each(|c| buf.put_slice(&c.octets()));
            put_attribute(out, OPT, attr::CLUSTER_LIST, &buf)?;
        }
        if !self.extended_communities.is_empty() {
            buf.clear();
            self.extended_communities
                .iter()
                .for_each(|c| buf.put_slice(&c.0));
            put_attribute(out, OT, attr::EXTENDED_COMMUNITIES, &buf)?;
        }
        if !four {
            let as4_path = self
                .as_path
                .as_ref()
                .map(AsPath::without_confed)
                .filter(AsPath::needs_as4);
            if let Some(p) = as4_path {
                buf.clear();
                p.encode(true, &mut buf)?;
                put_attribute(out, OT, attr::AS4_PATH, &buf)?;
            }
            if let Some(agg) = self.aggregator.filter(|a| a.asn > 0xffff) {
                buf.clear();
                buf.put_u32(agg.asn);
                buf.put_slice(&agg.address.octets());
                put_attribute(out, OT, attr::AS4_AGGREGATOR, &buf)?;
            }
        }
        if !self.large_communities.is_empty() {
            buf.clear();
            for c in &self.large_communities {
                buf.put_u32(c.global_admin);
                buf.put_u32(c.local_data_1);
                buf.put_u32(c.local_data_2);
            }
            put_attribute(out, OT, attr::LARGE_COMMUNITY, &buf)?;
        }
        for u in self
            .unknown
            .iter()
            .filter(|u| expected_flags(u.type_code).is_none())
        {
            put_attribute(out, OT | fl::PARTIAL, u.type_code, &u.value)?;
        }
        Ok(())
    }
}
