//! `topologies/vxlan-3`: three calico-nodes with a VXLAN pool and no BGP; felix routes the
//! other nodes' blocks through `vxlan.calico`. Root only; each test deploys its own lab.

use std::net::Ipv4Addr;

use fabric_e2e::scenario::{FabricNode, Joiner, Peering, RouteRule, Spec};

fn spec() -> Spec {
    Spec {
        topology: "vxlan-3",
        nodes: vec![
            FabricNode::new("n1", Ipv4Addr::new(10, 0, 0, 11)),
            FabricNode::new("n2", Ipv4Addr::new(10, 0, 0, 12)),
            FabricNode::new("n3", Ipv4Addr::new(10, 0, 0, 13)),
        ],
        peering: Peering::NoBgp,
        routes: RouteRule::Device("vxlan.calico"),
        bird: vec![],
        // Two /26 blocks for three nodes: every node claims a block at startup for its VXLAN
        // tunnel address, so the last one borrows its tunnel address and its pods' addresses,
        // and the others route each of them as a /32 through vxlan.calico.
        borrowing_pool: Some("10.244.0.0/25"),
        joiner: Joiner {
            node: FabricNode::new("n4", Ipv4Addr::new(10, 0, 0, 14)),
            env: vec![],
            bridge_port: "fabric:eth4",
            prefix_len: 24,
            labels: vec![],
            appends: vec![],
            bird_protocols: vec![],
        },
        victim: "n1",
        tunnel_device: Some("vxlan.calico"),
    }
}

mod topology_vxlan_3 {
    use fabric_e2e::Datastore;
    use fabric_e2e::scenario::{fabric_works, kill_and_restart, node_joins};

    use super::spec;

    #[test]
    fn every_pod_reaches_every_other_through_vxlan_and_routes_are_exact() {
        fabric_works(&spec(), Datastore::Sqlite);
    }

    #[test]
    fn a_fourth_node_joins_the_vxlan_fabric_without_disturbing_the_others() {
        node_joins(&spec(), Datastore::Sqlite);
    }

    #[test]
    fn a_calico_node_killed_and_restarted_loses_no_packet() {
        kill_and_restart(&spec(), Datastore::Sqlite);
    }
}
