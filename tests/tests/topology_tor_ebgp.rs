//! `topologies/tor-ebgp`: two racks whose calico-nodes peer eBGP with a BIRD top-of-rack
//! router each, the ToRs peering with each other. Root only; each test deploys its own lab.

use std::net::Ipv4Addr;

use fabric_e2e::scenario::{FabricNode, Joiner, Peering, RouteRule, Spec};

const TOR1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const TOR2: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);

fn rack_node(name: &'static str, ip: Ipv4Addr, tor: Ipv4Addr) -> FabricNode {
    FabricNode {
        name,
        ip,
        upstream: Some(tor),
    }
}

fn spec() -> Spec {
    Spec {
        topology: "tor-ebgp",
        nodes: vec![
            rack_node("n11", Ipv4Addr::new(10, 0, 1, 11), TOR1),
            rack_node("n12", Ipv4Addr::new(10, 0, 1, 12), TOR1),
            rack_node("n21", Ipv4Addr::new(10, 0, 2, 11), TOR2),
            rack_node("n22", Ipv4Addr::new(10, 0, 2, 12), TOR2),
        ],
        peering: Peering::Upstream,
        // Through a ToR (or the same-rack node the ToR names as third-party next hop).
        routes: RouteRule::AnyGateway,
        bird: vec![
            ("tor1", vec!["n11", "n12", "tor2"]),
            ("tor2", vec!["n21", "n22", "tor1"]),
        ],
        // Two /26 blocks for four nodes: rack2's pods borrow from rack1's blocks, so their
        // /32s cross both ToRs.
        borrowing_pool: Some("10.244.0.0/25"),
        joiner: Joiner {
            node: rack_node("n13", Ipv4Addr::new(10, 0, 1, 13), TOR1),
            env: vec![("AS", "65001")],
            bridge_port: "rack1:eth4",
            prefix_len: 24,
            labels: vec![("rack", "rack1")],
            appends: vec![(
                "tor1/bird.conf",
                "protocol bgp n13 from fabric { local 10.0.1.1 as 65101; neighbor 10.0.1.13 as 65001; }",
            )],
            bird_protocols: vec![("tor1", "n13")],
        },
        victim: "n11",
        tunnel_device: None,
    }
}

mod topology_tor_ebgp {
    use fabric_e2e::Datastore;
    use fabric_e2e::scenario::{fabric_works, kill_and_restart, node_joins};

    use super::spec;

    #[test]
    fn every_node_peers_with_its_bird_tor_every_pod_reaches_every_other_and_routes_are_exact() {
        fabric_works(&spec(), Datastore::Sqlite);
    }

    #[test]
    fn a_third_rack1_node_joins_its_tor_without_disturbing_the_others() {
        node_joins(&spec(), Datastore::Sqlite);
    }

    #[test]
    fn a_rack_node_calico_node_killed_and_restarted_loses_no_packet() {
        kill_and_restart(&spec(), Datastore::Sqlite);
    }
}
