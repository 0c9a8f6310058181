//! The Calico fabric: a pure function from the datastore's BGP view of the cluster (Nodes,
//! BGPConfigurations, BGPPeers, BGPFilters, IPPools, this node's block affinities, IPAM blocks
//! and the password secrets) to this node's [`Config`], and an applier that keeps a running
//! daemon in step with the datastore.
//!
//! # What the function does (Calico's semantics, `calico.md` §1.4)
//!
//! * **Identity.** AS: the Node's `spec.bgp.asNumber`, else the `default` BGPConfiguration's
//!   `asNumber`, else 64512. Router id: [`FabricSettings::router_id`], else the node's IPv4
//!   address. Listen port: `node.<name>`'s `listenPort`, else `default`'s, else 179; with
//!   `bindMode: NodeIP` only on the node's addresses.
//! * **Node-to-node mesh** (on unless `nodeToNodeMeshEnabled: false`): every other node with an
//!   address of the same family, except route reflectors, and none at all on a route
//!   reflector. The side with the smaller address (string compare, as Calico) is passive:
//!   the greater one connects.
//!   `nodeMeshPassword`, `nodeMeshMaxRestartTime` apply. Description `node-to-node mesh`.
//! * **BGPPeers**: global (no `node`/`nodeSelector`, description `global`) or node-specific
//!   (`node specific`); `peerIP` or `peerSelector` (each selected node, with its AS and listen
//!   port). When several peerings name one address: global beats node-specific beats the
//!   mesh, then the first by name; the loser is reported.
//! * **Route reflection**: a node with `routeReflectorClusterID` marks every iBGP neighbour
//!   whose own cluster id (a Calico node's) is empty or different as a client.
//! * **Exports**: one origination per confirmed local block, a host route per borrowed address
//!   used on this node, the service ranges of `default`; nothing from a pool with
//!   `disableBGPExport`. Export policy: reject `disableBGPExport` pools, then the peer's
//!   BGPFilters, then accept service ranges and pools, reject the rest.
//! * **Imports**: reject our own blocks (exact prefix), then the peer's BGPFilters, accept
//!   the rest.
//!
//! Whatever bgpd cannot express is reported as a [`FabricWarning`] naming the resource and
//! field (see `bgpd/README.md`, *Fabric*); nothing is dropped silently.

mod apply;
mod exports;
mod input;
mod peers;
mod policy;
mod secrets;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use fabric_api::bgp::config::{BGPConfigurationSpec, BindMode, DEFAULT_CONFIG_NAME};
use fabric_api::node::NodeBGPSpec;
use fabric_api::{DEFAULT_AS_NUMBER, Node};
use ipnet::IpNet;

pub use apply::{Applier, ApplierError, FabricState};
pub use input::{FabricInput, Snapshot, sync_prefixes};
pub use secrets::{DEFAULT_SECRETS_DIR, SECRETS_DIR_ENV, SecretRef, Secrets};

use crate::config::{Config, ConfigError};

/// Peer type descriptions, as `calicoctl node status` prints them.
pub mod peer_type {
    /// The automatic full mesh between Calico nodes.
    pub const MESH: &str = "node-to-node mesh";
    /// A BGPPeer without `node` or `nodeSelector`.
    pub const GLOBAL: &str = "global";
    /// A BGPPeer with `node` or `nodeSelector`.
    pub const NODE_SPECIFIC: &str = "node specific";
}

/// Settings of the embedding program that are not in the datastore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FabricSettings {
    /// BGP identifier (Calico `CALICO_ROUTER_ID`); default: the node's IPv4 address.
    pub router_id: Option<Ipv4Addr>,
    /// bgpd's status socket.
    pub status_socket: Option<PathBuf>,
    /// bgpd's graceful-restart state file.
    pub state_file: Option<PathBuf>,
    /// bgpd's Prometheus endpoint.
    pub metrics_address: Option<SocketAddr>,
}

/// Something in the datastore bgpd cannot do as asked. The rest of the configuration applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricWarning {
    /// `Kind/name` of the resource (`BGPFilter/tor-in`).
    pub resource: String,
    /// The field path (`spec.importV4[0].interface`), empty for the whole resource.
    pub field: String,
    /// What happens instead, and why.
    pub message: String,
}

impl FabricWarning {
    fn new(
        resource: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> FabricWarning {
        FabricWarning {
            resource: resource.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FabricWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.resource, self.message)
        } else {
            write!(f, "{} {}: {}", self.resource, self.field, self.message)
        }
    }
}

