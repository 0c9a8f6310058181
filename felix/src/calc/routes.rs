//! Route resolution: the one route a destination gets, chosen from every source that claims it,
//! in this order of precedence:
//!
//! 1. a local workload (`dst dev cali... scope link`);
//! 2. a block this node owns (`blackhole dst`);
//! 3. a borrowed address used on another node, then a block owned by another node, when the
//!    pool is encapsulated (felix owns those routes): VXLAN, IPIP or direct per
//!    [`encapsulation`];
//! 4. a learned BGP route, unless it is for one of our blocks or inside an encapsulated pool
//!    (installed as `via <next hop>`, or ECMP over several).
//!
//! The answer depends only on the graph's current state, never on the order the inputs came
//! in; that is what makes the graph order-independent.

use std::net::IpAddr;

use ipnet::IpNet;

use super::encap::{Encap, RouteOwner, cluster_route_owner, encapsulation};
use super::graph::CalcGraph;
use super::model::{NodeInfo, PoolInfo};
use super::tunnels::vxlan_device;
use crate::dataplane::{IpFamily, NextHop, Route, RouteTarget};

impl CalcGraph {
    /// The route `prefix` should have now, if any.
    pub(super) fn resolve(&self, prefix: &IpNet) -> Option<Route> {
        let route = self.resolve_unchecked(prefix)?;
        // Everything above is built from parsed values; a route the reconciler would reject
        // is a bug here, not an input problem. Drop it rather than fail the whole batch.
        match route.validate() {
            Ok(()) => Some(route),
            Err(e) => {
                tracing::error!(route = %route, error = %e, "calc graph produced an invalid route; dropped");
                None
            }
        }
    }

    fn resolve_unchecked(&self, prefix: &IpNet) -> Option<Route> {
        if let Some(r) = self.endpoints.route(prefix) {
            return Some(r);
        }
        let owner = self.ipam.owner(prefix);
        if owner == Some(self.node_name.as_str()) {
            return Some(Route::blackhole(*prefix));
        }
        if let Some((node, _)) = self.ipam.borrowed(prefix)
            && *node != self.node_name
            && let Some(r) = self.remote_route(prefix, node)
        {
            return Some(r);
        }
        if let Some(owner) = owner
            && let Some(r) = self.remote_route(prefix, owner)
        {
            return Some(r);
        }
        self.learned_route(prefix)
    }

    /// The pool containing `prefix`: the most specific one, then the first by name.
    pub(super) fn pool_for(&self, prefix: &IpNet) -> Option<&PoolInfo> {
        self.pools
            .values()
            .filter(|p| p.cidr.contains(prefix))
            .max_by(|a, b| a.cidr.prefix_len().cmp(&b.cidr.prefix_len()))
    }

    fn me(&self) -> Option<&NodeInfo> {
        self.nodes.get(&self.node_name)
    }

    /// The felix-computed route from us to `prefix` on `node`, when its pool is encapsulated.
    fn remote_route(&self, prefix: &IpNet, node: &str) -> Option<Route> {
        let pool = self.pool_for(prefix)?;
        if cluster_route_owner(pool) != RouteOwner::Felix {
            return None;
        }
        let remote = self.nodes.get(node)?;
        let empty = NodeInfo::default();
        let local = self.me().unwrap_or(&empty);
        let family = IpFamily::of_net(prefix);
        match encapsulation(pool, local, remote) {
            Encap::Vxlan => {
                let vteps = match family {
                    IpFamily::V4 => &self.vteps_v4,
                    IpFamily::V6 => &self.vteps_v6,
                };
                let vtep = vteps.get(node)?;
                Some(Route::vxlan(*prefix, vtep.address, vxlan_device(family)))
            }
            Encap::Ipip => Some(Route::ipip(*prefix, remote.address(IpFamily::V4)?)),
            Encap::None => Some(Route {
                dst: *prefix,
                target: RouteTarget::Gateway(NextHop {
                    gateway: remote.address(family)?,
                    interface: self.host_interface.as_ref().map(|h| h.name.clone()),
                    onlink: false,
                }),
            }),
        }
    }

    /// The route for a learned prefix, if felix installs it.
    fn learned_route(&self, prefix: &IpNet) -> Option<Route> {
        let hops = self.learned.get(prefix)?;
        if self.ipam.owner(prefix) == Some(self.node_name.as_str()) {
            return None;
        }
        if let Some(pool) = self.pool_for(prefix)
            && cluster_route_owner(pool) == RouteOwner::Felix
        {
            return None;
        }
        let family = IpFamily::of_net(prefix);
        let mine: Vec<IpAddr> = self
            .me()
            .into_iter()
            .flat_map(|m| [m.address(IpFamily::V4), m.address(IpFamily::V6)])
            .flatten()
            .collect();
        let usable: Vec<NextHop> = hops
            .iter()
            .filter(|h| IpFamily::of(**h) == family)
            .filter(|h| !h.is_unspecified() && !h.is_multicast() && !mine.contains(h))
            .map(|h| NextHop {
                gateway: *h,
                interface: None,
                onlink: false,
            })
            .collect();
        match usable.len() {
            0 => None,
            1 => usable.into_iter().next().map(|nh| Route {
                dst: *prefix,
                target: RouteTarget::Gateway(nh),
            }),
            _ => Some(Route::ecmp(*prefix, usable)),
        }
    }
}
