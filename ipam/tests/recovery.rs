//! Recovery and checking on the in-memory store: claims a crash left half-done (written
//! directly into the store) are reported by `check` and finished or undone by the node's next
//! allocation; `check` finds leaks and `release_from_report` frees them without touching an
//! address that was reused since the report.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use fabric_api::Node;
use fabric_api::node::NodeSpec;
use fabric_datastore::Backend;
use fabric_datastore::ipam_model::{AffinityState, AllocationBlock};
use fabric_datastore::keys::{ipam_affinity_key, ipam_block_key, ipam_handle_key};
use fabric_ipam::handles::{TunnelKind, tunnel_handle};
use fabric_ipam::search::BlockWalk;
use fabric_ipam::{AutoAssignArgs, IntendedUse, Problem};
use ipnet::IpNet;

use common::*;

/// The first block the node's search tries in the test pool.
fn first_candidate(node: &str) -> IpNet {
    BlockWalk::new(net("10.0.0.0/24"), 28, node, None)
        .next()
        .unwrap()
}

fn empty_block(cidr: IpNet, node: &str) -> AllocationBlock {
    AllocationBlock {
        cidr,
        affinity: Some(format!("host:{node}")),
        affinity_claim_time: None,
        strict_affinity: false,
        allocations: vec![None; 16],
        unallocated: (0..16).collect(),
        attributes: Vec::new(),
        sequence_number: 1_000,
        sequence_number_for_allocation: BTreeMap::new(),
        deleted: false,
    }
}

async fn write_affinity(backend: &dyn Backend, node: &str, cidr: &IpNet, state: &str) {
    backend
        .create(
            &ipam_affinity_key(node, cidr),
            &format!(r#"{{"state":"{state}"}}"#),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_pending_affinity_without_its_block_is_finished_by_the_next_allocation() {
    let (backend, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 28).await;
    let cidr = first_candidate("n1");
    write_affinity(backend.as_ref(), "n1", &cidr, "pending").await;
    let report = ipam.check().await.unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::AffinityWithoutBlock {
            node: "n1".into(),
            block: cidr,
            state: AffinityState::Pending
        }]
    );
    let got = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    assert_eq!(got.v4[0].1, cidr);
    let affinities = ipam.affinities(Some("n1")).await.unwrap();
    assert_eq!(affinities.len(), 1);
    assert_eq!(affinities[0].state, AffinityState::Confirmed);
    endpoint(&ipam, "n1", "a", got.v4[0].0).await;
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
}

#[tokio::test]
async fn a_block_whose_affinity_is_still_pending_is_confirmed_by_the_next_allocation() {
    let (backend, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 28).await;
    let cidr = first_candidate("n1");
    write_affinity(backend.as_ref(), "n1", &cidr, "pending").await;
    let block = serde_json::to_string(&empty_block(cidr, "n1")).unwrap();
    backend
        .create(&ipam_block_key(&cidr), &block)
        .await
        .unwrap();
    let report = ipam.check().await.unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::BlockWithoutAffinity {
            block: cidr,
            node: "n1".into(),
            state: Some(AffinityState::Pending)
        }]
    );
    let got = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    assert_eq!(got.v4[0].1, cidr);
    assert_eq!(
        got.sequences[&got.v4[0].0], 1_000,
        "the existing block was used"
    );
    assert_eq!(
        ipam.affinities(Some("n1")).await.unwrap()[0].state,
        AffinityState::Confirmed
    );
}

