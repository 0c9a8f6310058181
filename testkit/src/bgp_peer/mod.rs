//! A raw, scriptable BGP peer for tests: it connects to (or accepts) a speaker, completes the
//! handshake with an OPEN built from [`PeerConfig`], keeps KEEPALIVEs flowing, sends UPDATEs
//! built with `bgp-wire` or arbitrary raw bytes, and records everything the speaker sends
//! ([`PeerState`]). [`Feed`] pre-encodes large announcements for benchmarks, and
//! [`TableMode::Count`] turns the peer into a fast counting receiver.
//!
//! Design: blocking std I/O. A reader thread frames and decodes the speaker's messages and
//! updates the shared state under a mutex (waking [`BgpPeer::wait_for`]); a second thread sends
//! KEEPALIVEs. Every write holds the writer lock, so messages never interleave. Sockets keep the
//! network namespace they were created in, so create the peer inside [`crate::Netns::run_in`]
//! (or use [`BgpPeer::connect_in`]) and use it from anywhere.

mod config;
mod feed;
pub mod raw;
mod session;
mod state;

use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bgp_wire::{
    AfiSafi, EncodeError, Message, NextHop, Nlri, Notification, Open, PathAttributes, Prefix,
    SessionContext, end_of_rib, pack_announce, pack_withdraw,
};

pub use config::{PeerConfig, TableMode, ebgp_attributes};
pub use feed::{Feed, FeedError, FeedPlan, FeedReport};
pub use state::{PeerState, Route};

use session::{Shared, keepalive_loop, lock, read_loop};

/// A raw peer failed: I/O, encoding, a deadline, or a feed that does not fit the session.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// A socket operation failed.
    #[error("{what} {addr}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The remote (or listening) address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The codec refused to encode a message.
    #[error("encoding a message for the speaker")]
    Encode(#[from] EncodeError),
    /// No connection arrived or could be made before the deadline.
    #[error("no TCP connection with {addr} within {timeout:?}")]
    NoConnection {
        /// The address.
        addr: SocketAddr,
        /// The deadline.
        timeout: Duration,
    },
    /// A condition was not reached in time.
    #[error("{what} not reached within {timeout:?}; peer state: {state}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        timeout: Duration,
        /// [`PeerState::summary`] at the deadline.
        state: String,
    },
    /// The feed was encoded for another session context.
    #[error("the feed was encoded for {built:?} but the session negotiated {negotiated:?}")]
    FeedContext {
        /// The feed's context.
        built: Box<SessionContext>,
        /// The session's.
        negotiated: Box<SessionContext>,
    },
}