/// A host route to a BGP peer through a gateway (BGPPeer `reachableBy`). bgpd writes nothing
/// into the kernel and felix has no input for such routes yet: they are computed and reported,
/// not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StaticRoute {
    /// The peer's address as a host prefix.
    pub destination: IpNet,
    /// The gateway.
    pub gateway: IpAddr,
}

/// The result of [`compute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricOutput {
    /// The daemon configuration.
    pub config: Config,
    /// What could not be expressed, each with the resource and field.
    pub warnings: Vec<FabricWarning>,
    /// Host routes to peers that BGPPeer `reachableBy` asks for (not installed; see
    /// [`StaticRoute`]).
    pub static_routes: Vec<StaticRoute>,
    /// Ranges that must not be programmed into the kernel from BGP (the service ranges, as
    /// Calico's `rejectcidrs`): every node originates them itself.
    pub kernel_reject: Vec<IpNet>,
    /// This node's confirmed blocks (originated, and rejected on import).
    pub own_blocks: Vec<IpNet>,
}

/// Why no configuration could be computed.
#[derive(Debug, thiserror::Error)]
pub enum FabricError {
    /// This node has no Node resource.
    #[error("node {node}: no Node resource in the datastore (calico-node registers it at start)")]
    NodeMissing {
        /// The node name.
        node: String,
    },
    /// This node has no BGP address.
    #[error(
        "node {node}: spec.bgp has neither ipv4Address nor ipv6Address; BGP needs one (set IP or IP6)"
    )]
    NoAddress {
        /// The node name.
        node: String,
    },
    /// No IPv4 address for the router id.
    #[error(
        "node {node}: no router id: the node has no IPv4 address; set CALICO_ROUTER_ID (an IPv4 address or \"hash\")"
    )]
    NoRouterId {
        /// The node name.
        node: String,
    },
    /// The computed configuration was refused by bgpd's checks.
    #[error("the computed bgpd configuration is invalid")]
    Invalid(#[from] ConfigError),
}

/// The addresses of one node: IPv4 and IPv6 (address and prefix length).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NodeAddrs {
    pub v4: Option<IpNet>,
    pub v6: Option<IpNet>,
}

impl NodeAddrs {
    pub(crate) fn of(node: &Node) -> NodeAddrs {
        let bgp = node.spec.bgp.as_ref();
        let parse = |text: Option<&String>, v4: bool| -> Option<IpNet> {
            let text = text?;
            let net: IpNet = text
                .parse()
                .ok()
                .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))?;
            (net.addr().is_ipv4() == v4).then_some(net)
        };
        NodeAddrs {
            v4: parse(bgp.map(|b| &b.ipv4_address), true),
            v6: parse(bgp.map(|b| &b.ipv6_address), false),
        }
    }

    /// The address of the same family as `ip`.
    pub(crate) fn same_family(&self, ip: IpAddr) -> Option<IpAddr> {
        if ip.is_ipv4() {
            self.v4.map(|n| n.addr())
        } else {
            self.v6.map(|n| n.addr())
        }
    }

    pub(crate) fn addrs(&self) -> impl Iterator<Item = IpAddr> {
        self.v4.iter().chain(self.v6.iter()).map(|n| n.addr())
    }
}

/// The BGPConfiguration view of one node: `default` with `node.<name>` on top where Calico
/// allows a per-node value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BgpSettings<'a> {
    pub default: &'a BGPConfigurationSpec,
    pub node: Option<&'a BGPConfigurationSpec>,
}

impl<'a> BgpSettings<'a> {
    pub(crate) fn for_node(
        input: &'a FabricInput,
        empty: &'a BGPConfigurationSpec,
        node: &str,
    ) -> BgpSettings<'a> {
        BgpSettings {
            default: input
                .bgp_configurations
                .get(DEFAULT_CONFIG_NAME)
                .map_or(empty, |c| &c.spec),
            node: input
                .bgp_configurations
                .get(&format!("node.{node}"))
                .map(|c| &c.spec),
        }
    }

    pub(crate) fn listen_port(&self) -> u16 {
        match self.node.and_then(|n| n.listen_port).filter(|p| *p != 0) {
            Some(p) => p,
            None => self.default.effective_listen_port(),
        }
    }

    pub(crate) fn bind_mode(&self) -> BindMode {
        self.node
            .and_then(|n| n.bind_mode)
            .unwrap_or_else(|| self.default.effective_bind_mode())
    }

    /// `communities` and `prefixAdvertisements`: the node's when it has any, else `default`'s.
    pub(crate) fn advertisements(&self) -> &'a BGPConfigurationSpec {
        match self.node {
            Some(n) if !n.prefix_advertisements.is_empty() => n,
            _ => self.default,
        }
    }
}

