//! Links, neighbours/FDB and routes together against real kernels: VXLAN end to end between two
//! namespaces, and `tunl0` on a kernel without IPIP (root only).

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::Duration;

use fabric_testkit::{Netns, veth, wait_until};
use felix::dataplane::links::IPIP_UNSUPPORTED;
use felix::dataplane::routes::VXLAN_DEVICE;
use felix::dataplane::status::{DataplaneError, HealthState};
use felix::dataplane::{
    DesiredLinks, IpFamily, IpipLink, IpipStatus, LinkConfig, LinkReconciler, MacAddr,
    NeighbourReconciler, NetlinkLinkKernel, NetlinkNeighbourKernel, NetlinkRouteKernel, Reconciler,
    Route, RouteConfig, RouteReconciler, VtepNeighbour, VxlanLink,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// One side of the VXLAN test: its underlay address, VTEP address and MAC, block, loopback.
struct Side {
    underlay: &'static str,
    parent: &'static str,
    vtep: &'static str,
    mac: &'static str,
    block: &'static str,
    loopback: &'static str,
}

const A: Side = Side {
    underlay: "172.16.0.1",
    parent: "va",
    vtep: "10.65.0.0",
    mac: "66:0a:00:00:00:01",
    block: "10.65.0.0/26",
    loopback: "10.65.0.1",
};

const B: Side = Side {
    underlay: "172.16.0.2",
    parent: "vb",
    vtep: "10.65.1.0",
    mac: "66:0a:00:00:00:02",
    block: "10.65.1.0/26",
    loopback: "10.65.1.1",
};

/// Programs `me` towards `peer` with the three reconcilers, inside `ns`.
fn program(ns: &Netns, me: &Side, peer: &Side) {
    ns.run_in(|| {
        let mut links =
            LinkReconciler::new(NetlinkLinkKernel::open().unwrap(), LinkConfig::default());
        links
            .set_desired(DesiredLinks {
                vxlan_v4: Some(VxlanLink {
                    parent: Some(me.parent.to_string()),
                    mac: Some(me.mac.parse().unwrap()),
                    mtu: Some(1450),
                    ..VxlanLink::calico(ip(me.underlay), Some(ip(me.vtep)))
                }),
                ..DesiredLinks::default()
            })
            .unwrap();
        let report = links.apply();
        assert!(report.is_ok(), "{:?}", report.errors);

        let mut neighbours = NeighbourReconciler::new(
            NetlinkNeighbourKernel::open().unwrap(),
            VXLAN_DEVICE,
            IpFamily::V4,
        )
        .unwrap();
        neighbours
            .set_desired([VtepNeighbour {
                tunnel_address: ip(peer.vtep),
                mac: peer.mac.parse().unwrap(),
                underlay: ip(peer.underlay),
            }])
            .unwrap();
        let report = neighbours.apply();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert_eq!(report.created, 2);

        let mut routes =
            RouteReconciler::new(NetlinkRouteKernel::open().unwrap(), RouteConfig::default())
                .unwrap();
        routes
            .set_desired([Route::vxlan(
                peer.block.parse().unwrap(),
                ip(peer.vtep),
                VXLAN_DEVICE,
            )])
            .unwrap();
        let report = routes.apply();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert_eq!(report.created, 1);
    });
}

fn ping_works(ns: &Netns, from: &str, to: &str) -> bool {
    wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        ns.try_sh(&format!("ping -c 1 -W 1 -I {from} {to}")).is_ok()
    })
}

