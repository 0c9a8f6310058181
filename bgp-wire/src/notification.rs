//! NOTIFICATION (RFC 4271 §4.5) with the RFC 8203 / RFC 9003 shutdown communication carried by
//! Cease / Administrative Shutdown and Administrative Reset.
//!
//! ```text
//! +---------------+---------------+---------------------------------+
//! | Error code (1)| Error subcode (1) | Data (variable)             |
//! +---------------+---------------+---------------------------------+
//! Shutdown communication data: | Length (1) | UTF-8 message (Length octets) |
//! ```

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::error::EncodeError;
use crate::iana::error_code::{self as ec, cease};

/// Longest shutdown communication (RFC 9003 §2; RFC 8203 allowed 128).
pub const MAX_SHUTDOWN_COMMUNICATION: usize = 255;

/// A NOTIFICATION message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data.
    pub data: Vec<u8>,
}

impl Notification {
    /// Builds a NOTIFICATION.
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// A Cease with a shutdown communication (`subcode` 2 Administrative Shutdown or 4
    /// Administrative Reset). Fails if the message exceeds 255 octets of UTF-8.
    pub fn with_shutdown_communication(
        subcode: u8,
        message: &str,
    ) -> Result<Notification, EncodeError> {
        let len = u8::try_from(message.len()).map_err(|_| EncodeError::FieldTooLong {
            what: "shutdown communication",
            length: message.len(),
            max: MAX_SHUTDOWN_COMMUNICATION,
        })?;
        let mut data = Vec::with_capacity(message.len() + 1);
        data.push(len);
        data.extend_from_slice(message.as_bytes());
        Ok(Notification {
            code: ec::CEASE,
            subcode,
            data,
        })
    }

    /// The shutdown communication of a Cease 2/4, if the data holds a well-formed one.
    pub fn shutdown_communication(&self) -> Option<&str> {
        if self.code != ec::CEASE
            || !matches!(
                self.subcode,
                cease::ADMINISTRATIVE_SHUTDOWN | cease::ADMINISTRATIVE_RESET
            )
        {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        std::str::from_utf8(rest.get(..usize::from(len))?).ok()
    }

    /// Decodes a NOTIFICATION body (after the header); `None` if shorter than code + subcode.
    pub fn decode(body: &[u8]) -> Option<Notification> {
        let (&code, rest) = body.split_first()?;
        let (&subcode, data) = rest.split_first()?;
        Some(Notification {
            code,
            subcode,
            data: data.to_vec(),
        })
    }

    /// Appends the body.
    pub fn encode_body(&self, out: &mut BytesMut) {
        out.put_u8(self.code);
        out.put_u8(self.subcode);
        out.put_slice(&self.data);
    }

    /// Name of the error code and subcode.
    pub fn describe(&self) -> (&'static str, &'static str) {
        let code = match self.code {
            ec::MESSAGE_HEADER => "Message Header Error",
            ec::OPEN_MESSAGE => "OPEN Message Error",
            ec::UPDATE_MESSAGE => "UPDATE Message Error",
            ec::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            ec::FSM => "Finite State Machine Error",
            ec::CEASE => "Cease",
            ec::ROUTE_REFRESH_MESSAGE => "ROUTE-REFRESH Message Error",
            _ => "unknown error code",
        };
        let sub = match (self.code, self.subcode) {
            (_, 0) => "Unspecific",
            (ec::MESSAGE_HEADER, 1) => "Connection Not Synchronized",
            (ec::MESSAGE_HEADER, 2) => "Bad Message Length",
            (ec::MESSAGE_HEADER, 3) => "Bad Message Type",
            (ec::OPEN_MESSAGE, 1) => "Unsupported Version Number",
            (ec::OPEN_MESSAGE, 2) => "Bad Peer AS",
            (ec::OPEN_MESSAGE, 3) => "Bad BGP Identifier",
            (ec::OPEN_MESSAGE, 4) => "Unsupported Optional Parameter",
            (ec::OPEN_MESSAGE, 6) => "Unacceptable Hold Time",
            (ec::OPEN_MESSAGE, 7) => "Unsupported Capability",
            (ec::UPDATE_MESSAGE, 1) => "Malformed Attribute List",
            (ec::UPDATE_MESSAGE, 2) => "Unrecognized Well-known Attribute",
            (ec::UPDATE_MESSAGE, 3) => "Missing Well-known Attribute",
            (ec::UPDATE_MESSAGE, 4) => "Attribute Flags Error",
            (ec::UPDATE_MESSAGE, 5) => "Attribute Length Error",
            (ec::UPDATE_MESSAGE, 6) => "Invalid ORIGIN Attribute",
            (ec::UPDATE_MESSAGE, 8) => "Invalid NEXT_HOP Attribute",
            (ec::UPDATE_MESSAGE, 9) => "Optional Attribute Error",
            (ec::UPDATE_MESSAGE, 10) => "Invalid Network Field",
            (ec::UPDATE_MESSAGE, 11) => "Malformed AS_PATH",
            (ec::CEASE, cease::MAX_PREFIXES) => "Maximum Number of Prefixes Reached",
            (ec::CEASE, cease::ADMINISTRATIVE_SHUTDOWN) => "Administrative Shutdown",
            (ec::CEASE, cease::PEER_DECONFIGURED) => "Peer De-configured",
            (ec::CEASE, cease::ADMINISTRATIVE_RESET) => "Administrative Reset",
            (ec::CEASE, cease::CONNECTION_REJECTED) => "Connection Rejected",
            (ec::CEASE, cease::OTHER_CONFIGURATION_CHANGE) => "Other Configuration Change",
            (ec::CEASE, cease::CONNECTION_COLLISION_RESOLUTION) => {
                "Connection Collision Resolution"
            }
            (ec::CEASE, cease::OUT_OF_RESOURCES) => "Out of Resources",
            (ec::CEASE, cease::HARD_RESET) => "Hard Reset",
            (ec::ROUTE_REFRESH_MESSAGE, 1) => "Invalid Message Length",
            _ => "unknown subcode",
        };
        (code, sub)
    }
}

impl fmt::Display for Notification {
    /// `6/2 Cease / Administrative Shutdown: "maintenance"` or `... data 00 10`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, sub) = self.describe();
        write!(f, "{}/{} {code} / {sub}", self.code, self.subcode)?;
        if let Some(msg) = self.shutdown_communication() {
            write!(f, ": {msg:?}")
        } else if !self.data.is_empty() {
            f.write_str(", data")?;
            self.data
                .iter()
                .take(64)
                .try_for_each(|b| write!(f, " {b:02x}"))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shutdown_communication_round_trips_and_displays() {
        let n = Notification::with_shutdown_communication(
            cease::ADMINISTRATIVE_SHUTDOWN,
            "node drained",
        )
        .unwrap();
        assert_eq!(n.shutdown_communication(), Some("node drained"));
        assert_eq!(
            n.to_string(),
            "6/2 Cease / Administrative Shutdown: \"node drained\""
        );
    }

    #[test]
    fn a_truncated_or_invalid_shutdown_communication_is_not_returned() {
        let n = Notification::new(6, 2, vec![10, b'a']);
        assert_eq!(n.shutdown_communication(), None);
        let n = Notification::new(6, 4, vec![2, 0xff, 0xfe]);
        assert_eq!(n.shutdown_communication(), None);
        assert!(Notification::with_shutdown_communication(2, &"x".repeat(256)).is_err());
    }
}
