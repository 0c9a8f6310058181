//! The network configuration both plugins read (Calico's keys), parsed and checked: each
//! error names the field, the value and the rule (CNI error 7, or 1 for the version).

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use crate::spec::{self, CniError, CniResult};

/// Calico's default MTU for the veth when `mtu` is not set.
pub const DEFAULT_MTU: u32 = 1500;
/// Where Calico's calico-node records the node name.
pub const DEFAULT_NODENAME_FILE: &str = "/var/lib/calico/nodename";

/// Where Calico's plugin keeps its host-wide IPAM lock (`ipam_lock_file`).
pub const DEFAULT_IPAM_LOCK_FILE: &str = "/var/run/calico/ipam.lock";

/// A label given to the plugin by the runtime (`args.cni.labels`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Label {
    /// Label key.
    pub key: String,
    /// Label value.
    pub value: String,
}

#[derive(Debug, Default, Deserialize)]
struct ArgsCni {
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Debug, Default, Deserialize)]
struct Args {
    #[serde(default)]
    cni: ArgsCni,
}

/// A boolean Calico writes as a string (`"true"`), accepted as a JSON boolean too.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum FlexBool {
    Bool(bool),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
struct RawIpam {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    assign_ipv4: Option<FlexBool>,
    #[serde(default)]
    assign_ipv6: Option<FlexBool>,
    #[serde(default)]
    ipv4_pools: Vec<String>,
    #[serde(default)]
    ipv6_pools: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawConf {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    datastore_type: Option<String>,
    #[serde(default)]
    sqlite_path: Option<String>,
    #[serde(default)]
    etcd_endpoints: Option<String>,
    #[serde(default)]
    etcd_key_prefix: Option<String>,
    #[serde(default)]
    nodename: Option<String>,
    #[serde(default)]
    nodename_file: Option<String>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    log_level: Option<String>,
    #[serde(default)]
    log_file_path: Option<String>,
    #[serde(default)]
    ipam_socket: Option<String>,
    #[serde(default)]
    ipam_lock_file: Option<String>,
    #[serde(default)]
    ipam: Option<RawIpam>,
    #[serde(default)]
    args: Option<Args>,
    #[serde(default, rename = "prevResult")]
    prev_result: Option<Value>,
}

/// The IPAM section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpamConf {
    /// The IPAM plugin (`calico-ipam`, `host-local`, ...).
    pub kind: String,
    /// Allocate an IPv4 address (default true).
    pub assign_ipv4: bool,
    /// Allocate an IPv6 address (default false).
    pub assign_ipv6: bool,
    /// IPv4 pools to allocate from (names or CIDRs); empty: every enabled pool.
    pub ipv4_pools: Vec<String>,
    /// IPv6 pools likewise.
    pub ipv6_pools: Vec<String>,
}

/// The datastore settings of the configuration (each overrides the environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatastoreConf {
    /// `datastore_type`: `sqlite` or `etcdv3`.
    pub datastore_type: Option<String>,
    /// `sqlite_path`.
    pub sqlite_path: Option<String>,
    /// `etcd_endpoints` (comma list).
    pub etcd_endpoints: Option<String>,
    /// `etcd_key_prefix` (this project's extension: a key prefix inside etcd).
    pub etcd_key_prefix: Option<String>,
}

/// A checked network configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    /// The negotiated version (the configuration's `cniVersion`).
    pub cni_version: String,
    /// Network name.
    pub name: String,
    /// Plugin type.
    pub kind: String,
    /// Datastore settings.
    pub datastore: DatastoreConf,
    /// `nodename`.
    pub nodename: Option<String>,
    /// `nodename_file` (default `/var/lib/calico/nodename`).
    pub nodename_file: PathBuf,
    /// The veth MTU.
    pub mtu: u32,
    /// `log_level` (`debug`, `info`, `warning`, `error`, ...).
    pub log_level: Option<String>,
    /// `log_file_path`: logs go there (and to stderr), never to stdout.
    pub log_file_path: Option<PathBuf>,
    /// `ipam_socket` (this project's extension): calico-node's IPAM service, asked before
    /// the datastore; `Some("none")` turns it off. `None`: `CALICO_IPAM_SOCKET`, then the
    /// default path.
    pub ipam_socket: Option<String>,
    /// `ipam_lock_file` (default `/var/run/calico/ipam.lock`): the host-wide lock
    /// `calico-ipam` holds while it writes through the datastore itself.
    pub ipam_lock_file: PathBuf,
    /// The IPAM section, if any.
    pub ipam: Option<IpamConf>,
    /// Pod labels from `args.cni.labels`.
    pub labels: Vec<Label>,
    /// `prevResult` (DEL and CHECK), parsed.
    pub prev_result: Option<CniResult>,
    /// The configuration as received (passed on to a delegated IPAM plugin).
    pub raw: Value,
}

