//! `topologies/rr-6`: two route reflectors sharing a cluster id and four clients, the
//! node-to-node mesh disabled. Root only; each test deploys its own lab.

use std::net::Ipv4Addr;

use fabric_e2e::scenario::{FabricNode, Joiner, Peering, RouteRule, Spec};

fn spec() -> Spec {
    Spec {
        topology: "rr-6",
        nodes: vec![
            FabricNode::new("rr1", Ipv4Addr::new(10, 0, 0, 21)),
            FabricNode::new("rr2", Ipv4Addr::new(10, 0, 0, 22)),
            FabricNode::new("n1", Ipv4Addr::new(10, 0, 0, 11)),
            FabricNode::new("n2", Ipv4Addr::new(10, 0, 0, 12)),
            FabricNode::new("n3", Ipv4Addr::new(10, 0, 0, 13)),
            FabricNode::new("n4", Ipv4Addr::new(10, 0, 0, 14)),
        ],
        peering: Peering::RouteReflectors(vec!["rr1", "rr2"]),
        // Reflected routes keep the client's next hop.
        routes: RouteRule::Owner,
        bird: vec![],
        // Two /26 blocks for six nodes: four nodes' pods borrow.
        borrowing_pool: Some("10.244.0.0/25"),
        joiner: Joiner {
            node: FabricNode::new("n5", Ipv4Addr::new(10, 0, 0, 15)),
            env: vec![],
            bridge_port: "fabric:eth7",
            prefix_len: 24,
            labels: vec![],
            appends: vec![],
            bird_protocols: vec![],
        },
        victim: "n1",
        tunnel_device: None,
    }
}

mod topology_rr_6 {
    use fabric_e2e::Datastore;
    use fabric_e2e::scenario::{fabric_works, kill_and_restart, node_joins};

    use super::spec;

    #[test]
    fn every_client_peers_with_both_reflectors_every_pod_reaches_every_other_and_routes_are_exact()
    {
        fabric_works(&spec(), Datastore::Sqlite);
    }

    #[test]
    fn a_fifth_client_joins_the_reflectors_without_disturbing_the_others() {
        node_joins(&spec(), Datastore::Sqlite);
    }

    #[test]
    fn a_client_calico_node_killed_and_restarted_loses_no_packet() {
        kill_and_restart(&spec(), Datastore::Sqlite);
    }
}
