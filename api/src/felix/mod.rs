//! `FelixConfiguration`: dataplane-agent settings (`default`, per-node `node.<name>`, or
//! named with a `nodeSelector`), the value types its fields use, and Calico's checks of them.

mod spec;

pub use spec::FelixConfigurationSpec;

use serde::{Deserialize, Serialize};

use crate::error::{Errors, index, join};
use crate::resource::{Rules, resource};
use crate::validate::cidr::{check_cidr, check_ip_family};
use crate::validate::duration::Duration;
use crate::validate::names::{
    check_name, is_dns1123_label, is_interface_filter, is_interface_name,
};
use crate::validate::ports::{Port, check_port};
use crate::validate::{check_one_of, check_one_of_ci, check_range, check_selector};

resource!(
    /// Felix settings.
    FelixConfiguration,
    FelixConfigurationSpec
);

/// iptables backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IptablesBackend {
    /// iptables-legacy.
    Legacy,
    /// iptables-nft.
    #[serde(rename = "NFT")]
    Nft,
    /// Detect.
    Auto,
}

/// nftables dataplane mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NFTablesMode {
    /// Use nftables.
    Enabled,
    /// Use iptables.
    Disabled,
    /// Follow kube-proxy's mode.
    Auto,
}

/// Destinations excluded from natOutgoing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NATOutgoingExclusions {
    /// Only IP pools.
    IPPoolsOnly,
    /// IP pools and host addresses.
    IPPoolsAndHostIPs,
}

/// A failsafe port: protocol (`TCP`, `UDP`, `SCTP`), port and optional network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtoPort {
    /// `TCP`, `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// Port number.
    #[serde(default)]
    pub port: u16,
    /// Network the rule is limited to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub net: String,
}

/// A health-timeout override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthTimeoutOverride {
    /// Name of the health reporter.
    pub name: String,
    /// Its timeout.
    pub timeout: Duration,
}

/// A route table range (1-250).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTableRange {
    /// First table.
    pub min: i64,
    /// Last table.
    pub max: i64,
}

/// A route table ID range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTableIDRange {
    /// First table.
    pub min: i64,
    /// Last table.
    pub max: i64,
}

/// eBPF conntrack timeouts (`Auto` or a duration each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BPFConntrackTimeouts {
    /// Creation grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_grace_period: Option<String>,
    /// TCP SYN sent.
    #[serde(
        default,
        rename = "tcpSynSent",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_syn_sent: Option<String>,
    /// TCP established.
    #[serde(
        default,
        rename = "tcpEstablished",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_established: Option<String>,
    /// TCP FINs seen.
    #[serde(
        default,
        rename = "tcpFinsSeen",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_fins_seen: Option<String>,
    /// TCP reset seen.
    #[serde(
        default,
        rename = "tcpResetSeen",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_reset_seen: Option<String>,
    /// UDP.
    #[serde(
        default,
        rename = "udpTimeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub udp_timeout: Option<String>,
    /// Other protocols.
    #[serde(
        default,
        rename = "genericTimeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub generic_timeout: Option<String>,
    /// ICMP.
    #[serde(
        default,
        rename = "icmpTimeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub icmp_timeout: Option<String>,
}

impl From<Box<FelixConfiguration>> for FelixConfiguration {
    fn from(b: Box<FelixConfiguration>) -> Self {
        *b
    }
}

impl FelixConfiguration {
    /// The node a `node.<name>` configuration applies to.
    pub fn node_name(&self) -> Option<&str> {
        self.metadata.name_str().strip_prefix("node.")
    }
}

const LOG_LEVELS: [&str; 6] = ["Trace", "Debug", "Info", "Warning", "Error", "Fatal"];

impl Rules for FelixConfiguration {
    fn defaults(&mut self) {}

    fn check(&self, errs: &mut Errors) {
        let name = self.metadata.name_str();
        check_name(errs, "metadata.name", name);
        let s = &self.spec;
        if let Some(sel) = &s.node_selector {
            if name == "default" || name.starts_with("node.") {
                errs.add(
                    "spec.nodeSelector",
                    sel.as_str(),
                    "must not be set on the default or a per-node (node.*) FelixConfiguration",
                );
            }
            check_selector(errs, "spec.nodeSelector", sel);
        }
        check_durations(errs, s);
        check_enums(errs, s);
        check_numbers(errs, s);
        check_addresses(errs, s);
        check_ports(errs, s);
        check_route_tables(errs, s);
        check_misc(errs, s);
    }
}

