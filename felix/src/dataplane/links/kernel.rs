//! The kernel side of tunnel links: decoded links and addresses, the `LinkKernel` trait, and
//! its rtnetlink implementation.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::dataplane::addr::{IpFamily, MacAddr};
use crate::dataplane::netlink::{Netlink, NetlinkError};

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLink {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `IFLA_INFO_KIND` (`vxlan`, `ipip`, `veth`, ...), if any.
    pub kind: Option<String>,
    /// MTU.
    pub mtu: u32,
    /// Hardware address.
    pub mac: Option<MacAddr>,
    /// Administratively up.
    pub up: bool,
    /// VXLAN parameters, for a VXLAN link.
    pub vxlan: Option<VxlanParams>,
}

/// The parameters of a VXLAN device that can only be set at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanParams {
    /// VNI.
    pub vni: u32,
    /// UDP destination port.
    pub port: u16,
    /// Local underlay address.
    pub local: Option<IpAddr>,
    /// Parent (underlay) interface index.
    pub parent: Option<u32>,
    /// Source-address learning (we want it off).
    pub learning: bool,
}

/// A link to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    /// Interface name.
    pub name: String,
    /// MTU, if set.
    pub mtu: Option<u32>,
    /// MAC, if set.
    pub mac: Option<MacAddr>,
    /// What kind of link.
    pub kind: LinkKindSpec,
}

/// The kind-specific part of a [`LinkSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKindSpec {
    /// A VXLAN device.
    Vxlan(VxlanParams),
    /// An IP-in-IP device.
    Ipip,
}

/// Changes to an existing link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkChange {
    /// New MTU.
    pub mtu: Option<u32>,
    /// New MAC.
    pub mac: Option<MacAddr>,
    /// Bring it up.
    pub up: bool,
}

/// What the link reconciler needs from the kernel. Single requests: links change rarely.
pub trait LinkKernel {
    /// Every link.
    fn links(&mut self) -> Result<Vec<KernelLink>, NetlinkError>;
    /// Every address, with its interface index.
    fn addresses(&mut self) -> Result<Vec<(u32, IpNet)>, NetlinkError>;
    /// Creates a link (`NLM_F_CREATE | NLM_F_EXCL`), up.
    fn create_link(&mut self, spec: &LinkSpec) -> Result<(), NetlinkError>;
    /// Changes MTU, MAC or admin state.
    fn change_link(&mut self, index: u32, change: &LinkChange) -> Result<(), NetlinkError>;
    /// Deletes a link.
    fn delete_link(&mut self, index: u32) -> Result<(), NetlinkError>;
    /// Adds an address.
    fn add_address(&mut self, index: u32, addr: IpNet) -> Result<(), NetlinkError>;
    /// Deletes an address.
    fn delete_address(&mut self, index: u32, addr: IpNet) -> Result<(), NetlinkError>;
}

/// [`LinkKernel`] over rtnetlink, in the namespace of the thread that opened it.
#[derive(Debug)]
pub struct NetlinkLinkKernel {
    netlink: Netlink,
}

impl NetlinkLinkKernel {
    /// Opens the netlink socket in the calling thread's network namespace.
    pub fn open() -> Result<NetlinkLinkKernel, NetlinkError> {
        Ok(NetlinkLinkKernel {
            netlink: Netlink::open()?,
        })
    }
}

