//! A small rtnetlink client for the plugin's few requests: links (veth pairs), addresses and
//! routes, in the network namespace of the thread that opened it.

use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;

use ipnet::IpNet;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

/// A netlink failure: the socket, or the kernel's refusal of one request.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket could not be opened, written or read.
    #[error("netlink socket failure during {op}")]
    Socket {
        /// What we were doing.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a request.
    #[error("the kernel refused {op}")]
    Kernel {
        /// The request, e.g. `RTM_NEWLINK cali1234`.
        op: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// A reply could not be decoded.
    #[error("undecodable netlink reply to {op}: {detail}")]
    Decode {
        /// The request.
        op: String,
        /// The decoder's message.
        detail: String,
    },
}

impl NetlinkError {
    /// The kernel's errno, if this is a refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Hardware address, `aa:bb:..`.
    pub mac: String,
    /// Administratively up.
    pub up: bool,
    /// MTU.
    pub mtu: u32,
    /// `IFLA_INFO_KIND`, e.g. `veth`.
    pub kind: Option<String>,
}

/// A route as the kernel reports it (main table only is asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Destination.
    pub dst: IpNet,
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Output interface.
    pub oif: Option<u32>,
    /// Scope (253 link, 0 universe).
    pub scope: u8,
}

/// What a veth pair looks like when created.
#[derive(Debug, Clone)]
pub struct VethSpec<'a> {
    /// The host-side name (`caliXXXXXXXXXXX`).
    pub host_name: &'a str,
    /// The host side's MAC.
    pub host_mac: [u8; 6],
    /// The peer's name inside the pod (`CNI_IFNAME`).
    pub peer_name: &'a str,
    /// A file descriptor of the pod's network namespace: the peer is created there.
    pub peer_netns: RawFd,
    /// MTU of both ends.
    pub mtu: u32,
}

/// An rtnetlink socket in the namespace of the thread that opened it.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("seq", &self.seq).finish()
    }
}

