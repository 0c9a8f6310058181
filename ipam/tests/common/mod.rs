//! Helpers shared by the IPAM integration tests: an IPAM over a fresh in-memory store, pools,
//! configuration, nodes and endpoints written through the typed client.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fabric_api::endpoint::WorkloadEndpointSpec;
use fabric_api::ippool::{AssignmentMode, IPPoolAllowedUse, IPPoolSpec};
use fabric_api::{IPPool, IPReservation, IPReservationSpec, Node, ObjectMeta, WorkloadEndpoint};
use fabric_datastore::{
    Backend, BackendError, CasOutcome, Client, KeyValue, Listing, MemBackend, Revision, TxnOp,
    TxnOutcome, WatchStream,
};
use fabric_ipam::handles::pod_handle;
use fabric_ipam::{AutoAssignArgs, Ipam, IpamConfig};
use ipnet::IpNet;

/// A fresh in-memory store and an IPAM over it.
pub fn mem() -> (Arc<dyn Backend>, Ipam) {
    let backend: Arc<dyn Backend> = Arc::new(MemBackend::new());
    (backend.clone(), Ipam::from_backend(backend))
}

/// A pool spec with the given CIDR and block size.
pub fn pool_spec(cidr: &str, block_size: u32) -> IPPoolSpec {
    IPPoolSpec {
        cidr: cidr.into(),
        block_size: Some(block_size),
        ..IPPoolSpec::default()
    }
}

/// Creates a pool.
pub async fn add_pool(client: &Client, name: &str, spec: IPPoolSpec) {
    client
        .create(IPPool {
            metadata: ObjectMeta::named(name),
            spec,
            status: None,
        })
        .await
        .unwrap();
}

/// Creates a plain pool.
pub async fn pool(ipam: &Ipam, name: &str, cidr: &str, block_size: u32) {
    add_pool(ipam.client(), name, pool_spec(cidr, block_size)).await;
}

/// A pool for tunnels only, or manual, etc.
pub fn with_uses(mut spec: IPPoolSpec, uses: &[IPPoolAllowedUse]) -> IPPoolSpec {
    spec.allowed_uses = uses.to_vec();
    spec
}

/// A manual pool.
pub fn manual(mut spec: IPPoolSpec) -> IPPoolSpec {
    spec.assignment_mode = Some(AssignmentMode::Manual);
    spec
}

/// Stores the IPAM configuration.
pub async fn config(ipam: &Ipam, strict_affinity: bool, max_blocks_per_host: u32) {
    ipam.set_config(IpamConfig {
        strict_affinity,
        max_blocks_per_host,
        ..IpamConfig::default()
    })
    .await
    .unwrap();
}

/// Creates an IPReservation.
pub async fn reserve(ipam: &Ipam, name: &str, cidrs: &[&str]) {
    ipam.client()
        .create(IPReservation {
            metadata: ObjectMeta::named(name),
            spec: IPReservationSpec {
                reserved_cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
            },
        })
        .await
        .unwrap();
}

/// Creates a Node with labels.
pub async fn node(ipam: &Ipam, name: &str, labels: &[(&str, &str)]) {
    let mut meta = ObjectMeta::named(name);
    meta.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ipam.client()
        .create(Node {
            metadata: meta,
            ..Node::default()
        })
        .await
        .unwrap();
}

/// Writes the WorkloadEndpoint a CNI ADD would write for `container` on `node`.
pub async fn endpoint(ipam: &Ipam, node: &str, container: &str, ip: IpAddr) {
    let net = match ip {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    };
    ipam.client()
        .create(WorkloadEndpoint {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            spec: WorkloadEndpointSpec {
                orchestrator: "k8s".into(),
                node: node.into(),
                pod: container.into(),
                endpoint: "eth0".into(),
                container_id: container.into(),
                interface_name: "cali0".into(),
                ip_networks: vec![net],
                ..WorkloadEndpointSpec::default()
            },
        })
        .await
        .unwrap();
}

