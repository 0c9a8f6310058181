//! The pod's plumbing, Calico's layout: a veth `cali<hash>` on the host (MAC
//! ee:ee:ee:ee:ee:ee, proxy ARP, forwarding) whose peer is the pod's `CNI_IFNAME` with the
//! addresses as /32 (/128), a link route to 169.254.1.1 and a default route via it; and the
//! host route `<ip>/32 dev cali<hash> scope link`. Routes use protocol `boot`, which felix
//! (protocol 80) takes over on `cali*` interfaces instead of deleting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use sha1::{Digest, Sha1};

use crate::netlink::{Netlink, NetlinkError, VethSpec};
use crate::netns::{Netns, NetnsError};

/// The host side's MAC, as Calico sets it.
pub const HOST_MAC: [u8; 6] = [0xee; 6];
/// The pod's IPv4 gateway, answered by proxy ARP on the host side.
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The pod's IPv6 gateway: the host side's EUI-64 link-local address (from [`HOST_MAC`]).
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);

/// Why wiring failed.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// A netlink request failed.
    #[error("netlink")]
    Netlink(#[from] NetlinkError),
    /// The namespace could not be entered.
    #[error("pod namespace")]
    Netns(#[from] NetnsError),
    /// A sysctl could not be written.
    #[error("cannot write {path}")]
    Sysctl {
        /// The /proc/sys path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Something is not as it must be (CHECK, or a conflicting object).
    #[error("{0}")]
    State(String),
}

/// The host-side name: `cali` + the first 11 hex digits of SHA-1 of `workload_id`
/// (`<namespace>.<pod>` for Kubernetes pods, the container ID otherwise).
pub fn host_veth_name(workload_id: &str) -> String {
    let digest = Sha1::digest(workload_id.as_bytes());
    let hex = hex::encode(digest);
    format!("cali{}", &hex[..11])
}

/// What the plugin asks to be built.
#[derive(Debug, Clone)]
pub struct WiringSpec<'a> {
    /// The host-side interface name.
    pub host_name: &'a str,
    /// The interface name in the pod (`CNI_IFNAME`).
    pub pod_ifname: &'a str,
    /// The pod's addresses (host addresses; stored as /32 or /128).
    pub ips: &'a [IpAddr],
    /// MTU of the veth.
    pub mtu: u32,
}

/// What was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wired {
    /// The pod side's MAC.
    pub pod_mac: String,
}

fn write_sysctl(path: String, value: &str) -> Result<(), WiringError> {
    std::fs::write(&path, value).map_err(|source| WiringError::Sysctl { path, source })
}

fn host_sysctls(host_name: &str, v4: bool, v6: bool) -> Result<(), WiringError> {
    if v4 {
        for (key, value) in [
            ("proxy_arp", "1"),
            ("forwarding", "1"),
            ("route_localnet", "1"),
        ] {
            write_sysctl(format!("/proc/sys/net/ipv4/conf/{host_name}/{key}"), value)?;
        }
        write_sysctl(
            format!("/proc/sys/net/ipv4/neigh/{host_name}/proxy_delay"),
            "0",
        )?;
    }
    if v6 {
        for (key, value) in [("proxy_ndp", "1"), ("forwarding", "1"), ("accept_ra", "0")] {
            write_sysctl(format!("/proc/sys/net/ipv6/conf/{host_name}/{key}"), value)?;
        }
    }
    Ok(())
}

fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

fn pod_side(spec: &WiringSpec<'_>) -> Result<Wired, WiringError> {
    let mut nl = Netlink::open()?;
    let link = nl.link(spec.pod_ifname)?.ok_or_else(|| {
        WiringError::State(format!(
            "{} did not appear in the pod namespace",
            spec.pod_ifname
        ))
    })?;
    nl.set_up(link.index)?;
    for ip in spec.ips {
        nl.add_address(link.index, host_net(*ip))?;
    }
    if spec.ips.iter().any(IpAddr::is_ipv4) {
        let gw = IpAddr::V4(GATEWAY_V4);
        nl.add_route(host_net(gw), None, link.index)?;
        nl.add_route(IpNet::V4(ipnet::Ipv4Net::default()), Some(gw), link.index)?;
    }
    if spec.ips.iter().any(IpAddr::is_ipv6) {
        nl.add_route(
            IpNet::V6(ipnet::Ipv6Net::default()),
            Some(IpAddr::V6(GATEWAY_V6)),
            link.index,
        )?;
    }
    Ok(Wired { pod_mac: link.mac })
}

/// Builds the veth pair, the pod's addresses and routes, and the host routes. On failure
/// the host veth (and with it the peer and every route through it) is removed again.
pub fn setup(netns: &Netns, spec: &WiringSpec<'_>) -> Result<Wired, WiringError> {
    let mut host = Netlink::open()?;
    // A veth left by an earlier sandbox of the same pod goes first (Calico does the same).
    if host.delete_link_named(spec.host_name)? {
        tracing::info!(veth = spec.host_name, "removed a stale host veth");
    }
    host.create_veth(&VethSpec {
        host_name: spec.host_name,
        host_mac: HOST_MAC,
        peer_name: spec.pod_ifname,
        peer_netns: netns.fd(),
        mtu: spec.mtu,
    })?;
    match finish_setup(&mut host, netns, spec) {
        Ok(w) => Ok(w),
        Err(e) => {
            if let Err(undo) = host.delete_link_named(spec.host_name) {
                tracing::error!(veth = spec.host_name, error = %undo, "could not remove the veth after a failed ADD");
            }
            Err(e)
        }
    }
}

