//! Calico and Kubernetes network policy rendered to iptables chains and ipsets (pure, no I/O).
//!
//! The model ([`model`]) turns `projectcalico.org/v3` resources into what rendering needs:
//! entities (workload and host endpoints, network sets) with their effective labels and
//! addresses, policies with the selector Calico derives (namespace scoping, namespace and
//! service-account selectors) and compiled rules, profiles, tiers. Kubernetes
//! `networking.k8s.io/v1` NetworkPolicies reach it translated by `fabric_api::k8s`, as Calico
//! translates them (`knp.default.<name>` in tier `default`).
//!
//! [`PolicyState`] keeps the whole cluster's model, works out which policies select a local
//! workload (only those are rendered, and only their selectors become ipsets) and renders
//! Calico's filter-table layout for IPv4 and IPv6:
//!
//! ```text
//! FORWARD -> cali-FORWARD -> -i cali+ cali-from-wl-dispatch[-<c>] -g cali-fw-<if> (egress)
//!                            -o cali+ cali-to-wl-dispatch[-<c>]   -g cali-tw-<if> (ingress)
//!                            accept what policy accepted (mark 0x10000)
//! INPUT   -> cali-INPUT   -> -i cali+ -g cali-wl-to-host -> cali-from-wl-dispatch, then
//!                            DefaultEndpointToHostAction
//! OUTPUT  -> cali-OUTPUT
//! cali-tw/fw-<if>: conntrack, then per tier: -j cali-pi/po-<hash> per policy (accept returns,
//!                  pass skips the tier), end-of-tier drop; then cali-pri/pro-<profile>; drop
//! ```
//!
//! Updates are incremental: mutators record what they touch and [`PolicyState::flush`]
//! returns the [`Changes`] (chains to write or remove, ipset deltas) per family;
//! [`PolicyState::full`] gives everything for a resync. The output types are plain data:
//! felix converts them to its iptables and ipset types.

pub mod config;
pub mod error;
pub mod model;
pub mod names;
pub mod render;
pub mod state;
pub mod types;

pub use config::{EndpointToHostAction, RenderConfig};
pub use error::PolicyError;
pub use model::entity::{Entity, EntityKey};
pub use model::policy::{Policy, PolicyKey};
pub use model::profile::{
    NAMESPACE_PROFILE_PREFIX, ProfileModel, namespace_profile, service_account_profile,
};
pub use model::tier::{TierEnd, TierModel};
pub use state::PolicyState;
pub use types::{
    Chain, Changes, FamilyChanges, FamilyRender, IpFamily, IpSet, IpSetDelta, IpSetKind,
    IpSetMember, PortProtocol,
};
