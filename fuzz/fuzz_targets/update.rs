//! Fuzz target: an UPDATE body under a context from the first octet; an UPDATE that decodes
//! without errors re-encodes and decodes to the same value.
#![no_main]

use bgp_wire::{AfiSafi, AfiSafiSet, Message, PeerKind, SessionContext, Update};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&bits, body)) = data.split_first() else {
        return;
    };
    let add_path = if bits & 4 != 0 {
        AfiSafiSet::from_families([AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST])
    } else {
        AfiSafiSet::EMPTY
    };
    let ctx = SessionContext {
        four_octet_as: bits & 1 != 0,
        extended_message: true,
        peer_kind: if bits & 2 != 0 {
            PeerKind::Internal
        } else {
            PeerKind::External
        },
        add_path_receive: add_path,
        add_path_send: add_path,
        ..SessionContext::default()
    };
    let Ok(update) = Update::decode(body, &ctx) else {
        return;
    };
    if !update.errors.is_empty() || !ctx.four_octet_as {
        // Discarded attributes are gone, and 2-octet sessions may legitimately reshape AS paths
        // (RFC 6793 §4.2.3), so only clean 4-octet UPDATEs must survive a round trip.
        return;
    }
    let msg = Message::Update(update);
    if let Ok(bytes) = msg.encode(&ctx) {
        assert_eq!(Message::decode(&bytes, &ctx).ok(), Some(msg));
    }
});
