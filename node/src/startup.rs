//! Startup: detect this node's addresses, then register or update its `Node` (BGP addresses,
//! AS, tunnel addresses from IPAM, VXLAN MAC), create the default IP pool when there is none,
//! and write the nodename file. Everything that can fail on bad input is checked before the
//! first write.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, bail};
use fabric_api::ippool::{IPIPMode, IPPoolSpec, VXLANMode};
use fabric_api::node::NodeBGPSpec;
use fabric_api::{IPPool, Node};
use fabric_datastore::Client;
use fabric_ipam::handles::{TunnelKind, tunnel_handle};
use fabric_ipam::{AutoAssignArgs, IntendedUse, Ipam};
use ipnet::IpNet;

use crate::autodetect::{self, Family, Interface};
use crate::settings::{AddressSetting, DEFAULT_POOL_NAME, NodeSettings};

/// The addresses startup settled on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    /// IPv4 address and subnet.
    pub v4: Option<IpNet>,
    /// IPv6 address and subnet.
    pub v6: Option<IpNet>,
}

/// Resolves `IP`/`IP6` against `ifaces` (autodetection) without touching the datastore.
pub fn resolve_addresses(
    settings: &NodeSettings,
    ifaces: &[Interface],
) -> anyhow::Result<Addresses> {
    let one =
        |setting: &AddressSetting, family: Family, ip_var: &str, method_var: &str| match setting {
            AddressSetting::None => Ok(None),
            AddressSetting::Fixed(net) => Ok(Some(*net)),
            AddressSetting::Autodetect(method) => {
                let found = autodetect::detect(method, family, ifaces, autodetect::route_source)
                    .with_context(|| format!("{method_var}: autodetecting the address"))?;
                match found {
                    Some(net) => Ok(Some(net)),
                    None => bail!(
                        "{ip_var}=autodetect with {method_var}={:?}: no interface has a usable \
                         address for this method (set {ip_var} to an address, or another method)",
                        std::env::var(method_var).unwrap_or_else(|_| "first-found".into())
                    ),
                }
            }
        };
    let v4 = one(&settings.ipv4, Family::V4, "IP", "IP_AUTODETECTION_METHOD")?;
    let v6 = one(
        &settings.ipv6,
        Family::V6,
        "IP6",
        "IP6_AUTODETECTION_METHOD",
    )?;
    if settings.bgp() && v4.is_none() && v6.is_none() {
        bail!(
            "IP=none and IP6 unset: a BGP node needs an address (set IP, or CALICO_NETWORKING_BACKEND=vxlan or none)"
        );
    }
    Ok(Addresses { v4, v6 })
}

