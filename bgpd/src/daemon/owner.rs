//! The speaker task: the only owner of the [`Speaker`]. Every input (frames, connection events,
//! accepted sockets, control requests) arrives on one bounded channel and is applied in order;
//! between inputs the task sleeps until the next input or [`Speaker::next_deadline`]. Actions are
//! carried out without waiting: frames go to per-connection output queues, connections are
//! opened by spawned tasks that report back on the same channel.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgpd_core::{Action, ConnId, Input, RoutePath, Speaker};
use bytes::Bytes;
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::ReconfigureReport;
use super::conn::{Connection, Tag};
use super::restart::StateFile;
use super::routes::{RouteReceiver, RouteSink};
use crate::config::{Config, ConfigError, TransportOptions};
use crate::metrics::{LiveMetrics, MetricsSnapshot};
use crate::net;
use crate::status::{
    DriverPeerFacts, LastError, NeighborStatus, RouteStatus, Status, neighbor_status,
};

/// How long shutdown waits for the last NOTIFICATIONs to be written.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// Added to connection timeouts of neighbours with a TCP MD5 key: the usual cause.
const MD5_HINT: &str = " (TCP MD5 is configured: a different password on either side makes the \
                        neighbour drop our segments silently)";

/// Everything the speaker task receives.
#[derive(Debug)]
pub(crate) enum Event {
    /// Whole messages read from a connection.
    Frames { conn: Tag, frames: Vec<Bytes> },
    /// EOF (`error: None`) or a read error.
    ReadClosed { conn: Tag, error: Option<String> },
    /// A write failed.
    WriteFailed { conn: Tag, error: String },
    /// An outbound connection is up.
    Connected { conn: Tag, stream: TcpStream },
    /// An outbound connection attempt failed.
    ConnectFailed { conn: Tag, error: String },
    /// A listener accepted a connection.
    Accepted {
        stream: TcpStream,
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// A request from the API.
    Control(Control),
}

/// Requests from [`crate::DaemonHandle`].
#[derive(Debug)]
pub(crate) enum Control {
    Reconfigure {
        config: Box<Config>,
        reply: oneshot::Sender<Result<ReconfigureReport, ConfigError>>,
    },
    Status(oneshot::Sender<Status>),
    Routes {
        prefix: Option<IpNet>,
        reply: oneshot::Sender<Vec<RouteStatus>>,
    },
    Subscribe(oneshot::Sender<RouteReceiver>),
    AdminDown {
        peer: IpAddr,
        message: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    AdminUp {
        peer: IpAddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Metrics(oneshot::Sender<MetricsSnapshot>),
    Shutdown {
        restart: bool,
        reply: oneshot::Sender<()>,
    },
}

/// The monotonic clock of the core (milliseconds since the daemon started) and its wall time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: tokio::time::Instant,
    start_unix_ms: u64,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let start_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Clock {
            start: tokio::time::Instant::now(),
            start_unix_ms,
        }
    }

    pub(crate) fn now(&self) -> bgpd_core::Instant {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        bgpd_core::Instant::from_millis(ms)
    }

    pub(crate) fn deadline(&self, at: bgpd_core::Instant) -> tokio::time::Instant {
        self.start + Duration::from_millis(at.as_millis())
    }

    pub(crate) fn unix_ms(&self, at: bgpd_core::Instant) -> u64 {
        self.start_unix_ms.saturating_add(at.as_millis())
    }

