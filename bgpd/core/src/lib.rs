//! The BGP speaker core, sans-IO: events and time in, actions out.
//!
//! No sockets, clocks, threads or randomness: the same inputs at the same [`Instant`]s give the
//! same actions. A driver (the tokio daemon, or the in-memory simulation in `tests/`) owns the
//! sockets and the timers and passes whole framed messages.
//!
//! ```text
//!                 +------------------------------- driver ---------------------------------+
//!                 |  sockets (connect/accept/read/write), one timer, the config source      |
//!                 +------------------------------------------------------------------------+
//!   Input ----------> Speaker::handle(now, input, &mut out)        Action <------------------
//!   accept -------->  Speaker::accept(now, local, remote, &mut out) -> ConnId
//!   timer ---------> Speaker::poll_timers(now, &mut out);  next wake-up: next_deadline()
//!                 |                                                                        |
//!   +-------------v---- Speaker (one per BGP instance: router id, local AS) ---------------+
//!   | per peer: FSM over 1..2 connections (collision detection), Hold/Keepalive/ConnectRetry |
//!   |           idle hold backoff, GR helper state, Adj-RIB-Out                              |
//!   |                                                                                        |
//!   |  UPDATE --decode--> checks (RFC 7606, own next hop, first AS, AS/RR loops)             |
//!   |         --> import policy --> Adj-RIB-In (pre + post policy, attributes interned)      |
//!   |         --> queued destinations --(end of every handle/poll)--> decision process       |
//!   |         --> Loc-RIB selection (best + ECMP, reason) ---> Action::BestPathChanged       |
//!   |         --> per Established peer: RR/iBGP rules, export policy, rewrite (AS prepend,   |
//!   |             next hop, ORIGINATOR_ID/CLUSTER_LIST) --> Adj-RIB-Out diff                 |
//!   |         --> UPDATEs packed by attribute set ---> Action::Send                          |
//!   +----------------------------------------------------------------------------------------+
//! ```
//!
//! # Driver contract
//!
//! * **Time.** [`Instant`] is milliseconds on the driver's monotonic clock (virtual in tests).
//!   Pass the current time to every call. After each call, sleep until
//!   [`Speaker::next_deadline`] (or the next input, whichever is first) and then call
//!   [`Speaker::poll_timers`], which fires every due timer.
//! * **Results.** [`Speaker::handle`] returns `Err(InputError)` for input it refuses (invalid
//!   configuration naming the field, unknown peer, ROUTE-REFRESH not negotiated, speaker shut
//!   down); nothing changed then. Protocol failures are never errors: they are actions.
//! * **Connection ids** ([`ConnId`]) are all allocated by the speaker, counting up from 1, never
//!   reused: outbound ones in [`Action::Connect`], inbound ones returned by [`Speaker::accept`].
//!
//! | the driver sees | it calls / does |
//! |---|---|
//! | `Action::Connect { conn, peer, remote, local }` | open TCP to `remote` (bind `local` if set; MD5 key and GTSM from [`Speaker::peer_config`]), then `Input::Connected { conn, local, remote }` or `Input::ConnectFailed { conn }` |
//! | an accepted socket | `let conn = speaker.accept(now, local, remote, &mut out)`; keep reading on `conn` unless `out` holds `Close { conn }` |
//! | bytes on a socket | frame: read 19 octets, `bgp_wire::decode_header` with `SessionContext { extended_message: max_len > 4096, .. }` (4096 until `SessionEstablished` says otherwise), read the rest, pass `Input::Received { conn, frame }` (one whole message, header included). If `decode_header` fails, pass the 19 header octets as the frame: the speaker sends the right NOTIFICATION and closes. |
//! | EOF, reset, write error | `Input::Closed { conn }` (ignored if the speaker already closed it) |
//! | `Action::Send { conn, frames }` | write the frames in order, after anything queued earlier on `conn` |
//! | `Action::Close { conn }` | close after the queued frames are written; the speaker has forgotten `conn`, report nothing more for it |
//! | `Action::SessionEstablished { peer, conn, max_message_len, families }` | frame `conn` with `max_message_len` from now on; status |
//! | `Action::SessionDown { peer, reason }`, `Action::PeerStateChanged { peer, from, to }` | status (logs, metrics, `calicoctl node status`) |
//! | `Action::BestPathChanged { prefix, paths }` | the route stream for felix: the whole new selection for `prefix`, best first then the rest of the ECMP set; empty = withdrawn. `peer: None` marks our own originations (felix programs those itself). |
//!
//! Inputs besides the transport: [`Input::AddPeer`] / [`Input::UpdatePeer`] /
//! [`Input::RemovePeer`] (configuration), [`Input::Originate`] / [`Input::WithdrawOrigin`]
//! (our routes), [`Input::RouteRefresh`] (soft inbound reset), [`Input::NextHopCost`] (the
//! IGP-cost hook: next hops never set are reachable at cost 0), [`Input::AdminDown`] /
//! [`Input::AdminUp`], [`Input::Shutdown`] (`restart: true` for a graceful restart: closes
//! without NOTIFICATION and withdraws nothing, so peers keep our routes stale and felix keeps
//! its kernel routes; start the new process with `graceful_restart.restarting = true`).
//!
//! Everything in the status API comes from the read-only views: [`Speaker::peers`],
//! [`Speaker::peer_status`], [`Speaker::loc_rib`], [`Speaker::route`],
//! [`Speaker::adj_rib_in`], [`Speaker::adj_rib_out`].
//!
//! # Processing model
//!
//! Each `handle`/`accept`/`poll_timers` call applies its event, then runs the decision process
//! over every destination it touched and advertises the differences, so one inbound UPDATE of
//! 1,000 prefixes becomes one batch: one decision pass, and per peer UPDATEs packed by
//! attribute set. Attribute sets are interned ([`RouteAttrs`] behind an `Arc`), prefixes live in
//! one paged table with a hash index, and each Adj-RIB-Out is an array of attribute pointers:
//! `examples/throughput.rs` measures about 1.5 M routes/s and about 72 bytes per route
//! (Adj-RIB-In + Loc-RIB + one Adj-RIB-Out) in a release build.
//!
//! # Notes on the RFCs
//!
//! * RFC 7606 `AfiSafiDisable` is not implemented: it resets the session (allowed by §2).
//! * RFC 8538 is not implemented (see `gr`): any NOTIFICATION ends GR helper mode.
//! * RFC 8212 default-deny is not applied (see [`policy`]).
//! * Idle hold delays our own connection attempts; inbound connections from an enabled peer
//!   are accepted at any time (so a restarting peer is never refused).
//! * Only IPv4 and IPv6 unicast are carried; Extended Next Hop (RFC 8950) and ADD-PATH are not
//!   negotiated.

pub mod attrs;
pub mod config;
pub mod decision;
pub mod driver;
pub mod error;
pub mod family;
pub mod policy;
pub mod test_peer;
pub mod time;
pub mod views;

mod export;
mod gr;
mod hash;
mod import;
mod peer;
mod rib;
mod session;
mod speaker;
mod timers;

pub use attrs::RouteAttrs;
pub use config::{
    DecisionConfig, GracefulRestartConfig, MaxPrefix, NextHopMode, PeerConfig, Secret,
    SpeakerConfig,
};
pub use decision::DecisionReason;
pub use driver::{
    Action, ConnId, DownReason, Input, NextHopCost, OriginAttributes, RoutePath, State,
};
pub use error::{ConfigError, InputError};
pub use family::{Family, FamilySet};
pub use policy::{Match, Operation, PeerType, Policy, PolicyRule, PrefixOp, RouteSource, Verdict};
pub use speaker::Speaker;
pub use time::Instant;
pub use views::{FamilyCounters, PathView, PeerStatus, RouteView, SessionStatus};
