//! `Profile`: rules and labels shared by the endpoints that list it (namespaces and service
//! accounts map to `kns.<ns>` and `ksa.<ns>.<sa>` profiles).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Errors;
use crate::resource::{Rules, resource};
use crate::rule::{Rule, RuleContext, check_rules};
use crate::validate::names::{check_labels, check_name};

resource!(
    /// Rules and labels applied to every endpoint that references the profile.
    Profile,
    ProfileSpec
);

/// `Profile.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSpec {
    /// Ingress rules, after policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    /// Egress rules, after policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    /// Labels added to referencing endpoints (their own labels win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels_to_apply: BTreeMap<String, String>,
}

impl Rules for Profile {
    fn defaults(&mut self) {}

    fn check(&self, errs: &mut Errors) {
        check_name(errs, "metadata.name", self.metadata.name_str());
        let ctx = RuleContext {
            direction: None,
            global: false,
        };
        check_rules(errs, "spec.ingress", &self.spec.ingress, ctx);
        check_rules(errs, "spec.egress", &self.spec.egress, ctx);
        check_labels(errs, "spec.labelsToApply", &self.spec.labels_to_apply);
    }
}