fn check_durations(errs: &mut Errors, s: &FelixConfigurationSpec) {
    let durations = [
        (
            "spec.dataplaneWatchdogTimeout",
            &s.dataplane_watchdog_timeout,
        ),
        ("spec.routeRefreshInterval", &s.route_refresh_interval),
        (
            "spec.interfaceRefreshInterval",
            &s.interface_refresh_interval,
        ),
        ("spec.iptablesRefreshInterval", &s.iptables_refresh_interval),
        (
            "spec.iptablesPostWriteCheckInterval",
            &s.iptables_post_write_check_interval,
        ),
        (
            "spec.iptablesLockProbeInterval",
            &s.iptables_lock_probe_interval,
        ),
        ("spec.ipsetsRefreshInterval", &s.ipsets_refresh_interval),
        ("spec.xdpRefreshInterval", &s.xdp_refresh_interval),
        ("spec.netlinkTimeout", &s.netlink_timeout),
        ("spec.reportingInterval", &s.reporting_interval),
        ("spec.reportingTTL", &s.reporting_ttl),
        ("spec.endpointReportingDelay", &s.endpoint_reporting_delay),
        (
            "spec.usageReportingInitialDelay",
            &s.usage_reporting_initial_delay,
        ),
        ("spec.usageReportingInterval", &s.usage_reporting_interval),
        (
            "spec.debugSimulateCalcGraphHangAfter",
            &s.debug_simulate_calc_graph_hang_after,
        ),
        (
            "spec.debugSimulateDataplaneHangAfter",
            &s.debug_simulate_dataplane_hang_after,
        ),
        (
            "spec.debugSimulateDataplaneApplyDelay",
            &s.debug_simulate_dataplane_apply_delay,
        ),
        ("spec.nftablesRefreshInterval", &s.nftables_refresh_interval),
        ("spec.bpfIPFragTimeout", &s.bpf_ip_frag_timeout),
        (
            "spec.bpfKubeProxyMinSyncPeriod",
            &s.bpf_kube_proxy_min_sync_period,
        ),
        ("spec.flowLogsFlushInterval", &s.flow_logs_flush_interval),
        (
            "spec.liveMigrationRouteConvergenceTime",
            &s.live_migration_route_convergence_time,
        ),
        ("spec.wireguardKeepAlive", &s.wireguard_keep_alive),
        (
            "spec.localSubnetL2ReachabilityRefreshInterval",
            &s.local_subnet_l2_reachability_refresh_interval,
        ),
    ];
    for (field, d) in durations {
        if let Some(d) = d
            && d.as_nanos() < 0
        {
            errs.add(field, d.as_str(), "must not be negative");
        }
    }
    if let Some(t) = &s.bpf_conntrack_timeouts {
        let all = [
            ("creationGracePeriod", &t.creation_grace_period),
            ("tcpSynSent", &t.tcp_syn_sent),
            ("tcpEstablished", &t.tcp_established),
            ("tcpFinsSeen", &t.tcp_fins_seen),
            ("tcpResetSeen", &t.tcp_reset_seen),
            ("udpTimeout", &t.udp_timeout),
            ("genericTimeout", &t.generic_timeout),
            ("icmpTimeout", &t.icmp_timeout),
        ];
        for (name, v) in all {
            if let Some(v) = v
                && v != "Auto"
                && Duration::parse(v).is_err()
            {
                errs.add(
                    join("spec.bpfConntrackTimeouts", name),
                    v.as_str(),
                    "is neither Auto nor a duration",
                );
            }
        }
    }
    for (i, h) in s.health_timeout_overrides.iter().flatten().enumerate() {
        let f = index("spec.healthTimeoutOverrides", i);
        let name_ok = !h.name.is_empty()
            && h.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b' ' || b == b'-');
        if !name_ok {
            errs.add(
                join(&f, "name"),
                h.name.as_str(),
                "must match [a-zA-Z0-9_ -]+",
            );
        }
        if h.timeout.as_nanos() < 0 {
            errs.add(
                join(&f, "timeout"),
                h.timeout.as_str(),
                "must not be negative",
            );
        }
    }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

