//! Assignment scenarios on the in-memory store: block claims, the block limit, borrowing and
//! strict affinity, reservations, IPv6 and dual stack, assign_ip, pool selection, tunnels.
#![allow(clippy::unwrap_used)]

mod common;

use fabric_api::ippool::IPPoolAllowedUse;
use fabric_datastore::ipam_model::AffinityState;
use fabric_ipam::handles::{TunnelKind, tunnel_handle};
use fabric_ipam::{AutoAssignArgs, Exhaustion, IntendedUse, IpamConfig, IpamError};

use common::*;

#[tokio::test]
async fn a_node_claims_a_block_and_hands_out_its_addresses_in_order() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 29).await;
    let a = ipam.auto_assign(pod("n1", "a", 2)).await.unwrap();
    let b = ipam.auto_assign(pod("n1", "b", 1)).await.unwrap();
    let block = a.v4[0].1;
    assert_eq!(block.prefix_len(), 29);
    assert_eq!(a.v4.len(), 2);
    assert_eq!(a.v4[0].0, block.network());
    assert_eq!(
        b.v4[0].1, block,
        "the second pod uses the same affine block"
    );
    let affinities = ipam.affinities(Some("n1")).await.unwrap();
    assert_eq!(affinities.len(), 1);
    assert_eq!(affinities[0].state, AffinityState::Confirmed);
    let handle = ipam.handle("k8s-pod-network.a").await.unwrap().unwrap();
    assert_eq!(handle.block[&block.to_string()], 2);
    let mut ips = ipam.ips_by_handle("k8s-pod-network.a").await.unwrap();
    ips.sort();
    assert_eq!(ips, vec![a.v4[0].0, a.v4[1].0]);
    let info = ipam
        .get_assignment_attributes(b.v4[0].0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.attrs["node"], "n1");
    assert_eq!(info.attrs["pod"], "b");
    assert_eq!(info.block_owner.as_deref(), Some("n1"));
    assert_eq!(Some(&info.sequence), b.sequences.get(&b.v4[0].0));
}

#[tokio::test]
async fn a_full_block_leads_to_another_claim_until_the_block_limit() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 30).await;
    config(&ipam, true, 2).await;
    let got = ipam.auto_assign(pod("n1", "a", 8)).await.unwrap();
    let blocks: std::collections::BTreeSet<_> = got.v4.iter().map(|(_, b)| *b).collect();
    assert_eq!(blocks.len(), 2);
    let err = ipam.auto_assign(pod("n1", "b", 1)).await.unwrap_err();
    match &err {
        IpamError::Exhausted {
            reason,
            strict_affinity,
            ..
        } => {
            assert_eq!(*reason, Exhaustion::MaxBlocksPerHost { max: 2 });
            assert!(*strict_affinity);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("maxBlocksPerHost"), "{err}");
    assert!(ipam.handle("k8s-pod-network.b").await.unwrap().is_none());
    // The request's own limit applies too.
    let mut args = pod("n2", "c", 5);
    args.max_blocks = Some(1);
    let err = ipam.auto_assign(args).await.unwrap_err();
    assert!(
        matches!(err, IpamError::Exhausted { found: 4, .. }),
        "{err}"
    );
    assert_eq!(
        allocated(&ipam).await.len(),
        8,
        "the failed request gave its 4 back"
    );
}

#[tokio::test]
async fn a_node_borrows_from_another_nodes_block_only_without_strict_affinity() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/29", 29).await;
    ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    config(&ipam, true, 20).await;
    let err = ipam.auto_assign(pod("n2", "b", 1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            IpamError::Exhausted {
                strict_affinity: true,
                reason: Exhaustion::PoolsFull,
                ..
            }
        ),
        "{err}"
    );
    config(&ipam, false, 20).await;
    let got = ipam.auto_assign(pod("n2", "b", 2)).await.unwrap();
    assert_eq!(got.v4.len(), 2);
    let borrowed = ipam.borrowed().await.unwrap();
    assert_eq!(borrowed.len(), 2);
    assert_eq!(borrowed[0].borrowing_node, "n2");
    assert_eq!(borrowed[0].block_owner.as_deref(), Some("n1"));
    assert_eq!(borrowed[0].allocated_to, "default/b");
    assert_eq!(borrowed[0].kind, "pod");
    assert!(ipam.affinities(Some("n2")).await.unwrap().is_empty());
}

