//! Tampering is repaired within the resync interval (set short through FelixConfiguration),
//! and foreign routes and chains survive (root only).

#![allow(clippy::unwrap_used)]

mod support;

use fabric_api::felix::FelixConfigurationSpec;
use fabric_api::ippool::{IPIPMode, VXLANMode};
use fabric_api::meta::ObjectMeta;
use fabric_api::{Duration as GoDuration, FelixConfiguration};
use support::{Cluster, eventually, routes};

#[test]
fn a_deleted_route_and_a_flushed_nat_chain_are_repaired_and_foreign_objects_survive() {
    let c = Cluster::new(2, IPIPMode::Never, VXLANMode::Always);
    c.block_on(c.client.apply(FelixConfiguration {
        metadata: ObjectMeta::named("default"),
        spec: FelixConfigurationSpec {
            route_refresh_interval: Some(GoDuration::parse("1s").unwrap()),
            iptables_refresh_interval: Some(GoDuration::parse("1s").unwrap()),
            ipsets_refresh_interval: Some(GoDuration::parse("1s").unwrap()),
            interface_refresh_interval: Some(GoDuration::parse("1s").unwrap()),
            ..FelixConfigurationSpec::default()
        },
    }))
    .unwrap();
    let pods = [c.add_pod(0, 5), c.add_pod(1, 5)];
    let ns = &c.nodes[0].ns;
    // Foreign objects: a static route, a route of another protocol beside ours, a chain.
    ns.ip("route add 192.0.2.0/24 via 172.16.0.254 proto static");
    ns.ip("route add 198.51.100.0/24 via 172.16.0.254 proto 186");
    ns.sh("iptables-nft -t nat -N FOREIGN && iptables-nft -t nat -A FOREIGN -j RETURN");
    ns.sh("iptables-nft -t nat -A POSTROUTING -d 203.0.113.0/24 -j FOREIGN");

    let felix = c.start_felix(0, &[]);
    let _peer = c.start_felix(1, &[]);
    let remote = "10.65.2.0/26 via 10.65.2.0 dev vxlan.calico onlink";
    assert!(
        eventually(30, || routes(ns, "proto 80").contains(remote)),
        "log:\n{}",
        felix.log()
    );
    assert!(eventually(20, || pods[0].pings(&pods[1].ip)));
    let nat = || ns.sh("iptables-nft -t nat -S");
    assert!(
        eventually(10, || nat().contains("-A cali-POSTROUTING")),
        "{}",
        nat()
    );

    // A route deleted by hand comes back.
    ns.ip("route del 10.65.2.0/26");
    assert!(!routes(ns, "proto 80").contains(remote));
    assert!(
        eventually(10, || routes(ns, "proto 80").contains(remote)),
        "not repaired; log:\n{}",
        felix.log()
    );
    // So does a workload route and a VTEP neighbour.
    ns.ip(&format!("route del {}/32", pods[0].ip));
    ns.ip("neigh del 10.65.2.0 dev vxlan.calico");
    assert!(eventually(10, || routes(ns, "proto 80")
        .contains(&format!("{} dev", pods[0].ip))));
    assert!(eventually(10, || ns
        .ip("neigh show dev vxlan.calico")
        .contains("10.65.2.0 lladdr")));

    // A flushed NAT chain comes back.
    ns.sh("iptables-nft -t nat -F cali-POSTROUTING");
    assert!(!nat().contains("-A cali-POSTROUTING"));
    assert!(
        eventually(10, || nat()
            .contains("-A cali-POSTROUTING -m comment --comment")),
        "not repaired:\n{}\nlog:\n{}",
        nat(),
        felix.log()
    );

    // Several resyncs later the foreign objects are untouched.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let all = routes(ns, "");
    assert!(
        all.contains("192.0.2.0/24 via 172.16.0.254 dev eth0 proto static"),
        "{all}"
    );
    // Protocol 186 is what `ip` calls "bgp" (a BIRD/FRR-installed route).
    assert!(
        all.contains("198.51.100.0/24 via 172.16.0.254 dev eth0 proto bgp"),
        "{all}"
    );
    let rules = nat();
    assert!(rules.contains("-A FOREIGN -j RETURN"), "{rules}");
    assert!(
        rules.contains("-A POSTROUTING -d 203.0.113.0/24 -j FOREIGN"),
        "{rules}"
    );
    assert!(pods[0].pings(&pods[1].ip));
}
