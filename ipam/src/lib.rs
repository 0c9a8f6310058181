//! IP address management with Calico's block model: pools, blocks, affinities, handles, reservations.
//!
//! Every address is unique across the cluster, under concurrency and crashes:
//!
//! * **Pools** (`IPPool`) are cut into blocks of `blockSize`. A block is affine to one node,
//!   claimed in two phases: affinity `pending`, block created with `affinity: host:<node>`,
//!   affinity `confirmed`. Pending (and pendingDeletion) affinities count as absent; a crash
//!   between the phases is finished or undone the next time the node allocates.
//! * **Blocks** hold one slot per address, a FIFO free list (the head is handed out, released
//!   addresses go to the tail), per-address attributes (handle, pod, namespace, node, type) and
//!   sequence numbers: `sequenceNumber` rises with every write and starts at the creation time
//!   in nanoseconds; each allocation records it, and a release carrying an older one is
//!   refused ([`IpamError::StaleSequence`]), so a garbage collector cannot free an address
//!   that was handed out again.
//! * **Handles** (`k8s-pod-network.<containerID>`, `vxlan-tunnel-addr-<node>`, ...; see
//!   [`handles`]) count their addresses per block, so release by handle reads one key. A
//!   handle changes only in the same datastore transaction as the block whose addresses it
//!   counts (`Backend::transaction`), so handles and blocks always agree, even after a crash.
//! * **Every write is a compare-and-swap** on the key's revision, retried at most 100 times
//!   after re-reading (the conflict answer carries the current value: one round trip).
//!   Nothing is changed in memory before it is stored: each step works on a copy, and only a
//!   stored copy is kept (the per-process block cache is a guess the CAS checks).
//! * **IPReservations** are never handed out by [`Ipam::auto_assign`]; the configuration
//!   (`IPAMConfiguration` `default`: `strictAffinity`, `autoAllocateBlocks`,
//!   `maxBlocksPerHost` = 20 when unset) is read with the pools in one snapshot per request,
//!   or kept by a watch in long-lived allocators ([`Ipam::watch_inputs`]).
//!
//! # Cost of an allocation
//!
//! In the steady state (the node's block has room and is in this process's cache): one range
//! read of the inputs (none with [`Ipam::watch_inputs`]) and one transaction: the block by
//! compare-and-swap and the handle created (or raised) with it. Every 64th allocation (a /26 block) also claims
//! a block: three more writes and usually one read. A process that has not seen the node's
//! blocks yet (a new CNI process) first lists the node's affinities and reads its blocks.
//!
//! # API by caller
//!
//! **CNI plugin** (one process per ADD/DEL):
//! ```text
//! let ipam = Ipam::new(client);
//! let got = ipam.auto_assign(AutoAssignArgs {
//!     node, handle: handles::pod_handle(&container_id), attrs /* pod, namespace */,
//!     num_v4: 1, num_v6, pools_v4 /* CNI ipv4_pools */, pools_v6,
//!     intended_use: IntendedUse::Workload, namespace_labels, ..Default::default()
//! }).await?;                                 // AssignedIps { v4: [(ip, block)], v6, sequences }
//! ipam.assign_ip(ip, &handle, &attrs, &node).await?;    // cni.projectcalico.org/ipAddrs
//! ipam.release_by_handle(&handle).await?;                // DEL (idempotent)
//! ```
//! With `new_handle: true` a retried ADD is found by the allocation's own transaction
//! ([`IpamError::HandleInUse`]) instead of a read before it. Where calico-node runs, the
//! plugin asks its node-local [`service`] instead, which makes the same calls in a long-lived
//! allocator.
//!
//! **calico-node**: tunnel addresses with `IntendedUse::Tunnel` and
//! [`handles::tunnel_handle`]; [`Ipam::ips_by_handle`] to find its current one;
//! [`Ipam::release_host_affinities`] when a node goes away.
//!
//! **calicoctl** (`ipam show/check/release/configure`): [`Ipam::usage`] (per pool and per
//! block: total / in use / reserved / free), [`Ipam::borrowed`], [`Ipam::get_assignment_attributes`],
//! [`Ipam::check`] (a [`CheckReport`], JSON via serde, text via [`CheckReport::render`]),
//! [`Ipam::release_from_report`] for `release --from-report`,
//! [`Ipam::release_affinity`], [`Ipam::config`] / [`Ipam::set_config`], [`Ipam::blocks`],
//! [`Ipam::affinities`].
//!
//! A test-only hook holds a claim between its phases so a test can kill the process there:
//! see [`TEST_HOLD_ENV`].

mod affinity;
mod assign;
mod batch;
mod blocks;
mod check;
mod claim;
pub mod clock;
mod error;
pub mod handles;
mod inputs;
mod pools;
mod release;
pub mod search;
pub mod service;
mod store;
mod txn;
mod types;
mod usage;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use fabric_api::IPAMConfiguration;
use fabric_api::ipam::IPAM_CONFIG_NAME;
use fabric_datastore::ipam_model::AllocationBlock;
use fabric_datastore::{Backend, Client};
use ipnet::IpNet;

