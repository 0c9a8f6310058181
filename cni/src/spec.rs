//! The CNI protocol types: versions and their negotiation, results (1.0.0 and the 0.3.x/0.4.0
//! forms), the error object with the spec's error codes, and the VERSION answer.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The version this implementation speaks natively.
pub const CURRENT_VERSION: &str = "1.0.0";
/// Every version whose configurations and results are accepted and produced.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// The spec's well-known error codes (CNI spec, "Error").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 1: incompatible CNI version.
    IncompatibleVersion = 1,
    /// 2: unsupported field in the network configuration.
    UnsupportedField = 2,
    /// 3: container unknown or does not exist.
    UnknownContainer = 3,
    /// 4: invalid necessary environment variables.
    InvalidEnvironment = 4,
    /// 5: I/O failure.
    IoFailure = 5,
    /// 6: failed to decode content.
    DecodingFailure = 6,
    /// 7: invalid network configuration.
    InvalidNetworkConfig = 7,
    /// 11: try again later.
    TryAgainLater = 11,
    /// 100: a plugin-specific failure (datastore, IPAM exhausted, kernel refusal).
    Plugin = 100,
}

/// A CNI error: printed on stdout as the spec's error object, with a non-zero exit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CNI error {}: {msg}{}", *code as u32, if details.is_empty() { String::new() } else { format!(" ({details})") })]
pub struct CniError {
    /// The error code.
    pub code: ErrorCode,
    /// A short message.
    pub msg: String,
    /// Longer details (field, value and rule; the underlying cause).
    pub details: String,
}

impl CniError {
    /// An error with `code`, `msg` and `details`.
    pub fn new(code: ErrorCode, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// An invalid network configuration: `field` has `value`, which breaks `rule`.
    pub fn invalid_config(field: &str, value: impl std::fmt::Display, rule: &str) -> CniError {
        CniError::new(
            ErrorCode::InvalidNetworkConfig,
            format!("invalid network configuration: {field} = {value} {rule}"),
            format!("field {field}: {rule}"),
        )
    }

    /// A missing or invalid `CNI_*` environment variable.
    pub fn invalid_env(var: &str, value: &str, rule: &str) -> CniError {
        CniError::new(
            ErrorCode::InvalidEnvironment,
            format!("invalid environment: {var} = {value:?} {rule}"),
            format!("variable {var}: {rule}"),
        )
    }

    /// A plugin failure (code 100) with its cause chain as details.
    pub fn plugin(msg: impl Into<String>, cause: &dyn std::error::Error) -> CniError {
        CniError::new(ErrorCode::Plugin, msg, error_chain(cause))
    }

    /// The error object in the configuration's version (the shape is the same in all).
    pub fn to_json(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "code": self.code as u32,
            "msg": self.msg,
            "details": self.details,
        })
    }
}

pub use fabric_api::error_chain;

/// Checks a configuration's `cniVersion` against [`SUPPORTED_VERSIONS`].
pub fn check_version(version: Option<&str>) -> Result<String, CniError> {
    match version {
        None | Some("") => Err(CniError::new(
            ErrorCode::IncompatibleVersion,
            "invalid network configuration: cniVersion is missing",
            format!(
                "field cniVersion is required; supported: {}",
                SUPPORTED_VERSIONS.join(", ")
            ),
        )),
        Some(v) if SUPPORTED_VERSIONS.contains(&v) => Ok(v.to_string()),
        Some(v) => Err(CniError::new(
            ErrorCode::IncompatibleVersion,
            format!("incompatible CNI version {v:?}"),
            format!(
                "field cniVersion = {v:?} is not supported; supported: {}",
                SUPPORTED_VERSIONS.join(", ")
            ),
        )),
    }
}

/// Whether `version` has the CHECK command (0.4.0 and later).
pub fn supports_check(version: &str) -> bool {
    !version.starts_with("0.3.")
}

/// The VERSION answer.
pub fn version_info() -> Value {
    json!({"cniVersion": CURRENT_VERSION, "supportedVersions": SUPPORTED_VERSIONS})
}

/// An interface in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// MAC address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// The namespace path for container interfaces; empty for host interfaces.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

