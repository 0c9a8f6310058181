//! CNI plugins `calico` and `calico-ipam` (CNI spec 1.0.0; 0.3.x and 0.4.0 configurations and
//! results too).
//!
//! * [`spec`]: versions, results, the error object and its codes, VERSION.
//! * [`env`] and [`config`]: the `CNI_*` variables and the network configuration (Calico's
//!   keys), checked with errors that name the field, the value and the rule.
//! * [`datastore`]: the configuration's datastore keys over the usual environment variables.
//! * [`ipam_plugin`]: `calico-ipam` over `fabric_ipam`.
//! * [`calico_plugin`]: `calico`, with [`delegate`] (IPAM through the exec protocol),
//!   [`wiring`] (veth, addresses, routes, sysctls over [`netlink`] in [`netns`]) and
//!   [`endpoint`] (the WorkloadEndpoint).
//! * [`run`]: the binaries' entry point.

pub mod calico_plugin;
pub mod config;
pub mod datastore;
pub mod delegate;
pub mod endpoint;
pub mod env;
pub mod ipam_plugin;
pub mod netlink;
pub mod netns;
pub mod run;
pub mod spec;
pub mod wiring;
