//! A scripted remote BGP speaker for tests of the core and of drivers: it builds the frames a
//! peer would send (OPEN, KEEPALIVE, UPDATE, End-of-RIB, NOTIFICATION) and decodes what the
//! speaker sends back. It is not a speaker itself: the test decides every step.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bgp_wire::{
    AfiSafi, AsPath, Capability, GracefulRestart, Message, NextHop, Nlri, Notification, Open,
    Origin, PathAttributes, PeerKind, Prefix, SessionContext, Update, end_of_rib, pack_announce,
    pack_withdraw,
};
use bytes::Bytes;

use crate::driver::{Action, ConnId, Input};
use crate::speaker::Speaker;
use crate::time::Instant;

/// The remote side of a session, scripted by a test.
#[derive(Debug, Clone)]
pub struct TestPeer {
    /// The peer's address (as configured in the speaker).
    pub address: IpAddr,
    /// The peer's TCP port.
    pub port: u16,
    /// Its AS.
    pub asn: u32,
    /// Its BGP identifier.
    pub router_id: Ipv4Addr,
    /// Hold time it proposes.
    pub hold_time: u16,
    /// Capabilities it advertises (4-octet AS is added by `Open::new`).
    pub capabilities: Vec<Capability>,
    /// iBGP or eBGP from its point of view.
    pub kind: PeerKind,
    /// The negotiated context, after [`TestPeer::establish`].
    pub ctx: SessionContext,
}

impl TestPeer {
    /// A peer with IPv4+IPv6 unicast, route refresh, enhanced route refresh and graceful
    /// restart (120 s, F bits set) capabilities.
    pub fn new(address: IpAddr, asn: u32, router_id: Ipv4Addr, kind: PeerKind) -> TestPeer {
        TestPeer {
            address,
            port: 40000,
            asn,
            router_id,
            hold_time: 90,
            capabilities: vec![
                Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
                Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
                Capability::RouteRefresh,
                Capability::EnhancedRouteRefresh,
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: false,
                    notification: false,
                    restart_time: 120,
                    families: vec![(AfiSafi::IPV4_UNICAST, true), (AfiSafi::IPV6_UNICAST, true)],
                }),
            ],
            kind,
            ctx: SessionContext::default(),
        }
    }

    /// The peer's socket address.
    pub fn socket(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// Its OPEN.
    pub fn open_message(&self) -> Open {
        Open::new(
            self.asn,
            self.hold_time,
            self.router_id,
            self.capabilities.clone(),
        )
    }

    /// Encodes a message with the negotiated context.
    pub fn frame(&self, msg: &Message) -> Bytes {
        msg.encode(&self.ctx).unwrap_or_default()
    }

    /// KEEPALIVE.
    pub fn keepalive(&self) -> Bytes {
        self.frame(&Message::Keepalive)
    }

    /// NOTIFICATION.
    pub fn notification(&self, code: u8, subcode: u8) -> Bytes {
        self.frame(&Message::Notification(Notification::new(
            code,
            subcode,
            vec![],
        )))
    }

    /// Path attributes with ORIGIN IGP and the given AS path.
    pub fn attributes(&self, as_path: &[u32]) -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(as_path.iter().copied())),
            ..PathAttributes::default()
        }
    }

    /// UPDATEs announcing `prefixes` (one family) with `attrs` and `next_hop`.
    pub fn announce(
        &self,
        prefixes: &[Prefix],
        attrs: &PathAttributes,
        next_hop: NextHop,
    ) -> Vec<Bytes> {
        let Some(first) = prefixes.first() else {
            return Vec::new();
        };
        let af = family_of(first);
        let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(*p)).collect();
        pack_announce(&self.ctx, af, attrs, next_hop, &nlri).unwrap_or_default()
    }

    /// UPDATEs withdrawing `prefixes` (one family).
    pub fn withdraw(&self, prefixes: &[Prefix]) -> Vec<Bytes> {
        let Some(first) = prefixes.first() else {
            return Vec::new();
        };
        let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(*p)).collect();
        pack_withdraw(&self.ctx, family_of(first), &nlri).unwrap_or_default()
    }

    /// End-of-RIB.
    pub fn end_of_rib(&self, af: AfiSafi) -> Bytes {
        end_of_rib(&self.ctx, af).unwrap_or_default()
    }

    /// Decodes a frame the speaker sent.
    pub fn decode(&self, frame: &[u8]) -> Option<Message> {
        Message::decode(frame, &self.ctx).ok()
    }

    /// Decodes every frame sent on `conn` in `out`.
    pub fn messages(&self, out: &[Action], conn: ConnId) -> Vec<Message> {
        sent_on(out, conn)
            .iter()
            .filter_map(|f| self.decode(f))
            .collect()
    }

    /// The UPDATEs sent on `conn` in `out`.
    pub fn updates(&self, out: &[Action], conn: ConnId) -> Vec<Update> {
        self.messages(out, conn)
            .into_iter()
            .filter_map(|m| match m {
                Message::Update(u) => Some(u),
                _ => None,
            })
            .collect()
    }

    /// Connects to the speaker as an inbound connection and runs the OPEN/KEEPALIVE exchange
    /// to Established. Returns the connection and every action produced on the way. Panics
    /// (test helper) if the speaker does not reach Established.
    pub fn establish(
        &mut self,
        speaker: &mut Speaker,
        now: Instant,
        local: SocketAddr,
    ) -> (ConnId, Vec<Action>) {
        let mut out = Vec::new();
        let conn = speaker.accept(now, local, self.socket(), &mut out);
        let their_open = sent_on(&out, conn).iter().find_map(|f| {
            match Message::decode(f, &SessionContext::default()) {
                Ok(Message::Open(o)) => Some(o),
                _ => None,
            }
        });
        let Some(their_open) = their_open else {
            return (conn, out);
        };
        let ours = self.open_message();
        self.ctx = SessionContext::negotiate(&ours, &their_open, self.kind);
        let open = Message::Open(ours)
            .encode(&SessionContext::default())
            .unwrap_or_default();
        for frame in [open, self.keepalive()] {
            let _ = speaker.handle(now, Input::Received { conn, frame }, &mut out);
        }
        (conn, out)
    }

    /// Feeds frames from this peer to the speaker.
    pub fn deliver(
        &self,
        speaker: &mut Speaker,
        now: Instant,
        conn: ConnId,
        frames: Vec<Bytes>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        for frame in frames {
            let _ = speaker.handle(now, Input::Received { conn, frame }, &mut out);
        }
        out
    }
}

fn family_of(p: &Prefix) -> AfiSafi {
    match p {
        Prefix::V4(_) => AfiSafi::IPV4_UNICAST,
        Prefix::V6(_) => AfiSafi::IPV6_UNICAST,
    }
}

/// Every frame sent on `conn` in `out`, in order.
pub fn sent_on(out: &[Action], conn: ConnId) -> Vec<Bytes> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { conn: c, frames } if *c == conn => Some(frames.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}
