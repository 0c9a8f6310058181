//! Community values: COMMUNITIES (RFC 1997), EXTENDED COMMUNITIES (RFC 4360) and
//! LARGE_COMMUNITY (RFC 8092), with the `aa:nn` / `aa:nn:mm` text forms Calico uses.

use std::fmt;
use std::str::FromStr;

/// A standard community: 2-octet AS, 2-octet value (RFC 1997).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community(pub u32);

impl Community {
    /// NO_EXPORT (RFC 1997).
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    /// NO_ADVERTISE (RFC 1997).
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    /// NO_EXPORT_SUBCONFED (RFC 1997).
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// GRACEFUL_SHUTDOWN (RFC 8326).
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    /// LLGR_STALE (RFC 9494).
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);
    /// NO_LLGR (RFC 9494).
    pub const NO_LLGR: Community = Community(0xFFFF_0007);

    /// Builds `asn:value`.
    pub fn new(asn: u16, value: u16) -> Community {
        Community((u32::from(asn) << 16) | u32::from(value))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff)
    }
}

/// A community text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("community {text:?} is invalid: expected {expected}")]
pub struct CommunityParseError {
    /// The text.
    pub text: String,
    /// The expected form.
    pub expected: &'static str,
}

impl FromStr for Community {
    type Err = CommunityParseError;
    /// Parses `aa:nn` with both parts in 0..=65535.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CommunityParseError {
            text: s.to_string(),
            expected: "aa:nn with each part 0..=65535",
        };
        let (a, n) = s.split_once(':').ok_or_else(err)?;
        Ok(Community::new(
            a.parse().map_err(|_| err())?,
            n.parse().map_err(|_| err())?,
        ))
    }
}

/// An extended community: 8 opaque octets, type first (RFC 4360 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExtendedCommunity(pub [u8; 8]);

impl ExtendedCommunity {
    /// Type high octet.
    pub fn type_high(&self) -> u8 {
        self.0[0]
    }

    /// Two-octet-AS route target `rt:asn:value` (type 0x00, subtype 0x02).
    pub fn route_target(asn: u16, value: u32) -> ExtendedCommunity {
        let [a0, a1] = asn.to_be_bytes();
        let [v0, v1, v2, v3] = value.to_be_bytes();
        ExtendedCommunity([0x00, 0x02, a0, a1, v0, v1, v2, v3])
    }
}

impl fmt::Display for ExtendedCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A large community `global:local1:local2` (RFC 8092 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    /// Global Administrator (an AS number).
    pub global_admin: u32,
    /// Local Data Part 1.
    pub local_data_1: u32,
    /// Local Data Part 2.
    pub local_data_2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.global_admin, self.local_data_1, self.local_data_2
        )
    }
}

impl FromStr for LargeCommunity {
    type Err = CommunityParseError;
    /// Parses `aa:nn:mm` with each part in 0..=4294967295.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CommunityParseError {
            text: s.to_string(),
            expected: "aa:nn:mm with each part a 32-bit number",
        };
        let mut parts = s.split(':').map(|p| p.parse::<u32>().map_err(|_| err()));
        let (Some(a), Some(b), Some(c), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        Ok(LargeCommunity {
            global_admin: a?,
            local_data_1: b?,
            local_data_2: c?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_text_forms_parse_and_print() {
        let c: Community = "65001:100".parse().unwrap();
        assert_eq!(c.to_string(), "65001:100");
        assert!("65536:1".parse::<Community>().is_err());
        let l: LargeCommunity = "4200000001:1:2".parse().unwrap();
        assert_eq!(l.to_string(), "4200000001:1:2");
        assert!("1:2".parse::<LargeCommunity>().is_err());
        assert!("1:2:3:4".parse::<LargeCommunity>().is_err());
    }
}
