//! Number-or-string values: BGP AS numbers (plain or `asdot`) and DSCP values (0-63 or a
//! class name such as `AF11`).

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A BGP AS number (4 octets, RFC 6793). Written as a number, a numeric string, or in `asdot`
/// notation (`"1.10"` = 65546); always serialized as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ASNumber(pub u32);

impl ASNumber {
    /// Parses a plain (`64512`) or `asdot` (`1.10`) AS number.
    pub fn parse(s: &str) -> Result<ASNumber, String> {
        if let Ok(n) = s.parse::<u32>() {
            return Ok(ASNumber(n));
        }
        let bad = || {
            format!(
                "{s:?} is not an AS number; expected 1-4294967295 or asdot notation such as 1.10"
            )
        };
        let (hi, lo) = s.split_once('.').ok_or_else(bad)?;
        let hi: u16 = hi.parse().map_err(|_| bad())?;
        let lo: u16 = lo.parse().map_err(|_| bad())?;
        Ok(ASNumber((u32::from(hi) << 16) | u32::from(lo)))
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ASNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for ASNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for ASNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ASNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AS number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ASNumber, E> {
                u32::try_from(v).map(ASNumber).map_err(|_| {
                    E::custom(format!(
                        "{v} is not an AS number; AS numbers are 1-4294967295"
                    ))
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ASNumber, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is not an AS number; AS numbers are 1-4294967295"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ASNumber, E> {
                ASNumber::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// DSCP class names and their code points.
const DSCP_NAMES: [(&str, u8); 21] = [
    ("DF", 0),
    ("EF", 46),
    ("AF11", 10),
    ("AF12", 12),
    ("AF13", 14),
    ("AF21", 18),
    ("AF22", 20),
    ("AF23", 22),
    ("AF31", 26),
    ("AF32", 28),
    ("AF33", 30),
    ("AF41", 34),
    ("AF42", 36),
    ("AF43", 38),
    ("CS0", 0),
    ("CS1", 8),
    ("CS2", 16),
    ("CS3", 24),
    ("CS4", 32),
    ("CS5", 40),
    ("CS6", 48),
];

/// A DSCP value: a code point 0-63 or a class name (`EF`, `AF11`, case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dscp {
    /// A numeric code point.
    Number(u8),
    /// A class name, stored in upper case.
    Name(String),
}

impl Dscp {
    /// Parses a code point or class name.
    pub fn parse(s: &str) -> Result<Dscp, String> {
        if let Ok(n) = s.parse::<u64>() {
            return Dscp::from_number(n);
        }
        let upper = s.trim().to_ascii_uppercase();
        if DSCP_NAMES.iter().any(|(n, _)| *n == upper) {
            Ok(Dscp::Name(upper))
        } else {
            Err(format!(
                "{s:?} is not a DSCP value; expected 0-63 or a class name such as EF, AF11, CS1"
            ))
        }
    }

    fn from_number(n: u64) -> Result<Dscp, String> {
        match u8::try_from(n) {
            Ok(v) if v <= 63 => Ok(Dscp::Number(v)),
            _ => Err(format!(
                "{n} is not a DSCP value; DSCP must be between 0 and 63"
            )),
        }
    }

    /// The code point.
    pub fn code_point(&self) -> u8 {
        match self {
            Dscp::Number(n) => *n,
            Dscp::Name(name) => DSCP_NAMES
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, v)| *v),
        }
    }
}

impl Serialize for Dscp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dscp::Number(n) => s.serialize_u8(*n),
            Dscp::Name(n) => s.serialize_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for Dscp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dscp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a DSCP code point or class name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dscp, E> {
                Dscp::from_number(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dscp, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is not a DSCP value; DSCP must be between 0 and 63"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dscp, E> {
                Dscp::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_numbers_accept_plain_and_asdot_forms() {
        assert_eq!(ASNumber::parse("64512"), Ok(ASNumber(64512)));
        assert_eq!(ASNumber::parse("1.10"), Ok(ASNumber(65546)));
        assert!(ASNumber::parse("1.70000").is_err());
        assert!(ASNumber::parse("4294967296").is_err());
        let a: ASNumber = serde_json::from_str("\"1.10\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "65546");
        assert!(serde_json::from_str::<ASNumber>("-1").is_err());
    }

    #[test]
    fn dscp_accepts_code_points_and_class_names() {
        assert_eq!(Dscp::parse("ef").unwrap().code_point(), 46);
        assert_eq!(Dscp::parse("10").unwrap(), Dscp::Number(10));
        assert!(Dscp::parse("64").is_err());
        assert!(Dscp::parse("AF99").is_err());
    }
}
