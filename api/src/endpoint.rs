//! `HostEndpoint` and `WorkloadEndpoint`: the interfaces policy applies to, with their named
//! ports and (for workloads) the naming convention Calico derives from the spec.

use serde::{Deserialize, Serialize};

use crate::error::{Errors, index, join};
use crate::resource::{Rules, resource};
use crate::validate::cidr::{Cidr, check_cidr, check_ip, check_ip_family, check_net};
use crate::validate::names::{
    check_name, is_container_id, is_interface_name, is_mac, port_name_problem,
};
use crate::validate::numbers::Dscp;
use crate::validate::ports::Protocol;

resource!(
    /// A host interface (or all of a host's traffic, `interfaceName: "*"`).
    HostEndpoint,
    HostEndpointSpec
);

/// `HostEndpoint.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostEndpointSpec {
    /// The node (required).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Interface name, or `*` for all host traffic (this or `expectedIPs` is required).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    /// Addresses of the endpoint.
    #[serde(default, rename = "expectedIPs", skip_serializing_if = "Vec::is_empty")]
    pub expected_ips: Vec<String>,
    /// Profiles, applied in order after policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Named ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EndpointPort>,
}

/// A named port of a host endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointPort {
    /// Port name (IANA service name).
    #[serde(default)]
    pub name: String,
    /// Protocol (TCP, UDP or SCTP).
    pub protocol: Protocol,
    /// Port number, 1-65535.
    #[serde(default)]
    pub port: u16,
}

fn check_port_protocol(errs: &mut Errors, f: &str, protocol: Protocol, port: u16) {
    if !protocol.supports_ports() {
        errs.add(
            join(f, "protocol"),
            protocol.to_string(),
            "does not have ports; use TCP, UDP or SCTP",
        );
    }
    if port == 0 {
        errs.add(
            join(f, "port"),
            "0",
            "is not a valid port; ports are 1-65535",
        );
    }
}

impl Rules for HostEndpoint {
    fn defaults(&mut self) {}

    fn check(&self, errs: &mut Errors) {
        check_name(errs, "metadata.name", self.metadata.name_str());
        let s = &self.spec;
        if s.node.is_empty() {
            errs.rule("spec.node", "is required");
        } else {
            check_name(errs, "spec.node", &s.node);
        }
        if s.interface_name.is_empty() && s.expected_ips.is_empty() {
            errs.rule(
                "spec.interfaceName",
                "is required unless expectedIPs is set (set interfaceName, expectedIPs or both)",
            );
        }
        if !s.interface_name.is_empty()
            && s.interface_name != "*"
            && !is_interface_name(&s.interface_name)
        {
            errs.add(
                "spec.interfaceName",
                s.interface_name.as_str(),
                "is not a valid interface name: 1-15 of [a-zA-Z0-9_.-], or *",
            );
        }
        for (i, ip) in s.expected_ips.iter().enumerate() {
            check_ip(errs, &index("spec.expectedIPs", i), ip);
        }
        for (i, p) in s.profiles.iter().enumerate() {
            check_name(errs, &index("spec.profiles", i), p);
        }
        for (i, p) in s.ports.iter().enumerate() {
            let f = index("spec.ports", i);
            if let Some(problem) = port_name_problem(&p.name) {
                errs.add(join(&f, "name"), p.name.as_str(), problem);
            }
            check_port_protocol(errs, &f, p.protocol, p.port);
        }
    }
}

resource!(
    /// A workload (pod) interface, normally written by the CNI plugin.
    WorkloadEndpoint,
    WorkloadEndpointSpec
);

/// `WorkloadEndpoint.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEndpointSpec {
    /// Orchestrator (`k8s`, `cni`, `libnetwork`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orchestrator: String,
    /// Workload name (orchestrators other than k8s/cni/libnetwork).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workload: String,
    /// Node name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Container ID.
    #[serde(
        default,
        rename = "containerID",
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    /// Pod name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// Endpoint name (`eth0`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// Kubernetes service account.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    /// Addresses of the endpoint (/32 or /128).
    #[serde(default, rename = "ipNetworks", skip_serializing_if = "Vec::is_empty")]
    pub ip_networks: Vec<String>,
    /// 1:1 NAT mappings.
    #[serde(default, rename = "ipNATs", skip_serializing_if = "Vec::is_empty")]
    pub ip_nats: Vec<IPNAT>,
    /// IPv4 gateway of the workload.
    #[serde(
        default,
        rename = "ipv4Gateway",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_gateway: String,
    /// IPv6 gateway of the workload.
    #[serde(
        default,
        rename = "ipv6Gateway",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_gateway: String,
    /// Profiles, applied in order after policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Host-side interface name (required).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    /// MAC address of the endpoint.
    #[serde(default, rename = "mac", skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Named or mapped ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<WorkloadEndpointPort>,
    /// Source prefixes the workload may send from (bypassing RPF).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_spoofed_source_prefixes: Vec<String>,
    /// Bandwidth and connection limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_controls: Option<QoSControls>,
}

