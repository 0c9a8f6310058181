//! Capabilities advertised in OPEN (RFC 5492): typed forms of the ones the speaker uses, and
//! unknown ones kept verbatim.
//!
//! ```text
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! +------------------------------+
//! | Capability Length (1 octet)  |
//! +------------------------------+
//! | Capability Value (variable)  |
//! +------------------------------+
//! ```

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError, Reason};
use crate::iana::{AfiSafi, capability as code, error_code::open as sub};
use crate::reader::Reader;

/// ADD-PATH Send/Receive field (RFC 7911 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddPathMode {
    /// 1: the sender can receive multiple paths.
    Receive,
    /// 2: the sender can send multiple paths.
    Send,
    /// 3: both.
    Both,
}

impl AddPathMode {
    fn from_wire(v: u8) -> Option<Self> {
        match v {
            1 => Some(AddPathMode::Receive),
            2 => Some(AddPathMode::Send),
            3 => Some(AddPathMode::Both),
            _ => None,
        }
    }

    fn to_wire(self) -> u8 {
        match self {
            AddPathMode::Receive => 1,
            AddPathMode::Send => 2,
            AddPathMode::Both => 3,
        }
    }
}

/// Graceful Restart capability value (RFC 4724 §3).
///
/// ```text
/// +--------------------------------------------------+
/// | Restart Flags (4 bits) | Restart Time (12 bits)  |
/// +--------------------------------------------------+
/// | AFI (2 octets) | SAFI (1 octet) | Flags (1 octet)|  repeated
/// +--------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restart_state: bool,
    /// N bit (RFC 8538): the sender supports Graceful Restart for NOTIFICATION messages.
    pub notification: bool,
    /// Restart time in seconds (12 bits; larger values are clamped on encode).
    pub restart_time: u16,
    /// Families with their F bit (forwarding state preserved).
    pub families: Vec<(AfiSafi, bool)>,
}

/// FQDN capability value (draft-walton-bgp-hostname-capability): host and domain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Fqdn {
    /// Host name.
    pub hostname: String,
    /// Domain name (often empty).
    pub domain: String,
}

/// Extended Next Hop Encoding tuple (RFC 8950 §3): NLRI of `nlri` may carry a next hop of
/// `next_hop_afi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtendedNextHop {
    /// NLRI AFI.
    pub nlri_afi: u16,
    /// NLRI SAFI (2 octets on the wire).
    pub nlri_safi: u16,
    /// Next hop AFI.
    pub next_hop_afi: u16,
}

/// One capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Multiprotocol Extensions (1), RFC 4760 §8.
    Multiprotocol(AfiSafi),
    /// Route Refresh (2), RFC 2918.
    RouteRefresh,
    /// Extended Next Hop Encoding (5), RFC 8950.
    ExtendedNextHop(Vec<ExtendedNextHop>),
    /// BGP Extended Message (6), RFC 8654.
    ExtendedMessage,
    /// Graceful Restart (64), RFC 4724.
    GracefulRestart(GracefulRestart),
    /// 4-octet AS number (65), RFC 6793.
    FourOctetAs(u32),
    /// ADD-PATH (69), RFC 7911.
    AddPath(Vec<(AfiSafi, AddPathMode)>),
    /// Enhanced Route Refresh (70), RFC 7313.
    EnhancedRouteRefresh,
    /// FQDN (73).
    Fqdn(Fqdn),
    /// Any other capability, or an FQDN/ADD-PATH value this codec cannot read, kept verbatim.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        value: Vec<u8>,
    },
}

fn malformed(code: u8, detail: &'static str, tlv: &[u8]) -> DecodeError {
    DecodeError::open(
        sub::UNSPECIFIC,
        tlv.to_vec(),
        Reason::MalformedCapability { code, detail },
    )
}

impl Capability {
    /// The capability code.
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => code::MULTIPROTOCOL,
            Capability::RouteRefresh => code::ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => code::EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => code::EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => code::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => code::FOUR_OCTET_AS,
            Capability::AddPath(_) => code::ADD_PATH,
            Capability::EnhancedRouteRefresh => code::ENHANCED_ROUTE_REFRESH,
            Capability::Fqdn(_) => code::FQDN,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Decodes the capabilities inside one Capabilities optional parameter. A known capability
    /// with a malformed value is an OPEN Message Error (2/0) with the capability as data;
    /// unknown capabilities are kept (RFC 5492 §5: ignored by the speaker).
    pub fn decode_all(value: &[u8], out: &mut Vec<Capability>) -> Result<(), DecodeError> {
        let mut r = Reader::new(value);
        while !r.is_empty() {
            let tlv_start = r.rest();
            let (Some(c), Some(len)) = (r.u8(), r.u8()) else {
                return Err(malformed(0, "capability header truncated", tlv_start));
            };
            let Some(v) = r.take(usize::from(len)) else {
                return Err(malformed(
                    c,
                    "capability length overruns the parameter",
                    tlv_start,
                ));
            };
            let tlv = tlv_start.get(..2 + v.len()).unwrap_or(tlv_start);
            out.push(Capability::decode_one(c, v, tlv)?);
        }
        Ok(())
    }

