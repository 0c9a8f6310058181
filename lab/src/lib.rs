//! calico-lab: deploys containerlab topologies onto network namespaces of one Linux host.
//!
//! The library holds what can be checked without touching the kernel: reading and validating
//! topology files ([`topology`]), the resolved lab ([`model`]), what runs in a node ([`role`])
//! and the CNI exec protocol's data ([`cni`]). The `calico-lab` binary does the rest.

pub mod cni;
pub mod model;
pub mod role;
pub mod topology;