fn check_enums(errs: &mut Errors, s: &FelixConfigurationSpec) {
    // Calico writes these as case-insensitive patterns.
    let ci: [(&str, &Option<String>, &[&str]); 15] = [
        (
            "spec.chainInsertMode",
            &s.chain_insert_mode,
            &["Insert", "Append"],
        ),
        (
            "spec.defaultEndpointToHostAction",
            &s.default_endpoint_to_host_action,
            &["Drop", "Accept", "Return"],
        ),
        (
            "spec.iptablesFilterAllowAction",
            &s.iptables_filter_allow_action,
            &["Accept", "Return"],
        ),
        (
            "spec.iptablesMangleAllowAction",
            &s.iptables_mangle_allow_action,
            &["Accept", "Return"],
        ),
        (
            "spec.iptablesFilterDenyAction",
            &s.iptables_filter_deny_action,
            &["Drop", "Reject"],
        ),
        (
            "spec.nftablesFilterAllowAction",
            &s.nftables_filter_allow_action,
            &["Accept", "Return"],
        ),
        (
            "spec.nftablesMangleAllowAction",
            &s.nftables_mangle_allow_action,
            &["Accept", "Return"],
        ),
        (
            "spec.nftablesFilterDenyAction",
            &s.nftables_filter_deny_action,
            &["Drop", "Reject"],
        ),
        ("spec.logSeverityFile", &s.log_severity_file, &LOG_LEVELS),
        (
            "spec.logSeverityScreen",
            &s.log_severity_screen,
            &LOG_LEVELS,
        ),
        ("spec.logSeveritySys", &s.log_severity_sys, &LOG_LEVELS),
        (
            "spec.bpfLogLevel",
            &s.bpf_log_level,
            &["Off", "Info", "Debug"],
        ),
        (
            "spec.bpfExternalServiceMode",
            &s.bpf_external_service_mode,
            &["Tunnel", "DSR"],
        ),
        (
            "spec.bpfMapSizeConntrackScaling",
            &s.bpf_map_size_conntrack_scaling,
            &["Disabled", "DoubleIfFull"],
        ),
        (
            "spec.bpfEnforceRPF",
            &s.bpf_enforce_rpf,
            &["Disabled", "Strict", "Loose"],
        ),
    ];
    for (field, v, allowed) in ci {
        check_one_of_ci(errs, field, opt(v), allowed);
    }
    check_one_of_ci(
        errs,
        "spec.routeSource",
        opt(&s.route_source),
        &["WorkloadIPs", "CalicoIPAM"],
    );
    // Enumerations Calico checks case-sensitively.
    let cs: [(&str, &Option<String>, &[&str]); 16] = [
        (
            "spec.prometheusMetricsClientAuth",
            &s.prometheus_metrics_client_auth,
            &[
                "RequireAndVerifyClientCert",
                "RequireAnyClientCert",
                "VerifyClientCertIfGiven",
                "NoClientCert",
            ],
        ),
        (
            "spec.nftablesFlowTableOffload",
            &s.nftables_flow_table_offload,
            &["All", "Disabled"],
        ),
        (
            "spec.bpfOverlayHostSourceIP",
            &s.bpf_overlay_host_source_ip,
            &["TunnelAddress", "HostAddress"],
        ),
        (
            "spec.bpfJITHardening",
            &s.bpf_jit_hardening,
            &["Auto", "Strict"],
        ),
        (
            "spec.bpfConntrackMode",
            &s.bpf_conntrack_mode,
            &["Auto", "Userspace", "BPFProgram"],
        ),
        (
            "spec.bpfConntrackLogLevel",
            &s.bpf_conntrack_log_level,
            &["Off", "Debug"],
        ),
        (
            "spec.bpfConnectTimeLoadBalancing",
            &s.bpf_connect_time_load_balancing,
            &["TCP", "Enabled", "Disabled"],
        ),
        (
            "spec.bpfHostNetworkedNATWithoutCTLB",
            &s.bpf_host_networked_nat_without_ctlb,
            &["Enabled", "Disabled"],
        ),
        (
            "spec.istioAmbientMode",
            &s.istio_ambient_mode,
            &["Enabled", "Disabled"],
        ),
        (
            "spec.flowLogsPolicyEvaluationMode",
            &s.flow_logs_policy_evaluation_mode,
            &["None", "Continuous"],
        ),
        (
            "spec.bpfAttachType",
            &s.bpf_attach_type,
            &["TC", "TCX", "Netkit"],
        ),
        (
            "spec.awsSrcDstCheck",
            &s.aws_src_dst_check,
            &["DoNothing", "Enable", "Disable"],
        ),
        (
            "spec.floatingIPs",
            &s.floating_ips,
            &["Enabled", "Disabled"],
        ),
        (
            "spec.localSubnetL2Reachability",
            &s.local_subnet_l2_reachability,
            &["Disabled", "PodsAndLoadBalancers"],
        ),
        (
            "spec.windowsManageFirewallRules",
            &s.windows_manage_firewall_rules,
            &["Enabled", "Disabled"],
        ),
        (
            "spec.flowLogsLocalReporter",
            &s.flow_logs_local_reporter,
            &["Disabled", "Enabled"],
        ),
    ];
    for (field, v, allowed) in cs {
        if let Some(v) = v {
            check_one_of(errs, field, v, allowed);
        }
    }
    for (field, v, allowed) in [
        (
            "spec.ipForwarding",
            &s.ip_forwarding,
            &["Enabled", "Disabled"][..],
        ),
        (
            "spec.serviceLoopPrevention",
            &s.service_loop_prevention,
            &["Drop", "Reject", "Disabled"],
        ),
        (
            "spec.workloadSourceSpoofing",
            &s.workload_source_spoofing,
            &["Disabled", "Any"],
        ),
    ] {
        if let Some(v) = v
            && !v.is_empty()
        {
            check_one_of(errs, field, v, allowed);
        }
    }
}

