//! The policy node of the calc graph: every policy-relevant object of the cluster (tiers,
//! policies, profiles, workload and host endpoints of every node, network sets) fed into
//! felix-policy's [`PolicyState`], which keeps this node's filter chains and ipsets and hands
//! out what changed at each flush.

use fabric_api::{AnyResource, Kind, WorkloadEndpoint};
use fabric_datastore::client::parse_key;
use felix_policy::{Changes, PolicyState, RenderConfig};

use super::settings::Settings;

/// The kinds the policy node takes besides workload endpoints (staged policies are never
/// enforced, so they are not synced).
pub const POLICY_KINDS: [Kind; 7] = [
    Kind::Tier,
    Kind::NetworkPolicy,
    Kind::GlobalNetworkPolicy,
    Kind::Profile,
    Kind::HostEndpoint,
    Kind::NetworkSet,
    Kind::GlobalNetworkSet,
];

/// The renderer settings for `node` under `settings`.
pub fn render_config(node: &str, settings: &Settings) -> RenderConfig {
    RenderConfig {
        ipv6: settings.ipv6_support,
        endpoint_to_host_action: settings.default_endpoint_to_host_action,
        log_prefix: settings.log_prefix.clone(),
        ..RenderConfig::new(node)
    }
}

/// The policy state of the graph.
#[derive(Debug, Clone)]
pub(super) struct PolicyNode {
    state: PolicyState,
}

impl PolicyNode {
    /// An empty node for `node` with the default settings.
    pub(super) fn new(node: &str, settings: &Settings) -> PolicyNode {
        let state = PolicyState::new(render_config(node, settings)).unwrap_or_else(|e| {
            tracing::error!(error = %e, "policy settings rejected; using the defaults");
            PolicyState::with_default_config(node)
        });
        PolicyNode { state }
    }

    /// A workload endpoint of any node (by datastore key), or its deletion. Returns a problem
    /// when the endpoint is unusable (its previous version stays in effect).
    pub(super) fn on_endpoint(
        &mut self,
        key: &str,
        endpoint: Option<&WorkloadEndpoint>,
    ) -> Option<String> {
        match endpoint {
            Some(w) => self
                .state
                .apply_resource(&AnyResource::WorkloadEndpoint(w.clone()))
                .err()
                .map(|e| format!("policy: {e}; the previous version stays in effect")),
            None => {
                let (kind, namespace, name) = parse_key(key)?;
                self.state
                    .remove_resource(kind, namespace.as_deref(), &name);
                None
            }
        }
    }

    /// A policy-relevant resource, or its deletion.
    pub(super) fn on_resource(
        &mut self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
        resource: Option<&AnyResource>,
    ) -> Option<String> {
        match resource {
            Some(r) => self
                .state
                .apply_resource(r)
                .err()
                .map(|e| format!("policy: {e}; the previous version stays in effect")),
            None => {
                self.state.remove_resource(kind, namespace, name);
                None
            }
        }
    }

    /// New settings: re-renders what they change.
    pub(super) fn on_settings(&mut self, node: &str, settings: &Settings) -> Option<String> {
        self.state
            .reconfigure(render_config(node, settings))
            .err()
            .map(|e| format!("policy settings: {e}; the previous settings stay in effect"))
    }

    /// Whether a flush would produce changes.
    pub(super) fn has_pending_work(&self) -> bool {
        self.state.has_pending_work()
    }

    /// What changed since the last flush.
    pub(super) fn flush(&mut self) -> Changes {
        self.state.flush()
    }

    /// Local endpoints with chains, active policies.
    pub(super) fn counts(&self) -> (usize, usize) {
        (
            self.state.local_endpoint_count(),
            self.state.active_policy_count(),
        )
    }
}
