//! Calico policies: `NetworkPolicy`, `GlobalNetworkPolicy` and their staged variants, with
//! tier and `types` defaulting and Calico's policy checks.

use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Errors, index};
use crate::is_false;
use crate::meta::ObjectMeta;
use crate::resource::{Rules, resource};
use crate::rule::{PolicyType, Rule, RuleContext, check_rules};
use crate::validate::check_selector_without_global;
use crate::validate::names::{
    check_global_network_policy_name, check_name, check_network_policy_name,
};

/// The tier policies belong to when `tier` is unset.
pub const DEFAULT_TIER: &str = "default";
/// Label Calico puts on every policy naming its tier.
pub const TIER_LABEL: &str = "projectcalico.org/tier";

/// A hint to the policy engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PolicyPerformanceHint {
    /// Program the policy on every node, whether or not a local endpoint matches.
    AssumeNeededOnEveryNode,
}

/// What a staged policy would do when enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum StagedAction {
    /// Create or replace the enforced policy.
    #[default]
    Set,
    /// Delete the enforced policy.
    Delete,
    /// Learn.
    Learn,
    /// Ignore.
    Ignore,
}

/// Serializes an order as an integer when it is one (`100`, not `100.0`).
pub(crate) fn serialize_order<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(o) if o.fract() == 0.0 && o.abs() < 9.0e15 => {
            // In range and integral, so the conversion is exact.
            #[allow(clippy::cast_possible_truncation)]
            s.serialize_i64(*o as i64)
        }
        Some(o) => s.serialize_f64(*o),
        None => s.serialize_none(),
    }
}

