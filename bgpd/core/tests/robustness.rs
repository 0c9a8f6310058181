//! Property: malformed frames never panic the speaker; each one either leaves the session up
//! or closes it with a NOTIFICATION.
#![allow(clippy::unwrap_used)]

mod common;

use bgpd_core::{Action, Input, State};
use bytes::Bytes;
use common::*;
use proptest::prelude::*;

fn framed(msg_type: u8, body: &[u8]) -> Bytes {
    let mut f = vec![0xff; 16];
    f.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    f.push(msg_type);
    f.extend_from_slice(body);
    Bytes::from(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn malformed_frames_never_panic_and_errors_close_with_a_notification(
        msgs in prop::collection::vec((1u8..=6, prop::collection::vec(any::<u8>(), 0..64)), 1..8)
    ) {
        let mut sp = speaker("10.0.0.1");
        let mut tp = ebgp_peer("192.0.2.1", 65001, "192.0.2.1");
        let (conn, _) = up(&mut sp, secs(0), &mut tp, "192.0.2.100", |_| {});
        for (t, body) in msgs {
            let mut out = Vec::new();
            let _ = sp.handle(secs(1), Input::Received { conn, frame: framed(t, &body) }, &mut out);
            let closed = out.iter().any(|a| matches!(a, Action::Close { conn: c } if *c == conn));
            if closed {
                // A NOTIFICATION goes out before the close, unless the peer sent one.
                let received_notification = t == 3;
                prop_assert!(received_notification || !notifications(&out, conn).is_empty());
                prop_assert_ne!(state(&sp, tp.address), State::Established);
                break;
            }
            prop_assert_eq!(state(&sp, tp.address), State::Established);
        }
    }
}