fn flex_bool(field: &str, v: Option<FlexBool>, default: bool) -> Result<bool, CniError> {
    match v {
        None => Ok(default),
        Some(FlexBool::Bool(b)) => Ok(b),
        Some(FlexBool::Text(t)) => match t.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(CniError::invalid_config(
                field,
                format!("{t:?}"),
                "is not a boolean; use \"true\" or \"false\"",
            )),
        },
    }
}

fn check_pools(field: &str, pools: &[String], v4: bool) -> Result<(), CniError> {
    for (i, p) in pools.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if let Ok(net) = p.parse::<IpNet>() {
            if net.addr().is_ipv4() != v4 {
                let want = if v4 { "an IPv4" } else { "an IPv6" };
                return Err(CniError::invalid_config(
                    &f,
                    p,
                    &format!("is not {want} CIDR"),
                ));
            }
        } else if p.is_empty()
            || p.len() > 253
            || !p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Err(CniError::invalid_config(
                &f,
                format!("{p:?}"),
                "is neither a CIDR nor an IPPool name (lower-case letters, digits, '-' and '.')",
            ));
        }
    }
    Ok(())
}

impl NetConf {
    /// Parses and checks the configuration on stdin.
    pub fn parse(bytes: &[u8]) -> Result<NetConf, CniError> {
        let raw: Value = serde_json::from_slice(bytes).map_err(|e| {
            CniError::new(
                spec::ErrorCode::DecodingFailure,
                "failed to decode the network configuration",
                format!("stdin is not JSON: {e}"),
            )
        })?;
        let version = raw.get("cniVersion").and_then(Value::as_str);
        let cni_version = spec::check_version(version)?;
        let conf: RawConf = serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
            let path = e.path().to_string();
            CniError::invalid_config(&path, describe_at(&raw, &path), &e.inner().to_string())
        })?;
        if conf.name.is_empty() {
            return Err(CniError::invalid_config("name", "\"\"", "is required"));
        }
        if let Some(t) = &conf.datastore_type
            && !matches!(t.as_str(), "sqlite" | "etcdv3")
        {
            return Err(CniError::invalid_config(
                "datastore_type",
                format!("{t:?}"),
                "is not a datastore type; expected sqlite or etcdv3",
            ));
        }
        if conf.datastore_type.as_deref() == Some("etcdv3")
            && conf.etcd_endpoints.as_deref().unwrap_or("").is_empty()
            && std::env::var("ETCD_ENDPOINTS")
                .unwrap_or_default()
                .is_empty()
        {
            return Err(CniError::invalid_config(
                "etcd_endpoints",
                "\"\"",
                "is required when datastore_type is etcdv3 (comma-separated http:// URLs)",
            ));
        }
        let mtu = match conf.mtu {
            None | Some(0) => DEFAULT_MTU,
            Some(m) if !(68..=65535).contains(&m) => {
                return Err(CniError::invalid_config(
                    "mtu",
                    m,
                    "is out of range; the MTU is 68-65535 (0 or absent: 1500)",
                ));
            }
            Some(m) => m,
        };
        if let Some(l) = &conf.log_level
            && !matches!(
                l.to_ascii_lowercase().as_str(),
                "trace" | "debug" | "info" | "warn" | "warning" | "error" | "fatal" | "panic" | ""
            )
        {
            return Err(CniError::invalid_config(
                "log_level",
                format!("{l:?}"),
                "is not a log level; expected debug, info, warning or error",
            ));
        }
        if let Some(lock) = conf.ipam_lock_file.as_deref()
            && !lock.is_empty()
            && !Path::new(lock).is_absolute()
        {
            return Err(CniError::invalid_config(
                "ipam_lock_file",
                format!("{lock:?}"),
                "is not an absolute path (the plugin's working directory is the runtime's)",
            ));
        }
        let ipam = match conf.ipam {
            None => None,
            Some(i) => {
                let assign_ipv4 = flex_bool("ipam.assign_ipv4", i.assign_ipv4, true)?;
                let assign_ipv6 = flex_bool("ipam.assign_ipv6", i.assign_ipv6, false)?;
                check_pools("ipam.ipv4_pools", &i.ipv4_pools, true)?;
                check_pools("ipam.ipv6_pools", &i.ipv6_pools, false)?;
                Some(IpamConf {
                    kind: i.kind,
                    assign_ipv4,
                    assign_ipv6,
                    ipv4_pools: i.ipv4_pools,
                    ipv6_pools: i.ipv6_pools,
                })
            }
        };
        let labels = conf.args.map(|a| a.cni.labels).unwrap_or_default();
        for (i, l) in labels.iter().enumerate() {
            if l.key.is_empty() || l.key.len() > 316 {
                return Err(CniError::invalid_config(
                    &format!("args.cni.labels[{i}].key"),
                    format!("{:?}", l.key),
                    "is not a label key (1-316 characters)",
                ));
            }
            if l.value.len() > 63 {
                return Err(CniError::invalid_config(
                    &format!("args.cni.labels[{i}].value"),
                    format!("{:?}", l.value),
                    "is longer than 63 characters",
                ));
            }
        }
        let prev_result = match &conf.prev_result {
            None => None,
            Some(v) => Some(
                CniResult::parse(v)
                    .map_err(|e| CniError::invalid_config("prevResult", "(object)", &e.details))?,
            ),
        };
        Ok(NetConf {
            cni_version,
            name: conf.name,
            kind: conf.kind,
            datastore: DatastoreConf {
                datastore_type: conf.datastore_type,
                sqlite_path: conf.sqlite_path.filter(|s| !s.is_empty()),
                etcd_endpoints: conf.etcd_endpoints.filter(|s| !s.is_empty()),
                etcd_key_prefix: conf.etcd_key_prefix.filter(|s| !s.is_empty()),
            },
            nodename: conf.nodename.filter(|s| !s.is_empty()),
            nodename_file: conf
                .nodename_file
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_NODENAME_FILE)),
            mtu,
            log_level: conf.log_level,
            log_file_path: conf
                .log_file_path
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            ipam_socket: conf.ipam_socket.filter(|s| !s.is_empty()),
            ipam_lock_file: conf
                .ipam_lock_file
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_IPAM_LOCK_FILE)),
            ipam,
            labels,
            prev_result,
            raw,
        })
    }

    /// The IPAM section, required by both plugins.
    pub fn require_ipam(&self) -> Result<&IpamConf, CniError> {
        match &self.ipam {
            Some(i) if !i.kind.is_empty() => Ok(i),
            Some(_) => Err(CniError::invalid_config(
                "ipam.type",
                "\"\"",
                "is required (e.g. calico-ipam or host-local)",
            )),
            None => Err(CniError::invalid_config(
                "ipam",
                "(absent)",
                "is required: {\"type\": \"calico-ipam\"}",
            )),
        }
    }

    /// The node name: `nodename`, else the `nodename_file`, else the host name (Calico's
    /// order).
    pub fn node_name(&self) -> Result<String, CniError> {
        if let Some(n) = &self.nodename {
            return Ok(n.clone());
        }
        if let Ok(text) = std::fs::read_to_string(&self.nodename_file) {
            let t = text.trim();
            if !t.is_empty() {
                return Ok(t.to_string());
            }
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_err(|e| CniError::plugin("cannot read the host name", &e))?;
        let host = host.trim().to_lowercase();
        if host.is_empty() {
            return Err(CniError::invalid_config(
                "nodename",
                "(absent)",
                "is required: no nodename_file and the host name is empty",
            ));
        }
        Ok(host)
    }
}

