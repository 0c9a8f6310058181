//! The UPDATE message (RFC 4271 §4.3) with RFC 7606 revised error handling and End-of-RIB
//! markers (RFC 4724 §2).
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use crate::attribute::mp::{
    MpReach, MpUnreach, NextHop, encode_mp_reach_head, encode_mp_unreach_head, encode_nlri_list,
};
use crate::attribute::{PathAttributes, decode_attributes, put_attribute};
use crate::context::SessionContext;
use crate::error::{AttrName, DecodeError, EncodeError, ErrorAction, Reason};
use crate::iana::{AfiSafi, afi, attr, attr_flags, error_code::update as sub};
use crate::prefix::{Nlri, decode_nlri};
use crate::reader::Reader;

/// A decoded UPDATE.
///
/// When [`Update::treat_as_withdraw`] is true the attributes are unreliable and every route in
/// `nlri` and `mp_reach` must be handled as withdrawn (RFC 7606 §2); `errors` says why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// IPv4 unicast routes withdrawn in the Withdrawn Routes field.
    pub withdrawn: Vec<Nlri>,
    /// Path attributes other than MP_REACH_NLRI / MP_UNREACH_NLRI.
    pub attributes: PathAttributes,
    /// IPv4 unicast routes announced in the NLRI field (next hop: `attributes.next_hop`).
    pub nlri: Vec<Nlri>,
    /// MP_REACH_NLRI: announced routes of another family, with their next hop.
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI: withdrawn routes of another family.
    pub mp_unreach: Option<MpUnreach>,
    /// Non-fatal errors: attribute discards and treat-as-withdraw (with their NOTIFICATION
    /// code/subcode/data for logging). Ignored when encoding.
    pub errors: Vec<DecodeError>,
}

/// Reads a 2-octet length and the field it measures; an overrun is a session reset
/// (RFC 7606 §4: the lengths disagree with the message length).
fn length_field<'a>(r: &mut Reader<'a>, field: &'static str) -> Result<&'a [u8], DecodeError> {
    let available = r.remaining();
    let len = r.u16().ok_or_else(|| {
        reset(Reason::UpdateLengthOverrun {
            field,
            length: 2,
            available,
        })
    })?;
    let available = r.remaining();
    r.take(usize::from(len)).ok_or_else(|| {
        reset(Reason::UpdateLengthOverrun {
            field,
            length: usize::from(len),
            available,
        })
    })
}

fn reset(reason: Reason) -> DecodeError {
    DecodeError::update(
        sub::MALFORMED_ATTRIBUTE_LIST,
        Vec::new(),
        ErrorAction::SessionReset,
        reason,
    )
}

/// A NEXT_HOP that cannot be a unicast next hop: 0.0.0.0, multicast or limited broadcast
/// (RFC 4271 §6.3). Checking for the speaker's own address is left to the speaker.
pub fn is_invalid_next_hop(nh: Ipv4Addr) -> bool {
    nh.is_unspecified() || nh.is_multicast() || nh.is_broadcast()
}

