//! The OPEN message (RFC 4271 §4.2) with capabilities (RFC 5492), RFC 9072 extended optional
//! parameters, and the OPEN checks of RFC 4271 §6.2, RFC 6286, RFC 6793 and RFC 7607.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |   Hold Time   ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |  Optional Parameters: Type (1), Length (1), Value ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! RFC 9072 extended form (used when the parameters exceed 255 octets):
//! | Non-Ext OP Len (255) | Non-Ext OP Type (255) | Extended Opt. Parm. Length (2) |
//! | Parameters: Type (1), Length (2), Value ... |
//! ```

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use crate::capability::{AddPathMode, Capability};
use crate::error::{DecodeError, EncodeError, Reason};
use crate::iana::{AS_TRANS, AfiSafi, error_code::open as sub, open_param};
use crate::reader::Reader;

/// The only BGP version.
pub const BGP_VERSION: u8 = 4;

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Open {
    /// Protocol version (4).
    pub version: u8,
    /// The 2-octet My Autonomous System field (AS_TRANS when the real AS needs 4 octets).
    pub my_as: u16,
    /// Proposed hold time in seconds (0, or at least 3).
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_identifier: Ipv4Addr,
    /// Capabilities, in the order received.
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// Builds an OPEN for `asn`: the 2-octet field is `asn` or AS_TRANS, and a 4-octet AS
    /// capability is appended unless `capabilities` already has one.
    pub fn new(
        asn: u32,
        hold_time: u16,
        bgp_identifier: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Open {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Open {
            version: BGP_VERSION,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS as u16),
            hold_time,
            bgp_identifier,
            capabilities,
        }
    }

    /// The sender's AS: the 4-octet AS capability if present, else the 2-octet field.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// The 4-octet AS capability value, if advertised.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// Families advertised with the Multiprotocol capability.
    pub fn multiprotocol(&self) -> impl Iterator<Item = AfiSafi> + '_ {
        self.capabilities.iter().filter_map(|c| match c {
            Capability::Multiprotocol(af) => Some(*af),
            _ => None,
        })
    }

    /// ADD-PATH entries advertised.
    pub fn add_path(&self) -> impl Iterator<Item = (AfiSafi, AddPathMode)> + '_ {
        self.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::AddPath(e) => Some(e.iter().copied()),
                _ => None,
            })
            .flatten()
    }

    /// Whether a capability with this code was advertised.
    pub fn has_capability(&self, code: u8) -> bool {
        self.capabilities.iter().any(|c| c.code() == code)
    }

    /// Checks the peer AS against the configured one (RFC 4271 §6.2: Bad Peer AS).
    pub fn check_peer_as(&self, expected: u32) -> Result<(), DecodeError> {
        let asn = self.asn();
        if asn == expected {
            Ok(())
        } else {
            Err(DecodeError::open(
                sub::BAD_PEER_AS,
                Vec::new(),
                Reason::BadPeerAs {
                    asn,
                    rule: "it is not the AS configured for this peer (RFC 4271 §6.2)",
                },
            ))
        }
    }

    /// Decodes an OPEN body (after the header) and applies the checks every OPEN must pass:
    /// version, AS 0 and AS_TRANS rules, hold time, BGP identifier, optional parameters.
    pub fn decode(body: &[u8]) -> Result<Open, DecodeError> {
        let mut r = Reader::new(body);
        let (Some(version), Some(my_as), Some(hold_time), Some(id), Some(opt_len)) =
            (r.u8(), r.u16(), r.u16(), r.u32(), r.u8())
        else {
            return Err(malformed_params(
                "OPEN body shorter than its 10 fixed octets",
            ));
        };
        if version != BGP_VERSION {
            return Err(DecodeError::open(
                sub::UNSUPPORTED_VERSION,
                u16::from(BGP_VERSION).to_be_bytes().to_vec(),
                Reason::UnsupportedVersion { version },
            ));
        }
        let capabilities = decode_parameters(opt_len, r.rest())?;
        let open = Open {
            version,
            my_as,
            hold_time,
            bgp_identifier: Ipv4Addr::from(id),
            capabilities,
        };
        open.validate()?;
        Ok(open)
    }

    fn validate(&self) -> Result<(), DecodeError> {
        let bad_as = |asn: u32, rule: &'static str| {
            Err(DecodeError::open(
                sub::BAD_PEER_AS,
                Vec::new(),
                Reason::BadPeerAs { asn, rule },
            ))
        };
        let two = u32::from(self.my_as);
        match self.four_octet_as() {
            None if two == 0 => return bad_as(0, "AS 0 is reserved (RFC 7607 §2)"),
            None if two == AS_TRANS => {
                return bad_as(
                    two,
                    "AS_TRANS is not a real AS without the 4-octet AS capability (RFC 6793 §9)",
                );
            }
            Some(0) => {
                return bad_as(
                    0,
                    "AS 0 in the 4-octet AS capability is reserved (RFC 7607 §2)",
                );
            }
            Some(AS_TRANS) => {
                return bad_as(
                    AS_TRANS,
                    "AS_TRANS must not be advertised as the 4-octet AS (RFC 6793 §9)",
                );
            }
            Some(_) if two == 0 => {
                return bad_as(0, "AS 0 in My Autonomous System is reserved (RFC 7607 §2)");
            }
            Some(four) if four <= 0xffff && two != four && two != AS_TRANS => {
                return bad_as(
                    two,
                    "My Autonomous System disagrees with the 4-octet AS capability (RFC 6793 §4.1)",
                );
            }
            Some(four) if four > 0xffff && two != AS_TRANS => {
                return bad_as(
                    two,
                    "My Autonomous System must be AS_TRANS when the AS needs 4 octets (RFC 6793 §4.1)",
                );
            }
            _ => {}
        }
        if matches!(self.hold_time, 1 | 2) {
            return Err(DecodeError::open(
                sub::UNACCEPTABLE_HOLD_TIME,
                Vec::new(),
                Reason::UnacceptableHoldTime {
                    hold_time: self.hold_time,
                },
            ));
        }
        if self.bgp_identifier.is_unspecified() {
            return Err(DecodeError::open(
                sub::BAD_BGP_IDENTIFIER,
                Vec::new(),
                Reason::BadBgpIdentifier {
                    id: self.bgp_identifier,
                },
            ));
        }
        Ok(())
    }

    /// Appends the OPEN body (after the header) to `out`. Parameters longer than 255 octets use
    /// the RFC 9072 extended form.
    pub fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let mut caps = BytesMut::new();
        for c in &self.capabilities {
            c.encode(&mut caps)?;
        }
        out.put_u8(self.version);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.bgp_identifier.octets());
        if caps.is_empty() {
            out.put_u8(0);
            return Ok(());
        }
        match (u8::try_from(caps.len() + 2), u8::try_from(caps.len())) {
            (Ok(total), Ok(param_len)) => {
                out.put_u8(total);
                out.put_u8(open_param::CAPABILITIES);
                out.put_u8(param_len);
                out.put_slice(&caps);
                Ok(())
            }
            _ => self.encode_extended(out, &caps),
        }
    }

    fn encode_extended(&self, out: &mut BytesMut, caps: &[u8]) -> Result<(), EncodeError> {
        let too_long = || EncodeError::FieldTooLong {
            what: "OPEN optional parameters",
            length: caps.len(),
            max: 65532,
        };
        let param_len = u16::try_from(caps.len()).map_err(|_| too_long())?;
        let total = param_len.checked_add(3).ok_or_else(too_long)?;
        out.put_u8(open_param::EXTENDED_LENGTH);
        out.put_u8(open_param::EXTENDED_LENGTH);
        out.put_u16(total);
        out.put_u8(open_param::CAPABILITIES);
        out.put_u16(param_len);
        out.put_slice(caps);
        Ok(())
    }
}

