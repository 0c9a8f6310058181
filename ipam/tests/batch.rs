//! Batched assignment (`Ipam::auto_assign_batch`): a burst of pod requests shares one block
//! transaction, each request keeps its own handle and attributes, and whatever the shared
//! write cannot serve (a full block, a handle in use, another kind of request) is assigned
//! on its own with the result `auto_assign` gives.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use fabric_ipam::{AutoAssignArgs, IpamError};

use common::*;

/// A new-handle pod request, as calico-node's IPAM service makes.
fn new_pod(node: &str, container: &str) -> AutoAssignArgs {
    AutoAssignArgs {
        new_handle: true,
        ..pod(node, container, 1)
    }
}

/// Every address of the results, asserting each request got exactly one.
fn one_each(results: &[Result<fabric_ipam::AssignedIps, IpamError>]) -> Vec<IpAddr> {
    results
        .iter()
        .map(|r| {
            let got: Vec<IpAddr> = r.as_ref().unwrap().all().collect();
            assert_eq!(got.len(), 1, "{got:?}");
            got[0]
        })
        .collect()
}

/// Asserts that every handle holds exactly what the blocks say it holds.
async fn handles_agree_with_blocks(ipam: &fabric_ipam::Ipam) {
    let by_block = allocated(ipam).await;
    let handles: BTreeSet<&String> = by_block.values().collect();
    for handle in handles {
        let held: BTreeSet<IpAddr> = ipam
            .ips_by_handle(handle)
            .await
            .unwrap()
            .into_iter()
            .collect();
        let in_blocks: BTreeSet<IpAddr> = by_block
            .iter()
            .filter(|(_, h)| *h == handle)
            .map(|(ip, _)| *ip)
            .collect();
        assert_eq!(held, in_blocks, "handle {handle}");
    }
}

#[tokio::test]
async fn a_burst_of_pods_on_one_node_shares_one_transaction() {
    let (store, ipam) = counted();
    pool(&ipam, "p", "10.9.0.0/24", 26).await;
    // The node's block exists and is cached, as in a running calico-node.
    ipam.auto_assign(new_pod("node-a", "first")).await.unwrap();
    let before = store.around.committed();

    let burst: Vec<AutoAssignArgs> = (0..20)
        .map(|i| new_pod("node-a", &format!("c{i}")))
        .collect();
    let results = ipam.auto_assign_batch(&burst).await;
    assert_eq!(
        store.around.committed() - before,
        1,
        "one transaction for the burst"
    );
    assert_eq!(store.around.failed(), 0);

    let ips = one_each(&results);
    let distinct: BTreeSet<IpAddr> = ips.iter().copied().collect();
    assert_eq!(distinct.len(), 20);
    for (i, ip) in ips.iter().enumerate() {
        let info = ipam.get_assignment_attributes(*ip).await.unwrap().unwrap();
        assert_eq!(info.handle.as_deref(), Some(burst[i].handle.as_str()));
        assert_eq!(info.attrs.get("pod"), Some(&format!("c{i}")));
        assert_eq!(info.attrs.get("node").map(String::as_str), Some("node-a"));
        assert_eq!(
            ipam.ips_by_handle(&burst[i].handle).await.unwrap(),
            vec![*ip]
        );
        let sequence = results[i].as_ref().unwrap().sequences.get(ip).copied();
        assert!(
            sequence.is_some(),
            "each address carries its sequence number"
        );
    }
    handles_agree_with_blocks(&ipam).await;
}

#[tokio::test]
async fn a_burst_larger_than_the_free_addresses_of_the_block_claims_another_for_the_rest() {
    let (_, ipam) = counted();
    pool(&ipam, "p", "10.9.0.0/24", 28).await;
    for i in 0..12 {
        ipam.auto_assign(new_pod("node-a", &format!("early{i}")))
            .await
            .unwrap();
    }
    // 4 addresses left in the first /28; the burst needs 10.
    let burst: Vec<AutoAssignArgs> = (0..10)
        .map(|i| new_pod("node-a", &format!("c{i}")))
        .collect();
    let ips = one_each(&ipam.auto_assign_batch(&burst).await);
    let blocks: BTreeSet<String> = ipam
        .blocks()
        .await
        .unwrap()
        .iter()
        .map(|b| b.cidr.to_string())
        .collect();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let all = allocated(&ipam).await;
    assert_eq!(all.len(), 22);
    assert!(ips.iter().all(|ip| all.contains_key(ip)));
    handles_agree_with_blocks(&ipam).await;
}

