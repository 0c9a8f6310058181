//! Policy rules (`ingress`/`egress` items of policies and profiles): actions, protocols, ICMP,
//! entity matches (nets, selectors, ports, services, service accounts) and their rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Errors, index, join};
use crate::validate::cidr::Cidr;
use crate::validate::names::{check_annotations, check_name};
use crate::validate::ports::{Port, Protocol, check_port};
use crate::validate::{check_selector, check_selector_without_global};

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Allow the packet.
    Allow,
    /// Drop the packet.
    Deny,
    /// Log the packet and continue.
    Log,
    /// Skip the rest of the tier.
    Pass,
}

/// Direction a policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PolicyType {
    /// Traffic to the endpoint.
    Ingress,
    /// Traffic from the endpoint.
    Egress,
}

/// One policy rule: match criteria and an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// The action (required).
    pub action: Action,
    /// Restrict to IPv4 (4) or IPv6 (6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<u8>,
    /// IP protocol (required for numeric ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// ICMP type/code (protocol ICMP or ICMPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<ICMPFields>,
    /// Negated protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_protocol: Option<Protocol>,
    /// Negated ICMP type/code.
    #[serde(default, rename = "notICMP", skip_serializing_if = "Option::is_none")]
    pub not_icmp: Option<ICMPFields>,
    /// Source match.
    #[serde(default, skip_serializing_if = "EntityRule::is_empty")]
    pub source: EntityRule,
    /// Destination match.
    #[serde(default, skip_serializing_if = "EntityRule::is_empty")]
    pub destination: EntityRule,
    /// HTTP match (application-layer policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HTTPMatch>,
    /// Rule annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RuleMetadata>,
}

impl Rule {
    /// A rule with only an action.
    pub fn new(action: Action) -> Rule {
        Rule {
            action,
            ip_version: None,
            protocol: None,
            icmp: None,
            not_protocol: None,
            not_icmp: None,
            source: EntityRule::default(),
            destination: EntityRule::default(),
            http: None,
            metadata: None,
        }
    }
}

/// ICMP type and code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ICMPFields {
    /// ICMP type (0-254).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// ICMP code (0-255; requires a type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

/// Source or destination match criteria.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityRule {
    /// Networks (CIDRs with a prefix length).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
    /// Endpoint selector.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Namespace selector (`global()` alone selects non-namespaced entities).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    /// Kubernetes services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ServiceMatch>,
    /// Ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Negated networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_nets: Vec<String>,
    /// Negated selector.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub not_selector: String,
    /// Negated ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<Port>,
    /// Service accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<ServiceAccountMatch>,
}

impl EntityRule {
    /// Whether no criterion is set.
    pub fn is_empty(&self) -> bool {
        self == &EntityRule::default()
    }
}

/// A Kubernetes service match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceMatch {
    /// Service name (required).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Service namespace (the policy's when empty; required in global policies).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// A service-account match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountMatch {
    /// Service account names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Service account label selector.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
}

/// An HTTP match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HTTPMatch {
    /// Methods (OR).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Paths (OR).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<HTTPPath>,
}

/// An HTTP path match: `exact` or `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HTTPPath {
    /// Exact path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exact: String,
    /// Path prefix.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// Rule annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMetadata {
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Where a rule sits, for the checks that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RuleContext {
    /// `Some` inside a policy (`None` in a profile).
    pub direction: Option<PolicyType>,
    /// Whether the policy is cluster-wide (services need a namespace).
    pub global: bool,
}

/// Most rules per direction.
pub const MAX_RULES: usize = 1024;

/// Checks a list of rules at `field` (`spec.ingress`).
pub(crate) fn check_rules(errs: &mut Errors, field: &str, rules: &[Rule], ctx: RuleContext) {
    if rules.len() > MAX_RULES {
        errs.rule(field, format!("has more than {MAX_RULES} rules"));
    }
    for (i, r) in rules.iter().enumerate() {
        check_rule(errs, &index(field, i), r, ctx);
    }
}

const NUMERIC_PORTS_NEED_PROTOCOL: &str =
    "is a numeric port, which needs protocol TCP, UDP or SCTP on the rule";
const PORTS_NEED_PORT_PROTOCOL: &str =
    "is not allowed: rules with ports must set protocol to TCP, UDP or SCTP";

