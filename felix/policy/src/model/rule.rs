//! A policy or profile rule compiled for rendering: protocols and ICMP as numbers, nets parsed
//! and masked, ports split into numeric ranges and names, and each side's combined selector.

use fabric_api::rule::{EntityRule, ICMPFields, Rule};
use fabric_api::selector::Selector;
use fabric_api::{Action, Port, Protocol};
use ipnet::IpNet;

use crate::error::PolicyError;
use crate::model::selectors;

/// An ICMP type, optionally with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpMatch {
    /// The type.
    pub icmp_type: u8,
    /// The code.
    pub code: Option<u8>,
}

/// One side (source or destination) of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntityMatch {
    /// Any of these networks.
    pub nets: Vec<IpNet>,
    /// None of these networks.
    pub not_nets: Vec<IpNet>,
    /// The combined endpoint selector (an ipset of the matching entities' addresses).
    pub selector: Option<Selector>,
    /// Not any endpoint this selector matches.
    pub not_selector: Option<Selector>,
    /// Any of these port ranges (inclusive).
    pub ports: Vec<(u16, u16)>,
    /// Any of these named ports (of the entities the side's selector matches).
    pub named_ports: Vec<String>,
    /// None of these port ranges.
    pub not_ports: Vec<(u16, u16)>,
    /// None of these named ports.
    pub not_named_ports: Vec<String>,
}

impl EntityMatch {
    /// Whether the side has any port criterion.
    pub fn has_ports(&self) -> bool {
        !(self.ports.is_empty()
            && self.named_ports.is_empty()
            && self.not_ports.is_empty()
            && self.not_named_ports.is_empty())
    }
}

/// A rule ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledRule {
    /// What a match does.
    pub action: Action,
    /// Only this IP version (4 or 6).
    pub ip_version: Option<u8>,
    /// Only this protocol.
    pub protocol: Option<Protocol>,
    /// Not this protocol.
    pub not_protocol: Option<Protocol>,
    /// Only this ICMP type/code.
    pub icmp: Option<IcmpMatch>,
    /// Not this ICMP type/code.
    pub not_icmp: Option<IcmpMatch>,
    /// Source criteria.
    pub src: EntityMatch,
    /// Destination criteria.
    pub dst: EntityMatch,
    /// Why the rule cannot be enforced by iptables (Kubernetes `services` and HTTP matches):
    /// such a rule is left out, so it never matches.
    pub unsupported: Option<String>,
}

fn nets(field: &str, texts: &[String]) -> Result<Vec<IpNet>, PolicyError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.parse::<IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    PolicyError::new(format!("{field}[{i}]"), t, "is not a CIDR or an IP address")
                })
        })
        .collect()
}

/// Numeric port ranges and port names.
type SplitPorts = (Vec<(u16, u16)>, Vec<String>);

fn ports(
    field: &str,
    list: &[Port],
    protocol: Option<Protocol>,
) -> Result<SplitPorts, PolicyError> {
    let mut numeric = Vec::new();
    let mut named = Vec::new();
    for (i, p) in list.iter().enumerate() {
        match p {
            Port::Named(n) => named.push(n.clone()),
            other => {
                let Some((lo, hi)) = other.range() else {
                    continue;
                };
                if lo == 0 {
                    return Err(PolicyError::new(
                        format!("{field}[{i}]"),
                        p.to_string(),
                        "is not a valid port; ports are 1-65535",
                    ));
                }
                if !protocol.is_some_and(Protocol::supports_ports) {
                    return Err(PolicyError::new(
                        format!("{field}[{i}]"),
                        p.to_string(),
                        "is a numeric port, which needs protocol TCP, UDP or SCTP on the rule",
                    ));
                }
                numeric.push((lo, hi));
            }
        }
    }
    Ok((numeric, named))
}

fn entity(
    field: &str,
    er: &EntityRule,
    protocol: Option<Protocol>,
    namespace: Option<&str>,
) -> Result<EntityMatch, PolicyError> {
    let (numeric, named_ports) = ports(&format!("{field}.ports"), &er.ports, protocol)?;
    let (not_ports, not_named_ports) =
        ports(&format!("{field}.notPorts"), &er.not_ports, protocol)?;
    let not_selector = if er.not_selector.is_empty() {
        None
    } else {
        Some(selectors::parse(
            &format!("{field}.notSelector"),
            &er.not_selector,
        )?)
    };
    Ok(EntityMatch {
        nets: nets(&format!("{field}.nets"), &er.nets)?,
        not_nets: nets(&format!("{field}.notNets"), &er.not_nets)?,
        selector: selectors::entity_selector(field, er, namespace)?,
        not_selector,
        ports: numeric,
        named_ports,
        not_ports,
        not_named_ports,
    })
}

