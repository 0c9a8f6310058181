//! The timed workloads: N writers creating keys, or compare-and-swapping their own key or one
//! shared key, through a `Backend` or straight through `etcd-client` (the raw rate).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use fabric_datastore::{Backend, CasOutcome};
use tokio::task::JoinSet;

/// What a workload does per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Create new keys, each writer under its own prefix.
    Create,
    /// Compare-and-swap updates, each writer on its own key (no conflicts).
    CasOwnKey,
    /// Compare-and-swap updates, all writers on one key; a conflict answer carries the current
    /// revision, so each attempt is one round trip.
    CasSharedKey,
}

impl Workload {
    /// All workloads, in table order.
    pub const ALL: [Workload; 3] = [
        Workload::Create,
        Workload::CasOwnKey,
        Workload::CasSharedKey,
    ];

    /// The table row label.
    pub fn label(self) -> &'static str {
        match self {
            Workload::Create => "create, a new key each time",
            Workload::CasOwnKey => "CAS update, one key per writer",
            Workload::CasSharedKey => "CAS update, one key shared by all writers",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::CasOwnKey => "own",
            Workload::CasSharedKey => "shared",
        }
    }
}

/// The counts of one writer, or of all writers merged.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Successful operations.
    pub ok: u64,
    /// Compare-and-swap attempts that lost to another writer.
    pub conflicts: u64,
    /// Latency of each successful operation.
    pub latencies: Vec<Duration>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.conflicts += other.conflicts;
        self.latencies.extend(other.latencies);
    }

    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Lost attempts per second.
    pub fn conflict_rate(&self) -> f64 {
        self.conflicts as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile (0..=1) of the successful operations' latency.
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i]
    }
}

/// A value shaped like a small Calico object (~200 bytes of JSON).
pub fn value(n: u64) -> String {
    format!(
        r#"{{"n":{n},"cidr":"10.0.1.0/26","affinity":"host:node-1","attributes":[{{"handle_id":"k8s-pod-network.0123456789abcdef","secondary":{{"node":"node-1","pod":"web-0"}}}}]}}"#
    )
}

/// Waits for every writer and merges their tallies.
async fn collect(mut writers: JoinSet<Result<Tally>>, started: Instant) -> Result<Tally> {
    let mut total = Tally::default();
    while let Some(done) = writers.join_next().await {
        total.merge(done.context("a writer task panicked")??);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Runs `workload` for `duration` with one writer per backend (each its own connection).
pub async fn run_backend(
    workload: Workload,
    backends: &[Arc<dyn Backend>],
    run: &str,
    duration: Duration,
) -> Result<Tally> {
    let shared = format!("/bench/{run}/{}", workload.tag());
    if workload == Workload::CasSharedKey {
        backends[0].create(&shared, &value(0)).await?;
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut writers = JoinSet::new();
    for (w, b) in backends.iter().enumerate() {
        let b = b.clone();
        let key = match workload {
            Workload::CasSharedKey => shared.clone(),
            _ => format!("/bench/{run}/{}/{w}", workload.tag()),
        };
        writers.spawn(async move { backend_writer(workload, b.as_ref(), &key, deadline).await });
    }
    collect(writers, started).await
}

async fn backend_writer(
    workload: Workload,
    b: &dyn Backend,
    key: &str,
    deadline: Instant,
) -> Result<Tally> {
    let mut tally = Tally::default();
    let mut expected = match workload {
        Workload::Create => 0,
        Workload::CasOwnKey => b.create(key, &value(0)).await?,
        Workload::CasSharedKey => {
            b.get(key)
                .await?
                .context("shared key missing")?
                .mod_revision
        }
    };
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let t = Instant::now();
        match workload {
            Workload::Create => {
                b.create(&format!("{key}/{n}"), &value(n)).await?;
            }
            Workload::CasOwnKey => {
                expected = b.update(key, &value(n), expected).await?;
            }
            Workload::CasSharedKey => match b.compare_and_swap(key, &value(n), expected).await? {
                CasOutcome::Swapped(rev) => expected = rev,
                CasOutcome::Current(Some(kv)) => {
                    expected = kv.mod_revision;
                    tally.conflicts += 1;
                    continue;
                }
                CasOutcome::Current(None) => bail!("shared key {key} vanished"),
            },
        }
        tally.ok += 1;
        tally.latencies.push(t.elapsed());
    }
    Ok(tally)
}

/// Runs `workload` for `duration` straight through etcd-client, one client per writer, with
/// the same transactions as the etcd Backend.
pub async fn run_raw(
    workload: Workload,
    clients: &[Client],
    run: &str,
    duration: Duration,
) -> Result<Tally> {
    let shared = format!("/raw/{run}/{}", workload.tag());
    if workload == Workload::CasSharedKey {
        clients[0]
            .kv_client()
            .put(shared.clone(), value(0), None)
            .await?;
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut writers = JoinSet::new();
    for (w, client) in clients.iter().enumerate() {
        let client = client.clone();
        let key = match workload {
            Workload::CasSharedKey => shared.clone(),
            _ => format!("/raw/{run}/{}/{w}", workload.tag()),
        };
        writers.spawn(async move { raw_writer(workload, client, key, deadline).await });
    }
    collect(writers, started).await
}

async fn raw_writer(
    workload: Workload,
    client: Client,
    key: String,
    deadline: Instant,
) -> Result<Tally> {
    let mut kv = client.kv_client();
    let mut tally = Tally::default();
    let mut expected = match workload {
        Workload::Create => 0,
        Workload::CasOwnKey => {
            let resp = kv.put(key.clone(), value(0), None).await?;
            resp.header().context("no header")?.revision()
        }
        Workload::CasSharedKey => {
            let resp = kv.get(key.clone(), None).await?;
            resp.kvs()
                .first()
                .context("shared key missing")?
                .mod_revision()
        }
    };
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let t = Instant::now();
        let txn = match workload {
            Workload::Create => {
                let k = format!("{key}/{n}");
                Txn::new()
                    .when([Compare::version(k.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(k, value(n), None)])
            }
            Workload::CasOwnKey | Workload::CasSharedKey => Txn::new()
                .when([Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    expected,
                )])
                .and_then([TxnOp::put(key.clone(), value(n), None)])
                .or_else([TxnOp::get(key.clone(), None)]),
        };
        let resp = kv.txn(txn).await?;
        if resp.succeeded() {
            expected = resp.header().context("no header")?.revision();
            tally.ok += 1;
            tally.latencies.push(t.elapsed());
            continue;
        }
        if workload == Workload::Create {
            bail!("raw create of an existing key under {key}");
        }
        tally.conflicts += 1;
        expected = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
                _ => None,
            })
            .context("the else branch returned no key")?;
    }
    Ok(tally)
}
