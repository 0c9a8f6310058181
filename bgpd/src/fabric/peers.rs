//! The neighbours of this node: the node-to-node mesh, BGPPeers (global and node-specific, by
//! `peerIP` or `peerSelector`, with Calico's automatic reverse peerings), route-reflector
//! clients, and one neighbour per address.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use fabric_api::bgp::BGPPassword;
use fabric_api::bgp::config::DEFAULT_CONFIG_NAME;
use fabric_api::bgp::peer::{NextHopMode, ReversePeering, SourceAddress, parse_peer_ip};
use fabric_api::selector::Selector;
use fabric_api::{BGPPeer, Node};
use ipnet::IpNet;

use super::{
    BgpSettings, FabricInput, FabricWarning, NodeAddrs, SecretRef, StaticRoute, node_as, peer_type,
};
use crate::config::NeighborConfig;

/// BIRD's `multihop` without a number: TTL 64 (Calico renders it when GTSM is off).
const MULTIHOP_TTL: u8 = 64;
/// bgpd's default hold time: a keepalive must be shorter.
const HOLD_TIME: u16 = 240;
/// The longest restart time the GR capability carries (12 bits).
const MAX_RESTART_TIME: u16 = 4095;

/// A neighbour and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct PlannedPeer {
    pub neighbor: NeighborConfig,
    /// BGPFilter names, in order.
    pub filters: Vec<String>,
    /// `BGPPeer/<name>` or `BGPConfiguration/default` (the mesh).
    pub source: String,
    /// 0 global, 1 node-specific, 2 mesh: the lower wins an address.
    rank: u8,
    /// The peer is this Calico node (for route-reflector client marking).
    peer_node: Option<String>,
    /// Restart time asked for this peering, seconds.
    restart_time: Option<u16>,
}

/// Every neighbour and the speaker-wide values they imply.
#[derive(Debug, Default)]
pub(crate) struct PeerPlan {
    pub peers: Vec<PlannedPeer>,
    pub cluster_id: Option<Ipv4Addr>,
    pub restart_time: Option<u16>,
    pub static_routes: Vec<StaticRoute>,
}

struct Ctx<'a> {
    input: &'a FabricInput,
    me: &'a Node,
    addrs: NodeAddrs,
    cluster_as: u32,
    by_ip: BTreeMap<IpAddr, &'a str>,
    warnings: &'a mut Vec<FabricWarning>,
}

impl Ctx<'_> {
    fn warn(&mut self, resource: &str, field: &str, message: impl Into<String>) {
        self.warnings
            .push(FabricWarning::new(resource, field, message.into()));
    }

    fn node_as(&self, node: &Node) -> u32 {
        node_as(node.spec.bgp.as_ref(), self.cluster_as)
    }

    fn listen_port(&self, node: &str) -> u16 {
        let empty = Default::default();
        BgpSettings::for_node(self.input, &empty, node).listen_port()
    }

    fn is_route_reflector(node: &Node) -> bool {
        node.spec
            .bgp
            .as_ref()
            .is_some_and(|b| !b.route_reflector_cluster_id.is_empty())
    }

    /// The password of a peering: `Ok(None)` without one; `Err` when the secret is missing
    /// (the peering is skipped: without its key the session could never come up).
    fn password(
        &mut self,
        resource: &str,
        field: &str,
        p: Option<&BGPPassword>,
    ) -> Result<Option<String>, ()> {
        let Some(sel) = p.and_then(|p| p.secret_key_ref.as_ref()) else {
            return Ok(None);
        };
        let r = SecretRef::from(sel);
        match self.input.secrets.get(&r) {
            Some(v) if !v.is_empty() && v.len() <= 80 => Ok(Some(v.to_string())),
            Some(_) => {
                self.warn(
                    resource,
                    field,
                    format!(
                        "secret {}/{}: a TCP MD5 key must be 1..=80 octets; peering skipped",
                        r.name, r.key
                    ),
                );
                Err(())
            }
            None if sel.optional == Some(true) => Ok(None),
            None => {
                self.warn(
                    resource,
                    field,
                    format!(
                        "secret {}/{} not found: no file {}/{} in the secrets directory \
                         ({}, default {}); peering skipped",
                        r.name,
                        r.key,
                        r.name,
                        r.key,
                        super::SECRETS_DIR_ENV,
                        super::DEFAULT_SECRETS_DIR
                    ),
                );
                Err(())
            }
        }
    }
}

