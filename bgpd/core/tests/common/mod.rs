//! Helpers shared by the integration tests: speakers, peers and action filters.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bgp_wire::{Message, Notification, PeerKind, Prefix, SessionContext};
use bgpd_core::test_peer::{TestPeer, sent_on};
use bgpd_core::{Action, ConnId, Input, Instant, PeerConfig, Speaker, SpeakerConfig, State};

pub const LOCAL_AS: u32 = 64512;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn pfx(s: &str) -> Prefix {
    s.parse().unwrap()
}

pub fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// A speaker with router id `id`, AS 64512, no connect delay.
pub fn speaker(id: &str) -> Speaker {
    Speaker::new(SpeakerConfig::new(v4(id), LOCAL_AS)).unwrap()
}

pub fn speaker_with(cfg: SpeakerConfig) -> Speaker {
    Speaker::new(cfg).unwrap()
}

/// Our local socket for a peer address.
pub fn local_for(peer: IpAddr, own: &str) -> SocketAddr {
    let _ = peer;
    SocketAddr::new(ip(own), 179)
}

/// Adds a peer and returns the actions.
pub fn add(sp: &mut Speaker, now: Instant, cfg: PeerConfig) -> Vec<Action> {
    let mut out = Vec::new();
    sp.handle(now, Input::AddPeer(cfg), &mut out).unwrap();
    out
}

/// An iBGP test peer (same AS).
pub fn ibgp_peer(addr: &str, id: &str) -> TestPeer {
    TestPeer::new(ip(addr), LOCAL_AS, v4(id), PeerKind::Internal)
}

/// An eBGP test peer.
pub fn ebgp_peer(addr: &str, asn: u32, id: &str) -> TestPeer {
    TestPeer::new(ip(addr), asn, v4(id), PeerKind::External)
}

/// Adds `tp` as a passive peer of `sp` (so no outbound connection races) and establishes the
/// session from the test peer's side. `tweak` edits the config first.
pub fn up(
    sp: &mut Speaker,
    now: Instant,
    tp: &mut TestPeer,
    own: &str,
    tweak: impl FnOnce(&mut PeerConfig),
) -> (ConnId, Vec<Action>) {
    let mut cfg = PeerConfig::new(tp.address, tp.asn);
    cfg.passive = true;
    tweak(&mut cfg);
    let mut out = add(sp, now, cfg);
    let (conn, more) = tp.establish(sp, now, SocketAddr::new(ip(own), 179));
    out.extend(more);
    assert_eq!(state(sp, tp.address), State::Established, "{out:#?}");
    (conn, out)
}

pub fn state(sp: &Speaker, peer: IpAddr) -> State {
    sp.peer_status(peer).unwrap().state
}

/// Messages sent on `conn` decoded with the default (pre-OPEN) context.
pub fn raw_messages(out: &[Action], conn: ConnId) -> Vec<Message> {
    sent_on(out, conn)
        .iter()
        .filter_map(|f| Message::decode(f, &SessionContext::default()).ok())
        .collect()
}

/// The NOTIFICATIONs sent on `conn`.
pub fn notifications(out: &[Action], conn: ConnId) -> Vec<Notification> {
    sent_on(out, conn)
        .iter()
        .filter_map(|f| {
            let ctx = SessionContext {
                extended_message: true,
                ..SessionContext::default()
            };
            match Message::decode(f, &ctx) {
                Ok(Message::Notification(n)) => Some(n),
                _ => None,
            }
        })
        .collect()
}

pub fn closed(out: &[Action], conn: ConnId) -> bool {
    out.iter()
        .any(|a| matches!(a, Action::Close { conn: c } if *c == conn))
}

pub fn connects(out: &[Action]) -> Vec<ConnId> {
    out.iter()
        .filter_map(|a| match a {
            Action::Connect { conn, .. } => Some(*conn),
            _ => None,
        })
        .collect()
}

/// Runs every timer up to `until`, one deadline at a time; returns the actions with their time.
pub fn run_timers(sp: &mut Speaker, until: Instant) -> Vec<(Instant, Action)> {
    let mut all = Vec::new();
    while let Some(at) = sp.next_deadline() {
        if at > until {
            break;
        }
        let mut out = Vec::new();
        sp.poll_timers(at, &mut out);
        all.extend(out.into_iter().map(|a| (at, a)));
    }
    all
}
