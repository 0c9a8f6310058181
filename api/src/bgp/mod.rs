//! BGP resources (`BGPConfiguration`, `BGPPeer`, `BGPFilter`) and the values they share:
//! AS numbers, communities and secret-backed passwords.

pub mod config;
pub mod filter;
pub mod peer;

use serde::{Deserialize, Serialize};

use crate::error::{Errors, join};
use crate::validate::names::is_dns1123_subdomain;

pub use crate::validate::numbers::ASNumber;

/// The AS number nodes use when neither the `default` BGPConfiguration nor the Node sets one.
pub const DEFAULT_AS_NUMBER: u32 = 64512;
/// The BGP port used when `listenPort` is unset.
pub const DEFAULT_LISTEN_PORT: u16 = 179;

/// A BGP community value: standard `aa:nn` (RFC 1997) or large `aa:nn:mm` (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommunityValue {
    /// `aa:nn`, 16 bits each.
    Standard(u16, u16),
    /// `aa:nn:mm`, 32 bits each.
    Large(u32, u32, u32),
}

impl CommunityValue {
    /// Parses `aa:nn` or `aa:nn:mm`.
    pub fn parse(s: &str) -> Result<CommunityValue, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let digits = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !parts.iter().all(digits) || !(2..=3).contains(&parts.len()) {
            return Err(
                "is not a community: expected aa:nn (standard) or aa:nn:mm (large)".to_string(),
            );
        }
        if parts.len() == 2 {
            let a = parts[0].parse::<u16>();
            let b = parts[1].parse::<u16>();
            match (a, b) {
                (Ok(a), Ok(b)) => Ok(CommunityValue::Standard(a, b)),
                _ => Err(
                    "is not a standard community: both parts of aa:nn must be 0-65535".to_string(),
                ),
            }
        } else {
            let p: Vec<Result<u32, _>> = parts.iter().map(|p| p.parse::<u32>()).collect();
            match (&p[0], &p[1], &p[2]) {
                (Ok(a), Ok(b), Ok(c)) => Ok(CommunityValue::Large(*a, *b, *c)),
                _ => Err(
                    "is not a large community: all parts of aa:nn:mm must be 0-4294967295"
                        .to_string(),
                ),
            }
        }
    }
}

/// A BGP password taken from a Kubernetes secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPassword {
    /// The secret key holding the password (in the calico-node namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

/// Kubernetes `SecretKeySelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeySelector {
    /// Secret name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Key within the secret (required).
    #[serde(default)]
    pub key: String,
    /// Whether the secret or key may be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// Checks a password's secret reference: a key is required (and both name and key must be
/// valid Kubernetes names).
pub(crate) fn check_password(errs: &mut Errors, field: &str, p: &BGPPassword) {
    let Some(r) = &p.secret_key_ref else {
        errs.rule(
            join(field, "secretKeyRef"),
            "is required: a password names a secret key (secretKeyRef: {name, key})",
        );
        return;
    };
    let rf = join(field, "secretKeyRef");
    if r.key.is_empty() {
        errs.rule(join(&rf, "key"), "is required");
    } else if r.key.len() > 253
        || !r
            .key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        errs.add(
            join(&rf, "key"),
            r.key.as_str(),
            "is not a valid secret key: use letters, digits, '-', '_' and '.'",
        );
    }
    if !r.name.is_empty() && !is_dns1123_subdomain(&r.name) {
        errs.add(
            join(&rf, "name"),
            r.name.as_str(),
            "is not a valid secret name (DNS-1123 subdomain)",
        );
    }
}

/// An AS number field must not be 0 (reserved, RFC 7607).
pub(crate) fn check_as_number(errs: &mut Errors, field: &str, asn: Option<ASNumber>) {
    if asn == Some(ASNumber(0)) {
        errs.add(
            field,
            "0",
            "is not a valid AS number: AS 0 is reserved (RFC 7607); use 1-4294967295",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_are_standard_or_large() {
        assert_eq!(
            CommunityValue::parse("64512:100"),
            Ok(CommunityValue::Standard(64512, 100))
        );
        assert_eq!(
            CommunityValue::parse("64512:300:100"),
            Ok(CommunityValue::Large(64512, 300, 100))
        );
        assert!(CommunityValue::parse("70000:1").is_err());
        assert!(CommunityValue::parse("1:2:3:4").is_err());
        assert!(CommunityValue::parse("a:b").is_err());
    }
}