/// A named or host-mapped port of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEndpointPort {
    /// Port name (required unless `hostPort` is set).
    #[serde(default)]
    pub name: String,
    /// Protocol (TCP, UDP or SCTP).
    pub protocol: Protocol,
    /// Port number, 1-65535.
    #[serde(default)]
    pub port: u16,
    /// Host port mapped to it (0: none).
    #[serde(default)]
    pub host_port: u16,
    /// Host address of the mapping.
    #[serde(default, rename = "hostIP")]
    pub host_ip: String,
}

/// A 1:1 NAT mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPNAT {
    /// Address of the endpoint (in `ipNetworks`).
    #[serde(default, rename = "internalIP")]
    pub internal_ip: String,
    /// External address.
    #[serde(default, rename = "externalIP")]
    pub external_ip: String,
}

/// QoS limits of a workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QoSControls {
    /// Ingress bandwidth, bit/s.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ingress_bandwidth: i64,
    /// Ingress burst, bits.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ingress_burst: i64,
    /// Ingress peak rate, bit/s.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ingress_peakrate: i64,
    /// Ingress minimum burst, bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ingress_minburst: i64,
    /// Egress bandwidth, bit/s.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub egress_bandwidth: i64,
    /// Egress burst, bits.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub egress_burst: i64,
    /// Egress peak rate, bit/s.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub egress_peakrate: i64,
    /// Egress minimum burst, bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub egress_minburst: i64,
    /// Ingress packets per second.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ingress_packet_rate: i64,
    /// Ingress packet burst.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ingress_packet_burst: i64,
    /// Egress packets per second.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub egress_packet_rate: i64,
    /// Egress packet burst.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub egress_packet_burst: i64,
    /// Ingress connection limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ingress_max_connections: i64,
    /// Egress connection limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub egress_max_connections: i64,
    /// DSCP marking of egress traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dscp: Option<Dscp>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl WorkloadEndpointSpec {
    /// The name Calico requires for this endpoint, from its identifiers: `<node>-k8s-<pod>-
    /// <endpoint>` (orchestrator k8s), `<node>-cni-<containerID>-<endpoint>`,
    /// `<node>-libnetwork-libnetwork-<endpoint>`, else `<node>-<orch>-<workload>-<endpoint>`;
    /// dashes inside each part are doubled.
    pub fn expected_name(&self) -> Result<String, (String, String)> {
        let parts: [(&str, &str); 4] = match self.orchestrator.as_str() {
            "k8s" => [
                ("node", &self.node),
                ("orchestrator", &self.orchestrator),
                ("pod", &self.pod),
                ("endpoint", &self.endpoint),
            ],
            "cni" => [
                ("node", &self.node),
                ("orchestrator", &self.orchestrator),
                ("containerID", &self.container_id),
                ("endpoint", &self.endpoint),
            ],
            "libnetwork" => [
                ("node", &self.node),
                ("orchestrator", &self.orchestrator),
                ("orchestrator", &self.orchestrator),
                ("endpoint", &self.endpoint),
            ],
            _ => [
                ("node", &self.node),
                ("orchestrator", &self.orchestrator),
                ("workload", &self.workload),
                ("endpoint", &self.endpoint),
            ],
        };
        let mut out = Vec::with_capacity(4);
        for (field, value) in parts {
            if value.is_empty() {
                return Err((
                    field.to_string(),
                    "is required to name the endpoint".to_string(),
                ));
            }
            if value.starts_with('-') || value.ends_with('-') {
                return Err((
                    field.to_string(),
                    "must not begin or end with '-'".to_string(),
                ));
            }
            out.push(value.replace('-', "--"));
        }
        Ok(out.join("-"))
    }
}

impl Rules for WorkloadEndpoint {
    fn defaults(&mut self) {
        if self.metadata.name_str().is_empty()
            && let Ok(name) = self.spec.expected_name()
        {
            self.metadata.name = Some(name);
        }
    }

