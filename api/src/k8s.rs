//! Kubernetes `networking.k8s.io/v1` NetworkPolicy: its types, the API server's validation,
//! and its translation into a Calico `NetworkPolicy` the way Calico's Kubernetes datastore
//! presents it to Felix (`knp.default.<name>`, order 1000, tier `default`).
//!
//! Translation facts (Calico's `K8sNetworkPolicyToCalico`): the policy selects
//! `projectcalico.org/orchestrator == 'k8s' && <podSelector>`; `policyTypes` become `types`
//! (when absent: Ingress, plus Egress when there are egress rules, as the API server
//! defaults them); each ingress/egress rule becomes one
//! Allow rule per (protocol, peer) with the protocol's ports merged into ranges; a missing or
//! empty `from`/`to` is "any peer" and a missing or empty `ports` "any port", while an absent
//! or empty `ingress`/`egress` list allows nothing in a direction the types cover; a peer's
//! `podSelector` alone stays in the policy's namespace, a `namespaceSelector` picks pods of the
//! matching namespaces (`{}`: all namespaces), an `ipBlock` becomes `nets` and its `except`
//! `notNets`; a port without a protocol is TCP, `endPort` makes a range.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Errors, FieldError, index, join};
use crate::meta::ObjectMeta;
use crate::policy::{DEFAULT_TIER, NetworkPolicy, NetworkPolicySpec};
use crate::resource::Resource;
use crate::rule::{Action, EntityRule, PolicyType, Rule};
use crate::validate::cidr::Cidr;
use crate::validate::names::{is_dns1123_subdomain, label_value_problem, qualified_name_problem};
use crate::validate::ports::{Port, Protocol};

/// The API group and version of a Kubernetes NetworkPolicy.
pub const K8S_NETWORKING_API_VERSION: &str = "networking.k8s.io/v1";
/// Prefix Calico gives translated Kubernetes policies.
pub const K8S_POLICY_NAME_PREFIX: &str = "knp.default.";
/// The order Calico gives translated Kubernetes policies.
pub const K8S_POLICY_ORDER: f64 = 1000.0;
/// The label every Kubernetes pod's workload endpoint carries.
const ORCHESTRATOR_LABEL: &str = "projectcalico.org/orchestrator";

/// A Kubernetes `NetworkPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesNetworkPolicy {
    /// `networking.k8s.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `NetworkPolicy`.
    #[serde(default)]
    pub kind: String,
    /// Name, namespace, labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The policy.
    #[serde(default)]
    pub spec: KubernetesNetworkPolicySpec,
    /// Status (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// `NetworkPolicy.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesNetworkPolicySpec {
    /// The pods the policy applies to (`{}`: every pod of the namespace).
    #[serde(default)]
    pub pod_selector: LabelSelector,
    /// Ingress rules (absent or empty: nothing is allowed in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<NetworkPolicyIngressRule>,
    /// Egress rules (absent or empty: nothing is allowed out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<NetworkPolicyEgressRule>,
    /// `Ingress` and/or `Egress`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_types: Vec<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must have these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Further requirements, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

impl LabelSelector {
    /// Whether the selector has no terms (it selects everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

/// One `matchExpressions` item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key.
    #[serde(default)]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[serde(default)]
    pub operator: String,
    /// The values (`In`/`NotIn` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// An ingress rule: traffic from any of `from` to any of `ports`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyIngressRule {
    /// Destination ports (absent or empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NetworkPolicyPort>,
    /// Sources (absent or empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<NetworkPolicyPeer>,
}

/// An egress rule: traffic to any of `to` on any of `ports`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyEgressRule {
    /// Destination ports (absent or empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NetworkPolicyPort>,
    /// Destinations (absent or empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<NetworkPolicyPeer>,
}

/// A peer: pods (by pod and/or namespace selector) or an IP block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyPeer {
    /// Pods (in the policy's namespace unless `namespaceSelector` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Namespaces whose pods are peers (`{}`: all namespaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// A CIDR with exceptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IPBlock>,
}

