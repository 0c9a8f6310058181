//! Real concurrency: 8 allocator processes (`fabric-ipam-worker`) on 4 node names, 4,000
//! allocations with random releases, on etcd and on sqlite: no address twice, every handle
//! accounted for, `check` clean. Allocators killed with SIGKILL in the middle of a claim (held
//! there by the test hook) or at random moments leave nothing `check` cannot explain (and never
//! a handle that disagrees with the blocks: both change in one transaction), and the node's next
//! allocation succeeds.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_datastore::ipam_model::{AffinityState, IpamHandle};
use fabric_datastore::keys::{IPAM_HANDLE_PREFIX, parse_ipam_handle_key};
use fabric_datastore::{Backend, EtcdBackend, SqliteBackend};
use fabric_ipam::{Ipam, IpamConfig, Problem, TEST_HOLD_ENV};
use fabric_testkit::{ChildGuard, TestEtcd, test_etcd, unique_name};

use common::*;

const WORKER: &str = env!("CARGO_BIN_EXE_fabric-ipam-worker");

/// Where the workers and the test meet.
enum Store {
    Etcd {
        _server: TestEtcd,
        endpoint: String,
        prefix: String,
    },
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
}

impl Store {
    async fn etcd() -> Store {
        let server = tokio::task::spawn_blocking(test_etcd).await.unwrap();
        Store::Etcd {
            endpoint: server.endpoint(),
            _server: server,
            prefix: format!("/{}", unique_name("ipam-proc")),
        }
    }

    fn sqlite() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calico.db");
        Store::Sqlite { _dir: dir, path }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Store::Etcd {
                endpoint, prefix, ..
            } => vec![
                "--etcd".into(),
                endpoint.clone(),
                "--prefix".into(),
                prefix.clone(),
            ],
            Store::Sqlite { path, .. } => {
                vec!["--sqlite".into(), path.display().to_string()]
            }
        }
    }

    async fn backend(&self) -> Arc<dyn Backend> {
        match self {
            Store::Etcd {
                endpoint, prefix, ..
            } => Arc::new(
                EtcdBackend::connect_with_prefix(std::slice::from_ref(endpoint), prefix)
                    .await
                    .unwrap(),
            ),
            Store::Sqlite { path, .. } => Arc::new(SqliteBackend::open(path).unwrap()),
        }
    }
}

/// A running worker with its output file.
struct Worker {
    child: ChildGuard,
    out: PathBuf,
    err: PathBuf,
}

fn spawn(store: &Store, dir: &Path, tag: &str, extra: &[&str], hold: Option<String>) -> Worker {
    let out = dir.join(format!("{tag}.out"));
    let err = dir.join(format!("{tag}.err"));
    let mut cmd = Command::new(WORKER);
    cmd.args(store.args())
        .args(["--tag", tag])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .env_remove(TEST_HOLD_ENV);
    if let Some(hold) = hold {
        cmd.env(TEST_HOLD_ENV, hold);
    }
    Worker {
        child: ChildGuard(cmd.spawn().unwrap()),
        out,
        err,
    }
}

