//! ROUTE-REFRESH (RFC 2918 §3) with the Enhanced Route Refresh subtypes BoRR/EoRR (RFC 7313 §3).
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Subtyp| SAFI  |
//! +-------+-------+-------+-------+
//! ```

use bytes::{BufMut, BytesMut};

use crate::context::SessionContext;
use crate::error::{DecodeError, ErrorAction, Reason};
use crate::header::MARKER;
use crate::iana::{AfiSafi, error_code, message_type};

/// Message Subtype (RFC 7313 §3; the "Reserved" octet of RFC 2918).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteRefreshSubtype {
    /// 0: a normal route refresh request.
    Normal,
    /// 1: Beginning of Route Refresh.
    BeginningOfRib,
    /// 2: End of Route Refresh.
    EndOfRib,
    /// Any other value: RFC 7313 §4 says the message MUST be ignored.
    Other(u8),
}

impl RouteRefreshSubtype {
    fn to_wire(self) -> u8 {
        match self {
            RouteRefreshSubtype::Normal => 0,
            RouteRefreshSubtype::BeginningOfRib => 1,
            RouteRefreshSubtype::EndOfRib => 2,
            RouteRefreshSubtype::Other(v) => v,
        }
    }
}

/// A ROUTE-REFRESH message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    /// Family to refresh.
    pub afi_safi: AfiSafi,
    /// Subtype.
    pub subtype: RouteRefreshSubtype,
}

impl RouteRefresh {
    /// A normal refresh request for `af`.
    pub fn request(af: AfiSafi) -> RouteRefresh {
        RouteRefresh {
            afi_safi: af,
            subtype: RouteRefreshSubtype::Normal,
        }
    }

    /// Decodes a ROUTE-REFRESH body. A length other than 23 is ROUTE-REFRESH Message Error 7/1
    /// with the whole message as data when Enhanced Route Refresh is negotiated (RFC 7313 §5),
    /// otherwise Bad Message Length 1/2.
    pub fn decode(body: &[u8], ctx: &SessionContext) -> Result<RouteRefresh, DecodeError> {
        let Ok([a0, a1, subtype, safi]) = <[u8; 4]>::try_from(body) else {
            let length = u16::try_from(body.len() + crate::HEADER_LEN).unwrap_or(u16::MAX);
            let reason = Reason::RouteRefreshLength { length };
            return Err(if ctx.enhanced_route_refresh {
                let mut data = Vec::with_capacity(usize::from(length));
                data.extend_from_slice(&MARKER);
                data.extend_from_slice(&length.to_be_bytes());
                data.push(message_type::ROUTE_REFRESH);
                data.extend_from_slice(body);
                DecodeError::new(
                    error_code::ROUTE_REFRESH_MESSAGE,
                    error_code::route_refresh::INVALID_MESSAGE_LENGTH,
                    data,
                    ErrorAction::SessionReset,
                    reason,
                )
            } else {
                DecodeError::header(
                    error_code::header::BAD_MESSAGE_LENGTH,
                    length.to_be_bytes().to_vec(),
                    reason,
                )
            });
        };
        let subtype = match subtype {
            0 => RouteRefreshSubtype::Normal,
            1 => RouteRefreshSubtype::BeginningOfRib,
            2 => RouteRefreshSubtype::EndOfRib,
            v => RouteRefreshSubtype::Other(v),
        };
        Ok(RouteRefresh {
            afi_safi: AfiSafi::new(u16::from_be_bytes([a0, a1]), safi),
            subtype,
        })
    }

    /// Appends the body.
    pub fn encode_body(&self, out: &mut BytesMut) {
        out.put_u16(self.afi_safi.afi);
        out.put_u8(self.subtype.to_wire());
        out.put_u8(self.afi_safi.safi);
    }
}
