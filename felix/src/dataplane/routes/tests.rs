//! Route reconciler against the fake kernel: diffing, batching, injected errors, restarts.

use std::net::IpAddr;

use ipnet::IpNet;

use super::fake::FakeRouteKernel;
use super::*;
use crate::dataplane::Reconciler;
use crate::dataplane::netlink::NetlinkError;
use crate::dataplane::status::{DataplaneError, HealthState};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn kernel() -> FakeRouteKernel {
    let mut k = FakeRouteKernel::new();
    k.add_link("lo", 1);
    k.add_link("eth0", 2);
    k.add_link("cali1", 10);
    k.add_link("vxlan.calico", 20);
    k
}

fn reconciler(k: FakeRouteKernel) -> RouteReconciler<FakeRouteKernel> {
    let config = RouteConfig {
        batch_size: 100,
        ..RouteConfig::default()
    };
    RouteReconciler::new(k, config).unwrap()
}

fn workloads(n: u32) -> Vec<Route> {
    (0..n)
        .map(|i| {
            let a = std::net::Ipv4Addr::from(0x0a41_0000 + i);
            Route::workload(IpNet::new(IpAddr::V4(a), 32).unwrap(), "cali1")
        })
        .collect()
}

fn foreign(dst: &str, protocol: u8, oif: u32) -> KernelRoute {
    KernelRoute {
        dst: net(dst),
        table: 254,
        protocol,
        metric: 0,
        target: KernelTarget::Device { oif },
    }
}

#[test]
fn new_routes_are_created_in_batches_of_the_configured_size() {
    let mut r = reconciler(kernel());
    r.set_desired(workloads(250)).unwrap();
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.created, 250);
    assert_eq!(r.kernel_mut().batches, vec![100, 100, 50]);
    assert_eq!(r.kernel_mut().routes_with_protocol(80).len(), 250);
}

#[test]
fn a_second_apply_with_nothing_changed_writes_nothing() {
    let mut r = reconciler(kernel());
    r.set_desired(workloads(10)).unwrap();
    r.apply();
    let report = r.apply();
    assert!(report.is_noop() && report.batches == 0, "{report:?}");
    let report = r.resync();
    assert!(report.resynced && report.is_noop(), "{report:?}");
}

#[test]
fn every_route_kind_is_installed_with_our_protocol() {
    let mut r = reconciler(kernel());
    let hop = |gw: &str| NextHop {
        gateway: ip(gw),
        interface: Some("eth0".into()),
        onlink: false,
    };
    r.set_desired([
        Route::workload(net("10.65.0.2/32"), "cali1"),
        Route::blackhole(net("10.65.0.0/26")),
        Route::direct(net("10.65.1.0/26"), ip("172.16.0.2"), "eth0"),
        Route::vxlan(net("10.65.2.0/26"), ip("10.65.2.0"), "vxlan.calico"),
        Route::ecmp(
            net("10.65.3.0/26"),
            vec![hop("172.16.0.3"), hop("172.16.0.2")],
        ),
        Route::workload(net("fd00:65::2/128"), "cali1"),
    ])
    .unwrap();
    let report = r.apply();
    assert_eq!(report.created, 6, "{:?}", report.errors);
    let k = r.kernel_mut();
    let vx = k.route(254, net("10.65.2.0/26")).unwrap();
    assert_eq!(
        vx.target,
        KernelTarget::Gateway(KernelNextHop {
            gateway: ip("10.65.2.0"),
            oif: Some(20),
            onlink: true
        })
    );
    let v6 = k.route(254, net("fd00:65::2/128")).unwrap();
    assert_eq!(v6.metric, 1024);
    let KernelTarget::Multipath(hops) = &k.route(254, net("10.65.3.0/26")).unwrap().target else {
        panic!("not multipath");
    };
    assert_eq!(hops[0].gateway, ip("172.16.0.2"), "next hops are sorted");
}

