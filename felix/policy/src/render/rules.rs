//! One compiled rule rendered for one family: the iptables matches (protocol, nets, selector
//! ipsets, ports, named-port ipsets, ICMP, then the negated matches) and the action (Allow and
//! Pass set a mark bit and return, Deny drops, Log logs), plus the ipsets the rule needs.
//!
//! Where iptables cannot express a match in one rule the rule is rendered differently from
//! Calico but with the same meaning: several positive nets become a `hash:net` ipset (Calico
//! uses scratch mark bits); more than 15 positive ports, or numeric and named ports together,
//! become one iptables rule per alternative (so a Log rule whose port alternatives overlap may
//! log a packet twice).

use fabric_api::selector::Selector;
use fabric_api::{Action, Protocol};
use ipnet::IpNet;

use crate::model::entity::split_zero;
use crate::model::rule::{CompiledRule, EntityMatch, IcmpMatch};
use crate::names::{named_port_set_id, net_set_id, selector_set_id};
use crate::types::{IpFamily, PortProtocol, ipset_name};

/// The marks and log prefix rules need.
#[derive(Debug, Clone)]
pub struct RuleContext {
    /// The accept bit.
    pub mark_accept: u32,
    /// The pass bit.
    pub mark_pass: u32,
    /// The log prefix (without `: `).
    pub log_prefix: String,
}

/// What an ipset a rule uses holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetSource {
    /// The addresses of every entity the selector matches.
    Selector(Selector),
    /// `address,protocol:port` of every named port `name` (of `protocol`, or any) of the
    /// entities the selector matches.
    NamedPort {
        /// The entities.
        selector: Selector,
        /// The rule's protocol, if it has one with ports.
        protocol: Option<PortProtocol>,
        /// The port name.
        name: String,
    },
    /// Fixed networks (one family).
    Nets(Vec<IpNet>),
}

/// An ipset a rule needs in one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetNeed {
    /// The set id.
    pub id: String,
    /// The family.
    pub family: IpFamily,
    /// What it holds.
    pub source: SetSource,
}

/// The id of the ipset for `selector`.
pub fn selector_id(selector: &Selector) -> String {
    selector_set_id(&selector.unique_id())
}

fn named_port_source(
    side: &EntityMatch,
    protocol: Option<Protocol>,
    name: &str,
) -> (String, SetSource) {
    let selector = side.selector.clone().unwrap_or_else(Selector::all);
    let protocol = protocol.and_then(|p| PortProtocol::from_number(p.number()));
    let id = named_port_set_id(
        &selector.unique_id(),
        protocol.map_or("any", PortProtocol::as_str),
        name,
    );
    (
        id,
        SetSource::NamedPort {
            selector,
            protocol,
            name: name.to_string(),
        },
    )
}

/// How a list of nets is matched in one family.
enum NetMatch {
    None,
    Single(IpNet),
    Set(String, Vec<IpNet>),
}

fn net_match(nets: &[IpNet], allow_single: bool) -> NetMatch {
    match nets {
        [] => NetMatch::None,
        [one] if allow_single => NetMatch::Single(*one),
        many => {
            let mut members: Vec<IpNet> = many.iter().flat_map(|n| split_zero(*n)).collect();
            members.sort();
            members.dedup();
            let text: Vec<String> = members.iter().map(ToString::to_string).collect();
            NetMatch::Set(net_set_id(&text.join(",")), members)
        }
    }
}

/// A rule side after filtering its nets to one family.
struct Side<'a> {
    m: &'a EntityMatch,
    nets: NetMatch,
    not_nets: NetMatch,
}

/// The rule as it applies to one family, or `None` when it does not apply there.
struct FamilyRule<'a> {
    rule: &'a CompiledRule,
    family: IpFamily,
    src: Side<'a>,
    dst: Side<'a>,
    /// `! -p` when it adds anything.
    not_protocol: Option<Protocol>,
}

/// Calico's per-version filtering: keep only the family's nets; a side whose (negated or not)
/// nets are all of the other family makes the rule not apply to this family.
fn filter_nets(nets: &[IpNet], family: IpFamily) -> Option<Vec<IpNet>> {
    if nets.is_empty() {
        return Some(Vec::new());
    }
    let kept: Vec<IpNet> = nets
        .iter()
        .copied()
        .filter(|n| IpFamily::of_net(n) == family)
        .collect();
    (!kept.is_empty()).then_some(kept)
}

