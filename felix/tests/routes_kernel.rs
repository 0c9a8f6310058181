//! The route reconciler against a real kernel, in private network namespaces (root only).

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fabric_testkit::Netns;
use felix::dataplane::routes::{KernelTarget, VXLAN_DEVICE};
use felix::dataplane::{
    NetlinkRouteKernel, NextHop, Reconciler, Route, RouteConfig, RouteKernel, RouteReconciler,
};
use ipnet::IpNet;

const WORKLOAD_IFACES: u32 = 10;

/// A namespace with an underlay veth `rt0` (172.16.0.1/16, fd00:16::1/64), ten `caliN` veths and
/// a `vxlan.calico` device.
fn node() -> Netns {
    let ns = Netns::new("rt");
    ns.ip("link add rt0 type veth peer name rt1");
    ns.ip("addr add 172.16.0.1/16 dev rt0");
    ns.ip("addr add fd00:16::1/64 dev rt0 nodad");
    ns.ip("link set rt0 up");
    ns.ip("link set rt1 up");
    for i in 0..WORKLOAD_IFACES {
        ns.ip(&format!("link add cali{i} type veth peer name wl{i}"));
        ns.ip(&format!("link set cali{i} up"));
        ns.ip(&format!("link set wl{i} up"));
    }
    ns.ip(
        "link add vxlan.calico type vxlan id 4096 dstport 4789 local 172.16.0.1 dev rt0 nolearning",
    );
    ns.ip("link set vxlan.calico up");
    ns
}

fn v4(base: u32, i: u32, len: u8) -> IpNet {
    IpNet::new(IpAddr::V4(Ipv4Addr::from(base + i)), len).unwrap()
}

