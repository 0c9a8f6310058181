//! The kernel side of VTEP neighbours: ARP/ND and FDB entries as the kernel reports them, the
//! `NeighbourKernel` trait, and its rtnetlink implementation (batched `RTM_NEWNEIGH`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::dataplane::addr::{IpFamily, MacAddr};
use crate::dataplane::netlink::{KernelErrno, Netlink, NetlinkError, Request};

/// An ARP (IPv4) or ND (IPv6) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelNeighbour {
    /// Interface index.
    pub ifindex: u32,
    /// The neighbour's IP address.
    pub address: IpAddr,
    /// Its MAC, when resolved.
    pub mac: Option<MacAddr>,
    /// `NUD_PERMANENT` (only permanent entries can be ours; the kernel makes the others).
    pub permanent: bool,
}

/// A bridge forwarding-database entry of a VXLAN device: MAC to remote underlay address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFdb {
    /// Interface index.
    pub ifindex: u32,
    /// The remote VTEP's MAC.
    pub mac: MacAddr,
    /// The remote underlay address (`NDA_DST`), if any.
    pub dst: Option<IpAddr>,
    /// `NUD_PERMANENT`.
    pub permanent: bool,
    /// `NTF_SELF`: the device's own table (not a bridge master's).
    pub own_table: bool,
}

/// One neighbour or FDB write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeighbourWrite {
    /// Create or replace a permanent ARP/ND entry.
    SetNeighbour {
        /// Interface index.
        ifindex: u32,
        /// Neighbour address.
        address: IpAddr,
        /// Its MAC.
        mac: MacAddr,
    },
    /// Delete an ARP/ND entry.
    DeleteNeighbour {
        /// Interface index.
        ifindex: u32,
        /// Neighbour address.
        address: IpAddr,
    },
    /// Create a permanent FDB entry or replace the remote of the existing one
    /// (`NLM_F_CREATE | NLM_F_REPLACE`). A unicast MAC has exactly one remote: the kernel
    /// ignores `NLM_F_APPEND` for it.
    SetFdb {
        /// Interface index.
        ifindex: u32,
        /// Remote VTEP MAC.
        mac: MacAddr,
        /// Remote underlay address.
        dst: IpAddr,
    },
    /// Delete one remote of an FDB entry.
    DeleteFdb {
        /// Interface index.
        ifindex: u32,
        /// Remote VTEP MAC.
        mac: MacAddr,
        /// Remote underlay address.
        dst: IpAddr,
    },
}

impl NeighbourWrite {
    /// A short description for errors (`fdb 66:..:01 dst 172.16.0.2`).
    pub fn describe(&self) -> String {
        match self {
            NeighbourWrite::SetNeighbour { address, mac, .. } => {
                format!("neighbour {address} lladdr {mac}")
            }
            NeighbourWrite::DeleteNeighbour { address, .. } => format!("neighbour {address}"),
            NeighbourWrite::SetFdb { mac, dst, .. }
            | NeighbourWrite::DeleteFdb { mac, dst, .. } => format!("fdb {mac} dst {dst}"),
        }
    }
}

/// What the neighbour reconciler needs from the kernel.
pub trait NeighbourKernel {
    /// The index of the interface called `name`, if it exists.
    fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError>;
    /// ARP (IPv4) or ND (IPv6) entries on interface `ifindex`.
    fn neighbours(
        &mut self,
        ifindex: u32,
        family: IpFamily,
    ) -> Result<Vec<KernelNeighbour>, NetlinkError>;
    /// FDB entries on interface `ifindex`.
    fn fdb(&mut self, ifindex: u32) -> Result<Vec<KernelFdb>, NetlinkError>;
    /// Sends `writes` as one batch; one verdict per write.
    fn write_neighbours(
        &mut self,
        writes: &[NeighbourWrite],
    ) -> Result<Vec<Result<(), KernelErrno>>, NetlinkError>;
}

/// [`NeighbourKernel`] over rtnetlink, in the namespace of the thread that opened it.
#[derive(Debug)]
pub struct NetlinkNeighbourKernel {
    netlink: Netlink,
}

impl NetlinkNeighbourKernel {
    /// Opens the netlink socket in the calling thread's network namespace.
    pub fn open() -> Result<NetlinkNeighbourKernel, NetlinkError> {
        Ok(NetlinkNeighbourKernel {
            netlink: Netlink::open()?,
        })
    }
}

fn ip_from(addr: &NeighbourAddress) -> Option<IpAddr> {
    match addr {
        NeighbourAddress::Inet(a) => Some(IpAddr::V4(*a)),
        NeighbourAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        NeighbourAddress::Other(b) => match b.len() {
            4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            16 => <[u8; 16]>::try_from(b.as_slice())
                .ok()
                .map(|o| IpAddr::V6(Ipv6Addr::from(o))),
            _ => None,
        },
        _ => None,
    }
}