fn is_family_protocol(p: Protocol, family: IpFamily) -> bool {
    !((p.is_icmp() && family == IpFamily::V6) || (p.is_icmpv6() && family == IpFamily::V4))
}

fn side(m: &EntityMatch, family: IpFamily) -> Option<Side<'_>> {
    let nets = filter_nets(&m.nets, family)?;
    let not_nets = filter_nets(&m.not_nets, family)?;
    let pos = net_match(&nets, true);
    let single_used = matches!(pos, NetMatch::Single(_));
    Some(Side {
        m,
        nets: pos,
        not_nets: net_match(&not_nets, !single_used),
    })
}

fn for_family(rule: &CompiledRule, family: IpFamily) -> Option<FamilyRule<'_>> {
    if rule.unsupported.is_some() {
        return None;
    }
    if rule.ip_version.is_some_and(|v| v != family.version()) {
        return None;
    }
    if rule
        .protocol
        .is_some_and(|p| !is_family_protocol(p, family))
    {
        return None;
    }
    let not_protocol = match (rule.protocol, rule.not_protocol) {
        (Some(p), Some(np)) if p.number() == np.number() => return None,
        (Some(_), Some(_)) => None,
        (None, np) => np,
        (Some(_), None) => None,
    };
    Some(FamilyRule {
        rule,
        family,
        src: side(&rule.src, family)?,
        dst: side(&rule.dst, family)?,
        not_protocol,
    })
}

/// The ipsets `rule` needs when rendered for `family`.
pub fn rule_sets(rule: &CompiledRule, family: IpFamily) -> Vec<SetNeed> {
    let Some(fr) = for_family(rule, family) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in [&fr.src, &fr.dst] {
        for nm in [&s.nets, &s.not_nets] {
            if let NetMatch::Set(id, members) = nm {
                out.push(SetNeed {
                    id: id.clone(),
                    family,
                    source: SetSource::Nets(members.clone()),
                });
            }
        }
        for sel in [&s.m.selector, &s.m.not_selector].into_iter().flatten() {
            out.push(SetNeed {
                id: selector_id(sel),
                family,
                source: SetSource::Selector(sel.clone()),
            });
        }
        for name in s.m.named_ports.iter().chain(&s.m.not_named_ports) {
            let (id, source) = named_port_source(s.m, rule.protocol, name);
            out.push(SetNeed { id, family, source });
        }
    }
    out
}

fn protocol_name(p: Protocol) -> String {
    match p.number() {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        136 => "udplite".into(),
        n => n.to_string(),
    }
}

fn ports_text(ports: &[(u16, u16)]) -> String {
    ports
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}:{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits ports into groups that fit one multiport match (15 slots; a range takes two).
pub fn split_ports(ports: &[(u16, u16)]) -> Vec<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut free = 15;
    for &(lo, hi) in ports {
        let need = if lo == hi { 1 } else { 2 };
        if need > free {
            out.push(std::mem::take(&mut cur));
            free = 15;
        }
        cur.push((lo, hi));
        free -= need;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One alternative of a side's positive port match.
enum PortAlt {
    Numeric(Vec<(u16, u16)>),
    Named(String),
}

fn port_alts(m: &EntityMatch) -> Vec<Option<PortAlt>> {
    let mut alts: Vec<Option<PortAlt>> = split_ports(&m.ports)
        .into_iter()
        .map(|s| Some(PortAlt::Numeric(s)))
        .collect();
    alts.extend(
        m.named_ports
            .iter()
            .map(|n| Some(PortAlt::Named(n.clone()))),
    );
    if alts.is_empty() {
        alts.push(None);
    }
    alts
}

fn icmp_text(icmp: IcmpMatch, family: IpFamily, negated: bool) -> String {
    let value = match icmp.code {
        Some(c) => format!("{}/{c}", icmp.icmp_type),
        None => icmp.icmp_type.to_string(),
    };
    let not = if negated { "! " } else { "" };
    match family {
        IpFamily::V4 => format!("-m icmp {not}--icmp-type {value}"),
        IpFamily::V6 => format!("-m icmp6 {not}--icmpv6-type {value}"),
    }
}

struct MatchBuilder<'a> {
    fr: &'a FamilyRule<'a>,
    parts: Vec<String>,
}

impl MatchBuilder<'_> {
    fn set(&mut self, id: &str, negated: bool, dir: &str) {
        let not = if negated { "! " } else { "" };
        self.parts.push(format!(
            "-m set {not}--match-set {} {dir}",
            ipset_name(self.fr.family, id)
        ));
    }

    fn nets(&mut self, nm: &NetMatch, negated: bool, src: bool) {
        let (flag, dir) = if src { ("-s", "src") } else { ("-d", "dst") };
        match nm {
            NetMatch::None => {}
            NetMatch::Single(n) => {
                let not = if negated { "! " } else { "" };
                self.parts.push(format!("{not}{flag} {n}"));
            }
            NetMatch::Set(id, _) => self.set(id, negated, dir),
        }
    }

    fn positive(&mut self, side: &Side<'_>, alt: &Option<PortAlt>, src: bool) {
        let dir = if src { "src" } else { "dst" };
        self.nets(&side.nets, false, src);
        if let Some(sel) = &side.m.selector {
            self.set(&selector_id(sel), false, dir);
        }
        match alt {
            None => {}
            Some(PortAlt::Numeric(ports)) => {
                let flag = if src { "--sports" } else { "--dports" };
                self.parts
                    .push(format!("-m multiport {flag} {}", ports_text(ports)));
            }
            Some(PortAlt::Named(name)) => {
                let (id, _) = named_port_source(side.m, self.fr.rule.protocol, name);
                self.set(&id, false, &format!("{dir},{dir}"));
            }
        }
    }

    fn negative(&mut self, side: &Side<'_>, src: bool) {
        let dir = if src { "src" } else { "dst" };
        self.nets(&side.not_nets, true, src);
        if let Some(sel) = &side.m.not_selector {
            self.set(&selector_id(sel), true, dir);
        }
        let flag = if src { "--sports" } else { "--dports" };
        for split in split_ports(&side.m.not_ports) {
            self.parts
                .push(format!("-m multiport ! {flag} {}", ports_text(&split)));
        }
        for name in &side.m.not_named_ports {
            let (id, _) = named_port_source(side.m, self.fr.rule.protocol, name);
            self.set(&id, true, &format!("{dir},{dir}"));
        }
    }
}