/// `ipBlock`: a CIDR minus some sub-CIDRs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPBlock {
    /// The CIDR.
    #[serde(default)]
    pub cidr: String,
    /// CIDRs inside `cidr` that are not peers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// A port match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyPort {
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// A number or a named port of the destination pod (absent: all ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// The last port of a range starting at `port` (numeric `port` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i64>,
}

/// Kubernetes `IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A string.
    String(String),
}

/// Why `s` is not an IANA service name (a Kubernetes named port), or `None`.
fn iana_service_name_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() || s.len() > 15 {
        Some("must be 1-15 characters")
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("must contain only lower-case letters, digits and '-'")
    } else if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        Some("must contain at least one letter")
    } else if s.starts_with('-') || s.ends_with('-') || s.contains("--") {
        Some("must not begin or end with '-' or contain '--'")
    } else {
        None
    }
}

fn check_selector(errs: &mut Errors, f: &str, s: &LabelSelector) {
    for (k, v) in &s.match_labels {
        if let Some(p) = qualified_name_problem(k) {
            errs.add(
                join(f, "matchLabels"),
                k,
                format!("is not a valid label key: it {p}"),
            );
        }
        if let Some(p) = label_value_problem(v) {
            errs.add(join(&join(f, "matchLabels"), k), v, p);
        }
    }
    for (i, e) in s.match_expressions.iter().enumerate() {
        let ef = index(&join(f, "matchExpressions"), i);
        if let Some(p) = qualified_name_problem(&e.key) {
            errs.add(
                join(&ef, "key"),
                &e.key,
                format!("is not a valid label key: it {p}"),
            );
        }
        match e.operator.as_str() {
            "In" | "NotIn" => {
                if e.values.is_empty() {
                    errs.rule(join(&ef, "values"), "must be non-empty for In and NotIn");
                }
                for (j, v) in e.values.iter().enumerate() {
                    if let Some(p) = label_value_problem(v) {
                        errs.add(index(&join(&ef, "values"), j), v, p);
                    }
                }
            }
            "Exists" | "DoesNotExist" => {
                if !e.values.is_empty() {
                    errs.rule(
                        join(&ef, "values"),
                        "must be empty for Exists and DoesNotExist",
                    );
                }
            }
            other => errs.add(
                join(&ef, "operator"),
                other,
                "is not one of In, NotIn, Exists, DoesNotExist",
            ),
        }
    }
}

fn check_port(errs: &mut Errors, f: &str, p: &NetworkPolicyPort) {
    if let Some(proto) = &p.protocol
        && !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP")
    {
        errs.add(join(f, "protocol"), proto, "is not one of TCP, UDP, SCTP");
    }
    match &p.port {
        Some(IntOrString::Int(n)) => {
            if !(1..=65535).contains(n) {
                errs.add(
                    join(f, "port"),
                    n.to_string(),
                    "is not a port; ports are 1-65535",
                );
            }
            if let Some(end) = p.end_port {
                if !(1..=65535).contains(&end) {
                    errs.add(
                        join(f, "endPort"),
                        end.to_string(),
                        "is not a port; ports are 1-65535",
                    );
                } else if end < *n {
                    errs.add(
                        join(f, "endPort"),
                        end.to_string(),
                        format!("must be greater than or equal to port ({n})"),
                    );
                }
            }
        }
        Some(IntOrString::String(name)) => {
            if let Some(problem) = iana_service_name_problem(name) {
                errs.add(
                    join(f, "port"),
                    name,
                    format!("is not a port name: it {problem}"),
                );
            }
            if p.end_port.is_some() {
                errs.rule(join(f, "endPort"), "may only be set with a numeric port");
            }
        }
        None => {
            if p.end_port.is_some() {
                errs.rule(join(f, "endPort"), "may only be set with a numeric port");
            }
        }
    }
}