/// An address in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Address with prefix length, e.g. `10.0.0.5/32`.
    pub address: IpNet,
    /// Default gateway, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination.
    pub dst: IpNet,
    /// Next hop, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// A result in the 1.0.0 shape; [`CniResult::to_version`] converts it for older runtimes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    /// Interfaces created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Addresses assigned.
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    /// Routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS settings, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Value>,
}

impl CniResult {
    /// Parses a result of any supported version (0.3.x/0.4.0 `ips[].version` is ignored).
    pub fn parse(value: &Value) -> Result<CniResult, CniError> {
        let mut v = value.clone();
        if let Some(ips) = v.get_mut("ips").and_then(Value::as_array_mut) {
            for ip in ips {
                if let Some(o) = ip.as_object_mut() {
                    o.remove("version");
                }
            }
        }
        if let Some(o) = v.as_object_mut() {
            o.remove("cniVersion");
        }
        serde_path_to_error::deserialize(v).map_err(|e| {
            CniError::new(
                ErrorCode::DecodingFailure,
                "failed to decode a CNI result",
                format!("at {}: {}", e.path(), e.inner()),
            )
        })
    }

    /// The result in `version`'s shape: 0.3.x and 0.4.0 carry `ips[].version` ("4" or "6").
    pub fn to_version(&self, version: &str) -> Value {
        let mut out = Map::new();
        out.insert("cniVersion".into(), Value::String(version.to_string()));
        let old = version.starts_with("0.");
        if !self.interfaces.is_empty() {
            out.insert("interfaces".into(), json!(self.interfaces));
        }
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut o = Map::new();
                if old {
                    let family = if ip.address.addr().is_ipv4() {
                        "4"
                    } else {
                        "6"
                    };
                    o.insert("version".into(), Value::String(family.into()));
                }
                o.insert("address".into(), Value::String(ip.address.to_string()));
                if let Some(g) = ip.gateway {
                    o.insert("gateway".into(), Value::String(g.to_string()));
                }
                if let Some(i) = ip.interface {
                    o.insert("interface".into(), json!(i));
                }
                Value::Object(o)
            })
            .collect();
        out.insert("ips".into(), Value::Array(ips));
        if !self.routes.is_empty() {
            out.insert("routes".into(), json!(self.routes));
        }
        if let Some(dns) = &self.dns {
            out.insert("dns".into(), dns.clone());
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: "aa:bb:cc:dd:ee:ff".into(),
                sandbox: "/run/netns/x".into(),
            }],
            ips: vec![IpConfig {
                address: "10.0.0.5/32".parse().unwrap(),
                gateway: None,
                interface: Some(0),
            }],
            routes: vec![Route {
                dst: "0.0.0.0/0".parse().unwrap(),
                gw: Some("169.254.1.1".parse().unwrap()),
            }],
            dns: None,
        }
    }

    #[test]
    fn an_old_version_result_carries_the_ip_version() {
        let v = sample().to_version("0.3.1");
        assert_eq!(v["cniVersion"], "0.3.1");
        assert_eq!(v["ips"][0]["version"], "4");
        let v = sample().to_version("1.0.0");
        assert!(v["ips"][0].get("version").is_none());
    }

    #[test]
    fn a_result_round_trips_through_every_version() {
        for version in SUPPORTED_VERSIONS {
            let back = CniResult::parse(&sample().to_version(version)).unwrap();
            assert_eq!(back, sample(), "{version}");
        }
    }

    #[test]
    fn an_unknown_version_is_error_code_1() {
        assert_eq!(
            check_version(Some("0.2.0")).unwrap_err().code,
            ErrorCode::IncompatibleVersion
        );
        assert_eq!(
            check_version(None).unwrap_err().code,
            ErrorCode::IncompatibleVersion
        );
        assert_eq!(check_version(Some("0.4.0")).unwrap(), "0.4.0");
    }

    #[test]
    fn check_exists_from_0_4_0_on() {
        assert!(!supports_check("0.3.1"));
        assert!(supports_check("0.4.0"));
        assert!(supports_check("1.0.0"));
    }
}