/// A node's AS: its own, else the cluster's.
pub(crate) fn node_as(bgp: Option<&NodeBGPSpec>, cluster_as: u32) -> u32 {
    bgp.and_then(|b| b.as_number)
        .map_or(cluster_as, fabric_api::ASNumber::get)
}

/// Computes this node's bgpd configuration from the datastore view. Pure: the same input gives
/// the same output, and nothing is read or written.
pub fn compute(
    input: &FabricInput,
    settings: &FabricSettings,
) -> Result<FabricOutput, FabricError> {
    let me = input
        .nodes
        .get(&input.node_name)
        .ok_or_else(|| FabricError::NodeMissing {
            node: input.node_name.clone(),
        })?;
    let addrs = NodeAddrs::of(me);
    if addrs.v4.is_none() && addrs.v6.is_none() {
        return Err(FabricError::NoAddress {
            node: input.node_name.clone(),
        });
    }
    let router_id = match (settings.router_id, addrs.v4) {
        (Some(id), _) => id,
        (None, Some(IpNet::V4(v4))) => v4.addr(),
        _ => {
            return Err(FabricError::NoRouterId {
                node: input.node_name.clone(),
            });
        }
    };
    let empty = BGPConfigurationSpec::default();
    let bgp = BgpSettings::for_node(input, &empty, &input.node_name);
    let cluster_as = bgp
        .default
        .as_number
        .map_or(DEFAULT_AS_NUMBER, fabric_api::ASNumber::get);
    let my_as = node_as(me.spec.bgp.as_ref(), cluster_as);

    let mut warnings = Vec::new();
    let mut config = Config::new(router_id, my_as);
    // Calico's bgp_template: connect delay time 2; connect retry time 5; error wait time 5,30.
    config.connect_delay = 2;
    config.connect_retry = 5;
    config.error_wait = [5, 30];
    config.status_socket = settings.status_socket.clone();
    config.state_file = settings.state_file.clone();
    config.metrics_address = settings.metrics_address;
    let port = bgp.listen_port();
    config.listen = match bgp.bind_mode() {
        BindMode::NodeIP => addrs.addrs().map(|a| SocketAddr::new(a, port)).collect(),
        BindMode::None => {
            let mut l = Vec::new();
            if addrs.v4.is_some() {
                l.push(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
            }
            if addrs.v6.is_some() {
                l.push(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)));
            }
            l
        }
    };

    let exports = exports::compute(input, &bgp, &mut warnings);
    let plan = peers::compute(input, me, addrs, my_as, cluster_as, &mut warnings);
    if let Some(id) = plan.cluster_id {
        config.cluster_id = Some(id);
    }
    if let Some(secs) = plan.restart_time {
        config.graceful_restart.restart_time = secs;
    }
    let mut policies = policy::Policies::new(input, &exports, &mut warnings);
    for mut peer in plan.peers {
        let (import, export) = policies.for_filters(&peer.filters, &peer.source);
        peer.neighbor.import_policy = Some(import);
        peer.neighbor.export_policy = Some(export);
        config.neighbors.push(peer.neighbor);
    }
    config.policy = policies.into_map();
    config.originate = exports.originate.clone();
    config.validate()?;
    warnings.dedup();
    Ok(FabricOutput {
        config,
        warnings,
        static_routes: plan.static_routes,
        kernel_reject: exports.service_ranges.clone(),
        own_blocks: exports.own_blocks.clone(),
    })
}

/// The keys of [`FabricInput::secrets`] a computation will look up: every `secretKeyRef` of
/// the mesh password and of the BGPPeers.
pub fn referenced_secrets(input: &FabricInput) -> Vec<SecretRef> {
    let mut refs = Vec::new();
    if let Some(r) = input
        .bgp_configurations
        .get(DEFAULT_CONFIG_NAME)
        .and_then(|c| c.spec.node_mesh_password.as_ref())
        .and_then(|p| p.secret_key_ref.as_ref())
    {
        refs.push(SecretRef::from(r));
    }
    for peer in input.peers.values() {
        if let Some(r) = peer
            .spec
            .password
            .as_ref()
            .and_then(|p| p.secret_key_ref.as_ref())
        {
            refs.push(SecretRef::from(r));
        }
    }
    refs.sort();
    refs.dedup();
    refs
}

#[cfg(test)]
mod tests;
