//! The timed workloads: N allocators each calling `auto_assign` for its own node, and N
//! writers compare-and-swapping their own key (straight through `etcd-client`, or through a
//! `Backend`), the reference rate of the same store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use fabric_datastore::{Backend, CasOutcome, TxnOp as BackendTxnOp, TxnOutcome};
use fabric_ipam::handles::pod_handle;
use fabric_ipam::service::{self, ServiceReply, ServiceRequest};
use fabric_ipam::{AutoAssignArgs, Ipam};
use tokio::task::JoinSet;

/// The counts of one run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Successful operations.
    pub ok: u64,
    /// Latency of each successful operation.
    pub latencies: Vec<Duration>,
    /// Wall time.
    pub elapsed: Duration,
    /// Datastore writes during the run (store revision delta).
    pub writes: i64,
    /// CPU time of this process during the run (user + system).
    pub cpu: Duration,
}

/// CPU time this process has used so far (user + system, from `/proc/self/stat`).
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.latencies.extend(other.latencies);
    }

    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// This process's CPU time per operation.
    pub fn cpu_per_op(&self) -> Duration {
        self.cpu.div_f64((self.ok as f64).max(1.0))
    }

    /// Datastore writes per operation.
    pub fn writes_per_op(&self) -> f64 {
        self.writes as f64 / (self.ok as f64).max(1.0)
    }

    /// The `q` quantile (0..=1) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let i = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[i]
    }
}

/// The shape of the reference writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSize {
    /// A compare-and-swap of one small Calico object (~200 bytes of JSON), as the datastore
    /// benchmark and the goal use.
    Small,
    /// What an allocation writes, without the allocator: one transaction that
    /// compare-and-swaps a half-full /26 block's JSON (~5 KB, the average block write of the
    /// allocations) and creates a new ~200-byte handle key.
    AllocationShaped,
}

fn value(n: u64, size: ValueSize) -> String {
    let attribute = r#"{"handle_id":"k8s-pod-network.0123456789abcdef","secondary":{"namespace":"bench","node":"node-1","pod":"web-0"}}"#;
    let count = match size {
        ValueSize::Small => 1,
        ValueSize::AllocationShaped => 40,
    };
    let attributes = vec![attribute; count].join(",");
    format!(
        r#"{{"n":{n},"cidr":"10.0.1.0/26","affinity":"host:node-1","attributes":[{attributes}]}}"#
    )
}

/// The `n`th new key an allocation-shaped reference write creates beside `key`.
fn handle_key(key: &str, n: u64) -> String {
    format!("{key}/handle/{n}")
}

async fn collect(mut tasks: JoinSet<Result<Tally>>, started: Instant) -> Result<Tally> {
    let mut total = Tally::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.context("a benchmark task panicked")??);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Raw etcd: one task per client, each compare-and-swapping its own key (`mod_revision ==
/// rev then put else get`, one round trip per attempt; allocation-shaped: also
/// `create_revision == 0` of a new key, then put it) until `duration` has passed.
pub async fn raw_etcd_cas(
    clients: &[Client],
    run: &str,
    duration: Duration,
    size: ValueSize,
) -> Result<Tally> {
    let cpu = process_cpu();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = JoinSet::new();
    for (i, client) in clients.iter().enumerate() {
        let mut kv = client.kv_client();
        let key = format!("/bench/{run}/raw/{i}");
        tasks.spawn(async move {
            let put = kv.put(key.as_str(), value(0, size), None).await?;
            let mut rev = put.header().map_or(0, |h| h.revision());
            let mut tally = Tally::default();
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let t = Instant::now();
                let mut when = vec![Compare::mod_revision(key.as_str(), CompareOp::Equal, rev)];
                let mut then = vec![TxnOp::put(key.as_str(), value(n, size), None)];
                if size == ValueSize::AllocationShaped {
                    let handle = handle_key(&key, n);
                    when.push(Compare::create_revision(
                        handle.as_str(),
                        CompareOp::Equal,
                        0,
                    ));
                    then.push(TxnOp::put(handle, value(n, ValueSize::Small), None));
                }
                let txn = Txn::new()
                    .when(when)
                    .and_then(then)
                    .or_else([TxnOp::get(key.as_str(), None)]);
                let resp = kv.txn(txn).await?;
                if resp.succeeded() {
                    rev = resp.header().map_or(rev, |h| h.revision());
                    tally.ok += 1;
                    tally.latencies.push(t.elapsed());
                } else {
                    for op in resp.op_responses() {
                        if let TxnOpResponse::Get(g) = op
                            && let Some(kv) = g.kvs().first()
                        {
                            rev = kv.mod_revision();
                        }
                    }
                }
            }
            Ok(tally)
        });
    }
    let mut total = collect(tasks, started).await?;
    total.cpu = process_cpu().saturating_sub(cpu);
    Ok(total)
}

