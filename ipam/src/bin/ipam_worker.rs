//! `fabric-ipam-worker`: one allocator process of the multi-process IPAM tests.
//!
//! Allocates `--count` pod addresses for `--node` (one `auto_assign` each, handle
//! `k8s-pod-network.<tag>-<i>`), writes a WorkloadEndpoint for each when `--endpoints` is given
//! (as the CNI plugin would), and after each allocation releases a random earlier one with
//! probability `--release-percent` (alternating release by handle and release by address with
//! the allocation's sequence number). Prints one line per outcome:
//!
//! ```text
//! kept <handle> <ip>
//! released <handle> <ip>
//! done allocated=<n> released=<n>
//! ```
//!
//! ```text
//! fabric-ipam-worker --sqlite /tmp/x.db --node n1 --count 100 --tag w1 --release-percent 20
//! fabric-ipam-worker --etcd http://127.0.0.1:2379 --prefix /t1 --node n1 --count 100 --tag w1
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use fabric_api::endpoint::WorkloadEndpointSpec;
use fabric_api::{Kind, ObjectMeta, WorkloadEndpoint};
use fabric_datastore::{Backend, EtcdBackend, SqliteBackend};
use fabric_ipam::handles::pod_handle;
use fabric_ipam::{AutoAssignArgs, Ipam, ReleaseRequest};

#[derive(Debug, Default)]
struct Args {
    sqlite: Option<String>,
    etcd: Option<String>,
    prefix: String,
    node: String,
    count: usize,
    tag: String,
    release_percent: u64,
    seed: u64,
    endpoints: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--endpoints" {
            args.endpoints = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let number = |v: &str| -> anyhow::Result<u64> {
            v.parse()
                .with_context(|| format!("{flag} {v:?} is not a number"))
        };
        match flag.as_str() {
            "--sqlite" => args.sqlite = Some(value),
            "--etcd" => args.etcd = Some(value),
            "--prefix" => args.prefix = value,
            "--node" => args.node = value,
            "--count" => args.count = usize::try_from(number(&value)?)?,
            "--tag" => args.tag = value,
            "--release-percent" => args.release_percent = number(&value)?.min(100),
            "--seed" => args.seed = number(&value)?,
            other => bail!(
                "unknown flag {other}; expected --sqlite, --etcd, --prefix, --node, --count, \
                 --tag, --release-percent, --seed, --endpoints"
            ),
        }
    }
    if args.node.is_empty() {
        bail!("--node NAME is required");
    }
    if args.tag.is_empty()
        || !args
            .tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        bail!("--tag is required: letters, digits and '-' (it is part of container IDs)");
    }
    Ok(args)
}

async fn backend(args: &Args) -> anyhow::Result<Arc<dyn Backend>> {
    match (&args.sqlite, &args.etcd) {
        (Some(path), None) => Ok(Arc::new(
            SqliteBackend::open(path).with_context(|| format!("opening sqlite {path}"))?,
        )),
        (None, Some(url)) => Ok(Arc::new(
            EtcdBackend::connect_with_prefix(std::slice::from_ref(url), &args.prefix)
                .await
                .with_context(|| format!("connecting to etcd at {url}"))?,
        )),
        _ => bail!("give exactly one of --sqlite PATH and --etcd URL"),
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Live {
    handle: String,
    pod: String,
    ip: IpAddr,
    sequence: u64,
}

fn endpoint(args: &Args, live: &Live) -> WorkloadEndpoint {
    let container = live.handle.trim_start_matches("k8s-pod-network.");
    WorkloadEndpoint {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        spec: WorkloadEndpointSpec {
            orchestrator: "k8s".into(),
            node: args.node.clone(),
            pod: live.pod.clone(),
            endpoint: "eth0".into(),
            container_id: container.into(),
            interface_name: format!("cali{container}").chars().take(15).collect(),
            ip_networks: vec![match live.ip {
                IpAddr::V4(a) => format!("{a}/32"),
                IpAddr::V6(a) => format!("{a}/128"),
            }],
            ..WorkloadEndpointSpec::default()
        },
    }
}

/// The endpoint's key and stored JSON (written straight through the backend, one round trip:
/// the test exercises IPAM, not the client's validation).
fn endpoint_record(args: &Args, live: &Live) -> anyhow::Result<(String, String)> {
    let mut ep = endpoint(args, live);
    let name = ep
        .spec
        .expected_name()
        .map_err(|(f, r)| anyhow::anyhow!("endpoint name: {f} {r}"))?;
    ep.metadata.name = Some(name.clone());
    let key =
        fabric_datastore::client::resource_key(Kind::WorkloadEndpoint, Some("default"), &name);
    Ok((key, serde_json::to_string(&ep)?))
}

async fn release(ipam: &Ipam, args: &Args, live: &Live, by_handle: bool) -> anyhow::Result<()> {
    if args.endpoints {
        let (key, _) = endpoint_record(args, live)?;
        ipam.client()
            .backend()
            .delete(&key, None)
            .await
            .with_context(|| format!("deleting endpoint {key}"))?;
    }
    if by_handle {
        let ips = ipam
            .release_by_handle(&live.handle)
            .await
            .with_context(|| format!("releasing handle {}", live.handle))?;
        if ips != vec![live.ip] {
            bail!(
                "handle {} held {ips:?}, expected [{}]",
                live.handle,
                live.ip
            );
        }
    } else {
        let out = ipam
            .release_ips(&[ReleaseRequest {
                ip: live.ip,
                sequence: Some(live.sequence),
                handle: Some(live.handle.clone()),
            }])
            .await
            .with_context(|| format!("releasing {}", live.ip))?;
        if out.released.len() != 1 {
            bail!("releasing {} released {:?}", live.ip, out.released);
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let ipam = Ipam::from_backend(backend(&args).await?);
    let mut rng =
        Rng((args.seed ^ u64::from(std::process::id())).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut live: Vec<Live> = Vec::new();
    let mut released = 0usize;
    for i in 0..args.count {
        let pod = format!("{}-{i}", args.tag);
        let handle = pod_handle(&pod);
        let got = ipam
            .auto_assign(AutoAssignArgs {
                node: args.node.clone(),
                handle: handle.clone(),
                attrs: BTreeMap::from([
                    ("pod".to_string(), pod.clone()),
                    ("namespace".to_string(), "default".to_string()),
                ]),
                num_v4: 1,
                ..AutoAssignArgs::default()
            })
            .await
            .with_context(|| format!("allocation {i} for node {}", args.node))?;
        let (ip, _) = *got.v4.first().context("auto_assign returned no address")?;
        let entry = Live {
            handle,
            pod,
            ip,
            sequence: got.sequences.get(&ip).copied().unwrap_or(0),
        };
        if args.endpoints {
            let (key, value) = endpoint_record(&args, &entry)?;
            ipam.client()
                .backend()
                .create(&key, &value)
                .await
                .with_context(|| format!("creating endpoint {key}"))?;
        }
        live.push(entry);
        if rng.next() % 100 < args.release_percent {
            let pick = usize::try_from(rng.next() % live.len() as u64).unwrap_or(0);
            let gone = live.swap_remove(pick);
            release(&ipam, &args, &gone, released.is_multiple_of(2)).await?;
            println!("released {} {}", gone.handle, gone.ip);
            released += 1;
        }
    }
    for l in &live {
        println!("kept {} {}", l.handle, l.ip);
    }
    println!("done allocated={} released={released}", args.count);
    Ok(())
}
