//! Felix's effective settings: built-in defaults, then `FelixConfiguration` `default`, then
//! `node.<name>`, then overrides (the `FELIX_*` environment variables or the embedding
//! program), each layer winning field by field over the ones before it, as in Calico.

use std::net::IpAddr;
use std::time::Duration;

use fabric_api::felix::FelixConfigurationSpec;
use fabric_api::felix::IptablesBackend;
use felix_policy::EndpointToHostAction;

/// Which iptables binaries to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IptablesBackendChoice {
    /// nft where its binaries exist, legacy otherwise.
    #[default]
    Auto,
    /// `iptables-legacy-*`.
    Legacy,
    /// `iptables-nft-*`.
    Nft,
}

/// The settings felix runs with. A zero refresh interval disables that periodic resync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `routeRefreshInterval` (90 s): routes and VXLAN neighbours are re-read and repaired.
    pub route_refresh_interval: Duration,
    /// `iptablesRefreshInterval` (180 s): the iptables chains are re-read and repaired.
    pub iptables_refresh_interval: Duration,
    /// `ipsetsRefreshInterval` (90 s): the ipsets are re-read and repaired.
    pub ipsets_refresh_interval: Duration,
    /// `interfaceRefreshInterval` (90 s): tunnel devices, sysctls and the underlay interface.
    pub interface_refresh_interval: Duration,
    /// `healthEnabled` (true).
    pub health_enabled: bool,
    /// `healthHost` (`localhost`).
    pub health_host: String,
    /// `healthPort` (9099).
    pub health_port: u16,
    /// `prometheusMetricsEnabled` (false).
    pub prometheus_metrics_enabled: bool,
    /// `prometheusMetricsHost` (all addresses).
    pub prometheus_metrics_host: String,
    /// `prometheusMetricsPort` (9091).
    pub prometheus_metrics_port: u16,
    /// `ipipEnabled`: `None` decides from the pools.
    pub ipip_enabled: Option<bool>,
    /// `vxlanEnabled`: `None` decides from the pools.
    pub vxlan_enabled: Option<bool>,
    /// `ipipMTU`: `None` is the underlay MTU - 20.
    pub ipip_mtu: Option<u32>,
    /// `vxlanMTU`: `None` is the underlay MTU - 50.
    pub vxlan_mtu: Option<u32>,
    /// `vxlanMTUV6`: `None` is the underlay MTU - 70.
    pub vxlan_mtu_v6: Option<u32>,
    /// `vxlanPort` (4789).
    pub vxlan_port: u16,
    /// `vxlanVNI` (4096).
    pub vxlan_vni: u32,
    /// `natOutgoingAddress`: SNAT to this address instead of MASQUERADE.
    pub nat_outgoing_address: Option<IpAddr>,
    /// `iptablesBackend` (Auto).
    pub iptables_backend: IptablesBackendChoice,
    /// `ipv6Support` (true): program IPv6 as well.
    pub ipv6_support: bool,
    /// `defaultEndpointToHostAction` (Accept, as Calico's manifests set it): what happens to
    /// workload-to-host traffic its egress policy allowed.
    pub default_endpoint_to_host_action: EndpointToHostAction,
    /// `logPrefix` (`calico-packet`): the prefix of policy Log rules.
    pub log_prefix: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            route_refresh_interval: Duration::from_secs(90),
            iptables_refresh_interval: Duration::from_secs(180),
            ipsets_refresh_interval: Duration::from_secs(90),
            interface_refresh_interval: Duration::from_secs(90),
            health_enabled: true,
            health_host: "localhost".to_string(),
            health_port: 9099,
            prometheus_metrics_enabled: false,
            prometheus_metrics_host: String::new(),
            prometheus_metrics_port: 9091,
            ipip_enabled: None,
            vxlan_enabled: None,
            ipip_mtu: None,
            vxlan_mtu: None,
            vxlan_mtu_v6: None,
            vxlan_port: 4789,
            vxlan_vni: 4096,
            nat_outgoing_address: None,
            iptables_backend: IptablesBackendChoice::Auto,
            ipv6_support: true,
            default_endpoint_to_host_action: EndpointToHostAction::Accept,
            log_prefix: "calico-packet".to_string(),
        }
    }
}