    pub(crate) fn now_unix_ms(&self) -> u64 {
        self.unix_ms(self.now())
    }
}

/// A bound listener and its accept loop.
#[derive(Debug)]
pub(crate) struct ListenerTask {
    pub listener: Arc<TcpListener>,
    pub task: JoinHandle<()>,
}

impl ListenerTask {
    /// Starts accepting on `listener`, handing sockets to the speaker task.
    pub(crate) fn start(listener: TcpListener, events: mpsc::Sender<Event>) -> ListenerTask {
        let listener = Arc::new(listener);
        let l = listener.clone();
        let task = tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((stream, remote)) => {
                        let Ok(local) = stream.local_addr() else {
                            continue;
                        };
                        let ev = Event::Accepted {
                            stream,
                            local,
                            remote,
                        };
                        if events.send(ev).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        ListenerTask { listener, task }
    }
}

/// Whether the task goes on.
enum Flow {
    Continue,
    Stop,
}

/// The speaker task's state.
pub(crate) struct Owner {
    pub(crate) speaker: Speaker,
    pub(crate) config: Config,
    pub(crate) restarting: bool,
    pub(crate) clock: Clock,
    /// Generation of `speaker` (see [`Tag`]).
    pub(crate) generation: u64,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) conns: HashMap<ConnId, Connection>,
    pub(crate) connecting: HashMap<ConnId, (IpAddr, JoinHandle<()>)>,
    pub(crate) closing: Vec<JoinHandle<()>>,
    pub(crate) listeners: BTreeMap<SocketAddr, ListenerTask>,
    pub(crate) transports: HashMap<IpAddr, TransportOptions>,
    pub(crate) facts: HashMap<IpAddr, DriverPeerFacts>,
    pub(crate) subscribers: Vec<Arc<RouteSink>>,
    pub(crate) route_changes: Vec<(IpNet, Vec<RoutePath>)>,
    pub(crate) overflowed: Vec<ConnId>,
    pub(crate) out: Vec<Action>,
    pub(crate) live: LiveMetrics,
    pub(crate) state_file: Option<StateFile>,
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Owner {
    /// Largest message the readers frame before a session is Established: the most any session
    /// can negotiate. The speaker re-checks every header against the connection's real limit,
    /// so an over-long message still gets the exact NOTIFICATION.
    pub(crate) fn initial_max_len(&self) -> usize {
        if self.config.extended_message {
            bgp_wire::EXTENDED_MAX_MESSAGE_LEN
        } else {
            bgp_wire::MAX_MESSAGE_LEN
        }
    }

    /// Runs until shutdown.
    pub(crate) async fn run(mut self, mut inbox: mpsc::Receiver<Event>) {
        self.dispatch();
        loop {
            let now = self.clock.now();
            if self.speaker.next_deadline().is_some_and(|d| d <= now) {
                self.speaker.poll_timers(now, &mut self.out);
                self.dispatch();
            }
            let deadline = self.speaker.next_deadline().map(|d| self.clock.deadline(d));
            let event = tokio::select! {
                ev = inbox.recv() => ev,
                () = sleep_until(deadline) => continue,
            };
            let Some(event) = event else { break };
            if let Flow::Stop = self.on_event(event).await {
                break;
            }
        }
    }

    /// The speaker's id of a connection of the current generation.
    fn current(&self, tag: Tag) -> Option<ConnId> {
        (tag.generation == self.generation).then_some(tag.conn)
    }

    /// The driver's name of a connection of the current generation.
    pub(crate) fn tag(&self, conn: ConnId) -> Tag {
        Tag {
            generation: self.generation,
            conn,
        }
    }

    fn facts(&mut self, peer: IpAddr) -> &mut DriverPeerFacts {
        self.facts.entry(peer).or_default()
    }

    /// Records (and logs) a socket-level error for the status API.
    fn transport_error(&mut self, peer: IpAddr, message: String) {
        if message.contains(MD5_HINT) {
            tracing::warn!(%peer, error = %message, "no connection");
        } else {
            tracing::debug!(%peer, error = %message, "connection problem");
        }
        let at_unix_ms = self.clock.now_unix_ms();
        self.facts(peer).transport_error = Some(LastError {
            at_unix_ms,
            message,
        });
    }

    async fn on_event(&mut self, event: Event) -> Flow {
        match event {
            Event::Frames { conn, frames } => {
                if let Some(conn) = self.current(conn) {
                    self.on_frames(conn, frames);
                }
            }
            Event::ReadClosed { conn, error } => {
                if let Some(conn) = self.current(conn) {
                    self.on_transport_down(conn, error);
                }
            }
            Event::WriteFailed { conn, error } => {
                if let Some(conn) = self.current(conn) {
                    self.on_transport_down(conn, Some(error));
                }
            }
            Event::Connected { conn, stream } => {
                if let Some(conn) = self.current(conn) {
                    self.on_connected(conn, stream);
                }
            }
            Event::ConnectFailed { conn, error } => {
                let Some(conn) = self.current(conn) else {
                    return Flow::Continue;
                };
                if let Some((peer, _)) = self.connecting.remove(&conn) {
                    self.transport_error(peer, error);
                    let now = self.clock.now();
                    let _ = self
                        .speaker
                        .handle(now, Input::ConnectFailed { conn }, &mut self.out);
                    self.dispatch();
                }
            }
            Event::Accepted {
                stream,
                local,
                remote,
            } => self.on_accepted(stream, local, remote),
            Event::Control(c) => return self.on_control(c).await,
        }
        Flow::Continue
    }

    fn on_frames(&mut self, conn: ConnId, frames: Vec<Bytes>) {
        let Some(peer) = self.conns.get(&conn).map(|c| c.peer) else {
            return;
        };
        for frame in frames {
            if !self.conns.contains_key(&conn) {
                return;
            }
            let msg_type = frame.get(18).copied().unwrap_or(0);
            self.facts(peer).received.count(msg_type);
            let now = self.clock.now();
            let started = (msg_type == 2).then(std::time::Instant::now);
            let _ = self
                .speaker
                .handle(now, Input::Received { conn, frame }, &mut self.out);
            if let Some(t) = started {
                self.live.update_seconds.observe(t.elapsed().as_secs_f64());
            }
            self.dispatch();
        }
    }

    fn on_transport_down(&mut self, conn: ConnId, error: Option<String>) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        let peer = c.peer;
        c.abort();
        if let Some(e) = error {
            tracing::info!(%peer, %conn, error = %e, "connection failed");
            self.transport_error(peer, e);
        } else {
            tracing::debug!(%peer, %conn, "connection closed by the peer");
        }
        let now = self.clock.now();
        let _ = self
            .speaker
            .handle(now, Input::Closed { conn }, &mut self.out);
        self.dispatch();
    }

