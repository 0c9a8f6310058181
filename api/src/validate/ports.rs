//! Ports (`80`, `"8080:8090"`, named ports) and IP protocols (`TCP` ... or 1-255), with the
//! JSON shapes Calico uses for them (number or string) and the rules that tie ports to protocols.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Errors;
use crate::validate::names::port_name_problem;

/// A port match: one port, an inclusive range, or a named port of the destination endpoint.
///
/// Written as a number (`80`), a string range (`"8080:8090"`) or a name (`http`). Ranges with
/// equal ends are the single port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Port {
    /// One port number.
    Single(u16),
    /// An inclusive range `min:max`.
    Range {
        /// First port of the range.
        min: u16,
        /// Last port of the range.
        max: u16,
    },
    /// A named port (resolved against endpoints' `ports`).
    Named(String),
}

impl Port {
    /// Parses the string form: digits, `min:max`, or a port name.
    pub fn parse(s: &str) -> Result<Port, String> {
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if all_digits(s) {
            return s
                .parse::<u16>()
                .map(Port::Single)
                .map_err(|_| format!("{s:?} is not a port number; ports are 1-65535"));
        }
        if let Some((a, b)) = s.split_once(':')
            && all_digits(a)
            && all_digits(b)
        {
            let min = a
                .parse::<u16>()
                .map_err(|_| format!("{s:?} has an invalid first port; ports are 1-65535"))?;
            let max = b
                .parse::<u16>()
                .map_err(|_| format!("{s:?} has an invalid last port; ports are 1-65535"))?;
            if min > max {
                return Err(format!(
                    "{s:?} is not a port range: the first port ({min}) is greater than the last ({max})"
                ));
            }
            return Ok(if min == max {
                Port::Single(min)
            } else {
                Port::Range { min, max }
            });
        }
        let name_ok = (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if name_ok {
            Ok(Port::Named(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not a port: expected a number, a range \"min:max\" or a port name"
            ))
        }
    }

    /// Whether this is a named port.
    pub fn is_named(&self) -> bool {
        matches!(self, Port::Named(_))
    }

    /// The inclusive numeric range (`None` for a named port).
    pub fn range(&self) -> Option<(u16, u16)> {
        match self {
            Port::Single(p) => Some((*p, *p)),
            Port::Range { min, max } => Some((*min, *max)),
            Port::Named(_) => None,
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Single(p) => write!(f, "{p}"),
            Port::Range { min, max } => write!(f, "{min}:{max}"),
            Port::Named(n) => f.write_str(n),
        }
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Port::Single(p) => s.serialize_u16(*p),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number, a range \"min:max\" or a port name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                u16::try_from(v)
                    .map(Port::Single)
                    .map_err(|_| E::custom(format!("{v} is not a port number; ports are 1-65535")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("{v} is not a port number; ports are 1-65535")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                Port::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// The rules every port must satisfy on its own: numbers 1-65535, valid port names.
pub(crate) fn check_port(errs: &mut Errors, field: &str, p: &Port) {
    match p {
        Port::Single(0) | Port::Range { min: 0, .. } => {
            errs.add(
                field,
                p.to_string(),
                "is not a valid port; ports are 1-65535",
            );
        }
        Port::Named(n) => {
            if let Some(problem) = port_name_problem(n) {
                errs.add(field, n.as_str(), problem);
            }
        }
        _ => {}
    }
}

/// An IP protocol: one of Calico's names (case-sensitive) or a protocol number 1-255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `TCP` (6).
    Tcp,
    /// `UDP` (17).
    Udp,
    /// `ICMP` (1).
    Icmp,
    /// `ICMPv6` (58).
    IcmpV6,
    /// `SCTP` (132).
    Sctp,
    /// `UDPLite` (136).
    UdpLite,
    /// A protocol given by number, 1-255.
    Number(u8),
}

const PROTOCOL_NAMES: [(&str, Protocol); 6] = [
    ("TCP", Protocol::Tcp),
    ("UDP", Protocol::Udp),
    ("ICMP", Protocol::Icmp),
    ("ICMPv6", Protocol::IcmpV6),
    ("SCTP", Protocol::Sctp),
    ("UDPLite", Protocol::UdpLite),
];

impl Protocol {
    /// Parses a name (`TCP`, case-sensitive as in Calico) or a number `1`-`255`.
    pub fn parse(s: &str) -> Result<Protocol, String> {
        if let Some((_, p)) = PROTOCOL_NAMES.iter().find(|(n, _)| *n == s) {
            return Ok(*p);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return Protocol::from_number(s.parse::<u64>().unwrap_or(u64::MAX));
        }
        let hint = PROTOCOL_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(n, _)| format!(" (protocol names are case-sensitive: did you mean {n}?)"))
            .unwrap_or_default();
        Err(format!(
            "{s:?} is not a protocol; expected one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a \
             number 1-255{hint}"
        ))
    }

    fn from_number(n: u64) -> Result<Protocol, String> {
        match u8::try_from(n) {
            Ok(0) | Err(_) => Err(format!(
                "{n} is not a valid protocol number; protocol numbers are 1-255"
            )),
            Ok(v) => Ok(Protocol::Number(v)),
        }
    }

    /// The IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::IcmpV6 => 58,
            Protocol::Sctp => 132,
            Protocol::UdpLite => 136,
            Protocol::Number(n) => n,
        }
    }

    /// Whether the protocol has ports (TCP, UDP or SCTP, by name or number).
    pub fn supports_ports(self) -> bool {
        matches!(self.number(), 6 | 17 | 132)
    }

    /// Whether this is ICMP (by name or as protocol 1).
    pub fn is_icmp(self) -> bool {
        self.number() == 1
    }

    /// Whether this is ICMPv6 (by name or as protocol 58).
    pub fn is_icmpv6(self) -> bool {
        self.number() == 58
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Number(n) => write!(f, "{n}"),
            named => {
                let name = PROTOCOL_NAMES
                    .iter()
                    .find(|(_, p)| p == named)
                    .map_or("?", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Number(n) => s.serialize_u8(*n),
            named => s.serialize_str(&named.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Protocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a protocol name or number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Protocol, E> {
                Protocol::from_number(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Protocol, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is not a valid protocol number; protocol numbers are 1-255"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Protocol, E> {
                Protocol::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_numbers_ranges_and_names() {
        assert_eq!(Port::parse("80"), Ok(Port::Single(80)));
        assert_eq!(
            Port::parse("8080:8090"),
            Ok(Port::Range {
                min: 8080,
                max: 8090
            })
        );
        assert_eq!(Port::parse("443:443"), Ok(Port::Single(443)));
        assert_eq!(Port::parse("http"), Ok(Port::Named("http".into())));
        assert!(Port::parse("90:80").is_err());
        assert!(Port::parse("70000").is_err());
        assert!(Port::parse("a b").is_err());
    }

    #[test]
    fn ports_serialize_as_number_or_string() {
        let v: Vec<Port> = serde_json::from_str(r#"[80, "81", "1:2", "dns"]"#).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"[80,81,"1:2","dns"]"#);
    }

    #[test]
    fn protocols_are_case_sensitive_names_or_numbers_one_to_255() {
        assert_eq!(Protocol::parse("TCP"), Ok(Protocol::Tcp));
        assert_eq!(Protocol::parse("6"), Ok(Protocol::Number(6)));
        let lower = Protocol::parse("tcp").unwrap_err();
        assert!(lower.contains("did you mean TCP"), "{lower}");
        assert!(Protocol::parse("0").is_err());
        assert!(Protocol::parse("256").is_err());
        assert!(serde_json::from_str::<Protocol>("0").is_err());
        assert_eq!(
            serde_json::from_str::<Protocol>("132").unwrap(),
            Protocol::Number(132)
        );
        assert!(Protocol::Number(17).supports_ports());
        assert!(!Protocol::Icmp.supports_ports());
        assert!(Protocol::Number(58).is_icmpv6());
    }
}