/// Through the `Backend`: one task per backend handle, each compare-and-swapping its own key
/// (allocation-shaped: in a `Backend::transaction` that also creates a new key).
pub async fn backend_cas(
    backends: &[Arc<dyn Backend>],
    run: &str,
    duration: Duration,
    size: ValueSize,
) -> Result<Tally> {
    let cpu = process_cpu();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = JoinSet::new();
    for (i, backend) in backends.iter().enumerate() {
        let backend = backend.clone();
        let key = format!("/bench/{run}/cas/{i}");
        tasks.spawn(async move {
            let mut rev = backend.create(&key, &value(0, size)).await?;
            let mut tally = Tally::default();
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let t = Instant::now();
                let outcome = match size {
                    ValueSize::Small => {
                        backend.compare_and_swap(&key, &value(n, size), rev).await?
                    }
                    ValueSize::AllocationShaped => {
                        let ops = [
                            BackendTxnOp::Put {
                                key: key.clone(),
                                value: value(n, size),
                                expected: rev,
                            },
                            BackendTxnOp::Put {
                                key: handle_key(&key, n),
                                value: value(n, ValueSize::Small),
                                expected: 0,
                            },
                        ];
                        match backend.transaction(&ops).await? {
                            TxnOutcome::Committed(r) => CasOutcome::Swapped(r),
                            TxnOutcome::Current(now) => {
                                CasOutcome::Current(now.into_iter().next().flatten())
                            }
                        }
                    }
                };
                match outcome {
                    CasOutcome::Swapped(r) => {
                        rev = r;
                        tally.ok += 1;
                        tally.latencies.push(t.elapsed());
                    }
                    CasOutcome::Current(Some(kv)) => rev = kv.mod_revision,
                    CasOutcome::Current(None) => bail!("key {key} vanished"),
                }
            }
            Ok(tally)
        });
    }
    let mut total = collect(tasks, started).await?;
    total.cpu = process_cpu().saturating_sub(cpu);
    Ok(total)
}

/// The owner attributes of the `n`th pod of allocator `i`.
fn pod_attrs(i: usize, n: u64) -> std::collections::BTreeMap<String, String> {
    [
        ("pod".to_string(), format!("pod-{i}-{n}")),
        ("namespace".to_string(), "bench".to_string()),
    ]
    .into()
}

/// One allocator per IPAM client, each on its own node, one pod address per `auto_assign`.
pub async fn allocations(ipams: &[Ipam], run: &str, duration: Duration) -> Result<Tally> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = JoinSet::new();
    for (i, ipam) in ipams.iter().enumerate() {
        let ipam = ipam.clone();
        let node = format!("{run}-node{i}");
        let run = run.to_string();
        tasks.spawn(async move {
            let mut tally = Tally::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let t = Instant::now();
                let args = AutoAssignArgs {
                    node: node.clone(),
                    handle: pod_handle(&format!("{run}-{i}-{n}")),
                    attrs: pod_attrs(i, n),
                    num_v4: 1,
                    ..AutoAssignArgs::default()
                };
                ipam.auto_assign(args)
                    .await
                    .with_context(|| format!("allocation {n} on {node}"))?;
                tally.ok += 1;
                tally.latencies.push(t.elapsed());
            }
            Ok(tally)
        });
    }
    collect(tasks, started).await
}

/// One client per node-local IPAM service, as the `calico-ipam` CNI plugin asks calico-node:
/// a new Unix connection and one `assign` request per pod address (a new-handle assignment,
/// so a retried ADD would be found without a read).
pub async fn service_allocations(
    services: &[(PathBuf, String)],
    run: &str,
    duration: Duration,
) -> Result<Tally> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = JoinSet::new();
    for (i, (path, node)) in services.iter().enumerate() {
        let (path, node, run) = (path.clone(), node.clone(), run.to_string());
        tasks.spawn(async move {
            let mut tally = Tally::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let t = Instant::now();
                let request = ServiceRequest::Assign {
                    node: node.clone(),
                    handle: pod_handle(&format!("{run}-{i}-{n}")),
                    attrs: pod_attrs(i, n),
                    num_v4: 1,
                    num_v6: 0,
                    pools_v4: Vec::new(),
                    pools_v6: Vec::new(),
                };
                match service::request(&path, &request)
                    .await
                    .with_context(|| format!("allocation {n} on {node}"))?
                {
                    ServiceReply::Ips { .. } => {}
                    ServiceReply::Error { kind, message } => {
                        bail!("allocation {n} on {node}: {kind:?}: {message}")
                    }
                }
                tally.ok += 1;
                tally.latencies.push(t.elapsed());
            }
            Ok(tally)
        });
    }
    collect(tasks, started).await
}
