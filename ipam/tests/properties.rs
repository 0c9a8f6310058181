//! Property tests on the in-memory store.
//!
//! * Random interleavings (a backend that yields to the scheduler a seeded number of times
//!   before every operation) of allocations (one by one and batched), releases by handle and
//!   by address, stale releases, specific-address claims and affinity releases by several
//!   actors on several nodes never hand out one address twice, and leave blocks, handles and
//!   affinities consistent; under strict affinity nothing is borrowed.
//! * A stale release is refused and changes nothing.
//! * Reserved addresses are never handed out, and everything else is.
//! * Pool selection follows the rules (version, disabled, nodeSelector, allowedUses, manual).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use fabric_api::ippool::{AssignmentMode, IPPoolAllowedUse, IPPoolSpec};
use fabric_api::{IPPool, ObjectMeta};
use fabric_datastore::Backend;
use fabric_datastore::keys::IPAM_HANDLE_PREFIX;
use fabric_ipam::{
    Family, IntendedUse, Ipam, IpamError, PoolRequest, Problem, ReleaseRequest, select_pools,
};
use proptest::prelude::*;

use common::*;

/// Yields a seeded number of times before every store operation, so concurrent tasks on a
/// current-thread runtime interleave at every datastore access.
#[derive(Debug)]
struct Interleaving {
    rng: Mutex<u64>,
}

#[async_trait::async_trait]
impl Around for Interleaving {
    async fn before(&self) {
        let n = {
            let mut r = self.rng.lock().unwrap();
            *r ^= *r << 13;
            *r ^= *r >> 7;
            *r ^= *r << 17;
            *r % 4
        };
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Allocate(usize),
    AllocateBatch(usize),
    ReleaseByHandle(usize),
    ReleaseIp(usize),
    StaleRelease(usize),
    AssignIp(u8),
    ReleaseAffinity(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..=3).prop_map(Op::Allocate),
        2 => (2usize..=4).prop_map(Op::AllocateBatch),
        2 => any::<usize>().prop_map(Op::ReleaseByHandle),
        2 => any::<usize>().prop_map(Op::ReleaseIp),
        1 => any::<usize>().prop_map(Op::StaleRelease),
        1 => (0u8..64).prop_map(Op::AssignIp),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(p, e)| Op::ReleaseAffinity(p, e)),
    ]
}

/// The actors of one run: each one's node index and operations.
type Actors = Vec<(usize, Vec<Op>)>;

/// What the actors hold: address -> handle, shared by all of them.
type Live = Arc<Mutex<BTreeMap<IpAddr, String>>>;

struct Actor {
    id: usize,
    node: String,
    ipam: Ipam,
    live: Live,
    strict: bool,
    /// Handle -> [(address, sequence)].
    mine: Vec<(String, Vec<(IpAddr, u64)>)>,
    next: usize,
}

impl Actor {
    fn record(&self, handle: &str, ips: &[(IpAddr, u64)]) {
        let mut live = self.live.lock().unwrap();
        for (ip, _) in ips {
            let before = live.insert(*ip, handle.to_string());
            assert!(
                before.is_none(),
                "{ip} handed out twice: {before:?} and {handle}"
            );
        }
    }

    fn forget(&self, ips: &[(IpAddr, u64)]) {
        let mut live = self.live.lock().unwrap();
        for (ip, _) in ips {
            live.remove(ip);
        }
    }

    fn new_handle(&mut self) -> String {
        self.next += 1;
        format!("k8s-pod-network.a{}-{}", self.id, self.next)
    }

