//! The resolved lab: what a topology file asks for after inheritance, validation and naming.
//!
//! A [`Lab`] is built by [`crate::topology::load`] and is what every verb works from; `deploy`
//! stores it in the lab's state directory so `destroy`, `inspect`, `exec` and `pod` act on what
//! was deployed even if the file changed since.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::role::Role;

/// A whole lab, validated and ready to deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lab {
    /// The lab name (`name:` or the `--name` override).
    pub name: String,
    /// Prepended to node names to name their network namespaces (`clab-<lab>-`, or as `prefix:` says).
    pub node_prefix: String,
    /// Prepended to lab-wide objects: the management namespace and pods (never empty).
    pub lab_prefix: String,
    /// Absolute path of the topology file.
    pub topology_file: PathBuf,
    /// containerlab's lab directory, `clab-<lab>` next to the file (or under `CLAB_LABDIR_BASE`).
    pub lab_dir: PathBuf,
    /// The management network.
    pub mgmt: MgmtNetwork,
    /// Nodes, sorted by name.
    pub nodes: Vec<Node>,
    /// Point-to-point links (veth pairs), in file order.
    pub links: Vec<Link>,
    /// Keys that were accepted but have no effect here (Docker-only settings).
    pub ignored: Vec<Ignored>,
}

impl Lab {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Every network namespace the lab owns, except pods: nodes first, then management.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self.nodes.iter().map(|n| n.namespace.clone()).collect();
        v.push(self.mgmt.namespace.clone());
        v
    }

    /// The network namespace of pod `pod` (see [`pod_namespace`]).
    pub fn pod_namespace(&self, pod: &str) -> String {
        pod_namespace(&self.lab_prefix, pod)
    }
}

/// The namespace name of a pod: `<lab prefix>pod-<name>`, shortened with a hash suffix when
/// it would exceed [`MAX_NAMESPACE_LEN`] bytes.
pub fn pod_namespace(lab_prefix: &str, pod: &str) -> String {
    let full = format!("{lab_prefix}pod-{pod}");
    if full.len() <= MAX_NAMESPACE_LEN {
        return full;
    }
    let hash = format!("{:016x}", fnv1a(full.as_bytes()));
    let keep = MAX_NAMESPACE_LEN - hash.len() - 1;
    let mut cut = keep;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash}", &full[..cut])
}

/// Longest namespace name the lab creates (well below the 255-byte file-name limit of
/// `/run/netns`, and short enough to read in `ip netns` output).
pub const MAX_NAMESPACE_LEN: usize = 64;

/// 64-bit FNV-1a: a stable, dependency-free hash for shortening names.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The management network: one bridge in a namespace of its own, every node's `eth0` on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MgmtNetwork {
    /// containerlab's network name (`mgmt.network`, default `clab`); informational here.
    pub network: String,
    /// The namespace holding the bridge (`<lab prefix>mgmt`).
    pub namespace: String,
    /// The bridge's name inside that namespace (`mgmt.bridge`, default `br-mgmt`).
    pub bridge: String,
    /// MTU of the bridge and every `eth0` (`mgmt.mtu`, default 1500).
    pub mtu: u32,
    /// IPv4 subnet (`mgmt.ipv4-subnet`, default 172.20.20.0/24).
    pub ipv4_subnet: Ipv4Net,
    /// The bridge's IPv4 address and the nodes' default gateway.
    pub ipv4_gateway: Ipv4Addr,
    /// IPv6 subnet (`mgmt.ipv6-subnet`, default 3fff:172:20:20::/64).
    pub ipv6_subnet: Ipv6Net,
    /// The bridge's IPv6 address and the nodes' IPv6 default gateway.
    pub ipv6_gateway: Ipv6Addr,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    /// containerlab `kind: linux`: a container, here a namespace with its own mount view.
    Linux,
    /// containerlab `kind: bridge`: a Linux bridge, here inside a namespace of its own.
    Bridge,
}

impl NodeKind {
    /// The containerlab spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Linux => "linux",
            NodeKind::Bridge => "bridge",
        }
    }
}

