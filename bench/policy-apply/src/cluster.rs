//! The benchmark's synthetic cluster (pure): namespaces with their `kns.` profiles, local and
//! remote pods, namespaced and global policies in two tiers, and the two incremental changes
//! that are timed (a pod's labels, one policy's port).

use std::collections::BTreeMap;

use fabric_api::meta::ObjectMeta;
use fabric_api::rule::EntityRule;
use fabric_api::{
    Action, GlobalNetworkPolicy, GlobalNetworkPolicySpec, NetworkPolicy, NetworkPolicySpec,
    PolicyType, Port, Protocol, Rule, Tier, TierSpec, WorkloadEndpoint, WorkloadEndpointSpec,
};
use felix_policy::{
    Entity, Policy, PolicyError, PolicyState, ProfileModel, TierModel, namespace_profile,
};

/// The cluster's shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Pods on this node.
    pub local: u32,
    /// Pods elsewhere (their addresses fill ipsets).
    pub remote: u32,
    /// Policies.
    pub policies: u32,
    /// Namespaces.
    pub namespaces: u32,
    /// Distinct `app` labels.
    pub apps: u32,
}

/// The node the benchmark renders for.
pub const NODE: &str = "bench-node";

fn ns(i: u32) -> String {
    format!("ns-{i}")
}

/// The interface of local pod `j`: `cali` + 11 hex digits, spread like Calico's hashes.
pub fn iface(j: u32) -> String {
    let h = u64::from(j).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20;
    format!("cali{:011x}", h & 0xfff_ffff_ffff)
}

/// Workload endpoint `j` (local when `j < local`), with app label `app`.
pub fn pod(shape: &Shape, j: u32, app: u32) -> WorkloadEndpoint {
    let local = j < shape.local;
    let namespace = ns(j % shape.namespaces);
    let node = if local { NODE } else { "other-node" };
    let name = format!("{node}-k8s-pod{j}-eth0");
    let ip = std::net::Ipv4Addr::from(0x0a40_0000 + j);
    let role = if j.is_multiple_of(2) {
        "frontend"
    } else {
        "backend"
    };
    WorkloadEndpoint {
        metadata: ObjectMeta {
            labels: [
                ("app".to_string(), format!("app-{app}")),
                ("role".to_string(), role.to_string()),
            ]
            .into(),
            ..ObjectMeta::namespaced(namespace.clone(), name)
        },
        spec: WorkloadEndpointSpec {
            orchestrator: "k8s".into(),
            node: node.into(),
            pod: format!("pod{j}"),
            endpoint: "eth0".into(),
            interface_name: if local {
                iface(j)
            } else {
                format!("cali-r{j}")
            },
            ip_networks: vec![format!("{ip}/32")],
            profiles: vec![format!("kns.{namespace}")],
            ..WorkloadEndpointSpec::default()
        },
    }
}

/// The app label pod `j` starts with (apps are spread so each lives in a few namespaces).
pub fn app_of(shape: &Shape, j: u32) -> u32 {
    j % shape.apps
}

/// Policy `k`: most are namespaced (ingress from another app of the namespace and from a team
/// of namespaces, on TCP ports; every fourth also egress), every fifth is global in tier
/// `security` (deny a network, allow frontends on 443, pass the rest). `port_shift` edits it.
pub fn policy(shape: &Shape, k: u32, port_shift: u16) -> Result<Policy, PolicyError> {
    let port = 8000 + u16::try_from(k % 10).unwrap_or(0) + port_shift;
    let tcp = |ports: Vec<Port>, source: EntityRule| {
        let mut r = Rule::new(Action::Allow);
        r.protocol = Some(Protocol::Tcp);
        r.source = source;
        r.destination.ports = ports;
        r
    };
    if k % 5 == 4 {
        let app = (k / 5) % shape.apps;
        let mut deny = Rule::new(Action::Deny);
        deny.source.nets = vec!["192.0.2.0/24".into(), "198.51.100.0/24".into()];
        let spec = GlobalNetworkPolicySpec {
            tier: "security".into(),
            order: Some(f64::from(k)),
            selector: format!("app == 'app-{app}'"),
            types: vec![PolicyType::Ingress],
            ingress: vec![
                deny,
                tcp(
                    vec![Port::Single(443), Port::Single(port)],
                    EntityRule {
                        selector: "role == 'frontend'".into(),
                        ..EntityRule::default()
                    },
                ),
                Rule::new(Action::Pass),
            ],
            ..GlobalNetworkPolicySpec::default()
        };
        return Policy::from_global_network_policy(&GlobalNetworkPolicy {
            metadata: ObjectMeta::named(format!("security.p{k}")),
            spec,
        });
    }
    let n = k % shape.namespaces;
    // Apps living in namespace n: app ≡ n (mod gcd(apps, namespaces)).
    let step = gcd(shape.apps, shape.namespaces);
    let per_ns = shape.apps / step;
    let app = n % step + step * ((k / shape.namespaces) % per_ns);
    let peer = n % step + step * ((k / shape.namespaces + 1) % per_ns);
    let mut ingress = vec![
        tcp(
            vec![
                Port::Single(port),
                Port::Range {
                    min: 9000,
                    max: 9010,
                },
            ],
            EntityRule {
                selector: format!("app == 'app-{peer}'"),
                ..EntityRule::default()
            },
        ),
        tcp(
            vec![Port::Single(port)],
            EntityRule {
                namespace_selector: format!("team == 'team-{}'", k % 5),
                ..EntityRule::default()
            },
        ),
    ];
    let mut types = vec![PolicyType::Ingress];
    let mut egress = Vec::new();
    if k.is_multiple_of(4) {
        types.push(PolicyType::Egress);
        let mut dns = Rule::new(Action::Allow);
        dns.protocol = Some(Protocol::Udp);
        dns.destination.ports = vec![Port::Single(53)];
        let mut internal = Rule::new(Action::Allow);
        internal.destination.nets = vec!["10.0.0.0/8".into()];
        egress = vec![dns, internal];
    }
    if k.is_multiple_of(7) {
        let mut log = Rule::new(Action::Log);
        log.source.not_selector = "role == 'frontend'".into();
        ingress.insert(0, log);
    }
    Policy::from_network_policy(&NetworkPolicy {
        metadata: ObjectMeta::namespaced(ns(n), format!("p{k}")),
        spec: NetworkPolicySpec {
            order: Some(f64::from(100 + k % 50)),
            selector: format!("app == 'app-{app}'"),
            types,
            ingress,
            egress,
            ..NetworkPolicySpec::default()
        },
    })
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// Loads the whole cluster into `state` (not flushed).
pub fn load(state: &mut PolicyState, shape: &Shape) -> Result<(), PolicyError> {
    state.upsert_tier(TierModel::from_tier(&Tier {
        metadata: ObjectMeta::named("security"),
        spec: TierSpec {
            order: Some(100.0),
            default_action: Some(Action::Deny),
        },
        status: None,
    })?);
    for i in 0..shape.namespaces {
        let labels: BTreeMap<String, String> = [
            ("team".to_string(), format!("team-{}", i % 5)),
            ("kubernetes.io/metadata.name".to_string(), ns(i)),
        ]
        .into();
        state.upsert_profile(ProfileModel::from_profile(&namespace_profile(
            &ns(i),
            &labels,
        ))?);
    }
    for j in 0..shape.local + shape.remote {
        state.upsert_entity(Entity::from_workload_endpoint(&pod(
            shape,
            j,
            app_of(shape, j),
        ))?);
    }
    for k in 0..shape.policies {
        state.upsert_policy(policy(shape, k, 0)?);
    }
    Ok(())
}