#[tokio::test]
async fn reserved_addresses_are_never_handed_out() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/28", 30).await;
    reserve(&ipam, "r", &["10.0.0.0/30", "10.0.0.5", "10.0.0.8/29"]).await;
    let got = ipam.auto_assign(pod("n1", "a", 3)).await.unwrap();
    let mut ips: Vec<_> = got.all().collect();
    ips.sort();
    assert_eq!(ips, vec![ip("10.0.0.4"), ip("10.0.0.6"), ip("10.0.0.7")]);
    let err = ipam.auto_assign(pod("n1", "b", 1)).await.unwrap_err();
    assert!(matches!(err, IpamError::Exhausted { .. }), "{err}");
    // Asked for by name, a reserved address is given (as Calico does).
    let info = ipam
        .assign_ip(
            ip("10.0.0.1"),
            "k8s-pod-network.c",
            &Default::default(),
            "n1",
        )
        .await
        .unwrap();
    assert_eq!(info.block, net("10.0.0.0/30"));
    let usage = ipam.usage().await.unwrap();
    assert_eq!(usage[0].total, 16);
    assert_eq!(usage[0].in_use, 4);
    assert_eq!(usage[0].reserved, 13 - 1, "10.0.0.1 is reserved but in use");
    assert_eq!(usage[0].free, 0);
}

#[tokio::test]
async fn a_stale_release_is_refused_and_frees_nothing() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/30", 30).await;
    let first = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    let addr = first.v4[0].0;
    let old_seq = first.sequences[&addr];
    let released = ipam.release_by_handle("k8s-pod-network.a").await.unwrap();
    assert_eq!(released, vec![addr]);
    ipam.assign_ip(addr, "k8s-pod-network.b", &Default::default(), "n1")
        .await
        .unwrap();
    let stale = fabric_ipam::ReleaseRequest {
        ip: addr,
        sequence: Some(old_seq),
        handle: None,
    };
    let err = ipam.release_ips(&[stale]).await.unwrap_err();
    assert!(matches!(err, IpamError::StaleSequence { .. }), "{err}");
    assert_eq!(
        allocated(&ipam).await.get(&addr).map(String::as_str),
        Some("k8s-pod-network.b")
    );
    let wrong_handle = fabric_ipam::ReleaseRequest {
        ip: addr,
        sequence: None,
        handle: Some("k8s-pod-network.a".into()),
    };
    assert!(matches!(
        ipam.release_ips(&[wrong_handle]).await.unwrap_err(),
        IpamError::HandleMismatch { .. }
    ));
    let current = ipam.get_assignment_attributes(addr).await.unwrap().unwrap();
    let good = fabric_ipam::ReleaseRequest {
        ip: addr,
        sequence: Some(current.sequence),
        handle: Some("k8s-pod-network.b".into()),
    };
    let out = ipam.release_ips(std::slice::from_ref(&good)).await.unwrap();
    assert_eq!(
        out.released,
        vec![(addr, Some("k8s-pod-network.b".to_string()))]
    );
    assert!(ipam.handle("k8s-pod-network.b").await.unwrap().is_none());
    let again = ipam.release_ips(&[good]).await.unwrap();
    assert_eq!(again.not_allocated, vec![addr]);
}

