//! Unit tests of the pure check analysis.

use std::collections::BTreeMap;

use fabric_api::endpoint::WorkloadEndpointSpec;
use fabric_api::ippool::IPPoolSpec;
use fabric_api::node::{NodeBGPSpec, NodeSpec};
use fabric_api::{ObjectMeta, WorkloadEndpoint};
use fabric_datastore::ipam_model::AllocationAttribute;

use super::*;
use crate::blocks::{Reservations, allocate, new_block};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pool(cidr: &str) -> IPPool {
    IPPool {
        metadata: ObjectMeta::named("p"),
        spec: IPPoolSpec {
            cidr: cidr.into(),
            ..IPPoolSpec::default()
        },
        status: None,
    }
}

fn attr(handle: &str, node: &str) -> AllocationAttribute {
    AllocationAttribute {
        handle_id: Some(handle.into()),
        active_owner_attrs: BTreeMap::from([("node".into(), node.into())]),
        ..AllocationAttribute::default()
    }
}

fn wep(container: &str, addr: &str) -> WorkloadEndpoint {
    WorkloadEndpoint {
        metadata: ObjectMeta::namespaced("default", format!("w-{container}")),
        spec: WorkloadEndpointSpec {
            container_id: container.into(),
            ip_networks: vec![format!("{addr}/32")],
            ..WorkloadEndpointSpec::default()
        },
    }
}

fn handle(id: &str, block: &str, n: usize) -> (String, i64, IpamHandle) {
    (
        id.into(),
        7,
        IpamHandle {
            handle_id: id.into(),
            block: BTreeMap::from([(block.to_string(), n)]),
            deleted: false,
        },
    )
}

fn confirmed(node: &str, block: &str) -> (String, IpNet, BlockAffinity) {
    (
        node.into(),
        net(block),
        BlockAffinity {
            state: AffinityState::Confirmed,
            deleted: false,
        },
    )
}

/// One block of n1 with a pod address (in use) and a tunnel address (node n1 uses it).
fn healthy() -> CheckInput {
    let r = Reservations::default();
    let b = new_block(net("10.0.0.0/26"), Some("n1"), None, 1);
    let (b, _) = allocate(&b, 1, attr("k8s-pod-network.c1", "n1"), &r).unwrap();
    let (b, _) = allocate(&b, 1, attr("ipip-tunnel-addr-n1", "n1"), &r).unwrap();
    let node = Node {
        metadata: ObjectMeta::named("n1"),
        spec: NodeSpec {
            bgp: Some(NodeBGPSpec {
                ipv4_ipip_tunnel_addr: "10.0.0.1".into(),
                ..NodeBGPSpec::default()
            }),
            ..NodeSpec::default()
        },
        status: None,
    };
    CheckInput {
        revision: 10,
        blocks: vec![b],
        affinities: vec![confirmed("n1", "10.0.0.0/26")],
        handles: vec![
            handle("k8s-pod-network.c1", "10.0.0.0/26", 1),
            handle("ipip-tunnel-addr-n1", "10.0.0.0/26", 1),
        ],
        pools: vec![pool("10.0.0.0/16")],
        endpoints: vec![wep("c1", "10.0.0.0")],
        nodes: vec![node],
        corrupt: Vec::new(),
    }
}

#[test]
fn a_consistent_datastore_checks_clean() {
    let report = analyze(&healthy());
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert_eq!(report.summary.allocations, 2);
    assert_eq!(report.summary.in_use_ips, 2);
    assert!(report.allocations["10.0.0.0"][0].in_use);
    assert!(report.release_requests().is_empty());
    let text = report.render(true);
    assert!(text.contains("Check complete; found 0 problems."), "{text}");
}

#[test]
fn a_leaked_pod_address_is_reported_with_its_sequence_for_release() {
    let mut input = healthy();
    input.endpoints.clear();
    let report = analyze(&input);
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
    assert!(matches!(
        report.problems[0],
        Problem::LeakedAddress { ip: a, .. } if a == ip("10.0.0.0")
    ));
    let releases = report.release_requests();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].sequence, Some(1));
    assert_eq!(releases[0].handle.as_deref(), Some("k8s-pod-network.c1"));
}

