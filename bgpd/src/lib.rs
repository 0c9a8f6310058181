//! bgpd: the BGP daemon around the sans-IO core ([`bgpd_core`]): tokio sessions with TCP MD5 and
//! GTSM sockets, a TOML configuration, a status socket, Prometheus metrics and the embedding API
//! calico-node uses ([`Daemon`], [`DaemonHandle`]). bgpd writes nothing into the kernel: best
//! paths leave through [`DaemonHandle::routes`] and felix installs them.
//!
//! # Tasks and queues
//!
//! ```text
//!  listener tasks --accepted socket--+
//!  connect tasks ---connected/failed-+--> inbox (bounded, 1024) --> speaker task (owns Speaker)
//!  reader task per connection -frames+        ^                       |  sleeps until the next
//!  DaemonHandle / status socket -----+        |                       |  input or next_deadline()
//!                                             |                       v
//!                      writer task per connection <-- output queue (bytes bounded per connection)
//!                      route subscribers          <-- coalescing map (one entry per prefix)
//! ```
//!
//! * **One owner.** The speaker task is the only one touching the [`bgpd_core::Speaker`]; every
//!   input is serialized through its inbox. Timers are polled before each wait, so a busy inbox
//!   never starves keepalives and hold timers. It runs on its own thread (`bgpd-speaker`,
//!   driven through the runtime's handle), so its CPU bursts (a full table arriving) never hold
//!   up the reader and writer tasks on the runtime's workers: writers drain while the speaker
//!   computes.
//! * **Reading.** A reader task frames messages with `bgp_wire::decode_header` and hands every
//!   whole message of one read (up to 256 KiB) to the speaker task as one batch, zero-copy
//!   (`Bytes` slices of the read buffer). When the inbox is full the reader waits, which stops
//!   reading that socket: TCP flow control then slows that neighbour only. Before a session is
//!   Established the reader accepts the longest message any session could negotiate; the
//!   speaker re-checks each header against the connection's real limit, so an over-long message
//!   still gets the exact NOTIFICATION. From `SessionEstablished` on it frames with the
//!   negotiated maximum.
//! * **Writing, and why it cannot deadlock.** The speaker task never waits on a socket: `Send`
//!   frames are appended to the connection's output queue and a writer task drains it (frames
//!   coalesced into 256 KiB writes). Readers wait only on the inbox, and the speaker task waits
//!   only on the inbox, so there is no cycle. The queue is bounded in bytes
//!   (`output-queue-limit`, 64 MiB by default, several full tables of UPDATEs): a neighbour that
//!   stops reading while more than that is queued is dropped (recorded as its last error,
//!   reported to the speaker as a closed connection), so it cannot grow memory without bound
//!   nor hold up the others. The core already packs UPDATEs by attribute set, so the queue
//!   holds the minimum number of octets.
//! * **Closing.** `Close` closes the write side after the queued frames (the NOTIFICATION)
//!   are written; the reader keeps draining for up to 5 s so the kernel does not reset the
//!   connection and discard them.
//! * **Routes out.** Best-path changes go into a per-subscriber map keyed by prefix: the
//!   speaker task never waits for felix, and a slow consumer sees only the latest selection.
//!
//! # Graceful restart across a process restart
//!
//! With `state-file` set, bgpd writes that file at start and removes it on a clean shutdown
//! (SIGTERM, [`DaemonHandle::shutdown`] with `restart: false`). If the file is already there at
//! start, the previous process crashed, was killed or stopped for a restart: bgpd then starts as
//! a restarting speaker (OPEN with the R bit and, since felix keeps the kernel routes, the F
//! bit), defers route selection until its neighbours' End-of-RIB (or `selection-deferral`), and
//! re-advertises its routes before its own End-of-RIB.

pub mod config;
pub mod daemon;
pub mod fabric;
pub mod metrics;
pub mod net;
pub mod status;

pub use config::{
    Config, ConfigError, FamilyName, GracefulRestartSettings, MaxPrefixConfig, NeighborConfig,
    OriginateConfig, PolicyConfig, RuleConfig,
};
pub use daemon::{
    Daemon, DaemonError, DaemonHandle, ReconfigureReport, Reloader, RouteReceiver, RouteUpdate,
};
pub use status::{NeighborStatus, PathStatus, RouteStatus, Status};