/// Waits for the worker to exit successfully; returns its stdout.
async fn finish(mut w: Worker, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = w.child.0.try_wait().unwrap() {
            let err = std::fs::read_to_string(&w.err).unwrap_or_default();
            assert!(status.success(), "worker failed ({status}): {err}");
            return std::fs::read_to_string(&w.out).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "worker did not finish within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pool 10.100.0.0/20 in /28 blocks (16 addresses: many claims, small values). A donor node
/// claims 96 blocks and empties them, then the block limit drops to 32, so the workers' nodes
/// (4 x ~750 addresses, 512 in their own blocks at most) must borrow.
async fn setup_for_borrowing(ipam: &Ipam) {
    pool(ipam, "p", "10.100.0.0/20", 28).await;
    config(ipam, false, 96).await;
    ipam.auto_assign(pod("donor", "donor", 96 * 16))
        .await
        .unwrap();
    ipam.release_by_handle("k8s-pod-network.donor")
        .await
        .unwrap();
    config(ipam, false, 32).await;
}

async fn eight_processes(store: Store) {
    let ipam = Ipam::from_backend(store.backend().await);
    setup_for_borrowing(&ipam).await;
    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<Worker> = (0..8)
        .map(|i| {
            let node = format!("n{}", i % 4);
            let seed = i.to_string();
            spawn(
                &store,
                dir.path(),
                &format!("w{i}"),
                &[
                    "--node",
                    &node,
                    "--count",
                    "500",
                    "--release-percent",
                    "25",
                    "--seed",
                    &seed,
                    "--endpoints",
                ],
                None,
            )
        })
        .collect();
    let mut kept: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut allocated = 0;
    for w in workers {
        let out = finish(w, Duration::from_secs(240)).await;
        for line in out.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["kept", handle, ip] => {
                    let before = kept.insert(ip.parse().unwrap(), handle.to_string());
                    assert!(before.is_none(), "{ip} kept by {handle} and {before:?}");
                }
                ["done", a, _] => {
                    allocated += a.trim_start_matches("allocated=").parse::<usize>().unwrap()
                }
                _ => {}
            }
        }
    }
    assert_eq!(allocated, 4000);
    // The blocks hold exactly the kept addresses, each under its handle.
    assert_eq!(common::allocated(&ipam).await, kept);
    // Every handle object is one kept pod's, counting its one address.
    let backend = store.backend().await;
    let handles: BTreeMap<String, IpamHandle> = backend
        .list(IPAM_HANDLE_PREFIX)
        .await
        .unwrap()
        .items
        .iter()
        .map(|kv| {
            (
                parse_ipam_handle_key(&kv.key).unwrap(),
                serde_json::from_str(&kv.value).unwrap(),
            )
        })
        .collect();
    let kept_handles: BTreeSet<&String> = kept.values().collect();
    assert_eq!(handles.keys().collect::<BTreeSet<_>>(), kept_handles);
    for h in handles.values() {
        assert_eq!(h.block.values().sum::<usize>(), 1, "{h:?}");
    }
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert_eq!(report.summary.workload_ips, kept.len());
    assert!(
        report
            .render(false)
            .contains("Check complete; found 0 problems.")
    );
    let borrowed = ipam.borrowed().await.unwrap();
    assert!(
        !borrowed.is_empty(),
        "the block limit should have forced borrowing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_allocator_processes_on_etcd_never_hand_out_an_address_twice() {
    eight_processes(Store::etcd().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_allocator_processes_on_sqlite_never_hand_out_an_address_twice() {
    eight_processes(Store::sqlite()).await;
}

/// Kills a worker held at `point` of its first claim; returns the block it was claiming.
async fn killed_in_claim(store: &Store, node: &str, point: &str) -> ipnet::IpNet {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("held");
    let mut w = spawn(
        store,
        dir.path(),
        "k",
        &["--node", node, "--count", "1", "--endpoints"],
        Some(format!("{point}:{}", marker.display())),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        if let Some(status) = w.child.0.try_wait().unwrap() {
            panic!(
                "worker exited ({status}) before the hold: {}",
                std::fs::read_to_string(&w.err).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the worker never reached {point}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.child.kill();
    std::fs::read_to_string(&marker).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allocator_killed_after_its_pending_affinity_leaves_a_claim_the_next_allocation_finishes()
 {
    let store = Store::etcd().await;
    let ipam = Ipam::from_backend(store.backend().await);
    pool(&ipam, "p", "10.100.0.0/20", 26).await;
    let block = killed_in_claim(&store, "k1", "after-pending").await;
    let report = ipam.check().await.unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::AffinityWithoutBlock {
            node: "k1".into(),
            block,
            state: AffinityState::Pending
        }]
    );
    let got = ipam.auto_assign(pod("k1", "next", 1)).await.unwrap();
    assert_eq!(
        got.v4[0].1, block,
        "the half-done claim was finished and used"
    );
    endpoint(&ipam, "k1", "next", got.v4[0].0).await;
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allocator_killed_before_confirming_its_block_leaves_a_claim_the_next_allocation_confirms()
 {
    let store = Store::sqlite();
    let ipam = Ipam::from_backend(store.backend().await);
    pool(&ipam, "p", "10.100.0.0/20", 26).await;
    let block = killed_in_claim(&store, "k2", "after-block").await;
    let report = ipam.check().await.unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::BlockWithoutAffinity {
            block,
            node: "k2".into(),
            state: Some(AffinityState::Pending)
        }]
    );
    let got = ipam.auto_assign(pod("k2", "next", 1)).await.unwrap();
    assert_eq!(got.v4[0].1, block);
    endpoint(&ipam, "k2", "next", got.v4[0].0).await;
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
}

/// What a SIGKILL between two writes of the worker can leave behind.
fn explained_by_a_crash(p: &Problem) -> bool {
    match p {
        // Allocated, endpoint not written yet; or endpoint deleted, release not done.
        Problem::LeakedAddress { .. } => true,
        // Never a handle problem: a handle changes in the same transaction as its block, so
        // no kill can separate them.
        // A claim cut between its phases (the subnet may since have gone to another node).
        Problem::AffinityWithoutBlock { state, .. }
        | Problem::AffinityToOtherBlock { state, .. } => *state == AffinityState::Pending,
        Problem::BlockWithoutAffinity { state, .. } => *state == Some(AffinityState::Pending),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocators_killed_at_random_moments_leave_only_explainable_problems() {
    let store = Store::etcd().await;
    let ipam = Ipam::from_backend(store.backend().await);
    pool(&ipam, "p", "10.100.0.0/20", 26).await;
    ipam.set_config(IpamConfig {
        max_blocks_per_host: 4,
        ..IpamConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng: u64 = 0x5eed_1234_abcd_0001 ^ u64::from(std::process::id());
    for round in 0..6 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let node = format!("r{}", round % 2);
        let mut w = spawn(
            &store,
            dir.path(),
            &format!("r{round}"),
            &[
                "--node",
                &node,
                "--count",
                "400",
                "--release-percent",
                "30",
                "--endpoints",
            ],
            None,
        );
        tokio::time::sleep(Duration::from_millis(150 + rng % 600)).await;
        w.child.kill();
    }
    let report = ipam.check().await.unwrap();
    let unexplained: Vec<&Problem> = report
        .problems
        .iter()
        .filter(|p| !explained_by_a_crash(p))
        .collect();
    assert!(unexplained.is_empty(), "{unexplained:#?}");
    for node in ["r0", "r1"] {
        let got = ipam
            .auto_assign(pod(node, &format!("after-{node}"), 1))
            .await
            .unwrap();
        endpoint(&ipam, node, &format!("after-{node}"), got.v4[0].0).await;
    }
    // The report's leaks can be released; what is left is still explainable.
    ipam.release_from_report(&report).await.unwrap();
    let again = ipam.check().await.unwrap();
    let unexplained: Vec<&Problem> = again
        .problems
        .iter()
        .filter(|p| !explained_by_a_crash(p))
        .collect();
    assert!(unexplained.is_empty(), "{unexplained:#?}");
    assert!(
        !again.problems.iter().any(|p| matches!(
            p,
            Problem::AffinityWithoutBlock { .. }
                | Problem::BlockWithoutAffinity { .. }
                | Problem::AffinityToOtherBlock { .. }
        )),
        "the next allocations finished or undid the interrupted claims: {:#?}",
        again.problems
    );
}