#[tokio::test]
async fn a_pending_affinity_to_another_nodes_block_is_dropped() {
    let (backend, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 28).await;
    let cidr = first_candidate("n1");
    let addr = match cidr.network() {
        std::net::IpAddr::V4(a) => std::net::IpAddr::V4((u32::from(a) + 1).into()),
        other => other,
    };
    ipam.assign_ip(addr, "k8s-pod-network.x", &Default::default(), "n2")
        .await
        .unwrap();
    write_affinity(backend.as_ref(), "n1", &cidr, "pending").await;
    let got = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    assert_ne!(got.v4[0].1, cidr);
    let mine: Vec<_> = ipam
        .affinities(Some("n1"))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.block)
        .collect();
    assert_eq!(mine, vec![got.v4[0].1]);
    let report = ipam.check().await.unwrap();
    assert!(
        !report.problems.iter().any(|p| matches!(
            p,
            Problem::AffinityToOtherBlock { .. } | Problem::BlockWithoutAffinity { .. }
        )),
        "{:#?}",
        report.problems
    );
}

#[tokio::test]
async fn a_confirmed_affinity_whose_block_vanished_gets_its_block_back() {
    let (backend, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 28).await;
    let cidr = first_candidate("n1");
    write_affinity(backend.as_ref(), "n1", &cidr, "confirmed").await;
    let got = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    assert_eq!(got.v4[0].1, cidr);
    assert_eq!(ipam.blocks().await.unwrap().len(), 1);
}

#[tokio::test]
async fn check_finds_leaks_and_release_from_report_spares_a_reused_address() {
    let (backend, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 28).await;
    let a = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    let b = ipam.auto_assign(pod("n1", "b", 1)).await.unwrap();
    let c = ipam.auto_assign(pod("n1", "c", 1)).await.unwrap();
    endpoint(&ipam, "n1", "a", a.v4[0].0).await;
    let stray = r#"{"handleID":"k8s-pod-network.gone","block":{"10.0.0.0/28":1}}"#;
    backend
        .create(&ipam_handle_key("k8s-pod-network.gone"), stray)
        .await
        .unwrap();
    let report = ipam.check().await.unwrap();
    let leaked: Vec<_> = report
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::LeakedAddress { ip, .. } => Some(*ip),
            _ => None,
        })
        .collect();
    assert_eq!(leaked, vec![b.v4[0].0, c.v4[0].0]);
    assert_eq!(report.leaked_handles.len(), 1);
    let text = report.render(true);
    assert!(
        text.contains("Found 2 IPs that are allocated in IPAM but not actually in use."),
        "{text}"
    );
    // Between the report and the release, c's address goes to a new pod.
    let c_ip = c.v4[0].0;
    ipam.release_by_handle("k8s-pod-network.c").await.unwrap();
    ipam.assign_ip(c_ip, "k8s-pod-network.d", &Default::default(), "n1")
        .await
        .unwrap();
    endpoint(&ipam, "n1", "d", c_ip).await;
    let done = ipam.release_from_report(&report).await.unwrap();
    assert_eq!(done.released, vec![b.v4[0].0]);
    assert_eq!(done.skipped.len(), 1);
    assert!(done.skipped[0].1.contains("refused"), "{:?}", done.skipped);
    assert_eq!(
        done.handles_deleted,
        vec!["k8s-pod-network.gone".to_string()]
    );
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
}

#[tokio::test]
async fn a_tunnel_address_is_in_use_while_its_node_names_it() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 28).await;
    let got = ipam
        .auto_assign(AutoAssignArgs {
            node: "n1".into(),
            handle: tunnel_handle(TunnelKind::Vxlan, "n1"),
            attrs: [("type".to_string(), "vxlanTunnelAddress".to_string())].into(),
            num_v4: 1,
            intended_use: IntendedUse::Tunnel,
            ..AutoAssignArgs::default()
        })
        .await
        .unwrap();
    node(&ipam, "n1", &[]).await;
    let report = ipam.check().await.unwrap();
    assert!(matches!(
        report.problems[..],
        [Problem::LeakedAddress { .. }]
    ));
    let mut n: Node = ipam.client().get(None, "n1").await.unwrap();
    n.spec = NodeSpec {
        ipv4_vxlan_tunnel_addr: got.v4[0].0.to_string(),
        ..NodeSpec::default()
    };
    ipam.client().replace(n).await.unwrap();
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert_eq!(report.summary.node_tunnel_ips, 1);
}
