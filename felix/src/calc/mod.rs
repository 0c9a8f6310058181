//! The calc graph: a pure function from the datastore objects relevant to this node, the routes
//! learned over BGP and the underlay interface, to the node's desired dataplane. No tokio, no
//! I/O, no clock: inputs in, [`DataplaneChanges`] out.
//!
//! # Pipeline
//!
//! ```text
//!  syncer events ──decode_sync_event──► CalcInput ──► CalcGraph::update (dispatcher)
//!  learned routes (bgpd) ─────────────────┘                │
//!  underlay interface (daemon) ───────────┘                │
//!        ┌───────────────┬──────────────┬─────────────┬────┴─────────┬──────────────┐
//!        ▼               ▼              ▼             ▼              ▼              ▼
//!   LocalEndpoints   IpamIndex       pools         nodes          learned       FelixConfig
//!   (key<->address)  (owner, borrow, (PoolInfo)    (NodeInfo,     (prefix ->    (default,
//!        │            reverse idx)      │           VTEP maps)     next hops)    node.<us>)
//!        └──────┬────────┴──────────────┴─────────────┴──────────────┘              │
//!               ▼  dirty prefixes                                                    ▼
//!        resolve(prefix): workload > own-block blackhole > felix-computed    effective Settings
//!        remote (borrowed /32, then block; encapsulation()) > learned            │
//!               │                                                                    │
//!               ▼                                                                    ▼
//!        route changes        links (vxlan.calico, tunl0), VTEPs, sysctls, NAT pools (rebuilt
//!                             when dirty)  ──► CalcGraph::flush ──► DataplaneChanges
//! ```
//!
//! # Incrementality
//!
//! `update` does only the work its input implies and records what it touched:
//!
//! - **Per-resource indexes with reverse lookups.** Endpoints are indexed by key and by address;
//!   IPAM keeps block -> owner (the confirmed affinity), node -> owned blocks, block ->
//!   borrowed addresses and node -> borrowed addresses used there. A changed endpoint touches
//!   its own addresses, a changed block its borrowed addresses, an affinity its block, a remote
//!   Node only the blocks and borrowed addresses it owns or uses, a learned route its prefix.
//! - **A dirty set of prefixes.** Touched prefixes are resolved once at `flush`, however many
//!   updates touched them, and only those whose answer changed are emitted. Resolution reads
//!   the indexes directly (no per-prefix caches to keep coherent), so the result depends only
//!   on the current state.
//! - **Wide changes are rare and bounded.** A pool change re-resolves the prefixes inside its
//!   CIDR; a change of *our own* Node or of the underlay interface re-resolves every block,
//!   borrowed address and learned prefix (thousands of map lookups, no I/O).
//! - **Small whole-state outputs** (tunnel devices, VTEPs, sysctls, NAT pools, settings) are
//!   rebuilt at `flush` only when flagged dirty, and emitted only when different. Sysctls grow
//!   with the number of local endpoints and are rebuilt once per flush that saw an endpoint
//!   change; the daemon coalesces bursts into few flushes.
//!
//! With 1,000s of endpoints a single endpoint update is O(its addresses) plus one sysctl
//! rebuild per flush.
//!
//! # Route ownership
//!
//! [`encapsulation`] decides how a remote block is reached and [`cluster_route_owner`] who
//! computes it: felix for encapsulated pools (IPIP/VXLAN, any mode, including the direct
//! same-subnet routes of CrossSubnet), BGP for unencapsulated pools (felix installs what bgpd
//! selected, fed in as [`LearnedRoute`]s). Learned routes outside every pool are installed;
//! learned routes for our own blocks or inside encapsulated pools are ignored.

mod encap;
mod endpoints;
mod graph;
mod input;
mod ipam;
mod model;
mod output;
mod policy;
mod routes;
mod settings;
mod tunnels;

#[cfg(test)]
mod tests;

pub use encap::{Encap, RouteOwner, cluster_route_owner, encapsulation};
pub use graph::CalcGraph;
pub use input::{
    CalcInput, Decoded, HostInterface, LearnedRoute, decode_sync_event, sync_prefixes,
};
pub use model::{NodeInfo, PoolInfo, Vtep};
pub use output::{DataplaneChanges, DesiredDataplane};
pub use policy::{POLICY_KINDS, render_config};
pub use settings::{
    ConfigOverrides, IptablesBackendChoice, SUPPORTED_ENV, SettingError, Settings,
    effective_settings,
};
pub use tunnels::vxlan_device;
