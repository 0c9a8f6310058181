//! The fabric's input: every datastore object the BGP configuration depends on, as plain maps
//! ([`FabricInput`]), and the [`Snapshot`] that keeps them from the syncer's events.

use std::collections::BTreeMap;

use fabric_api::{AnyResource, BGPConfiguration, BGPFilter, BGPPeer, IPPool, Kind, Node};
use fabric_datastore::client::{decode, kind_prefix};
use fabric_datastore::ipam_model::{AllocationBlock, BlockAffinity};
use fabric_datastore::keys::{
    IPAM_BLOCK_PREFIX, ipam_host_prefix, parse_ipam_affinity_key, parse_ipam_block_key,
};
use fabric_datastore::syncer::SyncEvent;
use ipnet::IpNet;

use super::Secrets;

/// Everything [`super::compute`] reads, keyed by name (blocks and affinities by CIDR).
#[derive(Debug, Clone, Default)]
pub struct FabricInput {
    /// This node's name.
    pub node_name: String,
    /// Every Node.
    pub nodes: BTreeMap<String, Node>,
    /// Every BGPConfiguration (`default`, `node.<name>`).
    pub bgp_configurations: BTreeMap<String, BGPConfiguration>,
    /// Every BGPPeer.
    pub peers: BTreeMap<String, BGPPeer>,
    /// Every BGPFilter.
    pub filters: BTreeMap<String, BGPFilter>,
    /// Every IPPool.
    pub pools: BTreeMap<String, IPPool>,
    /// This node's block affinities (only confirmed ones count).
    pub affinities: BTreeMap<IpNet, BlockAffinity>,
    /// Every IPAM block (for addresses this node borrowed from other nodes' blocks).
    pub blocks: BTreeMap<IpNet, AllocationBlock>,
    /// Password values by secret key.
    pub secrets: Secrets,
}

/// The datastore prefixes the fabric of `node` watches.
pub fn sync_prefixes(node: &str) -> Vec<String> {
    vec![
        kind_prefix(Kind::Node, None),
        kind_prefix(Kind::BGPConfiguration, None),
        kind_prefix(Kind::BGPPeer, None),
        kind_prefix(Kind::BGPFilter, None),
        kind_prefix(Kind::IPPool, None),
        IPAM_BLOCK_PREFIX.to_string(),
        ipam_host_prefix(node),
    ]
}

/// A [`FabricInput`] kept current from syncer events.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The current input (its `secrets` are filled in by the caller before computing).
    pub input: FabricInput,
    /// The syncer sent its `InSync`.
    pub in_sync: bool,
}

impl Snapshot {
    /// An empty snapshot for `node`.
    pub fn new(node: impl Into<String>) -> Snapshot {
        Snapshot {
            input: FabricInput {
                node_name: node.into(),
                ..FabricInput::default()
            },
            in_sync: false,
        }
    }

    /// Applies one event. Returns whether the input changed. Values that do not decode are
    /// logged and treated as absent.
    pub fn apply(&mut self, event: SyncEvent) -> bool {
        match event {
            SyncEvent::InSync => {
                self.in_sync = true;
                true
            }
            SyncEvent::Update(kv) => {
                if let Some(cidr) = parse_ipam_block_key(&kv.key) {
                    return match serde_json::from_str::<AllocationBlock>(&kv.value) {
                        Ok(b) if !b.deleted => {
                            self.input.blocks.insert(cidr, b);
                            true
                        }
                        Ok(_) => self.input.blocks.remove(&cidr).is_some(),
                        Err(e) => {
                            tracing::warn!(key = %kv.key, error = %e, "undecodable IPAM block ignored");
                            self.input.blocks.remove(&cidr).is_some()
                        }
                    };
                }
                if let Some((node, cidr)) = parse_ipam_affinity_key(&kv.key) {
                    if node != self.input.node_name {
                        return false;
                    }
                    return match serde_json::from_str::<BlockAffinity>(&kv.value) {
                        Ok(a) => self.input.affinities.insert(cidr, a.clone()) != Some(a),
                        Err(e) => {
                            tracing::warn!(key = %kv.key, error = %e, "undecodable block affinity ignored");
                            self.input.affinities.remove(&cidr).is_some()
                        }
                    };
                }
                match decode(&kv) {
                    Some(Ok(resource)) => self.put(resource),
                    Some(Err(e)) => {
                        tracing::warn!(key = %kv.key, error = %e, "undecodable resource ignored");
                        self.delete(&kv.key)
                    }
                    None => false,
                }
            }
            SyncEvent::Delete { key } => self.delete(&key),
        }
    }

    fn put(&mut self, resource: AnyResource) -> bool {
        let name = resource.name().to_string();
        let i = &mut self.input;
        match resource {
            AnyResource::Node(r) => i.nodes.insert(name, r.clone()) != Some(r),
            AnyResource::BGPConfiguration(r) => {
                i.bgp_configurations.insert(name, r.clone()) != Some(r)
            }
            AnyResource::BGPPeer(r) => i.peers.insert(name, r.clone()) != Some(r),
            AnyResource::BGPFilter(r) => i.filters.insert(name, r.clone()) != Some(r),
            AnyResource::IPPool(r) => i.pools.insert(name, r.clone()) != Some(r),
            _ => false,
        }
    }

    fn delete(&mut self, key: &str) -> bool {
        let i = &mut self.input;
        if let Some(cidr) = parse_ipam_block_key(key) {
            return i.blocks.remove(&cidr).is_some();
        }
        if let Some((node, cidr)) = parse_ipam_affinity_key(key) {
            return node == i.node_name && i.affinities.remove(&cidr).is_some();
        }
        let Some((kind, _, name)) = fabric_datastore::client::parse_key(key) else {
            return false;
        };
        match kind {
            Kind::Node => i.nodes.remove(&name).is_some(),
            Kind::BGPConfiguration => i.bgp_configurations.remove(&name).is_some(),
            Kind::BGPPeer => i.peers.remove(&name).is_some(),
            Kind::BGPFilter => i.filters.remove(&name).is_some(),
            Kind::IPPool => i.pools.remove(&name).is_some(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_datastore::KeyValue;

    fn kv(key: &str, value: &str, rev: i64) -> SyncEvent {
        SyncEvent::Update(KeyValue {
            key: key.into(),
            value: value.into(),
            create_revision: rev,
            mod_revision: rev,
        })
    }

    #[test]
    fn the_snapshot_keeps_resources_and_only_this_nodes_affinities() {
        let mut s = Snapshot::new("n1");
        let pool = r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPool",
            "metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16"}}"#;
        assert!(s.apply(kv(
            "/calico/resources/v3/projectcalico.org/ippools/p",
            pool,
            2
        )));
        assert!(s.apply(kv(
            "/calico/ipam/v2/host/n1/ipv4/block/10.0.1.0-26",
            r#"{"state":"confirmed"}"#,
            3
        )));
        assert!(!s.apply(kv(
            "/calico/ipam/v2/host/n2/ipv4/block/10.0.2.0-26",
            r#"{"state":"confirmed"}"#,
            4
        )));
        assert_eq!(s.input.pools.len(), 1);
        assert_eq!(s.input.affinities.len(), 1);
        assert!(s.apply(SyncEvent::Delete {
            key: "/calico/resources/v3/projectcalico.org/ippools/p".into()
        }));
        assert!(s.input.pools.is_empty());
        assert!(s.apply(SyncEvent::InSync));
        assert!(s.in_sync);
    }
}
