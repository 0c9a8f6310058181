//! An IPIP pool on a kernel without IPIP: felix reports a clear error and a not-ready health
//! state naming the pool, while the VXLAN pool beside it keeps working (root only).

#![allow(clippy::unwrap_used)]

mod support;

use fabric_api::ippool::{IPIPMode, VXLANMode};
use fabric_datastore::ipam_model::{AffinityState, BlockAffinity};
use fabric_datastore::keys::ipam_affinity_key;
use support::{Cluster, eventually, http_get, routes};

#[test]
fn an_ipip_pool_on_a_kernel_without_ipip_is_reported_and_vxlan_keeps_working() {
    let c = Cluster::new(2, IPIPMode::Never, VXLANMode::Always);
    c.set_named_pool(
        "ipip-pool",
        "10.66.0.0/16",
        IPIPMode::Always,
        VXLANMode::Never,
    );
    c.put(
        &ipam_affinity_key("node-2", &"10.66.2.0/26".parse().unwrap()),
        &serde_json::to_string(&BlockAffinity {
            state: AffinityState::Confirmed,
            deleted: false,
        })
        .unwrap(),
    );
    let pods = [c.add_pod(0, 5), c.add_pod(1, 5)];
    let felix = c.start_felix(0, &[]);
    let _peer = c.start_felix(1, &[]);
    let ns = &c.nodes[0].ns;

    let reported = eventually(30, || {
        let (code, body) = http_get(ns, 9099, "/readiness");
        code == 503 && body.contains("IPIP unsupported by this kernel")
    });
    let (code, body) = http_get(ns, 9099, "/readiness");
    assert!(reported, "{code} {body}\nlog:\n{}", felix.log());
    assert!(body.contains("ipip-pool (10.66.0.0/16)"), "{body}");
    assert!(
        body.contains("VXLAN and unencapsulated pools are unaffected"),
        "{body}"
    );
    // Still live: nothing is stuck, a capability is missing.
    assert_eq!(http_get(ns, 9099, "/liveness").0, 200);
    assert!(
        felix.log().contains("IPIP unsupported by this kernel"),
        "{}",
        felix.log()
    );

    // The IPIP route is computed but cannot be installed; the VXLAN pool works.
    assert!(!routes(ns, "").contains("10.66.2.0/26"));
    assert!(eventually(20, || routes(ns, "proto 80")
        .contains("10.65.2.0/26 via 10.65.2.0 dev vxlan.calico onlink")));
    assert!(eventually(20, || pods[0].pings(&pods[1].ip)));
}
