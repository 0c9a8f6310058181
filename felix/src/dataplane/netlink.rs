//! Shared rtnetlink plumbing: the socket, batches of many requests per datagram with one ACK
//! each, single requests, and dumps.
//!
//! The kernel handles rtnetlink requests synchronously inside `sendmsg`, so pipelining single
//! requests gains nothing; packing hundreds of messages into one datagram is what saves time
//! (dataplane.md §2.2). Every message asks for an ACK so each gets its own verdict; the receive
//! buffer is raised with `SO_RCVBUFFORCE` so the ACKs of a full batch are not dropped.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

/// Receive buffer we ask for (the ACKs of a 1,000-message batch need about 1 MiB).
const RECV_BUFFER: usize = 32 << 20;
/// Send buffer we ask for (a datagram must fit in it).
const SEND_BUFFER: usize = 8 << 20;
/// The largest datagram we read (dumps send up to 32 KiB; leave room).
const RECV_CHUNK: usize = 1 << 20;
/// How long a reply may take before we give up (the kernel answers at once; this is a guard).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often an interrupted dump is retried.
const DUMP_ATTEMPTS: usize = 5;

const NLMSG_HDR_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_DUMP_INTR: u16 = 16;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// The kernel's answer to one request: a negative errno, plus the extended-ACK message if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelErrno {
    /// The (positive) errno, e.g. `libc::EEXIST`.
    pub errno: i32,
    /// The kernel's extended-ACK text ("Unknown device type"), when it sent one.
    pub message: Option<String>,
}

impl KernelErrno {
    /// An errno without a message.
    pub fn new(errno: i32) -> KernelErrno {
        KernelErrno {
            errno,
            message: None,
        }
    }

    /// True if this is `errno`.
    pub fn is(&self, errno: i32) -> bool {
        self.errno == errno
    }
}