/// The JSON value at a serde path (`a.b[2]`), for error messages.
fn describe_at(raw: &Value, path: &str) -> String {
    let mut cur = raw;
    for part in path.split('.') {
        let (name, idx) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        match cur.get(name) {
            Some(v) => cur = v,
            None => return "(absent)".into(),
        }
        if let Some(i) = idx {
            match cur.get(i) {
                Some(v) => cur = v,
                None => return "(absent)".into(),
            }
        }
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::spec::ErrorCode;

    fn parse(s: &str) -> Result<NetConf, CniError> {
        NetConf::parse(s.as_bytes())
    }

    #[test]
    fn calicos_config_keys_are_read() {
        let c = parse(
            r#"{"cniVersion":"0.3.1","name":"k8s-pod-network","type":"calico","mtu":1440,
               "nodename":"n1","datastore_type":"sqlite","sqlite_path":"/tmp/x.db",
               "ipam":{"type":"calico-ipam","assign_ipv4":"true","assign_ipv6":"false",
                       "ipv4_pools":["10.244.0.0/16","default-ipv4-ippool"]},
               "policy":{"type":"k8s"},
               "args":{"cni":{"labels":[{"key":"app","value":"web"}]}}}"#,
        )
        .unwrap();
        assert_eq!(c.cni_version, "0.3.1");
        assert_eq!(c.mtu, 1440);
        assert_eq!(c.node_name().unwrap(), "n1");
        let ipam = c.require_ipam().unwrap();
        assert!(ipam.assign_ipv4 && !ipam.assign_ipv6);
        assert_eq!(ipam.ipv4_pools.len(), 2);
        assert_eq!(c.labels[0].key, "app");
    }

    #[test]
    fn the_ipam_lock_file_is_calicos_unless_the_config_names_another() {
        let c = parse(r#"{"cniVersion":"1.0.0","name":"n","type":"calico"}"#).unwrap();
        assert_eq!(c.ipam_lock_file, PathBuf::from("/var/run/calico/ipam.lock"));
        let c = parse(
            r#"{"cniVersion":"1.0.0","name":"n","type":"calico","ipam_lock_file":"/run/x.lock"}"#,
        )
        .unwrap();
        assert_eq!(c.ipam_lock_file, PathBuf::from("/run/x.lock"));
        let e = parse(
            r#"{"cniVersion":"1.0.0","name":"n","type":"calico","ipam_lock_file":"ipam.lock"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidNetworkConfig);
        assert!(
            e.msg.contains("ipam_lock_file") && e.msg.contains("\"ipam.lock\""),
            "{e}"
        );
    }

    #[test]
    fn a_wrongly_typed_field_is_named_with_its_value() {
        let e =
            parse(r#"{"cniVersion":"1.0.0","name":"n","type":"calico","mtu":"big"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidNetworkConfig);
        assert!(e.msg.contains("mtu") && e.msg.contains("\"big\""), "{e}");
    }

    #[test]
    fn an_ipv6_cidr_in_ipv4_pools_is_rejected() {
        let e = parse(
            r#"{"cniVersion":"1.0.0","name":"n","type":"calico",
               "ipam":{"type":"calico-ipam","ipv4_pools":["fd00::/64"]}}"#,
        )
        .unwrap_err();
        assert!(e.msg.contains("ipam.ipv4_pools[0]"), "{e}");
    }

    #[test]
    fn an_unknown_datastore_type_is_rejected() {
        let e = parse(r#"{"cniVersion":"1.0.0","name":"n","datastore_type":"kubernetes"}"#)
            .unwrap_err();
        assert!(e.msg.contains("datastore_type"), "{e}");
    }

    #[test]
    fn a_non_boolean_assign_ipv4_is_rejected() {
        let e = parse(
            r#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"calico-ipam","assign_ipv4":"yes"}}"#,
        )
        .unwrap_err();
        assert!(e.msg.contains("ipam.assign_ipv4"), "{e}");
    }

    #[test]
    fn an_mtu_out_of_range_is_rejected() {
        let e = parse(r#"{"cniVersion":"1.0.0","name":"n","mtu":20}"#).unwrap_err();
        assert!(e.msg.contains("mtu = 20"), "{e}");
    }

    #[test]
    fn an_unsupported_version_is_error_1() {
        let e = parse(r#"{"cniVersion":"0.2.0","name":"n"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::IncompatibleVersion);
    }
}
