//! BGP-4 message codec: OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH with RFC 7606 error handling (no I/O).
//!
//! * Decoding never panics and allocates at most a small multiple of the input length; every
//!   loop consumes input on each turn. Errors are [`DecodeError`]s that carry the NOTIFICATION
//!   (code, subcode, data), the RFC 7606 [`ErrorAction`] and a [`Reason`] naming the rule.
//! * Session facts that change the wire format (4-octet AS, ADD-PATH, Extended Message, iBGP or
//!   eBGP) live in [`SessionContext`], built with [`SessionContext::negotiate`] from both OPENs.
//! * Encoding never emits an illegal message: [`Message::encode`] fails with [`EncodeError`]
//!   when a message would exceed the negotiated maximum, and [`pack_announce`] /
//!   [`pack_withdraw`] split any number of prefixes into legal UPDATEs.
//!
//! ```
//! use bgp_wire::{Message, SessionContext, Update, AfiSafi};
//! let ctx = SessionContext::default();
//! let eor = Message::Update(Update::end_of_rib(AfiSafi::IPV6_UNICAST)).encode(&ctx).unwrap();
//! let Message::Update(u) = Message::decode(&eor, &ctx).unwrap() else { unreachable!() };
//! assert_eq!(u.as_end_of_rib(), Some(AfiSafi::IPV6_UNICAST));
//! ```
#![forbid(unsafe_code)]

pub mod attribute;
pub mod capability;
pub mod context;
pub mod error;
pub mod header;
pub mod iana;
pub mod notification;
pub mod open;
pub mod packer;
pub mod prefix;
pub mod route_refresh;
pub mod update;

mod reader;

use bytes::{Bytes, BytesMut};

pub use attribute::as_path::{AsPath, AsSegment, SegmentType};
pub use attribute::community::{Community, CommunityParseError, ExtendedCommunity, LargeCommunity};
pub use attribute::mp::{MpReach, MpUnreach, NextHop};
pub use attribute::{Aggregator, Origin, PathAttributes, RawAttribute};
pub use capability::{AddPathMode, Capability, ExtendedNextHop, Fqdn, GracefulRestart};
pub use context::{AfiSafiSet, PeerKind, SessionContext};
pub use error::{DecodeError, EncodeError, ErrorAction, Reason};
pub use header::{Header, decode_header};
pub use iana::{AS_TRANS, AfiSafi};
pub use ipnet;
pub use notification::Notification;
pub use open::Open;
pub use packer::{end_of_rib, pack_announce, pack_withdraw};
pub use prefix::{Nlri, Prefix};
pub use route_refresh::{RouteRefresh, RouteRefreshSubtype};
pub use update::{Update, is_invalid_next_hop};

/// Length of the message header.
pub const HEADER_LEN: usize = 19;
/// Largest message without the Extended Message capability (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest message with the Extended Message capability (RFC 8654).
pub const EXTENDED_MAX_MESSAGE_LEN: usize = 65535;

/// A BGP message.
// An UPDATE is a few hundred octets inline; messages are decoded, matched and dropped, so
// boxing it would add an allocation per UPDATE for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN.
    Open(Open),
    /// UPDATE.
    Update(Update),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE (header only).
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The message type code.
    pub fn msg_type(&self) -> u8 {
        use iana::message_type as t;
        match self {
            Message::Open(_) => t::OPEN,
            Message::Update(_) => t::UPDATE,
            Message::Notification(_) => t::NOTIFICATION,
            Message::Keepalive => t::KEEPALIVE,
            Message::RouteRefresh(_) => t::ROUTE_REFRESH,
        }
    }

    /// Decodes exactly one message, header included. A framer reads the length with
    /// [`decode_header`] first and passes the whole frame here.
    pub fn decode(frame: &[u8], ctx: &SessionContext) -> Result<Message, DecodeError> {
        use iana::message_type as t;
        let frame_error = |length: u16| {
            DecodeError::header(
                iana::error_code::header::BAD_MESSAGE_LENGTH,
                length.to_be_bytes().to_vec(),
                Reason::FrameLength {
                    length,
                    available: frame.len(),
                },
            )
        };
        let header = decode_header(frame, ctx)?.ok_or_else(|| frame_error(0))?;
        if usize::from(header.length) != frame.len() {
            return Err(frame_error(header.length));
        }
        let body = frame.get(HEADER_LEN..).unwrap_or_default();
        Ok(match header.msg_type {
            t::OPEN => Message::Open(Open::decode(body)?),
            t::UPDATE => Message::Update(Update::decode(body, ctx)?),
            t::NOTIFICATION => Message::Notification(
                Notification::decode(body).ok_or_else(|| frame_error(header.length))?,
            ),
            t::KEEPALIVE => Message::Keepalive,
            _ => Message::RouteRefresh(RouteRefresh::decode(body, ctx)?),
        })
    }

    /// Encodes the message, header included.
    pub fn encode(&self, ctx: &SessionContext) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::new();
        self.encode_into(ctx, &mut out)?;
        Ok(out.freeze())
    }

    /// Appends the encoded message to `out`; on error `out` is left as it was.
    pub fn encode_into(&self, ctx: &SessionContext, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = header::begin_message(out, self.msg_type());
        let (max, what) = match self {
            Message::Open(o) => {
                let r = o.encode_body(out);
                (MAX_MESSAGE_LEN, r.map(|()| "OPEN"))
            }
            Message::Update(u) => (
                ctx.max_message_len(),
                u.encode_body(ctx, out).map(|()| "UPDATE"),
            ),
            Message::Notification(n) => {
                n.encode_body(out);
                (ctx.max_message_len(), Ok("NOTIFICATION"))
            }
            Message::Keepalive => (HEADER_LEN, Ok("KEEPALIVE")),
            Message::RouteRefresh(r) => {
                r.encode_body(out);
                (ctx.max_message_len(), Ok("ROUTE-REFRESH"))
            }
        };
        match what {
            Ok(what) => header::finish_message(out, start, max, what),
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}