/// Settings fixed outside the datastore; each `Some` wins over every `FelixConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    /// `FELIX_ROUTEREFRESHINTERVAL`.
    pub route_refresh_interval: Option<Duration>,
    /// `FELIX_IPTABLESREFRESHINTERVAL`.
    pub iptables_refresh_interval: Option<Duration>,
    /// `FELIX_IPSETSREFRESHINTERVAL`.
    pub ipsets_refresh_interval: Option<Duration>,
    /// `FELIX_INTERFACEREFRESHINTERVAL`.
    pub interface_refresh_interval: Option<Duration>,
    /// `FELIX_HEALTHENABLED`.
    pub health_enabled: Option<bool>,
    /// `FELIX_HEALTHHOST`.
    pub health_host: Option<String>,
    /// `FELIX_HEALTHPORT`.
    pub health_port: Option<u16>,
    /// `FELIX_PROMETHEUSMETRICSENABLED`.
    pub prometheus_metrics_enabled: Option<bool>,
    /// `FELIX_PROMETHEUSMETRICSHOST`.
    pub prometheus_metrics_host: Option<String>,
    /// `FELIX_PROMETHEUSMETRICSPORT`.
    pub prometheus_metrics_port: Option<u16>,
    /// `FELIX_IPIPENABLED`.
    pub ipip_enabled: Option<bool>,
    /// `FELIX_VXLANENABLED`.
    pub vxlan_enabled: Option<bool>,
    /// `FELIX_IPIPMTU`.
    pub ipip_mtu: Option<u32>,
    /// `FELIX_VXLANMTU`.
    pub vxlan_mtu: Option<u32>,
    /// `FELIX_VXLANMTUV6`.
    pub vxlan_mtu_v6: Option<u32>,
    /// `FELIX_VXLANPORT`.
    pub vxlan_port: Option<u16>,
    /// `FELIX_VXLANVNI`.
    pub vxlan_vni: Option<u32>,
    /// `FELIX_NATOUTGOINGADDRESS`.
    pub nat_outgoing_address: Option<IpAddr>,
    /// `FELIX_IPTABLESBACKEND`.
    pub iptables_backend: Option<IptablesBackendChoice>,
    /// `FELIX_IPV6SUPPORT`.
    pub ipv6_support: Option<bool>,
    /// `FELIX_DEFAULTENDPOINTTOHOSTACTION`.
    pub default_endpoint_to_host_action: Option<EndpointToHostAction>,
    /// `FELIX_LOGPREFIX`.
    pub log_prefix: Option<String>,
}

/// A setting that cannot be used: which one, its value, and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} = {value:?} is invalid: {rule}")]
pub struct SettingError {
    /// The variable or field (`FELIX_HEALTHPORT`, `FelixConfiguration default spec.vxlanVNI`).
    pub setting: String,
    /// The value given.
    pub value: String,
    /// The rule.
    pub rule: String,
}

/// Every environment variable [`ConfigOverrides::from_lookup`] reads.
pub const SUPPORTED_ENV: &[&str] = &[
    "FELIX_ROUTEREFRESHINTERVAL",
    "FELIX_IPTABLESREFRESHINTERVAL",
    "FELIX_IPSETSREFRESHINTERVAL",
    "FELIX_INTERFACEREFRESHINTERVAL",
    "FELIX_HEALTHENABLED",
    "FELIX_HEALTHHOST",
    "FELIX_HEALTHPORT",
    "FELIX_PROMETHEUSMETRICSENABLED",
    "FELIX_PROMETHEUSMETRICSHOST",
    "FELIX_PROMETHEUSMETRICSPORT",
    "FELIX_IPIPENABLED",
    "FELIX_VXLANENABLED",
    "FELIX_IPIPMTU",
    "FELIX_VXLANMTU",
    "FELIX_VXLANMTUV6",
    "FELIX_VXLANPORT",
    "FELIX_VXLANVNI",
    "FELIX_NATOUTGOINGADDRESS",
    "FELIX_IPTABLESBACKEND",
    "FELIX_IPV6SUPPORT",
    "FELIX_DEFAULTENDPOINTTOHOSTACTION",
    "FELIX_LOGPREFIX",
];

