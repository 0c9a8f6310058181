//! `topologies/mesh-3`: three calico-nodes in Calico's default full node-to-node mesh, with the
//! sqlite datastore and with etcd v3. Root only; each test deploys its own lab.

use std::net::Ipv4Addr;

use fabric_e2e::scenario::{FabricNode, Joiner, Peering, RouteRule, Spec};

fn spec() -> Spec {
    Spec {
        topology: "mesh-3",
        nodes: vec![
            FabricNode::new("n1", Ipv4Addr::new(10, 0, 0, 11)),
            FabricNode::new("n2", Ipv4Addr::new(10, 0, 0, 12)),
            FabricNode::new("n3", Ipv4Addr::new(10, 0, 0, 13)),
        ],
        peering: Peering::Mesh,
        routes: RouteRule::Owner,
        bird: vec![],
        // Two /26 blocks for three nodes: n3's pods borrow from n1's or n2's block.
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
        tunnel_device: None,
    }
}

mod topology_mesh_3 {
    use fabric_e2e::Datastore;
    use fabric_e2e::scenario::{fabric_works, kill_and_restart, node_joins};

    use super::spec;

    #[test]
    fn every_mesh_session_is_established_every_pod_reaches_every_other_and_routes_are_exact() {
        fabric_works(&spec(), Datastore::Sqlite);
    }

    #[test]
    fn a_fourth_node_joins_the_mesh_without_disturbing_the_others() {
        node_joins(&spec(), Datastore::Sqlite);
    }

    #[test]
    fn a_calico_node_killed_and_restarted_loses_no_packet() {
        kill_and_restart(&spec(), Datastore::Sqlite);
    }

    #[test]
    fn with_etcd_every_mesh_session_is_established_every_pod_reaches_every_other_and_routes_are_exact()
     {
        fabric_works(&spec(), Datastore::Etcdv3);
    }

    #[test]
    fn with_etcd_a_fourth_node_joins_the_mesh_without_disturbing_the_others() {
        node_joins(&spec(), Datastore::Etcdv3);
    }

    #[test]
    fn with_etcd_a_calico_node_killed_and_restarted_loses_no_packet() {
        kill_and_restart(&spec(), Datastore::Etcdv3);
    }
}