impl Update {
    /// The End-of-RIB marker for a family (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    /// UPDATE with only an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(af: AfiSafi) -> Update {
        let mut u = Update::default();
        if af != AfiSafi::IPV4_UNICAST {
            u.mp_unreach = Some(MpUnreach {
                afi_safi: af,
                withdrawn: Vec::new(),
            });
        }
        u
    }

    /// The family whose End-of-RIB this UPDATE marks, if it is one.
    pub fn as_end_of_rib(&self) -> Option<AfiSafi> {
        let no_attrs = self.attributes == PathAttributes::default() && self.mp_reach.is_none();
        if !no_attrs
            || !self.withdrawn.is_empty()
            || !self.nlri.is_empty()
            || !self.errors.is_empty()
        {
            return None;
        }
        match &self.mp_unreach {
            None => Some(AfiSafi::IPV4_UNICAST),
            Some(u) if u.withdrawn.is_empty() => Some(u.afi_safi),
            Some(_) => None,
        }
    }

    /// Whether an error requires every announced route to be treated as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.action == ErrorAction::TreatAsWithdraw)
    }

    /// Whether the UPDATE carries any route (announced or withdrawn, any family).
    pub fn has_routes(&self) -> bool {
        !self.withdrawn.is_empty()
            || !self.nlri.is_empty()
            || self.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty())
            || self
                .mp_unreach
                .as_ref()
                .is_some_and(|m| !m.withdrawn.is_empty())
    }

    /// Decodes an UPDATE body (after the header).
    ///
    /// * `Err` is a session reset or an AFI/SAFI disable: length fields overrunning the message,
    ///   a malformed NLRI field, a duplicate or unparsable MP attribute, an unrecognized
    ///   well-known attribute, or a treat-as-withdraw error in an UPDATE with no route to
    ///   withdraw (RFC 7606 §5.2).
    /// * `Ok` with [`Update::treat_as_withdraw`] true carries the routes to withdraw.
    pub fn decode(body: &[u8], ctx: &SessionContext) -> Result<Update, DecodeError> {
        let mut r = Reader::new(body);
        let withdrawn_field = length_field(&mut r, "Withdrawn Routes")?;
        let attr_block = length_field(&mut r, "Total Path Attribute")?;
        let nlri_field = r.rest();

        let v4_add_path = ctx.add_path_receive.contains(AfiSafi::IPV4_UNICAST);
        let nlri_error = |reason| {
            DecodeError::update(
                sub::INVALID_NETWORK_FIELD,
                Vec::new(),
                ErrorAction::SessionReset,
                reason,
            )
        };
        let mut withdrawn = Vec::new();
        decode_nlri(
            withdrawn_field,
            false,
            v4_add_path,
            "Withdrawn Routes",
            &mut withdrawn,
        )
        .map_err(nlri_error)?;
        let mut nlri = Vec::new();
        decode_nlri(nlri_field, false, v4_add_path, "NLRI", &mut nlri).map_err(nlri_error)?;

        let d = decode_attributes(attr_block, ctx)?;
        let mut update = Update {
            withdrawn,
            attributes: d.attrs,
            nlri,
            mp_reach: d.mp_reach,
            mp_unreach: d.mp_unreach,
            errors: d.errors,
        };

        // RFC 7606 §3.d: missing well-known mandatory attributes when routes are announced.
        // RFC 4760 §3 makes NEXT_HOP mandatory only for the classic NLRI field.
        let announces_mp = update.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty());
        if !update.nlri.is_empty() || announces_mp {
            let mut required = vec![attr::ORIGIN, attr::AS_PATH];
            if !update.nlri.is_empty() {
                required.push(attr::NEXT_HOP);
            }
            for code in required {
                if !d.seen.contains(code) && !d.truncated {
                    update.errors.push(DecodeError::update(
                        sub::MISSING_WELL_KNOWN,
                        vec![code],
                        ErrorAction::TreatAsWithdraw,
                        Reason::MissingWellKnown {
                            attr: AttrName(code),
                        },
                    ));
                }
            }
        }
        if let Some(nh) = update
            .attributes
            .next_hop
            .filter(|&nh| !update.nlri.is_empty() && is_invalid_next_hop(nh))
        {
            let mut data = vec![attr_flags::TRANSITIVE, attr::NEXT_HOP, 4];
            data.extend_from_slice(&nh.octets());
            update.errors.push(DecodeError::update(
                sub::INVALID_NEXT_HOP,
                data,
                ErrorAction::TreatAsWithdraw,
                Reason::InvalidNextHop { next_hop: nh },
            ));
        }
        // RFC 7606 §5.2: treat-as-withdraw needs routes to withdraw; without any, the error
        // may have hidden them, so the session is reset.
        if !update.has_routes()
            && let Some(pos) = update
                .errors
                .iter()
                .position(|e| e.action == ErrorAction::TreatAsWithdraw)
        {
            let mut e = update.errors.swap_remove(pos);
            e.action = ErrorAction::SessionReset;
            return Err(e);
        }
        Ok(update)
    }

    /// Appends the UPDATE body. Fails on prefixes of the wrong family, path identifiers that
    /// disagree with the negotiated ADD-PATH, or next hops the family cannot carry.
    pub fn encode_body(&self, ctx: &SessionContext, out: &mut BytesMut) -> Result<(), EncodeError> {
        let v4 = AfiSafi::IPV4_UNICAST;
        check_nlri(&self.withdrawn, v4, ctx)?;
        check_nlri(&self.nlri, v4, ctx)?;
        let v4_add_path = ctx.add_path_send.contains(v4);
        let start = out.len();
        out.put_u16(0);
        encode_nlri_list(&self.withdrawn, v4_add_path, out);
        patch_len(out, start, "Withdrawn Routes")?;

        let attr_start = out.len();
        out.put_u16(0);
        let mut value = BytesMut::new();
        if let Some(u) = &self.mp_unreach {
            check_nlri(&u.withdrawn, u.afi_safi, ctx)?;
            encode_mp_unreach_head(u.afi_safi, &mut value);
            encode_nlri_list(
                &u.withdrawn,
                ctx.add_path_send.contains(u.afi_safi),
                &mut value,
            );
            put_attribute(out, attr_flags::OPTIONAL, attr::MP_UNREACH_NLRI, &value)?;
        }
        if let Some(m) = &self.mp_reach {
            check_nlri(&m.nlri, m.afi_safi, ctx)?;
            check_next_hop(&m.next_hop, m.afi_safi)?;
            value.clear();
            encode_mp_reach_head(m.afi_safi, &m.next_hop, &mut value);
            encode_nlri_list(&m.nlri, ctx.add_path_send.contains(m.afi_safi), &mut value);
            put_attribute(out, attr_flags::OPTIONAL, attr::MP_REACH_NLRI, &value)?;
        }
        self.attributes.encode(ctx, out)?;
        patch_len(out, attr_start, "Total Path Attribute")?;
        encode_nlri_list(&self.nlri, v4_add_path, out);
        Ok(())
    }
}