fn finish_setup(
    host: &mut Netlink,
    netns: &Netns,
    spec: &WiringSpec<'_>,
) -> Result<Wired, WiringError> {
    let link = host
        .link(spec.host_name)?
        .ok_or_else(|| WiringError::State(format!("{} vanished after creation", spec.host_name)))?;
    let v4 = spec.ips.iter().any(IpAddr::is_ipv4);
    let v6 = spec.ips.iter().any(IpAddr::is_ipv6);
    host_sysctls(spec.host_name, v4, v6)?;
    host.set_up(link.index)?;
    let wired = netns.run(|| pod_side(spec))??;
    for ip in spec.ips {
        match host.add_route(host_net(*ip), None, link.index) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                let existing = host.routes(ip.is_ipv4())?;
                let ours = existing
                    .iter()
                    .any(|r| r.dst == host_net(*ip) && r.oif == Some(link.index));
                if !ours {
                    return Err(WiringError::State(format!(
                        "the host already routes {ip} to another interface; is the address in use by another pod?"
                    )));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(wired)
}

/// Removes the pod's interface (inside the namespace, if it still exists) and the host veth
/// `host_name` when `remove_host_veth`. Missing pieces are fine: DEL is idempotent.
pub fn teardown(
    netns_path: &str,
    pod_ifname: &str,
    host_name: &str,
    remove_host_veth: bool,
) -> Result<(), WiringError> {
    if !netns_path.is_empty() {
        match Netns::open(netns_path) {
            Ok(ns) => {
                ns.run(|| -> Result<(), WiringError> {
                    Netlink::open()?.delete_link_named(pod_ifname)?;
                    Ok(())
                })??;
            }
            Err(NetnsError::Missing { .. }) => {
                tracing::info!(netns = netns_path, "pod namespace is gone already");
            }
            Err(e) => return Err(e.into()),
        }
    }
    if remove_host_veth && Netlink::open()?.delete_link_named(host_name)? {
        tracing::info!(veth = host_name, "removed the host veth");
    }
    Ok(())
}

/// Verifies what [`setup`] built: the host veth (up, MAC), its host routes, and inside the
/// pod the interface with every address and the default route(s).
pub fn check(netns: &Netns, spec: &WiringSpec<'_>) -> Result<(), WiringError> {
    let mut host = Netlink::open()?;
    let link = host
        .link(spec.host_name)?
        .ok_or_else(|| WiringError::State(format!("host veth {} is missing", spec.host_name)))?;
    let want_mac = "ee:ee:ee:ee:ee:ee";
    if link.mac != want_mac || !link.up {
        return Err(WiringError::State(format!(
            "host veth {} has MAC {} (want {want_mac}) and is {}",
            spec.host_name,
            link.mac,
            if link.up { "up" } else { "down" }
        )));
    }
    for ip in spec.ips {
        let routes = host.routes(ip.is_ipv4())?;
        if !routes
            .iter()
            .any(|r| r.dst == host_net(*ip) && r.oif == Some(link.index))
        {
            return Err(WiringError::State(format!(
                "host route {} dev {} is missing",
                host_net(*ip),
                spec.host_name
            )));
        }
    }
    netns.run(|| -> Result<(), WiringError> {
        let mut nl = Netlink::open()?;
        let link = nl.link(spec.pod_ifname)?.ok_or_else(|| {
            WiringError::State(format!("{} is missing in the pod", spec.pod_ifname))
        })?;
        let addrs = nl.addresses(link.index)?;
        for ip in spec.ips {
            if !addrs.contains(&host_net(*ip)) {
                return Err(WiringError::State(format!(
                    "{} lacks address {} in the pod",
                    spec.pod_ifname,
                    host_net(*ip)
                )));
            }
        }
        for (v4, gw) in [
            (true, IpAddr::V4(GATEWAY_V4)),
            (false, IpAddr::V6(GATEWAY_V6)),
        ] {
            if !spec.ips.iter().any(|ip| ip.is_ipv4() == v4) {
                continue;
            }
            let ok = nl.routes(v4)?.iter().any(|r| {
                r.dst.prefix_len() == 0 && r.gateway == Some(gw) && r.oif == Some(link.index)
            });
            if !ok {
                return Err(WiringError::State(format!(
                    "the pod has no default route via {gw} dev {}",
                    spec.pod_ifname
                )));
            }
        }
        Ok(())
    })??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_veth_name_is_cali_and_11_hex_digits_of_sha1() {
        // sha1("default.web-1") starts with these digits.
        let name = host_veth_name("default.web-1");
        assert_eq!(name.len(), 15);
        assert!(name.starts_with("cali"));
        let expected = hex::encode(Sha1::digest(b"default.web-1"));
        assert_eq!(&name[4..], &expected[..11]);
    }

    #[test]
    fn the_ipv6_gateway_is_the_eui64_link_local_of_the_host_mac() {
        assert_eq!(GATEWAY_V6.to_string(), "fe80::ecee:eeff:feee:eeee");
    }
}
