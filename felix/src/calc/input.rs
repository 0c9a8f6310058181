//! What the calc graph consumes: typed updates of the datastore objects felix cares about,
//! learned BGP routes, the underlay interface, and the in-sync markers; plus the pure
//! translation of raw syncer events into those updates.

use std::net::IpAddr;

use fabric_api::{AnyResource, FelixConfiguration, IPPool, Kind, Node, WorkloadEndpoint};
use fabric_datastore::client::{self, parse_key};
use fabric_datastore::ipam_model::{AllocationBlock, BlockAffinity};
use fabric_datastore::keys::{
    IPAM_BLOCK_PREFIX, IPAM_HOST_PREFIX, parse_ipam_affinity_key, parse_ipam_block_key,
    resource_prefix,
};
use fabric_datastore::syncer::SyncEvent;
use ipnet::IpNet;

/// A route learned over BGP, as bgpd's best-path selection hands it to felix.
///
/// `next_hops` are the selected next hops (more than one: ECMP); **empty means withdrawn**.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LearnedRoute {
    /// The destination.
    pub prefix: IpNet,
    /// The next hops (gateway addresses); empty = withdrawn.
    pub next_hops: Vec<IpAddr>,
}

impl LearnedRoute {
    /// A route to `prefix` via `next_hops`.
    pub fn new(prefix: IpNet, next_hops: Vec<IpAddr>) -> LearnedRoute {
        LearnedRoute { prefix, next_hops }
    }

    /// The withdrawal of `prefix`.
    pub fn withdrawn(prefix: IpNet) -> LearnedRoute {
        LearnedRoute {
            prefix,
            next_hops: Vec::new(),
        }
    }
}

/// The interface that carries this node's underlay address, as the daemon detected it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostInterface {
    /// Its name (`eth0`).
    pub name: String,
    /// Its MTU (tunnel MTUs default to this minus the encapsulation overhead).
    pub mtu: u32,
}

/// One input of the calc graph. `None` payloads mean "deleted".
#[derive(Debug, Clone, PartialEq)]
pub enum CalcInput {
    /// An `IPPool`, by name.
    Pool {
        /// The pool's name.
        name: String,
        /// The pool, or `None` when deleted.
        pool: Option<Box<IPPool>>,
    },
    /// A `Node`, by name.
    Node {
        /// The node's name.
        name: String,
        /// The node, or `None` when deleted.
        node: Option<Box<Node>>,
    },
    /// A `WorkloadEndpoint` of any node (the graph keeps only this node's), by datastore key.
    Endpoint {
        /// The endpoint's datastore key (unique).
        key: String,
        /// The endpoint, or `None` when deleted.
        endpoint: Option<Box<WorkloadEndpoint>>,
    },
    /// An IPAM allocation block, by CIDR.
    Block {
        /// The block's CIDR.
        cidr: IpNet,
        /// The block, or `None` when deleted.
        block: Option<Box<AllocationBlock>>,
    },
    /// A node's affinity to a block.
    Affinity {
        /// The node holding (or claiming) the block.
        node: String,
        /// The block's CIDR.
        cidr: IpNet,
        /// The affinity, or `None` when deleted.
        affinity: Option<BlockAffinity>,
    },
    /// A policy-relevant object (see [`crate::calc::POLICY_KINDS`]) of any node or namespace.
    PolicyResource {
        /// Its kind.
        kind: Kind,
        /// Its namespace (namespaced kinds).
        namespace: Option<String>,
        /// Its name.
        name: String,
        /// The object, or `None` when deleted.
        resource: Option<Box<AnyResource>>,
    },
    /// A `FelixConfiguration`, by name (only `default` and `node.<this node>` are used).
    FelixConfig {
        /// The configuration's name.
        name: String,
        /// The configuration, or `None` when deleted.
        config: Option<Box<FelixConfiguration>>,
    },
    /// A learned BGP route (or its withdrawal).
    Learned(LearnedRoute),
    /// The underlay interface (detected by the daemon), or `None` when not found.
    HostInterface(Option<HostInterface>),
    /// The datastore snapshot is complete.
    DatastoreInSync,
    /// bgpd has converged after a (re)start: learned routes that were not re-learned may go.
    LearnedRoutesInSync,
}

