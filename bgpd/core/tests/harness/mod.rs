//! A deterministic network of speakers on a virtual clock: in-memory "TCP" connections that
//! deliver each `Send` frame after a fixed delay, in order; links that can be cut (every
//! connection across them stalls forever, as TCP would until the hold timer fires) and healed;
//! nodes that join and leave.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bgpd_core::{Action, ConnId, Input, Instant, PeerConfig, Speaker};
use bytes::Bytes;

/// One speaker and its address.
pub struct Node {
    pub speaker: Speaker,
    pub ip: IpAddr,
}

#[derive(Debug)]
enum Event {
    /// A connection attempt from `from` reaches `to`.
    Syn {
        from: usize,
        conn: ConnId,
        to: IpAddr,
    },
    Connected {
        node: usize,
        conn: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
    },
    ConnectFailed {
        node: usize,
        conn: ConnId,
    },
    Frame {
        node: usize,
        conn: ConnId,
        frame: Bytes,
    },
    Closed {
        node: usize,
        conn: ConnId,
    },
}

#[derive(Debug, Clone, Copy)]
struct Endpoint {
    node: usize,
    conn: ConnId,
    /// Black-holed: nothing is ever delivered again (a cut link).
    dead: bool,
}

/// The simulated network.
pub struct Net {
    pub now: Instant,
    pub nodes: Vec<Option<Node>>,
    by_ip: BTreeMap<IpAddr, usize>,
    events: BTreeMap<(Instant, u64), Event>,
    seq: u64,
    /// (node, conn) -> the other end.
    links: BTreeMap<(usize, ConnId), Endpoint>,
    cut: BTreeSet<(usize, usize)>,
    deadlines: BTreeSet<(Instant, usize)>,
    deadline_of: BTreeMap<usize, Instant>,
    /// One-way delivery delay.
    pub delay: Duration,
    /// How long a connection attempt across a cut link takes to fail.
    pub connect_timeout: Duration,
    /// Events processed (for the report).
    pub steps: u64,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Net {
    pub fn new() -> Net {
        Net {
            now: Instant::ZERO,
            nodes: Vec::new(),
            by_ip: BTreeMap::new(),
            events: BTreeMap::new(),
            seq: 0,
            links: BTreeMap::new(),
            cut: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            deadline_of: BTreeMap::new(),
            delay: Duration::from_millis(1),
            connect_timeout: Duration::from_secs(3),
            steps: 0,
        }
    }

    /// Adds a node; returns its index.
    pub fn add_node(&mut self, speaker: Speaker, ip: IpAddr) -> usize {
        let i = self.nodes.len();
        self.nodes.push(Some(Node { speaker, ip }));
        self.by_ip.insert(ip, i);
        self.refresh_deadline(i);
        i
    }

    /// Removes a node (its process is gone: nothing it had in flight is delivered).
    pub fn remove_node(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            self.by_ip.remove(&n.ip);
        }
        if let Some(at) = self.deadline_of.remove(&i) {
            self.deadlines.remove(&(at, i));
        }
        for (_, e) in self.links.iter_mut() {
            if e.node == i {
                e.dead = true;
            }
        }
        self.links.retain(|(n, _), _| *n != i);
    }

    pub fn node(&mut self, i: usize) -> &mut Speaker {
        &mut self.nodes[i].as_mut().expect("node exists").speaker
    }

    pub fn ip(&self, i: usize) -> IpAddr {
        self.nodes[i].as_ref().expect("node exists").ip
    }

    /// Applies an input to node `i` now.
    pub fn input(&mut self, i: usize, input: Input) {
        let mut out = Vec::new();
        let now = self.now;
        if let Some(n) = self.nodes[i].as_mut() {
            n.speaker
                .handle(now, input, &mut out)
                .expect("input accepted");
        }
        self.process(i, out);
    }

    pub fn add_peer(&mut self, i: usize, cfg: PeerConfig) {
        self.input(i, Input::AddPeer(cfg));
    }

    /// Cuts the link between two nodes: current connections stall, new ones time out.
    pub fn cut(&mut self, a: usize, b: usize) {
        self.cut.insert(pair(a, b));
        for ((n, _), e) in self.links.iter_mut() {
            if pair(*n, e.node) == pair(a, b) {
                e.dead = true;
            }
        }
    }

    pub fn heal(&mut self, a: usize, b: usize) {
        self.cut.remove(&pair(a, b));
    }

    fn schedule(&mut self, at: Instant, e: Event) {
        self.seq += 1;
        self.events.insert((at, self.seq), e);
    }

    fn refresh_deadline(&mut self, i: usize) {
        if let Some(at) = self.deadline_of.remove(&i) {
            self.deadlines.remove(&(at, i));
        }
        if let Some(at) = self.nodes[i]
            .as_ref()
            .and_then(|n| n.speaker.next_deadline())
        {
            self.deadlines.insert((at, i));
            self.deadline_of.insert(i, at);
        }
    }

