//! Support for the end-to-end scenarios in `tests/tests/`: deploying topologies with calico-lab and checking the fabric.
//!
//! A scenario copies a product topology ([`topology::TopologyCopy`]), deploys it under a
//! unique name ([`lab::Lab`], destroyed on drop, with diagnostics printed when the test
//! fails), adds pods through the CNI plugin, then checks the fabric the way an operator
//! would: BGP sessions ([`status`]), the pod routes of every node ([`routes`]) and pod traffic
//! ([`traffic`]). The programs come from one directory ([`binaries`]). [`scenario`] holds the
//! scenarios every product topology goes through (`tests/topology_*.rs` give each its
//! [`scenario::Spec`]).
//!
//! Run (root): `cargo nextest run -p fabric-e2e` (the `topology_*` tests run one at a time,
//! see `.config/nextest.toml`); `FABRIC_E2E_BIN_DIR` points at prebuilt programs.

pub mod binaries;
pub mod lab;
pub mod routes;
pub mod scenario;
pub mod status;
pub mod topology;
pub mod traffic;

pub use lab::{Datastore, Lab, Pod};
pub use topology::TopologyCopy;

/// The pod pool every product topology uses (`CALICO_IPV4POOL_CIDR`).
pub const POD_POOL: &str = "10.244.0.0/16";

/// The pod pool as a network.
pub fn pod_pool() -> ipnet::Ipv4Net {
    POD_POOL
        .parse()
        .unwrap_or_else(|_| unreachable!("a valid constant"))
}
