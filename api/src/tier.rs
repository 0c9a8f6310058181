//! `Tier`: an ordered group of policies with a default action, and the built-in tiers'
//! fixed orders and actions.

use serde::{Deserialize, Serialize};

use crate::error::Errors;
use crate::meta::Condition;
use crate::policy::serialize_order;
use crate::resource::{Rules, resource};
use crate::rule::Action;
use crate::validate::names::check_label_name;

/// Order of the `default` tier, and of tiers created without an order.
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;
/// Order of the `kube-admin` tier.
pub const KUBE_ADMIN_TIER_ORDER: f64 = 1_000.0;
/// Order of the `kube-baseline` tier.
pub const KUBE_BASELINE_TIER_ORDER: f64 = 10_000_000.0;

resource!(
    /// A tier of policies.
    Tier,
    TierSpec,
    status: TierStatus
);

/// `Tier.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierSpec {
    /// Order among tiers (default 1000000; lower first).
    #[serde(
        default,
        serialize_with = "serialize_order",
        skip_serializing_if = "Option::is_none"
    )]
    pub order: Option<f64>,
    /// Action for traffic a policy of the tier selects but no rule matches (`Deny` or `Pass`;
    /// default `Deny`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<Action>,
}

/// `Tier.status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierStatus {
    /// Conditions such as `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The fixed order and default action of Calico's built-in tiers.
fn builtin(name: &str) -> Option<(f64, Action)> {
    match name {
        "default" => Some((DEFAULT_TIER_ORDER, Action::Deny)),
        "kube-admin" => Some((KUBE_ADMIN_TIER_ORDER, Action::Pass)),
        "kube-baseline" => Some((KUBE_BASELINE_TIER_ORDER, Action::Pass)),
        _ => None,
    }
}

impl Rules for Tier {
    fn defaults(&mut self) {
        // Calico gives every tier without an order the default tier's order (even the
        // built-in kube-admin and kube-baseline tiers, which then fail validation).
        self.spec.order.get_or_insert(DEFAULT_TIER_ORDER);
        self.spec.default_action.get_or_insert(Action::Deny);
    }

    fn check(&self, errs: &mut Errors) {
        let name = self.metadata.name_str();
        check_label_name(errs, "metadata.name", name);
        let s = &self.spec;
        if let Some(o) = s.order
            && !o.is_finite()
        {
            errs.add("spec.order", o.to_string(), "is not a finite number");
        }
        if let Some(a) = s.default_action
            && !matches!(a, Action::Deny | Action::Pass)
        {
            errs.add(
                "spec.defaultAction",
                format!("{a:?}"),
                "is not one of Deny, Pass",
            );
        }
        if let Some((order, action)) = builtin(name) {
            if s.order != Some(order) {
                errs.add(
                    "spec.order",
                    s.order.map(|o| o.to_string()).unwrap_or_default(),
                    format!("must be {order} for the built-in {name} tier"),
                );
            }
            if s.default_action != Some(action) {
                errs.add(
                    "spec.defaultAction",
                    s.default_action
                        .map(|a| format!("{a:?}"))
                        .unwrap_or_default(),
                    format!("must be {action:?} for the built-in {name} tier"),
                );
            }
        }
    }
}