fn check_numbers(errs: &mut Errors, s: &FelixConfigurationSpec) {
    const U32_MAX: i64 = 4_294_967_295;
    const PRIORITY_MAX: i64 = 2_147_483_646;
    let ranges: [(&str, Option<i64>, i64, i64); 24] = [
        ("spec.iptablesMarkMask", s.iptables_mark_mask, 0, U32_MAX),
        ("spec.nftablesMarkMask", s.nftables_mark_mask, 0, U32_MAX),
        (
            "spec.logActionRateLimitBurst",
            s.log_action_rate_limit_burst,
            0,
            9999,
        ),
        ("spec.metadataPort", s.metadata_port, 0, 65535),
        ("spec.healthPort", s.health_port, 0, 65535),
        (
            "spec.prometheusMetricsPort",
            s.prometheus_metrics_port,
            0,
            65535,
        ),
        ("spec.debugPort", s.debug_port, 0, 65535),
        (
            "spec.bpfKubeProxyHealthzPort",
            s.bpf_kube_proxy_healthz_port,
            0,
            65535,
        ),
        (
            "spec.bpfExtToServiceConnmark",
            s.bpf_ext_to_service_connmark,
            0,
            U32_MAX,
        ),
        ("spec.vxlanPort", s.vxlan_port, 0, 65535),
        ("spec.vxlanVNI", s.vxlan_vni, 0, 16_777_215),
        ("spec.ipipMTU", s.ipip_mtu, 0, 65535),
        ("spec.vxlanMTU", s.vxlan_mtu, 0, 65535),
        ("spec.vxlanMTUV6", s.vxlan_mtu_v6, 0, 65535),
        (
            "spec.wireguardListeningPort",
            s.wireguard_listening_port,
            1,
            65535,
        ),
        (
            "spec.wireguardListeningPortV6",
            s.wireguard_listening_port_v6,
            1,
            65535,
        ),
        (
            "spec.wireguardRoutingRulePriority",
            s.wireguard_routing_rule_priority,
            1,
            32765,
        ),
        (
            "spec.ipv4NormalRoutePriority",
            s.ipv4_normal_route_priority,
            1,
            PRIORITY_MAX,
        ),
        (
            "spec.ipv4ElevatedRoutePriority",
            s.ipv4_elevated_route_priority,
            1,
            PRIORITY_MAX,
        ),
        (
            "spec.ipv6NormalRoutePriority",
            s.ipv6_normal_route_priority,
            1,
            PRIORITY_MAX,
        ),
        (
            "spec.ipv6ElevatedRoutePriority",
            s.ipv6_elevated_route_priority,
            1,
            PRIORITY_MAX,
        ),
        (
            "spec.bpfMaglevMaxEndpointsPerService",
            s.bpf_maglev_max_endpoints_per_service,
            1,
            3000,
        ),
        (
            "spec.bpfMaglevMaxServices",
            s.bpf_maglev_max_services,
            1,
            3000,
        ),
        (
            "spec.bpfMapSizeConntrackCleanupQueue",
            s.bpf_map_size_conntrack_cleanup_queue,
            1,
            i64::MAX,
        ),
    ];
    for (field, v, lo, hi) in ranges {
        if let Some(v) = v {
            check_range(errs, field, v, lo, hi);
        }
    }
    for (field, v) in [
        ("spec.goGCThreshold", s.go_gc_threshold),
        ("spec.goMemoryLimitMB", s.go_memory_limit_mb),
        ("spec.goMaxProcs", s.go_max_procs),
    ] {
        if let Some(v) = v {
            check_range(errs, field, v, -1, i64::MAX);
        }
    }
}