fn malformed_params(detail: &'static str) -> DecodeError {
    DecodeError::open(
        sub::UNSPECIFIC,
        Vec::new(),
        Reason::MalformedOptionalParameters { detail },
    )
}

/// Decodes the optional parameters region (everything after Opt Parm Len).
fn decode_parameters(opt_len: u8, rest: &[u8]) -> Result<Vec<Capability>, DecodeError> {
    let mut caps = Vec::new();
    let extended = opt_len != 0 && rest.first() == Some(&open_param::EXTENDED_LENGTH);
    let mut r = Reader::new(rest);
    let params = if extended {
        let _non_ext_type = r.u8();
        let Some(ext_len) = r.u16() else {
            return Err(malformed_params(
                "extended optional parameters length truncated",
            ));
        };
        if usize::from(ext_len) != r.remaining() {
            return Err(malformed_params(
                "Extended Opt. Parm. Length disagrees with the message length",
            ));
        }
        r.rest()
    } else {
        if usize::from(opt_len) != rest.len() {
            return Err(malformed_params(
                "Opt Parm Len disagrees with the message length",
            ));
        }
        rest
    };
    let mut r = Reader::new(params);
    while !r.is_empty() {
        let Some(param_type) = r.u8() else { break };
        let len = if extended {
            r.u16()
        } else {
            r.u8().map(u16::from)
        };
        let Some(value) = len.and_then(|l| r.take(usize::from(l))) else {
            return Err(malformed_params(
                "optional parameter overruns the parameters field",
            ));
        };
        if param_type != open_param::CAPABILITIES {
            return Err(DecodeError::open(
                sub::UNSUPPORTED_OPTIONAL_PARAMETER,
                Vec::new(),
                Reason::UnsupportedOptionalParameter { param_type },
            ));
        }
        Capability::decode_all(value, &mut caps)?;
    }
    Ok(caps)
}