pub use blocks::Reservations;
pub use check::{
    CheckReport, CheckSummary, CheckedAllocation, HandleCountMismatch, HandleInfo, InUseAddress,
    Problem,
};
pub use claim::{EMPTY_BLOCK_MIN_RECLAIM_AGE, TEST_HOLD_ENV};
pub use clock::Clock;
pub use error::{Exhaustion, IpamError};
pub use pools::{Family, PoolChoice, PoolRequest, needs_node_labels, select_pools};
pub use release::RELEASES_PER_TXN;
pub use store::RETRIES;
pub use types::{
    AffinityInfo, AllocationInfo, AssignedIps, AutoAssignArgs, HostAffinityRelease, IntendedUse,
    IpamConfig, ReleaseOutcome, ReleaseRequest, ReportRelease,
};
pub use usage::{BlockUsage, BorrowedAddress, PoolUsage};

/// The IPAM client. Cheap to clone; clones share the datastore connection and block cache.
#[derive(Clone)]
pub struct Ipam {
    client: Client,
    backend: Arc<dyn Backend>,
    cache: Arc<Mutex<store::Cache>>,
    inputs: Arc<Mutex<Option<inputs::InputsWatch>>>,
    last_inputs: Arc<Mutex<inputs::LastInputs>>,
    clock: Clock,
}

impl std::fmt::Debug for Ipam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ipam")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Ipam {
    /// IPAM over the client's datastore.
    pub fn new(client: Client) -> Ipam {
        let backend = client.backend().clone();
        Ipam {
            client,
            backend,
            cache: Arc::new(Mutex::new(store::Cache::default())),
            inputs: Arc::new(Mutex::new(None)),
            last_inputs: Arc::new(Mutex::new(None)),
            clock: clock::system_clock(),
        }
    }

    /// IPAM over a backend (a typed client is made for it).
    pub fn from_backend(backend: Arc<dyn Backend>) -> Ipam {
        Ipam::new(Client::new(backend))
    }

    /// The same IPAM with another clock (tests age block claims with it).
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Ipam {
        self.clock = Arc::new(clock);
        self
    }

    /// The typed client underneath.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The configuration in effect (Calico's defaults when no `IPAMConfiguration` exists).
    pub async fn config(&self) -> Result<IpamConfig, IpamError> {
        let stored = self
            .client
            .try_get::<IPAMConfiguration>(None, IPAM_CONFIG_NAME)
            .await?;
        Ok(pools::effective_config(stored.as_ref()))
    }

    /// Stores the configuration (the `IPAMConfiguration` named `default`, validated by the
    /// client) and returns what is now in effect. `max_blocks_per_host` 0 means the default.
    pub async fn set_config(&self, config: IpamConfig) -> Result<IpamConfig, IpamError> {
        let mut resource = self
            .client
            .try_get::<IPAMConfiguration>(None, IPAM_CONFIG_NAME)
            .await?
            .unwrap_or_else(|| IPAMConfiguration {
                metadata: fabric_api::ObjectMeta::named(IPAM_CONFIG_NAME),
                ..IPAMConfiguration::default()
            });
        resource.spec.strict_affinity = Some(config.strict_affinity);
        resource.spec.auto_allocate_blocks = Some(config.auto_allocate_blocks);
        resource.spec.max_blocks_per_host = Some(i64::from(config.max_blocks_per_host));
        resource.spec.ip_cooldown_seconds = Some(i64::from(config.ip_cooldown_seconds));
        let stored = self.client.apply(resource).await?;
        Ok(pools::effective_config(Some(&stored)))
    }

    fn lock_cache(&self) -> MutexGuard<'_, store::Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the cache (never across an await).
    pub(crate) fn with_cache<R>(&self, f: impl FnOnce(&mut store::Cache) -> R) -> R {
        f(&mut self.lock_cache())
    }

    /// The cached block, if any (shared, not copied).
    pub(crate) fn cached_block(&self, cidr: &IpNet) -> Option<store::SharedBlock> {
        self.lock_cache().block(cidr).cloned()
    }

    /// Records what a block key holds now.
    pub(crate) fn cache_block(&self, cidr: IpNet, stored: Option<store::Stored<AllocationBlock>>) {
        self.cache_shared(cidr, stored.map(Arc::new));
    }

    /// Records what a block key holds now (a soft-deleted block counts as absent).
    pub(crate) fn cache_shared(&self, cidr: IpNet, stored: Option<store::SharedBlock>) {
        let stored = stored.filter(|s| !s.value.deleted);
        self.lock_cache().put_block(cidr, stored);
    }
}