fn link_from_message(msg: LinkMessage) -> KernelLink {
    let mut link = KernelLink {
        index: msg.header.index,
        name: String::new(),
        kind: None,
        mtu: 0,
        mac: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        vxlan: None,
    };
    for attr in msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Mtu(m) => link.mtu = m,
            LinkAttribute::Address(a) => link.mac = MacAddr::from_slice(&a),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                        LinkInfo::Data(InfoData::Vxlan(v)) => link.vxlan = Some(vxlan_params(&v)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn vxlan_params(infos: &[InfoVxlan]) -> VxlanParams {
    let mut p = VxlanParams {
        vni: 0,
        port: 0,
        local: None,
        parent: None,
        learning: true,
    };
    for i in infos {
        match i {
            InfoVxlan::Id(v) => p.vni = *v,
            InfoVxlan::Port(v) => p.port = *v,
            InfoVxlan::Local(a) => p.local = Some(IpAddr::V4(*a)),
            InfoVxlan::Local6(a) => p.local = Some(IpAddr::V6(*a)),
            InfoVxlan::Link(l) if *l != 0 => p.parent = Some(*l),
            InfoVxlan::Learning(l) => p.learning = *l,
            _ => {}
        }
    }
    p
}

fn address_message(index: u32, addr: IpNet) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = match IpFamily::of_net(&addr) {
        IpFamily::V4 => AddressFamily::Inet,
        IpFamily::V6 => AddressFamily::Inet6,
    };
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
    msg
}

impl LinkKernel for NetlinkLinkKernel {
    fn links(&mut self) -> Result<Vec<KernelLink>, NetlinkError> {
        self.netlink.dump(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            |m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from_message(l)),
                _ => None,
            },
        )
    }

    fn addresses(&mut self) -> Result<Vec<(u32, IpNet)>, NetlinkError> {
        self.netlink.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            |m| match m {
                RouteNetlinkMessage::NewAddress(a) => {
                    let local = a.attributes.iter().find_map(|x| match x {
                        AddressAttribute::Local(ip) => Some(*ip),
                        _ => None,
                    });
                    let address = a.attributes.iter().find_map(|x| match x {
                        AddressAttribute::Address(ip) => Some(*ip),
                        _ => None,
                    });
                    let ip = local.or(address)?;
                    Some((a.header.index, IpNet::new(ip, a.header.prefix_len).ok()?))
                }
                _ => None,
            },
        )
    }

    fn create_link(&mut self, spec: &LinkSpec) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.clone()));
        if let Some(mtu) = spec.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = spec.mac {
            msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        let info = match &spec.kind {
            LinkKindSpec::Vxlan(p) => {
                let mut data = vec![InfoVxlan::Id(p.vni), InfoVxlan::Port(p.port)];
                match p.local {
                    Some(IpAddr::V4(a)) => data.push(InfoVxlan::Local(a)),
                    Some(IpAddr::V6(a)) => data.push(InfoVxlan::Local6(a)),
                    None => {}
                }
                if let Some(parent) = p.parent {
                    data.push(InfoVxlan::Link(parent));
                }
                data.push(InfoVxlan::Learning(p.learning));
                vec![
                    LinkInfo::Kind(InfoKind::Vxlan),
                    LinkInfo::Data(InfoData::Vxlan(data)),
                ]
            }
            LinkKindSpec::Ipip => vec![LinkInfo::Kind(InfoKind::IpIp)],
        };
        msg.attributes.push(LinkAttribute::LinkInfo(info));
        self.netlink
            .request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    fn change_link(&mut self, index: u32, change: &LinkChange) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        if change.up {
            msg.header.flags = LinkFlags::Up;
            msg.header.change_mask = LinkFlags::Up;
        }
        if let Some(mtu) = change.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = change.mac {
            msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        self.netlink.request(RouteNetlinkMessage::SetLink(msg), 0)
    }

    fn delete_link(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.netlink.request(RouteNetlinkMessage::DelLink(msg), 0)
    }

    fn add_address(&mut self, index: u32, addr: IpNet) -> Result<(), NetlinkError> {
        self.netlink.request(
            RouteNetlinkMessage::NewAddress(address_message(index, addr)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    fn delete_address(&mut self, index: u32, addr: IpNet) -> Result<(), NetlinkError> {
        self.netlink.request(
            RouteNetlinkMessage::DelAddress(address_message(index, addr)),
            0,
        )
    }
}
