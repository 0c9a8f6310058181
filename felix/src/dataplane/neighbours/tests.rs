//! Neighbour/FDB reconciler against the fake kernel.

use std::net::IpAddr;

use super::fake::FakeNeighbourKernel;
use super::*;

const VX: u32 = 20;
const ETH0: u32 = 2;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mac(n: u8) -> MacAddr {
    MacAddr([0x66, 0x0a, 0, 0, 0, n])
}

fn vtep(n: u8) -> VtepNeighbour {
    VtepNeighbour {
        tunnel_address: ip(&format!("10.65.{n}.0")),
        mac: mac(n),
        underlay: ip(&format!("172.16.0.{n}")),
    }
}

fn kernel() -> FakeNeighbourKernel {
    let mut k = FakeNeighbourKernel::new();
    k.links.insert("eth0".into(), ETH0);
    k.links.insert("vxlan.calico".into(), VX);
    k
}

fn reconciler(k: FakeNeighbourKernel) -> NeighbourReconciler<FakeNeighbourKernel> {
    NeighbourReconciler::new(k, "vxlan.calico", IpFamily::V4).unwrap()
}

#[test]
fn each_vtep_gets_a_permanent_neighbour_and_an_fdb_entry_in_one_batch() {
    let mut r = reconciler(kernel());
    r.set_desired([vtep(2), vtep(3)]).unwrap();
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.created, 4);
    let k = r.kernel_mut();
    assert_eq!(k.batches, vec![4]);
    assert!(k.neighbours.iter().all(|n| n.ifindex == VX && n.permanent));
    let e = k.fdb.iter().find(|e| e.mac == mac(3)).unwrap();
    assert_eq!(e.dst, Some(ip("172.16.0.3")));
    assert!(r.apply().is_noop());
    assert!(r.resync().is_noop());
}

#[test]
fn a_moved_vtep_replaces_its_fdb_remote_and_mac() {
    let mut r = reconciler(kernel());
    r.set_desired([vtep(2)]).unwrap();
    r.apply();
    let moved = VtepNeighbour {
        underlay: ip("172.16.9.9"),
        ..vtep(2)
    };
    r.set_desired([moved]).unwrap();
    let report = r.apply();
    assert_eq!((report.created, report.deleted), (1, 0), "{report:?}");
    let k = r.kernel_mut();
    assert_eq!(k.fdb.len(), 1);
    assert_eq!(k.fdb[0].dst, Some(ip("172.16.9.9")));
}

#[test]
fn a_restart_keeps_foreign_entries_and_deletes_stale_own_entries_only_after_in_sync() {
    let mut k = kernel();
    // Foreign: an entry on eth0, a dynamic entry on our device, the device's own address entry.
    k.neighbours.push(KernelNeighbour {
        ifindex: ETH0,
        address: ip("172.16.0.99"),
        mac: Some(mac(99)),
        permanent: true,
    });
    k.neighbours.push(KernelNeighbour {
        ifindex: VX,
        address: ip("10.65.77.0"),
        mac: Some(mac(77)),
        permanent: false,
    });
    k.fdb.push(KernelFdb {
        ifindex: VX,
        mac: MacAddr([0x33, 0x33, 0, 0, 0, 1]),
        dst: None,
        permanent: true,
        own_table: true,
    });
    // Stale own: a VTEP that no longer exists.
    k.neighbours.push(KernelNeighbour {
        ifindex: VX,
        address: ip("10.65.9.0"),
        mac: Some(mac(9)),
        permanent: true,
    });
    k.fdb.push(KernelFdb {
        ifindex: VX,
        mac: mac(9),
        dst: Some(ip("172.16.0.9")),
        permanent: true,
        own_table: true,
    });
    let mut r = reconciler(k);
    r.set_desired([vtep(2)]).unwrap();
    let report = r.apply();
    assert_eq!(
        (report.created, report.deferred_deletes),
        (2, 2),
        "{report:?}"
    );
    assert_eq!(r.kernel_mut().neighbours.len(), 4);

    r.set_in_sync(true);
    let report = r.apply();
    assert_eq!(report.deleted, 2, "{report:?}");
    let k = r.kernel_mut();
    assert!(k.neighbours.iter().any(|n| n.ifindex == ETH0));
    assert!(k.neighbours.iter().any(|n| !n.permanent));
    assert!(!k.neighbours.iter().any(|n| n.address == ip("10.65.9.0")));
    assert!(
        k.fdb.iter().any(|e| e.dst.is_none()),
        "device address entry stays"
    );
    assert!(!k.fdb.iter().any(|e| e.mac == mac(9)));
}

#[test]
fn a_neighbour_deleted_by_hand_is_repaired_by_resync() {
    let mut r = reconciler(kernel());
    r.set_desired([vtep(2)]).unwrap();
    r.apply();
    r.kernel_mut().neighbours.clear();
    r.kernel_mut().fdb.clear();
    let report = r.resync();
    assert_eq!(report.created, 2);
}

#[test]
fn the_device_missing_makes_everything_wait() {
    let mut k = kernel();
    k.links.remove("vxlan.calico");
    let mut r = reconciler(k);
    r.set_desired([vtep(2), vtep(3)]).unwrap();
    let report = r.apply();
    assert!(report.is_ok());
    assert_eq!(report.waiting, 2);
    r.kernel_mut().links.insert("vxlan.calico".into(), VX);
    assert_eq!(r.apply().created, 4);
}

#[test]
fn ebusy_and_enoent_are_handled_per_entry() {
    let mut r = reconciler(kernel());
    r.set_in_sync(true);
    r.set_desired([vtep(2)]).unwrap();
    r.kernel_mut().fail_next_write(libc::EBUSY);
    let report = r.apply();
    assert_eq!((report.created, report.errors.len()), (1, 1));
    assert!(!r.health().is_healthy());
    let report = r.apply();
    assert_eq!(report.created, 1, "retried: {report:?}");
    assert!(r.health().is_healthy());

    r.set_desired([]).unwrap();
    r.kernel_mut().fail_next_write(libc::ENOENT);
    let report = r.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.deleted, 2);
}

#[test]
fn invalid_vteps_are_rejected_and_change_nothing() {
    let mut r = reconciler(kernel());
    r.set_desired([vtep(2)]).unwrap();
    let cases = [
        (
            vec![VtepNeighbour {
                tunnel_address: ip("fd00::1"),
                ..vtep(3)
            }],
            "IPv4",
        ),
        (
            vec![VtepNeighbour {
                mac: MacAddr([1, 0, 0, 0, 0, 1]),
                ..vtep(3)
            }],
            "unicast",
        ),
        (
            vec![
                vtep(3),
                VtepNeighbour {
                    mac: mac(4),
                    ..vtep(3)
                },
            ],
            "tunnel address",
        ),
        (
            vec![
                vtep(3),
                VtepNeighbour {
                    mac: mac(3),
                    ..vtep(4)
                },
            ],
            "share this MAC",
        ),
    ];
    for (vteps, rule) in cases {
        let err = r.set_desired(vteps).unwrap_err();
        assert!(
            err.to_string().contains(rule),
            "{err} should mention {rule}"
        );
    }
    assert_eq!(r.apply().created, 2);
}