#[test]
fn an_address_used_but_not_allocated_is_reported_inside_or_outside_pools() {
    let mut input = healthy();
    input.endpoints.push(wep("c2", "10.0.0.9"));
    input.endpoints.push(wep("c3", "192.168.0.1"));
    let report = analyze(&input);
    assert!(
        report
            .problems
            .contains(&Problem::InUseNotAllocated(InUseAddress {
                ip: ip("10.0.0.9"),
                owners: vec!["Workload(default/w-c2)".into()],
            }))
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::InUseOutsidePools(a) if a.ip == ip("192.168.0.1")))
    );
}

#[test]
fn an_address_used_by_another_pod_than_its_handle_is_a_wrong_owner() {
    let mut input = healthy();
    input.endpoints = vec![wep("other", "10.0.0.0")];
    let report = analyze(&input);
    assert!(
        report.problems.iter().any(
            |p| matches!(p, Problem::WrongOwner { handle, .. } if handle == "k8s-pod-network.c1")
        ),
        "{:#?}",
        report.problems
    );
}

#[test]
fn handle_problems_are_reported() {
    let mut input = healthy();
    input.handles[0].2.block.insert("10.0.0.0/26".into(), 2);
    input
        .handles
        .push(handle("k8s-pod-network.gone", "10.0.0.0/26", 1));
    input.handles.remove(1);
    let report = analyze(&input);
    let kinds: Vec<String> = report.problems.iter().map(Problem::describe).collect();
    assert!(
        report.problems.iter().any(|p| matches!(p, Problem::HandleCountMismatch(m) if m.handle_count == 2 && m.block_count == 1)),
        "{kinds:#?}"
    );
    assert!(
        report.problems.iter().any(
            |p| matches!(p, Problem::HandleWithoutAddresses(h) if h.id == "k8s-pod-network.gone")
        ),
        "{kinds:#?}"
    );
    assert!(
        report.problems.iter().any(
            |p| matches!(p, Problem::MissingHandle { handle } if handle == "ipip-tunnel-addr-n1")
        ),
        "{kinds:#?}"
    );
    assert_eq!(report.leaked_handles.len(), 1);
}

#[test]
fn affinity_and_block_disagreements_are_reported() {
    let mut input = healthy();
    input.affinities[0].2.state = AffinityState::Pending;
    input.affinities.push(confirmed("n2", "10.0.1.0/26"));
    input.affinities.push(confirmed("n3", "10.0.0.0/26"));
    let report = analyze(&input);
    let p = &report.problems;
    assert!(p.contains(&Problem::BlockWithoutAffinity {
        block: net("10.0.0.0/26"),
        node: "n1".into(),
        state: Some(AffinityState::Pending),
    }));
    assert!(p.contains(&Problem::AffinityWithoutBlock {
        node: "n2".into(),
        block: net("10.0.1.0/26"),
        state: AffinityState::Confirmed,
    }));
    assert!(p.contains(&Problem::AffinityToOtherBlock {
        node: "n3".into(),
        block: net("10.0.0.0/26"),
        state: AffinityState::Confirmed,
        block_owner: Some("n1".into()),
    }));
}

#[test]
fn overlapping_blocks_and_duplicate_allocations_are_reported() {
    let mut input = healthy();
    let r = Reservations::default();
    let wide = new_block(net("10.0.0.0/25"), None, None, 1);
    let (wide, _) = allocate(&wide, 1, attr("k8s-pod-network.c1", "n1"), &r).unwrap();
    input.blocks.push(wide);
    let report = analyze(&input);
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::OverlappingBlocks { .. }))
    );
    assert!(report.problems.iter().any(
        |p| matches!(p, Problem::DuplicateAllocation { ip: a, blocks } if *a == ip("10.0.0.0") && blocks.len() == 2)
    ));
}

#[test]
fn the_report_round_trips_through_json_in_calicos_shape() {
    let mut input = healthy();
    input.endpoints.clear();
    input
        .handles
        .push(handle("k8s-pod-network.gone", "10.0.0.0/26", 1));
    let report = analyze(&input);
    let text = serde_json::to_string_pretty(&report).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["allocations"]["10.0.0.0"][0]["sequenceNumber"], 1);
    assert_eq!(value["allocations"]["10.0.0.0"][0]["inUse"], false);
    assert_eq!(value["leakedHandles"][0]["ID"], "k8s-pod-network.gone");
    assert_eq!(value["problems"][0]["kind"], "leakedAddress");
    let back: CheckReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
}