fn check_peer(errs: &mut Errors, f: &str, p: &NetworkPolicyPeer) {
    let selectors = p.pod_selector.is_some() || p.namespace_selector.is_some();
    match &p.ip_block {
        None if !selectors => errs.rule(
            f,
            "must set at least one of podSelector, namespaceSelector and ipBlock",
        ),
        None => {}
        Some(_) if selectors => errs.rule(
            join(f, "ipBlock"),
            "cannot be combined with podSelector or namespaceSelector",
        ),
        Some(b) => {
            let bf = join(f, "ipBlock");
            match Cidr::parse(&b.cidr) {
                Err(rule) => errs.add(join(&bf, "cidr"), &b.cidr, rule),
                Ok(cidr) => {
                    for (i, e) in b.except.iter().enumerate() {
                        let at = index(&join(&bf, "except"), i);
                        match Cidr::parse(e) {
                            Err(rule) => errs.add(at, e, rule),
                            Ok(ex)
                                if !cidr.contains(ex.addr) || ex.prefix_len <= cidr.prefix_len =>
                            {
                                errs.add(
                                    at,
                                    e,
                                    format!("must be a strict subset of cidr {}", b.cidr),
                                );
                            }
                            Ok(_) => {}
                        }
                    }
                }
            }
        }
    }
    if let Some(s) = &p.pod_selector {
        check_selector(errs, &join(f, "podSelector"), s);
    }
    if let Some(s) = &p.namespace_selector {
        check_selector(errs, &join(f, "namespaceSelector"), s);
    }
}

/// Which kind of selector a Kubernetes label selector is translated as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SelectorKind {
    Pod,
    Namespace,
}

/// Calico's text for a Kubernetes selector: pod selectors always require the `k8s`
/// orchestrator; an empty namespace selector is `all()`, an absent one is empty.
fn calico_selector(s: Option<&LabelSelector>, kind: SelectorKind) -> String {
    let mut terms = Vec::new();
    if kind == SelectorKind::Pod {
        terms.push(format!("{ORCHESTRATOR_LABEL} == 'k8s'"));
    }
    let Some(s) = s else {
        return terms.join(" && ");
    };
    if kind == SelectorKind::Namespace && s.is_empty() {
        return "all()".to_string();
    }
    for (k, v) in &s.match_labels {
        terms.push(format!("{k} == '{v}'"));
    }
    for e in &s.match_expressions {
        let values = e.values.join("', '");
        match e.operator.as_str() {
            "In" => terms.push(format!("{} in {{ '{values}' }}", e.key)),
            "NotIn" => terms.push(format!("{} not in {{ '{values}' }}", e.key)),
            "Exists" => terms.push(format!("has({})", e.key)),
            "DoesNotExist" => terms.push(format!("! has({})", e.key)),
            _ => {}
        }
    }
    terms.join(" && ")
}

/// Calico's `SimplifyPorts`: numeric ports merged into ranges (after the named ports).
fn simplify_ports(ports: Vec<Port>) -> Vec<Port> {
    if ports.len() <= 1 {
        return ports;
    }
    let mut named = Vec::new();
    let mut numbers: Vec<u32> = Vec::new();
    for p in &ports {
        match p.range() {
            None => named.push(p.clone()),
            Some((lo, hi)) => numbers.extend(u32::from(lo)..=u32::from(hi)),
        }
    }
    if numbers.len() <= 1 {
        return ports;
    }
    numbers.sort_unstable();
    let mut out = named;
    let mut i = 0;
    while i < numbers.len() {
        let first = numbers[i];
        let mut last = first;
        i += 1;
        while i < numbers.len() && numbers[i] <= last + 1 {
            last = numbers[i];
            i += 1;
        }
        let (lo, hi) = (
            u16::try_from(first).unwrap_or(u16::MAX),
            u16::try_from(last).unwrap_or(u16::MAX),
        );
        out.push(if lo == hi {
            Port::Single(lo)
        } else {
            Port::Range { min: lo, max: hi }
        });
    }
    out
}

