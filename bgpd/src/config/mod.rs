//! The daemon configuration: the TOML file for a standalone bgpd and the same types for the
//! embedding API (calico-node's fabric module builds a [`Config`] in code). Parsing is strict:
//! unknown keys, bad values and broken rules are errors naming the key, the value and the rule.

mod convert;
mod de;
mod policy;
mod validate;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use bgp_wire::{Community, LargeCommunity};
use ipnet::IpNet;
use serde::Deserialize;

pub(crate) use convert::TransportOptions;
pub use policy::{PeerTypeName, PolicyConfig, PrefixMatchOp, RouteSourceName, RuleConfig, Verdict};

/// Why a configuration was refused. Nothing was applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or a key or value does not fit the schema.
    #[error("{key}: {message}{location}")]
    Parse {
        /// The key path (`neighbor[0].remote-asn`), `.` for the whole file.
        key: String,
        /// What is wrong.
        message: String,
        /// ` (line L, column C)` when known.
        location: String,
    },
    /// A value breaks a rule.
    #[error("{key} = {value}: {rule}")]
    Invalid {
        /// The key path (`neighbor[1].address`).
        key: String,
        /// The value given.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        key: impl Into<String>,
        value: impl ToString,
        rule: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}

/// The whole configuration of one bgpd instance. Keys are documented in `bgpd/README.md`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// BGP identifier.
    #[serde(deserialize_with = "de::one")]
    pub router_id: Ipv4Addr,
    /// Local AS number.
    pub asn: u32,
    /// Addresses to accept BGP connections on (empty: never accept).
    #[serde(default = "default_listen", deserialize_with = "de::list")]
    pub listen: Vec<SocketAddr>,
    /// Unix socket of the status API (`bgpd show`); none when absent.
    #[serde(default)]
    pub status_socket: Option<PathBuf>,
    /// Address of the Prometheus `/metrics` endpoint; none when absent.
    #[serde(default, deserialize_with = "de::opt")]
    pub metrics_address: Option<SocketAddr>,
    /// Log filter of the standalone binary (`info`, `debug`, `bgpd=debug,info`, ...). The library
    /// ignores it: an embedding program owns its logging.
    #[serde(default)]
    pub log_level: Option<String>,
    /// Graceful-restart state file: present at start = the previous process did not shut down
    /// cleanly, so this one starts as a restarting speaker (RFC 4724 R and F bits).
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// Route reflection cluster id (default: the router id).
    #[serde(default, deserialize_with = "de::opt")]
    pub cluster_id: Option<Ipv4Addr>,
    /// Hold time proposed in OPEN, seconds (0, or 3..=65535).
    #[serde(default = "default_hold_time")]
    pub hold_time: u16,
    /// Keepalive interval, seconds (default: a third of the negotiated hold time).
    #[serde(default)]
    pub keepalive: Option<u16>,
    /// ConnectRetry time, seconds.
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u16,
    /// Delay before the first connection attempt to a new neighbour, seconds.
    #[serde(default)]
    pub connect_delay: u16,
    /// Idle hold after a session error: first and largest value, seconds (BIRD `error wait time`).
    #[serde(default = "default_error_wait")]
    pub error_wait: [u16; 2],
    /// Advertise the Extended Message capability (RFC 8654).
    #[serde(default = "yes")]
    pub extended_message: bool,
    /// Most paths in an ECMP set (1 = no multipath).
    #[serde(default = "default_max_paths")]
    pub max_paths: u8,
    /// Compare MED between routes from different neighbour ASes.
    #[serde(default)]
    pub always_compare_med: bool,
    /// ECMP over paths from different neighbour ASes.
    #[serde(default)]
    pub multipath_relax: bool,
    /// Bytes that may wait in one connection's output queue before the connection is dropped
    /// (the peer is not reading).
    #[serde(default = "default_output_queue_limit")]
    pub output_queue_limit: usize,
    /// Graceful restart (RFC 4724).
    #[serde(default)]
    pub graceful_restart: GracefulRestartSettings,
    /// Named policies that neighbours refer to in `import-policy`/`export-policy`.
    #[serde(default)]
    pub policy: BTreeMap<String, PolicyConfig>,
    /// Neighbours.
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<NeighborConfig>,
    /// Prefixes this speaker originates.
    #[serde(default)]
    pub originate: Vec<OriginateConfig>,
}