/// `NUD_PERMANENT` is set (the `bridge` tool also sets `NUD_NOARP` on FDB entries).
fn is_permanent(state: NeighbourState) -> bool {
    const NUD_PERMANENT: u16 = 0x80;
    u16::from(state) & NUD_PERMANENT != 0
}

fn parts(msg: &NeighbourMessage) -> (Option<IpAddr>, Option<MacAddr>) {
    let mut dst = None;
    let mut mac = None;
    for a in &msg.attributes {
        match a {
            NeighbourAttribute::Destination(d) => dst = ip_from(d),
            NeighbourAttribute::LinkLayerAddress(l) => mac = MacAddr::from_slice(l),
            _ => {}
        }
    }
    (dst, mac)
}

fn message(family: AddressFamily, ifindex: u32, flags: NeighbourFlags) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = family;
    msg.header.ifindex = ifindex;
    msg.header.state = NeighbourState::Permanent;
    msg.header.flags = flags;
    msg
}

fn family_of(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn request(write: &NeighbourWrite) -> Request {
    match write {
        NeighbourWrite::SetNeighbour {
            ifindex,
            address,
            mac,
        } => {
            let mut m = message(family_of(*address), *ifindex, NeighbourFlags::empty());
            m.attributes = vec![
                NeighbourAttribute::Destination((*address).into()),
                NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()),
            ];
            Request {
                message: RouteNetlinkMessage::NewNeighbour(m),
                flags: NLM_F_CREATE | NLM_F_REPLACE,
            }
        }
        NeighbourWrite::DeleteNeighbour { ifindex, address } => {
            let mut m = message(family_of(*address), *ifindex, NeighbourFlags::empty());
            m.attributes = vec![NeighbourAttribute::Destination((*address).into())];
            Request {
                message: RouteNetlinkMessage::DelNeighbour(m),
                flags: 0,
            }
        }
        NeighbourWrite::SetFdb { ifindex, mac, dst }
        | NeighbourWrite::DeleteFdb { ifindex, mac, dst } => {
            let mut m = message(AddressFamily::Bridge, *ifindex, NeighbourFlags::Own);
            m.attributes = vec![
                NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()),
                NeighbourAttribute::Destination((*dst).into()),
            ];
            match write {
                NeighbourWrite::SetFdb { .. } => Request {
                    message: RouteNetlinkMessage::NewNeighbour(m),
                    flags: NLM_F_CREATE | NLM_F_REPLACE,
                },
                _ => Request {
                    message: RouteNetlinkMessage::DelNeighbour(m),
                    flags: 0,
                },
            }
        }
    }
}

impl NeighbourKernel for NetlinkNeighbourKernel {
    fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        self.netlink.interface_index(name)
    }

    fn neighbours(
        &mut self,
        ifindex: u32,
        family: IpFamily,
    ) -> Result<Vec<KernelNeighbour>, NetlinkError> {
        let mut req = NeighbourMessage::default();
        req.header.family = match family {
            IpFamily::V4 => AddressFamily::Inet,
            IpFamily::V6 => AddressFamily::Inet6,
        };
        self.netlink
            .dump(RouteNetlinkMessage::GetNeighbour(req), |m| match m {
                RouteNetlinkMessage::NewNeighbour(n) if n.header.ifindex == ifindex => {
                    let (address, mac) = parts(&n);
                    Some(KernelNeighbour {
                        ifindex,
                        address: address?,
                        mac,
                        permanent: is_permanent(n.header.state),
                    })
                }
                _ => None,
            })
    }

    fn fdb(&mut self, ifindex: u32) -> Result<Vec<KernelFdb>, NetlinkError> {
        let mut req = NeighbourMessage::default();
        req.header.family = AddressFamily::Bridge;
        self.netlink
            .dump(RouteNetlinkMessage::GetNeighbour(req), |m| match m {
                RouteNetlinkMessage::NewNeighbour(n) if n.header.ifindex == ifindex => {
                    let (dst, mac) = parts(&n);
                    Some(KernelFdb {
                        ifindex,
                        mac: mac?,
                        dst,
                        permanent: is_permanent(n.header.state),
                        own_table: n.header.flags.contains(NeighbourFlags::Own),
                    })
                }
                _ => None,
            })
    }

    fn write_neighbours(
        &mut self,
        writes: &[NeighbourWrite],
    ) -> Result<Vec<Result<(), KernelErrno>>, NetlinkError> {
        self.netlink.batch(writes.iter().map(request).collect())
    }
}