fn check_addresses(errs: &mut Errors, s: &FelixConfigurationSpec) {
    for (field, v, fam) in [
        ("spec.natOutgoingAddress", &s.nat_outgoing_address, 4u8),
        (
            "spec.deviceRouteSourceAddress",
            &s.device_route_source_address,
            4,
        ),
        (
            "spec.deviceRouteSourceAddressIPv6",
            &s.device_route_source_address_ipv6,
            6,
        ),
    ] {
        if let Some(v) = v
            && !v.is_empty()
        {
            check_ip_family(errs, field, v, fam);
        }
    }
    for (i, c) in s.external_nodes_list.iter().flatten().enumerate() {
        let f = index("spec.externalNodesList", i);
        if let Some(cidr) = check_cidr(errs, &f, c)
            && !cidr.is_ipv4()
        {
            errs.add(f, c.as_str(), "is not an IPv4 CIDR");
        }
    }
    for (field, list) in [
        ("spec.bpfDSROptoutCIDRs", &s.bpf_dsr_optout_cidrs),
        ("spec.bpfExcludeCIDRsFromNAT", &s.bpf_exclude_cidrs_from_nat),
    ] {
        for (i, c) in list.iter().flatten().enumerate() {
            check_cidr(errs, &index(field, i), c);
        }
    }
    if let Some(h) = &s.prometheus_metrics_host
        && !h.is_empty()
        && (h.len() > 64
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":._+-".contains(&b)))
    {
        errs.add(
            "spec.prometheusMetricsHost",
            h.as_str(),
            "is not a valid host: an IP address or name of up to 64 of [a-zA-Z0-9:._+-]",
        );
    }
}

fn check_ports(errs: &mut Errors, s: &FelixConfigurationSpec) {
    for (field, list) in [
        (
            "spec.failsafeInboundHostPorts",
            &s.failsafe_inbound_host_ports,
        ),
        (
            "spec.failsafeOutboundHostPorts",
            &s.failsafe_outbound_host_ports,
        ),
    ] {
        for (i, pp) in list.iter().flatten().enumerate() {
            let f = index(field, i);
            if !matches!(pp.protocol.as_str(), "TCP" | "UDP" | "SCTP") {
                errs.add(
                    join(&f, "protocol"),
                    pp.protocol.as_str(),
                    "is not one of TCP, UDP, SCTP",
                );
            }
            if !pp.net.is_empty() {
                check_cidr(errs, &join(&f, "net"), &pp.net);
            }
        }
    }
    if let Some(ranges) = &s.kube_node_port_ranges {
        if ranges.len() > 7 {
            errs.rule("spec.kubeNodePortRanges", "has more than 7 ranges");
        }
        for (i, p) in ranges.iter().enumerate() {
            check_numeric_port(errs, &index("spec.kubeNodePortRanges", i), p);
        }
    }
    for (field, p) in [
        ("spec.natPortRange", &s.nat_port_range),
        ("spec.bpfPSNATPorts", &s.bpf_psnat_ports),
    ] {
        if let Some(p) = p {
            check_numeric_port(errs, field, p);
        }
    }
}

fn check_numeric_port(errs: &mut Errors, field: &str, p: &Port) {
    if p.is_named() {
        errs.add(
            field,
            p.to_string(),
            "must be a port number or range, not a name",
        );
    } else {
        check_port(errs, field, p);
    }
}