/// Defines a policy spec: the fields every policy shape shares, in Calico's JSON order, with
/// the shape's extra fields at their places (`lead` first, `global` after `types`, `scope`
/// after `serviceAccountSelector`).
macro_rules! policy_spec {
    (
        $(#[$doc:meta])* $name:ident {
            lead: [$($(#[$ldoc:meta])* $lfield:ident : $lty:ty = $lattr:tt),* $(,)?],
            global: [$($(#[$gdoc:meta])* $gfield:ident : $gty:ty = $gattr:tt),* $(,)?],
            scope: [$($(#[$sdoc:meta])* $sfield:ident : $sty:ty = $sattr:tt),* $(,)?] $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $($(#[$ldoc])* #[serde $lattr] pub $lfield: $lty,)*
            /// Tier (default `default`).
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub tier: String,
            /// Order within the tier (unset: last).
            #[serde(
                default,
                serialize_with = "serialize_order",
                skip_serializing_if = "Option::is_none"
            )]
            pub order: Option<f64>,
            /// Ingress rules.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub ingress: Vec<Rule>,
            /// Egress rules.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub egress: Vec<Rule>,
            /// Endpoints the policy applies to (empty: all).
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub selector: String,
            /// Directions (inferred from the rules when unset, except for a staged delete).
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub types: Vec<PolicyType>,
            $($(#[$gdoc])* #[serde $gattr] pub $gfield: $gty,)*
            /// Service accounts of pods the policy applies to.
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub service_account_selector: String,
            $($(#[$sdoc])* #[serde $sattr] pub $sfield: $sty,)*
            /// Policy-engine hints.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub performance_hints: Vec<PolicyPerformanceHint>,
        }
    };
}

policy_spec!(
    /// `NetworkPolicy.spec`.
    NetworkPolicySpec { lead: [], global: [], scope: [] }
);

policy_spec!(
    /// `GlobalNetworkPolicy.spec`.
    GlobalNetworkPolicySpec {
        lead: [],
        global: [
            /// Apply before connection tracking (untracked).
            do_not_track: bool = (default, skip_serializing_if = "is_false"),
            /// Apply before DNAT.
            pre_dnat: bool = (default, rename = "preDNAT", skip_serializing_if = "is_false"),
            /// Apply to forwarded traffic.
            apply_on_forward: bool = (default, skip_serializing_if = "is_false"),
        ],
        scope: [
            /// Namespaces of pods the policy applies to.
            namespace_selector: String = (default, skip_serializing_if = "String::is_empty"),
        ],
    }
);

policy_spec!(
    /// `StagedNetworkPolicy.spec`: a staged action and a `NetworkPolicy` body.
    StagedNetworkPolicySpec {
        lead: [
            /// Staged action (default `Set`).
            staged_action: Option<StagedAction> = (default, skip_serializing_if = "Option::is_none"),
        ],
        global: [],
        scope: [],
    }
);

policy_spec!(
    /// `StagedGlobalNetworkPolicy.spec`: a staged action and a `GlobalNetworkPolicy` body.
    StagedGlobalNetworkPolicySpec {
        lead: [
            /// Staged action (default `Set`).
            staged_action: Option<StagedAction> = (default, skip_serializing_if = "Option::is_none"),
        ],
        global: [
            /// Apply before connection tracking (untracked).
            do_not_track: bool = (default, skip_serializing_if = "is_false"),
            /// Apply before DNAT.
            pre_dnat: bool = (default, rename = "preDNAT", skip_serializing_if = "is_false"),
            /// Apply to forwarded traffic.
            apply_on_forward: bool = (default, skip_serializing_if = "is_false"),
        ],
        scope: [
            /// Namespaces of pods the policy applies to.
            namespace_selector: String = (default, skip_serializing_if = "String::is_empty"),
        ],
    }
);

impl StagedNetworkPolicySpec {
    /// The staged action in effect (`Set` when unset).
    pub fn effective_staged_action(&self) -> StagedAction {
        self.staged_action.unwrap_or_default()
    }

    /// The policy this stages, as a `NetworkPolicy` spec.
    pub fn to_enforced(&self) -> NetworkPolicySpec {
        NetworkPolicySpec {
            tier: self.tier.clone(),
            order: self.order,
            ingress: self.ingress.clone(),
            egress: self.egress.clone(),
            selector: self.selector.clone(),
            types: self.types.clone(),
            service_account_selector: self.service_account_selector.clone(),
            performance_hints: self.performance_hints.clone(),
        }
    }
}

impl StagedGlobalNetworkPolicySpec {
    /// The staged action in effect (`Set` when unset).
    pub fn effective_staged_action(&self) -> StagedAction {
        self.staged_action.unwrap_or_default()
    }

    /// The policy this stages, as a `GlobalNetworkPolicy` spec.
    pub fn to_enforced(&self) -> GlobalNetworkPolicySpec {
        GlobalNetworkPolicySpec {
            tier: self.tier.clone(),
            order: self.order,
            ingress: self.ingress.clone(),
            egress: self.egress.clone(),
            selector: self.selector.clone(),
            types: self.types.clone(),
            do_not_track: self.do_not_track,
            pre_dnat: self.pre_dnat,
            apply_on_forward: self.apply_on_forward,
            service_account_selector: self.service_account_selector.clone(),
            namespace_selector: self.namespace_selector.clone(),
            performance_hints: self.performance_hints.clone(),
        }
    }
}

resource!(
    /// A namespaced policy.
    NetworkPolicy,
    NetworkPolicySpec
);
resource!(
    /// A cluster-wide policy.
    GlobalNetworkPolicy,
    GlobalNetworkPolicySpec
);
resource!(
    /// A namespaced policy that is previewed, not enforced.
    StagedNetworkPolicy,
    StagedNetworkPolicySpec
);
resource!(
    /// A cluster-wide policy that is previewed, not enforced.
    StagedGlobalNetworkPolicy,
    StagedGlobalNetworkPolicySpec
);

/// Calico's rule for `types` when it is omitted: `[Ingress]` without egress rules (also when
/// there are no rules at all), `[Egress]` with only egress rules, both with both.
pub fn infer_policy_types(ingress: &[Rule], egress: &[Rule]) -> Vec<PolicyType> {
    if egress.is_empty() {
        vec![PolicyType::Ingress]
    } else if ingress.is_empty() {
        vec![PolicyType::Egress]
    } else {
        vec![PolicyType::Ingress, PolicyType::Egress]
    }
}

/// Calico's policy defaults: `tier: default`, the tier label, and inferred `types` (skipped
/// for a staged delete, whose types Calico clears).
fn default_policy(
    meta: &mut ObjectMeta,
    tier: &mut String,
    types: &mut Vec<PolicyType>,
    rules: Option<(&[Rule], &[Rule])>,
) {
    match rules {
        Some((ingress, egress)) if types.is_empty() => *types = infer_policy_types(ingress, egress),
        Some(_) => {}
        None => types.clear(),
    }
    if tier.is_empty() {
        *tier = DEFAULT_TIER.to_string();
    }
    meta.labels.insert(TIER_LABEL.to_string(), tier.clone());
}

/// The fields both policy shapes share, borrowed for checking.
struct PolicyView<'a> {
    tier: &'a str,
    order: Option<f64>,
    ingress: &'a [Rule],
    egress: &'a [Rule],
    selector: &'a str,
    types: &'a [PolicyType],
    service_account_selector: &'a str,
    performance_hints: &'a [PolicyPerformanceHint],
    global: bool,
}

impl<'a> From<&'a NetworkPolicySpec> for PolicyView<'a> {
    fn from(s: &'a NetworkPolicySpec) -> Self {
        PolicyView {
            tier: &s.tier,
            order: s.order,
            ingress: &s.ingress,
            egress: &s.egress,
            selector: &s.selector,
            types: &s.types,
            service_account_selector: &s.service_account_selector,
            performance_hints: &s.performance_hints,
            global: false,
        }
    }
}

impl<'a> From<&'a GlobalNetworkPolicySpec> for PolicyView<'a> {
    fn from(s: &'a GlobalNetworkPolicySpec) -> Self {
        PolicyView {
            tier: &s.tier,
            order: s.order,
            ingress: &s.ingress,
            egress: &s.egress,
            selector: &s.selector,
            types: &s.types,
            service_account_selector: &s.service_account_selector,
            performance_hints: &s.performance_hints,
            global: true,
        }
    }
}

fn check_policy(errs: &mut Errors, p: &PolicyView<'_>) {
    if !p.tier.is_empty() {
        check_name(errs, "spec.tier", p.tier);
    }
    if let Some(o) = p.order
        && !o.is_finite()
    {
        errs.add("spec.order", o.to_string(), "is not a finite number");
    }
    check_selector_without_global(errs, "spec.selector", p.selector);
    check_selector_without_global(
        errs,
        "spec.serviceAccountSelector",
        p.service_account_selector,
    );
    for (i, t) in p.types.iter().enumerate() {
        if p.types[..i].contains(t) {
            errs.add(
                index("spec.types", i),
                format!("{t:?}"),
                "is listed more than once",
            );
        }
    }
    for (i, h) in p.performance_hints.iter().enumerate() {
        if p.performance_hints[..i].contains(h) {
            errs.add(
                index("spec.performanceHints", i),
                format!("{h:?}"),
                "is listed more than once",
            );
        }
    }
    for (field, rules, dir) in [
        ("spec.ingress", p.ingress, PolicyType::Ingress),
        ("spec.egress", p.egress, PolicyType::Egress),
    ] {
        let ctx = RuleContext {
            direction: Some(dir),
            global: p.global,
        };
        check_rules(errs, field, rules, ctx);
    }
}

fn check_global_extras(errs: &mut Errors, s: &GlobalNetworkPolicySpec) {
    check_selector_without_global(errs, "spec.namespaceSelector", &s.namespace_selector);
    if s.do_not_track && s.pre_dnat {
        errs.rule("spec.preDNAT", "cannot be true together with doNotTrack");
    }
    if s.pre_dnat {
        if !s.egress.is_empty() {
            errs.rule("spec.egress", "is not allowed in a preDNAT policy");
        }
        if s.types.contains(&PolicyType::Egress) {
            errs.rule("spec.types", "cannot contain Egress in a preDNAT policy");
        }
    }
    if (s.pre_dnat || s.do_not_track) && !s.apply_on_forward {
        errs.rule(
            "spec.applyOnForward",
            "must be true when preDNAT or doNotTrack is true",
        );
    }
}

impl Rules for NetworkPolicy {
    fn defaults(&mut self) {
        let s = &mut self.spec;
        default_policy(
            &mut self.metadata,
            &mut s.tier,
            &mut s.types,
            Some((&s.ingress, &s.egress)),
        );
    }

    fn check(&self, errs: &mut Errors) {
        check_network_policy_name(errs, "metadata.name", self.metadata.name_str());
        check_policy(errs, &PolicyView::from(&self.spec));
    }
}

impl Rules for GlobalNetworkPolicy {
    fn defaults(&mut self) {
        let s = &mut self.spec;
        default_policy(
            &mut self.metadata,
            &mut s.tier,
            &mut s.types,
            Some((&s.ingress, &s.egress)),
        );
    }

    fn check(&self, errs: &mut Errors) {
        check_global_network_policy_name(errs, "metadata.name", self.metadata.name_str());
        check_policy(errs, &PolicyView::from(&self.spec));
        check_global_extras(errs, &self.spec);
    }
}

const DELETE_RULE: &str = "must be empty when stagedAction is Delete (only tier may be set)";

impl Rules for StagedNetworkPolicy {
    fn defaults(&mut self) {
        let s = &mut self.spec;
        let action = *s.staged_action.get_or_insert(StagedAction::Set);
        let rules = (action != StagedAction::Delete).then_some((&s.ingress[..], &s.egress[..]));
        default_policy(&mut self.metadata, &mut s.tier, &mut s.types, rules);
    }

    fn check(&self, errs: &mut Errors) {
        check_network_policy_name(errs, "metadata.name", self.metadata.name_str());
        let p = self.spec.to_enforced();
        if self.spec.effective_staged_action() == StagedAction::Delete {
            let only_tier = NetworkPolicySpec {
                tier: p.tier.clone(),
                ..NetworkPolicySpec::default()
            };
            if p != only_tier {
                errs.rule("spec", DELETE_RULE);
            }
        } else {
            check_policy(errs, &PolicyView::from(&p));
        }
    }
}

impl Rules for StagedGlobalNetworkPolicy {
    fn defaults(&mut self) {
        let s = &mut self.spec;
        let action = *s.staged_action.get_or_insert(StagedAction::Set);
        let rules = (action != StagedAction::Delete).then_some((&s.ingress[..], &s.egress[..]));
        default_policy(&mut self.metadata, &mut s.tier, &mut s.types, rules);
    }

    fn check(&self, errs: &mut Errors) {
        check_global_network_policy_name(errs, "metadata.name", self.metadata.name_str());
        let p = self.spec.to_enforced();
        if self.spec.effective_staged_action() == StagedAction::Delete {
            let only_tier = GlobalNetworkPolicySpec {
                tier: p.tier.clone(),
                ..GlobalNetworkPolicySpec::default()
            };
            if p != only_tier {
                errs.rule("spec", DELETE_RULE);
            }
        } else {
            check_policy(errs, &PolicyView::from(&p));
            check_global_extras(errs, &p);
        }
    }
}