impl fmt::Display for KernelErrno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", io::Error::from_raw_os_error(self.errno))?;
        if let Some(m) = &self.message {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

impl std::error::Error for KernelErrno {}

/// A netlink failure that is not one message's verdict (socket, decoding, overrun), or a single
/// request's verdict.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket could not be opened or configured.
    #[error("opening an rtnetlink socket")]
    Open(#[source] io::Error),
    /// `sendmsg` failed.
    #[error("sending {messages} netlink messages")]
    Send {
        /// How many messages the datagram held.
        messages: usize,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// `recvmsg` failed (ENOBUFS means the kernel dropped replies).
    #[error("receiving netlink replies")]
    Recv(#[source] io::Error),
    /// No reply came within the guard time.
    #[error("no netlink reply within {0:?}")]
    Timeout(Duration),
    /// A reply did not decode.
    #[error("decoding a netlink reply")]
    Decode(#[source] netlink_packet_core::DecodeError),
    /// A reply was truncated or malformed at the framing level.
    #[error("malformed netlink reply: {0}")]
    Malformed(String),
    /// The dump was interrupted by concurrent changes on every attempt.
    #[error("the dump was interrupted by concurrent changes {0} times")]
    DumpInterrupted(usize),
    /// The kernel rejected the (single) request.
    #[error("the kernel rejected the request")]
    Kernel(#[source] KernelErrno),
}

impl NetlinkError {
    /// The kernel's errno if the kernel rejected the request.
    pub fn errno(&self) -> Option<&KernelErrno> {
        match self {
            NetlinkError::Kernel(e) => Some(e),
            _ => None,
        }
    }
}

/// One request of a batch: the message and its extra `NLM_F_*` flags (`CREATE`, `EXCL`, ...).
#[derive(Debug, Clone)]
pub struct Request {
    /// The rtnetlink message.
    pub message: RouteNetlinkMessage,
    /// Flags besides `NLM_F_REQUEST | NLM_F_ACK`.
    pub flags: u16,
}

/// An rtnetlink socket bound in the calling thread's network namespace.
pub struct Netlink {
    socket: Socket,
    next_seq: u32,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
}

impl fmt::Debug for Netlink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netlink")
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl Netlink {
    /// Opens a `NETLINK_ROUTE` socket in the calling thread's namespace, with large buffers,
    /// capped ACKs and extended ACK messages.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Open)?;
        socket.bind_auto().map_err(NetlinkError::Open)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Open)?;
        // Best effort: without CAP_NET_ADMIN the *FORCE options fail; fall back to the capped
        // plain options (the batch size then has to stay small).
        if setsockopt(&socket, sockopt::RcvBufForce, &RECV_BUFFER).is_err() {
            let _ = setsockopt(&socket, sockopt::RcvBuf, &RECV_BUFFER);
        }
        if setsockopt(&socket, sockopt::SndBufForce, &SEND_BUFFER).is_err() {
            let _ = setsockopt(&socket, sockopt::SndBuf, &SEND_BUFFER);
        }
        setsockopt(
            &socket,
            sockopt::ReceiveTimeout,
            &TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0),
        )
        .map_err(|e| NetlinkError::Open(e.into()))?;
        socket.set_cap_ack(true).map_err(NetlinkError::Open)?;
        socket.set_ext_ack(true).map_err(NetlinkError::Open)?;
        Ok(Netlink {
            socket,
            next_seq: 1,
            send_buf: Vec::new(),
            recv_buf: Vec::with_capacity(RECV_CHUNK),
        })
    }

    /// Sends all `requests` in **one datagram** and returns each one's verdict, in order.
    ///
    /// A socket-level failure returns `Err`: the outcome of the whole batch is then unknown.
    pub fn batch(
        &mut self,
        requests: Vec<Request>,
    ) -> Result<Vec<Result<(), KernelErrno>>, NetlinkError> {
        let count = requests.len();
        if count == 0 {
            return Ok(Vec::new());
        }
        let base = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(count as u32 + 1);
        self.send_buf.clear();
        for (i, req) in requests.into_iter().enumerate() {
            let flags = NLM_F_REQUEST | NLM_F_ACK | req.flags;
            append_message(
                &mut self.send_buf,
                req.message,
                flags,
                base.wrapping_add(i as u32),
            );
        }
        self.socket
            .send(&self.send_buf, 0)
            .map_err(|source| NetlinkError::Send {
                messages: count,
                source,
            })?;

        let mut verdicts: Vec<Option<Result<(), KernelErrno>>> = vec![None; count];
        let mut outstanding = count;
        while outstanding > 0 {
            self.recv()?;
            for frame in Frames::new(&self.recv_buf) {
                let frame = frame?;
                let index = frame.seq.wrapping_sub(base) as usize;
                if index >= count {
                    continue; // a late reply to an earlier, failed batch
                }
                match frame.kind {
                    NLMSG_ERROR => {
                        if verdicts[index].is_none() {
                            outstanding -= 1;
                        }
                        verdicts[index] = Some(parse_error(frame.flags, frame.payload)?);
                    }
                    NLMSG_OVERRUN => {
                        return Err(NetlinkError::Malformed("kernel reported an overrun".into()));
                    }
                    _ => {}
                }
            }
        }
        Ok(verdicts.into_iter().map(|v| v.unwrap_or(Ok(()))).collect())
    }

    /// Sends one request and waits for its ACK; a kernel rejection is [`NetlinkError::Kernel`].
    pub fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), NetlinkError> {
        let mut verdicts = self.batch(vec![Request { message, flags }])?;
        match verdicts.pop() {
            Some(Ok(())) | None => Ok(()),
            Some(Err(e)) => Err(NetlinkError::Kernel(e)),
        }
    }

    /// Dumps with `request` (sent with `NLM_F_DUMP`) and maps each reply through `map`,
    /// keeping the `Some`s. An interrupted dump (`NLM_F_DUMP_INTR`) is restarted.
    pub fn dump<T>(
        &mut self,
        request: RouteNetlinkMessage,
        mut map: impl FnMut(RouteNetlinkMessage) -> Option<T>,
    ) -> Result<Vec<T>, NetlinkError> {
        for _ in 0..DUMP_ATTEMPTS {
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            self.send_buf.clear();
            append_message(
                &mut self.send_buf,
                request.clone(),
                NLM_F_REQUEST | NLM_F_DUMP,
                seq,
            );
            self.socket
                .send(&self.send_buf, 0)
                .map_err(|source| NetlinkError::Send {
                    messages: 1,
                    source,
                })?;
            let mut out = Vec::new();
            let mut interrupted = false;
            'recv: loop {
                self.recv()?;
                for frame in Frames::new(&self.recv_buf) {
                    let frame = frame?;
                    if frame.seq != seq {
                        continue;
                    }
                    interrupted |= frame.flags & NLM_F_DUMP_INTR != 0;
                    match frame.kind {
                        NLMSG_DONE => break 'recv,
                        NLMSG_ERROR => {
                            if let Err(e) = parse_error(frame.flags, frame.payload)? {
                                return Err(NetlinkError::Kernel(e));
                            }
                            break 'recv;
                        }
                        NLMSG_OVERRUN => {
                            return Err(NetlinkError::Malformed(
                                "kernel reported an overrun".into(),
                            ));
                        }
                        _ => {
                            let msg =
                                NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame.bytes);
                            match msg {
                                Ok(msg) => {
                                    if let NetlinkPayload::InnerMessage(inner) = msg.payload
                                        && let Some(t) = map(inner)
                                    {
                                        out.push(t);
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, kind = frame.kind, "skipping an undecodable netlink dump entry");
                                }
                            }
                        }
                    }
                }
            }
            if !interrupted {
                return Ok(out);
            }
            tracing::debug!("netlink dump interrupted by a concurrent change; retrying");
        }
        Err(NetlinkError::DumpInterrupted(DUMP_ATTEMPTS))
    }

    /// Interface name to index, from one `RTM_GETLINK` dump (without statistics).
    pub fn interfaces(&mut self) -> Result<HashMap<String, u32>, NetlinkError> {
        let mut link = LinkMessage::default();
        link.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let request = RouteNetlinkMessage::GetLink(link);
        let pairs = self.dump(request, |msg| match msg {
            RouteNetlinkMessage::NewLink(m) => m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(name) => Some((name.clone(), m.header.index)),
                _ => None,
            }),
            _ => None,
        })?;
        Ok(pairs.into_iter().collect())
    }

    /// The index of the interface called `name` (`None` if there is none), from one
    /// `RTM_GETLINK` request by name: O(1), where [`Netlink::interfaces`] is O(interfaces).
    pub fn interface_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        let mut link = LinkMessage::default();
        link.attributes
            .push(LinkAttribute::IfName(name.to_string()));
        link.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.send_buf.clear();
        append_message(
            &mut self.send_buf,
            RouteNetlinkMessage::GetLink(link),
            NLM_F_REQUEST,
            seq,
        );
        self.socket
            .send(&self.send_buf, 0)
            .map_err(|source| NetlinkError::Send {
                messages: 1,
                source,
            })?;
        loop {
            self.recv()?;
            for frame in Frames::new(&self.recv_buf) {
                let frame = frame?;
                if frame.seq != seq {
                    continue;
                }
                if frame.kind == NLMSG_ERROR {
                    return match parse_error(frame.flags, frame.payload)? {
                        Err(e) if e.is(libc::ENODEV) => Ok(None),
                        Err(e) => Err(NetlinkError::Kernel(e)),
                        Ok(()) => Ok(None),
                    };
                }
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame.bytes)
                    .map_err(|e| NetlinkError::Malformed(e.to_string()))?;
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) = msg.payload {
                    return Ok(Some(m.header.index));
                }
            }
        }
    }

    fn recv(&mut self) -> Result<(), NetlinkError> {
        loop {
            self.recv_buf.clear();
            match self.socket.recv(&mut self.recv_buf, 0) {
                Ok(n) if n > self.recv_buf.len() => {
                    return Err(NetlinkError::Malformed(format!(
                        "datagram of {n} bytes truncated to {}",
                        self.recv_buf.len()
                    )));
                }
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(NetlinkError::Timeout(REPLY_TIMEOUT));
                }
                Err(e) => return Err(NetlinkError::Recv(e)),
            }
        }
    }
}