impl ConfigOverrides {
    /// Reads the `FELIX_*` variables from `lookup` (the environment, or a map in tests). Empty
    /// values count as unset. The first unusable value is an error naming it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let err = |name: &str, value: &str, rule: &str| SettingError {
            setting: name.to_string(),
            value: value.to_string(),
            rule: rule.to_string(),
        };
        let duration = |name: &str| -> Result<Option<Duration>, SettingError> {
            get(name)
                .map(|v| {
                    parse_env_duration(&v).ok_or_else(|| {
                        err(
                            name,
                            &v,
                            "expected seconds (90, 0.5) or a duration (90s, 1m30s, 500ms)",
                        )
                    })
                })
                .transpose()
        };
        let boolean = |name: &str| -> Result<Option<bool>, SettingError> {
            get(name)
                .map(|v| match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "y" | "t" => Ok(true),
                    "false" | "0" | "no" | "n" | "f" => Ok(false),
                    _ => Err(err(name, &v, "expected true or false")),
                })
                .transpose()
        };
        let number = |name: &str, min: u64, max: u64| -> Result<Option<u64>, SettingError> {
            get(name)
                .map(|v| {
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| (min..=max).contains(n))
                        .ok_or_else(|| {
                            err(
                                name,
                                &v,
                                &format!("expected a whole number from {min} to {max}"),
                            )
                        })
                })
                .transpose()
        };
        let port = |name: &str| -> Result<Option<u16>, SettingError> {
            Ok(number(name, 1, 65535)?.and_then(|n| u16::try_from(n).ok()))
        };
        let mtu = |name: &str| -> Result<Option<u32>, SettingError> {
            // 0 means "detect", as in Calico.
            number(name, 0, 65535)?
                .filter(|n| *n != 0)
                .map(|n| {
                    if n < 68 {
                        Err(err(
                            name,
                            &n.to_string(),
                            "an MTU is 0 (detect) or from 68 to 65535",
                        ))
                    } else {
                        Ok(n as u32)
                    }
                })
                .transpose()
        };
        let address = |name: &str| -> Result<Option<IpAddr>, SettingError> {
            get(name)
                .map(|v| {
                    v.parse::<IpAddr>()
                        .map_err(|_| err(name, &v, "expected an IP address"))
                })
                .transpose()
        };
        let backend = |name: &str| -> Result<Option<IptablesBackendChoice>, SettingError> {
            get(name)
                .map(|v| match v.to_ascii_lowercase().as_str() {
                    "auto" => Ok(IptablesBackendChoice::Auto),
                    "legacy" => Ok(IptablesBackendChoice::Legacy),
                    "nft" => Ok(IptablesBackendChoice::Nft),
                    _ => Err(err(name, &v, "expected Auto, Legacy or NFT")),
                })
                .transpose()
        };
        Ok(ConfigOverrides {
            route_refresh_interval: duration("FELIX_ROUTEREFRESHINTERVAL")?,
            iptables_refresh_interval: duration("FELIX_IPTABLESREFRESHINTERVAL")?,
            ipsets_refresh_interval: duration("FELIX_IPSETSREFRESHINTERVAL")?,
            interface_refresh_interval: duration("FELIX_INTERFACEREFRESHINTERVAL")?,
            health_enabled: boolean("FELIX_HEALTHENABLED")?,
            health_host: get("FELIX_HEALTHHOST"),
            health_port: port("FELIX_HEALTHPORT")?,
            prometheus_metrics_enabled: boolean("FELIX_PROMETHEUSMETRICSENABLED")?,
            prometheus_metrics_host: get("FELIX_PROMETHEUSMETRICSHOST"),
            prometheus_metrics_port: port("FELIX_PROMETHEUSMETRICSPORT")?,
            ipip_enabled: boolean("FELIX_IPIPENABLED")?,
            vxlan_enabled: boolean("FELIX_VXLANENABLED")?,
            ipip_mtu: mtu("FELIX_IPIPMTU")?,
            vxlan_mtu: mtu("FELIX_VXLANMTU")?,
            vxlan_mtu_v6: mtu("FELIX_VXLANMTUV6")?,
            vxlan_port: port("FELIX_VXLANPORT")?,
            vxlan_vni: number("FELIX_VXLANVNI", 1, 0xff_ffff)?.map(|n| n as u32),
            nat_outgoing_address: address("FELIX_NATOUTGOINGADDRESS")?,
            iptables_backend: backend("FELIX_IPTABLESBACKEND")?,
            ipv6_support: boolean("FELIX_IPV6SUPPORT")?,
            default_endpoint_to_host_action: get("FELIX_DEFAULTENDPOINTTOHOSTACTION")
                .map(|v| {
                    EndpointToHostAction::parse(&v)
                        .map_err(|e| err("FELIX_DEFAULTENDPOINTTOHOSTACTION", &v, &e.rule))
                })
                .transpose()?,
            log_prefix: get("FELIX_LOGPREFIX")
                .map(|v| match log_prefix_problem(&v) {
                    Some(rule) => Err(err("FELIX_LOGPREFIX", &v, rule)),
                    None => Ok(v),
                })
                .transpose()?,
        })
    }
}