/// One TCP connection to a BGP speaker, driven by the test.
#[derive(Debug)]
pub struct BgpPeer {
    shared: Arc<Shared>,
    config: PeerConfig,
    local: SocketAddr,
    remote: SocketAddr,
    stop_keepalives: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl BgpPeer {
    /// Connects to `addr` (retrying refused connections until `config.timeout`), sends the
    /// configured OPEN and waits until the session is Established.
    pub fn connect(addr: SocketAddr, config: PeerConfig) -> Result<BgpPeer, PeerError> {
        let peer = BgpPeer::connect_unopened(addr, config)?;
        peer.open_and_establish()?;
        Ok(peer)
    }

    /// [`BgpPeer::connect`] from inside `ns` (the socket belongs to that namespace).
    pub fn connect_in(
        ns: &crate::Netns,
        addr: SocketAddr,
        config: PeerConfig,
    ) -> Result<BgpPeer, PeerError> {
        ns.run_in(|| BgpPeer::connect(addr, config))
    }

    /// Connects and starts reading, but sends nothing: the test writes its own OPEN
    /// ([`BgpPeer::send_open`]) or raw bytes.
    pub fn connect_unopened(addr: SocketAddr, config: PeerConfig) -> Result<BgpPeer, PeerError> {
        let deadline = Instant::now() + config.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match TcpStream::connect_timeout(&addr, left.max(Duration::from_millis(1))) {
                Ok(stream) => return BgpPeer::start(stream, config),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionRefused
                            | ErrorKind::TimedOut
                            | ErrorKind::ConnectionReset
                    ) && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(_) if Instant::now() >= deadline => {
                    return Err(PeerError::NoConnection {
                        addr,
                        timeout: config.timeout,
                    });
                }
                Err(source) => {
                    return Err(PeerError::Io {
                        what: "connecting to",
                        addr,
                        source,
                    });
                }
            }
        }
    }

    /// Accepts one connection on `listener` (within `config.timeout`), sends the OPEN and waits
    /// until Established.
    pub fn accept(listener: &TcpListener, config: PeerConfig) -> Result<BgpPeer, PeerError> {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let io = |what, source| PeerError::Io { what, addr, source };
        listener
            .set_nonblocking(true)
            .map_err(|e| io("polling", e))?;
        let deadline = Instant::now() + config.timeout;
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Err(PeerError::NoConnection {
                        addr,
                        timeout: config.timeout,
                    });
                }
                Err(e) => return Err(io("accepting on", e)),
            }
        };
        stream
            .set_nonblocking(false)
            .map_err(|e| io("configuring a connection from", e))?;
        let peer = BgpPeer::start(stream, config)?;
        peer.open_and_establish()?;
        Ok(peer)
    }

    fn start(stream: TcpStream, config: PeerConfig) -> Result<BgpPeer, PeerError> {
        let remote = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let io = |what, source| PeerError::Io {
            what,
            addr: remote,
            source,
        };
        let local = stream
            .local_addr()
            .map_err(|e| io("reading the local address of", e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| io("setting TCP_NODELAY towards", e))?;
        let reader = stream
            .try_clone()
            .map_err(|e| io("cloning the socket of", e))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(PeerState::new(config.table)),
            changed: Condvar::new(),
            writer: Mutex::new(stream),
            keepalives: AtomicBool::new(true),
        });
        let (stop_tx, stop_rx) = channel();
        let r = shared.clone();
        let k = shared.clone();
        let threads = vec![
            std::thread::spawn(move || read_loop(reader, &r)),
            std::thread::spawn(move || keepalive_loop(&k, &stop_rx)),
        ];
        Ok(BgpPeer {
            shared,
            config,
            local,
            remote,
            stop_keepalives: Some(stop_tx),
            threads,
        })
    }

    fn open_and_establish(&self) -> Result<(), PeerError> {
        self.send_open(&self.config.open())?;
        self.wait_for_named("Established", self.config.timeout, |s| {
            s.established || s.closed || !s.notifications.is_empty()
        })?;
        if self.with_state(|s| s.established) {
            Ok(())
        } else {
            Err(PeerError::Timeout {
                what: "Established".into(),
                timeout: self.config.timeout,
                state: self.with_state(PeerState::summary),
            })
        }
    }

    /// Our address on the connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The speaker's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.remote
    }

    /// The configuration the peer was started with.
    pub fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// The negotiated session context (the default before both OPENs are known).
    pub fn context(&self) -> SessionContext {
        self.with_state(|s| s.context)
    }

    /// Runs `f` on the current state.
    pub fn with_state<R>(&self, f: impl FnOnce(&PeerState) -> R) -> R {
        f(&lock(&self.shared.state))
    }

    /// Waits until `pred` holds (checked after every received message) or `timeout` passes.
    pub fn wait_for(
        &self,
        timeout: Duration,
        pred: impl FnMut(&PeerState) -> bool,
    ) -> Result<(), PeerError> {
        self.wait_for_named("the awaited condition", timeout, pred)
    }

    /// [`BgpPeer::wait_for`] with a description for the timeout error.
    pub fn wait_for_named(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&PeerState) -> bool,
    ) -> Result<(), PeerError> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared.state);
        loop {
            if pred(&state) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PeerError::Timeout {
                    what: what.to_string(),
                    timeout,
                    state: state.summary(),
                });
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    fn io(&self, what: &'static str) -> impl FnOnce(std::io::Error) -> PeerError + '_ {
        move |source| PeerError::Io {
            what,
            addr: self.remote,
            source,
        }
    }

    /// Writes arbitrary bytes (for malformed-input tests) as one unit.
    pub fn send_raw(&self, bytes: &[u8]) -> Result<(), PeerError> {
        self.shared.write(bytes).map_err(self.io("writing to"))
    }

    /// Sends an OPEN and records it as ours; answers the speaker's OPEN once both are known.
    pub fn send_open(&self, open: &Open) -> Result<(), PeerError> {
        let bytes = Message::Open(open.clone()).encode(&SessionContext::default())?;
        // Written before it is recorded, so the answering KEEPALIVE can only follow it.
        self.send_raw(&bytes)?;
        self.shared.update(|s| s.local_open = Some(open.clone()));
        self.shared
            .confirm_open_if_ready()
            .map_err(self.io("writing the KEEPALIVE answering OPEN to"))
    }

    /// Encodes `msg` for the negotiated session and sends it.
    pub fn send(&self, msg: &Message) -> Result<(), PeerError> {
        let bytes = msg.encode(&self.context())?;
        self.send_raw(&bytes)
    }

    /// Announces `prefixes` (all IPv4 or all IPv6 unicast) with `attributes` and `next_hop`,
    /// packed into as few UPDATEs as the session allows; returns the number of messages.
    /// Under ADD-PATH send, every prefix gets path identifier 1.
    pub fn announce(
        &self,
        attributes: &PathAttributes,
        next_hop: NextHop,
        prefixes: &[Prefix],
    ) -> Result<usize, PeerError> {
        let (af, nlri) = self.nlri_for(prefixes);
        self.announce_nlri(af, attributes, next_hop, &nlri)
    }

    /// Announces NLRI of family `af` (path identifiers as the caller gives them).
    pub fn announce_nlri(
        &self,
        af: AfiSafi,
        attributes: &PathAttributes,
        next_hop: NextHop,
        nlri: &[Nlri],
    ) -> Result<usize, PeerError> {
        let msgs = pack_announce(&self.context(), af, attributes, next_hop, nlri)?;
        let bytes: Vec<u8> = msgs.iter().flat_map(|m| m.iter().copied()).collect();
        self.send_raw(&bytes)?;
        Ok(msgs.len())
    }

    /// Withdraws `prefixes` (all IPv4 or all IPv6 unicast); returns the number of messages.
    pub fn withdraw(&self, prefixes: &[Prefix]) -> Result<usize, PeerError> {
        let (af, nlri) = self.nlri_for(prefixes);
        self.withdraw_nlri(af, &nlri)
    }

    /// Withdraws NLRI of family `af`.
    pub fn withdraw_nlri(&self, af: AfiSafi, nlri: &[Nlri]) -> Result<usize, PeerError> {
        let msgs = pack_withdraw(&self.context(), af, nlri)?;
        let bytes: Vec<u8> = msgs.iter().flat_map(|m| m.iter().copied()).collect();
        self.send_raw(&bytes)?;
        Ok(msgs.len())
    }

    fn nlri_for(&self, prefixes: &[Prefix]) -> (AfiSafi, Vec<Nlri>) {
        let af = match prefixes.first() {
            Some(Prefix::V6(_)) => AfiSafi::IPV6_UNICAST,
            _ => AfiSafi::IPV4_UNICAST,
        };
        let add_path = self.context().add_path_send.contains(af);
        let nlri = prefixes
            .iter()
            .map(|&p| {
                if add_path {
                    Nlri::with_path_id(p, 1)
                } else {
                    Nlri::new(p)
                }
            })
            .collect();
        (af, nlri)
    }

    /// Sends the End-of-RIB marker for `af`.
    pub fn send_end_of_rib(&self, af: AfiSafi) -> Result<(), PeerError> {
        let bytes = end_of_rib(&self.context(), af)?;
        self.send_raw(&bytes)
    }

    /// Sends a NOTIFICATION (the speaker then closes; so should the test).
    pub fn send_notification(&self, notification: Notification) -> Result<(), PeerError> {
        self.send(&Message::Notification(notification))
    }

    /// Starts or stops the periodic KEEPALIVEs (stop them to make the speaker's hold timer
    /// expire).
    pub fn set_keepalives(&self, on: bool) {
        self.shared.keepalives.store(on, Ordering::SeqCst);
    }

    /// Writes a pre-encoded feed as fast as the socket accepts it. Fails without writing if the
    /// feed was encoded for another session context.
    pub fn send_feed(&self, feed: &Feed) -> Result<FeedReport, PeerError> {
        let ctx = self.context();
        if !feed.fits(&ctx) {
            return Err(PeerError::FeedContext {
                built: Box::new(*feed.context()),
                negotiated: Box::new(ctx),
            });
        }
        let started = Instant::now();
        for chunk in feed.chunks() {
            self.send_raw(chunk)?;
        }
        Ok(FeedReport {
            started,
            finished: Instant::now(),
            bytes: feed.len_bytes(),
            messages: feed.messages(),
            prefixes: feed.prefixes(),
        })
    }

    /// Closes the TCP connection (both directions) without a NOTIFICATION.
    pub fn close(&self) {
        let _ = lock(&self.shared.writer).shutdown(Shutdown::Both);
    }
}

impl Drop for BgpPeer {
    fn drop(&mut self) {
        self.close();
        self.stop_keepalives.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