#[test]
fn a_changed_target_replaces_the_route() {
    let mut r = reconciler(kernel());
    r.set_desired([Route::direct(net("10.65.1.0/26"), ip("172.16.0.2"), "eth0")])
        .unwrap();
    r.apply();
    r.upsert(Route::direct(net("10.65.1.0/26"), ip("172.16.0.9"), "eth0"))
        .unwrap();
    let report = r.apply();
    assert_eq!((report.created, report.updated), (0, 1));
    let KernelTarget::Gateway(nh) = &r
        .kernel_mut()
        .route(254, net("10.65.1.0/26"))
        .unwrap()
        .target
    else {
        panic!()
    };
    assert_eq!(nh.gateway, ip("172.16.0.9"));
}

#[test]
fn a_restart_keeps_foreign_routes_and_deletes_stale_own_routes_only_after_in_sync() {
    let mut k = kernel();
    k.routes.push(foreign("192.168.0.0/24", 4, 2)); // proto static
    k.routes.push(foreign("10.99.0.0/24", 80, 2)); // ours, stale
    let mut other_table = foreign("10.98.0.0/24", 80, 2);
    other_table.table = 100; // our protocol but another table: not ours
    k.routes.push(other_table);
    let mut r = reconciler(k);
    r.set_desired(workloads(3)).unwrap();

    let report = r.apply();
    assert_eq!(report.created, 3);
    assert_eq!(report.deleted, 0);
    assert_eq!(report.deferred_deletes, 1);
    assert!(r.kernel_mut().route(254, net("10.99.0.0/24")).is_some());

    r.set_in_sync(true);
    let report = r.apply();
    assert_eq!(report.deleted, 1, "{report:?}");
    let k = r.kernel_mut();
    assert!(k.route(254, net("10.99.0.0/24")).is_none());
    assert_eq!(k.route(254, net("192.168.0.0/24")).unwrap().protocol, 4);
    assert!(k.route(100, net("10.98.0.0/24")).is_some());
}

#[test]
fn a_removed_route_is_deleted_once_in_sync() {
    let mut r = reconciler(kernel());
    r.set_in_sync(true);
    r.set_desired(workloads(2)).unwrap();
    r.apply();
    r.remove(&net("10.65.0.0/32"));
    let report = r.apply();
    assert_eq!(report.deleted, 1);
    assert_eq!(r.kernel_mut().routes_with_protocol(80).len(), 1);
}

#[test]
fn a_route_deleted_by_hand_is_repaired_by_resync() {
    let mut r = reconciler(kernel());
    r.set_desired(workloads(5)).unwrap();
    r.apply();
    r.kernel_mut().tamper_delete(net("10.65.0.3/32"));
    assert!(
        r.apply().is_noop(),
        "without a re-read the cache hides the tampering"
    );
    let report = r.resync();
    assert_eq!(report.created, 1);
    assert!(r.kernel_mut().route(254, net("10.65.0.3/32")).is_some());
}

#[test]
fn eexist_from_our_own_route_becomes_a_replace() {
    let mut r = reconciler(kernel());
    r.apply(); // reads an empty kernel
    // An own-protocol route appears behind our back (say, a previous felix still running).
    r.kernel_mut().routes.push(foreign("10.65.0.0/32", 80, 2));
    r.set_desired(workloads(1)).unwrap();
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.updated, 1);
    let route = r
        .kernel_mut()
        .route(254, net("10.65.0.0/32"))
        .unwrap()
        .clone();
    assert_eq!(route.target, KernelTarget::Device { oif: 10 });
    assert_eq!(route.protocol, 80);
}