    fn on_connected(&mut self, conn: ConnId, stream: TcpStream) {
        let Some((peer, _)) = self.connecting.remove(&conn) else {
            return; // the speaker gave up on this attempt; dropping the stream closes it
        };
        let (Ok(local), Ok(remote)) = (stream.local_addr(), stream.peer_addr()) else {
            self.transport_error(peer, "connection lost right after connect".into());
            let now = self.clock.now();
            let _ = self
                .speaker
                .handle(now, Input::ConnectFailed { conn }, &mut self.out);
            self.dispatch();
            return;
        };
        tracing::debug!(%peer, %conn, %local, "connected");
        let c = Connection::start(
            self.tag(conn),
            peer,
            stream,
            self.initial_max_len(),
            self.events.clone(),
        );
        self.conns.insert(conn, c);
        let now = self.clock.now();
        let _ = self.speaker.handle(
            now,
            Input::Connected {
                conn,
                local,
                remote,
            },
            &mut self.out,
        );
        self.dispatch();
    }

    fn on_accepted(&mut self, stream: TcpStream, local: SocketAddr, remote: SocketAddr) {
        let peer = remote.ip();
        if let Some(opts) = self.transports.get(&peer)
            && let Err(e) = net::check_accepted(&stream, remote, opts)
        {
            tracing::warn!(%peer, error = %e, "inbound connection refused");
            self.transport_error(peer, e);
            return;
        }
        let _ = stream.set_nodelay(true);
        let now = self.clock.now();
        let conn = self.speaker.accept(now, local, remote, &mut self.out);
        tracing::debug!(%peer, %conn, %local, "accepted");
        let c = Connection::start(
            self.tag(conn),
            peer,
            stream,
            self.initial_max_len(),
            self.events.clone(),
        );
        self.conns.insert(conn, c);
        self.dispatch();
    }

