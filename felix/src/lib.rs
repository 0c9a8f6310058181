//! Felix, the dataplane agent: the calc graph (pure: datastore objects and learned BGP routes
//! to the desired dataplane), the kernel reconcilers (routes, tunnel links, VXLAN neighbours,
//! sysctls, NAT), and the daemon that connects them, with health and Prometheus metrics.
//!
//! Run it with [`run`]: calico-node does so in-process and feeds [`LearnedRoutesUpdate`]s
//! from bgpd; the `felix` binary runs it alone (no BGP: VXLAN-only clusters).

pub mod calc;
pub mod daemon;
pub mod dataplane;
pub mod logging;

pub use calc::{CalcGraph, ConfigOverrides, LearnedRoute, Settings};
pub use daemon::{ConfigError, FelixConfig, FelixError, HealthReport, LearnedRoutesUpdate, run};
