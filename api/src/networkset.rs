//! `NetworkSet` and `GlobalNetworkSet`: labelled sets of networks that policy selectors match.

use serde::{Deserialize, Serialize};

use crate::error::{Errors, index};
use crate::meta::ObjectMeta;
use crate::resource::{Rules, resource};
use crate::validate::cidr::check_cidr;
use crate::validate::names::check_name;

/// The label Calico reserves for mapping namespaces; it may not be set on network sets.
pub const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";

resource!(
    /// A namespaced set of networks.
    NetworkSet,
    NetworkSetSpec
);
resource!(
    /// A cluster-wide set of networks.
    GlobalNetworkSet,
    NetworkSetSpec
);

/// `NetworkSet.spec` and `GlobalNetworkSet.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSetSpec {
    /// Networks (CIDRs or single addresses; host bits are allowed, as in Calico).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
}

/// Spec of a `GlobalNetworkSet` (the same shape as a `NetworkSet`'s).
pub type GlobalNetworkSetSpec = NetworkSetSpec;

fn check_set(errs: &mut Errors, meta: &ObjectMeta, spec: &NetworkSetSpec) {
    check_name(errs, "metadata.name", meta.name_str());
    if meta.labels.contains_key(NAMESPACE_LABEL) {
        errs.add(
            "metadata.labels",
            NAMESPACE_LABEL,
            "is reserved by Calico and cannot be set on a network set",
        );
    }
    for (i, n) in spec.nets.iter().enumerate() {
        check_cidr(errs, &index("spec.nets", i), n);
    }
}

impl Rules for NetworkSet {
    fn defaults(&mut self) {}

    fn check(&self, errs: &mut Errors) {
        check_set(errs, &self.metadata, &self.spec);
    }
}

impl Rules for GlobalNetworkSet {
    fn defaults(&mut self) {}

    fn check(&self, errs: &mut Errors) {
        check_set(errs, &self.metadata, &self.spec);
    }
}
