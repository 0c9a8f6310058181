//! `BGPFilter`: ordered import/export rules (per address family) that peers reference by name.

use serde::{Deserialize, Serialize};

use crate::bgp::config::MAX_ROUTE_PRIORITY;
use crate::bgp::{ASNumber, CommunityValue, check_as_number};
use crate::error::{Errors, index, join};
use crate::resource::{Rules, resource};
use crate::validate::check_range;
use crate::validate::cidr::check_net_family;
use crate::validate::names::{check_name, is_interface_pattern};

resource!(
    /// Import and export rules for BGP peers.
    BGPFilter,
    BGPFilterSpec
);

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BGPFilterAction {
    /// Accept the route (after any operations).
    Accept,
    /// Reject the route.
    Reject,
}

/// How a route's prefix is compared with the rule's CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BGPFilterMatchOperator {
    /// Exactly the CIDR.
    Equal,
    /// Anything but the CIDR.
    NotEqual,
    /// Inside the CIDR (or equal).
    In,
    /// Outside the CIDR.
    NotIn,
}

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BGPFilterMatchSource {
    /// Learned from BGP peers (not originated locally).
    RemotePeers,
}

/// Kind of peer a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BGPFilterPeerType {
    /// External BGP peers.
    #[serde(rename = "eBGP")]
    EBgp,
    /// Internal BGP peers.
    #[serde(rename = "iBGP")]
    IBgp,
}

/// `BGPFilter.spec`: four ordered rule lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterSpec {
    /// IPv4 routes exported to a peer.
    #[serde(default, rename = "exportV4", skip_serializing_if = "Vec::is_empty")]
    pub export_v4: Vec<BGPFilterRule>,
    /// IPv4 routes imported from a peer.
    #[serde(default, rename = "importV4", skip_serializing_if = "Vec::is_empty")]
    pub import_v4: Vec<BGPFilterRule>,
    /// IPv6 routes exported to a peer.
    #[serde(default, rename = "exportV6", skip_serializing_if = "Vec::is_empty")]
    pub export_v6: Vec<BGPFilterRule>,
    /// IPv6 routes imported from a peer.
    #[serde(default, rename = "importV6", skip_serializing_if = "Vec::is_empty")]
    pub import_v6: Vec<BGPFilterRule>,
}

/// Prefix-length bounds for a CIDR match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BGPFilterPrefixLength {
    /// Shortest prefix length matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i32>,
    /// Longest prefix length matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i32>,
}

/// Community match: exactly one value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BGPFilterCommunityMatch {
    /// Community values (`aa:nn` or `aa:nn:mm`).
    #[serde(default)]
    pub values: Vec<String>,
}

/// One route modification; exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterOperation {
    /// Add a community.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_community: Option<BGPFilterAddCommunity>,
    /// Prepend AS numbers to the AS path.
    #[serde(
        default,
        rename = "prependASPath",
        skip_serializing_if = "Option::is_none"
    )]
    pub prepend_as_path: Option<BGPFilterPrependASPath>,
    /// Set the route priority (metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_priority: Option<BGPFilterSetPriority>,
}

/// `addCommunity` operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BGPFilterAddCommunity {
    /// Community value.
    #[serde(default)]
    pub value: String,
}

/// `prependASPath` operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BGPFilterPrependASPath {
    /// AS numbers to prepend, in order (1-10).
    #[serde(default)]
    pub prefix: Vec<ASNumber>,
}

/// `setPriority` operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BGPFilterSetPriority {
    /// Priority (metric), 1-2147483646.
    #[serde(default)]
    pub value: i64,
}

/// One filter rule (the same shape for IPv4 and IPv6 lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterRule {
    /// CIDR to match (with `matchOperator`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    /// Prefix-length bounds (requires `cidr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<BGPFilterPrefixLength>,
    /// Route source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<BGPFilterMatchSource>,
    /// Outgoing interface pattern (`*` wildcards).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    /// How `cidr` is compared (required with `cidr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_operator: Option<BGPFilterMatchOperator>,
    /// Peer type the rule applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_type: Option<BGPFilterPeerType>,
    /// Community the route must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<BGPFilterCommunityMatch>,
    /// AS numbers the AS path must start with.
    #[serde(
        default,
        rename = "asPathPrefix",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub as_path_prefix: Vec<ASNumber>,
    /// Route priority to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// What to do with a matching route (required).
    pub action: BGPFilterAction,
    /// Modifications applied before accepting (Accept only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<BGPFilterOperation>,
}