    async fn run(&mut self, op: Op) {
        match op {
            Op::Allocate(n) => {
                let handle = self.new_handle();
                let mut args = pod(&self.node, "x", n);
                args.handle = handle.clone();
                match self.ipam.auto_assign(args).await {
                    Ok(got) => {
                        let ips: Vec<(IpAddr, u64)> =
                            got.all().map(|ip| (ip, got.sequences[&ip])).collect();
                        assert_eq!(ips.len(), n);
                        self.record(&handle, &ips);
                        self.mine.push((handle, ips));
                    }
                    Err(IpamError::Exhausted { .. }) => {}
                    Err(e) => panic!("allocation failed: {e}"),
                }
            }
            Op::AllocateBatch(n) => {
                let mut burst = Vec::new();
                for _ in 0..n {
                    let mut args = pod(&self.node, "x", 1);
                    args.handle = self.new_handle();
                    args.new_handle = true;
                    burst.push(args);
                }
                let results = self.ipam.auto_assign_batch(&burst).await;
                assert_eq!(results.len(), n);
                for (args, result) in burst.into_iter().zip(results) {
                    match result {
                        Ok(got) => {
                            let ips: Vec<(IpAddr, u64)> =
                                got.all().map(|ip| (ip, got.sequences[&ip])).collect();
                            assert_eq!(ips.len(), 1);
                            self.record(&args.handle, &ips);
                            self.mine.push((args.handle, ips));
                        }
                        Err(IpamError::Exhausted { .. }) => {}
                        Err(e) => panic!("batched allocation failed: {e}"),
                    }
                }
            }
            Op::ReleaseByHandle(pick) if !self.mine.is_empty() => {
                let (handle, ips) = self.mine.swap_remove(pick % self.mine.len());
                self.forget(&ips);
                let got: BTreeSet<IpAddr> = self
                    .ipam
                    .release_by_handle(&handle)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect();
                let want: BTreeSet<IpAddr> = ips.iter().map(|(ip, _)| *ip).collect();
                assert_eq!(got, want, "release of {handle}");
            }
            Op::ReleaseIp(pick) if !self.mine.is_empty() => {
                let i = pick % self.mine.len();
                let (handle, ips) = &mut self.mine[i];
                let (ip, seq) = ips.pop().unwrap();
                let handle = handle.clone();
                if ips.is_empty() {
                    self.mine.swap_remove(i);
                }
                self.forget(&[(ip, seq)]);
                let req = ReleaseRequest {
                    ip,
                    sequence: Some(seq),
                    handle: Some(handle.clone()),
                };
                let out = self.ipam.release_ips(&[req]).await.unwrap();
                assert_eq!(out.released, vec![(ip, Some(handle))]);
            }
            Op::StaleRelease(pick) if !self.mine.is_empty() => {
                let (handle, ips) = &self.mine[pick % self.mine.len()];
                let (ip, seq) = ips[0];
                let req = ReleaseRequest {
                    ip,
                    sequence: Some(seq.wrapping_sub(1)),
                    handle: Some(handle.clone()),
                };
                let err = self.ipam.release_ips(&[req]).await.unwrap_err();
                assert!(matches!(err, IpamError::StaleSequence { .. }), "{err}");
            }
            Op::AssignIp(offset) => {
                let handle = self.new_handle();
                let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, offset));
                match self
                    .ipam
                    .assign_ip(ip, &handle, &BTreeMap::new(), &self.node)
                    .await
                {
                    Ok(info) => {
                        let ips = [(ip, info.sequence)];
                        self.record(&handle, &ips);
                        self.mine.push((handle, ips.to_vec()));
                    }
                    Err(IpamError::AlreadyAllocated { .. } | IpamError::StrictAffinity { .. }) => {}
                    Err(e) => panic!("assign_ip failed: {e}"),
                }
            }
            Op::ReleaseAffinity(pick, must_be_empty) => {
                let mine = self.ipam.affinities(Some(&self.node)).await.unwrap();
                if mine.is_empty() {
                    return;
                }
                let block = mine[pick % mine.len()].block;
                let must_be_empty = must_be_empty || self.strict;
                match self
                    .ipam
                    .release_affinity(&self.node, block, must_be_empty)
                    .await
                {
                    Ok(())
                    | Err(
                        IpamError::BlockNotEmpty { .. }
                        | IpamError::NoAffinity { .. }
                        | IpamError::AffinityConflict { .. },
                    ) => {}
                    Err(e) => panic!("release_affinity failed: {e}"),
                }
            }
            _ => {}
        }
    }
}