/// A request for `v4` IPv4 addresses for pod `container` on `node`.
pub fn pod(node: &str, container: &str, v4: usize) -> AutoAssignArgs {
    AutoAssignArgs {
        node: node.into(),
        handle: pod_handle(container),
        attrs: BTreeMap::from([
            ("pod".to_string(), container.to_string()),
            ("namespace".to_string(), "default".to_string()),
        ]),
        num_v4: v4,
        ..AutoAssignArgs::default()
    }
}

/// Parses a network.
pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Parses an address.
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Every allocated address with its handle, from the blocks.
pub async fn allocated(ipam: &Ipam) -> BTreeMap<IpAddr, String> {
    let mut out = BTreeMap::new();
    for b in ipam.blocks().await.unwrap() {
        for (_, ip, attr) in b.in_use() {
            let handle = attr.and_then(|a| a.handle_id.clone()).unwrap_or_default();
            assert!(out.insert(ip, handle).is_none(), "{ip} allocated twice");
        }
    }
    out
}

/// What a test does around the calls of a [`Wrapped`] store.
#[async_trait::async_trait]
pub trait Around: Send + Sync + std::fmt::Debug {
    /// Before every read and write (not before watches, revisions and compactions).
    async fn before(&self) {}

    /// After every transaction, with its outcome.
    fn after_transaction(&self, _outcome: &Result<TxnOutcome, BackendError>) {}
}

/// An in-memory store with a test's hooks around its calls.
#[derive(Debug)]
pub struct Wrapped<A> {
    inner: MemBackend,
    /// The hooks.
    pub around: A,
}

/// A new in-memory store with `around`'s hooks, and an `Ipam` on it.
pub fn wrapped<A: Around + 'static>(around: A) -> (Arc<Wrapped<A>>, Ipam) {
    let store = Arc::new(Wrapped {
        inner: MemBackend::new(),
        around,
    });
    (store.clone(), Ipam::from_backend(store))
}

#[async_trait::async_trait]
impl<A: Around> Backend for Wrapped<A> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, BackendError> {
        self.around.before().await;
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Listing, BackendError> {
        self.around.before().await;
        self.inner.list(prefix).await
    }
    async fn create(&self, key: &str, value: &str) -> Result<Revision, BackendError> {
        self.around.before().await;
        self.inner.create(key, value).await
    }
    async fn update(
        &self,
        key: &str,
        value: &str,
        expected: Revision,
    ) -> Result<Revision, BackendError> {
        self.around.before().await;
        self.inner.update(key, value, expected).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        value: &str,
        expected: Revision,
    ) -> Result<CasOutcome, BackendError> {
        self.around.before().await;
        self.inner.compare_and_swap(key, value, expected).await
    }
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<Revision, BackendError> {
        self.around.before().await;
        self.inner.delete(key, expected).await
    }
    async fn transaction(&self, ops: &[TxnOp]) -> Result<TxnOutcome, BackendError> {
        self.around.before().await;
        let outcome = self.inner.transaction(ops).await;
        self.around.after_transaction(&outcome);
        outcome
    }
    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, BackendError> {
        self.inner.watch(prefix, from).await
    }
    async fn revision(&self) -> Result<Revision, BackendError> {
        self.inner.revision().await
    }
    async fn compact(&self, revision: Revision) -> Result<(), BackendError> {
        self.inner.compact(revision).await
    }
}

/// Counts of committed transactions and of those whose comparisons failed.
#[derive(Debug, Default)]
pub struct TxnCounts {
    committed: AtomicUsize,
    failed: AtomicUsize,
}

impl TxnCounts {
    /// Transactions that were applied.
    pub fn committed(&self) -> usize {
        self.committed.load(Ordering::SeqCst)
    }

    /// Transactions whose comparisons failed.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

impl Around for TxnCounts {
    fn after_transaction(&self, outcome: &Result<TxnOutcome, BackendError>) {
        match outcome {
            Ok(TxnOutcome::Committed(_)) => self.committed.fetch_add(1, Ordering::SeqCst),
            Ok(TxnOutcome::Current(_)) => self.failed.fetch_add(1, Ordering::SeqCst),
            Err(_) => 0,
        };
    }
}

/// An in-memory store that counts transactions, and an `Ipam` on it.
pub fn counted() -> (Arc<Wrapped<TxnCounts>>, Ipam) {
    wrapped(TxnCounts::default())
}