fn match_text(fr: &FamilyRule<'_>, src_alt: &Option<PortAlt>, dst_alt: &Option<PortAlt>) -> String {
    let mut b = MatchBuilder {
        fr,
        parts: Vec::new(),
    };
    let rule = fr.rule;
    if let Some(p) = rule.protocol {
        b.parts.push(format!("-p {}", protocol_name(p)));
    }
    b.positive(&fr.src, src_alt, true);
    b.positive(&fr.dst, dst_alt, false);
    if let Some(icmp) = rule.icmp {
        b.parts.push(icmp_text(icmp, fr.family, false));
    }
    if let Some(np) = fr.not_protocol {
        b.parts.push(format!("! -p {}", protocol_name(np)));
    }
    b.negative(&fr.src, true);
    b.negative(&fr.dst, false);
    if let Some(icmp) = rule.not_icmp {
        b.parts.push(icmp_text(icmp, fr.family, true));
    }
    b.parts.join(" ")
}

fn with_match(m: &str, target: &str) -> String {
    if m.is_empty() {
        target.to_string()
    } else {
        format!("{m} {target}")
    }
}

/// `-m mark --mark <bit>/<bit>`.
pub fn mark_set(bit: u32) -> String {
    format!("-m mark --mark {bit:#x}/{bit:#x}")
}

/// `-m mark --mark 0x0/<bit>`.
pub fn mark_clear(bit: u32) -> String {
    format!("-m mark --mark 0x0/{bit:#x}")
}

/// `-j MARK --set-xmark <bit>/<bit>`.
pub fn set_mark(bit: u32) -> String {
    format!("-j MARK --set-xmark {bit:#x}/{bit:#x}")
}

/// `-j MARK --set-xmark 0x0/<bits>`.
pub fn clear_mark(bits: u32) -> String {
    format!("-j MARK --set-xmark 0x0/{bits:#x}")
}

/// `-m comment --comment "<text>"` with the text reduced to safe characters.
pub fn comment(text: &str) -> String {
    let safe: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ./_-=,()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    format!("-m comment --comment \"{safe}\"")
}