fn v6(base: u128, i: u128, len: u8) -> IpNet {
    IpNet::new(IpAddr::V6(Ipv6Addr::from(base + i)), len).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const N: u32 = 1000;

/// 1,000 routes of every kind the reconciler writes.
fn every_kind() -> Vec<Route> {
    let mut routes = Vec::new();
    let hop = |gw: &str| NextHop {
        gateway: ip(gw),
        interface: Some("rt0".into()),
        onlink: false,
    };
    for i in 0..N {
        // 10.1.x.y/32 workloads, 10.2.0.0/26 blackholes (64 addresses apart), 10.3 direct,
        // 10.4 VXLAN, 10.5 ECMP, 10.6 IPIP, then IPv6 workloads, blackholes and direct.
        routes.push(Route::workload(
            v4(0x0a01_0000, i, 32),
            format!("cali{}", i % WORKLOAD_IFACES),
        ));
        routes.push(Route::blackhole(v4(0x0a02_0000, i * 64, 26)));
        routes.push(Route::direct(
            v4(0x0a03_0000, i * 64, 26),
            ip("172.16.0.2"),
            "rt0",
        ));
        routes.push(Route::vxlan(
            v4(0x0a04_0000, i * 64, 26),
            IpAddr::V4(Ipv4Addr::from(0x0a04_0000 + i * 64)),
            VXLAN_DEVICE,
        ));
        routes.push(Route::ecmp(
            v4(0x0a05_0000, i * 64, 26),
            vec![hop("172.16.0.2"), hop("172.16.0.3")],
        ));
        routes.push(Route::ipip(v4(0x0a06_0000, i * 64, 26), ip("172.16.0.4")));
        routes.push(Route::workload(
            v6(
                0xfd00_0065_0000_0000_0000_0000_0000_0000,
                u128::from(i),
                128,
            ),
            format!("cali{}", i % WORKLOAD_IFACES),
        ));
        routes.push(Route::blackhole(v6(
            0xfd00_0066_0000_0000_0000_0000_0000_0000,
            u128::from(i) << 64,
            64,
        )));
        routes.push(Route::direct(
            v6(
                0xfd00_0067_0000_0000_0000_0000_0000_0000,
                u128::from(i) << 64,
                64,
            ),
            ip("fd00:16::2"),
            "rt0",
        ));
    }
    routes
}

/// Routes printed by `ip <args>` (multipath next hops are continuation lines).
fn count(ns: &Netns, args: &str) -> usize {
    ns.ip(args)
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .count()
}

#[test]
fn a_thousand_routes_of_every_kind_are_installed_and_match_a_dump() {
    let ns = node();
    let routes = every_kind();
    let (report, waiting, dumped) = ns.run_in(|| {
        let kernel = NetlinkRouteKernel::open().unwrap();
        let mut r = RouteReconciler::new(kernel, RouteConfig::default()).unwrap();
        r.set_desired(routes.clone()).unwrap();
        let report = r.apply();
        let waiting = r.waiting();
        let dumped = NetlinkRouteKernel::open()
            .unwrap()
            .dump_routes(254)
            .unwrap();
        (report, waiting, dumped)
    });
    assert!(report.is_ok(), "{:?}", report.errors);
    // IPIP routes wait: this kernel has no tunl0.
    assert_eq!(report.created, 8 * N as usize);
    assert_eq!(waiting.len(), N as usize);
    assert!(waiting.iter().all(|(_, i)| i == "tunl0"));

    assert_eq!(count(&ns, "-4 route show proto 80"), 5 * N as usize);
    assert_eq!(count(&ns, "-6 route show proto 80"), 3 * N as usize);
    assert!(
        ns.ip("route show 10.1.0.7/32")
            .contains("dev cali7 proto 80 scope link")
    );
    assert!(
        ns.ip("route show 10.2.0.64/26")
            .starts_with("blackhole 10.2.0.64/26 proto 80")
    );
    assert!(
        ns.ip("route show 10.3.0.0/26")
            .contains("via 172.16.0.2 dev rt0 proto 80")
    );
    let vx = ns.ip("route show 10.4.0.128/26");
    assert!(
        vx.contains("via 10.4.0.128 dev vxlan.calico proto 80 onlink"),
        "{vx}"
    );
    let ecmp = ns.ip("route show 10.5.0.0/26");
    assert!(ecmp.contains("nexthop via 172.16.0.2 dev rt0"), "{ecmp}");
    assert!(ecmp.contains("nexthop via 172.16.0.3 dev rt0"), "{ecmp}");
    assert!(
        ns.ip("-6 route show fd00:67:0:5::/64")
            .contains("via fd00:16::2 dev rt0 proto 80")
    );

    // Our own dump agrees route by route.
    let own: Vec<_> = dumped.iter().filter(|r| r.protocol == 80).collect();
    assert_eq!(own.len(), 8 * N as usize);
    let vx = own
        .iter()
        .find(|r| r.dst == "10.4.0.128/26".parse::<IpNet>().unwrap())
        .unwrap();
    assert!(matches!(&vx.target, KernelTarget::Gateway(nh) if nh.onlink));
    let ecmp = own
        .iter()
        .find(|r| r.dst == "10.5.0.0/26".parse::<IpNet>().unwrap())
        .unwrap();
    assert!(matches!(&ecmp.target, KernelTarget::Multipath(h) if h.len() == 2));
}

#[test]
fn a_second_apply_and_a_resync_of_an_unchanged_kernel_write_nothing() {
    let ns = node();
    let routes = every_kind();
    let (second, resync) = ns.run_in(|| {
        let mut r =
            RouteReconciler::new(NetlinkRouteKernel::open().unwrap(), RouteConfig::default())
                .unwrap();
        r.set_desired(routes.clone()).unwrap();
        assert!(r.apply().is_ok());
        (r.apply(), r.resync())
    });
    assert!(second.is_noop() && second.is_ok(), "{second:?}");
    assert!(
        resync.resynced && resync.is_noop() && resync.is_ok(),
        "{resync:?}"
    );
}

#[test]
fn a_route_deleted_by_hand_is_repaired_and_a_foreign_route_survives() {
    let ns = node();
    ns.ip("route add 10.200.0.0/24 via 172.16.0.2 proto static");
    ns.ip("route add 10.201.0.0/24 via 172.16.0.2 proto 80"); // ours, stale
    let routes: Vec<Route> = (0..100)
        .map(|i| Route::workload(v4(0x0a01_0000, i, 32), "cali1"))
        .collect();
    ns.run_in(|| {
        let mut r =
            RouteReconciler::new(NetlinkRouteKernel::open().unwrap(), RouteConfig::default())
                .unwrap();
        r.set_desired(routes.clone()).unwrap();
        let report = r.apply();
        assert_eq!(
            (report.created, report.deferred_deletes),
            (100, 1),
            "{report:?}"
        );
        assert!(
            !ns.ip("route show 10.201.0.0/24").is_empty(),
            "no delete before in-sync"
        );

        ns.ip("route del 10.1.0.42/32");
        ns.ip("route del 10.1.0.43/32 dev cali1");
        assert!(ns.ip("route show 10.1.0.42/32").is_empty());
        let report = r.resync();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert_eq!(report.created, 2);
        assert!(ns.ip("route show 10.1.0.42/32").contains("proto 80"));

        r.set_in_sync(true);
        let report = r.apply();
        assert_eq!(report.deleted, 1, "{report:?}");
    });
    assert!(ns.ip("route show 10.201.0.0/24").is_empty());
    assert!(ns.ip("route show 10.200.0.0/24").contains("proto static"));
    assert_eq!(count(&ns, "route show proto 80"), 100);
}

#[test]
fn a_foreign_route_at_our_destination_is_left_alone_and_reported() {
    let ns = node();
    ns.ip("route add 10.1.0.5/32 via 172.16.0.2 proto static");
    let health = ns.run_in(|| {
        let mut r =
            RouteReconciler::new(NetlinkRouteKernel::open().unwrap(), RouteConfig::default())
                .unwrap();
        r.set_in_sync(true);
        r.set_desired([Route::workload(v4(0x0a01_0000, 5, 32), "cali1")])
            .unwrap();
        let report = r.apply();
        assert_eq!(report.created, 0);
        r.health()
    });
    assert!(!health.is_healthy());
    assert!(
        health.reasons[0].contains("foreign route (protocol 4)"),
        "{health:?}"
    );
    assert!(ns.ip("route show 10.1.0.5/32").contains("proto static"));
}

#[test]
fn a_route_to_an_interface_that_appears_later_is_installed_then() {
    let ns = node();
    ns.run_in(|| {
        let mut r =
            RouteReconciler::new(NetlinkRouteKernel::open().unwrap(), RouteConfig::default())
                .unwrap();
        r.set_desired([
            Route::workload(v4(0x0a01_0000, 1, 32), "calinew"),
            Route::workload(v4(0x0a01_0000, 2, 32), "cali2"),
        ])
        .unwrap();
        let report = r.apply();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert_eq!((report.created, report.waiting), (1, 1));

        ns.ip("link add calinew type veth peer name wlnew");
        ns.ip("link set calinew up");
        let report = r.apply();
        assert_eq!((report.created, report.waiting), (1, 0), "{report:?}");

        // Recreating the interface drops its routes in the kernel; the reconciler notices.
        ns.ip("link del calinew");
        ns.ip("link add calinew type veth peer name wlnew");
        ns.ip("link set calinew up");
        r.interfaces_changed();
        let report = r.apply();
        assert_eq!(report.created, 1, "{report:?}");
    });
    assert!(
        ns.ip("route show 10.1.0.1/32")
            .contains("dev calinew proto 80")
    );
}
