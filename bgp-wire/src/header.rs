//! The 19-octet message header (RFC 4271 §4.1): marker, length, type, and its checks.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                      Marker (16 octets, all ones)             +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length (19..=4096)   |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use bytes::{BufMut, BytesMut};

use crate::context::SessionContext;
use crate::error::{DecodeError, EncodeError, Reason};
use crate::iana::{error_code::header as sub, message_type};
use crate::{HEADER_LEN, MAX_MESSAGE_LEN};

/// The all-ones marker.
pub const MARKER: [u8; 16] = [0xff; 16];

/// A validated message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Total message length including the header.
    pub length: u16,
    /// Message type.
    pub msg_type: u8,
}

/// Smallest and largest legal length of each message type under `ctx`. OPEN and KEEPALIVE
/// never exceed 4096 (RFC 8654 §4).
fn length_bounds(msg_type: u8, ctx: &SessionContext) -> (u16, u16) {
    let max = u16::try_from(ctx.max_message_len()).unwrap_or(u16::MAX);
    match msg_type {
        message_type::OPEN => (29, MAX_MESSAGE_LEN as u16),
        message_type::UPDATE => (23, max),
        message_type::NOTIFICATION => (21, max),
        message_type::KEEPALIVE => (19, 19),
        // The exact 23 is checked by the ROUTE-REFRESH decoder so it can pick the RFC 7313 code.
        _ => (HEADER_LEN as u16, max),
    }
}

/// Reads and checks the header at the start of `buf`. Returns `Ok(None)` while fewer than 19
/// octets are available; a framer then waits for `header.length` octets.
pub fn decode_header(buf: &[u8], ctx: &SessionContext) -> Result<Option<Header>, DecodeError> {
    let Some((fixed, _)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    if fixed[..16] != MARKER {
        return Err(DecodeError::header(
            sub::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            Reason::ConnectionNotSynchronized,
        ));
    }
    let length = u16::from_be_bytes([fixed[16], fixed[17]]);
    let msg_type = fixed[18];
    let bad_length = |min: u16, max: u16| {
        DecodeError::header(
            sub::BAD_MESSAGE_LENGTH,
            length.to_be_bytes().to_vec(),
            Reason::BadMessageLength {
                length,
                msg_type,
                min,
                max,
            },
        )
    };
    let general_max = u16::try_from(ctx.max_message_len()).unwrap_or(u16::MAX);
    if usize::from(length) < HEADER_LEN || length > general_max {
        return Err(bad_length(HEADER_LEN as u16, general_max));
    }
    if !(message_type::OPEN..=message_type::ROUTE_REFRESH).contains(&msg_type) {
        return Err(DecodeError::header(
            sub::BAD_MESSAGE_TYPE,
            vec![msg_type],
            Reason::BadMessageType { msg_type },
        ));
    }
    let (min, max) = length_bounds(msg_type, ctx);
    if length < min || length > max {
        return Err(bad_length(min, max));
    }
    Ok(Some(Header { length, msg_type }))
}

/// Starts a message in `out`: marker, a length placeholder and the type. Returns the offset of
/// the message start for [`finish_message`].
pub(crate) fn begin_message(out: &mut BytesMut, msg_type: u8) -> usize {
    let start = out.len();
    out.reserve(HEADER_LEN);
    out.put_slice(&MARKER);
    out.put_u16(0);
    out.put_u8(msg_type);
    start
}

/// Patches the length of the message begun at `start`, or truncates `out` back to `start` and
/// fails when the message exceeds `max`.
pub(crate) fn finish_message(
    out: &mut BytesMut,
    start: usize,
    max: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let length = out.len() - start;
    match u16::try_from(length) {
        Ok(len16) if length <= max => {
            out[start + 16..start + 18].copy_from_slice(&len16.to_be_bytes());
            Ok(())
        }
        _ => {
            out.truncate(start);
            Err(EncodeError::MessageTooLong { what, length, max })
        }
    }
}