/// A port's protocol (TCP when unset) and its Calico port, if it names one.
fn calico_port(p: &NetworkPolicyPort) -> (Protocol, Option<Port>) {
    let protocol = match p.protocol.as_deref() {
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        _ => Protocol::Tcp,
    };
    let port = match &p.port {
        None => None,
        Some(IntOrString::String(name)) => Some(Port::Named(name.clone())),
        Some(IntOrString::Int(n)) => {
            let lo = u16::try_from(*n).unwrap_or(0);
            match p.end_port.map(|e| u16::try_from(e).unwrap_or(0)) {
                Some(hi) if hi > lo => Some(Port::Range { min: lo, max: hi }),
                _ => Some(Port::Single(lo)),
            }
        }
    };
    (protocol, port)
}

/// Calico's `k8sRuleToCalico`: one Allow rule per (protocol, peer).
fn calico_rules(
    peers: &[NetworkPolicyPeer],
    ports: &[NetworkPolicyPort],
    ingress: bool,
) -> Vec<Rule> {
    // Protocol (None: any) -> ports (None: all ports of that protocol).
    let mut by_protocol: BTreeMap<Option<String>, Option<Vec<Port>>> = BTreeMap::new();
    if ports.is_empty() {
        by_protocol.insert(None, None);
    }
    let mut protocols: BTreeMap<String, Protocol> = BTreeMap::new();
    for p in ports {
        let (protocol, port) = calico_port(p);
        let key = protocol.to_string();
        protocols.insert(key.clone(), protocol);
        match port {
            None => {
                by_protocol.insert(Some(key), None);
            }
            Some(port) => {
                let slot = by_protocol
                    .entry(Some(key))
                    .or_insert_with(|| Some(Vec::new()));
                if let Some(list) = slot {
                    list.push(port);
                }
            }
        }
    }
    let peers: Vec<Option<&NetworkPolicyPeer>> = if peers.is_empty() {
        vec![None]
    } else {
        peers.iter().map(Some).collect()
    };
    let mut rules = Vec::new();
    for (proto_key, list) in by_protocol {
        let protocol = proto_key.and_then(|k| protocols.get(&k).copied());
        let ports = simplify_ports(list.unwrap_or_default());
        for peer in &peers {
            let mut side = EntityRule::default();
            if let Some(peer) = peer {
                match &peer.ip_block {
                    Some(b) => {
                        side.nets = Cidr::parse(&b.cidr)
                            .map(|c| vec![c.masked().to_string()])
                            .unwrap_or_default();
                        side.not_nets = b
                            .except
                            .iter()
                            .filter_map(|e| Cidr::parse(e).ok())
                            .map(|c| c.masked().to_string())
                            .collect();
                    }
                    None => {
                        side.selector =
                            calico_selector(peer.pod_selector.as_ref(), SelectorKind::Pod);
                        side.namespace_selector = calico_selector(
                            peer.namespace_selector.as_ref(),
                            SelectorKind::Namespace,
                        );
                    }
                }
            }
            let mut rule = Rule::new(Action::Allow);
            rule.protocol = protocol;
            if ingress {
                rule.source = side;
                rule.destination.ports = ports.clone();
            } else {
                side.ports = ports.clone();
                rule.destination = side;
            }
            rules.push(rule);
        }
    }
    rules
}

