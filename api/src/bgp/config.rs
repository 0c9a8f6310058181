//! `BGPConfiguration`: cluster-wide BGP settings (`default`) and per-node overrides
//! (`node.<nodename>`), with the fields Calico allows only on `default`.

use serde::{Deserialize, Serialize};

use crate::bgp::{
    ASNumber, BGPPassword, CommunityValue, DEFAULT_AS_NUMBER, DEFAULT_LISTEN_PORT, check_as_number,
    check_password,
};
use crate::error::{Errors, index, join};
use crate::resource::{Rules, resource};
use crate::validate::cidr::{check_ip_family, check_net};
use crate::validate::duration::Duration;
use crate::validate::names::{check_name, is_dns1123_subdomain, is_interface_pattern};
use crate::validate::{check_one_of_ci, check_range};

/// Name of the cluster-wide BGPConfiguration.
pub const DEFAULT_CONFIG_NAME: &str = "default";
/// Prefix of per-node BGPConfiguration names (`node.<nodename>`).
pub const NODE_CONFIG_PREFIX: &str = "node.";
/// Largest route priority (metric) Calico accepts.
pub const MAX_ROUTE_PRIORITY: i64 = 2_147_483_646;
/// Log levels accepted by `logSeverityScreen` (case-insensitive).
pub const LOG_LEVELS: [&str; 6] = ["Trace", "Debug", "Info", "Warning", "Error", "Fatal"];

resource!(
    /// BGP settings: `default` for the cluster, `node.<name>` for one node.
    BGPConfiguration,
    BGPConfigurationSpec
);

/// Where the BGP speaker listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BindMode {
    /// All addresses.
    None,
    /// The node's own address only.
    NodeIP,
}

/// Whether LoadBalancer service ranges are advertised whole or per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceLoadBalancerAggregation {
    /// Advertise the configured ranges.
    Enabled,
    /// Advertise a /32 (/128) per service.
    Disabled,
}

/// Which cluster routes the BGP stack programs (the rest are Felix's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProgramClusterRoutes {
    /// Both IPIP and unencapsulated pools.
    Enabled,
    /// None.
    Disabled,
    /// IPIP pools only.
    #[serde(rename = "EnabledIPIPOnly")]
    EnabledIPIPOnly,
    /// Unencapsulated pools only.
    EnabledNoEncapOnly,
}

/// A service CIDR block to advertise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceIPBlock {
    /// The CIDR (strictly masked).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
}

/// A named community value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Community {
    /// Name referenced from `prefixAdvertisements`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `aa:nn` or `aa:nn:mm`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// Communities to attach to routes within a CIDR.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixAdvertisement {
    /// The CIDR (strictly masked).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    /// Community names (from `communities`) or literal values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
}

/// `BGPConfiguration.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPConfigurationSpec {
    /// BIRD-style log level (default `Info`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_severity_screen: String,
    /// Full node-to-node mesh (effective default true; `default` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    /// Cluster AS number (effective default 64512; `default` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<ASNumber>,
    /// LoadBalancer service ranges to advertise (`default` only).
    #[serde(
        default,
        rename = "serviceLoadBalancerIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_load_balancer_ips: Vec<ServiceIPBlock>,
    /// External IP ranges to advertise (`default` only).
    #[serde(
        default,
        rename = "serviceExternalIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_external_ips: Vec<ServiceIPBlock>,
    /// Cluster IP ranges to advertise (`default` only).
    #[serde(
        default,
        rename = "serviceClusterIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_cluster_ips: Vec<ServiceIPBlock>,
    /// LoadBalancer aggregation (default `Enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_load_balancer_aggregation: Option<ServiceLoadBalancerAggregation>,
    /// Named community values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<Community>,
    /// Per-prefix communities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    /// BGP listen port (effective default 179; 0 means unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    /// TCP MD5 password of mesh sessions (`default` only, mesh enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_password: Option<BGPPassword>,
    /// Graceful-restart time of mesh sessions (`default` only, mesh enabled; BIRD default 120s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_max_restart_time: Option<Duration>,
    /// Listen on all addresses or the node IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_mode: Option<BindMode>,
    /// Interfaces whose device routes are ignored (`*` wildcards allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_interfaces: Vec<String>,
    /// IPv4 address local workloads peer with.
    #[serde(
        default,
        rename = "localWorkloadPeeringIPV4",
        skip_serializing_if = "String::is_empty"
    )]
    pub local_workload_peering_ipv4: String,
    /// IPv6 address local workloads peer with.
    #[serde(
        default,
        rename = "localWorkloadPeeringIPV6",
        skip_serializing_if = "String::is_empty"
    )]
    pub local_workload_peering_ipv6: String,
    /// Which cluster routes the BGP stack programs (Calico default `EnabledNoEncapOnly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_cluster_routes: Option<ProgramClusterRoutes>,
    /// Normal IPv4 route metric (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_normal_route_priority: Option<i64>,
    /// Normal IPv6 route metric (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_normal_route_priority: Option<i64>,
}