    fn process(&mut self, i: usize, out: Vec<Action>) {
        let Some(ip) = self.nodes[i].as_ref().map(|n| n.ip) else {
            return;
        };
        let later = self.now + self.delay;
        for a in out {
            match a {
                Action::Connect { conn, remote, .. } => match self.by_ip.get(&remote.ip()) {
                    Some(&j) if !self.cut.contains(&pair(i, j)) => self.schedule(
                        later,
                        Event::Syn {
                            from: i,
                            conn,
                            to: remote.ip(),
                        },
                    ),
                    Some(_) => {
                        let at = self.now + self.connect_timeout;
                        self.schedule(at, Event::ConnectFailed { node: i, conn })
                    }
                    None => self.schedule(later, Event::ConnectFailed { node: i, conn }),
                },
                Action::Send { conn, frames } => {
                    if let Some(e) = self.links.get(&(i, conn)).copied()
                        && !e.dead
                    {
                        for frame in frames {
                            self.schedule(
                                later,
                                Event::Frame {
                                    node: e.node,
                                    conn: e.conn,
                                    frame,
                                },
                            );
                        }
                    }
                }
                Action::Close { conn } => {
                    if let Some(e) = self.links.remove(&(i, conn))
                        && !e.dead
                    {
                        self.schedule(
                            later,
                            Event::Closed {
                                node: e.node,
                                conn: e.conn,
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        let _ = ip;
        self.refresh_deadline(i);
    }

    fn deliver(&mut self, e: Event) {
        let now = self.now;
        let later = now + self.delay;
        match e {
            Event::Syn { from, conn, to } => {
                let Some(&j) = self.by_ip.get(&to) else {
                    self.schedule(later, Event::ConnectFailed { node: from, conn });
                    return;
                };
                if self.cut.contains(&pair(from, j)) || self.nodes[from].is_none() {
                    self.schedule(later, Event::ConnectFailed { node: from, conn });
                    return;
                }
                let from_ip = self.ip(from);
                let local = SocketAddr::new(to, 179);
                let remote = SocketAddr::new(from_ip, 30000 + (conn.0 % 30000) as u16);
                let mut out = Vec::new();
                let accepted = self.node(j).accept(now, local, remote, &mut out);
                self.links.insert(
                    (from, conn),
                    Endpoint {
                        node: j,
                        conn: accepted,
                        dead: false,
                    },
                );
                self.links.insert(
                    (j, accepted),
                    Endpoint {
                        node: from,
                        conn,
                        dead: false,
                    },
                );
                self.schedule(
                    later,
                    Event::Connected {
                        node: from,
                        conn,
                        local: remote,
                        remote: local,
                    },
                );
                self.process(j, out);
            }
            Event::Connected {
                node,
                conn,
                local,
                remote,
            } => self.input_quiet(
                node,
                Input::Connected {
                    conn,
                    local,
                    remote,
                },
            ),
            Event::ConnectFailed { node, conn } => {
                self.input_quiet(node, Input::ConnectFailed { conn })
            }
            Event::Frame { node, conn, frame } => {
                self.input_quiet(node, Input::Received { conn, frame })
            }
            Event::Closed { node, conn } => {
                self.links.remove(&(node, conn));
                self.input_quiet(node, Input::Closed { conn })
            }
        }
    }

    /// Like `input` but for events addressed to a node that may be gone.
    fn input_quiet(&mut self, i: usize, input: Input) {
        if self.nodes.get(i).is_some_and(Option::is_some) {
            self.input(i, input);
        }
    }

    /// Runs events and timers up to `until` (inclusive).
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let ev = self.events.keys().next().map(|(t, _)| *t);
            let tm = self.deadlines.iter().next().map(|(t, _)| *t);
            let next = match (ev, tm) {
                (Some(e), Some(t)) => e.min(t),
                (Some(e), None) => e,
                (None, Some(t)) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = next;
            self.steps += 1;
            if ev == Some(next) {
                if let Some((_, e)) = self.events.pop_first() {
                    self.deliver(e);
                }
            } else if let Some((at, i)) = self.deadlines.pop_first() {
                self.deadline_of.remove(&i);
                let mut out = Vec::new();
                if let Some(n) = self.nodes[i].as_mut() {
                    n.speaker.poll_timers(at, &mut out);
                }
                self.process(i, out);
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Every live node's Loc-RIB as (prefix, best next hop), with locally originated routes
    /// shown as the node's own address.
    pub fn best_routes(&self, i: usize) -> BTreeMap<String, IpAddr> {
        let n = self.nodes[i].as_ref().expect("node exists");
        n.speaker
            .loc_rib()
            .into_iter()
            .filter_map(|r| {
                let best = r.best()?;
                let nh = if best.peer.is_none() {
                    n.ip
                } else {
                    best.attrs.next_hop_addr()
                };
                Some((r.prefix.to_string(), nh))
            })
            .collect()
    }

    pub fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect()
    }
}