/// Graceful restart settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GracefulRestartSettings {
    /// Advertise the capability and help restarting peers.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Restart time advertised to peers, seconds (at most 4095).
    #[serde(default = "default_restart_time")]
    pub restart_time: u16,
    /// How long a restarted peer's stale routes are kept waiting for its End-of-RIB, seconds.
    #[serde(default = "default_stale_routes_time")]
    pub stale_routes_time: u16,
    /// Longest wait for the peers' End-of-RIB when this speaker restarts, seconds.
    #[serde(default = "default_restart_time")]
    pub selection_deferral: u16,
    /// Advertise that forwarding state survived a restart (F bit). True for Calico: felix keeps
    /// the kernel routes while bgpd restarts.
    #[serde(default = "yes")]
    pub forwarding_preserved: bool,
}

impl Default for GracefulRestartSettings {
    fn default() -> Self {
        GracefulRestartSettings {
            enabled: true,
            restart_time: default_restart_time(),
            stale_routes_time: default_stale_routes_time(),
            selection_deferral: default_restart_time(),
            forwarding_preserved: true,
        }
    }
}

/// An address family name in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FamilyName {
    /// IPv4 unicast.
    Ipv4,
    /// IPv6 unicast.
    Ipv6,
}

/// Max-prefix limit of a neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MaxPrefixConfig {
    /// Limit of IPv4 prefixes received.
    #[serde(default)]
    pub ipv4: Option<u32>,
    /// Limit of IPv6 prefixes received.
    #[serde(default)]
    pub ipv6: Option<u32>,
    /// Restart the session this many seconds after the limit tripped (absent: stay down).
    #[serde(default)]
    pub restart_after: Option<u32>,
}

/// One neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NeighborConfig {
    /// The neighbour's address (the key).
    #[serde(deserialize_with = "de::one")]
    pub address: IpAddr,
    /// The neighbour's AS.
    pub remote_asn: u32,
    /// TCP port to connect to.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Free text shown by the status API (Calico: the peer type, `node-to-node mesh`, ...).
    #[serde(default)]
    pub description: Option<String>,
    /// Local AS on this session (Calico `localASNumber`).
    #[serde(default)]
    pub local_asn: Option<u32>,
    /// Source address of our connections (Calico `sourceAddress: UseNodeIP`).
    #[serde(default, deserialize_with = "de::opt")]
    pub local_address: Option<IpAddr>,
    /// TCP MD5 key (RFC 2385), at most 80 octets.
    #[serde(default)]
    pub password: Option<String>,
    /// Never connect; wait for the neighbour.
    #[serde(default)]
    pub passive: bool,
    /// The neighbour is a route reflector client of ours (iBGP only).
    #[serde(default)]
    pub route_reflector_client: bool,
    /// Cluster id for this client (all neighbours that set it must agree; it becomes the
    /// speaker's cluster id).
    #[serde(default, deserialize_with = "de::opt")]
    pub cluster_id: Option<Ipv4Addr>,
    /// Hold time, seconds (0, or 3..=65535).
    #[serde(default)]
    pub hold_time: Option<u16>,
    /// Keepalive interval, seconds.
    #[serde(default)]
    pub keepalive: Option<u16>,
    /// GTSM (RFC 5082): the neighbour is at most this many hops away (1..=254); we send TTL 255
    /// and drop segments that arrive with a TTL below 256 - hops.
    #[serde(default)]
    pub ttl_security: Option<u8>,
    /// TTL of our packets when GTSM is off (default: 1 for eBGP, 64 for iBGP).
    #[serde(default)]
    pub multihop: Option<u8>,
    /// Advertise our own address as next hop (BIRD `next hop self`).
    #[serde(default)]
    pub next_hop_self: bool,
    /// Keep the route's next hop (BIRD `next hop keep`).
    #[serde(default)]
    pub next_hop_keep: bool,
    /// IPv4 next hop advertised as "self" (default: the session's local address).
    #[serde(default, deserialize_with = "de::opt")]
    pub next_hop_v4: Option<Ipv4Addr>,
    /// IPv6 next hop advertised as "self" (default: the session's local address if IPv6).
    #[serde(default, deserialize_with = "de::opt")]
    pub next_hop_v6: Option<Ipv6Addr>,
    /// IPv6 link-local next hop sent with the global one.
    #[serde(default, deserialize_with = "de::opt")]
    pub link_local_next_hop: Option<Ipv6Addr>,
    /// Graceful restart with this neighbour.
    #[serde(default = "yes")]
    pub graceful_restart: bool,
    /// Families to negotiate (default: the address's family).
    #[serde(default)]
    pub families: Option<Vec<FamilyName>>,
    /// Every family must be negotiated, else the session is refused.
    #[serde(default)]
    pub require_all_families: bool,
    /// Occurrences of our AS accepted in a received AS path (Calico `numAllowedLocalASNumbers`).
    #[serde(default)]
    pub allow_local_as: u8,
    /// Check that an eBGP route's first AS is the neighbour's.
    #[serde(default = "yes")]
    pub enforce_first_as: bool,
    /// Max-prefix limit.
    #[serde(default)]
    pub max_prefix: Option<MaxPrefixConfig>,
    /// Name of the import policy (default: accept everything).
    #[serde(default)]
    pub import_policy: Option<String>,
    /// Name of the export policy (default: accept everything).
    #[serde(default)]
    pub export_policy: Option<String>,
}

