//! The UPDATE packer: one attribute set and N prefixes in, as few UPDATE messages as the
//! negotiated maximum length allows out, each a complete legal message.
//!
//! Prefixes are placed in the given order, each message filled until the next prefix would
//! overflow it (next-fit), which gives the fewest messages for that order. IPv4 unicast with an
//! IPv4 next hop uses the classic NLRI / Withdrawn Routes fields; everything else (IPv6, RFC 8950
//! IPv6 next hops for IPv4, multicast) uses MP_REACH_NLRI / MP_UNREACH_NLRI as the first
//! attribute (RFC 7606 §5.1).

use bytes::{BufMut, Bytes, BytesMut};

use crate::HEADER_LEN;
use crate::attribute::PathAttributes;
use crate::attribute::mp::{
    NextHop, encode_mp_reach_head, encode_mp_unreach_head, encode_nlri_list,
};
use crate::context::SessionContext;
use crate::error::{AttrName, EncodeError};
use crate::header::{begin_message, finish_message};
use crate::iana::{AfiSafi, attr, attr_flags, message_type};
use crate::prefix::{Nlri, encode_nlri};
use crate::update::{Update, check_next_hop, check_nlri};

/// Withdrawn Routes Length + Total Path Attribute Length.
const UPDATE_FIXED: usize = 4;

/// Attribute header size for a value of `len` octets.
fn attr_header(len: usize) -> usize {
    if len > 255 { 4 } else { 3 }
}

/// Splits `nlri` into consecutive runs such that `fixed + extra(run_len) <= max` for each run,
/// where `extra` maps the run's encoded NLRI length to the octets it adds.
fn chunks(
    nlri: &[Nlri],
    max: usize,
    fixed: usize,
    extra: impl Fn(usize) -> usize,
) -> Result<Vec<std::ops::Range<usize>>, EncodeError> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < nlri.len() {
        let start = i;
        let mut used = 0;
        while let Some(n) = nlri.get(i) {
            let next = used + n.encoded_len();
            if fixed + extra(next) > max {
                break;
            }
            used = next;
            i += 1;
        }
        if i == start {
            let prefix = nlri.get(i).map_or(0, Nlri::encoded_len);
            return Err(EncodeError::AttributesTooLarge {
                attributes: fixed.saturating_sub(HEADER_LEN + UPDATE_FIXED),
                overhead: HEADER_LEN + UPDATE_FIXED,
                prefix,
                max,
            });
        }
        runs.push(start..i);
    }
    Ok(runs)
}

/// Packs announcements of `nlri` (all of family `af`) with `attributes` and `next_hop` into
/// UPDATE messages of at most `ctx.max_message_len()` octets, header included.
/// `attributes.next_hop` is ignored: the NEXT_HOP attribute is set from `next_hop` for the
/// classic encoding and omitted for MP_REACH_NLRI (RFC 4760 §3).
pub fn pack_announce(
    ctx: &SessionContext,
    af: AfiSafi,
    attributes: &PathAttributes,
    next_hop: NextHop,
    nlri: &[Nlri],
) -> Result<Vec<Bytes>, EncodeError> {
    check_nlri(nlri, af, ctx)?;
    check_next_hop(&next_hop, af)?;
    if nlri.is_empty() {
        return Ok(Vec::new());
    }
    let max = ctx.max_message_len();
    let add_path = ctx.add_path_send.contains(af);
    let mut attrs = attributes.clone();
    let classic = match next_hop {
        NextHop::V4(nh) if af == AfiSafi::IPV4_UNICAST => {
            attrs.next_hop = Some(nh);
            true
        }
        _ => {
            attrs.next_hop = None;
            false
        }
    };
    let mut attr_bytes = BytesMut::new();
    attrs.encode(ctx, &mut attr_bytes)?;
    let fixed = HEADER_LEN + UPDATE_FIXED + attr_bytes.len();
    let mut out = Vec::new();
    if classic {
        for run in chunks(nlri, max, fixed, |n| n)? {
            let run = nlri.get(run).unwrap_or_default();
            let mut msg = BytesMut::with_capacity(fixed + encoded_len(run));
            let start = begin_message(&mut msg, message_type::UPDATE);
            msg.put_u16(0);
            msg.put_u16(attr_len(attr_bytes.len())?);
            msg.put_slice(&attr_bytes);
            run.iter().for_each(|n| encode_nlri(n, add_path, &mut msg));
            finish_message(&mut msg, start, max, "UPDATE")?;
            out.push(msg.freeze());
        }
    } else {
        let mut head = BytesMut::new();
        encode_mp_reach_head(af, &next_hop, &mut head);
        let value = |n: usize| head.len() + n;
        for run in chunks(nlri, max, fixed, |n| attr_header(value(n)) + value(n))? {
            let run = nlri.get(run).unwrap_or_default();
            let mut mp = BytesMut::with_capacity(head.len() + encoded_len(run));
            mp.put_slice(&head);
            encode_nlri_list(run, add_path, &mut mp);
            out.push(mp_message(max, attr::MP_REACH_NLRI, &mp, &attr_bytes)?);
        }
    }
    Ok(out)
}

