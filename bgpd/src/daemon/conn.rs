//! One TCP connection: a reader task that frames BGP messages and hands them to the speaker task
//! in batches, and a writer task that drains the connection's output queue. The speaker task
//! never waits for either (see the crate docs on backpressure).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bgp_wire::{HEADER_LEN, SessionContext, decode_header};
use bgpd_core::ConnId;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::owner::Event;

/// Read buffer size: one read can bring many messages, handed over as one batch.
const READ_CHUNK: usize = 256 * 1024;
/// How long a closing connection keeps reading (and discarding) so the kernel does not reset it
/// while our last messages (a NOTIFICATION) are still queued.
const DRAIN_TIME: Duration = Duration::from_secs(5);
/// Write buffer: frames are coalesced into writes of up to this size.
const WRITE_BUFFER: usize = 256 * 1024;

/// A connection as the driver names it: the speaker's id and the speaker generation (a
/// reconfiguration that restarts the speaker starts a new generation whose ids count from 1
/// again, so late events of the old one are recognised and dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Tag {
    /// The speaker generation.
    pub generation: u64,
    /// The speaker's id.
    pub conn: ConnId,
}

/// Why the output queue refused frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow {
    /// Bytes already queued.
    pub queued: usize,
}

/// The speaker task's side of a connection.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The neighbour.
    pub peer: IpAddr,
    /// Output queue (frames in order); dropping the sender closes the connection gracefully.
    output: mpsc::UnboundedSender<Vec<Bytes>>,
    /// Bytes in the output queue not yet written.
    queued: Arc<AtomicUsize>,
    /// Largest message the reader accepts.
    max_len: Arc<AtomicUsize>,
    /// Tells the reader to stop delivering and drain.
    close: Arc<Notify>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Connection {
    /// Splits `stream` and starts its reader and writer. `initial_max_len` is the largest
    /// message the reader frames until [`Connection::set_max_len`].
    pub(crate) fn start(
        conn: Tag,
        peer: IpAddr,
        stream: TcpStream,
        initial_max_len: usize,
        events: mpsc::Sender<Event>,
    ) -> Connection {
        let (rd, wr) = stream.into_split();
        let (output, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let max_len = Arc::new(AtomicUsize::new(initial_max_len));
        let close = Arc::new(Notify::new());
        let reader = tokio::spawn(read_loop(
            conn,
            rd,
            events.clone(),
            max_len.clone(),
            close.clone(),
        ));
        let writer = tokio::spawn(write_loop(conn, wr, rx, queued.clone(), events));
        Connection {
            peer,
            output,
            queued,
            max_len,
            close,
            reader,
            writer,
        }
    }

    /// Queues frames after everything queued before. Refuses (and queues nothing) when the
    /// queue would exceed `limit` bytes.
    pub(crate) fn send(&self, frames: Vec<Bytes>, limit: usize) -> Result<(), Overflow> {
        let bytes: usize = frames.iter().map(Bytes::len).sum();
        let queued = self.queued.load(Ordering::Relaxed);
        if queued + bytes > limit {
            return Err(Overflow { queued });
        }
        self.queued.fetch_add(bytes, Ordering::Relaxed);
        // A send error means the writer has stopped after a write error; it reports that itself.
        let _ = self.output.send(frames);
        Ok(())
    }

    /// Bytes waiting in the output queue.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Frames messages up to `len` octets from now on.
    pub(crate) fn set_max_len(&self, len: usize) {
        self.max_len.store(len, Ordering::Relaxed);
    }

    /// Closes after the queued frames are written; returns the writer to await at shutdown.
    pub(crate) fn close(self) -> JoinHandle<()> {
        self.close.notify_one();
        drop(self.output);
        self.writer
    }

    /// Drops the connection at once, queued frames included.
    pub(crate) fn abort(self) {
        self.reader.abort();
        self.writer.abort();
    }
}

async fn read_loop(
    conn: Tag,
    mut rd: OwnedReadHalf,
    events: mpsc::Sender<Event>,
    max_len: Arc<AtomicUsize>,
    close: Arc<Notify>,
) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            r = rd.read_buf(&mut buf) => r,
            () = close.notified(), if drain_until.is_none() => {
                drain_until = Some(tokio::time::Instant::now() + DRAIN_TIME);
                continue;
            }
            () = sleep_until(drain_until), if drain_until.is_some() => return,
        };
        match read {
            Ok(0) | Err(_) if drain_until.is_some() => return,
            Ok(0) => {
                let _ = events.send(Event::ReadClosed { conn, error: None }).await;
                return;
            }
            Err(e) => {
                let error = Some(e.to_string());
                let _ = events.send(Event::ReadClosed { conn, error }).await;
                return;
            }
            Ok(_) => {}
        }
        if drain_until.is_some() {
            buf.clear();
            continue;
        }
        let max = max_len.load(Ordering::Relaxed);
        let (frames, bad_header) = split_frames(&mut buf, max);
        if !frames.is_empty() && events.send(Event::Frames { conn, frames }).await.is_err() {
            return;
        }
        if bad_header {
            // The speaker answers with a NOTIFICATION and closes; read nothing more.
            buf.clear();
            drain_until = Some(tokio::time::Instant::now() + DRAIN_TIME);
        }
    }
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Splits every whole message off the front of `buf`. Framing allows messages up to `max_len`
/// octets; a header `decode_header` refuses is returned as a 19-octet frame (the speaker turns it
/// into the right NOTIFICATION) and ends framing (`true`).
pub(crate) fn split_frames(buf: &mut BytesMut, max_len: usize) -> (Vec<Bytes>, bool) {
    let ctx = SessionContext {
        extended_message: max_len > bgp_wire::MAX_MESSAGE_LEN,
        ..SessionContext::default()
    };
    let mut frames = Vec::new();
    loop {
        match decode_header(buf, &ctx) {
            Ok(Some(h)) if buf.len() >= usize::from(h.length) => {
                frames.push(buf.split_to(usize::from(h.length)).freeze());
            }
            Ok(_) => return (frames, false),
            Err(_) => {
                frames.push(buf.split_to(HEADER_LEN).freeze());
                return (frames, true);
            }
        }
    }
}