#[test]
fn vxlan_with_neighbour_fdb_and_onlink_routes_carries_a_ping_between_loopbacks() {
    let a = Netns::new("vxa");
    let b = Netns::new("vxb");
    veth(&a, "va", &b, "vb");
    a.ip("addr add 172.16.0.1/24 dev va");
    b.ip("addr add 172.16.0.2/24 dev vb");
    a.ip(&format!("addr add {}/32 dev lo", A.loopback));
    b.ip(&format!("addr add {}/32 dev lo", B.loopback));

    program(&a, &A, &B);
    program(&b, &B, &A);

    let link = a.ip("-d link show vxlan.calico");
    assert!(link.contains("vxlan id 4096"), "{link}");
    assert!(link.contains("local 172.16.0.1 dev va"), "{link}");
    assert!(link.contains("dstport 4789 nolearning"), "{link}");
    assert!(
        link.contains("mtu 1450") && link.contains("66:0a:00:00:00:01"),
        "{link}"
    );
    assert!(
        a.ip("addr show dev vxlan.calico")
            .contains("inet 10.65.0.0/32")
    );
    let neigh = a.ip("neigh show dev vxlan.calico");
    assert!(
        neigh.contains("10.65.1.0 lladdr 66:0a:00:00:00:02 PERMANENT"),
        "{neigh}"
    );
    let fdb = a.sh("bridge fdb show dev vxlan.calico");
    assert!(
        fdb.contains("66:0a:00:00:00:02 dst 172.16.0.2 self permanent"),
        "{fdb}"
    );
    let route = a.ip("route show 10.65.1.0/26");
    assert!(
        route.contains("via 10.65.1.0 dev vxlan.calico proto 80 onlink"),
        "{route}"
    );

    assert!(
        ping_works(&a, A.loopback, B.loopback),
        "ping over VXLAN failed"
    );
    assert!(
        ping_works(&b, B.loopback, A.loopback),
        "ping over VXLAN failed"
    );
}

#[test]
fn tampered_neighbour_and_fdb_entries_are_repaired_by_resync() {
    let ns = Netns::new("vxt");
    ns.ip("link add va type veth peer name vb");
    ns.ip("addr add 172.16.0.1/24 dev va");
    ns.ip("link set va up");
    ns.ip("link set vb up");
    ns.run_in(|| {
        let mut links =
            LinkReconciler::new(NetlinkLinkKernel::open().unwrap(), LinkConfig::default());
        links
            .set_desired(DesiredLinks {
                vxlan_v4: Some(VxlanLink::calico(ip("172.16.0.1"), Some(ip("10.65.0.0")))),
                ..DesiredLinks::default()
            })
            .unwrap();
        assert!(links.apply().is_ok());
        let mut n = NeighbourReconciler::new(
            NetlinkNeighbourKernel::open().unwrap(),
            VXLAN_DEVICE,
            IpFamily::V4,
        )
        .unwrap();
        let vteps: Vec<VtepNeighbour> = (2..12u8)
            .map(|i| VtepNeighbour {
                tunnel_address: ip(&format!("10.65.{i}.0")),
                mac: MacAddr([0x66, 0x0a, 0, 0, 0, i]),
                underlay: ip(&format!("172.16.0.{i}")),
            })
            .collect();
        n.set_desired(vteps).unwrap();
        assert_eq!(n.apply().created, 20);

        // A foreign permanent neighbour on another device survives everything.
        ns.ip("neigh add 172.16.0.200 lladdr 02:00:00:00:00:c8 dev va nud permanent");
        ns.ip("neigh del 10.65.3.0 dev vxlan.calico");
        ns.sh("bridge fdb del 66:0a:00:00:00:04 dev vxlan.calico dst 172.16.0.4 self");
        ns.sh(
            "bridge fdb replace 66:0a:00:00:00:05 dev vxlan.calico dst 172.16.9.9 self permanent",
        );
        // A stale own entry (a VTEP that went away while we were down).
        ns.sh("bridge fdb add 66:0a:00:00:00:99 dev vxlan.calico dst 172.16.0.99 self permanent");
        let report = n.resync();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert_eq!(
            (report.created, report.deferred_deletes),
            (3, 1),
            "{report:?}"
        );

        n.set_in_sync(true);
        let report = n.apply();
        assert_eq!(report.deleted, 1, "{report:?}");
        // Everything desired is there and a re-read finds nothing to do.
        assert!(n.resync().is_noop());
    });
    assert!(
        ns.ip("neigh show dev vxlan.calico")
            .contains("10.65.3.0 lladdr 66:0a:00:00:00:03 PERMANENT")
    );
    let fdb = ns.sh("bridge fdb show dev vxlan.calico");
    assert!(
        fdb.contains("66:0a:00:00:00:04 dst 172.16.0.4 self permanent"),
        "{fdb}"
    );
    assert!(
        fdb.contains("66:0a:00:00:00:05 dst 172.16.0.5 self permanent"),
        "{fdb}"
    );
    assert!(
        !fdb.contains("172.16.9.9") && !fdb.contains("66:0a:00:00:00:99"),
        "{fdb}"
    );
    assert!(ns.ip("neigh show dev va").contains("172.16.0.200"));
}