fn check_route_tables(errs: &mut Errors, s: &FelixConfigurationSpec) {
    if s.route_table_range.is_some() && s.route_table_ranges.is_some() {
        errs.rule(
            "spec.routeTableRange",
            "cannot be set together with routeTableRanges",
        );
    }
    if let Some(r) = &s.route_table_range
        && !(r.min >= 1 && r.max >= r.min && r.max <= 250)
    {
        errs.add(
            "spec.routeTableRange",
            format!("{}-{}", r.min, r.max),
            "must be a range of route table indices within 1-250",
        );
    }
    let mut tables: i64 = 0;
    for (i, r) in s.route_table_ranges.iter().flatten().enumerate() {
        let f = index("spec.routeTableRanges", i);
        if r.min < 1 {
            errs.add(join(&f, "min"), r.min.to_string(), "must be at least 1");
        }
        if r.min > r.max {
            errs.add(
                join(&f, "min"),
                r.min.to_string(),
                format!("is greater than max ({})", r.max),
            );
        }
        if r.max > 4_294_967_295 {
            errs.add(join(&f, "max"), r.max.to_string(), "is above 4294967295");
        }
        tables = tables.saturating_add(r.max.saturating_sub(r.min).saturating_add(1).max(0));
    }
    if tables > 0xffff {
        errs.rule("spec.routeTableRanges", "targets more than 65535 tables");
    }
}

fn check_misc(errs: &mut Errors, s: &FelixConfigurationSpec) {
    if let Some(r) = &s.openstack_region
        && !r.is_empty()
        && (r.len() > 46 || !is_dns1123_label(r))
    {
        errs.add(
            "spec.openstackRegion",
            r.as_str(),
            "must be a DNS label of at most 46 characters",
        );
    }
    if let Some(p) = &s.log_prefix
        && !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"%: /_-".contains(&b))
    {
        errs.add(
            "spec.logPrefix",
            p.as_str(),
            "may only contain [a-zA-Z0-9%: /_-]",
        );
    }
    if let Some(l) = &s.log_action_rate_limit
        && !is_rate_limit(l)
    {
        errs.add(
            "spec.logActionRateLimit",
            l.as_str(),
            "must look like 10/second (1-9999 per second, minute, hour or day)",
        );
    }
    for (field, v, bool_values) in [
        (
            "spec.featureDetectOverride",
            &s.feature_detect_override,
            true,
        ),
        ("spec.featureGates", &s.feature_gates, false),
    ] {
        if let Some(v) = v
            && !is_key_value_list(v, bool_values)
        {
            errs.add(
                field,
                v.as_str(),
                "must be a comma-separated list of key=value",
            );
        }
    }
    for (field, v) in [
        ("spec.wireguardInterfaceName", &s.wireguard_interface_name),
        (
            "spec.wireguardInterfaceNameV6",
            &s.wireguard_interface_name_v6,
        ),
    ] {
        if let Some(v) = v
            && !v.is_empty()
            && !is_interface_name(v)
        {
            errs.add(field, v.as_str(), "is not a valid interface name");
        }
    }
    if let Some(v) = &s.iptables_nat_outgoing_interface_filter
        && !v.is_empty()
        && !is_interface_filter(v)
    {
        errs.add(
            "spec.iptablesNATOutgoingInterfaceFilter",
            v.as_str(),
            "is not a valid interface filter: 1-15 of [a-zA-Z0-9:._+-]",
        );
    }
    for (i, v) in s
        .bpf_force_track_packets_from_ifaces
        .iter()
        .flatten()
        .enumerate()
    {
        if !is_interface_filter(v) {
            errs.add(
                index("spec.bpfForceTrackPacketsFromIfaces", i),
                v.as_str(),
                "is not a valid interface filter: 1-15 of [a-zA-Z0-9:._+-]",
            );
        }
    }
    for k in s.bpf_log_filters.iter().flat_map(|m| m.keys()) {
        if !is_interface_name(k) {
            errs.add(
                "spec.bpfLogFilters",
                k.as_str(),
                "is not a valid interface name",
            );
        }
    }
}

fn is_rate_limit(s: &str) -> bool {
    let Some((n, unit)) = s.split_once('/') else {
        return false;
    };
    let n_ok =
        (1..=4).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0');
    n_ok && matches!(unit, "second" | "minute" | "hour" | "day")
}

/// `k=v,k=v` with keys of `[a-zA-Z0-9_-]`; values `true`/`false`/empty when `bool_values`,
/// else anything without `=` (an empty list is fine, as is a trailing comma).
fn is_key_value_list(s: &str, bool_values: bool) -> bool {
    s.split(',').filter(|i| !i.is_empty()).all(|item| {
        let Some((k, v)) = item.split_once('=') else {
            return false;
        };
        let key_ok = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let value_ok = if bool_values {
            matches!(v, "true" | "false" | "")
        } else {
            !v.is_empty() && !v.contains('=')
        };
        key_ok && value_ok
    })
}