#[tokio::test]
async fn release_by_handle_frees_every_address_and_is_idempotent() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/28", 30).await;
    let got = ipam.auto_assign(pod("n1", "a", 6)).await.unwrap();
    assert_eq!(
        ipam.handle("k8s-pod-network.a")
            .await
            .unwrap()
            .unwrap()
            .block
            .len(),
        2
    );
    let mut released = ipam.release_by_handle("k8s-pod-network.a").await.unwrap();
    released.sort();
    let mut want: Vec<_> = got.all().collect();
    want.sort();
    assert_eq!(released, want);
    assert!(ipam.handle("k8s-pod-network.a").await.unwrap().is_none());
    assert!(
        ipam.release_by_handle("k8s-pod-network.a")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(allocated(&ipam).await.is_empty());
    assert_eq!(ipam.blocks().await.unwrap().len(), 2, "affine blocks stay");
}

#[tokio::test]
async fn releasing_an_affinity_follows_the_calico_states_and_keeps_a_busy_block() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/28", 30).await;
    let got = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    let block = got.v4[0].1;
    let err = ipam.release_affinity("n1", block, true).await.unwrap_err();
    assert!(
        matches!(err, IpamError::BlockNotEmpty { in_use: 1, .. }),
        "{err}"
    );
    assert_eq!(
        ipam.affinities(Some("n1")).await.unwrap()[0].state,
        AffinityState::Confirmed,
        "a refused release leaves no pendingDeletion behind (Calico #4471)"
    );
    // Without must_be_empty the block stays, unaffine; its address now counts as borrowed.
    ipam.release_affinity("n1", block, false).await.unwrap();
    assert!(ipam.affinities(Some("n1")).await.unwrap().is_empty());
    let blocks = ipam.blocks().await.unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].affinity, None);
    assert_eq!(ipam.borrowed().await.unwrap().len(), 1);
    // Releasing the last address of an unaffine block deletes the block.
    ipam.release_by_handle("k8s-pod-network.a").await.unwrap();
    assert!(ipam.blocks().await.unwrap().is_empty());
    // An empty block goes with its affinity.
    let got = ipam.auto_assign(pod("n1", "b", 1)).await.unwrap();
    ipam.release_by_handle("k8s-pod-network.b").await.unwrap();
    ipam.release_affinity("n1", got.v4[0].1, true)
        .await
        .unwrap();
    assert!(ipam.blocks().await.unwrap().is_empty());
    assert!(matches!(
        ipam.release_affinity("n1", got.v4[0].1, true)
            .await
            .unwrap_err(),
        IpamError::NoAffinity { .. }
    ));
}