async fn interleaved(seed: u64, strict: bool, max_blocks: u32, actors: Actors) {
    let (backend, setup) = wrapped(Interleaving {
        rng: Mutex::new(seed | 1),
    });
    pool(&setup, "p", "10.0.0.0/26", 29).await;
    config(&setup, strict, max_blocks).await;
    let live: Live = Arc::default();
    let mut tasks = Vec::new();
    for (id, (node, ops)) in actors.into_iter().enumerate() {
        let mut actor = Actor {
            id,
            node: format!("n{node}"),
            ipam: Ipam::from_backend(backend.clone()),
            live: live.clone(),
            strict,
            mine: Vec::new(),
            next: 0,
        };
        tasks.push(tokio::spawn(async move {
            for op in ops {
                actor.run(op).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The blocks hold exactly what the actors hold.
    let stored = allocated(&setup).await;
    let held = live.lock().unwrap().clone();
    assert_eq!(stored, held);
    // Handles agree with the blocks, and no other handle exists.
    let mut per_handle: BTreeMap<&str, usize> = BTreeMap::new();
    for h in held.values() {
        *per_handle.entry(h.as_str()).or_insert(0) += 1;
    }
    let handles = backend.list(IPAM_HANDLE_PREFIX).await.unwrap().items;
    assert_eq!(
        handles.len(),
        per_handle.len(),
        "handle objects: {handles:?}"
    );
    let report = setup.check().await.unwrap();
    let unexpected: Vec<&Problem> = report
        .problems
        .iter()
        .filter(|p| !matches!(p, Problem::LeakedAddress { .. }))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    if strict {
        for b in setup.blocks().await.unwrap() {
            for (_, ip, attr) in b.in_use() {
                let node = attr.and_then(|a| a.active_owner_attrs.get("node")).unwrap();
                assert_eq!(
                    b.host(),
                    Some(node.as_str()),
                    "{ip} was borrowed under strict affinity"
                );
            }
        }
    }
}

fn run_async<F: Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("IPAM_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128), ..ProptestConfig::default() })]

    #[test]
    fn interleaved_operations_never_hand_out_an_address_twice(
        seed in any::<u64>(),
        strict in any::<bool>(),
        max_blocks in 1u32..=4,
        actors in proptest::collection::vec((0usize..3, proptest::collection::vec(op(), 1..14)), 2..5),
    ) {
        run_async(interleaved(seed, strict, max_blocks, actors));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn a_stale_release_is_refused_and_changes_nothing(
        steps in proptest::collection::vec((any::<bool>(), any::<usize>()), 1..30),
    ) {
        run_async(async move {
            let (_, ipam) = mem();
            pool(&ipam, "p", "10.0.0.0/30", 30).await;
            let mut live: Vec<(IpAddr, u64, String)> = Vec::new();
            let mut past: Vec<(IpAddr, u64, String)> = Vec::new();
            for (i, (allocate, pick)) in steps.into_iter().enumerate() {
                if allocate || live.is_empty() {
                    let handle = format!("k8s-pod-network.s{i}");
                    let mut args = pod("n1", "x", 1);
                    args.handle = handle.clone();
                    if let Ok(got) = ipam.auto_assign(args).await {
                        let ip = got.v4[0].0;
                        live.push((ip, got.sequences[&ip], handle));
                    }
                } else {
                    let (ip, seq, handle) = live.swap_remove(pick % live.len());
                    ipam.release_ips(&[ReleaseRequest { ip, sequence: Some(seq), handle: Some(handle.clone()) }])
                        .await
                        .unwrap();
                    past.push((ip, seq, handle));
                }
                if let Some((ip, seq, handle)) = past.get(pick % past.len().max(1)).cloned() {
                    let before = allocated(&ipam).await;
                    let result = ipam
                        .release_ips(&[ReleaseRequest { ip, sequence: Some(seq), handle: None }])
                        .await;
                    match result {
                        Err(IpamError::StaleSequence { .. }) => {}
                        Ok(out) => assert!(out.released.is_empty(), "{handle}: {out:?}"),
                        Err(e) => panic!("{e}"),
                    }
                    assert_eq!(allocated(&ipam).await, before);
                }
            }
        });
    }

    #[test]
    fn reserved_addresses_are_never_handed_out_and_the_rest_all_are(
        reserved in proptest::collection::btree_set(0u8..32, 0..20),
    ) {
        run_async(async move {
            let (_, ipam) = mem();
            pool(&ipam, "p", "10.0.0.0/27", 29).await;
            let cidrs: Vec<String> = reserved.iter().map(|o| format!("10.0.0.{o}")).collect();
            if !cidrs.is_empty() {
                let refs: Vec<&str> = cidrs.iter().map(String::as_str).collect();
                reserve(&ipam, "r", &refs).await;
            }
            let mut got = BTreeSet::new();
            for i in 0..40 {
                let mut args = pod("n1", "x", 1);
                args.handle = format!("k8s-pod-network.r{i}");
                match ipam.auto_assign(args).await {
                    Ok(a) => { got.insert(a.v4[0].0); }
                    Err(IpamError::Exhausted { .. }) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            for ip in &got {
                let IpAddr::V4(a) = ip else { unreachable!() };
                assert!(!reserved.contains(&a.octets()[3]), "{ip} is reserved");
            }
            assert_eq!(got.len(), 32 - reserved.len());
        });
    }
}

#[derive(Debug, Clone)]
struct PoolCase {
    v6: bool,
    disabled: bool,
    selector: usize,
    uses: Vec<IPPoolAllowedUse>,
    manual: bool,
}

const SELECTORS: [&str; 4] = ["all()", "rack == 'a'", "has(gpu)", "rack != 'a'"];

fn pool_case() -> impl Strategy<Value = PoolCase> {
    (
        any::<bool>(),
        any::<bool>(),
        0usize..SELECTORS.len(),
        proptest::sample::subsequence(
            vec![IPPoolAllowedUse::Workload, IPPoolAllowedUse::Tunnel],
            0..=2,
        ),
        any::<bool>(),
    )
        .prop_map(|(v6, disabled, selector, uses, manual)| PoolCase {
            v6,
            disabled,
            selector,
            uses,
            manual,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pool_selection_follows_version_disabled_selector_use_and_mode(
        cases in proptest::collection::vec(pool_case(), 1..8),
        rack_a in any::<bool>(),
        gpu in any::<bool>(),
        v6 in any::<bool>(),
        tunnel in any::<bool>(),
        ask in proptest::option::of(any::<usize>()),
    ) {
        let pools: Vec<IPPool> = cases
            .iter()
            .enumerate()
            .map(|(i, c)| IPPool {
                metadata: ObjectMeta::named(format!("p{i}")),
                spec: IPPoolSpec {
                    cidr: if c.v6 { format!("fd00:{i}::/48") } else { format!("10.{i}.0.0/16") },
                    disabled: c.disabled,
                    node_selector: SELECTORS[c.selector].to_string(),
                    allowed_uses: c.uses.clone(),
                    assignment_mode: c.manual.then_some(AssignmentMode::Manual),
                    ..IPPoolSpec::default()
                },
                status: None,
            })
            .collect();
        let mut labels = BTreeMap::new();
        labels.insert("rack".to_string(), if rack_a { "a" } else { "b" }.to_string());
        if gpu {
            labels.insert("gpu".to_string(), "yes".to_string());
        }
        let requested: Vec<String> = ask.map(|i| vec![format!("p{}", i % pools.len())]).unwrap_or_default();
        let use_ = if tunnel { IntendedUse::Tunnel } else { IntendedUse::Workload };
        let req = PoolRequest {
            family: if v6 { Family::V6 } else { Family::V4 },
            requested: &requested,
            intended_use: use_,
            node: "n1",
            namespace_labels: None,
        };
        let expected: Vec<String> = cases
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                let name = format!("p{i}");
                let asked = requested.contains(&name);
                let uses = if c.uses.is_empty() {
                    vec![IPPoolAllowedUse::Workload, IPPoolAllowedUse::Tunnel]
                } else {
                    c.uses.clone()
                };
                let wanted = if tunnel { IPPoolAllowedUse::Tunnel } else { IPPoolAllowedUse::Workload };
                let selects = match c.selector {
                    0 => true,
                    1 => rack_a,
                    2 => gpu,
                    _ => !rack_a,
                };
                (requested.is_empty() || asked)
                    && c.v6 == v6
                    && !c.disabled
                    && uses.contains(&wanted)
                    && (!c.manual || asked)
                    && selects
            })
            .map(|(i, _)| format!("p{i}"))
            .collect();
        match select_pools(&pools, &req, Some(&labels)) {
            Ok(chosen) => {
                let names: Vec<String> = chosen.into_iter().map(|p| p.name).collect();
                prop_assert_eq!(names, expected);
            }
            Err(IpamError::NoPool { reasons, .. }) => {
                prop_assert!(expected.is_empty(), "expected {:?}", expected);
                prop_assert!(!reasons.is_empty());
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}

/// Interleavings that found affinity races (a release racing claims by its own node and by
/// another node), run over a sweep of scheduler seeds: a block was left affine to a node
/// without an affinity, or a confirmed affinity pointed at an unaffine block or at another
/// node's block. Every run must end consistent (`interleaved` checks it).
#[test]
fn releases_racing_claims_of_the_same_block_leave_blocks_and_affinities_consistent() {
    use Op::*;
    let cases: Vec<(bool, Actors)> = vec![
        (
            false,
            vec![
                (
                    2,
                    vec![
                        Allocate(1),
                        ReleaseAffinity(0, false),
                        Allocate(1),
                        ReleaseAffinity(0, true),
                        Allocate(1),
                    ],
                ),
                (
                    2,
                    vec![
                        ReleaseAffinity(0, false),
                        Allocate(1),
                        ReleaseAffinity(0, false),
                        Allocate(1),
                    ],
                ),
                (
                    2,
                    vec![
                        Allocate(1),
                        ReleaseAffinity(0, true),
                        Allocate(1),
                        ReleaseAffinity(0, false),
                    ],
                ),
                (0, vec![AssignIp(16), AssignIp(0), AssignIp(8)]),
            ],
        ),
        (
            true,
            vec![
                (
                    2,
                    vec![
                        ReleaseAffinity(0, false),
                        AssignIp(32),
                        Allocate(1),
                        ReleaseAffinity(0, false),
                        AssignIp(16),
                    ],
                ),
                (
                    2,
                    vec![
                        Allocate(1),
                        ReleaseAffinity(0, false),
                        ReleaseAffinity(0, false),
                    ],
                ),
                (
                    0,
                    vec![
                        AssignIp(32),
                        ReleaseByHandle(0),
                        ReleaseByHandle(0),
                        Allocate(1),
                        AssignIp(16),
                    ],
                ),
            ],
        ),
    ];
    // The seeds that failed before the fix, then a sweep.
    let seeds = [48, 360, 11_024_283_152_993_544_246]
        .into_iter()
        .chain(0..150);
    for seed in seeds {
        for (strict, actors) in &cases {
            for max_blocks in [1, 2] {
                run_async(interleaved(seed, *strict, max_blocks, actors.clone()));
            }
        }
    }
}
