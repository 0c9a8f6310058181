//! The kernel reconcilers: felix is the only writer of kernel state on a node, and this layer is
//! where it writes.
//!
//! # Design
//!
//! Each reconciler owns **one kind of kernel object** and follows the same life cycle:
//!
//! - `set_desired(...)` takes the complete desired state as plain data types defined here
//!   ([`Route`], [`VxlanLink`], [`VtepNeighbour`], [`SysctlSet`], [`NatPool`], iptables
//!   [`Chain`]s, [`IpSetSpec`]s), independent of the Calico API types. It validates, stores and
//!   marks what changed; it does **no I/O**. Bad input returns an [`InvalidInput`] naming the
//!   field, the value and the rule, and changes nothing.
//! - `apply()` ([`Reconciler::apply`]) reads the kernel if it has to (first call, after an error,
//!   after [`Reconciler::resync`]), computes the difference between desired and actual state,
//!   writes it in batches and returns an [`ApplyReport`] (what it created, updated, deleted,
//!   deferred, what waits for a missing dependency, and every error).
//! - `resync()` forgets the cached kernel view, re-reads the kernel and applies: this repairs
//!   drift and tampering. The daemon calls it periodically (Calico's `RouteRefreshInterval`,
//!   `IptablesRefreshInterval`) and after link events; the reconcilers also re-read by themselves
//!   after any failed write.
//! - `set_in_sync(bool)`: until the datastore reports in-sync, a reconciler creates and replaces
//!   but **deletes nothing** (stale own objects are counted as `deferred_deletes`). Switching to
//!   in-sync makes the next `apply()` sweep them.
//! - `health()` says whether the last apply converged, and why not.
//!
//! **Ownership.** A reconciler only ever touches objects carrying our marker (ARCHITECTURE §4):
//! routes with protocol 80 in the configured table; links named `vxlan.calico`,
//! `vxlan-v6.calico`, `tunl0`; permanent neighbour and FDB entries on those devices; `cali-`
//! iptables chains and rules with a `cali:<hash>` comment; `cali40`/`cali60` ipsets; the sysctl
//! keys it was asked to set. Everything else is read (to diagnose conflicts) and left alone.
//!
//! **Kernel access.** Each reconciler is generic over a small kernel trait ([`RouteKernel`],
//! [`LinkKernel`], [`NeighbourKernel`], [`SysctlKernel`], [`IptablesBackend`], [`IpsetBackend`])
//! with a real implementation (rtnetlink, `/proc/sys`, `iptables-restore`, `ipset restore`) and
//! a fake kernel (in the `fake` submodules) for unit tests that can inject errors (`EEXIST`,
//! `ENOENT`, `EBUSY`, partial batch failures) and tamper with state between calls. All netlink
//! code shares [`netlink`]: one socket type, batches of many messages per datagram with one ACK
//! each, and dump iteration.
//!
//! **Namespaces.** The real implementations work in the network namespace of the thread that
//! creates them (netlink sockets bind to it at open; `/proc/sys/net` and the child processes of
//! `iptables-restore`/`ipset` follow the calling thread). Tests build them inside
//! `Netns::run_in`.
//!
//! **Errors.** Every failure is returned in the report, the failed object stays dirty and the
//! next apply re-reads the kernel before retrying. A missing dependency is not an error: a route
//! to a `cali*` interface that does not exist yet (or vanished, `ENODEV`) *waits* and is written
//! when the interface appears; `EEXIST` on a create re-reads the destination and replaces our own
//! route (or reports a conflict with a foreign one); `ENOENT`/`ESRCH` on a delete means already
//! gone. A kernel without a device type (no `ipip` here) is a typed
//! [`DataplaneError::Unsupported`] and a degraded health, and everything else keeps working.
//!
//! **Not here yet.** Drift is found by `resync()` (periodic) rather than by a netlink
//! notification watch; nexthop objects for BGP next-hop changes, policy chains and the native
//! nftables backend come later and reuse [`netlink`] and [`Table`].
//!
//! **Order.** The daemon applies in dependency order: links, then neighbours/FDB (VTEPs before
//! routes via them), sysctls, routes; ipsets are created before the iptables rules that use them
//! and destroyed after (see [`NatReconciler`]).

pub mod addr;
pub mod iptables;
pub mod links;
pub mod nat;
pub mod neighbours;
pub mod netlink;
pub mod policy;
pub mod routes;
pub mod status;
pub mod sysctls;

pub use addr::{IpFamily, MacAddr};
pub use iptables::ipsets::{
    IpPort, IpSetScope, IpSetSpec, IpSetType, IpSets, IpsetBackend, IpsetCommand,
};
pub use iptables::{Chain, IptablesBackend, IptablesCommands, Rule, Table, TableConfig};
pub use links::{
    DesiredLinks, IpipLink, IpipStatus, LinkConfig, LinkKernel, LinkReconciler, NetlinkLinkKernel,
    VxlanLink,
};
pub use nat::{NatConfig, NatPool, NatReconciler};
pub use neighbours::{NeighbourKernel, NeighbourReconciler, NetlinkNeighbourKernel, VtepNeighbour};
pub use policy::PolicyReconciler;
pub use routes::{
    NetlinkRouteKernel, NextHop, Route, RouteConfig, RouteKernel, RouteReconciler, RouteTarget,
};
pub use status::{ApplyReport, DataplaneError, Health, HealthState, InvalidInput};
pub use sysctls::{ProcSys, SysctlKernel, SysctlReconciler, SysctlSet};

/// The life cycle every reconciler shares (`set_desired` is on each type, with its own input).
pub trait Reconciler {
    /// A short name for logs and health reports (`"routes"`, `"links"`, ...).
    fn name(&self) -> &'static str;

    /// Brings the kernel to the desired state: reads the kernel if the cached view is missing or
    /// suspect, then writes the difference in batches.
    fn apply(&mut self) -> ApplyReport;

    /// Re-reads the kernel (repairing drift and tampering), then applies.
    fn resync(&mut self) -> ApplyReport;

    /// Whether the datastore is in sync; deletions of stale own objects wait for `true`.
    fn set_in_sync(&mut self, in_sync: bool);

    /// The outcome of the last apply.
    fn health(&self) -> Health;
}