fn append_message(buf: &mut Vec<u8>, message: RouteNetlinkMessage, flags: u16, seq: u32) {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    msg.finalize();
    let start = buf.len();
    let len = msg.buffer_len();
    let aligned = (len + 3) & !3;
    buf.resize(start + aligned, 0);
    msg.serialize(&mut buf[start..start + len]);
}

/// One netlink message inside a received datagram.
struct Frame<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    /// The whole message, header included.
    bytes: &'a [u8],
    /// The message after the 16-byte header.
    payload: &'a [u8],
}

/// Iterates over the netlink messages of one datagram.
struct Frames<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl<'a> Frames<'a> {
    fn new(buf: &'a [u8]) -> Frames<'a> {
        Frames { buf, offset: 0 }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, NetlinkError>;

    fn next(&mut self) -> Option<Self::Item> {
        // The last frame's padding may run past the end of the buffer.
        let rest = self.buf.get(self.offset..).unwrap_or(&[]);
        if rest.len() < NLMSG_HDR_LEN {
            return None;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDR_LEN || len > rest.len() {
            self.offset = self.buf.len();
            return Some(Err(NetlinkError::Malformed(format!(
                "message length {len} with {} bytes left",
                rest.len()
            ))));
        }
        let frame = Frame {
            kind: u16::from_ne_bytes([rest[4], rest[5]]),
            flags: u16::from_ne_bytes([rest[6], rest[7]]),
            seq: u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]),
            bytes: &rest[..len],
            payload: &rest[NLMSG_HDR_LEN..len],
        };
        self.offset += (len + 3) & !3;
        Some(Ok(frame))
    }
}

/// Decodes an `NLMSG_ERROR` payload: `Ok(())` for an ACK, the errno and extended-ACK message
/// otherwise.
fn parse_error(flags: u16, payload: &[u8]) -> Result<Result<(), KernelErrno>, NetlinkError> {
    if payload.len() < 4 {
        return Err(NetlinkError::Malformed("short NLMSG_ERROR".into()));
    }
    let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
    if code == 0 {
        return Ok(Ok(()));
    }
    let mut err = KernelErrno::new(code.saturating_abs());
    if flags & NLM_F_ACK_TLVS != 0 {
        // After the code comes the original header (capped) or the whole original message.
        let orig = &payload[4..];
        let orig_len = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDR_LEN
        } else if orig.len() >= 4 {
            u32::from_ne_bytes([orig[0], orig[1], orig[2], orig[3]]) as usize
        } else {
            orig.len()
        };
        let mut tlvs = orig.get((orig_len + 3) & !3..).unwrap_or(&[]);
        while tlvs.len() >= 4 {
            let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
            let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
            if len < 4 || len > tlvs.len() {
                break;
            }
            if kind == NLMSGERR_ATTR_MSG {
                let text = &tlvs[4..len];
                let text = text.split(|b| *b == 0).next().unwrap_or(&[]);
                err.message = Some(String::from_utf8_lossy(text).into_owned());
            }
            tlvs = tlvs.get((len + 3) & !3..).unwrap_or(&[]);
        }
    }
    Ok(Err(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_frame(code: i32, msg: Option<&str>) -> Vec<u8> {
        let mut payload = code.to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; NLMSG_HDR_LEN]); // the capped original header
        if let Some(m) = msg {
            let mut text = m.as_bytes().to_vec();
            text.push(0);
            let len = 4 + text.len();
            payload.extend_from_slice(&(len as u16).to_ne_bytes());
            payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
            payload.extend_from_slice(&text);
            while !payload.len().is_multiple_of(4) {
                payload.push(0);
            }
        }
        payload
    }

