//! Handles: Calico's handle-ID conventions, and reading the handle objects. A handle counts
//! its addresses per block, so release by handle reads one key instead of every block; the
//! counts change only in the same transaction as the block ([`crate::txn`]), so they always
//! agree with the blocks.

use std::net::IpAddr;

use fabric_datastore::ipam_model::IpamHandle;
use fabric_datastore::keys::ipam_handle_key;
use ipnet::IpNet;

use crate::Ipam;

use crate::error::IpamError;
use crate::store::{self, Stored, live};

/// The prefix of pod handles: `k8s-pod-network.<containerID>`.
pub const POD_HANDLE_PREFIX: &str = "k8s-pod-network.";

/// The handle of a pod's addresses, as Calico's CNI plugin names it.
pub fn pod_handle(container_id: &str) -> String {
    format!("{POD_HANDLE_PREFIX}{container_id}")
}

/// The tunnel devices calico-node allocates addresses for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// `tunl0` (IPv4).
    Ipip,
    /// `vxlan.calico` (IPv4).
    Vxlan,
    /// `vxlan-v6.calico` (IPv6).
    VxlanV6,
    /// `wireguard.cali` (IPv4).
    Wireguard,
    /// `wg-v6.cali` (IPv6).
    WireguardV6,
}

impl TunnelKind {
    /// Every kind.
    pub const ALL: [TunnelKind; 5] = [
        TunnelKind::Ipip,
        TunnelKind::Vxlan,
        TunnelKind::VxlanV6,
        TunnelKind::Wireguard,
        TunnelKind::WireguardV6,
    ];

    /// The handle prefix, e.g. `vxlan-tunnel-addr-`.
    pub fn handle_prefix(self) -> &'static str {
        match self {
            TunnelKind::Ipip => "ipip-tunnel-addr-",
            TunnelKind::Vxlan => "vxlan-tunnel-addr-",
            TunnelKind::VxlanV6 => "vxlan-v6-tunnel-addr-",
            TunnelKind::Wireguard => "wireguard-tunnel-addr-",
            TunnelKind::WireguardV6 => "wireguard-v6-tunnel-addr-",
        }
    }

    /// The allocation attribute `type`, e.g. `vxlanTunnelAddress`.
    pub fn attr_type(self) -> &'static str {
        match self {
            TunnelKind::Ipip => "ipipTunnelAddress",
            TunnelKind::Vxlan => "vxlanTunnelAddress",
            TunnelKind::VxlanV6 => "vxlanV6TunnelAddress",
            TunnelKind::Wireguard => "wireguardTunnelAddress",
            TunnelKind::WireguardV6 => "wireguardV6TunnelAddress",
        }
    }
}

/// The handle of a node's tunnel address, e.g. `vxlan-tunnel-addr-node1`.
pub fn tunnel_handle(kind: TunnelKind, node: &str) -> String {
    format!("{}{node}", kind.handle_prefix())
}

/// What a handle ID says about its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleOwner {
    /// A pod's sandbox.
    Pod {
        /// The container ID.
        container_id: String,
    },
    /// A node's tunnel device.
    Tunnel {
        /// Which device.
        kind: TunnelKind,
        /// The node.
        node: String,
    },
    /// Another convention (LoadBalancer, Windows reserved, ...).
    Other,
}

/// Parses a handle ID by Calico's conventions.
pub fn handle_owner(handle: &str) -> HandleOwner {
    if let Some(id) = handle.strip_prefix(POD_HANDLE_PREFIX) {
        return HandleOwner::Pod {
            container_id: id.to_string(),
        };
    }
    // Longest prefixes first: `vxlan-v6-tunnel-addr-` before `vxlan-tunnel-addr-`.
    let mut kinds = TunnelKind::ALL;
    kinds.sort_by_key(|k| std::cmp::Reverse(k.handle_prefix().len()));
    for kind in kinds {
        if let Some(node) = handle.strip_prefix(kind.handle_prefix())
            && !node.is_empty()
        {
            return HandleOwner::Tunnel {
                kind,
                node: node.to_string(),
            };
        }
    }
    HandleOwner::Other
}

/// Checks a handle ID: non-empty, usable as the last segment of a key.
pub fn check_handle(handle: &str) -> Result<(), IpamError> {
    let rule = if handle.is_empty() {
        "must not be empty"
    } else if handle.contains('/') {
        "must not contain '/' (it is the last segment of the handle's key)"
    } else if handle.contains('\0') {
        "must not contain NUL"
    } else {
        return Ok(());
    };
    Err(IpamError::invalid("handle", handle, rule))
}

impl Ipam {
    /// The stored handle object, if it exists.
    pub(crate) async fn read_handle(
        &self,
        handle: &str,
    ) -> Result<Option<Stored<IpamHandle>>, IpamError> {
        let stored =
            store::get::<IpamHandle>(self.backend.as_ref(), &ipam_handle_key(handle)).await?;
        Ok(stored.filter(|s| !s.value.deleted))
    }

    /// The handle object, if it exists.
    pub async fn handle(&self, handle: &str) -> Result<Option<IpamHandle>, IpamError> {
        let stored =
            store::get::<IpamHandle>(self.backend.as_ref(), &ipam_handle_key(handle)).await?;
        Ok(live(stored.as_ref()).cloned())
    }

    /// Every address held by the handle (read from the blocks its handle object lists).
    pub async fn ips_by_handle(&self, handle: &str) -> Result<Vec<IpAddr>, IpamError> {
        check_handle(handle)?;
        let Some(h) = self.handle(handle).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for label in h.block.keys() {
            let Ok(cidr) = label.parse::<IpNet>() else {
                continue;
            };
            let Some(stored) = self.read_block(&cidr).await? else {
                continue;
            };
            let b = &stored.value;
            out.extend(b.in_use().filter_map(|(_, ip, attr)| {
                (attr?.handle_id.as_deref() == Some(handle)).then_some(ip)
            }));
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_ids_follow_calicos_conventions_and_parse_back() {
        assert_eq!(pod_handle("abc"), "k8s-pod-network.abc");
        assert_eq!(
            tunnel_handle(TunnelKind::VxlanV6, "n1"),
            "vxlan-v6-tunnel-addr-n1"
        );
        assert_eq!(
            handle_owner("vxlan-v6-tunnel-addr-n1"),
            HandleOwner::Tunnel {
                kind: TunnelKind::VxlanV6,
                node: "n1".into()
            }
        );
        assert_eq!(
            handle_owner("ipip-tunnel-addr-n2"),
            HandleOwner::Tunnel {
                kind: TunnelKind::Ipip,
                node: "n2".into()
            }
        );
        assert_eq!(
            handle_owner("k8s-pod-network.abc"),
            HandleOwner::Pod {
                container_id: "abc".into()
            }
        );
        assert_eq!(handle_owner("lb-123"), HandleOwner::Other);
    }

    #[test]
    fn a_handle_with_a_slash_is_rejected_naming_the_rule() {
        let err = check_handle("a/b").unwrap_err();
        assert!(err.to_string().contains("must not contain '/'"), "{err}");
        assert!(check_handle("").is_err());
        assert!(check_handle("k8s-pod-network.x").is_ok());
    }
}