#[test]
fn eexist_from_a_foreign_route_is_a_conflict_and_the_foreign_route_survives() {
    let mut r = reconciler(kernel());
    r.apply();
    // A static route appears after our read: our create hits EEXIST.
    r.kernel_mut().routes.push(foreign("10.65.0.0/32", 4, 2));
    r.set_desired(workloads(1)).unwrap();
    let report = r.apply();
    assert!(
        report
            .errors
            .iter()
            .any(|e| matches!(e, DataplaneError::RouteConflict { protocol: 4, .. })),
        "{:?}",
        report.errors
    );
    assert_eq!(
        r.kernel_mut()
            .route(254, net("10.65.0.0/32"))
            .unwrap()
            .protocol,
        4
    );
    assert_eq!(r.health().state, HealthState::Degraded);
    assert_eq!(r.conflicts(), vec![(net("10.65.0.0/32"), 4)]);
    // Still a conflict on the next apply; the foreign route is never touched.
    let report = r.apply();
    assert!(report.is_noop());
    assert_eq!(r.health().state, HealthState::Degraded);
    assert_eq!(
        r.kernel_mut()
            .route(254, net("10.65.0.0/32"))
            .unwrap()
            .protocol,
        4
    );
}

#[test]
fn a_foreign_route_on_a_workload_interface_is_taken_over() {
    let mut k = kernel();
    k.routes.push(foreign("10.65.0.0/32", 3, 10)); // proto boot, dev cali1 (written by CNI)
    let mut r = reconciler(k);
    r.set_desired(workloads(1)).unwrap();
    let report = r.apply();
    assert_eq!(report.updated, 1, "{:?}", report.errors);
    assert_eq!(
        r.kernel_mut()
            .route(254, net("10.65.0.0/32"))
            .unwrap()
            .protocol,
        80
    );
}

#[test]
fn enoent_on_delete_means_already_gone() {
    let mut r = reconciler(kernel());
    r.set_in_sync(true);
    r.set_desired(workloads(1)).unwrap();
    r.apply();
    r.kernel_mut().fail_write(net("10.65.0.0/32"), libc::ENOENT);
    r.set_desired([]).unwrap();
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.deleted, 1);
    assert_eq!(r.installed(), 0);
}

#[test]
fn ebusy_on_one_message_fails_only_that_route_and_it_is_retried() {
    let mut r = reconciler(kernel());
    r.set_desired(workloads(50)).unwrap();
    r.kernel_mut().fail_write(net("10.65.0.7/32"), libc::EBUSY);
    let report = r.apply();
    assert_eq!(report.created, 49);
    assert_eq!(report.errors.len(), 1);
    assert!(matches!(
        &report.errors[0],
        DataplaneError::Write { source, .. } if source.errno == libc::EBUSY
    ));
    assert_eq!(r.health().state, HealthState::Degraded);
    let dumps = r.kernel_mut().dumps;
    let report = r.apply();
    assert!(report.resynced, "an error makes the next apply re-read");
    assert_eq!(r.kernel_mut().dumps, dumps + 1);
    assert_eq!(report.created, 1);
    assert!(r.health().is_healthy());
}

#[test]
fn a_failed_batch_is_retried_after_a_re_read() {
    let mut r = reconciler(kernel());
    r.set_desired(workloads(150)).unwrap();
    r.kernel_mut()
        .fail_next_batch(NetlinkError::Timeout(std::time::Duration::from_secs(1)));
    let report = r.apply();
    assert_eq!(report.created, 50, "the second batch went through");
    assert!(matches!(
        report.errors[0],
        DataplaneError::Batch { count: 100, .. }
    ));
    let report = r.apply();
    assert_eq!(report.created, 100);
    assert_eq!(r.kernel_mut().routes_with_protocol(80).len(), 150);
}

#[test]
fn a_route_to_a_missing_interface_waits_and_is_installed_when_it_appears() {
    let mut r = reconciler(kernel());
    r.set_desired([
        Route::workload(net("10.65.0.9/32"), "cali9"),
        Route::workload(net("10.65.0.1/32"), "cali1"),
    ])
    .unwrap();
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!((report.created, report.waiting), (1, 1));
    assert_eq!(
        r.waiting(),
        vec![(net("10.65.0.9/32"), "cali9".to_string())]
    );
    assert!(r.health().is_healthy(), "waiting is not a failure");

    r.kernel_mut().add_link("cali9", 11);
    let report = r.apply();
    assert_eq!((report.created, report.waiting), (1, 0));
    assert_eq!(
        r.kernel_mut()
            .route(254, net("10.65.0.9/32"))
            .unwrap()
            .target,
        KernelTarget::Device { oif: 11 }
    );
}