fn check_rule(errs: &mut Errors, f: &str, r: &Rule, ctx: RuleContext) {
    if let Some(v) = r.ip_version
        && v != 4
        && v != 6
    {
        errs.add(join(f, "ipVersion"), v.to_string(), "is not 4 or 6");
    }
    for (name, p) in [("protocol", r.protocol), ("notProtocol", r.not_protocol)] {
        let Some(p) = p else { continue };
        if p.is_icmp() && r.ip_version == Some(6) {
            errs.add(
                join(f, name),
                p.to_string(),
                "(ICMP) requires ipVersion 4; use ICMPv6",
            );
        }
        if p.is_icmpv6() && r.ip_version == Some(4) {
            errs.add(
                join(f, name),
                p.to_string(),
                "(ICMPv6) requires ipVersion 6; use ICMP",
            );
        }
    }
    if r.icmp.is_some() && !r.protocol.is_some_and(|p| p.is_icmp() || p.is_icmpv6()) {
        errs.rule(join(f, "icmp"), "requires protocol ICMP or ICMPv6");
    }
    for (name, icmp) in [("icmp", &r.icmp), ("notICMP", &r.not_icmp)] {
        let Some(icmp) = icmp else { continue };
        if let Some(t) = icmp.icmp_type
            && t > 254
        {
            errs.add(
                join(f, &format!("{name}.type")),
                t.to_string(),
                "is out of range; ICMP types are 0-254",
            );
        }
        if icmp.code.is_some() && icmp.icmp_type.is_none() {
            errs.rule(join(f, &format!("{name}.code")), "requires an ICMP type");
        }
    }
    let mut families = NetFamilies::default();
    for (side, e) in [("source", &r.source), ("destination", &r.destination)] {
        let ef = join(f, side);
        check_entity(errs, &ef, e, r, side == "destination", &mut families);
    }
    if let Some(h) = &r.http {
        check_http(errs, &join(f, "http"), h, r);
    }
    if let Some(m) = &r.metadata {
        check_annotations(errs, &join(f, "metadata.annotations"), &m.annotations);
    }
    match ctx.direction {
        Some(PolicyType::Egress) => {
            if r.source.services.is_some() {
                errs.rule(
                    join(f, "source.services"),
                    "is not allowed in an egress rule",
                );
            }
            if r.http.is_some() {
                errs.rule(join(f, "http"), "is not allowed in an egress rule");
            }
            if ctx.global
                && r.destination
                    .services
                    .as_ref()
                    .is_some_and(|s| s.namespace.is_empty())
            {
                errs.rule(
                    join(f, "destination.services.namespace"),
                    "is required in a global policy",
                );
            }
        }
        Some(PolicyType::Ingress) => {
            if r.destination.services.is_some() {
                errs.rule(
                    join(f, "destination.services"),
                    "is not allowed in an ingress rule",
                );
            }
            if ctx.global
                && r.source
                    .services
                    .as_ref()
                    .is_some_and(|s| s.namespace.is_empty())
            {
                errs.rule(
                    join(f, "source.services.namespace"),
                    "is required in a global policy",
                );
            }
        }
        None => {}
    }
}

/// Address families seen in a rule's nets, to refuse rules that mix IPv4 and IPv6.
#[derive(Default)]
struct NetFamilies {
    v4: bool,
    v6: bool,
}

