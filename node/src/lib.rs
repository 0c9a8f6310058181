//! calico-node: node registration and autodetection, running felix and bgpd in one process.
//!
//! * [`settings`]: Calico's environment variables, checked before anything is written.
//! * [`autodetect`]: `IP_AUTODETECTION_METHOD` (first-found, can-reach, interface,
//!   skip-interface, cidr).
//! * [`startup`]: the Node resource (addresses, AS, tunnel addresses, VXLAN MAC), the default
//!   IP pool, the nodename file.
//! * [`run`]: felix and bgpd in one tokio runtime, wired by bgpd's route stream, with the
//!   fabric applier keeping bgpd in step with the datastore.
//! * [`probes`]: `-felix-ready -bird-ready -felix-live -bird-live`.

pub mod autodetect;
pub mod probes;
pub mod run;
pub mod settings;
pub mod startup;

pub use run::{RunConfig, run};
pub use settings::{NodeSettings, SettingError};