/// Seconds (`90`, `0.5`) or a Go duration (`90s`, `1m30s`, `500ms`).
fn parse_env_duration(text: &str) -> Option<Duration> {
    if let Ok(secs) = text.parse::<f64>() {
        // Negative, NaN, infinite and too-large values are refused, not a panic.
        return Duration::try_from_secs_f64(secs).ok();
    }
    fabric_api::Duration::parse(text).ok()?.to_std()
}

/// Merges the layers. `layers` are the `FelixConfiguration` specs from weakest to strongest
/// (`default`, then `node.<name>`), each with its name for messages. Unusable datastore values
/// are skipped (the weaker layer's value is used) and reported in the second value.
pub fn effective_settings(
    layers: &[(&str, &FelixConfigurationSpec)],
    overrides: &ConfigOverrides,
) -> (Settings, Vec<SettingError>) {
    let mut s = Settings::default();
    let mut problems = Vec::new();
    for (name, spec) in layers {
        apply_layer(&mut s, name, spec, &mut problems);
    }
    let o = overrides;
    macro_rules! over {
        ($($field:ident),*) => { $( if let Some(v) = &o.$field { s.$field = v.clone(); } )* };
    }
    over!(
        route_refresh_interval,
        iptables_refresh_interval,
        ipsets_refresh_interval,
        interface_refresh_interval,
        health_enabled,
        health_host,
        health_port,
        prometheus_metrics_enabled,
        prometheus_metrics_host,
        prometheus_metrics_port,
        vxlan_port,
        vxlan_vni,
        iptables_backend,
        ipv6_support,
        default_endpoint_to_host_action,
        log_prefix
    );
    if o.ipip_enabled.is_some() {
        s.ipip_enabled = o.ipip_enabled;
    }
    if o.vxlan_enabled.is_some() {
        s.vxlan_enabled = o.vxlan_enabled;
    }
    if o.ipip_mtu.is_some() {
        s.ipip_mtu = o.ipip_mtu;
    }
    if o.vxlan_mtu.is_some() {
        s.vxlan_mtu = o.vxlan_mtu;
    }
    if o.vxlan_mtu_v6.is_some() {
        s.vxlan_mtu_v6 = o.vxlan_mtu_v6;
    }
    if o.nat_outgoing_address.is_some() {
        s.nat_outgoing_address = o.nat_outgoing_address;
    }
    (s, problems)
}