/// The datastore key prefixes felix syncs.
pub fn sync_prefixes() -> Vec<String> {
    [
        Kind::IPPool,
        Kind::Node,
        Kind::WorkloadEndpoint,
        Kind::FelixConfiguration,
    ]
    .into_iter()
    .chain(super::policy::POLICY_KINDS)
    .map(|k| resource_prefix(k.plural(), None))
    .chain([IPAM_BLOCK_PREFIX.to_string(), IPAM_HOST_PREFIX.to_string()])
    .collect()
}

/// A syncer event translated for the calc graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The update, or `None` for keys felix does not use.
    pub input: Option<CalcInput>,
    /// Why a stored value could not be used (it is then treated as deleted), naming the key.
    pub problem: Option<String>,
}

impl Decoded {
    fn ok(input: CalcInput) -> Decoded {
        Decoded {
            input: Some(input),
            problem: None,
        }
    }

    fn ignored() -> Decoded {
        Decoded {
            input: None,
            problem: None,
        }
    }
}

/// Translates one syncer event. A value that cannot be decoded becomes the deletion of its
/// object (as Calico does), with the reason in [`Decoded::problem`].
pub fn decode_sync_event(event: &SyncEvent) -> Decoded {
    match event {
        SyncEvent::InSync => Decoded::ok(CalcInput::DatastoreInSync),
        SyncEvent::Delete { key } => decode_key(key, None),
        SyncEvent::Update(kv) => decode_key(&kv.key, Some(kv)),
    }
}

fn decode_key(key: &str, kv: Option<&fabric_datastore::KeyValue>) -> Decoded {
    if let Some(cidr) = parse_ipam_block_key(key) {
        return decode_json(key, kv, |block: Option<AllocationBlock>| CalcInput::Block {
            cidr,
            block: block.filter(|b| !b.deleted).map(Box::new),
        });
    }
    if let Some((node, cidr)) = parse_ipam_affinity_key(key) {
        return decode_json(key, kv, |affinity: Option<BlockAffinity>| {
            CalcInput::Affinity {
                node: node.clone(),
                cidr,
                affinity,
            }
        });
    }
    let Some((kind, namespace, name)) = parse_key(key) else {
        return Decoded::ignored();
    };
    let decoded = match kv {
        None => None,
        Some(kv) => match client::decode(kv) {
            Some(Ok(mut any)) => {
                any.set_defaults();
                Some(any)
            }
            Some(Err(e)) => {
                let d = deleted(kind, key, namespace, name);
                return Decoded {
                    problem: Some(format!("{key}: {}", error_chain(&e))),
                    ..d
                };
            }
            None => None,
        },
    };
    match (kind, decoded) {
        (Kind::IPPool, Some(AnyResource::IPPool(p))) => Decoded::ok(CalcInput::Pool {
            name,
            pool: Some(Box::new(p)),
        }),
        (Kind::Node, Some(AnyResource::Node(n))) => Decoded::ok(CalcInput::Node {
            name,
            node: Some(Box::new(n)),
        }),
        (Kind::WorkloadEndpoint, Some(AnyResource::WorkloadEndpoint(w))) => {
            Decoded::ok(CalcInput::Endpoint {
                key: key.to_string(),
                endpoint: Some(Box::new(w)),
            })
        }
        (Kind::FelixConfiguration, Some(AnyResource::FelixConfiguration(c))) => {
            Decoded::ok(CalcInput::FelixConfig {
                name,
                config: Some(c),
            })
        }
        (kind, Some(any)) if super::policy::POLICY_KINDS.contains(&kind) && any.kind() == kind => {
            Decoded::ok(CalcInput::PolicyResource {
                kind,
                namespace,
                name,
                resource: Some(Box::new(any)),
            })
        }
        (kind, _) => deleted(kind, key, namespace, name),
    }
}