    fn decode_one(c: u8, v: &[u8], tlv: &[u8]) -> Result<Capability, DecodeError> {
        let unknown = || Capability::Unknown {
            code: c,
            value: v.to_vec(),
        };
        let mut r = Reader::new(v);
        Ok(match c {
            code::MULTIPROTOCOL => {
                let [a0, a1, _reserved, safi] = r
                    .array::<4>()
                    .filter(|_| v.len() == 4)
                    .ok_or_else(|| malformed(c, "multiprotocol value must be 4 octets", tlv))?;
                Capability::Multiprotocol(AfiSafi::new(u16::from_be_bytes([a0, a1]), safi))
            }
            code::ROUTE_REFRESH | code::EXTENDED_MESSAGE | code::ENHANCED_ROUTE_REFRESH => {
                if !v.is_empty() {
                    return Err(malformed(c, "value must be empty", tlv));
                }
                match c {
                    code::ROUTE_REFRESH => Capability::RouteRefresh,
                    code::EXTENDED_MESSAGE => Capability::ExtendedMessage,
                    _ => Capability::EnhancedRouteRefresh,
                }
            }
            code::FOUR_OCTET_AS => {
                let asn = r
                    .u32()
                    .filter(|_| v.len() == 4)
                    .ok_or_else(|| malformed(c, "4-octet AS value must be 4 octets", tlv))?;
                Capability::FourOctetAs(asn)
            }
            code::GRACEFUL_RESTART => {
                if v.len() < 2 || !(v.len() - 2).is_multiple_of(4) {
                    return Err(malformed(
                        c,
                        "graceful restart value must be 2 + 4n octets",
                        tlv,
                    ));
                }
                let head = r.u16().unwrap_or(0);
                let mut families = Vec::with_capacity((v.len() - 2) / 4);
                while let Some([a0, a1, safi, flags]) = r.array::<4>() {
                    families.push((
                        AfiSafi::new(u16::from_be_bytes([a0, a1]), safi),
                        flags & 0x80 != 0,
                    ));
                }
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: head & 0x8000 != 0,
                    notification: head & 0x4000 != 0,
                    restart_time: head & 0x0fff,
                    families,
                })
            }
            code::ADD_PATH => {
                if !v.len().is_multiple_of(4) {
                    return Err(malformed(c, "ADD-PATH value must be 4n octets", tlv));
                }
                let mut entries = Vec::with_capacity(v.len() / 4);
                while let Some([a0, a1, safi, mode]) = r.array::<4>() {
                    // RFC 7911 §4: any other Send/Receive value means the capability is not
                    // understood; keep it verbatim so the speaker ignores it.
                    let Some(mode) = AddPathMode::from_wire(mode) else {
                        return Ok(unknown());
                    };
                    entries.push((AfiSafi::new(u16::from_be_bytes([a0, a1]), safi), mode));
                }
                Capability::AddPath(entries)
            }
            code::EXTENDED_NEXT_HOP => {
                if !v.len().is_multiple_of(6) {
                    return Err(malformed(
                        c,
                        "extended next hop value must be 6n octets",
                        tlv,
                    ));
                }
                let mut entries = Vec::with_capacity(v.len() / 6);
                while let (Some(nlri_afi), Some(nlri_safi), Some(next_hop_afi)) =
                    (r.u16(), r.u16(), r.u16())
                {
                    entries.push(ExtendedNextHop {
                        nlri_afi,
                        nlri_safi,
                        next_hop_afi,
                    });
                }
                Capability::ExtendedNextHop(entries)
            }
            code::FQDN => {
                // A draft with loose implementations: anything unreadable is kept verbatim.
                let text = |r: &mut Reader<'_>| {
                    let n = r.u8()?;
                    let bytes = r.take(usize::from(n))?;
                    String::from_utf8(bytes.to_vec()).ok()
                };
                match (text(&mut r), text(&mut r)) {
                    (Some(hostname), Some(domain)) if r.is_empty() => {
                        Capability::Fqdn(Fqdn { hostname, domain })
                    }
                    _ => unknown(),
                }
            }
            _ => unknown(),
        })
    }

    /// Appends the capability TLV (code, length, value) to `out`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let mut v = BytesMut::new();
        match self {
            Capability::Multiprotocol(af) => {
                v.put_u16(af.afi);
                v.put_u8(0);
                v.put_u8(af.safi);
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(entries) => {
                for e in entries {
                    v.put_u16(e.nlri_afi);
                    v.put_u16(e.nlri_safi);
                    v.put_u16(e.next_hop_afi);
                }
            }
            Capability::GracefulRestart(gr) => {
                let mut head = gr.restart_time.min(0x0fff);
                if gr.restart_state {
                    head |= 0x8000;
                }
                if gr.notification {
                    head |= 0x4000;
                }
                v.put_u16(head);
                for (af, forwarding) in &gr.families {
                    v.put_u16(af.afi);
                    v.put_u8(af.safi);
                    v.put_u8(if *forwarding { 0x80 } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => v.put_u32(*asn),
            Capability::AddPath(entries) => {
                for (af, mode) in entries {
                    v.put_u16(af.afi);
                    v.put_u8(af.safi);
                    v.put_u8(mode.to_wire());
                }
            }
            Capability::Fqdn(f) => {
                for s in [&f.hostname, &f.domain] {
                    let n = u8::try_from(s.len()).map_err(|_| EncodeError::FieldTooLong {
                        what: "FQDN capability name",
                        length: s.len(),
                        max: 255,
                    })?;
                    v.put_u8(n);
                    v.put_slice(s.as_bytes());
                }
            }
            Capability::Unknown { value, .. } => v.put_slice(value),
        }
        let len = u8::try_from(v.len()).map_err(|_| EncodeError::FieldTooLong {
            what: "capability value",
            length: v.len(),
            max: 255,
        })?;
        out.put_u8(self.code());
        out.put_u8(len);
        out.put_slice(&v);
        Ok(())
    }
}