#[test]
fn enodev_during_a_write_makes_the_route_wait() {
    let mut r = reconciler(kernel());
    r.set_desired(workloads(2)).unwrap();
    r.kernel_mut().fail_write(net("10.65.0.1/32"), libc::ENODEV);
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!((report.created, report.waiting), (1, 1));
    let report = r.apply();
    assert_eq!((report.created, report.waiting), (1, 0));
}

#[test]
fn a_recreated_interface_triggers_a_re_read_and_the_routes_come_back() {
    let mut r = reconciler(kernel());
    r.set_desired(workloads(3)).unwrap();
    r.apply();
    r.kernel_mut().remove_link("cali1");
    r.kernel_mut().add_link("cali1", 42);
    r.interfaces_changed();
    let report = r.apply();
    assert!(report.resynced);
    assert_eq!(report.created, 3);
    assert!(
        r.kernel_mut()
            .routes_with_protocol(80)
            .iter()
            .all(|x| x.target == KernelTarget::Device { oif: 42 })
    );
}

#[test]
fn a_failed_dump_writes_nothing_and_is_reported() {
    let mut r = reconciler(kernel());
    r.set_desired(workloads(3)).unwrap();
    r.kernel_mut()
        .fail_next_dump(NetlinkError::Timeout(std::time::Duration::from_secs(1)));
    let report = r.apply();
    assert!(matches!(
        report.errors[0],
        DataplaneError::Read { what: "routes", .. }
    ));
    assert_eq!(report.created, 0);
    assert_eq!(r.apply().created, 3);
}

#[test]
fn invalid_routes_are_rejected_and_change_nothing() {
    let mut r = reconciler(kernel());
    r.set_desired(workloads(2)).unwrap();
    let cases = [
        (
            vec![Route::workload(net("10.65.0.1/24"), "cali1")],
            "host bits",
        ),
        (
            vec![Route::direct(net("10.65.1.0/26"), ip("fd00::1"), "eth0")],
            "must be IPv4",
        ),
        (
            vec![Route::workload(net("10.65.0.1/32"), "")],
            "must not be empty",
        ),
        (
            vec![
                Route::blackhole(net("10.65.0.0/26")),
                Route::workload(net("10.65.0.0/26"), "cali1"),
            ],
            "already has a route",
        ),
        (
            vec![Route::ecmp(net("10.65.3.0/26"), vec![])],
            "at least one",
        ),
    ];
    for (routes, rule) in cases {
        let err = r.set_desired(routes).unwrap_err();
        assert!(
            err.to_string().contains(rule),
            "{err} should mention {rule}"
        );
    }
    assert!(
        r.upsert(Route::workload(net("10.65.9.9/16"), "cali1"))
            .is_err()
    );
    let report = r.apply();
    assert_eq!(report.created, 2, "the last valid desired state stands");
}

#[test]
fn a_bad_config_is_rejected() {
    for config in [
        RouteConfig {
            protocol: 4,
            ..RouteConfig::default()
        },
        RouteConfig {
            batch_size: 0,
            ..RouteConfig::default()
        },
        RouteConfig {
            table: 255,
            ..RouteConfig::default()
        },
    ] {
        assert!(RouteReconciler::new(kernel(), config).is_err());
    }
}

#[test]
fn an_own_duplicate_at_another_metric_is_deleted_after_in_sync() {
    let mut k = kernel();
    let mut dup = foreign("10.65.0.0/32", 80, 10);
    dup.metric = 7;
    k.routes.push(dup);
    let mut r = reconciler(k);
    r.set_desired(workloads(1)).unwrap();
    let report = r.apply();
    assert_eq!(report.deferred_deletes, 1);
    r.set_in_sync(true);
    let report = r.apply();
    assert_eq!(report.deleted, 1, "{report:?}");
    let left = r.kernel_mut().routes_with_protocol(80);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].metric, 0);
}