impl Rules for BGPFilter {
    fn defaults(&mut self) {}

    fn check(&self, errs: &mut Errors) {
        check_name(errs, "metadata.name", self.metadata.name_str());
        let s = &self.spec;
        for (field, rules, v) in [
            ("spec.exportV4", &s.export_v4, 4u8),
            ("spec.importV4", &s.import_v4, 4),
            ("spec.exportV6", &s.export_v6, 6),
            ("spec.importV6", &s.import_v6, 6),
        ] {
            for (i, r) in rules.iter().enumerate() {
                check_rule(errs, &index(field, i), r, v);
            }
        }
    }
}

fn check_community(errs: &mut Errors, field: &str, value: &str) {
    if let Err(rule) = CommunityValue::parse(value) {
        errs.add(field, value, rule);
    }
}

fn check_rule(errs: &mut Errors, f: &str, r: &BGPFilterRule, v: u8) {
    let max_len: i32 = if v == 4 { 32 } else { 128 };
    if !r.cidr.is_empty() {
        check_net_family(errs, &join(f, "cidr"), &r.cidr, v);
    }
    match (r.cidr.is_empty(), r.match_operator.is_some()) {
        (false, false) => errs.rule(
            join(f, "matchOperator"),
            "is required when cidr is set (Equal, NotEqual, In or NotIn)",
        ),
        (true, true) => errs.rule(join(f, "cidr"), "is required when matchOperator is set"),
        _ => {}
    }
    if let Some(pl) = &r.prefix_length {
        let pf = join(f, "prefixLength");
        if r.cidr.is_empty() {
            errs.rule(&pf, "requires cidr");
        }
        for (name, value) in [("min", pl.min), ("max", pl.max)] {
            if let Some(n) = value {
                check_range(errs, &join(&pf, name), i64::from(n), 0, i64::from(max_len));
            }
        }
        if let (Some(min), Some(max)) = (pl.min, pl.max)
            && min > max
        {
            errs.add(
                join(&pf, "min"),
                min.to_string(),
                format!("is greater than max ({max})"),
            );
        }
    }
    if !r.interface.is_empty() && r.interface != "*" && !is_interface_pattern(&r.interface) {
        errs.add(
            join(f, "interface"),
            r.interface.as_str(),
            "is not a valid interface pattern: 1-15 of [a-zA-Z0-9_.*-]",
        );
    }
    if let Some(c) = &r.communities {
        let cf = join(f, "communities.values");
        if c.values.len() != 1 {
            errs.rule(&cf, "must hold exactly one community value");
        }
        for (i, value) in c.values.iter().enumerate() {
            check_community(errs, &index(&cf, i), value);
        }
    }
    for (i, a) in r.as_path_prefix.iter().enumerate() {
        check_as_number(errs, &index(&join(f, "asPathPrefix"), i), Some(*a));
    }
    if let Some(p) = r.priority {
        check_range(errs, &join(f, "priority"), p, 1, MAX_ROUTE_PRIORITY);
    }
    check_operations(errs, f, r);
}

fn check_operations(errs: &mut Errors, f: &str, r: &BGPFilterRule) {
    if r.operations.is_empty() {
        return;
    }
    let of = join(f, "operations");
    if r.action != BGPFilterAction::Accept {
        errs.rule(&of, "may only be used with action Accept");
    }
    if r.operations.len() > 10 {
        errs.rule(&of, "has more than 10 items");
    }
    for (i, op) in r.operations.iter().enumerate() {
        let opf = index(&of, i);
        let set = usize::from(op.add_community.is_some())
            + usize::from(op.prepend_as_path.is_some())
            + usize::from(op.set_priority.is_some());
        if set != 1 {
            errs.rule(
                &opf,
                "must set exactly one of addCommunity, prependASPath, setPriority",
            );
        }
        if let Some(ac) = &op.add_community {
            check_community(errs, &join(&opf, "addCommunity.value"), &ac.value);
        }
        if let Some(pp) = &op.prepend_as_path {
            let pf = join(&opf, "prependASPath.prefix");
            if pp.prefix.is_empty() || pp.prefix.len() > 10 {
                errs.rule(&pf, "must hold 1-10 AS numbers");
            }
            for (j, a) in pp.prefix.iter().enumerate() {
                check_as_number(errs, &index(&pf, j), Some(*a));
            }
        }
        if let Some(sp) = &op.set_priority {
            check_range(
                errs,
                &join(&opf, "setPriority.value"),
                sp.value,
                1,
                MAX_ROUTE_PRIORITY,
            );
        }
    }
}