    #[test]
    fn an_ack_decodes_as_success() {
        let payload = error_frame(0, None);
        assert_eq!(parse_error(NLM_F_CAPPED, &payload).unwrap(), Ok(()));
    }

    #[test]
    fn an_error_with_an_extended_ack_message_keeps_the_text() {
        let payload = error_frame(-libc::EOPNOTSUPP, Some("Unknown device type"));
        let err = parse_error(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload)
            .unwrap()
            .unwrap_err();
        assert_eq!(err.errno, libc::EOPNOTSUPP);
        assert_eq!(err.message.as_deref(), Some("Unknown device type"));
        assert!(err.to_string().contains("Unknown device type"), "{err}");
    }

    #[test]
    fn a_short_error_payload_is_malformed() {
        assert!(parse_error(0, &[1, 2]).is_err());
    }

    #[test]
    fn frames_split_a_datagram_and_reject_a_bad_length() {
        let mut buf = Vec::new();
        for seq in [7u32, 8] {
            buf.extend_from_slice(&20u32.to_ne_bytes());
            buf.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            buf.extend_from_slice(&0u16.to_ne_bytes());
            buf.extend_from_slice(&seq.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(&0i32.to_ne_bytes());
        }
        let seqs: Vec<u32> = Frames::new(&buf).map(|f| f.unwrap().seq).collect();
        assert_eq!(seqs, vec![7, 8]);
        buf[0] = 200;
        assert!(Frames::new(&buf).next().unwrap().is_err());
    }

    #[test]
    fn an_unaligned_last_frame_ends_the_iteration_instead_of_panicking() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&17u32.to_ne_bytes());
        buf.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        buf.extend_from_slice(&0u16.to_ne_bytes());
        buf.extend_from_slice(&9u32.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.push(0);
        let seqs: Vec<u32> = Frames::new(&buf).map(|f| f.unwrap().seq).collect();
        assert_eq!(seqs, vec![9]);
    }
}