fn mac_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn family_of(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

impl Netlink {
    /// Opens a `NETLINK_ROUTE` socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let socket_err = |source| NetlinkError::Socket { op: "open", source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(socket_err)?;
        socket.bind_auto().map_err(socket_err)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(socket_err)?;
        Ok(Netlink { socket, seq: 1 })
    }

    fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> Result<u32, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|source| NetlinkError::Socket { op: "send", source })?;
        Ok(self.seq)
    }

    /// Receives the replies to `seq` until an ACK/error (or DONE for a dump), handing every
    /// inner message to `each`.
    fn receive(
        &mut self,
        seq: u32,
        op: &str,
        mut each: impl FnMut(RouteNetlinkMessage),
    ) -> Result<(), NetlinkError> {
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        loop {
            buf.clear();
            buf.reserve(1 << 16);
            let n = self
                .socket
                .recv(&mut buf, 0)
                .map_err(|source| NetlinkError::Socket { op: "recv", source })?;
            let n = n.min(buf.len());
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
                    as usize;
                if len < 16 || off + len > n {
                    return Err(NetlinkError::Decode {
                        op: op.to_string(),
                        detail: format!("frame length {len} at offset {off} of {n}"),
                    });
                }
                let frame = &buf[off..off + len];
                off += (len + 3) & !3;
                let msg =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame).map_err(|e| {
                        NetlinkError::Decode {
                            op: op.to_string(),
                            detail: e.to_string(),
                        }
                    })?;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(()),
                            Some(code) => Err(NetlinkError::Kernel {
                                op: op.to_string(),
                                source: io::Error::from_raw_os_error(code.get().abs()),
                            }),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::InnerMessage(inner) => each(inner),
                    _ => {}
                }
            }
        }
    }

    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        op: &str,
    ) -> Result<(), NetlinkError> {
        let seq = self.send(message, NLM_F_ACK | flags)?;
        self.receive(seq, op, |_| {})
    }

    fn dump(
        &mut self,
        message: RouteNetlinkMessage,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let seq = self.send(message, NLM_F_DUMP)?;
        let mut out = Vec::new();
        self.receive(seq, op, |m| out.push(m))?;
        Ok(out)
    }

    /// The link called `name`, if it exists.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let seq = self.send(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK)?;
        let mut found = None;
        let op = format!("RTM_GETLINK {name}");
        match self.receive(seq, &op, |m| {
            if let RouteNetlinkMessage::NewLink(l) = m {
                found = Some(l);
            }
        }) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        }
        if found.is_none() {
            // The kernel sends the link, then the ACK; some kernels send only the link.
            return Ok(None);
        }
        Ok(found.map(|l| {
            let mut link = Link {
                index: l.header.index,
                mac: String::new(),
                up: l.header.flags.contains(LinkFlags::Up),
                mtu: 0,
                kind: None,
            };
            for a in l.attributes {
                match a {
                    LinkAttribute::Address(m) => link.mac = mac_text(&m),
                    LinkAttribute::Mtu(m) => link.mtu = m,
                    LinkAttribute::LinkInfo(infos) => {
                        for i in infos {
                            if let LinkInfo::Kind(k) = i {
                                link.kind = Some(k.to_string());
                            }
                        }
                    }
                    _ => {}
                }
            }
            link
        }))
    }

    /// Creates a veth pair, both ends down: `host_name` here, `peer_name` in `peer_netns`.
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<(), NetlinkError> {
        // Created down: opening a veth end before its peer is linked fails with ENOTCONN.
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer_name.to_string()));
        peer.attributes.push(LinkAttribute::Mtu(spec.mtu));
        peer.attributes
            .push(LinkAttribute::NetNsFd(spec.peer_netns));
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.host_name.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
        msg.attributes
            .push(LinkAttribute::Address(spec.host_mac.to_vec()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!(
                "RTM_NEWLINK veth {} peer {}",
                spec.host_name, spec.peer_name
            ),
        )
    }

    /// Brings link `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(
            RouteNetlinkMessage::SetLink(msg),
            0,
            &format!("RTM_SETLINK index {index} up"),
        )
    }

    /// Deletes a link by index.
    pub fn delete_link(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(
            RouteNetlinkMessage::DelLink(msg),
            0,
            &format!("RTM_DELLINK index {index}"),
        )
    }

    /// Deletes the link called `name`; true if it existed.
    pub fn delete_link_named(&mut self, name: &str) -> Result<bool, NetlinkError> {
        match self.link(name)? {
            None => Ok(false),
            Some(l) => match self.delete_link(l.index) {
                Ok(()) => Ok(true),
                Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    /// Adds `addr` to interface `index` (IPv6 without duplicate address detection).
    pub fn add_address(&mut self, index: u32, addr: IpNet) -> Result<(), NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.family = family_of(addr.addr());
        msg.header.prefix_len = addr.prefix_len();
        msg.header.index = index;
        msg.header.scope = AddressScope::Universe;
        if addr.addr().is_ipv4() {
            msg.attributes.push(AddressAttribute::Local(addr.addr()));
        } else {
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        msg.attributes.push(AddressAttribute::Address(addr.addr()));
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("RTM_NEWADDR {addr} index {index}"),
        )
    }

    /// The addresses of interface `index`.
    pub fn addresses(&mut self, index: u32) -> Result<Vec<IpNet>, NetlinkError> {
        let replies = self.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            "RTM_GETADDR dump",
        )?;
        let mut out = Vec::new();
        for m in replies {
            if let RouteNetlinkMessage::NewAddress(a) = m
                && a.header.index == index
            {
                let ip = a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                });
                if let Some(ip) = ip
                    && let Ok(net) = IpNet::new(ip, a.header.prefix_len)
                {
                    out.push(net);
                }
            }
        }
        Ok(out)
    }

    /// Adds a main-table route, protocol `boot` (what `ip route add` writes, and what felix
    /// takes over on `cali*` interfaces instead of fighting): `dst dev oif` with scope link
    /// when `gateway` is `None`, else `dst via gateway dev oif`.
    pub fn add_route(
        &mut self,
        dst: IpNet,
        gateway: Option<IpAddr>,
        oif: u32,
    ) -> Result<(), NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family_of(dst.addr());
        msg.header.destination_prefix_length = dst.prefix_len();
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if dst.prefix_len() > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::from(dst.addr())));
        }
        if let Some(gw) = gateway {
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
        }
        msg.attributes.push(RouteAttribute::Oif(oif));
        let op = match gateway {
            Some(gw) => format!("RTM_NEWROUTE {dst} via {gw} index {oif}"),
            None => format!("RTM_NEWROUTE {dst} index {oif} scope link"),
        };
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        )
    }

    /// The main-table routes of one family.
    pub fn routes(&mut self, ipv4: bool) -> Result<Vec<KernelRoute>, NetlinkError> {
        let mut req = RouteMessage::default();
        req.header.address_family = if ipv4 {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let replies = self.dump(RouteNetlinkMessage::GetRoute(req), "RTM_GETROUTE dump")?;
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            if r.header.table != RouteHeader::RT_TABLE_MAIN {
                continue;
            }
            let mut dst = None;
            let mut gateway = None;
            let mut oif = None;
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                        dst = Some(IpAddr::V4(*ip))
                    }
                    RouteAttribute::Destination(RouteAddress::Inet6(ip)) => {
                        dst = Some(IpAddr::V6(*ip))
                    }
                    RouteAttribute::Gateway(RouteAddress::Inet(ip)) => {
                        gateway = Some(IpAddr::V4(*ip))
                    }
                    RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => {
                        gateway = Some(IpAddr::V6(*ip))
                    }
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            let unspecified = if ipv4 {
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            };
            let Ok(dst) = IpNet::new(
                dst.unwrap_or(unspecified),
                r.header.destination_prefix_length,
            ) else {
                continue;
            };
            out.push(KernelRoute {
                dst,
                gateway,
                oif,
                scope: u8::from(r.header.scope),
            });
        }
        Ok(out)
    }
}