#[tokio::test]
async fn releasing_a_nodes_affinities_keeps_busy_blocks_when_they_must_be_empty() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/28", 30).await;
    ipam.auto_assign(pod("n1", "a", 5)).await.unwrap();
    ipam.release_by_handle("k8s-pod-network.a").await.unwrap();
    ipam.auto_assign(pod("n1", "b", 1)).await.unwrap();
    let out = ipam.release_host_affinities("n1", true).await.unwrap();
    assert_eq!(out.released.len(), 1);
    assert_eq!(out.kept.len(), 1);
    assert!(
        out.kept[0].1.contains("still holds 1 addresses"),
        "{:?}",
        out.kept
    );
    let out = ipam.release_host_affinities("n1", false).await.unwrap();
    assert_eq!(out.released.len(), 1);
    assert!(ipam.affinities(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_empty_block_of_another_node_is_reclaimed_only_after_a_minute() {
    let (backend, _) = mem();
    let t0 = std::time::SystemTime::now();
    let at = |secs: u64| {
        let b = backend.clone();
        fabric_ipam::Ipam::from_backend(b)
            .with_clock(move || t0 + std::time::Duration::from_secs(secs))
    };
    let ipam = at(0);
    pool(&ipam, "p", "10.0.0.0/30", 30).await;
    config(&ipam, true, 20).await;
    ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    ipam.release_by_handle("k8s-pod-network.a").await.unwrap();
    let early = at(30).auto_assign(pod("n2", "b", 1)).await.unwrap_err();
    assert!(
        matches!(
            early,
            IpamError::Exhausted {
                reason: Exhaustion::PoolsFull,
                ..
            }
        ),
        "{early}"
    );
    let later = at(61).auto_assign(pod("n2", "b", 1)).await.unwrap();
    assert_eq!(later.v4[0].1, net("10.0.0.0/30"));
    let affinities = ipam.affinities(None).await.unwrap();
    assert_eq!(affinities.len(), 1);
    assert_eq!(affinities[0].node, "n2");
}

#[tokio::test]
async fn ipv6_and_dual_stack_requests_are_served_and_a_failed_family_gives_the_other_back() {
    let (_, ipam) = mem();
    pool(&ipam, "v4", "10.0.0.0/24", 26).await;
    let mut args = pod("n1", "a", 1);
    args.num_v6 = 1;
    let err = ipam.auto_assign(args.clone()).await.unwrap_err();
    assert!(err.to_string().contains("no IPv6 pools exist"), "{err}");
    assert!(
        allocated(&ipam).await.is_empty(),
        "the IPv4 address was given back"
    );
    assert!(ipam.handle("k8s-pod-network.a").await.unwrap().is_none());
    pool(&ipam, "v6", "fd00:10::/48", 122).await;
    let got = ipam.auto_assign(args).await.unwrap();
    assert_eq!(got.v4.len(), 1);
    assert_eq!(got.v6.len(), 1);
    assert_eq!(got.v6[0].1.prefix_len(), 122);
    assert!(net("fd00:10::/48").contains(&got.v6[0].0));
    let handle = ipam.handle("k8s-pod-network.a").await.unwrap().unwrap();
    assert_eq!(handle.block.len(), 2);
    assert_eq!(
        ipam.release_by_handle("k8s-pod-network.a")
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn assign_ip_claims_the_block_and_refuses_a_taken_or_foreign_address() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 28).await;
    let attrs = Default::default();
    let info = ipam
        .assign_ip(ip("10.0.0.37"), "k8s-pod-network.a", &attrs, "n1")
        .await
        .unwrap();
    assert_eq!(info.block, net("10.0.0.32/28"));
    assert_eq!(info.block_owner.as_deref(), Some("n1"));
    let err = ipam
        .assign_ip(ip("10.0.0.37"), "k8s-pod-network.b", &attrs, "n1")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("already allocated (to handle k8s-pod-network.a)"),
        "{err}"
    );
    assert!(ipam.handle("k8s-pod-network.b").await.unwrap().is_none());
    let err = ipam
        .assign_ip(ip("10.9.0.1"), "k8s-pod-network.b", &attrs, "n1")
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::NotInPool { .. }), "{err}");
    config(&ipam, true, 20).await;
    let err = ipam
        .assign_ip(ip("10.0.0.38"), "k8s-pod-network.b", &attrs, "n2")
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::StrictAffinity { .. }), "{err}");
}