#[tokio::test]
async fn a_retried_add_in_a_burst_is_answered_alone_and_the_others_are_served() {
    let (_, ipam) = counted();
    pool(&ipam, "p", "10.9.0.0/24", 26).await;
    let held = ipam
        .auto_assign(new_pod("node-a", "retried"))
        .await
        .unwrap();
    let mut burst: Vec<AutoAssignArgs> = (0..6)
        .map(|i| new_pod("node-a", &format!("c{i}")))
        .collect();
    burst.insert(3, new_pod("node-a", "retried"));
    // The same new handle twice in one burst: only one of them may have it.
    burst.push(new_pod("node-a", "c0"));

    let results = ipam.auto_assign_batch(&burst).await;
    assert_eq!(results.len(), 8);
    assert!(
        matches!(&results[3], Err(IpamError::HandleInUse { handle }) if *handle == burst[3].handle)
    );
    assert!(
        matches!(&results[7], Err(IpamError::HandleInUse { handle }) if *handle == burst[7].handle)
    );
    let served: Vec<_> = results
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 7)
        .map(|(_, r)| r.as_ref().unwrap().all().next().unwrap())
        .collect();
    assert_eq!(served.iter().collect::<BTreeSet<_>>().len(), 6);
    assert_eq!(
        ipam.ips_by_handle(&burst[3].handle).await.unwrap(),
        held.all().collect::<Vec<_>>(),
        "the retried handle keeps what it held"
    );
    assert_eq!(ipam.ips_by_handle(&burst[0].handle).await.unwrap().len(), 1);
    handles_agree_with_blocks(&ipam).await;
}

#[tokio::test]
async fn requests_a_shared_write_cannot_serve_get_what_auto_assign_gives() {
    let (_, ipam) = counted();
    pool(&ipam, "p", "10.9.0.0/24", 26).await;
    ipam.auto_assign(new_pod("node-a", "first")).await.unwrap();
    let burst = vec![
        new_pod("node-a", "c0"),
        // Two addresses: not the pod case.
        AutoAssignArgs {
            new_handle: true,
            ..pod("node-a", "two", 2)
        },
        // Another node.
        new_pod("node-b", "elsewhere"),
        // An invalid handle.
        AutoAssignArgs {
            handle: String::new(),
            ..new_pod("node-a", "bad")
        },
        // A pool that does not exist.
        AutoAssignArgs {
            pools_v4: vec!["nope".into()],
            ..new_pod("node-a", "nopool")
        },
        new_pod("node-a", "c1"),
    ];
    let results = ipam.auto_assign_batch(&burst).await;
    assert_eq!(results.len(), 6);
    assert_eq!(results[0].as_ref().unwrap().v4.len(), 1);
    assert_eq!(results[1].as_ref().unwrap().v4.len(), 2);
    let elsewhere = results[2].as_ref().unwrap().v4[0].0;
    let info = ipam
        .get_assignment_attributes(elsewhere)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.attrs.get("node").map(String::as_str), Some("node-b"));
    assert!(
        matches!(results[3], Err(IpamError::InvalidArgument { .. })),
        "{:?}",
        results[3]
    );
    assert!(
        matches!(&results[4], Err(IpamError::InvalidArgument { field, .. }) if *field == "pools_v4"),
        "{:?}",
        results[4]
    );
    assert_eq!(results[5].as_ref().unwrap().v4.len(), 1);
    assert!(
        ipam.ips_by_handle(&burst[4].handle)
            .await
            .unwrap()
            .is_empty(),
        "a failed request holds nothing"
    );
    handles_agree_with_blocks(&ipam).await;
}
