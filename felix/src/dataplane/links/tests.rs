//! Link reconciler against the fake kernel.

use std::net::IpAddr;

use super::fake::FakeLinkKernel;
use super::*;
use crate::dataplane::status::HealthState;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn vxlan() -> VxlanLink {
    VxlanLink {
        parent: Some("eth0".into()),
        mac: Some("66:0a:00:00:00:01".parse().unwrap()),
        mtu: Some(1450),
        ..VxlanLink::calico(ip("172.16.0.1"), Some(ip("10.65.0.0")))
    }
}

fn reconciler() -> LinkReconciler<FakeLinkKernel> {
    let mut k = FakeLinkKernel::new();
    k.add_link("eth0", Some("veth"));
    LinkReconciler::new(k, LinkConfig::default())
}

fn desired_vxlan() -> DesiredLinks {
    DesiredLinks {
        vxlan_v4: Some(vxlan()),
        ..DesiredLinks::default()
    }
}

#[test]
fn the_vxlan_device_is_created_with_its_parameters_and_address() {
    let mut r = reconciler();
    r.set_desired(desired_vxlan()).unwrap();
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.created, 2, "device and address");
    let k = r.kernel_mut();
    let eth0 = k.link("eth0").unwrap().index;
    let l = k.link("vxlan.calico").unwrap().clone();
    assert_eq!(l.mtu, 1450);
    assert_eq!(l.mac, Some("66:0a:00:00:00:01".parse().unwrap()));
    assert_eq!(
        l.vxlan,
        Some(VxlanParams {
            vni: 4096,
            port: 4789,
            local: Some(ip("172.16.0.1")),
            parent: Some(eth0),
            learning: false,
        })
    );
    assert_eq!(k.addresses_of("vxlan.calico"), vec![net("10.65.0.0/32")]);
    assert_eq!(
        r.mac("vxlan.calico"),
        Some("66:0a:00:00:00:01".parse().unwrap())
    );
    assert!(r.apply().is_noop(), "nothing to do the second time");
    assert!(r.resync().is_noop());
}

#[test]
fn a_changed_mtu_is_repaired_in_place_by_resync() {
    let mut r = reconciler();
    r.set_desired(desired_vxlan()).unwrap();
    r.apply();
    let index = r.kernel_mut().link("vxlan.calico").unwrap().index;
    r.kernel_mut().link_mut("vxlan.calico").unwrap().mtu = 9000;
    r.kernel_mut().link_mut("vxlan.calico").unwrap().up = false;
    let report = r.resync();
    assert_eq!(report.updated, 1);
    let l = r.kernel_mut().link("vxlan.calico").unwrap().clone();
    assert_eq!((l.index, l.mtu, l.up), (index, 1450, true));
}

#[test]
fn a_device_with_a_wrong_vni_is_recreated() {
    let mut r = reconciler();
    r.set_desired(desired_vxlan()).unwrap();
    r.apply();
    if let Some(p) = r
        .kernel_mut()
        .link_mut("vxlan.calico")
        .unwrap()
        .vxlan
        .as_mut()
    {
        p.vni = 1;
    }
    let report = r.resync();
    assert_eq!(report.updated, 1, "{report:?}");
    let l = r.kernel_mut().link("vxlan.calico").unwrap().clone();
    assert_eq!(l.vxlan.unwrap().vni, 4096);
    assert_eq!(
        r.kernel_mut().addresses_of("vxlan.calico"),
        vec![net("10.65.0.0/32")]
    );
}

#[test]
fn a_foreign_device_under_our_name_is_replaced() {
    let mut r = reconciler();
    r.kernel_mut().add_link("vxlan.calico", Some("veth"));
    r.set_desired(desired_vxlan()).unwrap();
    let report = r.apply();
    assert_eq!(report.updated, 1);
    assert_eq!(
        r.kernel_mut().link("vxlan.calico").unwrap().kind.as_deref(),
        Some("vxlan")
    );
}

#[test]
fn a_missing_parent_makes_the_device_wait() {
    let mut r = LinkReconciler::new(FakeLinkKernel::new(), LinkConfig::default());
    r.set_desired(desired_vxlan()).unwrap();
    let report = r.apply();
    assert!(report.is_ok());
    assert_eq!(report.waiting, 1);
    assert!(r.kernel_mut().link("vxlan.calico").is_none());
    r.kernel_mut().add_link("eth0", Some("veth"));
    let report = r.apply();
    assert_eq!((report.created, report.waiting), (2, 0));
}