#[test]
fn tunl0_creation_fails_with_a_typed_error_and_a_health_state_while_vxlan_works() {
    let ns = Netns::new("ipip");
    ns.ip("link add va type veth peer name vb");
    ns.ip("addr add 172.16.0.1/24 dev va");
    ns.ip("addr add fd00:16::1/64 dev va nodad");
    let (report, health, status) = ns.run_in(|| {
        let mut links =
            LinkReconciler::new(NetlinkLinkKernel::open().unwrap(), LinkConfig::default());
        links
            .set_desired(DesiredLinks {
                vxlan_v4: Some(VxlanLink::calico(ip("172.16.0.1"), Some(ip("10.65.0.0")))),
                vxlan_v6: Some(VxlanLink::calico(ip("fd00:16::1"), Some(ip("fd00:65::")))),
                ipip: Some(IpipLink::calico(Some("10.66.0.1".parse().unwrap()))),
            })
            .unwrap();
        let report = links.apply();
        (report, links.health(), links.ipip_status().clone())
    });
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    match &report.errors[0] {
        DataplaneError::Unsupported { name, kind, source } => {
            assert_eq!((name.as_str(), kind.as_str()), ("tunl0", "ipip"));
            assert_eq!(source.errno, libc::EOPNOTSUPP);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(health.state, HealthState::Degraded);
    assert_eq!(health.reasons, vec![IPIP_UNSUPPORTED.to_string()]);
    assert!(matches!(status, IpipStatus::Unsupported(_)));
    assert!(ns.try_ip("link show tunl0").is_err());
    assert!(ns.ip("-d link show vxlan.calico").contains("vxlan id 4096"));
    let v6 = ns.ip("-d link show vxlan-v6.calico");
    assert!(v6.contains("vxlan id 4096 local fd00:16::1"), "{v6}");
    assert!(
        ns.ip("-6 addr show dev vxlan-v6.calico")
            .contains("fd00:65::/128")
    );
}

#[test]
fn a_vxlan_device_changed_by_hand_is_repaired_by_resync() {
    let ns = Netns::new("vxr");
    ns.ip("link add va type veth peer name vb");
    ns.ip("addr add 172.16.0.1/24 dev va");
    ns.run_in(|| {
        let mut links =
            LinkReconciler::new(NetlinkLinkKernel::open().unwrap(), LinkConfig::default());
        links
            .set_desired(DesiredLinks {
                vxlan_v4: Some(VxlanLink {
                    mtu: Some(1450),
                    ..VxlanLink::calico(ip("172.16.0.1"), Some(ip("10.65.0.0")))
                }),
                ..DesiredLinks::default()
            })
            .unwrap();
        assert_eq!(links.apply().created, 2);
        ns.ip("link set vxlan.calico mtu 1300 down");
        ns.ip("addr flush dev vxlan.calico");
        let report = links.resync();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert_eq!((report.updated, report.created), (1, 1), "{report:?}");

        // A device with the wrong VNI is replaced.
        ns.ip("link del vxlan.calico");
        ns.ip("link add vxlan.calico type vxlan id 7 dstport 4789 local 172.16.0.1 nolearning");
        let report = links.resync();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert_eq!(report.updated, 1, "{report:?}");
    });
    let link = ns.ip("-d link show vxlan.calico");
    assert!(
        link.contains("mtu 1450") && link.contains("vxlan id 4096"),
        "{link}"
    );
    assert!(link.contains(",UP"), "{link}");
    assert!(ns.ip("addr show dev vxlan.calico").contains("10.65.0.0/32"));
}
