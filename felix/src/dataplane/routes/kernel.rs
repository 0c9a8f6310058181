//! The kernel side of routes: the decoded kernel route, the `RouteKernel` trait, and its
//! rtnetlink implementation (one dump, batched `RTM_NEWROUTE`/`RTM_DELROUTE`).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::dataplane::addr::IpFamily;
use crate::dataplane::netlink::{KernelErrno, Netlink, NetlinkError, Request};

/// A route as the kernel holds it (interfaces as indexes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Destination prefix.
    pub dst: IpNet,
    /// Routing table.
    pub table: u32,
    /// Route protocol (our marker is 80).
    pub protocol: u8,
    /// Metric (priority); the kernel's default is 0 for IPv4 and 1024 for IPv6.
    pub metric: u32,
    /// Where it goes.
    pub target: KernelTarget,
}

/// The forwarding part of a kernel route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelTarget {
    /// Unicast, no gateway: `dev <oif>`.
    Device {
        /// Outgoing interface index.
        oif: u32,
    },
    /// `blackhole`.
    Blackhole,
    /// Unicast via one gateway.
    Gateway(KernelNextHop),
    /// Unicast via several next hops, sorted.
    Multipath(Vec<KernelNextHop>),
    /// Any other route type (unreachable, prohibit, local, ...): never ours to create.
    Other {
        /// The `RTN_*` type.
        kind: u8,
    },
}

/// One next hop of a kernel route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelNextHop {
    /// Gateway address.
    pub gateway: IpAddr,
    /// Outgoing interface index, if pinned.
    pub oif: Option<u32>,
    /// `onlink` flag.
    pub onlink: bool,
}

impl KernelRoute {
    /// The outgoing interface indexes this route uses.
    pub fn oifs(&self) -> Vec<u32> {
        match &self.target {
            KernelTarget::Device { oif } => vec![*oif],
            KernelTarget::Gateway(nh) => nh.oif.into_iter().collect(),
            KernelTarget::Multipath(nhs) => nhs.iter().filter_map(|nh| nh.oif).collect(),
            KernelTarget::Blackhole | KernelTarget::Other { .. } => Vec::new(),
        }
    }
}

/// One route write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteWrite {
    /// Add a route that must not exist yet (`NLM_F_CREATE | NLM_F_EXCL`).
    Create(KernelRoute),
    /// Replace our own route (`NLM_F_CREATE | NLM_F_REPLACE`).
    Replace(KernelRoute),
    /// Delete our own route (matched by destination, table, protocol and metric).
    Delete(KernelRoute),
}

impl RouteWrite {
    /// The route written.
    pub fn route(&self) -> &KernelRoute {
        match self {
            RouteWrite::Create(r) | RouteWrite::Replace(r) | RouteWrite::Delete(r) => r,
        }
    }
}

/// What the route reconciler needs from the kernel.
pub trait RouteKernel {
    /// Every IPv4 and IPv6 route of `table`, own and foreign (one dump).
    fn dump_routes(&mut self, table: u32) -> Result<Vec<KernelRoute>, NetlinkError>;

    /// Interface name to index, for every interface.
    fn interfaces(&mut self) -> Result<HashMap<String, u32>, NetlinkError>;

    /// The index of one interface, if it exists (default: from [`RouteKernel::interfaces`]).
    fn interface_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        Ok(self.interfaces()?.get(name).copied())
    }

    /// Sends `writes` as one batch; returns one verdict per write, in order. `Err` means the
    /// batch as a whole failed and its outcome is unknown.
    fn write_routes(
        &mut self,
        writes: &[RouteWrite],
    ) -> Result<Vec<Result<(), KernelErrno>>, NetlinkError>;
}

/// [`RouteKernel`] over rtnetlink, in the namespace of the thread that opened it.
#[derive(Debug)]
pub struct NetlinkRouteKernel {
    netlink: Netlink,
}

impl NetlinkRouteKernel {
    /// Opens the netlink socket in the calling thread's network namespace.
    pub fn open() -> Result<NetlinkRouteKernel, NetlinkError> {
        Ok(NetlinkRouteKernel {
            netlink: Netlink::open()?,
        })
    }
}

impl RouteKernel for NetlinkRouteKernel {
    fn dump_routes(&mut self, table: u32) -> Result<Vec<KernelRoute>, NetlinkError> {
        let request = RouteNetlinkMessage::GetRoute(RouteMessage::default());
        self.netlink.dump(request, |msg| match msg {
            RouteNetlinkMessage::NewRoute(m) => route_from_message(m).filter(|r| r.table == table),
            _ => None,
        })
    }