impl BGPConfigurationSpec {
    /// The AS number in effect (64512 when unset).
    pub fn effective_as_number(&self) -> u32 {
        self.as_number.map_or(DEFAULT_AS_NUMBER, ASNumber::get)
    }

    /// Whether the node-to-node mesh is on (true when unset).
    pub fn effective_node_to_node_mesh_enabled(&self) -> bool {
        self.node_to_node_mesh_enabled.unwrap_or(true)
    }

    /// The listen port in effect (179 when unset or 0).
    pub fn effective_listen_port(&self) -> u16 {
        match self.listen_port {
            Some(p) if p != 0 => p,
            _ => DEFAULT_LISTEN_PORT,
        }
    }

    /// The bind mode in effect (`None`: all addresses).
    pub fn effective_bind_mode(&self) -> BindMode {
        self.bind_mode.unwrap_or(BindMode::None)
    }

    /// The cluster-route programming choice in effect (`EnabledNoEncapOnly` when unset).
    pub fn effective_program_cluster_routes(&self) -> ProgramClusterRoutes {
        self.program_cluster_routes
            .unwrap_or(ProgramClusterRoutes::EnabledNoEncapOnly)
    }
}

impl BGPConfiguration {
    /// The node a `node.<name>` configuration applies to (`None` for `default` and others).
    pub fn node_name(&self) -> Option<&str> {
        self.metadata.name_str().strip_prefix(NODE_CONFIG_PREFIX)
    }
}

impl Rules for BGPConfiguration {
    fn defaults(&mut self) {
        let s = &mut self.spec;
        // Calico's CRD defaults (applied to every BGPConfiguration, per-node ones included).
        if s.log_severity_screen.is_empty() {
            s.log_severity_screen = "Info".to_string();
        }
        s.service_load_balancer_aggregation
            .get_or_insert(ServiceLoadBalancerAggregation::Enabled);
        if s.listen_port == Some(0) {
            s.listen_port = None;
        }
    }

    fn check(&self, errs: &mut Errors) {
        let name = self.metadata.name_str();
        check_name(errs, "metadata.name", name);
        if let Some(node) = name.strip_prefix(NODE_CONFIG_PREFIX)
            && !is_dns1123_subdomain(node)
        {
            errs.add(
                "metadata.name",
                name,
                "is not a valid per-node name: expected node.<nodename>",
            );
        }
        let s = &self.spec;
        check_one_of_ci(
            errs,
            "spec.logSeverityScreen",
            &s.log_severity_screen,
            &LOG_LEVELS,
        );
        check_as_number(errs, "spec.asNumber", s.as_number);
        for (field, blocks) in [
            ("spec.serviceLoadBalancerIPs", &s.service_load_balancer_ips),
            ("spec.serviceExternalIPs", &s.service_external_ips),
            ("spec.serviceClusterIPs", &s.service_cluster_ips),
        ] {
            for (i, b) in blocks.iter().enumerate() {
                let f = join(&index(field, i), "cidr");
                if b.cidr.is_empty() {
                    errs.rule(f, "is required");
                } else {
                    check_net(errs, &f, &b.cidr);
                }
            }
        }
        check_communities(errs, s);
        if s.effective_node_to_node_mesh_enabled() {
            if let Some(p) = &s.node_mesh_password {
                check_password(errs, "spec.nodeMeshPassword", p);
            }
        } else {
            if s.node_mesh_password.is_some() {
                errs.rule(
                    "spec.nodeMeshPassword",
                    "cannot be set when nodeToNodeMeshEnabled is false",
                );
            }
            if s.node_mesh_max_restart_time.is_some() {
                errs.rule(
                    "spec.nodeMeshMaxRestartTime",
                    "cannot be set when nodeToNodeMeshEnabled is false",
                );
            }
        }
        if let Some(d) = &s.node_mesh_max_restart_time
            && d.as_nanos() < 0
        {
            errs.add(
                "spec.nodeMeshMaxRestartTime",
                d.as_str(),
                "must not be negative",
            );
        }
        for (i, iface) in s.ignored_interfaces.iter().enumerate() {
            if iface == "*" || !is_interface_pattern(iface) {
                errs.add(
                    index("spec.ignoredInterfaces", i),
                    iface.as_str(),
                    "is not a valid interface pattern: 1-15 of [a-zA-Z0-9_.*-], and not just *",
                );
            }
        }
        if !s.local_workload_peering_ipv4.is_empty() {
            check_ip_family(
                errs,
                "spec.localWorkloadPeeringIPV4",
                &s.local_workload_peering_ipv4,
                4,
            );
        }
        if !s.local_workload_peering_ipv6.is_empty() {
            check_ip_family(
                errs,
                "spec.localWorkloadPeeringIPV6",
                &s.local_workload_peering_ipv6,
                6,
            );
        }
        for (field, v) in [
            ("spec.ipv4NormalRoutePriority", s.ipv4_normal_route_priority),
            ("spec.ipv6NormalRoutePriority", s.ipv6_normal_route_priority),
        ] {
            if let Some(v) = v {
                check_range(errs, field, v, 1, MAX_ROUTE_PRIORITY);
            }
        }
        if name != DEFAULT_CONFIG_NAME {
            check_default_only(errs, s);
        }
    }
}

