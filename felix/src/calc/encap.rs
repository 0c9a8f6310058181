//! The one decision of how traffic to a remote node's addresses is carried: no encapsulation,
//! IPIP or VXLAN ([`encapsulation`]), and who programs those routes ([`cluster_route_owner`]).
//!
//! Both are pure functions of the pool and the two nodes, so every component that needs the
//! answer (felix's routes, bgpd's exports, `calicoctl`) can reach the same one.

use fabric_api::ippool::{IPIPMode, VXLANMode};

use super::model::{NodeInfo, PoolInfo};

/// How packets to a remote node's block travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    /// Unencapsulated: `via <node address> dev <underlay>`.
    None,
    /// IP-in-IP: `via <node address> dev tunl0 onlink`.
    Ipip,
    /// VXLAN: `via <remote VTEP address> dev vxlan.calico onlink`.
    Vxlan,
}

/// Which component programs the routes to a pool's remote blocks (calico.md §1.3): one writer
/// per route class, decided by the pool alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteOwner {
    /// Encapsulated pools (IPIP or VXLAN, any mode): felix computes the routes from IPAM
    /// affinities and Nodes.
    Felix,
    /// Unencapsulated pools: BGP learns the routes and felix installs what bgpd selected.
    Bgp,
}

/// The encapsulation from `local` to `remote` for addresses of `pool`.
///
/// - `vxlanMode: Always` -> VXLAN; `CrossSubnet` -> none when the remote node's address lies
///   in our subnet (the prefix of our `ipv4Address`/`ipv6Address`), else VXLAN.
/// - `ipipMode` likewise with IPIP, for IPv4 pools only (IPIP carries only IPv4).
/// - Both `Never` -> none.
/// - If a pool asks for both (the API rejects that), VXLAN wins: it works on every kernel.
///
/// A node without an address of the pool's family is never "in our subnet".
pub fn encapsulation(pool: &PoolInfo, local: &NodeInfo, remote: &NodeInfo) -> Encap {
    let family = pool.family();
    let same_subnet = || {
        remote
            .address(family)
            .is_some_and(|addr| local.same_subnet(addr))
    };
    match pool.vxlan_mode {
        VXLANMode::Always => return Encap::Vxlan,
        VXLANMode::CrossSubnet => {
            return if same_subnet() {
                Encap::None
            } else {
                Encap::Vxlan
            };
        }
        VXLANMode::Never => {}
    }
    if !pool.uses_ipip() {
        return Encap::None;
    }
    match pool.ipip_mode {
        IPIPMode::Always => Encap::Ipip,
        IPIPMode::CrossSubnet if same_subnet() => Encap::None,
        IPIPMode::CrossSubnet => Encap::Ipip,
        IPIPMode::Never => Encap::None,
    }
}