    fn interfaces(&mut self) -> Result<HashMap<String, u32>, NetlinkError> {
        self.netlink.interfaces()
    }

    fn interface_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        self.netlink.interface_index(name)
    }

    fn write_routes(
        &mut self,
        writes: &[RouteWrite],
    ) -> Result<Vec<Result<(), KernelErrno>>, NetlinkError> {
        let requests = writes
            .iter()
            .map(|w| match w {
                RouteWrite::Create(r) => Request {
                    message: RouteNetlinkMessage::NewRoute(route_message(r)),
                    flags: NLM_F_CREATE | NLM_F_EXCL,
                },
                RouteWrite::Replace(r) => Request {
                    message: RouteNetlinkMessage::NewRoute(route_message(r)),
                    flags: NLM_F_CREATE | NLM_F_REPLACE,
                },
                RouteWrite::Delete(r) => Request {
                    message: RouteNetlinkMessage::DelRoute(delete_message(r)),
                    flags: 0,
                },
            })
            .collect();
        self.netlink.batch(requests)
    }
}

fn family_of(dst: &IpNet) -> AddressFamily {
    match IpFamily::of_net(dst) {
        IpFamily::V4 => AddressFamily::Inet,
        IpFamily::V6 => AddressFamily::Inet6,
    }
}

fn header_for(route: &KernelRoute) -> RouteHeader {
    RouteHeader {
        address_family: family_of(&route.dst),
        destination_prefix_length: route.dst.prefix_len(),
        table: u8::try_from(route.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC),
        protocol: RouteProtocol::from(route.protocol),
        ..RouteHeader::default()
    }
}

fn common_attributes(route: &KernelRoute) -> Vec<RouteAttribute> {
    let mut attrs = Vec::with_capacity(5);
    if route.dst.prefix_len() > 0 {
        attrs.push(RouteAttribute::Destination(RouteAddress::from(
            route.dst.addr(),
        )));
    }
    attrs.push(RouteAttribute::Table(route.table));
    attrs.push(RouteAttribute::Priority(route.metric));
    attrs
}

/// The `RTM_NEWROUTE` body for `route`.
fn route_message(route: &KernelRoute) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header = header_for(route);
    msg.attributes = common_attributes(route);
    match &route.target {
        KernelTarget::Device { oif } => {
            msg.header.kind = RouteType::Unicast;
            msg.header.scope = RouteScope::Link;
            msg.attributes.push(RouteAttribute::Oif(*oif));
        }
        KernelTarget::Blackhole => {
            msg.header.kind = RouteType::BlackHole;
            msg.header.scope = RouteScope::Universe;
        }
        KernelTarget::Gateway(nh) => {
            msg.header.kind = RouteType::Unicast;
            msg.header.scope = RouteScope::Universe;
            if nh.onlink {
                msg.header.flags = RouteFlags::Onlink;
            }
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(nh.gateway)));
            if let Some(oif) = nh.oif {
                msg.attributes.push(RouteAttribute::Oif(oif));
            }
        }
        KernelTarget::Multipath(nhs) => {
            msg.header.kind = RouteType::Unicast;
            msg.header.scope = RouteScope::Universe;
            let hops = nhs
                .iter()
                .map(|nh| {
                    let mut hop = RouteNextHop::default();
                    if nh.onlink {
                        hop.flags = RouteNextHopFlags::Onlink;
                    }
                    hop.interface_index = nh.oif.unwrap_or(0);
                    hop.attributes = vec![RouteAttribute::Gateway(RouteAddress::from(nh.gateway))];
                    hop
                })
                .collect();
            msg.attributes.push(RouteAttribute::MultiPath(hops));
        }
        KernelTarget::Other { kind } => {
            msg.header.kind = RouteType::from(*kind);
        }
    }
    msg
}

/// The `RTM_DELROUTE` body: matches destination, table, protocol and metric, any next hop.
fn delete_message(route: &KernelRoute) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header = header_for(route);
    msg.header.scope = RouteScope::NoWhere;
    msg.header.kind = RouteType::Unspec;
    msg.attributes = common_attributes(route);
    msg
}

