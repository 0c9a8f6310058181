//! calico-node's settings from the environment (Calico's variable names), each checked: a bad
//! value is a [`SettingError`] naming the variable, the value and the rule, before anything is
//! written.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use fabric_api::ASNumber;
use fabric_api::ippool::{IPIPMode, VXLANMode};
use ipnet::IpNet;

use crate::autodetect::Method;

/// Where the status socket is unless `CALICO_NODE_STATUS_SOCKET` says otherwise.
pub const DEFAULT_STATUS_SOCKET: &str = "/var/run/calico/bgpd.sock";
/// Where the node name is written at start (Calico's file).
pub const DEFAULT_NODENAME_FILE: &str = "/var/lib/calico/nodename";
/// The default pool's name.
pub const DEFAULT_POOL_NAME: &str = "default-ipv4-ippool";
/// The default pool's range when `CALICO_IPV4POOL_CIDR` is unset (Calico's).
pub const DEFAULT_POOL_CIDR: &str = "192.168.0.0/16";

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?}: {rule}")]
pub struct SettingError {
    /// The variable.
    pub variable: String,
    /// Its value.
    pub value: String,
    /// The rule it breaks.
    pub rule: String,
}

impl SettingError {
    /// A new error.
    pub fn new(
        variable: impl Into<String>,
        value: impl Into<String>,
        rule: impl Into<String>,
    ) -> SettingError {
        SettingError {
            variable: variable.into(),
            value: value.into(),
            rule: rule.into(),
        }
    }
}

/// How this node's address of one family is found.
#[derive(Debug, Clone)]
pub enum AddressSetting {
    /// Autodetect with this method.
    Autodetect(Method),
    /// No address of this family.
    None,
    /// This address and subnet.
    Fixed(IpNet),
}

/// `CALICO_NETWORKING_BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// BGP (`bird`, the default).
    Bgp,
    /// VXLAN only: no BGP.
    Vxlan,
    /// Policy only: no BGP.
    None,
}

/// The default pool asked for by `CALICO_IPV4POOL_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPool {
    /// `CALICO_IPV4POOL_CIDR`.
    pub cidr: IpNet,
    /// `CALICO_IPV4POOL_BLOCK_SIZE`.
    pub block_size: u32,
    /// `CALICO_IPV4POOL_IPIP`.
    pub ipip: IPIPMode,
    /// `CALICO_IPV4POOL_VXLAN`.
    pub vxlan: VXLANMode,
    /// `CALICO_IPV4POOL_NAT_OUTGOING`.
    pub nat_outgoing: bool,
    /// `CALICO_IPV4POOL_NODE_SELECTOR`.
    pub node_selector: String,
}

/// Everything calico-node reads from its environment (besides the datastore and `FELIX_*`,
/// read by their own crates).
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// `NODENAME`, else the nodename file, else the host name.
    pub node_name: String,
    /// `IP` and `IP_AUTODETECTION_METHOD`.
    pub ipv4: AddressSetting,
    /// `IP6` and `IP6_AUTODETECTION_METHOD`.
    pub ipv6: AddressSetting,
    /// `AS`.
    pub as_number: Option<ASNumber>,
    /// `CALICO_ROUTER_ID` (`hash` is resolved here).
    pub router_id: Option<Ipv4Addr>,
    /// `CALICO_NETWORKING_BACKEND`.
    pub backend: Backend,
    /// The default pool, unless `NO_DEFAULT_POOLS`.
    pub default_pool: Option<DefaultPool>,
    /// `CALICO_NODE_STATUS_SOCKET`.
    pub status_socket: PathBuf,
    /// `CALICO_IPAM_SOCKET`: where the node-local IPAM service listens for the CNI plugin
    /// (`none` or empty: no service).
    pub ipam_socket: Option<PathBuf>,
    /// `CALICO_NODENAME_FILE`.
    pub nodename_file: PathBuf,
}

fn parse_bool(variable: &str, value: &str) -> Result<bool, SettingError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(SettingError::new(variable, value, "must be true or false")),
    }
}

