//! Test support: private network namespaces, an etcd server per test, polling helpers.
//!
//! Every root-only test builds its world from [`Netns`] values: each one is a fresh network
//! namespace that is deleted (with every process still inside it) when the value is dropped,
//! also when the test panics. Namespaces left behind by a test process that was killed are swept
//! the next time any test creates one. Nothing here touches the host's own namespace.

#![allow(clippy::unwrap_used)]

pub mod bench_report;
pub mod bgp_peer;
mod etcd;
mod netns;
mod process;
mod proxy;
pub mod routers;

pub use bgp_peer::{BgpPeer, Feed, FeedPlan, PeerConfig, PeerState};
pub use etcd::{EtcdServer, TestEtcd, test_etcd};
pub use netns::{Netns, require_root, veth};
pub use process::{ChildGuard, free_port, wait_until, which};
pub use proxy::TcpProxy;
pub use routers::{Bird, Frr, GoBgp};

use std::sync::atomic::{AtomicU32, Ordering};

/// A name unique to this process and call: `<prefix><pid>x<counter>`.
///
/// Keep `prefix` short when the result names an interface (15 bytes at most).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id())
}