fn apply_layer(
    s: &mut Settings,
    name: &str,
    spec: &FelixConfigurationSpec,
    problems: &mut Vec<SettingError>,
) {
    let mut check = |field: &str, result: Result<(), (String, &str)>| {
        if let Err((value, rule)) = result {
            problems.push(SettingError {
                setting: format!("FelixConfiguration {name} spec.{field}"),
                value,
                rule: rule.to_string(),
            });
        }
    };
    for (field, value, out) in [
        (
            "routeRefreshInterval",
            &spec.route_refresh_interval,
            &mut s.route_refresh_interval,
        ),
        (
            "iptablesRefreshInterval",
            &spec.iptables_refresh_interval,
            &mut s.iptables_refresh_interval,
        ),
        (
            "ipsetsRefreshInterval",
            &spec.ipsets_refresh_interval,
            &mut s.ipsets_refresh_interval,
        ),
        (
            "interfaceRefreshInterval",
            &spec.interface_refresh_interval,
            &mut s.interface_refresh_interval,
        ),
    ] {
        check(field, layer_interval(value, out));
    }
    for (field, value, out) in [
        ("healthPort", spec.health_port, &mut s.health_port),
        (
            "prometheusMetricsPort",
            spec.prometheus_metrics_port,
            &mut s.prometheus_metrics_port,
        ),
        ("vxlanPort", spec.vxlan_port, &mut s.vxlan_port),
    ] {
        check(field, layer_port(value, out));
    }
    for (field, value, out) in [
        ("ipipMTU", spec.ipip_mtu, &mut s.ipip_mtu),
        ("vxlanMTU", spec.vxlan_mtu, &mut s.vxlan_mtu),
        ("vxlanMTUV6", spec.vxlan_mtu_v6, &mut s.vxlan_mtu_v6),
    ] {
        check(field, layer_mtu(value, out));
    }
    if let Some(v) = spec.vxlan_vni {
        match u32::try_from(v)
            .ok()
            .filter(|v| (1..=0xff_ffff).contains(v))
        {
            Some(v) => s.vxlan_vni = v,
            None => check(
                "vxlanVNI",
                Err((v.to_string(), "a VNI is from 1 to 16777215")),
            ),
        }
    }
    if let Some(v) = spec.nat_outgoing_address.as_ref().filter(|a| !a.is_empty()) {
        match v.parse::<IpAddr>() {
            Ok(a) => s.nat_outgoing_address = Some(a),
            Err(_) => check(
                "natOutgoingAddress",
                Err((v.clone(), "expected an IP address")),
            ),
        }
    }
    if let Some(v) = spec.health_enabled {
        s.health_enabled = v;
    }
    if let Some(v) = spec.health_host.as_ref().filter(|h| !h.is_empty()) {
        s.health_host = v.clone();
    }
    if let Some(v) = spec.prometheus_metrics_enabled {
        s.prometheus_metrics_enabled = v;
    }
    if let Some(v) = &spec.prometheus_metrics_host {
        s.prometheus_metrics_host = v.clone();
    }
    if spec.ipip_enabled.is_some() {
        s.ipip_enabled = spec.ipip_enabled;
    }
    if spec.vxlan_enabled.is_some() {
        s.vxlan_enabled = spec.vxlan_enabled;
    }
    if let Some(b) = spec.iptables_backend {
        s.iptables_backend = match b {
            IptablesBackend::Auto => IptablesBackendChoice::Auto,
            IptablesBackend::Legacy => IptablesBackendChoice::Legacy,
            IptablesBackend::Nft => IptablesBackendChoice::Nft,
        };
    }
    if let Some(v) = spec.ipv6_support {
        s.ipv6_support = v;
    }
    if let Some(v) = spec
        .default_endpoint_to_host_action
        .as_ref()
        .filter(|v| !v.is_empty())
    {
        match EndpointToHostAction::parse(v) {
            Ok(a) => s.default_endpoint_to_host_action = a,
            Err(e) => check("defaultEndpointToHostAction", Err((v.clone(), &e.rule))),
        }
    }
    if let Some(v) = spec.log_prefix.as_ref().filter(|v| !v.is_empty()) {
        match log_prefix_problem(v) {
            None => s.log_prefix = v.clone(),
            Some(rule) => check("logPrefix", Err((v.clone(), rule))),
        }
    }
}

/// Why `prefix` cannot prefix iptables LOG messages (29 characters with our `: `).
fn log_prefix_problem(prefix: &str) -> Option<&'static str> {
    (prefix.len() > 27
        || prefix
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control()))
    .then_some(
        "a log prefix has at most 27 characters and no quotes, backslashes or control characters",
    )
}