/// The iptables rules for `rule` in `family` (none when it does not apply there).
pub fn render_rule(rule: &CompiledRule, family: IpFamily, ctx: &RuleContext) -> Vec<String> {
    let Some(fr) = for_family(rule, family) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in &port_alts(&rule.src) {
        for d in &port_alts(&rule.dst) {
            let m = match_text(&fr, s, d);
            match rule.action {
                Action::Allow | Action::Pass => {
                    let bit = if rule.action == Action::Allow {
                        ctx.mark_accept
                    } else {
                        ctx.mark_pass
                    };
                    out.push(with_match(&m, &set_mark(bit)));
                    out.push(format!("{} -j RETURN", mark_set(bit)));
                }
                Action::Deny => out.push(with_match(&m, "-j DROP")),
                Action::Log => out.push(with_match(
                    &m,
                    &format!("-j LOG --log-prefix \"{}: \" --log-level 5", ctx.log_prefix),
                )),
            }
        }
    }
    out
}

/// The rules of a policy or profile chain: each rule rendered, trailing `RETURN`s dropped (a
/// chain returns at its end anyway), and `chain_comment` on the first rule.
pub fn render_rules(
    rules: &[CompiledRule],
    family: IpFamily,
    ctx: &RuleContext,
    chain_comment: &str,
) -> Vec<String> {
    let mut out: Vec<String> = rules
        .iter()
        .flat_map(|r| render_rule(r, family, ctx))
        .collect();
    while out.last().is_some_and(|r| r.ends_with("-j RETURN")) {
        out.pop();
    }
    let c = comment(chain_comment);
    match out.first_mut() {
        Some(first) => *first = format!("{c} {first}"),
        None => out.push(c),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_api::Rule;

    fn ctx() -> RuleContext {
        RuleContext {
            mark_accept: 0x10000,
            mark_pass: 0x20000,
            log_prefix: "calico-packet".into(),
        }
    }

    fn compiled(r: &Rule) -> CompiledRule {
        crate::model::rule::compile("r", r, None).unwrap()
    }

    #[test]
    fn more_than_fifteen_port_slots_are_split() {
        let ports: Vec<(u16, u16)> = (1..=14).map(|p| (p, p)).chain([(100, 200)]).collect();
        let s = split_ports(&ports);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].len(), 14);
        assert_eq!(s[1], vec![(100, 200)]);
    }

    #[test]
    fn a_rule_with_nets_of_the_other_family_only_is_not_rendered() {
        let mut r = Rule::new(Action::Allow);
        r.source.nets = vec!["fd00::/64".into()];
        let c = compiled(&r);
        assert!(render_rule(&c, IpFamily::V4, &ctx()).is_empty());
        assert_eq!(
            render_rule(&c, IpFamily::V6, &ctx()),
            vec![
                "-s fd00::/64 -j MARK --set-xmark 0x10000/0x10000".to_string(),
                "-m mark --mark 0x10000/0x10000 -j RETURN".into()
            ]
        );
    }

    #[test]
    fn several_nets_use_a_net_set_and_a_negated_single_net_a_plain_match() {
        let mut r = Rule::new(Action::Deny);
        r.source.nets = vec!["10.0.0.0/8".into(), "0.0.0.0/0".into()];
        r.destination.not_nets = vec!["192.0.2.0/24".into()];
        let c = compiled(&r);
        let rules = render_rule(&c, IpFamily::V4, &ctx());
        assert_eq!(rules.len(), 1);
        assert!(
            rules[0].starts_with("-m set --match-set cali40c:"),
            "{}",
            rules[0]
        );
        assert!(
            rules[0].ends_with(" src ! -d 192.0.2.0/24 -j DROP"),
            "{}",
            rules[0]
        );
        let sets = rule_sets(&c, IpFamily::V4);
        assert_eq!(sets.len(), 1);
        let SetSource::Nets(members) = &sets[0].source else {
            panic!("{sets:?}")
        };
        assert_eq!(members.len(), 3, "0.0.0.0/0 split in two: {members:?}");
    }

    #[test]
    fn icmp_rules_render_only_in_their_family() {
        let mut r = Rule::new(Action::Allow);
        r.protocol = Some(Protocol::Icmp);
        r.icmp = Some(fabric_api::rule::ICMPFields {
            icmp_type: Some(8),
            code: Some(0),
        });
        let c = compiled(&r);
        assert!(render_rule(&c, IpFamily::V6, &ctx()).is_empty());
        assert_eq!(
            render_rule(&c, IpFamily::V4, &ctx())[0],
            "-p icmp -m icmp --icmp-type 8/0 -j MARK --set-xmark 0x10000/0x10000"
        );
    }

    #[test]
    fn comments_keep_only_safe_characters() {
        assert_eq!(
            comment("Policy a/b \"x\" cali:y"),
            "-m comment --comment \"Policy a/b _x_ cali_y\""
        );
    }
}
