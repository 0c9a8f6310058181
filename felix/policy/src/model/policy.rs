//! Policies as the renderer sees them: which endpoints they apply to, their tier and order,
//! and their compiled rules for the directions their `types` cover.

use std::fmt;

use fabric_api::policy::{DEFAULT_TIER, infer_policy_types};
use fabric_api::selector::Selector;
use fabric_api::{GlobalNetworkPolicy, NetworkPolicy, PolicyType};

use crate::error::PolicyError;
use crate::model::rule::{CompiledRule, compile_all};
use crate::model::selectors;

/// Which policy: namespaced (`NetworkPolicy`, including translated Kubernetes policies) or
/// global.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyKey {
    /// The namespace of a `NetworkPolicy`; `None` for a `GlobalNetworkPolicy`.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl PolicyKey {
    /// A `GlobalNetworkPolicy` key.
    pub fn global(name: impl Into<String>) -> PolicyKey {
        PolicyKey {
            namespace: None,
            name: name.into(),
        }
    }

    /// A `NetworkPolicy` key.
    pub fn namespaced(namespace: impl Into<String>, name: impl Into<String>) -> PolicyKey {
        PolicyKey {
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// The kind name, for messages and comments.
    pub fn kind(&self) -> &'static str {
        if self.namespace.is_some() {
            "NetworkPolicy"
        } else {
            "GlobalNetworkPolicy"
        }
    }
}

/// `namespace/name` or `name` (Calico's policy name, also the order tie-break).
impl fmt::Display for PolicyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A policy ready to resolve and render.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Which policy.
    pub key: PolicyKey,
    /// Its tier.
    pub tier: String,
    /// Its order in the tier (`None`: after every ordered policy).
    pub order: Option<f64>,
    /// The endpoints it applies to.
    pub selector: Selector,
    /// Its ingress rules when its types include Ingress.
    pub ingress: Option<Vec<CompiledRule>>,
    /// Its egress rules when its types include Egress.
    pub egress: Option<Vec<CompiledRule>>,
    /// `preDNAT` or `doNotTrack`: it applies to host endpoints only, never to workloads.
    pub host_only: bool,
}

fn check_order(field: &str, order: Option<f64>) -> Result<(), PolicyError> {
    match order {
        Some(o) if !o.is_finite() => Err(PolicyError::new(
            format!("{field}.order"),
            o.to_string(),
            "is not a finite number",
        )),
        _ => Ok(()),
    }
}

/// A policy's ingress and egress rules (`None` for a direction its types leave out).
type Directions = (Option<Vec<CompiledRule>>, Option<Vec<CompiledRule>>);

fn directions(
    field: &str,
    types: &[PolicyType],
    ingress: &[fabric_api::Rule],
    egress: &[fabric_api::Rule],
    namespace: Option<&str>,
) -> Result<Directions, PolicyError> {
    let types = if types.is_empty() {
        infer_policy_types(ingress, egress)
    } else {
        types.to_vec()
    };
    let i = if types.contains(&PolicyType::Ingress) {
        Some(compile_all(
            &format!("{field}.ingress"),
            ingress,
            namespace,
        )?)
    } else {
        None
    };
    let e = if types.contains(&PolicyType::Egress) {
        Some(compile_all(&format!("{field}.egress"), egress, namespace)?)
    } else {
        None
    };
    Ok((i, e))
}

fn tier_of(tier: &str) -> String {
    if tier.is_empty() {
        DEFAULT_TIER.to_string()
    } else {
        tier.to_string()
    }
}

impl Policy {
    /// A `NetworkPolicy` (it applies to endpoints of its namespace; its rule selectors are
    /// scoped to that namespace unless they carry a `namespaceSelector`).
    pub fn from_network_policy(np: &NetworkPolicy) -> Result<Policy, PolicyError> {
        let name = np.metadata.name_str();
        let Some(namespace) = np.metadata.namespace.clone().filter(|n| !n.is_empty()) else {
            return Err(PolicyError::new(
                format!("NetworkPolicy {name}: metadata.namespace"),
                "",
                "is required",
            ));
        };
        let key = PolicyKey::namespaced(&namespace, name);
        let field = format!("NetworkPolicy {key}: spec");
        let s = &np.spec;
        check_order(&field, s.order)?;
        let selector = selectors::namespaced_policy_selector(
            &field,
            &s.selector,
            &namespace,
            &s.service_account_selector,
        )?;
        let (ingress, egress) =
            directions(&field, &s.types, &s.ingress, &s.egress, Some(&namespace))?;
        Ok(Policy {
            key,
            tier: tier_of(&s.tier),
            order: s.order,
            selector,
            ingress,
            egress,
            host_only: false,
        })
    }

    /// A `GlobalNetworkPolicy`.
    pub fn from_global_network_policy(gnp: &GlobalNetworkPolicy) -> Result<Policy, PolicyError> {
        let key = PolicyKey::global(gnp.metadata.name_str());
        let field = format!("GlobalNetworkPolicy {key}: spec");
        let s = &gnp.spec;
        check_order(&field, s.order)?;
        let selector = selectors::global_policy_selector(
            &field,
            &s.selector,
            &s.namespace_selector,
            &s.service_account_selector,
        )?;
        let (ingress, egress) = directions(&field, &s.types, &s.ingress, &s.egress, None)?;
        Ok(Policy {
            key,
            tier: tier_of(&s.tier),
            order: s.order,
            selector,
            ingress,
            egress,
            host_only: s.pre_dnat || s.do_not_track,
        })
    }

    /// The order used for sorting: unset sorts after every number.
    pub fn sort_order(&self) -> f64 {
        self.order.unwrap_or(f64::INFINITY)
    }

    /// What names its chains: tier, kind, namespace and name.
    pub fn identity(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.tier,
            self.key.kind(),
            self.key.namespace.as_deref().unwrap_or(""),
            self.key.name
        )
    }

    /// Its rules for one direction (`None` when its types leave the direction out).
    pub fn rules(&self, ingress: bool) -> Option<&[CompiledRule]> {
        if ingress {
            self.ingress.as_deref()
        } else {
            self.egress.as_deref()
        }
    }
}