    /// Carries out the queued actions (and anything they cause), then publishes route changes.
    pub(crate) fn dispatch(&mut self) {
        loop {
            let mut out = std::mem::take(&mut self.out);
            for action in out.drain(..) {
                self.apply(action);
            }
            self.out = out;
            let Some(conn) = self.overflowed.pop() else {
                break;
            };
            let now = self.clock.now();
            let _ = self
                .speaker
                .handle(now, Input::Closed { conn }, &mut self.out);
        }
        self.publish_routes();
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Connect {
                conn,
                peer,
                remote,
                local,
            } => self.connect(conn, peer, remote, local),
            Action::Send { conn, frames } => self.send(conn, frames),
            Action::Close { conn } => self.close(conn),
            Action::SessionEstablished {
                peer,
                conn,
                max_message_len,
                families,
            } => {
                if let Some(c) = self.conns.get(&conn) {
                    c.set_max_len(max_message_len);
                }
                tracing::info!(%peer, %conn, %families, max_message_len, "session established");
            }
            Action::SessionDown { peer, reason } => {
                tracing::warn!(%peer, reason = %reason, "session down");
                self.facts(peer).flaps += 1;
            }
            Action::BestPathChanged { prefix, paths } => {
                self.live.best_path_changes.inc();
                if !self.subscribers.is_empty() {
                    self.route_changes.push((prefix, paths));
                }
            }
            Action::PeerStateChanged { peer, from, to } => {
                tracing::info!(%peer, %from, %to, "neighbour state changed");
            }
        }
    }

    fn connect(&mut self, conn: ConnId, peer: IpAddr, remote: SocketAddr, local: Option<IpAddr>) {
        let opts = self
            .transports
            .get(&peer)
            .cloned()
            .unwrap_or(TransportOptions {
                password: None,
                ttl_security: None,
                ttl: None,
            });
        let timeout = Duration::from_secs(u64::from(self.config.connect_retry).max(1));
        let events = self.events.clone();
        tracing::debug!(%peer, %conn, %remote, "connecting");
        let tag = self.tag(conn);
        let task = tokio::spawn(async move {
            let conn = tag;
            let ev = match net::connect(remote, local, &opts, timeout).await {
                Ok(stream) => Event::Connected { conn, stream },
                Err(e) => {
                    let hint =
                        if e.kind() == std::io::ErrorKind::TimedOut && opts.password.is_some() {
                            MD5_HINT
                        } else {
                            ""
                        };
                    Event::ConnectFailed {
                        conn,
                        error: format!("connect to {remote}: {e}{hint}"),
                    }
                }
            };
            let _ = events.send(ev).await;
        });
        self.connecting.insert(conn, (peer, task));
    }