pub(crate) fn compute(
    input: &FabricInput,
    me: &Node,
    addrs: NodeAddrs,
    my_as: u32,
    cluster_as: u32,
    warnings: &mut Vec<FabricWarning>,
) -> PeerPlan {
    let mut by_ip = BTreeMap::new();
    for (name, n) in &input.nodes {
        for a in NodeAddrs::of(n).addrs() {
            by_ip.entry(a).or_insert(name.as_str());
        }
    }
    let mut ctx = Ctx {
        input,
        me,
        addrs,
        cluster_as,
        by_ip,
        warnings,
    };
    let mut plan = PeerPlan::default();
    let my_cluster = cluster_id_of(&mut ctx, me, &input.node_name);
    plan.cluster_id = my_cluster;

    let mut candidates = mesh(&mut ctx, my_cluster.is_some());
    for (name, peer) in &input.peers {
        explicit(
            &mut ctx,
            name,
            peer,
            &mut candidates,
            &mut plan.static_routes,
        );
    }

    // One neighbour per address: global, then node-specific, then mesh; then by name.
    let mut chosen: BTreeMap<IpAddr, PlannedPeer> = BTreeMap::new();
    for c in candidates {
        let addr = c.neighbor.address;
        match chosen.get(&addr) {
            None => {
                chosen.insert(addr, c);
            }
            Some(kept) => {
                let (winner, loser) = if c.rank < kept.rank {
                    (c.clone(), kept.clone())
                } else {
                    (kept.clone(), c)
                };
                if winner.source != loser.source {
                    ctx.warn(
                        &loser.source,
                        "",
                        format!(
                            "peering with {addr} is already configured by {} ({}); this one is not used",
                            winner.source,
                            winner.neighbor.description.as_deref().unwrap_or("")
                        ),
                    );
                }
                chosen.insert(addr, winner);
            }
        }
    }

    // Route reflection: iBGP neighbours whose cluster id is empty or different are clients.
    if let Some(id) = my_cluster {
        for p in chosen.values_mut() {
            let local = p.neighbor.local_asn.unwrap_or(my_as);
            if p.neighbor.remote_asn != local {
                continue;
            }
            let peer_cluster = p
                .peer_node
                .as_deref()
                .and_then(|n| input.nodes.get(n))
                .and_then(|n| n.spec.bgp.as_ref())
                .map(|b| b.route_reflector_cluster_id.as_str())
                .unwrap_or("");
            if peer_cluster.parse::<Ipv4Addr>().ok() != Some(id) {
                p.neighbor.route_reflector_client = true;
                p.neighbor.cluster_id = Some(id);
            }
        }
    }

    let mut restart: Vec<(u16, String)> = chosen
        .values()
        .filter_map(|p| p.restart_time.map(|t| (t, p.source.clone())))
        .collect();
    restart.sort();
    restart.dedup_by(|a, b| a.0 == b.0);
    if let Some((max, source)) = restart.last().cloned() {
        if restart.len() > 1 {
            ctx.warn(
                &source,
                "spec.maxRestartTime",
                format!(
                    "bgpd advertises one graceful-restart time to every neighbour; the peerings ask for {} s, so {max} s is used",
                    restart
                        .iter()
                        .map(|(t, _)| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        plan.restart_time = Some(max);
    }
    plan.peers = chosen.into_values().collect();
    plan
}

fn cluster_id_of(ctx: &mut Ctx<'_>, node: &Node, name: &str) -> Option<Ipv4Addr> {
    let text = node.spec.bgp.as_ref()?.route_reflector_cluster_id.as_str();
    if text.is_empty() {
        return None;
    }
    match text.parse::<Ipv4Addr>() {
        Ok(id) => Some(id),
        Err(_) => {
            ctx.warn(
                &format!("Node/{name}"),
                "spec.bgp.routeReflectorClusterID",
                format!("{text:?} is not an IPv4 address; the node is not a route reflector"),
            );
            None
        }
    }
}

/// Seconds of a Calico duration for a field of at most `max` seconds.
fn seconds(
    ctx: &mut Ctx<'_>,
    resource: &str,
    field: &str,
    d: Option<&fabric_api::Duration>,
    max: u16,
) -> Option<u16> {
    let d = d?;
    let s = d.whole_seconds();
    if s < 0 {
        return None;
    }
    match u16::try_from(s) {
        Ok(v) if v <= max => Some(v),
        _ => {
            ctx.warn(
                resource,
                field,
                format!(
                    "{} is longer than bgpd allows ({max} s); {max} s is used",
                    d.as_str()
                ),
            );
            Some(max)
        }
    }
}

fn mesh(ctx: &mut Ctx<'_>, i_am_route_reflector: bool) -> Vec<PlannedPeer> {
    let empty = Default::default();
    let default = ctx
        .input
        .bgp_configurations
        .get(DEFAULT_CONFIG_NAME)
        .map_or(&empty, |c| &c.spec);
    if !default.effective_node_to_node_mesh_enabled() || i_am_route_reflector {
        return Vec::new();
    }
    let source = format!("BGPConfiguration/{DEFAULT_CONFIG_NAME}");
    let Ok(password) = ctx.password(
        &source,
        "spec.nodeMeshPassword",
        default.node_mesh_password.as_ref(),
    ) else {
        return Vec::new();
    };
    let restart = seconds(
        ctx,
        &source,
        "spec.nodeMeshMaxRestartTime",
        default.node_mesh_max_restart_time.as_ref(),
        MAX_RESTART_TIME,
    );
    let mut out = Vec::new();
    for (name, node) in &ctx.input.nodes {
        if *name == ctx.input.node_name || Ctx::is_route_reflector(node) {
            continue;
        }
        let theirs = NodeAddrs::of(node);
        for (mine, peer) in [
            (ctx.addrs.v4, theirs.v4.map(|n| n.addr())),
            (ctx.addrs.v6, theirs.v6.map(|n| n.addr())),
        ] {
            let (Some(mine), Some(peer)) = (mine.map(|n| n.addr()), peer) else {
                continue;
            };
            if peer == mine {
                continue;
            }
            let mut n = NeighborConfig::new(peer, ctx.node_as(node));
            n.port = ctx.listen_port(name);
            n.description = Some(peer_type::MESH.into());
            n.local_address = Some(mine);
            n.passive = peer.to_string() > mine.to_string();
            n.password = password.clone();
            n.multihop = Some(MULTIHOP_TTL);
            n.graceful_restart = restart != Some(0);
            out.push(PlannedPeer {
                neighbor: n,
                filters: Vec::new(),
                source: source.clone(),
                rank: 2,
                peer_node: Some(name.clone()),
                restart_time: restart.filter(|t| *t != 0),
            });
        }
    }
    out
}

/// Whether a BGPPeer's `node`/`nodeSelector` applies to `node`.
fn applies_to(peer: &BGPPeer, name: &str, node: &Node) -> bool {
    let s = &peer.spec;
    if s.is_global() {
        return true;
    }
    if !s.node.is_empty() {
        return s.node == name;
    }
    Selector::parse(&s.node_selector).is_ok_and(|sel| sel.matches(&node.metadata.labels))
}

/// Where a peering goes: an address, port, AS and the Calico node it is, if any.
struct Target {
    ip: IpAddr,
    port: u16,
    asn: Option<u32>,
    node: Option<String>,
}

fn explicit(
    ctx: &mut Ctx<'_>,
    name: &str,
    peer: &BGPPeer,
    out: &mut Vec<PlannedPeer>,
    static_routes: &mut Vec<StaticRoute>,
) {
    let source = format!("BGPPeer/{name}");
    let s = &peer.spec;
    if !s.local_workload_selector.is_empty() {
        ctx.warn(
            &source,
            "spec.localWorkloadSelector",
            "peering with local workloads is not supported by this fabric; peering skipped",
        );
        return;
    }
    let me_name = ctx.input.node_name.clone();
    let peer_selector = if s.peer_selector.is_empty() {
        None
    } else {
        match Selector::parse(&s.peer_selector) {
            Ok(sel) => Some(sel),
            Err(e) => {
                ctx.warn(
                    &source,
                    "spec.peerSelector",
                    format!(
                        "{:?} does not parse ({e}); peering skipped",
                        s.peer_selector
                    ),
                );
                return;
            }
        }
    };
    if !s.node_selector.is_empty() && Selector::parse(&s.node_selector).is_err() {
        ctx.warn(
            &source,
            "spec.nodeSelector",
            format!("{:?} does not parse; peering skipped", s.node_selector),
        );
        return;
    }
    let mut targets = Vec::new();
    if applies_to(peer, &me_name, ctx.me) {
        if let Some(sel) = &peer_selector {
            for (n, node) in &ctx.input.nodes {
                if *n == me_name || !sel.matches(&node.metadata.labels) {
                    continue;
                }
                for ip in NodeAddrs::of(node).addrs() {
                    targets.push(Target {
                        ip,
                        port: ctx.listen_port(n),
                        asn: Some(ctx.node_as(node)),
                        node: Some(n.clone()),
                    });
                }
            }
        } else {
            match parse_peer_ip(&s.peer_ip) {
                Ok((ip, port)) => targets.push(Target {
                    ip,
                    port: port.unwrap_or(fabric_api::bgp::DEFAULT_LISTEN_PORT),
                    asn: s.as_number.map(fabric_api::ASNumber::get),
                    node: ctx.by_ip.get(&ip).map(|n| n.to_string()),
                }),
                Err(rule) => {
                    ctx.warn(
                        &source,
                        "spec.peerIP",
                        format!("{:?} {rule}; peering skipped", s.peer_ip),
                    );
                    return;
                }
            }
        }
    }
    // Calico's automatic reverse peering: when this node is a target of the peering on other
    // nodes, it peers back with them.
    if s.effective_reverse_peering() == ReversePeering::Auto {
        let i_am_target = match &peer_selector {
            Some(sel) => sel.matches(&ctx.me.metadata.labels),
            None => {
                parse_peer_ip(&s.peer_ip).is_ok_and(|(ip, _)| ctx.addrs.addrs().any(|a| a == ip))
            }
        };
        if i_am_target {
            for (n, node) in &ctx.input.nodes {
                if *n == me_name || !applies_to(peer, n, node) {
                    continue;
                }
                for ip in NodeAddrs::of(node).addrs() {
                    targets.push(Target {
                        ip,
                        port: ctx.listen_port(n),
                        asn: Some(ctx.node_as(node)),
                        node: Some(n.clone()),
                    });
                }
            }
        }
    }
    if targets.is_empty() {
        return;
    }
    let Ok(password) = ctx.password(&source, "spec.password", s.password.as_ref()) else {
        return;
    };
    let restart = seconds(
        ctx,
        &source,
        "spec.maxRestartTime",
        s.max_restart_time.as_ref(),
        MAX_RESTART_TIME,
    );
    let keepalive = seconds(
        ctx,
        &source,
        "spec.keepaliveTime",
        s.keepalive_time.as_ref(),
        u16::MAX,
    );
    let keepalive = match keepalive {
        Some(0) => {
            ctx.warn(&source, "spec.keepaliveTime", "0 s is not a keepalive interval; bgpd's default (a third of the hold time) is used");
            None
        }
        Some(k) if k >= HOLD_TIME => {
            ctx.warn(
                &source,
                "spec.keepaliveTime",
                format!("{k} s is not shorter than the hold time ({HOLD_TIME} s); bgpd's default (a third of the hold time) is used"),
            );
            None
        }
        k => k,
    };
    let ttl_security = match s.ttl_security {
        None | Some(0) => None,
        Some(255) => {
            ctx.warn(
                &source,
                "spec.ttlSecurity",
                "255 hops leaves GTSM nothing to check; 254 is used",
            );
            Some(254)
        }
        Some(h) => Some(h),
    };
    let allow_local_as = match s.num_allowed_local_as_numbers {
        None => 0,
        Some(n) => u8::try_from(n.max(0)).unwrap_or_else(|_| {
            ctx.warn(
                &source,
                "spec.numAllowedLocalASNumbers",
                format!("{n} is more than bgpd allows; 255 is used"),
            );
            u8::MAX
        }),
    };
    let local_asn = s.local_as_number.map(fabric_api::ASNumber::get);
    let my_as = node_as(ctx.me.spec.bgp.as_ref(), ctx.cluster_as);
    let (description, rank) = if s.is_global() {
        (peer_type::GLOBAL, 0)
    } else {
        (peer_type::NODE_SPECIFIC, 1)
    };
    for t in targets {
        let Some(mine) = ctx.addrs.same_family(t.ip) else {
            ctx.warn(
                &source,
                "spec.peerIP",
                format!(
                    "{}: this node has no address of that family; peering skipped",
                    t.ip
                ),
            );
            continue;
        };
        if t.ip == mine {
            continue;
        }
        let Some(asn) = t.asn else {
            ctx.warn(
                &source,
                "spec.asNumber",
                "is required with peerIP (the peer's AS); peering skipped",
            );
            continue;
        };
        let mut n = NeighborConfig::new(t.ip, asn);
        n.port = t.port;
        n.description = Some(description.into());
        n.local_asn = local_asn;
        n.local_address = match s.effective_source_address() {
            SourceAddress::UseNodeIP => Some(mine),
            SourceAddress::None => None,
        };
        n.password = password.clone();
        n.keepalive = keepalive;
        n.ttl_security = ttl_security;
        n.multihop = ttl_security.is_none().then_some(MULTIHOP_TTL);
        n.allow_local_as = allow_local_as;
        n.graceful_restart = restart != Some(0);
        let ebgp = asn != local_asn.unwrap_or(my_as);
        match s.effective_next_hop_mode() {
            NextHopMode::SelfHop => n.next_hop_self = true,
            // The deprecated keepOriginalNextHop applied to eBGP peers only.
            NextHopMode::Keep if s.next_hop_mode.is_some() || ebgp => n.next_hop_keep = true,
            NextHopMode::Keep | NextHopMode::Auto => {}
        }
        // Two Calico nodes: only the one with the smaller address connects (Calico's rule).
        if t.node.is_some() {
            n.passive = t.ip.to_string() > mine.to_string();
        }
        if !s.reachable_by.is_empty() {
            match s.reachable_by.parse::<IpAddr>() {
                Ok(gw) => {
                    let route = StaticRoute {
                        destination: IpNet::from(t.ip),
                        gateway: gw,
                    };
                    if !static_routes.contains(&route) {
                        static_routes.push(route);
                    }
                    ctx.warn(
                        &source,
                        "spec.reachableBy",
                        format!(
                            "the host route {} via {gw} is computed but not installed (felix has no static-route input yet); the session relies on the kernel's routing",
                            route.destination
                        ),
                    );
                }
                Err(_) => ctx.warn(
                    &source,
                    "spec.reachableBy",
                    format!("{:?} is not an IP address; ignored", s.reachable_by),
                ),
            }
        }
        out.push(PlannedPeer {
            neighbor: n,
            filters: s.filters.clone(),
            source: source.clone(),
            rank,
            peer_node: t.node,
            restart_time: restart.filter(|t| *t != 0),
        });
    }
}