    fn check(&self, errs: &mut Errors) {
        let name = self.metadata.name_str();
        check_name(errs, "metadata.name", name);
        let s = &self.spec;
        match s.expected_name() {
            Err((field, rule)) => errs.rule(join("spec", &field), rule),
            Ok(expected) if !name.is_empty() && name != expected => errs.add(
                "metadata.name",
                name,
                format!("does not match the endpoint's identifiers in spec: expected {expected}"),
            ),
            Ok(_) => {}
        }
        for (field, v) in [
            ("spec.orchestrator", &s.orchestrator),
            ("spec.workload", &s.workload),
            ("spec.node", &s.node),
            ("spec.pod", &s.pod),
            ("spec.endpoint", &s.endpoint),
            ("spec.serviceAccountName", &s.service_account_name),
        ] {
            if !v.is_empty() {
                check_name(errs, field, v);
            }
        }
        if !s.container_id.is_empty() && !is_container_id(&s.container_id) {
            errs.add(
                "spec.containerID",
                s.container_id.as_str(),
                "is not a valid container ID: letters, digits and '-'",
            );
        }
        let nets: Vec<Option<Cidr>> = s
            .ip_networks
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let f = index("spec.ipNetworks", i);
                let c = check_net(errs, &f, n)?;
                if c.prefix_len != if c.is_ipv4() { 32 } else { 128 } {
                    errs.add(
                        f,
                        n.as_str(),
                        "holds more than one address; use a /32 (IPv4) or /128 (IPv6)",
                    );
                }
                Some(c)
            })
            .collect();
        for (i, nat) in s.ip_nats.iter().enumerate() {
            let f = index("spec.ipNATs", i);
            let int = check_ip(errs, &join(&f, "internalIP"), &nat.internal_ip);
            let ext = check_ip(errs, &join(&f, "externalIP"), &nat.external_ip);
            if let (Some(int), Some(ext)) = (int, ext) {
                if int.is_ipv4() != ext.is_ipv4() {
                    errs.rule(&f, "maps addresses of different IP versions");
                }
                if !nets.iter().flatten().any(|c| c.contains(int)) {
                    errs.add(
                        join(&f, "internalIP"),
                        nat.internal_ip.as_str(),
                        "is not one of the endpoint's ipNetworks",
                    );
                }
            }
        }
        if !s.ipv4_gateway.is_empty() {
            check_ip_family(errs, "spec.ipv4Gateway", &s.ipv4_gateway, 4);
        }
        if !s.ipv6_gateway.is_empty() {
            check_ip_family(errs, "spec.ipv6Gateway", &s.ipv6_gateway, 6);
        }
        for (i, p) in s.profiles.iter().enumerate() {
            check_name(errs, &index("spec.profiles", i), p);
        }
        if s.interface_name.is_empty() {
            errs.rule("spec.interfaceName", "is required");
        } else if s.interface_name != "*" && !is_interface_name(&s.interface_name) {
            errs.add(
                "spec.interfaceName",
                s.interface_name.as_str(),
                "is not a valid interface name: 1-15 of [a-zA-Z0-9_.-]",
            );
        }
        if !s.mac.is_empty() && !is_mac(&s.mac) {
            errs.add("spec.mac", s.mac.as_str(), "is not a MAC address");
        }
        for (i, p) in s.ports.iter().enumerate() {
            let f = index("spec.ports", i);
            if p.name.is_empty() {
                if p.host_port == 0 {
                    errs.rule(join(&f, "name"), "is required unless hostPort is set");
                }
            } else if let Some(problem) = port_name_problem(&p.name) {
                errs.add(join(&f, "name"), p.name.as_str(), problem);
            }
            check_port_protocol(errs, &f, p.protocol, p.port);
            if !p.host_ip.is_empty() {
                check_net(errs, &join(&f, "hostIP"), &p.host_ip);
            }
        }
        for (i, c) in s.allow_spoofed_source_prefixes.iter().enumerate() {
            check_cidr(errs, &index("spec.allowSpoofedSourcePrefixes", i), c);
        }
        if let Some(q) = &s.qos_controls {
            check_qos(errs, q);
        }
    }
}

fn check_qos(errs: &mut Errors, q: &QoSControls) {
    let fields = [
        ("ingressBandwidth", q.ingress_bandwidth),
        ("ingressBurst", q.ingress_burst),
        ("ingressPeakrate", q.ingress_peakrate),
        ("ingressMinburst", q.ingress_minburst),
        ("egressBandwidth", q.egress_bandwidth),
        ("egressBurst", q.egress_burst),
        ("egressPeakrate", q.egress_peakrate),
        ("egressMinburst", q.egress_minburst),
        ("ingressPacketRate", q.ingress_packet_rate),
        ("ingressPacketBurst", q.ingress_packet_burst),
        ("egressPacketRate", q.egress_packet_rate),
        ("egressPacketBurst", q.egress_packet_burst),
        ("ingressMaxConnections", q.ingress_max_connections),
        ("egressMaxConnections", q.egress_max_connections),
    ];
    for (name, v) in fields {
        if v < 0 {
            errs.add(
                join("spec.qosControls", name),
                v.to_string(),
                "must not be negative",
            );
        }
    }
}