/// One node, with every setting inherited from `defaults`, `kinds` and `groups` merged in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The short name (key under `topology.nodes`).
    pub name: String,
    /// Its network namespace: containerlab's container name, `clab-<lab>-<node>`.
    pub namespace: String,
    /// `kind`.
    pub kind: NodeKind,
    /// `image`, if any.
    pub image: Option<String>,
    /// `type`, if any (informational).
    pub node_type: Option<String>,
    /// `group`, if any.
    pub group: Option<String>,
    /// What runs inside (chosen from the image, see [`crate::role`]).
    pub role: Role,
    /// The node's host name (`hostname`, default the node name), set in its own UTS namespace.
    pub hostname: String,
    /// Environment of every process in the node (without the datastore variables, which the
    /// deployment adds).
    pub env: BTreeMap<String, String>,
    /// `labels` plus containerlab's own (`clab-node-name`, ...).
    pub labels: BTreeMap<String, String>,
    /// `exec` commands, run in order after the node started.
    pub exec: Vec<NodeCommand>,
    /// `entrypoint`, split into words.
    pub entrypoint: Option<Vec<String>>,
    /// `cmd`, split into words.
    pub cmd: Option<Vec<String>>,
    /// `binds`, by target path, parents before children.
    pub binds: Vec<Bind>,
    /// `tmpfs` mounts: target path and mount options.
    pub tmpfs: Vec<(PathBuf, String)>,
    /// `startup-config`, for roles that read one (see [`Role::startup_config_target`]).
    pub startup_config: Option<StartupConfig>,
    /// `sysctls` (network namespace ones only).
    pub sysctls: BTreeMap<String, String>,
    /// Management addresses, `None` with `network-mode: none` and for bridges.
    pub mgmt: Option<MgmtAddresses>,
    /// `startup-delay` in seconds.
    pub startup_delay_secs: u64,
    /// This node's link interfaces, in link order.
    pub interfaces: Vec<String>,
}

impl Node {
    /// The bridge device's name inside a bridge node's namespace (the node name).
    pub fn bridge_device(&self) -> &str {
        &self.name
    }
}

/// A node's `startup-config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartupConfig {
    /// An existing file on the host.
    File(PathBuf),
    /// Configuration text written inline in the topology (a multi-line string).
    Embedded(String),
}

/// A command from `exec`: the text as written (after variables) and its words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeCommand {
    /// As written in the file, after variable and magic-variable expansion.
    pub text: String,
    /// Split into words (no shell involved).
    pub argv: Vec<String>,
}

/// A bind mount into a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bind {
    /// Absolute host path (it exists: containerlab requires it).
    pub source: PathBuf,
    /// Absolute path inside the node.
    pub target: PathBuf,
    /// `:ro`.
    pub read_only: bool,
}

/// A node's management addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MgmtAddresses {
    /// IPv4 address with the subnet's prefix length.
    pub ipv4: Ipv4Net,
    /// IPv6 address with the subnet's prefix length.
    pub ipv6: Ipv6Net,
}

/// A veth pair between two node interfaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// First endpoint.
    pub a: Endpoint,
    /// Second endpoint.
    pub b: Endpoint,
    /// MTU of both ends (`mtu`, default 9500 as containerlab).
    pub mtu: u32,
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Node name.
    pub node: String,
    /// Interface name inside the node.
    pub interface: String,
    /// MAC address, if the extended link format set one.
    pub mac: Option<String>,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.node, self.interface)
    }
}

/// A key that was accepted but has no effect in a namespace lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ignored {
    /// Where: `topology.nodes.r1.ports`, `mgmt.external-access`, ...
    pub at: String,
    /// Why it has no effect.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_pod_namespace_is_the_plain_name() {
        assert_eq!(pod_namespace("clab-demo-", "web"), "clab-demo-pod-web");
    }

    #[test]
    fn a_long_pod_namespace_is_shortened_with_a_stable_hash() {
        let long = "p".repeat(80);
        let a = pod_namespace("clab-demo-", &long);
        assert_eq!(a.len(), MAX_NAMESPACE_LEN);
        assert_eq!(a, pod_namespace("clab-demo-", &long));
        assert_ne!(a, pod_namespace("clab-demo-", &format!("{long}x")));
    }
}