/// Who programs the routes to `pool`'s remote blocks and borrowed addresses.
pub fn cluster_route_owner(pool: &PoolInfo) -> RouteOwner {
    if pool.is_encapsulated() {
        RouteOwner::Felix
    } else {
        RouteOwner::Bgp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::IpNet;

    const V4_POOL: &str = "10.65.0.0/16";
    const V6_POOL: &str = "fd00:65::/48";

    fn node(v4: &str, v6: &str) -> NodeInfo {
        NodeInfo {
            ipv4: (!v4.is_empty()).then(|| v4.parse().unwrap()),
            ipv6: (!v6.is_empty()).then(|| v6.parse().unwrap()),
            ..NodeInfo::default()
        }
    }

    /// (pool cidr, ipipMode, vxlanMode, local v4, remote v4, local v6, remote v6, expected)
    type Row = (
        &'static str,
        IPIPMode,
        VXLANMode,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Encap,
    );

    #[test]
    fn the_encapsulation_table_holds() {
        use Encap as E;
        use IPIPMode as I;
        use VXLANMode as V;
        let same = ("172.16.0.1/24", "172.16.0.2/24");
        let other = ("172.16.0.1/24", "172.16.1.2/24");
        let rows: Vec<Row> = vec![
            // no encapsulation at all
            (V4_POOL, I::Never, V::Never, same.0, same.1, "", "", E::None),
            (
                V4_POOL,
                I::Never,
                V::Never,
                other.0,
                other.1,
                "",
                "",
                E::None,
            ),
            // IPIP
            (
                V4_POOL,
                I::Always,
                V::Never,
                same.0,
                same.1,
                "",
                "",
                E::Ipip,
            ),
            (
                V4_POOL,
                I::Always,
                V::Never,
                other.0,
                other.1,
                "",
                "",
                E::Ipip,
            ),
            (
                V4_POOL,
                I::CrossSubnet,
                V::Never,
                same.0,
                same.1,
                "",
                "",
                E::None,
            ),
            (
                V4_POOL,
                I::CrossSubnet,
                V::Never,
                other.0,
                other.1,
                "",
                "",
                E::Ipip,
            ),
            // VXLAN
            (
                V4_POOL,
                I::Never,
                V::Always,
                same.0,
                same.1,
                "",
                "",
                E::Vxlan,
            ),
            (
                V4_POOL,
                I::Never,
                V::Always,
                other.0,
                other.1,
                "",
                "",
                E::Vxlan,
            ),
            (
                V4_POOL,
                I::Never,
                V::CrossSubnet,
                same.0,
                same.1,
                "",
                "",
                E::None,
            ),
            (
                V4_POOL,
                I::Never,
                V::CrossSubnet,
                other.0,
                other.1,
                "",
                "",
                E::Vxlan,
            ),
            // both asked (invalid in the API): VXLAN wins
            (
                V4_POOL,
                I::Always,
                V::Always,
                same.0,
                same.1,
                "",
                "",
                E::Vxlan,
            ),
            (
                V4_POOL,
                I::Always,
                V::CrossSubnet,
                same.0,
                same.1,
                "",
                "",
                E::None,
            ),
            // the subnet is ours: a /16 local prefix covers the remote /24 address
            (
                V4_POOL,
                I::CrossSubnet,
                V::Never,
                "172.16.0.1/16",
                "172.16.9.9/24",
                "",
                "",
                E::None,
            ),
            // a /32 local address has no neighbours: always "other subnet"
            (
                V4_POOL,
                I::CrossSubnet,
                V::Never,
                "172.16.0.1/32",
                "172.16.0.2/24",
                "",
                "",
                E::Ipip,
            ),
            // unknown addresses are never the same subnet
            (
                V4_POOL,
                I::CrossSubnet,
                V::Never,
                "",
                same.1,
                "",
                "",
                E::Ipip,
            ),
            (
                V4_POOL,
                I::Never,
                V::CrossSubnet,
                same.0,
                "",
                "",
                "",
                E::Vxlan,
            ),
            // IPv6: IPIP does not apply, VXLAN uses the IPv6 subnet
            (
                V6_POOL,
                I::Always,
                V::Never,
                same.0,
                same.1,
                "fd00::1/64",
                "fd00::2/64",
                E::None,
            ),
            (
                V6_POOL,
                I::Never,
                V::Always,
                same.0,
                same.1,
                "fd00::1/64",
                "fd00::2/64",
                E::Vxlan,
            ),
            (
                V6_POOL,
                I::Never,
                V::CrossSubnet,
                other.0,
                other.1,
                "fd00::1/64",
                "fd00::2/64",
                E::None,
            ),
            (
                V6_POOL,
                I::Never,
                V::CrossSubnet,
                same.0,
                same.1,
                "fd00::1/64",
                "fd00:1::2/64",
                E::Vxlan,
            ),
        ];
        for (n, (cidr, ipip, vxlan, l4, r4, l6, r6, want)) in rows.into_iter().enumerate() {
            let pool = PoolInfo::new(cidr.parse::<IpNet>().unwrap(), ipip, vxlan);
            let got = encapsulation(&pool, &node(l4, l6), &node(r4, r6));
            assert_eq!(
                got, want,
                "row {n}: pool {cidr} ipip {ipip:?} vxlan {vxlan:?}, local {l4} {l6}, remote {r4} {r6}"
            );
        }
    }

    #[test]
    fn felix_owns_encapsulated_pools_and_bgp_the_others() {
        let pool = |ipip, vxlan, cidr: &str| PoolInfo::new(cidr.parse().unwrap(), ipip, vxlan);
        let rows = [
            (
                pool(IPIPMode::Never, VXLANMode::Never, V4_POOL),
                RouteOwner::Bgp,
            ),
            (
                pool(IPIPMode::Always, VXLANMode::Never, V4_POOL),
                RouteOwner::Felix,
            ),
            (
                pool(IPIPMode::CrossSubnet, VXLANMode::Never, V4_POOL),
                RouteOwner::Felix,
            ),
            (
                pool(IPIPMode::Never, VXLANMode::Always, V4_POOL),
                RouteOwner::Felix,
            ),
            (
                pool(IPIPMode::Never, VXLANMode::CrossSubnet, V4_POOL),
                RouteOwner::Felix,
            ),
            (
                pool(IPIPMode::Never, VXLANMode::Always, V6_POOL),
                RouteOwner::Felix,
            ),
            // ipipMode on an IPv6 pool is meaningless: BGP owns it
            (
                pool(IPIPMode::Always, VXLANMode::Never, V6_POOL),
                RouteOwner::Bgp,
            ),
        ];
        for (n, (p, want)) in rows.into_iter().enumerate() {
            assert_eq!(cluster_route_owner(&p), want, "row {n}: {p:?}");
        }
    }
}