impl KubernetesNetworkPolicy {
    /// Parses one YAML or JSON document.
    pub fn from_yaml(text: &str) -> Result<KubernetesNetworkPolicy, FieldError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            FieldError::new(
                if path == "." { String::new() } else { path },
                "",
                e.into_inner().to_string(),
            )
        })
    }

    /// The Kubernetes API server's checks; returns every broken rule.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errs = Errors::default();
        if !self.api_version.is_empty() && self.api_version != K8S_NETWORKING_API_VERSION {
            errs.add(
                "apiVersion",
                &self.api_version,
                format!("is not supported; expected {K8S_NETWORKING_API_VERSION}"),
            );
        }
        if !self.kind.is_empty() && self.kind != "NetworkPolicy" {
            errs.add("kind", &self.kind, "is not NetworkPolicy");
        }
        let name = self.metadata.name_str();
        if name.is_empty() {
            errs.rule("metadata.name", "is required");
        } else if !is_dns1123_subdomain(name) {
            errs.add("metadata.name", name, "is not a DNS-1123 subdomain");
        }
        match self.metadata.namespace.as_deref() {
            None | Some("") => errs.rule("metadata.namespace", "is required"),
            Some(ns) if !is_dns1123_subdomain(ns) || ns.contains('.') => {
                errs.add("metadata.namespace", ns, "is not a DNS-1123 label");
            }
            Some(_) => {}
        }
        let s = &self.spec;
        check_selector(&mut errs, "spec.podSelector", &s.pod_selector);
        for (i, r) in s.ingress.iter().enumerate() {
            let rf = index("spec.ingress", i);
            for (j, p) in r.ports.iter().enumerate() {
                check_port(&mut errs, &index(&join(&rf, "ports"), j), p);
            }
            for (j, p) in r.from.iter().enumerate() {
                check_peer(&mut errs, &index(&join(&rf, "from"), j), p);
            }
        }
        for (i, r) in s.egress.iter().enumerate() {
            let rf = index("spec.egress", i);
            for (j, p) in r.ports.iter().enumerate() {
                check_port(&mut errs, &index(&join(&rf, "ports"), j), p);
            }
            for (j, p) in r.to.iter().enumerate() {
                check_peer(&mut errs, &index(&join(&rf, "to"), j), p);
            }
        }
        if s.policy_types.len() > 2 {
            errs.rule("spec.policyTypes", "has more than 2 items");
        }
        for (i, t) in s.policy_types.iter().enumerate() {
            if !matches!(t.as_str(), "Ingress" | "Egress") {
                errs.add(
                    index("spec.policyTypes", i),
                    t,
                    "is not one of Ingress, Egress",
                );
            } else if s.policy_types[..i].contains(t) {
                errs.add(index("spec.policyTypes", i), t, "is listed more than once");
            }
        }
        errs.into_result()
    }

    /// The Calico `NetworkPolicy` Calico makes of this policy (validated first; defaults
    /// applied).
    pub fn to_calico(&self) -> Result<NetworkPolicy, Vec<FieldError>> {
        self.validate()?;
        let s = &self.spec;
        let ingress: Vec<Rule> = s
            .ingress
            .iter()
            .flat_map(|r| calico_rules(&r.from, &r.ports, true))
            .collect();
        let egress: Vec<Rule> = s
            .egress
            .iter()
            .flat_map(|r| calico_rules(&r.to, &r.ports, false))
            .collect();
        // The API server's defaulting when policyTypes is absent: Ingress, and Egress when
        // there are egress rules.
        let (ingress_type, egress_type) = if s.policy_types.is_empty() {
            (true, !s.egress.is_empty())
        } else {
            (
                s.policy_types.iter().any(|t| t == "Ingress"),
                s.policy_types.iter().any(|t| t == "Egress"),
            )
        };
        let mut types = Vec::new();
        if ingress_type {
            types.push(PolicyType::Ingress);
        }
        if egress_type {
            types.push(PolicyType::Egress);
        }
        let m = &self.metadata;
        let mut policy = NetworkPolicy {
            metadata: ObjectMeta {
                name: Some(format!("{K8S_POLICY_NAME_PREFIX}{}", m.name_str())),
                namespace: m.namespace.clone(),
                uid: m.uid.clone(),
                resource_version: m.resource_version.clone(),
                creation_timestamp: m.creation_timestamp.clone(),
                ..ObjectMeta::default()
            },
            spec: NetworkPolicySpec {
                tier: DEFAULT_TIER.to_string(),
                order: Some(K8S_POLICY_ORDER),
                ingress,
                egress,
                selector: calico_selector(Some(&s.pod_selector), SelectorKind::Pod),
                types,
                ..NetworkPolicySpec::default()
            },
        };
        policy.set_defaults();
        policy.validate()?;
        Ok(policy)
    }
}