#[tokio::test]
async fn pools_are_chosen_by_node_selector_use_and_assignment_mode() {
    let (_, ipam) = mem();
    let mut rack_a = pool_spec("10.1.0.0/24", 26);
    rack_a.node_selector = "rack == 'a'".into();
    add_pool(ipam.client(), "rack-a", rack_a).await;
    add_pool(
        ipam.client(),
        "tunnels",
        with_uses(pool_spec("10.2.0.0/24", 26), &[IPPoolAllowedUse::Tunnel]),
    )
    .await;
    add_pool(
        ipam.client(),
        "special",
        manual(pool_spec("10.3.0.0/24", 26)),
    )
    .await;
    let err = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap_err();
    assert!(matches!(err, IpamError::NodeNotFound { .. }), "{err}");
    node(&ipam, "n1", &[("rack", "a")]).await;
    node(&ipam, "n2", &[("rack", "b")]).await;
    let got = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    assert!(net("10.1.0.0/24").contains(&got.v4[0].0));
    let err = ipam.auto_assign(pod("n2", "b", 1)).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("does not select node n2"), "{text}");
    assert!(text.contains("does not include Workload"), "{text}");
    assert!(text.contains("assignmentMode Manual"), "{text}");
    let mut asked = pod("n2", "b", 1);
    asked.pools_v4 = vec!["special".into()];
    let got = ipam.auto_assign(asked).await.unwrap();
    assert!(net("10.3.0.0/24").contains(&got.v4[0].0));
    let tunnel = AutoAssignArgs {
        node: "n2".into(),
        handle: tunnel_handle(TunnelKind::Vxlan, "n2"),
        attrs: [(
            "type".to_string(),
            TunnelKind::Vxlan.attr_type().to_string(),
        )]
        .into(),
        num_v4: 1,
        intended_use: IntendedUse::Tunnel,
        ..AutoAssignArgs::default()
    };
    let got = ipam.auto_assign(tunnel).await.unwrap();
    assert!(net("10.2.0.0/24").contains(&got.v4[0].0));
}

#[tokio::test]
async fn bad_requests_are_rejected_naming_the_field_and_write_nothing() {
    let (backend, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 26).await;
    let before = backend.revision().await.unwrap();
    let mut args = pod("n1", "a", 1);
    args.handle = "bad/handle".into();
    let err = ipam.auto_assign(args).await.unwrap_err();
    assert!(err.to_string().contains("handle = \"bad/handle\""), "{err}");
    let err = ipam.auto_assign(pod("", "a", 1)).await.unwrap_err();
    assert!(
        err.to_string().contains("node = \"\" must not be empty"),
        "{err}"
    );
    let err = ipam.auto_assign(pod("n1", "a", 0)).await.unwrap_err();
    assert!(err.to_string().contains("num_v4"), "{err}");
    let mut args = pod("n1", "a", 1);
    args.pools_v4 = vec!["nope".into()];
    let err = ipam.auto_assign(args).await.unwrap_err();
    assert!(err.to_string().contains("pools_v4 = \"nope\""), "{err}");
    assert_eq!(backend.revision().await.unwrap(), before);
}