/// Packs withdrawals of `nlri` (all of family `af`) into UPDATE messages.
pub fn pack_withdraw(
    ctx: &SessionContext,
    af: AfiSafi,
    nlri: &[Nlri],
) -> Result<Vec<Bytes>, EncodeError> {
    check_nlri(nlri, af, ctx)?;
    let max = ctx.max_message_len();
    let add_path = ctx.add_path_send.contains(af);
    let fixed = HEADER_LEN + UPDATE_FIXED;
    let mut out = Vec::new();
    if nlri.is_empty() {
        return Ok(out);
    }
    if af == AfiSafi::IPV4_UNICAST {
        for run in chunks(nlri, max, fixed, |n| n)? {
            let run = nlri.get(run).unwrap_or_default();
            let mut msg = BytesMut::with_capacity(fixed + encoded_len(run));
            let start = begin_message(&mut msg, message_type::UPDATE);
            let len = encoded_len(run);
            msg.put_u16(attr_len(len)?);
            encode_nlri_list(run, add_path, &mut msg);
            msg.put_u16(0);
            finish_message(&mut msg, start, max, "UPDATE")?;
            out.push(msg.freeze());
        }
    } else {
        let value = |n: usize| 3 + n;
        for run in chunks(nlri, max, fixed, |n| attr_header(value(n)) + value(n))? {
            let run = nlri.get(run).unwrap_or_default();
            let mut mp = BytesMut::with_capacity(3 + encoded_len(run));
            encode_mp_unreach_head(af, &mut mp);
            encode_nlri_list(run, add_path, &mut mp);
            out.push(mp_message(max, attr::MP_UNREACH_NLRI, &mp, &[])?);
        }
    }
    Ok(out)
}

/// The End-of-RIB marker for `af` as a complete message (RFC 4724 §2).
pub fn end_of_rib(ctx: &SessionContext, af: AfiSafi) -> Result<Bytes, EncodeError> {
    crate::Message::Update(Update::end_of_rib(af)).encode(ctx)
}

fn encoded_len(run: &[Nlri]) -> usize {
    run.iter().map(Nlri::encoded_len).sum()
}

fn attr_len(len: usize) -> Result<u16, EncodeError> {
    u16::try_from(len).map_err(|_| EncodeError::FieldTooLong {
        what: "UPDATE length field",
        length: len,
        max: 65535,
    })
}

/// An UPDATE with no withdrawn routes, the MP attribute `code` with `value` first, then `rest`.
fn mp_message(max: usize, code: u8, value: &[u8], rest: &[u8]) -> Result<Bytes, EncodeError> {
    let mut msg = BytesMut::with_capacity(HEADER_LEN + UPDATE_FIXED + 4 + value.len() + rest.len());
    let start = begin_message(&mut msg, message_type::UPDATE);
    msg.put_u16(0);
    msg.put_u16(attr_len(
        attr_header(value.len()) + value.len() + rest.len(),
    )?);
    crate::attribute::put_attribute(&mut msg, attr_flags::OPTIONAL, code, value).map_err(|_| {
        EncodeError::AttributeTooLong {
            attr: AttrName(code),
            length: value.len(),
        }
    })?;
    msg.put_slice(rest);
    finish_message(&mut msg, start, max, "UPDATE")?;
    Ok(msg.freeze())
}
