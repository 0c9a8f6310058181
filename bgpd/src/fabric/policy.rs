//! Import and export policies: Calico's fixed rules around each peer's BGPFilters, translated
//! into bgpd's ordered rules (first match decides).
//!
//! Import: reject our own blocks (exact prefix: another node may still announce a block that
//! moved to us), then the filters' `importV4`/`importV6` rules, then accept.
//! Export: reject `disableBGPExport` pools, then the filters' `exportV4`/`exportV6` rules, then
//! accept the service ranges and the pools, then reject.

use std::collections::BTreeMap;

use bgp_wire::{Community, LargeCommunity};
use fabric_api::bgp::CommunityValue;
use fabric_api::bgp::filter::{
    BGPFilterAction, BGPFilterMatchOperator, BGPFilterMatchSource, BGPFilterPeerType, BGPFilterRule,
};
use ipnet::IpNet;

use super::exports::Exports;
use super::{FabricInput, FabricWarning};
use crate::config::{
    FamilyName, PeerTypeName, PolicyConfig, PrefixMatchOp, RouteSourceName, RuleConfig, Verdict,
};

/// The largest priority (metric) Calico maps onto LOCAL_PREF: `local_pref = 2^31 - 1 - prio`.
const PRIORITY_BASE: i64 = 2_147_483_647;

/// Import and export rules of one BGPFilter.
#[derive(Debug, Clone, Default)]
struct FilterRules {
    import: Vec<RuleConfig>,
    export: Vec<RuleConfig>,
}

/// Builds the named policies the neighbours refer to, sharing identical ones.
pub(crate) struct Policies<'a> {
    input: &'a FabricInput,
    import_head: Vec<RuleConfig>,
    export_head: Vec<RuleConfig>,
    export_tail: Vec<RuleConfig>,
    filters: BTreeMap<String, FilterRules>,
    map: BTreeMap<String, PolicyConfig>,
    warnings: &'a mut Vec<FabricWarning>,
}

fn prefix_rule(prefix: IpNet, op: PrefixMatchOp, action: Verdict) -> RuleConfig {
    RuleConfig {
        prefix: Some(prefix),
        prefix_op: op,
        action,
        ..RuleConfig::default()
    }
}

impl<'a> Policies<'a> {
    pub(crate) fn new(
        input: &'a FabricInput,
        exports: &Exports,
        warnings: &'a mut Vec<FabricWarning>,
    ) -> Policies<'a> {
        let import_head = exports
            .own_blocks
            .iter()
            .map(|b| prefix_rule(*b, PrefixMatchOp::Equal, Verdict::Reject))
            .collect();
        let export_head = exports
            .pools
            .iter()
            .filter(|p| p.disable_bgp_export)
            .map(|p| prefix_rule(p.cidr, PrefixMatchOp::In, Verdict::Reject))
            .collect();
        let mut export_tail: Vec<RuleConfig> = exports
            .service_ranges
            .iter()
            .map(|r| prefix_rule(*r, PrefixMatchOp::In, Verdict::Accept))
            .collect();
        export_tail.extend(
            exports
                .pools
                .iter()
                .filter(|p| !p.disable_bgp_export)
                .map(|p| prefix_rule(p.cidr, PrefixMatchOp::In, Verdict::Accept)),
        );
        Policies {
            input,
            import_head,
            export_head,
            export_tail,
            filters: BTreeMap::new(),
            map: BTreeMap::new(),
            warnings,
        }
    }

    /// The (import, export) policy names for a peering with these BGPFilters; `source` names
    /// the BGPPeer for warnings about missing filters.
    pub(crate) fn for_filters(&mut self, names: &[String], source: &str) -> (String, String) {
        let mut used = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if !self.filters.contains_key(name) {
                match self.input.filters.get(name) {
                    Some(f) => {
                        let rules = translate(name, &f.spec, self.warnings);
                        self.filters.insert(name.clone(), rules);
                    }
                    None => {
                        self.warnings.push(FabricWarning::new(
                            source,
                            format!("spec.filters[{i}]"),
                            format!("no BGPFilter named {name:?}; the peering uses the remaining filters"),
                        ));
                        continue;
                    }
                }
            }
            used.push(name.clone());
        }
        let suffix = if used.is_empty() {
            String::new()
        } else {
            format!("/{}", used.join(","))
        };
        let import_name = format!("calico-import{suffix}");
        let export_name = format!("calico-export{suffix}");
        if !self.map.contains_key(&import_name) {
            let mut rules = self.import_head.clone();
            let mut export = self.export_head.clone();
            for name in &used {
                if let Some(f) = self.filters.get(name) {
                    rules.extend(f.import.iter().cloned());
                    export.extend(f.export.iter().cloned());
                }
            }
            export.extend(self.export_tail.iter().cloned());
            self.map.insert(
                import_name.clone(),
                PolicyConfig {
                    default: Verdict::Accept,
                    rules,
                },
            );
            self.map.insert(
                export_name.clone(),
                PolicyConfig {
                    default: Verdict::Reject,
                    rules: export,
                },
            );
        }
        (import_name, export_name)
    }

    pub(crate) fn into_map(self) -> BTreeMap<String, PolicyConfig> {
        self.map
    }
}