    fn send(&mut self, conn: ConnId, frames: Vec<Bytes>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let peer = c.peer;
        let facts = self.facts.entry(peer).or_default();
        for f in &frames {
            facts.sent.count(f.get(18).copied().unwrap_or(0));
        }
        let limit = self.config.output_queue_limit;
        if let Err(o) = c.send(frames, limit) {
            tracing::warn!(
                %peer, %conn, queued = o.queued, limit,
                "output queue full: the neighbour is not reading; dropping the connection"
            );
            self.transport_error(
                peer,
                format!(
                    "output queue overflow: {} bytes waiting (limit {limit}); the neighbour is not reading",
                    o.queued
                ),
            );
            if let Some(c) = self.conns.remove(&conn) {
                c.abort();
            }
            self.overflowed.push(conn);
        }
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            tracing::debug!(peer = %c.peer, %conn, "closing");
            self.closing.retain(|w| !w.is_finished());
            self.closing.push(c.close());
        } else if let Some((peer, task)) = self.connecting.remove(&conn) {
            task.abort();
            // Only neighbours still configured get the error (a removed one has no status).
            let Some(opts) = self.transports.get(&peer) else {
                return;
            };
            let hint = if opts.password.is_some() {
                MD5_HINT
            } else {
                ""
            };
            self.transport_error(
                peer,
                format!(
                    "connection attempt abandoned before it completed (ConnectRetry time ran out \
                     or the neighbour was stopped){hint}"
                ),
            );
        }
    }

    fn publish_routes(&mut self) {
        if self.route_changes.is_empty() {
            return;
        }
        self.subscribers.retain(|s| Arc::strong_count(s) > 1);
        for s in &self.subscribers {
            s.push(&self.route_changes);
        }
        self.route_changes.clear();
    }

    async fn on_control(&mut self, c: Control) -> Flow {
        match c {
            Control::Reconfigure { config, reply } => {
                let r = self.reconfigure(*config);
                let _ = reply.send(r);
            }
            Control::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Control::Routes { prefix, reply } => {
                let routes = match prefix {
                    Some(p) => self
                        .speaker
                        .route(&p)
                        .map(|r| vec![RouteStatus::from_view(&r)])
                        .unwrap_or_default(),
                    None => self
                        .speaker
                        .loc_rib()
                        .iter()
                        .map(RouteStatus::from_view)
                        .collect(),
                };
                let _ = reply.send(routes);
            }
            Control::Subscribe(reply) => {
                let sink = Arc::new(RouteSink::default());
                let all: Vec<(IpNet, Vec<RoutePath>)> = self
                    .speaker
                    .loc_rib()
                    .into_iter()
                    .map(|r| {
                        let paths = r
                            .paths
                            .iter()
                            .filter(|p| p.ecmp)
                            .map(|p| RoutePath {
                                peer: p.peer,
                                attrs: p.attrs.clone(),
                            })
                            .collect();
                        (r.prefix, paths)
                    })
                    .filter(|(_, paths): &(IpNet, Vec<RoutePath>)| !paths.is_empty())
                    .collect();
                sink.push(&all);
                self.subscribers.push(sink.clone());
                let _ = reply.send(RouteReceiver { sink });
            }
            Control::AdminDown {
                peer,
                message,
                reply,
            } => {
                let now = self.clock.now();
                let r = self
                    .speaker
                    .handle(now, Input::AdminDown { peer, message }, &mut self.out);
                self.dispatch();
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            Control::AdminUp { peer, reply } => {
                let now = self.clock.now();
                let r = self
                    .speaker
                    .handle(now, Input::AdminUp { peer }, &mut self.out);
                self.dispatch();
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            Control::Metrics(reply) => {
                let _ = reply.send(self.metrics());
            }
            Control::Shutdown { restart, reply } => {
                self.shutdown(restart).await;
                let _ = reply.send(());
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    pub(crate) fn neighbors(&self) -> Vec<NeighborStatus> {
        let empty = DriverPeerFacts::default();
        self.speaker
            .peers()
            .iter()
            .map(|p| {
                let facts = self.facts.get(&p.address).unwrap_or(&empty);
                neighbor_status(p, facts, |at| self.clock.unix_ms(at))
            })
            .collect()
    }

    fn status(&self) -> Status {
        Status {
            router_id: self.config.router_id,
            asn: self.config.asn,
            restarting: self.restarting,
            started_unix_ms: self.clock.unix_ms(bgpd_core::Instant::ZERO),
            table_prefixes: self.speaker.prefix_count(),
            neighbors: self.neighbors(),
        }
    }

    fn metrics(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            neighbors: self.neighbors(),
            output_queue: self.conns.values().map(|c| (c.peer, c.queued())).collect(),
            table_prefixes: self.speaker.prefix_count(),
            live: self.live.clone(),
        }
    }

    async fn shutdown(&mut self, restart: bool) {
        tracing::info!(restart, "shutting down");
        let now = self.clock.now();
        let _ = self
            .speaker
            .handle(now, Input::Shutdown { restart }, &mut self.out);
        self.dispatch();
        for (_, l) in std::mem::take(&mut self.listeners) {
            l.task.abort();
        }
        for (_, (_, task)) in self.connecting.drain() {
            task.abort();
        }
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(conn);
        }
        let writers = std::mem::take(&mut self.closing);
        let _ = tokio::time::timeout(SHUTDOWN_FLUSH, async {
            for w in writers {
                let _ = w.await;
            }
        })
        .await;
        for s in self.subscribers.drain(..) {
            s.close();
        }
        if let Some(f) = &self.state_file
            && !restart
        {
            f.remove();
        }
    }
}