fn icmp(
    field: &str,
    fields: &Option<ICMPFields>,
    protocol: Option<Protocol>,
) -> Result<Option<IcmpMatch>, PolicyError> {
    let Some(f) = fields else { return Ok(None) };
    if !protocol.is_some_and(|p| p.is_icmp() || p.is_icmpv6()) {
        return Err(PolicyError::new(
            field,
            "",
            "requires protocol ICMP or ICMPv6 on the rule",
        ));
    }
    match (f.icmp_type, f.code) {
        (None, None) => Ok(None),
        (None, Some(c)) => Err(PolicyError::new(
            format!("{field}.code"),
            c.to_string(),
            "requires an ICMP type",
        )),
        (Some(t), _) if t == 255 => Err(PolicyError::new(
            format!("{field}.type"),
            t.to_string(),
            "is out of range; ICMP types are 0-254",
        )),
        (Some(t), code) => Ok(Some(IcmpMatch { icmp_type: t, code })),
    }
}

/// Compiles `rule` found at `field`; `namespace` is the namespace of the policy it belongs to
/// (`None` for global policies and profiles).
pub fn compile(
    field: &str,
    rule: &Rule,
    namespace: Option<&str>,
) -> Result<CompiledRule, PolicyError> {
    if let Some(v) = rule.ip_version
        && v != 4
        && v != 6
    {
        return Err(PolicyError::new(
            format!("{field}.ipVersion"),
            v.to_string(),
            "is not 4 or 6",
        ));
    }
    let unsupported = if rule.source.services.is_some() || rule.destination.services.is_some() {
        Some("Kubernetes service matches are not supported by the iptables renderer".to_string())
    } else if rule.http.is_some() {
        Some("HTTP matches need application-layer policy, which this dataplane lacks".to_string())
    } else {
        None
    };
    if let Some(reason) = &unsupported {
        tracing::warn!(rule = %field, action = ?rule.action, reason = %reason, "rule left out: it never matches");
    }
    Ok(CompiledRule {
        action: rule.action,
        ip_version: rule.ip_version,
        protocol: rule.protocol,
        not_protocol: rule.not_protocol,
        icmp: icmp(&format!("{field}.icmp"), &rule.icmp, rule.protocol)?,
        not_icmp: icmp(&format!("{field}.notICMP"), &rule.not_icmp, rule.protocol)?,
        src: entity(
            &format!("{field}.source"),
            &rule.source,
            rule.protocol,
            namespace,
        )?,
        dst: entity(
            &format!("{field}.destination"),
            &rule.destination,
            rule.protocol,
            namespace,
        )?,
        unsupported,
    })
}

/// Compiles a list of rules at `field` (`spec.ingress`).
pub fn compile_all(
    field: &str,
    rules: &[Rule],
    namespace: Option<&str>,
) -> Result<Vec<CompiledRule>, PolicyError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| compile(&format!("{field}[{i}]"), r, namespace))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ports_without_a_port_protocol_are_refused_with_their_path() {
        let mut r = Rule::new(Action::Allow);
        r.destination.ports = vec![Port::Single(80)];
        let e = compile("spec.ingress[0]", &r, None).unwrap_err();
        assert_eq!(e.field, "spec.ingress[0].destination.ports[0]");
        r.protocol = Some(Protocol::Icmp);
        assert!(compile("x", &r, None).is_err());
        r.protocol = Some(Protocol::Tcp);
        let c = compile("x", &r, None).unwrap();
        assert_eq!(c.dst.ports, vec![(80, 80)]);
    }

    #[test]
    fn icmp_fields_need_an_icmp_protocol() {
        let mut r = Rule::new(Action::Allow);
        r.icmp = Some(ICMPFields {
            icmp_type: Some(8),
            code: None,
        });
        assert!(compile("x", &r, None).is_err());
        r.protocol = Some(Protocol::Icmp);
        assert_eq!(
            compile("x", &r, None).unwrap().icmp,
            Some(IcmpMatch {
                icmp_type: 8,
                code: None
            })
        );
    }

    #[test]
    fn rule_nets_are_masked_and_bare_addresses_accepted() {
        let mut r = Rule::new(Action::Deny);
        r.source.nets = vec!["10.1.2.3/8".into(), "192.0.2.1".into()];
        let c = compile("x", &r, None).unwrap();
        assert_eq!(
            c.src.nets,
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.0.2.1/32".parse().unwrap()
            ]
        );
        r.source.nets = vec!["bogus".into()];
        assert_eq!(
            compile("x", &r, None).unwrap_err().field,
            "x.source.nets[0]"
        );
    }
}