/// A locally administered unicast MAC derived from the node name (stable across restarts).
pub fn vxlan_mac(node: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    format!(
        "66:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

/// Registers this node. Returns the stored Node.
pub async fn register(
    settings: &NodeSettings,
    addrs: &Addresses,
    client: &Client,
) -> anyhow::Result<Node> {
    let name = settings.node_name.as_str();
    // Another node with our address would break the mesh: refuse, as Calico does.
    let nodes: Vec<Node> = client.list(None).await.context("listing Nodes")?;
    for other in &nodes {
        if other.metadata.name.as_deref() == Some(name) {
            continue;
        }
        let Some(bgp) = other.spec.bgp.as_ref() else {
            continue;
        };
        for (mine, theirs, var) in [
            (addrs.v4, bgp.ipv4_cidr().map(|c| c.addr), "IP"),
            (addrs.v6, bgp.ipv6_cidr().map(|c| c.addr), "IP6"),
        ] {
            if let (Some(m), Some(t)) = (mine, theirs)
                && m.addr() == t
            {
                bail!(
                    "{var}={m}: node {} already uses the address {t}; every node needs its own",
                    other.metadata.name.as_deref().unwrap_or("?")
                );
            }
        }
    }

    ensure_default_pool(settings, client).await?;

    let existing: Option<Node> = client
        .try_get(None, name)
        .await
        .context("reading our Node")?;
    let mut node = existing.unwrap_or_else(|| {
        let mut n = Node::default();
        n.metadata.name = Some(name.to_string());
        n
    });
    let bgp = node.spec.bgp.get_or_insert_with(NodeBGPSpec::default);
    bgp.ipv4_address = addrs.v4.map(|n| n.to_string()).unwrap_or_default();
    bgp.ipv6_address = addrs.v6.map(|n| n.to_string()).unwrap_or_default();
    if let Some(asn) = settings.as_number {
        bgp.as_number = Some(asn);
    }
    node.metadata
        .labels
        .insert("kubernetes.io/hostname".into(), name.to_string());

    let pools: Vec<IPPool> = client.list(None).await.context("listing IPPools")?;
    let ipam = Ipam::new(client.clone());
    let vxlan_pools = enabled_v4(&pools, |p| {
        p.vxlan_mode.unwrap_or_default() != VXLANMode::Never
    });
    let ipip_pools = enabled_v4(&pools, |p| {
        p.ipip_mode.unwrap_or_default() != IPIPMode::Never
    });

    let vxlan = tunnel_address(&ipam, TunnelKind::Vxlan, name, &vxlan_pools).await?;
    node.spec.ipv4_vxlan_tunnel_addr = vxlan.map(|a| a.to_string()).unwrap_or_default();
    if vxlan.is_some() {
        if node.spec.vxlan_tunnel_mac_addr.is_empty() {
            node.spec.vxlan_tunnel_mac_addr = vxlan_mac(name);
        }
    } else {
        node.spec.vxlan_tunnel_mac_addr.clear();
    }
    let ipip = tunnel_address(&ipam, TunnelKind::Ipip, name, &ipip_pools).await?;
    if let Some(bgp) = node.spec.bgp.as_mut() {
        bgp.ipv4_ipip_tunnel_addr = ipip.map(|a| a.to_string()).unwrap_or_default();
    }

    let stored = client
        .apply(node)
        .await
        .with_context(|| format!("writing Node {name}"))?;
    tracing::info!(
        node = name,
        ipv4 = ?addrs.v4.map(|n| n.to_string()),
        ipv6 = ?addrs.v6.map(|n| n.to_string()),
        vxlan = ?vxlan,
        ipip = ?ipip,
        "node registered"
    );
    Ok(stored)
}

/// Names of the enabled IPv4 pools whose spec passes `pred`.
fn enabled_v4(pools: &[IPPool], pred: impl Fn(&IPPoolSpec) -> bool) -> Vec<String> {
    pools
        .iter()
        .filter(|p| !p.spec.disabled && pred(&p.spec))
        .filter(|p| {
            p.spec
                .cidr
                .parse::<IpNet>()
                .is_ok_and(|n| n.addr().is_ipv4())
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

/// Keeps the node's tunnel address of `kind`: the one it has, a new one from `pools`, or none
/// (released) when no pool wants this encapsulation.
async fn tunnel_address(
    ipam: &Ipam,
    kind: TunnelKind,
    node: &str,
    pools: &[String],
) -> anyhow::Result<Option<IpAddr>> {
    let handle = tunnel_handle(kind, node);
    let held = ipam
        .ips_by_handle(&handle)
        .await
        .with_context(|| format!("reading IPAM handle {handle}"))?;
    if pools.is_empty() {
        if !held.is_empty() {
            ipam.release_by_handle(&handle)
                .await
                .with_context(|| format!("releasing IPAM handle {handle}"))?;
        }
        return Ok(None);
    }
    if let Some(ip) = held.iter().find(|ip| ip.is_ipv4()) {
        return Ok(Some(*ip));
    }
    let mut attrs = BTreeMap::new();
    attrs.insert("node".to_string(), node.to_string());
    attrs.insert("type".to_string(), kind.attr_type().to_string());
    let got = ipam
        .auto_assign(AutoAssignArgs {
            node: node.to_string(),
            handle: handle.clone(),
            attrs,
            num_v4: 1,
            pools_v4: pools.to_vec(),
            intended_use: IntendedUse::Tunnel,
            ..AutoAssignArgs::default()
        })
        .await
        .with_context(|| format!("assigning the tunnel address {handle}"))?;
    Ok(got.v4.first().map(|(ip, _)| *ip))
}

/// Creates `default-ipv4-ippool` from `CALICO_IPV4POOL_*` when no pool exists.
async fn ensure_default_pool(settings: &NodeSettings, client: &Client) -> anyhow::Result<()> {
    let Some(d) = settings.default_pool.as_ref() else {
        return Ok(());
    };
    let pools: Vec<IPPool> = client.list(None).await.context("listing IPPools")?;
    if !pools.is_empty() {
        return Ok(());
    }
    let mut pool = IPPool::default();
    pool.metadata.name = Some(DEFAULT_POOL_NAME.into());
    pool.spec = IPPoolSpec {
        cidr: d.cidr.to_string(),
        block_size: Some(d.block_size),
        ipip_mode: Some(d.ipip),
        vxlan_mode: Some(d.vxlan),
        nat_outgoing: d.nat_outgoing,
        node_selector: d.node_selector.clone(),
        ..IPPoolSpec::default()
    };
    match client.create(pool).await {
        Ok(_) => {
            tracing::info!(cidr = %d.cidr, "default IP pool created");
            Ok(())
        }
        // Another node created one first.
        Err(fabric_datastore::ClientError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e).context("creating the default IP pool"),
    }
}

/// Writes the node name where Calico's tools look for it.
pub fn write_nodename(path: &Path, node: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, node).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vxlan_mac_is_stable_locally_administered_and_unicast() {
        let a = vxlan_mac("node-1");
        assert_eq!(a, vxlan_mac("node-1"));
        assert_ne!(a, vxlan_mac("node-2"));
        assert!(a.starts_with("66:"));
        assert_eq!(a.len(), 17);
    }
}