impl NeighborConfig {
    /// A neighbour with every optional key at its default.
    pub fn new(address: IpAddr, remote_asn: u32) -> NeighborConfig {
        NeighborConfig {
            address,
            remote_asn,
            port: default_port(),
            description: None,
            local_asn: None,
            local_address: None,
            password: None,
            passive: false,
            route_reflector_client: false,
            cluster_id: None,
            hold_time: None,
            keepalive: None,
            ttl_security: None,
            multihop: None,
            next_hop_self: false,
            next_hop_keep: false,
            next_hop_v4: None,
            next_hop_v6: None,
            link_local_next_hop: None,
            graceful_restart: true,
            families: None,
            require_all_families: false,
            allow_local_as: 0,
            enforce_first_as: true,
            max_prefix: None,
            import_policy: None,
            export_policy: None,
        }
    }
}

/// A prefix this speaker originates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OriginateConfig {
    /// The prefix (host bits clear).
    #[serde(deserialize_with = "de::one")]
    pub prefix: IpNet,
    /// Standard communities attached.
    #[serde(default, deserialize_with = "de::list")]
    pub communities: Vec<Community>,
    /// Large communities attached.
    #[serde(default, deserialize_with = "de::list")]
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF (iBGP).
    #[serde(default)]
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    #[serde(default)]
    pub med: Option<u32>,
    /// Next hop to advertise instead of the session's own address.
    #[serde(default, deserialize_with = "de::opt")]
    pub next_hop: Option<IpAddr>,
}

impl OriginateConfig {
    /// An origination with no attributes.
    pub fn new(prefix: IpNet) -> OriginateConfig {
        OriginateConfig {
            prefix,
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_pref: None,
            med: None,
            next_hop: None,
        }
    }
}

impl Config {
    /// A configuration with every optional key at its default and no neighbours.
    pub fn new(router_id: Ipv4Addr, asn: u32) -> Config {
        Config {
            router_id,
            asn,
            listen: default_listen(),
            status_socket: None,
            metrics_address: None,
            log_level: None,
            state_file: None,
            cluster_id: None,
            hold_time: default_hold_time(),
            keepalive: None,
            connect_retry: default_connect_retry(),
            connect_delay: 0,
            error_wait: default_error_wait(),
            extended_message: true,
            max_paths: default_max_paths(),
            always_compare_med: false,
            multipath_relax: false,
            output_queue_limit: default_output_queue_limit(),
            graceful_restart: GracefulRestartSettings::default(),
            policy: BTreeMap::new(),
            neighbors: Vec::new(),
            originate: Vec::new(),
        }
    }

    /// Parses and validates a TOML document.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| parse_error(text, ".".into(), &e))?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            parse_error(text, key, e.inner())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text)
    }

    /// Checks every rule (the same checks [`crate::Daemon::start`] and
    /// [`crate::DaemonHandle::reconfigure`] run before they change anything).
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::config(self)
    }

    /// The neighbour with this address.
    pub fn neighbor(&self, address: IpAddr) -> Option<&NeighborConfig> {
        self.neighbors.iter().find(|n| n.address == address)
    }
}

fn parse_error(text: &str, key: String, e: &toml::de::Error) -> ConfigError {
    let location = e
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(" (line {line}, column {column})")
        })
        .unwrap_or_default();
    ConfigError::Parse {
        key: if key.is_empty() { ".".into() } else { key },
        message: e.message().trim().to_string(),
        location,
    }
}

fn yes() -> bool {
    true
}
fn default_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 179)),
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 179)),
    ]
}
fn default_port() -> u16 {
    179
}
fn default_hold_time() -> u16 {
    240
}
fn default_connect_retry() -> u16 {
    5
}
fn default_error_wait() -> [u16; 2] {
    [5, 30]
}
fn default_max_paths() -> u8 {
    16
}
fn default_output_queue_limit() -> usize {
    64 << 20
}
fn default_restart_time() -> u16 {
    120
}
fn default_stale_routes_time() -> u16 {
    360
}

#[cfg(test)]
mod tests;