fn parse_mode<T>(variable: &str, value: &str, modes: [(&str, T); 3]) -> Result<T, SettingError> {
    let lower = value.trim().to_ascii_lowercase();
    let lower = if lower == "off" {
        "never".into()
    } else {
        lower
    };
    modes
        .into_iter()
        .find(|(n, _)| n.to_ascii_lowercase() == lower)
        .map(|(_, m)| m)
        .ok_or_else(|| SettingError::new(variable, value, "must be Always, CrossSubnet or Never"))
}

/// A router id from a node name (`CALICO_ROUTER_ID=hash`): FNV-1a of the name, as an IPv4
/// address outside 0.0.0.0/8.
pub fn hashed_router_id(node: &str) -> Ipv4Addr {
    let mut h: u32 = 0x811c_9dc5;
    for b in node.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    if h >> 24 == 0 {
        h |= 0x0100_0000;
    }
    Ipv4Addr::from(h)
}

fn address(
    ip_var: &str,
    method_var: &str,
    default_auto: bool,
    get: &impl Fn(&str) -> Option<String>,
    v4: bool,
) -> Result<AddressSetting, SettingError> {
    let method = || Method::parse(method_var, &get(method_var).unwrap_or_default());
    match get(ip_var).as_deref().map(str::trim) {
        None | Some("") if default_auto => Ok(AddressSetting::Autodetect(method()?)),
        None | Some("") => Ok(AddressSetting::None),
        Some("autodetect") => Ok(AddressSetting::Autodetect(method()?)),
        Some("none") => Ok(AddressSetting::None),
        Some(text) => {
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    SettingError::new(
                        ip_var,
                        text,
                        "must be autodetect, none or an address with its prefix length (10.0.0.11/24)",
                    )
                })?;
            if net.addr().is_ipv4() != v4 {
                let want = if v4 { "an IPv4" } else { "an IPv6" };
                return Err(SettingError::new(
                    ip_var,
                    text,
                    format!("must be {want} address"),
                ));
            }
            Ok(AddressSetting::Fixed(net))
        }
    }
}

