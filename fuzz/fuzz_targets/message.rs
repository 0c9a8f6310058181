//! Fuzz target: any framed message under a session context chosen by the first input octet.
#![no_main]

use bgp_wire::{AfiSafi, AfiSafiSet, Message, PeerKind, SessionContext};
use libfuzzer_sys::fuzz_target;

/// A session context from the bits of one octet.
fn context(bits: u8) -> SessionContext {
    let mut add_path = AfiSafiSet::EMPTY;
    if bits & 0x10 != 0 {
        add_path.insert(AfiSafi::IPV4_UNICAST);
    }
    if bits & 0x20 != 0 {
        add_path.insert(AfiSafi::IPV6_UNICAST);
    }
    SessionContext {
        four_octet_as: bits & 1 != 0,
        extended_message: bits & 2 != 0,
        enhanced_route_refresh: bits & 4 != 0,
        peer_kind: if bits & 8 != 0 {
            PeerKind::Internal
        } else {
            PeerKind::External
        },
        add_path_receive: add_path,
        add_path_send: add_path,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&bits, frame)) = data.split_first() else {
        return;
    };
    let ctx = context(bits);
    if let Ok(Some(header)) = bgp_wire::decode_header(frame, &ctx) {
        let _ = Message::decode(
            frame.get(..usize::from(header.length)).unwrap_or(frame),
            &ctx,
        );
    }
    if let Ok(msg) = Message::decode(frame, &ctx) {
        // Whatever decodes must encode (a decoded UPDATE may exceed nothing but what it came in).
        let _ = msg.encode(&ctx.mirrored());
    }
});