/// The deletion input for a key of `kind` (ignored for kinds felix does not use).
fn deleted(kind: Kind, key: &str, namespace: Option<String>, name: String) -> Decoded {
    if super::policy::POLICY_KINDS.contains(&kind) {
        return Decoded::ok(CalcInput::PolicyResource {
            kind,
            namespace,
            name,
            resource: None,
        });
    }
    match kind {
        Kind::IPPool => Decoded::ok(CalcInput::Pool { name, pool: None }),
        Kind::Node => Decoded::ok(CalcInput::Node { name, node: None }),
        Kind::WorkloadEndpoint => Decoded::ok(CalcInput::Endpoint {
            key: key.to_string(),
            endpoint: None,
        }),
        Kind::FelixConfiguration => Decoded::ok(CalcInput::FelixConfig { name, config: None }),
        _ => Decoded::ignored(),
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(
    key: &str,
    kv: Option<&fabric_datastore::KeyValue>,
    make: impl Fn(Option<T>) -> CalcInput,
) -> Decoded {
    match kv {
        None => Decoded::ok(make(None)),
        Some(kv) => match serde_json::from_str::<T>(&kv.value) {
            Ok(v) => Decoded::ok(make(Some(v))),
            Err(e) => Decoded {
                input: Some(make(None)),
                problem: Some(format!("{key}: the stored value cannot be used: {e}")),
            },
        },
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    crate::dataplane::status::error_chain(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_datastore::KeyValue;
    use fabric_datastore::keys::{ipam_affinity_key, ipam_block_key};

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            create_revision: 2,
            mod_revision: 2,
        }
    }

    #[test]
    fn ipam_keys_become_block_and_affinity_inputs() {
        let cidr: IpNet = "10.65.0.0/26".parse().unwrap();
        let block = r#"{"cidr":"10.65.0.0/26","affinity":"host:a","allocations":[0,null],
            "unallocated":[1],"attributes":[{"handle_id":"h","secondary":{"node":"b"}}]}"#;
        let d = decode_sync_event(&SyncEvent::Update(kv(&ipam_block_key(&cidr), block)));
        let Some(CalcInput::Block {
            cidr: c,
            block: Some(b),
        }) = d.input
        else {
            panic!("{d:?}");
        };
        assert_eq!(c, cidr);
        assert_eq!(b.host(), Some("a"));
        let key = ipam_affinity_key("a", &cidr);
        let d = decode_sync_event(&SyncEvent::Update(kv(&key, r#"{"state":"confirmed"}"#)));
        assert!(
            matches!(&d.input, Some(CalcInput::Affinity { node, affinity: Some(a), .. }) if node == "a" && a.is_confirmed()),
            "{d:?}"
        );
        let d = decode_sync_event(&SyncEvent::Delete { key });
        assert!(matches!(
            d.input,
            Some(CalcInput::Affinity { affinity: None, .. })
        ));
    }

    #[test]
    fn a_corrupt_value_is_a_deletion_with_a_reason_naming_the_key() {
        let key = "/calico/resources/v3/projectcalico.org/ippools/p1";
        let d = decode_sync_event(&SyncEvent::Update(kv(key, "{\"kind\":\"IPPool\"")));
        assert!(
            matches!(d.input, Some(CalcInput::Pool { pool: None, .. })),
            "{d:?}"
        );
        assert!(d.problem.unwrap().contains(key));
        let cidr: IpNet = "10.65.0.0/26".parse().unwrap();
        let d = decode_sync_event(&SyncEvent::Update(kv(&ipam_block_key(&cidr), "[]")));
        assert!(matches!(
            d.input,
            Some(CalcInput::Block { block: None, .. })
        ));
        assert!(d.problem.is_some());
    }

    #[test]
    fn unrelated_keys_are_ignored() {
        let d = decode_sync_event(&SyncEvent::Delete {
            key: "/calico/resources/v3/projectcalico.org/bgppeers/x".into(),
        });
        assert_eq!(d, Decoded::ignored());
    }

    #[test]
    fn the_sync_prefixes_cover_every_input_kind() {
        let p = sync_prefixes();
        for want in [
            "ippools",
            "nodes",
            "workloadendpoints",
            "felixconfigurations",
        ] {
            assert!(p.iter().any(|x| x.ends_with(&format!("/{want}/"))), "{p:?}");
        }
        assert!(p.contains(&IPAM_BLOCK_PREFIX.to_string()));
        assert!(p.contains(&IPAM_HOST_PREFIX.to_string()));
    }
}
