//! The daemon's configuration: who we are, where the datastore is, and the settings fixed
//! outside the datastore (from `FELIX_*` variables or the embedding program).

use std::time::Duration;

use fabric_datastore::DatastoreConfig;

use crate::calc::{ConfigOverrides, SettingError};

/// How to run felix.
#[derive(Debug, Clone)]
pub struct FelixConfig {
    /// This node's name (the `Node` resource and `WorkloadEndpoint.spec.node`).
    pub node_name: String,
    /// How to reach the datastore.
    pub datastore: DatastoreConfig,
    /// Settings that beat `FelixConfiguration` (Calico: environment over datastore).
    pub overrides: ConfigOverrides,
    /// The shortest time between two dataplane applies: a burst of updates within it is
    /// coalesced into one apply (the first update after a quiet period is applied at once).
    pub apply_interval: Duration,
    /// How long to wait, after start, for the learned-routes in-sync marker before stale
    /// learned routes may be deleted anyway (bgpd never reporting convergence must not pin
    /// routes forever). BIRD's default graceful-restart time is 120 s.
    pub learned_routes_grace: Duration,
    /// The first retry delay after a failed apply; doubled per failure up to `retry_max`.
    pub retry_min: Duration,
    /// The longest retry delay after failed applies (Calico's backstop is 10 s).
    pub retry_max: Duration,
}

impl FelixConfig {
    /// Defaults for `node_name` with `datastore`.
    pub fn new(node_name: impl Into<String>, datastore: DatastoreConfig) -> FelixConfig {
        FelixConfig {
            node_name: node_name.into(),
            datastore,
            overrides: ConfigOverrides::default(),
            apply_interval: Duration::from_millis(100),
            learned_routes_grace: Duration::from_secs(120),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(10),
        }
    }

    /// The configuration Calico's felix reads from its environment: the node name from
    /// `FELIX_FELIXHOSTNAME`, `NODENAME` or the host name; the datastore as calicoctl finds it
    /// (`DATASTORE_TYPE`, `SQLITE_PATH`, `ETCD_ENDPOINTS`, or `/etc/calico/calicoctl.cfg`);
    /// and the `FELIX_*` overrides ([`crate::calc::SUPPORTED_ENV`]).
    pub fn from_env() -> Result<FelixConfig, ConfigError> {
        let lookup = |name: &str| std::env::var(name).ok();
        let node_name = node_name_from(lookup, hostname)?;
        let datastore = DatastoreConfig::load(None).map_err(ConfigError::Datastore)?;
        let overrides = ConfigOverrides::from_lookup(lookup).map_err(ConfigError::Setting)?;
        Ok(FelixConfig {
            overrides,
            ..FelixConfig::new(node_name, datastore)
        })
    }
}

/// Why felix cannot start with the given configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No usable node name.
    #[error(
        "no node name: set NODENAME (or FELIX_FELIXHOSTNAME); the host name {hostname:?} cannot be used: {rule}"
    )]
    NodeName {
        /// The host name found, if any.
        hostname: String,
        /// Why it cannot be used.
        rule: &'static str,
    },
    /// The datastore settings are wrong.
    #[error("datastore configuration")]
    Datastore(#[source] fabric_datastore::ConfigError),
    /// A `FELIX_*` variable is wrong.
    #[error("felix setting")]
    Setting(#[source] SettingError),
}

/// The host name of this UTS namespace.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok()
}

/// `FELIX_FELIXHOSTNAME`, then `NODENAME`, then the host name (lower-cased, as Kubernetes
/// node names are).
fn node_name_from(
    lookup: impl Fn(&str) -> Option<String>,
    hostname: impl Fn() -> Option<String>,
) -> Result<String, ConfigError> {
    let set = |n: &str| {
        lookup(n)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(n) = set("FELIX_FELIXHOSTNAME").or_else(|| set("NODENAME")) {
        return Ok(n);
    }
    let host = hostname().unwrap_or_default();
    let name = host.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(ConfigError::NodeName {
            hostname: host,
            rule: "it is empty",
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_name_comes_from_the_environment_before_the_host_name() {
        let env = |k: &str| (k == "NODENAME").then(|| "node-a".to_string());
        assert_eq!(
            node_name_from(env, || Some("HOST".into())).unwrap(),
            "node-a"
        );
        let none = |_: &str| None;
        assert_eq!(
            node_name_from(none, || Some("HOST".into())).unwrap(),
            "host"
        );
        let err = node_name_from(none, || None).unwrap_err();
        assert!(err.to_string().contains("NODENAME"), "{err}");
    }
}
