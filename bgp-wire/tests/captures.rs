//! Real BGP messages from BIRD 2.0.12 and GoBGP 3.10 captured with tcpdump in network namespaces
//! (`tests/captures/capture.sh`): every message decodes cleanly under the context negotiated
//! from the captured OPENs, and re-encodes to the same bytes (or, where the sender chose a
//! non-canonical attribute length form, to a message that decodes to the same value).
#![allow(clippy::unwrap_used)]

mod common;

use bgp_wire::{AfiSafi, Capability, Fqdn, Message, NextHop, Open, PeerKind, SessionContext};

const BIRD: &str = include_str!("captures/bird2.hex");
const GOBGP: &str = include_str!("captures/gobgpd.hex");

fn frames(text: &str) -> Vec<Vec<u8>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(common::hex)
        .collect()
}

fn open(frame: &[u8]) -> Open {
    let Message::Open(o) = Message::decode(frame, &SessionContext::default()).unwrap() else {
        panic!("not an OPEN")
    };
    o
}

fn decode_all(text: &str, ctx: &SessionContext) -> Vec<Message> {
    frames(text)
        .iter()
        .map(|f| {
            let msg = Message::decode(f, ctx).unwrap();
            if let Message::Update(u) = &msg {
                assert!(u.errors.is_empty(), "{:?}", u.errors);
            }
            let again = msg.encode(ctx).unwrap();
            if again.as_ref() != &f[..] {
                assert_eq!(
                    Message::decode(&again, ctx).unwrap(),
                    msg,
                    "re-encoding changed the meaning of {f:02x?}"
                );
            }
            msg
        })
        .collect()
}

fn context() -> SessionContext {
    let bird = open(&frames(BIRD)[0]);
    let gobgp = open(&frames(GOBGP)[0]);
    SessionContext::negotiate(&bird, &gobgp, PeerKind::External)
}

#[test]
fn bird_and_gobgp_opens_negotiate_4_octet_as_and_keep_every_capability() {
    let bird = open(&frames(BIRD)[0]);
    let gobgp = open(&frames(GOBGP)[0]);
    assert_eq!((bird.asn(), bird.hold_time), (65001, 9));
    assert_eq!(gobgp.asn(), 65002);
    assert!(
        bird.multiprotocol()
            .eq([AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST])
    );
    assert!(
        bird.capabilities
            .iter()
            .any(|c| matches!(c, Capability::GracefulRestart(g) if g.restart_time == 120))
    );
    assert!(
        bird.capabilities
            .contains(&Capability::EnhancedRouteRefresh)
    );
    // BIRD's long-lived graceful restart (71) is kept verbatim.
    assert!(bird.capabilities.contains(&Capability::Unknown {
        code: 71,
        value: vec![]
    }));
    // GoBGP announces the FQDN capability with an empty domain and extended next hop.
    assert!(
        gobgp
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Fqdn(Fqdn { domain, .. }) if domain.is_empty()))
    );
    assert!(
        gobgp
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::ExtendedNextHop(_)))
    );
    let ctx = context();
    assert!(ctx.four_octet_as);
    assert!(!ctx.extended_message);
}

#[test]
fn bird_updates_carry_calico_blocks_an_ipv6_link_local_next_hop_and_end_of_rib() {
    let msgs = decode_all(BIRD, &context());
    let updates: Vec<_> = msgs
        .iter()
        .filter_map(|m| {
            if let Message::Update(u) = m {
                Some(u)
            } else {
                None
            }
        })
        .collect();
    let prefixes: Vec<String> = updates[0]
        .nlri
        .iter()
        .map(|n| n.prefix.to_string())
        .collect();
    assert_eq!(prefixes, ["10.244.1.0/26", "10.244.1.64/26"]);
    assert_eq!(
        updates[0].attributes.as_path.as_ref().unwrap().to_string(),
        "65001"
    );
    assert_eq!(updates[1].as_end_of_rib(), Some(AfiSafi::IPV4_UNICAST));
    let reach = updates[2].mp_reach.as_ref().unwrap();
    assert_eq!(reach.nlri[0].prefix.to_string(), "fd00:10:244:1::/64");
    assert!(matches!(
        reach.next_hop,
        NextHop::V6 {
            link_local: Some(_),
            ..
        }
    ));
    assert_eq!(updates[3].as_end_of_rib(), Some(AfiSafi::IPV6_UNICAST));
    let Some(Message::Notification(n)) = msgs.last() else {
        panic!("BIRD closed with a NOTIFICATION")
    };
    assert_eq!(n.shutdown_communication(), Some("maintenance window"));
}

#[test]
fn gobgp_updates_carry_communities_ipv6_routes_and_a_withdrawal() {
    let msgs = decode_all(GOBGP, &context());
    let updates: Vec<_> = msgs
        .iter()
        .filter_map(|m| {
            if let Message::Update(u) = m {
                Some(u)
            } else {
                None
            }
        })
        .collect();
    let v4 = updates.iter().find(|u| !u.nlri.is_empty()).unwrap();
    assert_eq!(v4.nlri[0].prefix.to_string(), "10.244.2.0/26");
    assert_eq!(v4.attributes.communities[0].to_string(), "65002:100");
    assert_eq!(v4.attributes.large_communities[0].to_string(), "65002:1:2");
    let v6 = updates.iter().find_map(|u| u.mp_reach.as_ref()).unwrap();
    assert_eq!(v6.nlri[0].prefix.to_string(), "fd00:10:244:2::/64");
    let withdrawn = updates.iter().find(|u| !u.withdrawn.is_empty()).unwrap();
    assert_eq!(withdrawn.withdrawn[0].prefix.to_string(), "10.244.2.0/26");
}