/// A layer's bad value and the rule it breaks.
type LayerProblem = (String, &'static str);

fn layer_interval(
    value: &Option<fabric_api::Duration>,
    out: &mut Duration,
) -> Result<(), LayerProblem> {
    if let Some(d) = value {
        *out = d
            .to_std()
            .ok_or((d.to_string(), "a refresh interval must not be negative"))?;
    }
    Ok(())
}

fn layer_port(value: Option<i64>, out: &mut u16) -> Result<(), LayerProblem> {
    if let Some(p) = value {
        *out = u16::try_from(p)
            .ok()
            .filter(|p| *p != 0)
            .ok_or((p.to_string(), "a port is from 1 to 65535"))?;
    }
    Ok(())
}

fn layer_mtu(value: Option<i64>, out: &mut Option<u32>) -> Result<(), LayerProblem> {
    match value {
        None => {}
        Some(0) => *out = None,
        Some(m) if (68..=65535).contains(&m) => *out = Some(m as u32),
        Some(m) => return Err((m.to_string(), "an MTU is 0 (detect) or from 68 to 65535")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_calicos() {
        let (s, problems) = effective_settings(&[], &ConfigOverrides::default());
        assert!(problems.is_empty());
        assert_eq!(s.health_port, 9099);
        assert_eq!(s.health_host, "localhost");
        assert_eq!(s.prometheus_metrics_port, 9091);
        assert_eq!(s.route_refresh_interval, Duration::from_secs(90));
        assert_eq!(s.iptables_refresh_interval, Duration::from_secs(180));
        assert_eq!((s.vxlan_vni, s.vxlan_port), (4096, 4789));
    }

    #[test]
    fn the_node_layer_beats_default_and_the_environment_beats_both() {
        let default = FelixConfigurationSpec {
            health_port: Some(9000),
            vxlan_vni: Some(10),
            route_refresh_interval: Some(fabric_api::Duration::parse("30s").unwrap()),
            ..FelixConfigurationSpec::default()
        };
        let node = FelixConfigurationSpec {
            health_port: Some(9001),
            ..FelixConfigurationSpec::default()
        };
        let o = ConfigOverrides::from_lookup(env(&[("FELIX_ROUTEREFRESHINTERVAL", "2")])).unwrap();
        let (s, problems) = effective_settings(&[("default", &default), ("node.a", &node)], &o);
        assert!(problems.is_empty());
        assert_eq!(s.health_port, 9001);
        assert_eq!(s.vxlan_vni, 10);
        assert_eq!(s.route_refresh_interval, Duration::from_secs(2));
    }

    #[test]
    fn a_bad_datastore_value_is_reported_and_the_weaker_layer_kept() {
        let default = FelixConfigurationSpec {
            vxlan_vni: Some(0),
            health_port: Some(70000),
            ..FelixConfigurationSpec::default()
        };
        let (s, problems) =
            effective_settings(&[("default", &default)], &ConfigOverrides::default());
        assert_eq!(s.vxlan_vni, 4096);
        assert_eq!(s.health_port, 9099);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0]
                .to_string()
                .contains("FelixConfiguration default spec.healthPort"),
            "{problems:?}"
        );
        assert!(problems[1].to_string().contains("spec.vxlanVNI"));
    }

    #[test]
    fn a_bad_environment_value_is_an_error_naming_the_variable_and_the_rule() {
        let e = ConfigOverrides::from_lookup(env(&[("FELIX_HEALTHPORT", "99999")])).unwrap_err();
        assert_eq!(e.setting, "FELIX_HEALTHPORT");
        assert!(e.to_string().contains("from 1 to 65535"), "{e}");
        let e = ConfigOverrides::from_lookup(env(&[("FELIX_IPTABLESREFRESHINTERVAL", "soon")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("FELIX_IPTABLESREFRESHINTERVAL"),
            "{e}"
        );
        let e = ConfigOverrides::from_lookup(env(&[("FELIX_VXLANMTU", "20")])).unwrap_err();
        assert!(e.rule.contains("68"), "{e}");
    }

    #[test]
    fn environment_durations_take_seconds_or_go_durations() {
        let o = ConfigOverrides::from_lookup(env(&[
            ("FELIX_ROUTEREFRESHINTERVAL", "0.5"),
            ("FELIX_IPTABLESREFRESHINTERVAL", "1m30s"),
            ("FELIX_IPSETSREFRESHINTERVAL", "0"),
            ("FELIX_IPTABLESBACKEND", "legacy"),
        ]))
        .unwrap();
        assert_eq!(o.route_refresh_interval, Some(Duration::from_millis(500)));
        assert_eq!(o.iptables_refresh_interval, Some(Duration::from_secs(90)));
        assert_eq!(o.ipsets_refresh_interval, Some(Duration::ZERO));
        assert_eq!(o.iptables_backend, Some(IptablesBackendChoice::Legacy));
    }

    #[test]
    fn an_environment_duration_too_large_for_a_duration_is_an_error() {
        let e = ConfigOverrides::from_lookup(env(&[("FELIX_ROUTEREFRESHINTERVAL", "1e30")]))
            .unwrap_err();
        assert_eq!(e.setting, "FELIX_ROUTEREFRESHINTERVAL");
        assert_eq!(e.value, "1e30");
    }
}
