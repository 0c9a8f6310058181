//! The peer's two background threads: the reader (frames, decodes and applies everything the
//! speaker sends, answers its OPEN) and the KEEPALIVE sender (every third of the hold time).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bgp_wire::{
    EXTENDED_MAX_MESSAGE_LEN, Message, PeerKind, SessionContext, decode_header, header::MARKER,
    iana::message_type,
};

use super::state::PeerState;

/// State shared by the test thread and the background threads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<PeerState>,
    /// Notified after every change to `state`.
    pub(crate) changed: Condvar,
    /// The sending half; every write of a whole message (or run of messages) holds it.
    pub(crate) writer: Mutex<TcpStream>,
    /// Whether the KEEPALIVE thread sends.
    pub(crate) keepalives: AtomicBool,
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not hide the state).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A KEEPALIVE message.
pub(crate) fn keepalive_bytes() -> [u8; 19] {
    let mut k = [0u8; 19];
    k[..16].copy_from_slice(&MARKER);
    k[17] = 19;
    k[18] = message_type::KEEPALIVE;
    k
}

impl Shared {
    /// Writes bytes as one unit (no other message interleaves).
    pub(crate) fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        lock(&self.writer).write_all(bytes)
    }

    /// Runs `f` on the state and wakes every waiter.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut PeerState) -> R) -> R {
        let r = f(&mut lock(&self.state));
        self.changed.notify_all();
        r
    }

    /// After either OPEN becomes known: negotiates the session once both are, and answers the
    /// speaker's OPEN with a KEEPALIVE (OpenConfirm).
    pub(crate) fn confirm_open_if_ready(&self) -> std::io::Result<()> {
        let confirm = self.update(|s| {
            let (Some(local), Some(remote)) = (&s.local_open, &s.remote_open) else {
                return false;
            };
            if s.negotiated_hold_time.is_some() {
                return false;
            }
            let kind = if local.asn() == remote.asn() {
                PeerKind::Internal
            } else {
                PeerKind::External
            };
            s.context = SessionContext::negotiate(local, remote, kind);
            s.negotiated_hold_time = Some(local.hold_time.min(remote.hold_time));
            true
        });
        if confirm {
            self.write(&keepalive_bytes())?;
            self.update(|s| {
                s.open_confirmed = true;
                s.established = s.remote_confirmed;
            });
        }
        Ok(())
    }
}

/// Room for the largest frame plus a large read.
const READ_BUFFER: usize = 1 << 20;

/// Reads until EOF or error, applying every message to the shared state.
pub(crate) fn read_loop(mut stream: TcpStream, shared: &Shared) {
    let mut buf = vec![0u8; READ_BUFFER];
    let (mut start, mut end) = (0usize, 0usize);
    let reason = 'read: loop {
        loop {
            let ctx = lock(&shared.state).context;
            let window = buf.get(start..end).unwrap_or_default();
            match decode_header(window, &ctx) {
                Ok(None) => break,
                Err(e) => {
                    let why = format!("framing error: {e}");
                    shared.update(|s| s.decode_errors.push(e));
                    break 'read why;
                }
                Ok(Some(h)) => {
                    let len = usize::from(h.length);
                    let Some(frame) = window.get(..len) else {
                        break;
                    };
                    if let Err(e) = handle_frame(frame, &ctx, shared) {
                        break 'read format!("writing the KEEPALIVE answering OPEN: {e}");
                    }
                    start += len;
                }
            }
        }
        if start == end {
            (start, end) = (0, 0);
        } else if buf.len() - end < EXTENDED_MAX_MESSAGE_LEN {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        match stream.read(&mut buf[end..]) {
            Ok(0) => break "the speaker closed the connection".to_string(),
            Ok(n) => end += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break format!("read error: {e}"),
        }
    };
    shared.update(|s| {
        s.closed = true;
        s.close_reason = Some(reason);
    });
}

fn handle_frame(frame: &[u8], ctx: &SessionContext, shared: &Shared) -> std::io::Result<()> {
    let msg = match Message::decode(frame, ctx) {
        Ok(m) => m,
        Err(e) => {
            shared.update(|s| s.decode_errors.push(e));
            return Ok(());
        }
    };
    let now = Instant::now();
    match msg {
        Message::Open(open) => {
            shared.update(|s| s.remote_open = Some(open));
            shared.confirm_open_if_ready()?;
        }
        Message::Update(u) => shared.update(|s| s.apply_update(u, now)),
        Message::Notification(n) => shared.update(|s| s.notifications.push(n)),
        Message::Keepalive => shared.update(|s| {
            s.keepalives_received += 1;
            s.last_keepalive_at = Some(now);
            if s.remote_open.is_some() {
                s.remote_confirmed = true;
                s.established = s.open_confirmed;
            }
        }),
        Message::RouteRefresh(r) => shared.update(|s| s.route_refreshes.push(r)),
    }
    Ok(())
}

/// Sends a KEEPALIVE every third of the negotiated hold time while the session is established
/// and sending is enabled; returns when `stop` is signalled or dropped, or a write fails.
pub(crate) fn keepalive_loop(shared: &Shared, stop: &Receiver<()>) {
    loop {
        let interval = {
            let s = lock(&shared.state);
            if s.closed {
                return;
            }
            match (s.established, s.negotiated_hold_time) {
                (true, Some(hold)) if hold > 0 => {
                    Some(Duration::from_millis(u64::from(hold) * 1000 / 3))
                }
                _ => None,
            }
        };
        match stop.recv_timeout(interval.unwrap_or(Duration::from_millis(100))) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        if interval.is_some()
            && shared.keepalives.load(Ordering::SeqCst)
            && shared.write(&keepalive_bytes()).is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_built_keepalive_decodes_as_one() {
        let k = keepalive_bytes();
        assert_eq!(
            Message::decode(&k, &SessionContext::default()).unwrap(),
            Message::Keepalive
        );
    }
}
