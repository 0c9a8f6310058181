//! Profiles: labels inherited by the endpoints that list them and rules applied after policy;
//! the `kns.<namespace>` and `ksa.<namespace>.<account>` profiles Calico derives from
//! Kubernetes namespaces and service accounts.

use std::collections::BTreeMap;

use fabric_api::meta::ObjectMeta;
use fabric_api::{Action, Profile, ProfileSpec, Rule};

use crate::error::PolicyError;
use crate::model::rule::{CompiledRule, compile_all};
use crate::model::selectors::{NAMESPACE_LABEL_PREFIX, SERVICE_ACCOUNT_LABEL_PREFIX};

/// Name prefix of namespace profiles (`kns.prod`).
pub const NAMESPACE_PROFILE_PREFIX: &str = "kns.";
/// Name prefix of service-account profiles (`ksa.prod.web`).
pub const SERVICE_ACCOUNT_PROFILE_PREFIX: &str = "ksa.";
/// The label carrying a namespace's or service account's own name, after the prefix.
const NAME_LABEL: &str = "projectcalico.org/name";

/// A profile as the renderer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileModel {
    /// Its name.
    pub name: String,
    /// `labelsToApply`.
    pub labels: BTreeMap<String, String>,
    /// Ingress rules.
    pub ingress: Vec<CompiledRule>,
    /// Egress rules.
    pub egress: Vec<CompiledRule>,
}

impl ProfileModel {
    /// A `Profile` resource.
    pub fn from_profile(p: &Profile) -> Result<ProfileModel, PolicyError> {
        let name = p.metadata.name_str().to_string();
        let field = format!("Profile {name}: spec");
        Ok(ProfileModel {
            ingress: compile_all(&format!("{field}.ingress"), &p.spec.ingress, None)?,
            egress: compile_all(&format!("{field}.egress"), &p.spec.egress, None)?,
            labels: p.spec.labels_to_apply.clone(),
            name,
        })
    }
}

/// The profile a `kns.<namespace>` name stands for while no such Profile exists: the one
/// Calico keeps for every Kubernetes namespace (allow all; labels
/// `pcns.projectcalico.org/name` and `pcns.kubernetes.io/metadata.name`), as if whatever
/// manages namespaces had created it. Other missing profiles stay missing (they allow nothing).
pub fn implicit_profile(name: &str) -> Option<ProfileModel> {
    let namespace = name.strip_prefix(NAMESPACE_PROFILE_PREFIX)?;
    if namespace.is_empty() {
        return None;
    }
    let labels: BTreeMap<String, String> = [(
        "kubernetes.io/metadata.name".to_string(),
        namespace.to_string(),
    )]
    .into();
    ProfileModel::from_profile(&namespace_profile(namespace, &labels)).ok()
}

/// The profile Calico keeps for a Kubernetes namespace: `kns.<namespace>`, allowing all
/// traffic in both directions, with the namespace's labels as `pcns.<label>` and
/// `pcns.projectcalico.org/name: <namespace>`.
pub fn namespace_profile(namespace: &str, labels: &BTreeMap<String, String>) -> Profile {
    prefixed_profile(
        format!("{NAMESPACE_PROFILE_PREFIX}{namespace}"),
        namespace,
        labels,
        NAMESPACE_LABEL_PREFIX,
        vec![Rule::new(Action::Allow)],
    )
}

/// The profile Calico keeps for a Kubernetes service account: `ksa.<namespace>.<account>`,
/// without rules, with the account's labels as `pcsa.<label>` and
/// `pcsa.projectcalico.org/name: <account>`.
pub fn service_account_profile(
    namespace: &str,
    account: &str,
    labels: &BTreeMap<String, String>,
) -> Profile {
    prefixed_profile(
        format!("{SERVICE_ACCOUNT_PROFILE_PREFIX}{namespace}.{account}"),
        account,
        labels,
        SERVICE_ACCOUNT_LABEL_PREFIX,
        Vec::new(),
    )
}

fn prefixed_profile(
    name: String,
    own_name: &str,
    labels: &BTreeMap<String, String>,
    prefix: &str,
    rules: Vec<Rule>,
) -> Profile {
    let mut to_apply: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
        .collect();
    to_apply.insert(format!("{prefix}{NAME_LABEL}"), own_name.to_string());
    Profile {
        metadata: ObjectMeta::named(name),
        spec: ProfileSpec {
            ingress: rules.clone(),
            egress: rules,
            labels_to_apply: to_apply,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_profile_allows_everything_and_carries_prefixed_labels() {
        let labels: BTreeMap<String, String> = [("team".into(), "a".into())].into();
        let p = namespace_profile("prod", &labels);
        assert_eq!(p.metadata.name_str(), "kns.prod");
        assert_eq!(p.spec.labels_to_apply["pcns.team"], "a");
        assert_eq!(
            p.spec.labels_to_apply["pcns.projectcalico.org/name"],
            "prod"
        );
        assert_eq!(p.spec.ingress, vec![Rule::new(Action::Allow)]);
        let m = ProfileModel::from_profile(&p).unwrap();
        assert_eq!(m.egress.len(), 1);
        let implicit = implicit_profile("kns.prod").unwrap();
        assert_eq!(implicit.labels["pcns.kubernetes.io/metadata.name"], "prod");
        assert_eq!(implicit.ingress.len(), 1);
        assert!(implicit_profile("other").is_none() && implicit_profile("kns.").is_none());
        let sa = service_account_profile("prod", "web", &BTreeMap::new());
        assert_eq!(sa.metadata.name_str(), "ksa.prod.web");
        assert!(sa.spec.ingress.is_empty());
    }
}