async fn write_loop(
    conn: Tag,
    wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<Bytes>>,
    queued: Arc<AtomicUsize>,
    events: mpsc::Sender<Event>,
) {
    let mut w = BufWriter::with_capacity(WRITE_BUFFER, wr);
    while let Some(batch) = rx.recv().await {
        // Everything already queued goes out before the flush; the queue counter drops as each
        // batch is handed to the buffer (at most WRITE_BUFFER more is held there).
        let mut result = write_batch(&mut w, &batch, &queued).await;
        while result.is_ok() {
            match rx.try_recv() {
                Ok(batch) => result = write_batch(&mut w, &batch, &queued).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = w.flush().await;
        }
        if let Err(e) = result {
            let _ = events
                .send(Event::WriteFailed {
                    conn,
                    error: e.to_string(),
                })
                .await;
            return;
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

async fn write_batch(
    w: &mut BufWriter<OwnedWriteHalf>,
    batch: &[Bytes],
    queued: &AtomicUsize,
) -> std::io::Result<()> {
    for frame in batch {
        w.write_all(frame).await?;
        queued.fetch_sub(frame.len(), Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keepalive() -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&[0, 19, 4]);
        m
    }

    #[test]
    fn whole_messages_are_split_off_and_a_partial_one_stays() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&keepalive());
        buf.extend_from_slice(&keepalive());
        buf.extend_from_slice(&keepalive()[..10]);
        let (frames, bad) = split_frames(&mut buf, 4096);
        assert_eq!(frames.len(), 2);
        assert!(!bad);
        assert_eq!(buf.len(), 10);
    }

    #[test]
    fn a_bad_header_is_passed_on_as_nineteen_octets() {
        let mut buf = BytesMut::new();
        let mut m = keepalive();
        m[18] = 9;
        buf.extend_from_slice(&m);
        buf.extend_from_slice(&[1, 2, 3]);
        let (frames, bad) = split_frames(&mut buf, 4096);
        assert!(bad);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len(), HEADER_LEN);
    }
}
