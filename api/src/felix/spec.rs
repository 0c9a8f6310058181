//! `FelixConfiguration.spec`: every field Calico's FelixConfiguration has, each optional and
//! left unset unless the user sets it (Felix applies its own defaults).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bgp::config::ProgramClusterRoutes;
use crate::felix::{
    BPFConntrackTimeouts, HealthTimeoutOverride, IptablesBackend, NATOutgoingExclusions,
    NFTablesMode, ProtoPort, RouteTableIDRange, RouteTableRange,
};
use crate::validate::duration::Duration;
use crate::validate::numbers::Dscp;
use crate::validate::ports::Port;

/// `FelixConfiguration.spec`. Field names, JSON names and shapes follow Calico's
/// `FelixConfigurationSpec`; unknown fields are rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct FelixConfigurationSpec {
    /// Nodes this configuration applies to (only on configurations not named `default` or `node.*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    /// Calico FelixConfiguration `useInternalDataplaneDriver`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_internal_dataplane_driver: Option<bool>,
    /// Calico FelixConfiguration `dataplaneDriver`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataplane_driver: Option<String>,
    /// Calico FelixConfiguration `dataplaneWatchdogTimeout`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataplane_watchdog_timeout: Option<Duration>,
    /// Program IPv6 as well as IPv4.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_support: Option<bool>,
    /// How often routes are re-read and repaired (Felix default 90s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_refresh_interval: Option<Duration>,
    /// How often interfaces are re-read (Felix default 90s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_refresh_interval: Option<Duration>,
    /// How often iptables is re-read and repaired (Felix default 180s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_refresh_interval: Option<Duration>,
    /// Delay before re-checking iptables after a write (Felix default 5s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_post_write_check_interval: Option<Duration>,
    /// Calico FelixConfiguration `iptablesLockProbeInterval`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_lock_probe_interval: Option<Duration>,
    /// Calico FelixConfiguration `featureDetectOverride`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_detect_override: Option<String>,
    /// Calico FelixConfiguration `featureGates`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_gates: Option<String>,
    /// How often IP sets are re-read (Felix default 90s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipsets_refresh_interval: Option<Duration>,
    /// Calico FelixConfiguration `maxIpsetSize`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ipset_size: Option<i64>,
    /// iptables backend: `Legacy`, `NFT` or `Auto`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_backend: Option<IptablesBackend>,
    /// Calico FelixConfiguration `xdpRefreshInterval`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_refresh_interval: Option<Duration>,
    /// Calico FelixConfiguration `netlinkTimeout`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netlink_timeout: Option<Duration>,
    /// Calico FelixConfiguration `metadataAddr`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_addr: Option<String>,
    /// Calico FelixConfiguration `metadataPort`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_port: Option<i64>,
    /// Calico FelixConfiguration `openstackRegion`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openstack_region: Option<String>,
    /// Prefix of workload interface names (Felix default `cali`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_prefix: Option<String>,
    /// Calico FelixConfiguration `interfaceExclude`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_exclude: Option<String>,
    /// Whether jumps to Calico chains are inserted at the top (`Insert`) or appended (`Append`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_insert_mode: Option<String>,
    /// What happens to workload-to-host traffic after policy: `Drop`, `Return` or `Accept`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_endpoint_to_host_action: Option<String>,
    /// Action for allowed traffic in the filter table: `Accept` or `Return`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_filter_allow_action: Option<String>,
    /// Calico FelixConfiguration `iptablesMangleAllowAction`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_mangle_allow_action: Option<String>,
    /// Calico FelixConfiguration `iptablesFilterDenyAction`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_filter_deny_action: Option<String>,
    /// Calico FelixConfiguration `logPrefix`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_prefix: Option<String>,
    /// Calico FelixConfiguration `logActionRateLimit`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_action_rate_limit: Option<String>,
    /// Calico FelixConfiguration `logActionRateLimitBurst`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_action_rate_limit_burst: Option<i64>,
    /// Calico FelixConfiguration `logFilePath`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_file_path: Option<String>,
    /// Calico FelixConfiguration `logSeverityFile`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_severity_file: Option<String>,
    /// Log level on stdout (`Debug`, `Info`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_severity_screen: Option<String>,
    /// Calico FelixConfiguration `logSeveritySys`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_severity_sys: Option<String>,
    /// Calico FelixConfiguration `logDebugFilenameRegex`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_debug_filename_regex: Option<String>,
    /// Whether the IPIP device is set up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipip_enabled: Option<bool>,
    /// MTU of the IPIP device (0: auto-detect).
    #[serde(rename = "ipipMTU", skip_serializing_if = "Option::is_none")]
    pub ipip_mtu: Option<i64>,
    /// Whether the VXLAN device is set up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan_enabled: Option<bool>,
    /// MTU of the IPv4 VXLAN device (0: auto-detect).
    #[serde(rename = "vxlanMTU", skip_serializing_if = "Option::is_none")]
    pub vxlan_mtu: Option<i64>,
    /// MTU of the IPv6 VXLAN device (0: auto-detect).
    #[serde(rename = "vxlanMTUV6", skip_serializing_if = "Option::is_none")]
    pub vxlan_mtu_v6: Option<i64>,
    /// VXLAN UDP port (Felix default 4789).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan_port: Option<i64>,
    /// VXLAN network identifier (Felix default 4096).
    #[serde(rename = "vxlanVNI", skip_serializing_if = "Option::is_none")]
    pub vxlan_vni: Option<i64>,
    /// Calico FelixConfiguration `allowVXLANPacketsFromWorkloads`; unset means Felix's own default.
    #[serde(
        rename = "allowVXLANPacketsFromWorkloads",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_vxlan_packets_from_workloads: Option<bool>,
    /// Calico FelixConfiguration `allowIPIPPacketsFromWorkloads`; unset means Felix's own default.
    #[serde(
        rename = "allowIPIPPacketsFromWorkloads",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_ipip_packets_from_workloads: Option<bool>,
    /// Calico FelixConfiguration `reportingInterval`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporting_interval: Option<Duration>,
    /// Calico FelixConfiguration `reportingTTL`; unset means Felix's own default.
    #[serde(rename = "reportingTTL", skip_serializing_if = "Option::is_none")]
    pub reporting_ttl: Option<Duration>,
    /// Calico FelixConfiguration `endpointReportingEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_reporting_enabled: Option<bool>,
    /// Calico FelixConfiguration `endpointReportingDelay`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_reporting_delay: Option<Duration>,
    /// Directory where per-endpoint status files are written for the CNI plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_status_path_prefix: Option<String>,
    /// Packet-mark bits Calico may use (Felix default 0xffff0000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_mark_mask: Option<i64>,
    /// Calico FelixConfiguration `disableConntrackInvalidCheck`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_conntrack_invalid_check: Option<bool>,
    /// Serve /liveness and /readiness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_enabled: Option<bool>,
    /// Address of the health server (Felix default localhost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_host: Option<String>,
    /// Port of the health server (Felix default 9099).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_port: Option<i64>,
    /// Calico FelixConfiguration `healthTimeoutOverrides`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_timeout_overrides: Option<Vec<HealthTimeoutOverride>>,
    /// Serve Prometheus metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_enabled: Option<bool>,
    /// Address of the metrics server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_host: Option<String>,
    /// Port of the metrics server (Felix default 9091).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_port: Option<i64>,
    /// Calico FelixConfiguration `prometheusGoMetricsEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_go_metrics_enabled: Option<bool>,
    /// Calico FelixConfiguration `prometheusProcessMetricsEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_process_metrics_enabled: Option<bool>,
    /// Calico FelixConfiguration `prometheusWireGuardMetricsEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_wire_guard_metrics_enabled: Option<bool>,
    /// Calico FelixConfiguration `prometheusMetricsCAFile`; unset means Felix's own default.
    #[serde(
        rename = "prometheusMetricsCAFile",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_metrics_ca_file: Option<String>,
    /// Calico FelixConfiguration `prometheusMetricsCertFile`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_cert_file: Option<String>,
    /// Calico FelixConfiguration `prometheusMetricsKeyFile`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_key_file: Option<String>,
    /// Calico FelixConfiguration `prometheusMetricsClientAuth`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_client_auth: Option<String>,
    /// Host ports always open inbound (`{protocol, port, net}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failsafe_inbound_host_ports: Option<Vec<ProtoPort>>,
    /// Host ports always open outbound (`{protocol, port, net}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failsafe_outbound_host_ports: Option<Vec<ProtoPort>>,
    /// Calico FelixConfiguration `kubeNodePortRanges`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_node_port_ranges: Option<Vec<Port>>,
    /// Calico FelixConfiguration `policySyncPathPrefix`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_sync_path_prefix: Option<String>,
    /// Calico FelixConfiguration `usageReportingEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_reporting_enabled: Option<bool>,
    /// Calico FelixConfiguration `usageReportingInitialDelay`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_reporting_initial_delay: Option<Duration>,
    /// Calico FelixConfiguration `usageReportingInterval`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_reporting_interval: Option<Duration>,
    /// Source-port range used when masquerading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_port_range: Option<Port>,
    /// SNAT address for natOutgoing pools instead of MASQUERADE (IPv4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_outgoing_address: Option<String>,
    /// Destinations excluded from natOutgoing: `IPPoolsOnly` or `IPPoolsAndHostIPs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_outgoing_exclusions: Option<NATOutgoingExclusions>,
    /// Source address of routes to workloads (IPv4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_route_source_address: Option<String>,
    /// Source address of routes to workloads (IPv6).
    #[serde(
        rename = "deviceRouteSourceAddressIPv6",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_route_source_address_ipv6: Option<String>,
    /// Route protocol number of routes to workload interfaces (Felix default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_route_protocol: Option<i64>,
    /// Remove routes to workload interfaces that Felix did not program.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_external_routes: Option<bool>,
    /// Which cluster routes Felix programs (must complement BGPConfiguration `programClusterRoutes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program_cluster_routes: Option<ProgramClusterRoutes>,
    /// Whether Felix enables IP forwarding: `Enabled` or `Disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_forwarding: Option<String>,
    /// Calico FelixConfiguration `externalNodesList`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_nodes_list: Option<Vec<String>>,
    /// Calico FelixConfiguration `debugMemoryProfilePath`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_memory_profile_path: Option<String>,
    /// Calico FelixConfiguration `debugDisableLogDropping`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_disable_log_dropping: Option<bool>,
    /// Calico FelixConfiguration `debugSimulateCalcGraphHangAfter`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_simulate_calc_graph_hang_after: Option<Duration>,
    /// Calico FelixConfiguration `debugSimulateDataplaneHangAfter`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_simulate_dataplane_hang_after: Option<Duration>,
    /// Calico FelixConfiguration `debugSimulateDataplaneApplyDelay`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_simulate_dataplane_apply_delay: Option<Duration>,
    /// Calico FelixConfiguration `debugHost`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_host: Option<String>,
    /// Calico FelixConfiguration `debugPort`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_port: Option<i64>,
    /// Calico FelixConfiguration `iptablesNATOutgoingInterfaceFilter`; unset means Felix's own default.
    #[serde(
        rename = "iptablesNATOutgoingInterfaceFilter",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_nat_outgoing_interface_filter: Option<String>,
    /// Calico FelixConfiguration `sidecarAccelerationEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sidecar_acceleration_enabled: Option<bool>,
    /// Calico FelixConfiguration `xdpEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_enabled: Option<bool>,
    /// Calico FelixConfiguration `genericXDPEnabled`; unset means Felix's own default.
    #[serde(rename = "genericXDPEnabled", skip_serializing_if = "Option::is_none")]
    pub generic_xdp_enabled: Option<bool>,
    /// nftables dataplane: `Enabled`, `Disabled` or `Auto`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_mode: Option<NFTablesMode>,
    /// Calico FelixConfiguration `nftablesFlowTableOffload`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_flow_table_offload: Option<String>,
    /// Calico FelixConfiguration `nftablesFlowTableDataIfacePattern`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_flow_table_data_iface_pattern: Option<String>,
    /// How often nftables is re-read and repaired (Felix default 180s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_refresh_interval: Option<Duration>,
    /// Calico FelixConfiguration `nftablesFilterAllowAction`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_filter_allow_action: Option<String>,
    /// Calico FelixConfiguration `nftablesMangleAllowAction`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_mangle_allow_action: Option<String>,
    /// Calico FelixConfiguration `nftablesFilterDenyAction`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_filter_deny_action: Option<String>,
    /// Calico FelixConfiguration `nftablesMarkMask`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_mark_mask: Option<i64>,
    /// Use the eBPF dataplane.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_enabled: Option<bool>,
    /// Calico FelixConfiguration `bpfOverlayHostSourceIP`; unset means Felix's own default.
    #[serde(
        rename = "bpfOverlayHostSourceIP",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_overlay_host_source_ip: Option<String>,
    /// Calico FelixConfiguration `bpfDisableUnprivileged`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_disable_unprivileged: Option<bool>,
    /// Calico FelixConfiguration `bpfJITHardening`; unset means Felix's own default.
    #[serde(rename = "bpfJITHardening", skip_serializing_if = "Option::is_none")]
    pub bpf_jit_hardening: Option<String>,
    /// Calico FelixConfiguration `bpfLogLevel`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_log_level: Option<String>,
    /// Calico FelixConfiguration `bpfConntrackLogLevel`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_conntrack_log_level: Option<String>,
    /// Calico FelixConfiguration `bpfConntrackMode`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_conntrack_mode: Option<String>,
    /// Calico FelixConfiguration `bpfConntrackTimeouts`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_conntrack_timeouts: Option<BPFConntrackTimeouts>,
    /// Calico FelixConfiguration `bpfIPFragTimeout`; unset means Felix's own default.
    #[serde(rename = "bpfIPFragTimeout", skip_serializing_if = "Option::is_none")]
    pub bpf_ip_frag_timeout: Option<Duration>,
    /// Calico FelixConfiguration `bpfLogFilters`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_log_filters: Option<BTreeMap<String, String>>,
    /// Calico FelixConfiguration `bpfCTLBLogFilter`; unset means Felix's own default.
    #[serde(rename = "bpfCTLBLogFilter", skip_serializing_if = "Option::is_none")]
    pub bpf_ctlb_log_filter: Option<String>,
    /// Calico FelixConfiguration `bpfDataIfacePattern`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_data_iface_pattern: Option<String>,
    /// Calico FelixConfiguration `bpfL3IfacePattern`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_l3_iface_pattern: Option<String>,
    /// Calico FelixConfiguration `bpfConnectTimeLoadBalancingEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_connect_time_load_balancing_enabled: Option<bool>,
    /// Calico FelixConfiguration `bpfConnectTimeLoadBalancing`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_connect_time_load_balancing: Option<String>,
    /// Calico FelixConfiguration `bpfHostNetworkedNATWithoutCTLB`; unset means Felix's own default.
    #[serde(
        rename = "bpfHostNetworkedNATWithoutCTLB",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_host_networked_nat_without_ctlb: Option<String>,
    /// Calico FelixConfiguration `bpfExternalServiceMode`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_external_service_mode: Option<String>,
    /// Calico FelixConfiguration `bpfDSROptoutCIDRs`; unset means Felix's own default.
    #[serde(rename = "bpfDSROptoutCIDRs", skip_serializing_if = "Option::is_none")]
    pub bpf_dsr_optout_cidrs: Option<Vec<String>>,
    /// Calico FelixConfiguration `bpfExtToServiceConnmark`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_ext_to_service_connmark: Option<i64>,
    /// Calico FelixConfiguration `bpfKubeProxyIptablesCleanupEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_kube_proxy_iptables_cleanup_enabled: Option<bool>,
    /// Calico FelixConfiguration `bpfKubeProxyMinSyncPeriod`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_kube_proxy_min_sync_period: Option<Duration>,
    /// Calico FelixConfiguration `bpfKubeProxyHealthzPort`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_kube_proxy_healthz_port: Option<i64>,
    /// Calico FelixConfiguration `bpfPSNATPorts`; unset means Felix's own default.
    #[serde(rename = "bpfPSNATPorts", skip_serializing_if = "Option::is_none")]
    pub bpf_psnat_ports: Option<Port>,
    /// Calico FelixConfiguration `bpfMapSizeNATFrontend`; unset means Felix's own default.
    #[serde(
        rename = "bpfMapSizeNATFrontend",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_nat_frontend: Option<i64>,
    /// Calico FelixConfiguration `bpfMapSizeNATBackend`; unset means Felix's own default.
    #[serde(
        rename = "bpfMapSizeNATBackend",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_nat_backend: Option<i64>,
    /// Calico FelixConfiguration `bpfMapSizeNATAffinity`; unset means Felix's own default.
    #[serde(
        rename = "bpfMapSizeNATAffinity",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_nat_affinity: Option<i64>,
    /// Calico FelixConfiguration `bpfMapSizeRoute`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_route: Option<i64>,
    /// Calico FelixConfiguration `bpfMapSizeConntrack`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_conntrack: Option<i64>,
    /// Calico FelixConfiguration `bpfMapSizePerCpuConntrack`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_per_cpu_conntrack: Option<i64>,
    /// Calico FelixConfiguration `bpfMapSizeConntrackScaling`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_conntrack_scaling: Option<String>,
    /// Calico FelixConfiguration `bpfMapSizeConntrackCleanupQueue`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_conntrack_cleanup_queue: Option<i64>,
    /// Calico FelixConfiguration `bpfMapSizeIPSets`; unset means Felix's own default.
    #[serde(rename = "bpfMapSizeIPSets", skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_ip_sets: Option<i64>,
    /// Calico FelixConfiguration `bpfMapSizeIfState`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_if_state: Option<i64>,
    /// Calico FelixConfiguration `bpfHostConntrackBypass`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_host_conntrack_bypass: Option<bool>,
    /// Calico FelixConfiguration `bpfIPFragmentReassemblyEnabled`; unset means Felix's own default.
    #[serde(
        rename = "bpfIPFragmentReassemblyEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_ip_fragment_reassembly_enabled: Option<bool>,
    /// Calico FelixConfiguration `bpfEnforceRPF`; unset means Felix's own default.
    #[serde(rename = "bpfEnforceRPF", skip_serializing_if = "Option::is_none")]
    pub bpf_enforce_rpf: Option<String>,
    /// Calico FelixConfiguration `bpfPolicyDebugEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_policy_debug_enabled: Option<bool>,
    /// Calico FelixConfiguration `bpfForceTrackPacketsFromIfaces`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_force_track_packets_from_ifaces: Option<Vec<String>>,
    /// Calico FelixConfiguration `bpfDisableGROForIfaces`; unset means Felix's own default.
    #[serde(
        rename = "bpfDisableGROForIfaces",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_disable_gro_for_ifaces: Option<String>,
    /// Calico FelixConfiguration `bpfExcludeCIDRsFromNAT`; unset means Felix's own default.
    #[serde(
        rename = "bpfExcludeCIDRsFromNAT",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_exclude_cidrs_from_nat: Option<Vec<String>>,
    /// Calico FelixConfiguration `bpfExportBufferSizeMB`; unset means Felix's own default.
    #[serde(
        rename = "bpfExportBufferSizeMB",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_export_buffer_size_mb: Option<i64>,
    /// Calico FelixConfiguration `istioAmbientMode`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio_ambient_mode: Option<String>,
    /// Calico FelixConfiguration `istioDSCPMark`; unset means Felix's own default.
    #[serde(rename = "istioDSCPMark", skip_serializing_if = "Option::is_none")]
    pub istio_dscp_mark: Option<Dscp>,
    /// Calico FelixConfiguration `cgroupV2Path`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_v2_path: Option<String>,
    /// Calico FelixConfiguration `flowLogsPolicyEvaluationMode`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_logs_policy_evaluation_mode: Option<String>,
    /// Calico FelixConfiguration `bpfRedirectToPeer`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_redirect_to_peer: Option<String>,
    /// Calico FelixConfiguration `bpfAttachType`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_attach_type: Option<String>,
    /// Calico FelixConfiguration `flowLogsFlushInterval`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_logs_flush_interval: Option<Duration>,
    /// Calico FelixConfiguration `flowLogsCollectorDebugTrace`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_logs_collector_debug_trace: Option<bool>,
    /// Calico FelixConfiguration `flowLogsGoldmaneServer`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_logs_goldmane_server: Option<String>,
    /// Calico FelixConfiguration `flowLogsLocalReporter`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_logs_local_reporter: Option<String>,
    /// Calico FelixConfiguration `bpfProfiling`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_profiling: Option<String>,
    /// Where workload routes come from: `CalicoIPAM` or `WorkloadIPs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_source: Option<String>,
    /// Route table indices Felix may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_table_ranges: Option<Vec<RouteTableIDRange>>,
    /// Deprecated single route table range (1-250).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_table_range: Option<RouteTableRange>,
    /// Calico FelixConfiguration `routeSyncDisabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_sync_disabled: Option<bool>,
    /// Metric of normal IPv4 workload routes (Felix default 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_normal_route_priority: Option<i64>,
    /// Calico FelixConfiguration `ipv4ElevatedRoutePriority`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_elevated_route_priority: Option<i64>,
    /// Metric of normal IPv6 workload routes (Felix default 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_normal_route_priority: Option<i64>,
    /// Calico FelixConfiguration `ipv6ElevatedRoutePriority`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_elevated_route_priority: Option<i64>,
    /// Calico FelixConfiguration `liveMigrationRouteConvergenceTime`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_migration_route_convergence_time: Option<Duration>,
    /// Encrypt IPv4 traffic between nodes with WireGuard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_enabled: Option<bool>,
    /// Calico FelixConfiguration `wireguardEnabledV6`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_enabled_v6: Option<bool>,
    /// Calico FelixConfiguration `wireguardThreadingEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_threading_enabled: Option<bool>,
    /// Calico FelixConfiguration `wireguardListeningPort`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_listening_port: Option<i64>,
    /// Calico FelixConfiguration `wireguardListeningPortV6`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_listening_port_v6: Option<i64>,
    /// Calico FelixConfiguration `wireguardRoutingRulePriority`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_routing_rule_priority: Option<i64>,
    /// Calico FelixConfiguration `wireguardInterfaceName`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_interface_name: Option<String>,
    /// Calico FelixConfiguration `wireguardInterfaceNameV6`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_interface_name_v6: Option<String>,
    /// Calico FelixConfiguration `wireguardMTU`; unset means Felix's own default.
    #[serde(rename = "wireguardMTU", skip_serializing_if = "Option::is_none")]
    pub wireguard_mtu: Option<i64>,
    /// Calico FelixConfiguration `wireguardMTUV6`; unset means Felix's own default.
    #[serde(rename = "wireguardMTUV6", skip_serializing_if = "Option::is_none")]
    pub wireguard_mtu_v6: Option<i64>,
    /// Calico FelixConfiguration `wireguardHostEncryptionEnabled`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_host_encryption_enabled: Option<bool>,
    /// Calico FelixConfiguration `wireguardKeepAlive`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_keep_alive: Option<Duration>,
    /// Calico FelixConfiguration `awsSrcDstCheck`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_src_dst_check: Option<String>,
    /// Calico FelixConfiguration `serviceLoopPrevention`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_loop_prevention: Option<String>,
    /// Calico FelixConfiguration `workloadSourceSpoofing`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_source_spoofing: Option<String>,
    /// Regular expression of interfaces used to detect the host MTU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu_iface_pattern: Option<String>,
    /// Calico FelixConfiguration `floatingIPs`; unset means Felix's own default.
    #[serde(rename = "floatingIPs", skip_serializing_if = "Option::is_none")]
    pub floating_ips: Option<String>,
    /// Calico FelixConfiguration `localSubnetL2Reachability`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_subnet_l2_reachability: Option<String>,
    /// Calico FelixConfiguration `localSubnetL2ReachabilityRefreshInterval`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_subnet_l2_reachability_refresh_interval: Option<Duration>,
    /// Calico FelixConfiguration `windowsManageFirewallRules`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_manage_firewall_rules: Option<String>,
    /// Calico FelixConfiguration `goGCThreshold`; unset means Felix's own default.
    #[serde(rename = "goGCThreshold", skip_serializing_if = "Option::is_none")]
    pub go_gc_threshold: Option<i64>,
    /// Calico FelixConfiguration `goMemoryLimitMB`; unset means Felix's own default.
    #[serde(rename = "goMemoryLimitMB", skip_serializing_if = "Option::is_none")]
    pub go_memory_limit_mb: Option<i64>,
    /// Calico FelixConfiguration `goMaxProcs`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go_max_procs: Option<i64>,
    /// Calico FelixConfiguration `requireMTUFile`; unset means Felix's own default.
    #[serde(rename = "requireMTUFile", skip_serializing_if = "Option::is_none")]
    pub require_mtu_file: Option<bool>,
    /// Calico FelixConfiguration `bpfMaglevMaxEndpointsPerService`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_maglev_max_endpoints_per_service: Option<i64>,
    /// Calico FelixConfiguration `bpfMaglevMaxServices`; unset means Felix's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_maglev_max_services: Option<i64>,
}
