//! Fuzz target: an OPEN body; whatever decodes re-encodes and decodes to the same value.
#![no_main]

use bgp_wire::{Message, Open, SessionContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(open) = Open::decode(body) else { return };
    let ctx = SessionContext::default();
    let msg = Message::Open(open);
    if let Ok(bytes) = msg.encode(&ctx) {
        assert_eq!(Message::decode(&bytes, &ctx).ok(), Some(msg));
    }
});