impl NodeSettings {
    /// Reads the settings through `get` (the environment, or a map in tests). `hostname`
    /// is the fallback node name.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        hostname: impl Fn() -> Option<String>,
    ) -> Result<NodeSettings, SettingError> {
        let get = |n: &str| get(n).filter(|v| !v.trim().is_empty());
        let nodename_file = get("CALICO_NODENAME_FILE")
            .map_or_else(|| PathBuf::from(DEFAULT_NODENAME_FILE), PathBuf::from);
        let node_name = get("NODENAME")
            .map(|n| n.trim().to_string())
            .or_else(|| {
                std::fs::read_to_string(&nodename_file)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            })
            .or_else(|| hostname().map(|h| h.trim().to_ascii_lowercase()))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                SettingError::new("NODENAME", "", "is unset and there is no host name")
            })?;
        if node_name.contains('/') || node_name.len() > 253 {
            return Err(SettingError::new(
                "NODENAME",
                &node_name,
                "must be a DNS subdomain name (no '/', at most 253 characters)",
            ));
        }
        let as_number = get("AS")
            .map(|v| {
                ASNumber::parse(v.trim()).map_err(|rule| {
                    SettingError::new("AS", &v, format!("is not an AS number: {rule}"))
                })
            })
            .transpose()?;
        let router_id = match get("CALICO_ROUTER_ID") {
            None => None,
            Some(v) if v.trim() == "hash" => Some(hashed_router_id(&node_name)),
            Some(v) => Some(v.trim().parse::<Ipv4Addr>().map_err(|_| {
                SettingError::new(
                    "CALICO_ROUTER_ID",
                    &v,
                    "must be an IPv4 address or \"hash\"",
                )
            })?),
        };
        let backend = match get("CALICO_NETWORKING_BACKEND").as_deref().map(str::trim) {
            None | Some("bird") => Backend::Bgp,
            Some("vxlan") => Backend::Vxlan,
            Some("none") => Backend::None,
            Some(v) => {
                return Err(SettingError::new(
                    "CALICO_NETWORKING_BACKEND",
                    v,
                    "must be bird, vxlan or none",
                ));
            }
        };
        let no_default = get("NO_DEFAULT_POOLS")
            .map(|v| parse_bool("NO_DEFAULT_POOLS", &v))
            .transpose()?
            .unwrap_or(false);
        let default_pool = if no_default {
            None
        } else {
            Some(default_pool(&get)?)
        };
        Ok(NodeSettings {
            ipv4: address("IP", "IP_AUTODETECTION_METHOD", true, &get, true)?,
            ipv6: address("IP6", "IP6_AUTODETECTION_METHOD", false, &get, false)?,
            node_name,
            as_number,
            router_id,
            backend,
            default_pool,
            status_socket: get("CALICO_NODE_STATUS_SOCKET")
                .map_or_else(|| PathBuf::from(DEFAULT_STATUS_SOCKET), PathBuf::from),
            ipam_socket: match get("CALICO_IPAM_SOCKET") {
                None => Some(PathBuf::from(fabric_ipam::service::DEFAULT_SOCKET)),
                Some(v) if v.trim().is_empty() || v.trim().eq_ignore_ascii_case("none") => None,
                Some(v) => Some(PathBuf::from(v)),
            },
            nodename_file,
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<NodeSettings, SettingError> {
        NodeSettings::from_lookup(
            |n| std::env::var(n).ok(),
            || std::fs::read_to_string("/proc/sys/kernel/hostname").ok(),
        )
    }

    /// Whether BGP runs on this node.
    pub fn bgp(&self) -> bool {
        self.backend == Backend::Bgp
    }
}

fn default_pool(get: &impl Fn(&str) -> Option<String>) -> Result<DefaultPool, SettingError> {
    let cidr_text = get("CALICO_IPV4POOL_CIDR").unwrap_or_else(|| DEFAULT_POOL_CIDR.into());
    let cidr: IpNet = cidr_text.trim().parse().map_err(|_| {
        SettingError::new(
            "CALICO_IPV4POOL_CIDR",
            &cidr_text,
            "must be an IPv4 CIDR (10.244.0.0/16)",
        )
    })?;
    if !cidr.addr().is_ipv4() || cidr.trunc() != cidr {
        return Err(SettingError::new(
            "CALICO_IPV4POOL_CIDR",
            &cidr_text,
            "must be an IPv4 CIDR without host bits",
        ));
    }
    let block_size = match get("CALICO_IPV4POOL_BLOCK_SIZE") {
        None => 26,
        Some(v) => {
            let n: u32 = v.trim().parse().map_err(|_| {
                SettingError::new(
                    "CALICO_IPV4POOL_BLOCK_SIZE",
                    &v,
                    "must be a number from 20 to 32",
                )
            })?;
            if !(20..=32).contains(&n) || n < u32::from(cidr.prefix_len()) {
                return Err(SettingError::new(
                    "CALICO_IPV4POOL_BLOCK_SIZE",
                    &v,
                    format!(
                        "must be from 20 to 32 and not shorter than the pool's /{}",
                        cidr.prefix_len()
                    ),
                ));
            }
            n
        }
    };
    let ipip = match get("CALICO_IPV4POOL_IPIP") {
        None => IPIPMode::Never,
        Some(v) => parse_mode(
            "CALICO_IPV4POOL_IPIP",
            &v,
            [
                ("Always", IPIPMode::Always),
                ("CrossSubnet", IPIPMode::CrossSubnet),
                ("Never", IPIPMode::Never),
            ],
        )?,
    };
    let vxlan = match get("CALICO_IPV4POOL_VXLAN") {
        None => VXLANMode::Never,
        Some(v) => parse_mode(
            "CALICO_IPV4POOL_VXLAN",
            &v,
            [
                ("Always", VXLANMode::Always),
                ("CrossSubnet", VXLANMode::CrossSubnet),
                ("Never", VXLANMode::Never),
            ],
        )?,
    };
    if ipip != IPIPMode::Never && vxlan != VXLANMode::Never {
        return Err(SettingError::new(
            "CALICO_IPV4POOL_VXLAN",
            get("CALICO_IPV4POOL_VXLAN").unwrap_or_default(),
            "cannot be set together with CALICO_IPV4POOL_IPIP: a pool uses one encapsulation",
        ));
    }
    let nat_outgoing = get("CALICO_IPV4POOL_NAT_OUTGOING")
        .map(|v| parse_bool("CALICO_IPV4POOL_NAT_OUTGOING", &v))
        .transpose()?
        .unwrap_or(true);
    let node_selector = get("CALICO_IPV4POOL_NODE_SELECTOR").unwrap_or_else(|| "all()".into());
    if let Err(e) = fabric_api::selector::Selector::parse(&node_selector) {
        return Err(SettingError::new(
            "CALICO_IPV4POOL_NODE_SELECTOR",
            &node_selector,
            format!("is not a selector: {e}"),
        ));
    }
    Ok(DefaultPool {
        cidr,
        block_size,
        ipip,
        vxlan,
        nat_outgoing,
        node_selector,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn settings(vars: &[(&str, &str)]) -> Result<NodeSettings, SettingError> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([(
                "CALICO_NODENAME_FILE".into(),
                "/nonexistent/nodename".into(),
            )])
            .collect();
        NodeSettings::from_lookup(|k| map.get(k).cloned(), || Some("Host-A".into()))
    }

    #[test]
    fn defaults_are_calicos_with_the_host_name_as_node_name() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.node_name, "host-a");
        assert!(matches!(
            s.ipv4,
            AddressSetting::Autodetect(Method::FirstFound)
        ));
        assert!(matches!(s.ipv6, AddressSetting::None));
        assert_eq!(s.backend, Backend::Bgp);
        let pool = s.default_pool.unwrap();
        assert_eq!(pool.cidr.to_string(), DEFAULT_POOL_CIDR);
        assert_eq!(pool.block_size, 26);
        assert!(pool.nat_outgoing);
    }

    #[test]
    fn a_fixed_address_and_pool_settings_are_read() {
        let s = settings(&[
            ("NODENAME", "n1"),
            ("IP", "10.0.0.11/24"),
            ("AS", "64513"),
            ("CALICO_IPV4POOL_CIDR", "10.244.0.0/16"),
            ("CALICO_IPV4POOL_VXLAN", "Always"),
            ("CALICO_ROUTER_ID", "hash"),
        ])
        .unwrap();
        assert_eq!(s.node_name, "n1");
        assert!(matches!(s.ipv4, AddressSetting::Fixed(n) if n.to_string() == "10.0.0.11/24"));
        assert_eq!(s.as_number, Some(ASNumber(64513)));
        assert_eq!(s.router_id, Some(hashed_router_id("n1")));
        assert_eq!(s.default_pool.unwrap().vxlan, VXLANMode::Always);
    }

    #[test]
    fn each_bad_value_names_its_variable_value_and_rule() {
        let cases: &[(&str, &str, &str)] = &[
            ("IP", "10.0.0.300/24", "prefix length"),
            ("IP", "fd00::1/64", "IPv4"),
            ("AS", "sixty", "AS number"),
            ("CALICO_ROUTER_ID", "router", "IPv4 address"),
            ("CALICO_NETWORKING_BACKEND", "gobgp", "bird, vxlan or none"),
            ("CALICO_IPV4POOL_CIDR", "10.244.0.1/16", "host bits"),
            ("CALICO_IPV4POOL_BLOCK_SIZE", "12", "from 20 to 32"),
            (
                "CALICO_IPV4POOL_IPIP",
                "Sometimes",
                "Always, CrossSubnet or Never",
            ),
            ("CALICO_IPV4POOL_NAT_OUTGOING", "maybe", "true or false"),
            ("IP_AUTODETECTION_METHOD", "closest", "first-found"),
        ];
        for (var, value, rule) in cases {
            let e = settings(&[(var, value)]).unwrap_err();
            assert_eq!(&e.variable, var);
            assert_eq!(&e.value, value);
            let text = e.to_string();
            assert!(text.contains(rule), "{var}: {text}");
        }
    }

    #[test]
    fn no_default_pools_turns_the_pool_off() {
        assert!(
            settings(&[("NO_DEFAULT_POOLS", "true")])
                .unwrap()
                .default_pool
                .is_none()
        );
    }
}
