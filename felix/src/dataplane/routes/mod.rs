//! Routes: the desired-state types (workload, blackhole, direct, IPIP, VXLAN, ECMP) and the
//! reconciler that keeps the kernel's protocol-80 routes equal to them.

mod kernel;
mod reconciler;

pub mod fake;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

pub use kernel::{
    KernelNextHop, KernelRoute, KernelTarget, NetlinkRouteKernel, RouteKernel, RouteWrite,
};
pub use reconciler::RouteReconciler;

use super::addr::{IpFamily, check_prefix, interface_name_rule};
use super::status::InvalidInput;

/// The route protocol that marks felix's routes (`dataplanedefs.DefaultRouteProto`).
pub const FELIX_ROUTE_PROTOCOL: u8 = 80;
/// The main routing table.
pub const MAIN_TABLE: u32 = 254;
/// The IPIP device name.
pub const IPIP_DEVICE: &str = "tunl0";
/// The IPv4 VXLAN device name.
pub const VXLAN_DEVICE: &str = "vxlan.calico";
/// The IPv6 VXLAN device name.
pub const VXLAN_V6_DEVICE: &str = "vxlan-v6.calico";

/// One desired route. The destination is the key: one route per destination in the table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The destination prefix (no host bits).
    pub dst: IpNet,
    /// Where it goes.
    pub target: RouteTarget,
}

/// Where a route sends packets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// `dst dev <interface> scope link`: a local workload behind its `cali*` veth.
    Interface(String),
    /// `blackhole dst`: a block this node owns, so unused addresses are not routed elsewhere.
    Blackhole,
    /// `dst via <gateway> [dev <interface>] [onlink]`: a remote block, direct or tunnelled.
    Gateway(NextHop),
    /// `dst nexthop via ... nexthop via ...`: ECMP over several next hops.
    Multipath(Vec<NextHop>),
}

/// A next hop of a gateway or multipath route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    /// The gateway address (same family as the destination).
    pub gateway: IpAddr,
    /// The outgoing interface; `None` lets the kernel pick it from the gateway.
    pub interface: Option<String>,
    /// `onlink`: the gateway is reachable on the interface without a connected route
    /// (tunnels: `tunl0`, `vxlan.calico`).
    pub onlink: bool,
}

impl Route {
    /// `dst dev <interface> scope link` (a local workload, usually a /32 or /128).
    pub fn workload(dst: IpNet, interface: impl Into<String>) -> Route {
        Route {
            dst,
            target: RouteTarget::Interface(interface.into()),
        }
    }

    /// `blackhole dst` (an own block).
    pub fn blackhole(dst: IpNet) -> Route {
        Route {
            dst,
            target: RouteTarget::Blackhole,
        }
    }

    /// `dst via <gateway> dev <interface>` (a remote block on the same subnet, no tunnel).
    pub fn direct(dst: IpNet, gateway: IpAddr, interface: impl Into<String>) -> Route {
        Route {
            dst,
            target: RouteTarget::Gateway(NextHop {
                gateway,
                interface: Some(interface.into()),
                onlink: false,
            }),
        }
    }

    /// `dst via <remote node> dev tunl0 onlink` (IPIP).
    pub fn ipip(dst: IpNet, remote_node: IpAddr) -> Route {
        Route {
            dst,
            target: RouteTarget::Gateway(NextHop {
                gateway: remote_node,
                interface: Some(IPIP_DEVICE.to_string()),
                onlink: true,
            }),
        }
    }

    /// `dst via <remote VTEP> dev <device> onlink` (VXLAN; `device` is `vxlan.calico` or
    /// `vxlan-v6.calico`).
    pub fn vxlan(dst: IpNet, remote_vtep: IpAddr, device: impl Into<String>) -> Route {
        Route {
            dst,
            target: RouteTarget::Gateway(NextHop {
                gateway: remote_vtep,
                interface: Some(device.into()),
                onlink: true,
            }),
        }
    }

    /// ECMP over `next_hops`.
    pub fn ecmp(dst: IpNet, next_hops: Vec<NextHop>) -> Route {
        Route {
            dst,
            target: RouteTarget::Multipath(next_hops),
        }
    }

    /// The interfaces this route needs to exist.
    pub fn interfaces(&self) -> Vec<&str> {
        match &self.target {
            RouteTarget::Interface(i) => vec![i.as_str()],
            RouteTarget::Blackhole => Vec::new(),
            RouteTarget::Gateway(nh) => nh.interface.as_deref().into_iter().collect(),
            RouteTarget::Multipath(nhs) => nhs
                .iter()
                .filter_map(|nh| nh.interface.as_deref())
                .collect(),
        }
    }