fn translate(
    name: &str,
    spec: &fabric_api::BGPFilterSpec,
    warnings: &mut Vec<FabricWarning>,
) -> FilterRules {
    let resource = format!("BGPFilter/{name}");
    let mut out = FilterRules::default();
    for (field, rules, family, import) in [
        ("spec.importV4", &spec.import_v4, FamilyName::Ipv4, true),
        ("spec.importV6", &spec.import_v6, FamilyName::Ipv6, true),
        ("spec.exportV4", &spec.export_v4, FamilyName::Ipv4, false),
        ("spec.exportV6", &spec.export_v6, FamilyName::Ipv6, false),
    ] {
        for (i, r) in rules.iter().enumerate() {
            let path = format!("{field}[{i}]");
            let mut warn = |f: &str, m: String| {
                warnings.push(FabricWarning::new(&resource, format!("{path}.{f}"), m));
            };
            if let Some(rule) = translate_rule(r, family, &mut warn) {
                if import {
                    out.import.push(rule);
                } else {
                    out.export.push(rule);
                }
            }
        }
    }
    out
}

/// One BGPFilter rule as a bgpd rule; `None` (with a warning) when bgpd cannot express its
/// match. Operations bgpd cannot apply are dropped with a warning.
fn translate_rule(
    r: &BGPFilterRule,
    family: FamilyName,
    warn: &mut dyn FnMut(&str, String),
) -> Option<RuleConfig> {
    const SKIPPED: &str = "the rule is left out";
    let mut rule = RuleConfig {
        family: Some(family),
        ..RuleConfig::default()
    };
    if !r.interface.is_empty() {
        warn(
            "interface",
            format!(
                "{:?}: bgpd's policy cannot match the interface of a route; {SKIPPED}",
                r.interface
            ),
        );
        return None;
    }
    if let Some(p) = r.priority {
        warn(
            "priority",
            format!("{p}: bgpd's policy cannot match a route's priority; {SKIPPED}"),
        );
        return None;
    }
    if !r.cidr.is_empty() {
        let Ok(cidr) = r.cidr.parse::<IpNet>() else {
            warn("cidr", format!("{:?} is not a CIDR; {SKIPPED}", r.cidr));
            return None;
        };
        let cidr = cidr.trunc();
        rule.prefix = Some(cidr);
        rule.prefix_op = match r.match_operator.unwrap_or(BGPFilterMatchOperator::In) {
            BGPFilterMatchOperator::Equal => PrefixMatchOp::Equal,
            BGPFilterMatchOperator::NotEqual => PrefixMatchOp::NotEqual,
            BGPFilterMatchOperator::In => PrefixMatchOp::In,
            BGPFilterMatchOperator::NotIn => PrefixMatchOp::NotIn,
        };
        if let Some(pl) = &r.prefix_length {
            if !matches!(rule.prefix_op, PrefixMatchOp::In | PrefixMatchOp::NotIn) {
                warn(
                    "prefixLength",
                    format!(
                        "bgpd matches prefix lengths with matchOperator In or NotIn only; {SKIPPED}"
                    ),
                );
                return None;
            }
            let len = cidr.prefix_len();
            let maxlen = cidr.max_prefix_len();
            let clamp = |v: i32| u8::try_from(v.clamp(0, i32::from(maxlen))).unwrap_or(maxlen);
            let mut min = pl.min.map_or(len, clamp);
            let max = pl.max.map_or(maxlen, clamp);
            if min < len {
                warn(
                    "prefixLength.min",
                    format!(
                        "{min} is shorter than the CIDR's own length; prefixes inside {cidr} are at least /{len}, so /{len} is used"
                    ),
                );
                min = len;
            }
            if min > max {
                warn(
                    "prefixLength",
                    format!("min {min} is greater than max {max}; {SKIPPED}"),
                );
                return None;
            }
            rule.prefix_length = Some([min, max]);
        }
    }
    if let Some(BGPFilterMatchSource::RemotePeers) = r.source {
        rule.source = Some(RouteSourceName::Remote);
    }
    rule.peer_type = r.peer_type.map(|t| match t {
        BGPFilterPeerType::IBgp => PeerTypeName::Ibgp,
        BGPFilterPeerType::EBgp => PeerTypeName::Ebgp,
    });
    if let Some(c) = &r.communities {
        for v in &c.values {
            match CommunityValue::parse(v) {
                Ok(CommunityValue::Standard(a, b)) => rule
                    .community
                    .push(Community((u32::from(a) << 16) | u32::from(b))),
                Ok(CommunityValue::Large(a, b, c)) => rule.large_community.push(LargeCommunity {
                    global_admin: a,
                    local_data_1: b,
                    local_data_2: c,
                }),
                Err(e) => {
                    warn("communities.values", format!("{v:?} {e}; {SKIPPED}"));
                    return None;
                }
            }
        }
    }
    if !r.as_path_prefix.is_empty() {
        rule.as_path_prefix = Some(r.as_path_prefix.iter().map(|a| a.get()).collect());
    }
    rule.action = match r.action {
        BGPFilterAction::Accept => Verdict::Accept,
        BGPFilterAction::Reject => Verdict::Reject,
    };
    if rule.action == Verdict::Reject {
        if !r.operations.is_empty() {
            warn(
                "operations",
                "a rejected route is not changed; the operations are left out".into(),
            );
        }
        return Some(rule);
    }
    for (i, op) in r.operations.iter().enumerate() {
        if let Some(add) = &op.add_community {
            match CommunityValue::parse(&add.value) {
                Ok(CommunityValue::Standard(a, b)) => rule
                    .add_community
                    .push(Community((u32::from(a) << 16) | u32::from(b))),
                Ok(CommunityValue::Large(a, b, c)) => {
                    rule.add_large_community.push(LargeCommunity {
                        global_admin: a,
                        local_data_1: b,
                        local_data_2: c,
                    })
                }
                Err(e) => warn(
                    &format!("operations[{i}].addCommunity.value"),
                    format!("{:?} {e}; the operation is left out", add.value),
                ),
            }
        }
        if let Some(p) = &op.prepend_as_path {
            let first = p.prefix.first().map(|a| a.get());
            let same = p.prefix.iter().all(|a| Some(a.get()) == first);
            match (first, same, rule.prepend) {
                (Some(asn), true, None) => {
                    rule.prepend = u8::try_from(p.prefix.len()).ok().filter(|n| *n <= 32);
                    rule.prepend_asn = rule.prepend.map(|_| asn);
                    if rule.prepend.is_none() {
                        warn(
                            &format!("operations[{i}].prependASPath.prefix"),
                            "bgpd prepends at most 32 times; the operation is left out".into(),
                        );
                    }
                }
                (Some(_), _, _) => warn(
                    &format!("operations[{i}].prependASPath.prefix"),
                    "bgpd prepends one AS number (repeated) once per rule; a list of different AS numbers, or a second prepend, is left out".into(),
                ),
                (None, _, _) => {}
            }
        }
        if let Some(sp) = &op.set_priority {
            match u32::try_from(PRIORITY_BASE - sp.value) {
                Ok(lp) if sp.value >= 1 => rule.set_local_pref = Some(lp),
                _ => warn(
                    &format!("operations[{i}].setPriority.value"),
                    format!(
                        "{} is outside 1..=2147483646; the operation is left out",
                        sp.value
                    ),
                ),
            }
        }
    }
    Some(rule)
}