#[test]
fn tunl0_on_a_kernel_without_ipip_is_a_typed_error_and_a_health_state_and_vxlan_still_works() {
    let mut r = reconciler();
    r.set_desired(DesiredLinks {
        vxlan_v4: Some(vxlan()),
        ipip: Some(IpipLink::calico(Some("10.66.0.1".parse().unwrap()))),
        ..DesiredLinks::default()
    })
    .unwrap();
    let report = r.apply();
    assert_eq!(report.errors.len(), 1);
    match &report.errors[0] {
        DataplaneError::Unsupported { name, kind, source } => {
            assert_eq!((name.as_str(), kind.as_str()), ("tunl0", "ipip"));
            assert_eq!(source.errno, libc::EOPNOTSUPP);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(r.ipip_status(), IpipStatus::Unsupported(_)));
    let health = r.health();
    assert_eq!(health.state, HealthState::Degraded);
    assert_eq!(health.reasons, vec![IPIP_UNSUPPORTED.to_string()]);
    assert!(
        r.kernel_mut().link("vxlan.calico").is_some(),
        "VXLAN is unaffected"
    );
    // No retry storm: the next apply does nothing, health stays degraded.
    assert!(r.apply().is_noop());
    assert_eq!(r.health().reasons, vec![IPIP_UNSUPPORTED.to_string()]);
}

#[test]
fn an_existing_tunl0_is_configured() {
    let mut k = FakeLinkKernel::new();
    k.unsupported_kinds.clear();
    k.add_link("tunl0", Some("ipip"));
    let mut r = LinkReconciler::new(k, LinkConfig::default());
    r.set_desired(DesiredLinks {
        ipip: Some(IpipLink {
            mtu: Some(1480),
            ..IpipLink::calico(Some("10.66.0.1".parse().unwrap()))
        }),
        ..DesiredLinks::default()
    })
    .unwrap();
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(r.ipip_status(), &IpipStatus::Ready);
    assert_eq!(r.kernel_mut().link("tunl0").unwrap().mtu, 1480);
    assert_eq!(
        r.kernel_mut().addresses_of("tunl0"),
        vec![net("10.66.0.1/32")]
    );
}

#[test]
fn stale_own_devices_and_addresses_go_only_after_in_sync_and_foreign_ones_stay() {
    let mut k = FakeLinkKernel::new();
    k.add_link("eth0", Some("veth"));
    k.add_link("flannel.1", Some("vxlan"));
    let v6 = k.add_link("vxlan-v6.calico", Some("vxlan"));
    k.addresses.push((v6, net("fd00::1/128")));
    let mut r = LinkReconciler::new(k, LinkConfig::default());
    r.set_desired(desired_vxlan()).unwrap();
    r.apply();
    let ours = r.kernel_mut().link("vxlan.calico").unwrap().index;
    r.kernel_mut().addresses.push((ours, net("192.0.2.9/32"))); // stale address on our device
    r.kernel_mut().addresses.push((ours, net("fe80::1/64"))); // kernel link-local: ignored

    let report = r.resync();
    assert_eq!(report.deferred_deletes, 2, "{report:?}");
    assert!(r.kernel_mut().link("vxlan-v6.calico").is_some());

    r.set_in_sync(true);
    let report = r.apply();
    assert_eq!(report.deleted, 2, "{report:?}");
    let k = r.kernel_mut();
    assert!(k.link("vxlan-v6.calico").is_none());
    assert!(k.link("flannel.1").is_some());
    assert!(k.link("eth0").is_some());
    let mut left = k.addresses_of("vxlan.calico");
    left.sort();
    assert_eq!(left, vec![net("10.65.0.0/32"), net("fe80::1/64")]);
}

#[test]
fn ebusy_is_reported_and_retried_on_the_next_apply() {
    let mut r = reconciler();
    r.set_desired(desired_vxlan()).unwrap();
    r.kernel_mut().fail_next("create", libc::EBUSY);
    let report = r.apply();
    assert_eq!(report.errors.len(), 1);
    assert!(!r.health().is_healthy());
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.created, 2);
    assert!(r.health().is_healthy());
}

#[test]
fn eexist_on_an_address_means_it_is_there() {
    let mut r = reconciler();
    r.set_desired(desired_vxlan()).unwrap();
    r.kernel_mut().fail_next("add_address", libc::EEXIST);
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
}

#[test]
fn invalid_links_are_rejected_and_change_nothing() {
    let mut r = reconciler();
    let bad = [
        (VxlanLink { vni: 0, ..vxlan() }, "VNI"),
        (VxlanLink { port: 0, ..vxlan() }, "port"),
        (
            VxlanLink {
                name: "vxlan0".into(),
                ..vxlan()
            },
            "owns",
        ),
        (
            VxlanLink {
                mtu: Some(20),
                ..vxlan()
            },
            "MTU",
        ),
        (
            VxlanLink {
                address: Some(ip("fd00::1")),
                ..vxlan()
            },
            "tunnel address",
        ),
        (
            VxlanLink {
                local: ip("fd00::1"),
                address: None,
                ..vxlan()
            },
            "this device is IPv4",
        ),
    ];
    for (link, rule) in bad {
        let err = r
            .set_desired(DesiredLinks {
                vxlan_v4: Some(link),
                ..DesiredLinks::default()
            })
            .unwrap_err();
        assert!(
            err.to_string().contains(rule),
            "{err} should mention {rule}"
        );
    }
    assert!(r.apply().is_noop());
    assert!(r.kernel_mut().link("vxlan.calico").is_none());
}

#[test]
fn a_stale_device_that_vanished_before_its_delete_counts_as_deleted() {
    let mut k = FakeLinkKernel::new();
    k.add_link("vxlan-v6.calico", Some("vxlan"));
    let mut r = LinkReconciler::new(k, LinkConfig::default());
    r.set_in_sync(true);
    r.kernel_mut().fail_next("delete", libc::ENODEV);
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.deleted, 1);
}