#[tokio::test]
async fn the_configuration_defaults_like_calico_and_round_trips() {
    let (_, ipam) = mem();
    let cfg = ipam.config().await.unwrap();
    assert_eq!(cfg, IpamConfig::default());
    assert_eq!(cfg.max_blocks_per_host, 20);
    assert!(cfg.auto_allocate_blocks && !cfg.strict_affinity);
    let set = IpamConfig {
        strict_affinity: true,
        auto_allocate_blocks: false,
        max_blocks_per_host: 7,
        ip_cooldown_seconds: 30,
    };
    assert_eq!(ipam.set_config(set).await.unwrap(), set);
    assert_eq!(ipam.config().await.unwrap(), set);
    pool(&ipam, "p", "10.0.0.0/24", 26).await;
    let err = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            IpamError::Exhausted {
                reason: Exhaustion::AutoAllocateDisabled,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn watched_inputs_follow_pool_reservation_and_configuration_changes() {
    let (backend, setup) = mem();
    let ipam = fabric_ipam::Ipam::from_backend(backend);
    ipam.watch_inputs().await.unwrap();
    let err = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap_err();
    assert!(matches!(err, IpamError::NoPool { .. }), "{err}");
    pool(&setup, "p", "10.0.0.0/30", 30).await;
    reserve(&setup, "r", &["10.0.0.0/31"]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let got = loop {
        match ipam.auto_assign(pod("n1", "a", 1)).await {
            Ok(got) => break got,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the watch never delivered the pool: {e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    assert!(
        ipam.release_by_handle("k8s-pod-network.a")
            .await
            .unwrap()
            .len()
            == 1
    );
    let mut seen_reservation = got.v4[0].0 == ip("10.0.0.2") || got.v4[0].0 == ip("10.0.0.3");
    while !seen_reservation {
        // The pool may have been seen before the reservation: retry until both are in.
        assert!(
            std::time::Instant::now() < deadline,
            "the watch never delivered the reservation"
        );
        let again = ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
        ipam.release_by_handle("k8s-pod-network.a").await.unwrap();
        seen_reservation = !net("10.0.0.0/31").contains(&again.v4[0].0);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    setup
        .set_config(IpamConfig {
            auto_allocate_blocks: false,
            ..IpamConfig::default()
        })
        .await
        .unwrap();
    ipam.release_affinity("n1", net("10.0.0.0/30"), true)
        .await
        .unwrap();
    loop {
        match ipam.auto_assign(pod("n1", "b", 1)).await {
            Err(IpamError::Exhausted {
                reason: Exhaustion::AutoAllocateDisabled,
                ..
            }) => break,
            Ok(_) => {
                ipam.release_by_handle("k8s-pod-network.b").await.unwrap();
                ipam.release_affinity("n1", net("10.0.0.0/30"), true)
                    .await
                    .unwrap();
            }
            Err(e) => panic!("{e}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the watch never delivered the configuration"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn releasing_more_addresses_of_one_block_than_a_transaction_holds_frees_them_all() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 24).await;
    let n = fabric_ipam::RELEASES_PER_TXN + 10;
    let mut requests = Vec::new();
    for i in 0..n {
        let got = ipam
            .auto_assign(pod("n1", &format!("c{i}"), 1))
            .await
            .unwrap();
        requests.push(fabric_ipam::ReleaseRequest::ip(got.v4[0].0));
    }
    // One block, n different handles: more than one transaction may carry.
    let done = ipam.release_ips(&requests).await.unwrap();
    assert_eq!(done.released.len(), n);
    assert!(done.not_allocated.is_empty());
    assert!(allocated(&ipam).await.is_empty());
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert_eq!(
        report.summary.handles, 0,
        "every handle went with its address"
    );
}

#[tokio::test]
async fn a_new_handle_request_for_a_handle_that_holds_addresses_assigns_nothing() {
    let (backend, ipam) = mem();
    pool(&ipam, "p", "10.0.0.0/24", 29).await;
    pool(&ipam, "p6", "fd00::/120", 125).await;
    let new = |container: &str| AutoAssignArgs {
        new_handle: true,
        num_v6: 1,
        ..pod("n1", container, 1)
    };
    let first = ipam.auto_assign(new("a")).await.unwrap();
    assert_eq!(
        (first.v4.len(), first.v6.len()),
        (1, 1),
        "both families, one handle"
    );
    let before = ipam.usage().await.unwrap();
    let err = ipam.auto_assign(new("a")).await.unwrap_err();
    assert!(
        matches!(&err, IpamError::HandleInUse { handle } if handle == "k8s-pod-network.a"),
        "{err}"
    );
    assert_eq!(ipam.usage().await.unwrap(), before, "nothing was assigned");
    assert_eq!(
        ipam.ips_by_handle("k8s-pod-network.a").await.unwrap().len(),
        2
    );
    // From another process (no cache): the same.
    let other = fabric_ipam::Ipam::from_backend(backend);
    let err = other.auto_assign(new("a")).await.unwrap_err();
    assert!(matches!(err, IpamError::HandleInUse { .. }), "{err}");
    assert_eq!(ipam.usage().await.unwrap(), before);
    // Without the flag, the handle gets more addresses (Calico's behaviour).
    ipam.auto_assign(pod("n1", "a", 1)).await.unwrap();
    assert_eq!(
        ipam.ips_by_handle("k8s-pod-network.a").await.unwrap().len(),
        3
    );
}