fn ip_of(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// Decodes a dumped route; `None` for other families and cached clones.
fn route_from_message(msg: RouteMessage) -> Option<KernelRoute> {
    let h = &msg.header;
    let family = match h.address_family {
        AddressFamily::Inet => IpFamily::V4,
        AddressFamily::Inet6 => IpFamily::V6,
        _ => return None,
    };
    if h.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let mut table = u32::from(h.table);
    let mut dst = None;
    let mut gateway = None;
    let mut oif = None;
    let mut metric = 0;
    let mut multipath = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dst = ip_of(a),
            RouteAttribute::Gateway(a) => gateway = ip_of(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            _ => {}
        }
    }
    let addr = dst.unwrap_or(match family {
        IpFamily::V4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpFamily::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    });
    let dst = IpNet::new(addr, h.destination_prefix_length).ok()?;
    let onlink = h.flags.contains(RouteFlags::Onlink);
    let target = match h.kind {
        RouteType::BlackHole => KernelTarget::Blackhole,
        RouteType::Unicast => {
            if let Some(hops) = multipath {
                let mut nhs: Vec<KernelNextHop> = hops
                    .iter()
                    .filter_map(|hop| {
                        let gw = hop.attributes.iter().find_map(|a| match a {
                            RouteAttribute::Gateway(g) => ip_of(g),
                            _ => None,
                        })?;
                        Some(KernelNextHop {
                            gateway: gw,
                            oif: (hop.interface_index != 0).then_some(hop.interface_index),
                            onlink: hop.flags.contains(RouteNextHopFlags::Onlink),
                        })
                    })
                    .collect();
                nhs.sort();
                KernelTarget::Multipath(nhs)
            } else if let Some(gw) = gateway {
                KernelTarget::Gateway(KernelNextHop {
                    gateway: gw,
                    oif,
                    onlink,
                })
            } else if let Some(oif) = oif {
                KernelTarget::Device { oif }
            } else {
                KernelTarget::Other {
                    kind: u8::from(h.kind),
                }
            }
        }
        other => KernelTarget::Other {
            kind: u8::from(other),
        },
    };
    Some(KernelRoute {
        dst,
        table,
        protocol: u8::from(h.protocol),
        metric,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    fn round_trip(route: &KernelRoute) -> KernelRoute {
        let msg = route_message(route);
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        route_from_message(RouteMessage::parse(&buf).unwrap()).unwrap()
    }

    #[test]
    fn every_route_kind_survives_encoding_and_decoding() {
        let gw = |s: &str, oif, onlink| KernelNextHop {
            gateway: s.parse().unwrap(),
            oif,
            onlink,
        };
        let targets = [
            ("10.65.0.2/32", KernelTarget::Device { oif: 7 }),
            ("10.65.0.0/26", KernelTarget::Blackhole),
            (
                "10.65.1.0/26",
                KernelTarget::Gateway(gw("172.16.0.2", Some(3), false)),
            ),
            (
                "10.65.2.0/26",
                KernelTarget::Gateway(gw("172.16.0.3", Some(9), true)),
            ),
            (
                "10.65.3.0/26",
                KernelTarget::Multipath(vec![
                    gw("172.16.0.2", Some(3), false),
                    gw("172.16.0.3", Some(3), true),
                ]),
            ),
            (
                "fd00:65::/122",
                KernelTarget::Gateway(gw("fd00::2", Some(4), true)),
            ),
        ];
        for (dst, target) in targets {
            let route = KernelRoute {
                dst: dst.parse().unwrap(),
                table: 254,
                protocol: 80,
                metric: 0,
                target,
            };
            assert_eq!(round_trip(&route), route);
        }
    }

    #[test]
    fn a_route_in_a_table_above_255_carries_the_table_attribute() {
        let route = KernelRoute {
            dst: "10.0.0.0/24".parse().unwrap(),
            table: 1000,
            protocol: 80,
            metric: 5,
            target: KernelTarget::Blackhole,
        };
        let msg = route_message(&route);
        assert_eq!(msg.header.table, 0);
        assert_eq!(round_trip(&route).table, 1000);
    }

    #[test]
    fn a_delete_matches_by_protocol_and_metric_only() {
        let route = KernelRoute {
            dst: "10.0.0.0/24".parse().unwrap(),
            table: 254,
            protocol: 80,
            metric: 0,
            target: KernelTarget::Device { oif: 3 },
        };
        let msg = delete_message(&route);
        assert_eq!(msg.header.protocol, RouteProtocol::from(80));
        assert_eq!(msg.header.scope, RouteScope::NoWhere);
        assert!(
            !msg.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Oif(_)))
        );
    }
}