fn check_entity(
    errs: &mut Errors,
    f: &str,
    e: &EntityRule,
    r: &Rule,
    is_destination: bool,
    fam: &mut NetFamilies,
) {
    for (name, nets, negated) in [("nets", &e.nets, false), ("notNets", &e.not_nets, true)] {
        let nf = join(f, name);
        if nets.len() > 256 {
            errs.rule(&nf, "has more than 256 items");
        }
        let (mut v4, mut v6) = (false, false);
        for (i, n) in nets.iter().enumerate() {
            let Some(c) = check_rule_net(errs, &index(&nf, i), n) else {
                continue;
            };
            v4 |= c.is_ipv4();
            v6 |= !c.is_ipv4();
            if negated && c.prefix_len == 0 {
                errs.add(
                    index(&nf, i),
                    n.as_str(),
                    "is a catch-all CIDR, which in a negated match matches no traffic",
                );
            }
        }
        if let Some(v) = r.ip_version
            && ((v4 && v != 4) || (v6 && v != 6))
        {
            errs.rule(
                &nf,
                format!("holds CIDRs of another IP version than ipVersion {v}"),
            );
        }
        if (v4 || fam.v4) && (v6 || fam.v6) && (v4 || v6) {
            errs.rule(
                &nf,
                "makes the rule mix IPv4 and IPv6 CIDRs; split it into two rules",
            );
        }
        fam.v4 |= v4;
        fam.v6 |= v6;
    }
    check_selector_without_global(errs, &join(f, "selector"), &e.selector);
    check_selector_without_global(errs, &join(f, "notSelector"), &e.not_selector);
    let ns = &e.namespace_selector;
    if ns.contains("global(") && ns.trim() != "global()" {
        errs.add(
            join(f, "namespaceSelector"),
            ns.as_str(),
            "uses global(), which cannot be combined with other selector terms",
        );
    } else {
        check_selector(errs, &join(f, "namespaceSelector"), ns);
    }
    for (name, ports) in [("ports", &e.ports), ("notPorts", &e.not_ports)] {
        let pf = join(f, name);
        if ports.len() > 50 {
            errs.rule(&pf, "has more than 50 items");
        }
        for (i, p) in ports.iter().enumerate() {
            let at = index(&pf, i);
            check_port(errs, &at, p);
            match r.protocol {
                None if !p.is_named() => errs.add(at, p.to_string(), NUMERIC_PORTS_NEED_PROTOCOL),
                Some(proto) if !proto.supports_ports() => errs.add(
                    at,
                    p.to_string(),
                    format!("{PORTS_NEED_PORT_PROTOCOL} (protocol is {proto})"),
                ),
                _ => {}
            }
        }
    }
    if let Some(sa) = &e.service_accounts {
        check_selector(errs, &join(f, "serviceAccounts.selector"), &sa.selector);
    }
    if let Some(svc) = &e.services {
        let sf = join(f, "services");
        if svc.name.is_empty() {
            errs.rule(join(&sf, "name"), "is required");
        } else {
            check_name(errs, &join(&sf, "name"), &svc.name);
        }
        if !svc.namespace.is_empty() {
            check_name(errs, &join(&sf, "namespace"), &svc.namespace);
        }
        let conflicts = [
            ("namespaceSelector", !e.namespace_selector.is_empty()),
            ("serviceAccounts", e.service_accounts.is_some()),
            ("selector", !e.selector.is_empty()),
            ("notSelector", !e.not_selector.is_empty()),
            ("nets", !e.nets.is_empty()),
            ("notNets", !e.not_nets.is_empty()),
        ];
        for (name, set) in conflicts {
            if set {
                errs.rule(
                    join(f, name),
                    "cannot be combined with services on the same rule",
                );
            }
        }
    }
    if is_destination && e.services.is_some() {
        for (name, set) in [
            ("ports", !e.ports.is_empty()),
            ("notPorts", !e.not_ports.is_empty()),
        ] {
            if set {
                errs.rule(
                    join(f, name),
                    "cannot be combined with destination services",
                );
            }
        }
    }
}

/// A rule's nets entry: a strictly masked CIDR with an explicit prefix length.
fn check_rule_net(errs: &mut Errors, f: &str, n: &str) -> Option<Cidr> {
    match Cidr::parse(n) {
        Err(rule) => {
            errs.add(f, n, rule);
            None
        }
        Ok(c) if !c.is_strictly_masked() => {
            errs.add(
                f,
                n,
                format!(
                    "has host bits set; a CIDR must be strictly masked ({})",
                    c.masked()
                ),
            );
            None
        }
        Ok(c) => Some(c),
    }
}

fn check_http(errs: &mut Errors, f: &str, h: &HTTPMatch, r: &Rule) {
    if r.action != Action::Allow {
        errs.rule(f, "is only valid on Allow rules");
    }
    if r.protocol.is_some_and(|p| p.number() != 6) {
        errs.rule(f, "requires protocol TCP (or no protocol)");
    }
    if h.methods.len() > 20 {
        errs.rule(join(f, "methods"), "has more than 20 items");
    }
    for (i, m) in h.methods.iter().enumerate() {
        if h.methods[..i].contains(m) {
            errs.add(
                index(&join(f, "methods"), i),
                m.as_str(),
                "is listed more than once",
            );
        }
    }
    if h.paths.len() > 20 {
        errs.rule(join(f, "paths"), "has more than 20 items");
    }
    for (i, p) in h.paths.iter().enumerate() {
        let pf = index(&join(f, "paths"), i);
        let v = match (p.exact.is_empty(), p.prefix.is_empty()) {
            (false, false) => {
                errs.rule(&pf, "sets both exact and prefix; set one");
                continue;
            }
            (true, true) => {
                errs.rule(&pf, "sets neither exact nor prefix; set one");
                continue;
            }
            (false, true) => &p.exact,
            (true, false) => &p.prefix,
        };
        if !v.starts_with('/') || v.contains(['?', ' ', '#']) {
            errs.add(
                &pf,
                v.as_str(),
                "is not a valid path: it must start with / and not contain ?, # or spaces",
            );
        }
    }
}