/// Writes the 2-octet length of the field that starts at `start` (with its length octets).
fn patch_len(out: &mut BytesMut, start: usize, what: &'static str) -> Result<(), EncodeError> {
    let len = out.len() - start - 2;
    let len16 = u16::try_from(len).map_err(|_| EncodeError::FieldTooLong {
        what,
        length: len,
        max: 65535,
    })?;
    out[start..start + 2].copy_from_slice(&len16.to_be_bytes());
    Ok(())
}

/// Checks that every prefix belongs to `af` and carries a path identifier exactly when ADD-PATH
/// send is negotiated for it.
pub(crate) fn check_nlri(
    nlri: &[Nlri],
    af: AfiSafi,
    ctx: &SessionContext,
) -> Result<(), EncodeError> {
    if !af.is_ip() {
        return Err(EncodeError::UnsupportedFamily { afi_safi: af });
    }
    let add_path = ctx.add_path_send.contains(af);
    for n in nlri {
        if !n.matches(af) {
            return Err(EncodeError::FamilyMismatch {
                prefix: n.prefix,
                afi_safi: af,
            });
        }
        if n.path_id.is_some() != add_path {
            let problem = if add_path {
                "has no path identifier but ADD-PATH send is negotiated"
            } else {
                "has a path identifier but ADD-PATH send is not negotiated"
            };
            return Err(EncodeError::PathId {
                prefix: n.prefix,
                afi_safi: af,
                problem,
            });
        }
    }
    Ok(())
}

/// An IPv4 next hop only for IPv4 NLRI; IPv6 next hops for IPv6 NLRI or, per RFC 8950, IPv4.
pub(crate) fn check_next_hop(nh: &NextHop, af: AfiSafi) -> Result<(), EncodeError> {
    match (nh, af.afi) {
        (NextHop::V4(_), afi::IPV6) => Err(EncodeError::NextHopFamily {
            next_hop: nh.to_string(),
            afi_safi: af,
        }),
        _ => Ok(()),
    }
}
