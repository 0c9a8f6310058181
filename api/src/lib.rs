//! Calico's `projectcalico.org/v3` resource model: types with Calico's JSON/YAML shapes, Calico's
//! defaults and validation, manifest parsing, and the selector language (re-exported). Pure: no
//! I/O.
//!
//! Every kind is a struct with `metadata` and `spec` (`IPPool`, `BGPPeer`, ...) implementing
//! [`Resource`]; [`AnyResource`] holds any of them. [`document::parse_documents`] turns a
//! user's manifest into validated resources or a complete list of errors.

pub mod bgp;
pub mod document;
pub mod endpoint;
mod error;
pub mod felix;
pub mod ipam;
pub mod ippool;
pub mod k8s;
mod kind;
pub mod meta;
pub mod networkset;
pub mod node;
pub mod policy;
pub mod profile;
mod resource;
pub mod rule;
pub mod tier;
pub mod time;
pub mod validate;

pub use fabric_selector as selector;

pub use bgp::ASNumber;
pub use bgp::DEFAULT_AS_NUMBER;
pub use bgp::config::{BGPConfiguration, BGPConfigurationSpec};
pub use bgp::filter::{BGPFilter, BGPFilterSpec};
pub use bgp::peer::{BGPPeer, BGPPeerSpec};
pub use endpoint::{HostEndpoint, HostEndpointSpec, WorkloadEndpoint, WorkloadEndpointSpec};
pub use error::{FieldError, error_chain};
pub use felix::{FelixConfiguration, FelixConfigurationSpec};
pub use ipam::{IPAMConfiguration, IPAMConfigurationSpec};
pub use ippool::{IPPool, IPPoolSpec, IPReservation, IPReservationSpec};
pub use k8s::KubernetesNetworkPolicy;
pub use kind::Kind;
pub use meta::{ListMeta, ObjectMeta};
pub use networkset::{GlobalNetworkSet, NetworkSet, NetworkSetSpec};
pub use node::{Node, NodeSpec};
pub use policy::{
    GlobalNetworkPolicy, GlobalNetworkPolicySpec, NetworkPolicy, NetworkPolicySpec,
    StagedGlobalNetworkPolicy, StagedGlobalNetworkPolicySpec, StagedNetworkPolicy,
    StagedNetworkPolicySpec,
};
pub use profile::{Profile, ProfileSpec};
pub use resource::{AnyResource, Resource, ResourceList};
pub use rule::{Action, EntityRule, PolicyType, Rule};
pub use tier::{Tier, TierSpec};
pub use validate::duration::Duration;
pub use validate::ports::{Port, Protocol};

/// The API group and version of every resource: `projectcalico.org/v3`.
pub const API_VERSION: &str = "projectcalico.org/v3";

/// For `skip_serializing_if` on Go `bool,omitempty` fields.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

macro_rules! list_aliases {
    ($($list:ident = $kind:ident),* $(,)?) => {
        $(
        #[doc = concat!("A `", stringify!($list), "`.")]
        pub type $list = ResourceList<$kind>;
        )*
    };
}

list_aliases!(
    IPPoolList = IPPool,
    IPReservationList = IPReservation,
    IPAMConfigurationList = IPAMConfiguration,
    BGPConfigurationList = BGPConfiguration,
    BGPPeerList = BGPPeer,
    BGPFilterList = BGPFilter,
    NodeList = Node,
    FelixConfigurationList = FelixConfiguration,
    TierList = Tier,
    NetworkPolicyList = NetworkPolicy,
    GlobalNetworkPolicyList = GlobalNetworkPolicy,
    StagedNetworkPolicyList = StagedNetworkPolicy,
    StagedGlobalNetworkPolicyList = StagedGlobalNetworkPolicy,
    NetworkSetList = NetworkSet,
    GlobalNetworkSetList = GlobalNetworkSet,
    HostEndpointList = HostEndpoint,
    WorkloadEndpointList = WorkloadEndpoint,
    ProfileList = Profile,
);