fn check_communities(errs: &mut Errors, s: &BGPConfigurationSpec) {
    if s.communities.len() > 500 {
        errs.rule("spec.communities", "has more than 500 items");
    }
    if s.prefix_advertisements.len() > 500 {
        errs.rule("spec.prefixAdvertisements", "has more than 500 items");
    }
    for (i, c) in s.communities.iter().enumerate() {
        let f = index("spec.communities", i);
        if c.name.is_empty() {
            errs.rule(join(&f, "name"), "is required");
        } else {
            check_name(errs, &join(&f, "name"), &c.name);
        }
        if c.value.is_empty() {
            errs.rule(join(&f, "value"), "is required");
        } else if let Err(rule) = CommunityValue::parse(&c.value) {
            errs.add(join(&f, "value"), c.value.as_str(), rule);
        }
    }
    if !s.communities.is_empty() && s.prefix_advertisements.is_empty() {
        errs.rule(
            "spec.communities",
            "are defined but not used: add prefixAdvertisements that reference them",
        );
    }
    for (i, pa) in s.prefix_advertisements.iter().enumerate() {
        let f = index("spec.prefixAdvertisements", i);
        if pa.cidr.is_empty() {
            errs.rule(join(&f, "cidr"), "is required");
        } else {
            check_net(errs, &join(&f, "cidr"), &pa.cidr);
        }
        if pa.communities.is_empty() {
            errs.rule(join(&f, "communities"), "is required");
        }
        for (j, c) in pa.communities.iter().enumerate() {
            let defined = s.communities.iter().any(|d| &d.name == c);
            if !defined && CommunityValue::parse(c).is_err() {
                errs.add(
                    index(&join(&f, "communities"), j),
                    c.as_str(),
                    "is neither a community value (aa:nn, aa:nn:mm) nor the name of one in \
                     spec.communities",
                );
            }
        }
    }
}

/// Fields Calico accepts only on the `default` BGPConfiguration.
fn check_default_only(errs: &mut Errors, s: &BGPConfigurationSpec) {
    const RULE: &str = "can only be set on the BGPConfiguration named \"default\"";
    let set = [
        (
            "spec.nodeToNodeMeshEnabled",
            s.node_to_node_mesh_enabled.is_some(),
        ),
        ("spec.asNumber", s.as_number.is_some()),
        (
            "spec.serviceLoadBalancerIPs",
            !s.service_load_balancer_ips.is_empty(),
        ),
        (
            "spec.serviceExternalIPs",
            !s.service_external_ips.is_empty(),
        ),
        ("spec.serviceClusterIPs", !s.service_cluster_ips.is_empty()),
        ("spec.nodeMeshPassword", s.node_mesh_password.is_some()),
        (
            "spec.nodeMeshMaxRestartTime",
            s.node_mesh_max_restart_time.is_some(),
        ),
    ];
    for (field, is_set) in set {
        if is_set {
            errs.rule(field, RULE);
        }
    }
}