    /// Checks the route: no host bits, gateways of the destination's family, valid interface
    /// names, a multipath route with at least one and no repeated next hop.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        // The happy path allocates nothing; paths are built only for an error.
        let at = || format!("routes[{}]", self.dst);
        check_prefix(&self.dst)
            .map_err(|rule| InvalidInput::new(format!("{}.dst", at()), self.dst, rule))?;
        let family = IpFamily::of_net(&self.dst);
        let check_hop = |nh: &NextHop| -> Result<(), (&'static str, String, String)> {
            if IpFamily::of(nh.gateway) != family {
                return Err((
                    "gateway",
                    nh.gateway.to_string(),
                    format!("the gateway must be {family} like the destination"),
                ));
            }
            if nh.gateway.is_unspecified() || nh.gateway.is_multicast() {
                return Err((
                    "gateway",
                    nh.gateway.to_string(),
                    "the gateway must be a unicast address".to_string(),
                ));
            }
            if let Some(i) = &nh.interface
                && let Some(rule) = interface_name_rule(i)
            {
                return Err(("interface", i.clone(), rule.to_string()));
            }
            Ok(())
        };
        match &self.target {
            RouteTarget::Interface(i) => match interface_name_rule(i) {
                Some(rule) => Err(InvalidInput::new(format!("{}.interface", at()), i, rule)),
                None => Ok(()),
            },
            RouteTarget::Blackhole => Ok(()),
            RouteTarget::Gateway(nh) => check_hop(nh).map_err(|(field, value, rule)| {
                InvalidInput::new(format!("{}.{field}", at()), value, rule)
            }),
            RouteTarget::Multipath(nhs) => {
                if nhs.is_empty() {
                    return Err(InvalidInput::new(
                        format!("{}.next_hops", at()),
                        "[]",
                        "a multipath route needs at least one next hop",
                    ));
                }
                let mut seen = BTreeSet::new();
                for (n, nh) in nhs.iter().enumerate() {
                    let path = || format!("{}.next_hops[{n}]", at());
                    check_hop(nh).map_err(|(field, value, rule)| {
                        InvalidInput::new(format!("{}.{field}", path()), value, rule)
                    })?;
                    if !seen.insert((nh.gateway, nh.interface.clone())) {
                        return Err(InvalidInput::new(
                            path(),
                            nh.gateway,
                            "a next hop appears twice",
                        ));
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dst)?;
        let hop = |f: &mut fmt::Formatter<'_>, nh: &NextHop| -> fmt::Result {
            write!(f, " via {}", nh.gateway)?;
            if let Some(i) = &nh.interface {
                write!(f, " dev {i}")?;
            }
            if nh.onlink {
                write!(f, " onlink")?;
            }
            Ok(())
        };
        match &self.target {
            RouteTarget::Interface(i) => write!(f, " dev {i} scope link"),
            RouteTarget::Blackhole => write!(f, " blackhole"),
            RouteTarget::Gateway(nh) => hop(f, nh),
            RouteTarget::Multipath(nhs) => {
                for nh in nhs {
                    write!(f, " nexthop")?;
                    hop(f, nh)?;
                }
                Ok(())
            }
        }
    }
}

/// How the route reconciler marks and writes its routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The routing table (main: 254).
    pub table: u32,
    /// The protocol that marks our routes (80). Routes with another protocol are foreign.
    pub protocol: u8,
    /// The route metric; `None` uses the kernel default (0 for IPv4, 1024 for IPv6).
    pub metric: Option<u32>,
    /// Messages per netlink datagram.
    pub batch_size: usize,
    /// A foreign route that holds one of our destinations is taken over (replaced) only if it
    /// leaves through an interface with one of these prefixes (a `cali*` route the CNI plugin
    /// wrote first); any other foreign route is reported as a conflict and left alone.
    pub takeover_interface_prefixes: Vec<String>,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig {
            table: MAIN_TABLE,
            protocol: FELIX_ROUTE_PROTOCOL,
            metric: None,
            batch_size: 500,
            takeover_interface_prefixes: vec!["cali".to_string()],
        }
    }
}

impl RouteConfig {
    /// Checks the configuration (table, protocol and batch size).
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if self.table == 0 || self.table == 255 {
            return Err(InvalidInput::new(
                "route_config.table",
                self.table,
                "the table must not be 0 (unspec) or 255 (local)",
            ));
        }
        if self.protocol <= 4 {
            return Err(InvalidInput::new(
                "route_config.protocol",
                self.protocol,
                "protocols 0-4 belong to the kernel (unspec, redirect, kernel, boot, static)",
            ));
        }
        if self.batch_size == 0 || self.batch_size > 5000 {
            return Err(InvalidInput::new(
                "route_config.batch_size",
                self.batch_size,
                "the batch size must be between 1 and 5000",
            ));
        }
        Ok(())
    }

    /// The metric our routes of `family` carry in the kernel.
    pub fn effective_metric(&self, family: IpFamily) -> u32 {
        match (family, self.metric) {
            (IpFamily::V6, None | Some(0)) => 1024,
            (_, Some(m)) => m,
            (IpFamily::V4, None) => 0,
        }
    }
}
