//! The `calico` plugin: ADD delegates IPAM to `ipam.type` (exec protocol), wires the pod
//! ([`crate::wiring`]) and writes its WorkloadEndpoint; a failure at any step undoes the
//! earlier ones (no veth, no allocation, no endpoint). DEL is idempotent and works without
//! the namespace. CHECK verifies the plumbing, the endpoint and (delegated) the addresses.

use std::net::IpAddr;
use std::path::PathBuf;

use fabric_datastore::Client;

use crate::config::NetConf;
use crate::delegate;
use crate::endpoint::{self, Workload};
use crate::env::{CniEnv, Command};
use crate::netns::{Netns, NetnsError};
use crate::spec::{CniError, CniResult, ErrorCode, Interface, IpConfig, Route, error_chain};
use crate::wiring::{self, GATEWAY_V4, GATEWAY_V6, WiringSpec};

/// Who the invocation is about, from `CNI_ARGS` and the configuration.
pub fn workload(conf: &NetConf, env: &CniEnv) -> Result<Workload, CniError> {
    let node = conf.node_name()?;
    let (orchestrator, pod) = match env.pod_name() {
        Some(p) => ("k8s", p.to_string()),
        None => ("cni", String::new()),
    };
    let w = Workload {
        node,
        orchestrator: orchestrator.to_string(),
        namespace: env.pod_namespace().unwrap_or("default").to_string(),
        pod,
        container_id: env.container_id.clone(),
        endpoint: env.ifname.clone(),
    };
    w.endpoint_name().map_err(|rule| {
        CniError::new(
            ErrorCode::InvalidEnvironment,
            format!("cannot name the workload endpoint: {rule}"),
            format!(
                "node {:?}, pod {:?} (CNI_ARGS K8S_POD_NAME), CNI_IFNAME {:?}",
                w.node, w.pod, w.endpoint
            ),
        )
    })?;
    Ok(w)
}

fn netns_error(e: NetnsError) -> CniError {
    match e {
        NetnsError::Missing { .. } => CniError::new(
            ErrorCode::UnknownContainer,
            e.to_string(),
            "CNI_NETNS names no namespace",
        ),
        other => CniError::plugin("cannot use the pod's network namespace", &other),
    }
}

fn ipam_plugin(conf: &NetConf, env: &CniEnv) -> Result<PathBuf, CniError> {
    let ipam = conf.require_ipam()?;
    delegate::find_plugin(&ipam.kind, &env.path)
}

/// Runs one `calico` command; ADD returns the result to print.
pub async fn run(
    conf: &NetConf,
    env: &CniEnv,
    connect: impl AsyncFnOnce() -> Result<Client, CniError>,
) -> Result<Option<CniResult>, CniError> {
    match env.command {
        Command::Add => add(conf, env, connect).await.map(Some),
        Command::Del => del(conf, env, connect).await.map(|()| None),
        Command::Check => check(conf, env, connect).await.map(|()| None),
        Command::Version => Ok(None),
    }
}

async fn add(
    conf: &NetConf,
    env: &CniEnv,
    connect: impl AsyncFnOnce() -> Result<Client, CniError>,
) -> Result<CniResult, CniError> {
    let plugin = ipam_plugin(conf, env)?;
    let workload = workload(conf, env)?;
    let netns = Netns::open(&env.netns).map_err(netns_error)?;
    let host_name = wiring::host_veth_name(&workload.veth_id());
    endpoint::precheck(&workload, &host_name, &conf.labels, &conf.name).map_err(|rules| {
        CniError::new(
            ErrorCode::InvalidNetworkConfig,
            format!("invalid workload endpoint: {rules}"),
            "labels come from args.cni.labels, names from CNI_ARGS and nodename",
        )
    })?;
    let client = connect().await?;

    let ipam_result = delegate::run(&plugin, Command::Add, &conf.raw)?
        .ok_or_else(|| CniError::new(ErrorCode::Plugin, "IPAM plugin returned no result", ""))?;
    let ips: Vec<IpAddr> = ipam_result.ips.iter().map(|i| i.address.addr()).collect();
    let undo_ipam = |why: &str| {
        if let Err(e) = delegate::run(&plugin, Command::Del, &conf.raw) {
            tracing::error!(error = %e, why, "could not release the addresses after a failed ADD");
        }
    };
    if ips.is_empty() {
        undo_ipam("no addresses");
        return Err(CniError::new(
            ErrorCode::Plugin,
            format!("IPAM plugin {} assigned no address", plugin.display()),
            "check ipam.assign_ipv4 / assign_ipv6 and the pools",
        ));
    }
    let spec = WiringSpec {
        host_name: &host_name,
        pod_ifname: &env.ifname,
        ips: &ips,
        mtu: conf.mtu,
    };
    let wired = match wiring::setup(&netns, &spec) {
        Ok(w) => w,
        Err(e) => {
            undo_ipam("wiring failed");
            return Err(CniError::plugin(
                format!("cannot wire the pod (veth {host_name})"),
                &e,
            ));
        }
    };
    let undo_all = |why: &str| {
        if let Err(e) = wiring::teardown(&env.netns, &env.ifname, &host_name, true) {
            tracing::error!(error = %e, why, "could not remove the veth after a failed ADD");
        }
        undo_ipam(why);
    };
    let wep = match endpoint::build(
        &workload,
        &host_name,
        &wired.pod_mac,
        &ips,
        &conf.labels,
        &conf.name,
    ) {
        Ok(w) => w,
        Err(rule) => {
            undo_all("endpoint naming failed");
            return Err(CniError::new(
                ErrorCode::InvalidEnvironment,
                format!("cannot name the workload endpoint: {rule}"),
                "",
            ));
        }
    };
    if let Err(e) = client.apply(wep).await {
        undo_all("endpoint write failed");
        let code = match e {
            fabric_datastore::ClientError::Invalid { .. } => ErrorCode::InvalidNetworkConfig,
            _ => ErrorCode::Plugin,
        };
        return Err(CniError::new(
            code,
            format!("cannot write the workload endpoint: {e}"),
            error_chain(&e),
        ));
    }
    tracing::info!(veth = host_name, ips = ?ips, node = workload.node, "pod wired");
    let mut result = CniResult {
        interfaces: vec![
            Interface {
                name: host_name.clone(),
                mac: "ee:ee:ee:ee:ee:ee".into(),
                sandbox: String::new(),
            },
            Interface {
                name: env.ifname.clone(),
                mac: wired.pod_mac,
                sandbox: env.netns.clone(),
            },
        ],
        ips: ips
            .iter()
            .map(|ip| IpConfig {
                address: (*ip).into(),
                gateway: None,
                interface: Some(1),
            })
            .collect(),
        routes: Vec::new(),
        dns: ipam_result.dns,
    };
    if ips.iter().any(IpAddr::is_ipv4) {
        result.routes.push(Route {
            dst: "0.0.0.0/0"
                .parse()
                .map_err(|_| CniError::new(ErrorCode::Plugin, "internal: default route", ""))?,
            gw: Some(IpAddr::V4(GATEWAY_V4)),
        });
    }
    if ips.iter().any(IpAddr::is_ipv6) {
        result.routes.push(Route {
            dst: "::/0"
                .parse()
                .map_err(|_| CniError::new(ErrorCode::Plugin, "internal: default route", ""))?,
            gw: Some(IpAddr::V6(GATEWAY_V6)),
        });
    }
    Ok(result)
}

async fn del(
    conf: &NetConf,
    env: &CniEnv,
    connect: impl AsyncFnOnce() -> Result<Client, CniError>,
) -> Result<(), CniError> {
    let plugin = ipam_plugin(conf, env)?;
    let workload = workload(conf, env)?;
    let client = connect().await?;
    let host_name = wiring::host_veth_name(&workload.veth_id());
    let stored = endpoint::stored(&client, &workload)
        .await
        .map_err(|e| CniError::plugin("cannot read the workload endpoint", &e))?;
    // A newer sandbox of the same pod owns the veth name now: leave its veth alone.
    let ours = stored.as_ref().is_none_or(|w| {
        w.spec.container_id.is_empty() || w.spec.container_id == workload.container_id
    });
    wiring::teardown(&env.netns, &env.ifname, &host_name, ours)
        .map_err(|e| CniError::plugin(format!("cannot remove the pod's veth {host_name}"), &e))?;
    delegate::run(&plugin, Command::Del, &conf.raw)?;
    endpoint::delete(&client, &workload)
        .await
        .map_err(|e| CniError::plugin("cannot delete the workload endpoint", &e))?;
    tracing::info!(
        veth = host_name,
        container = workload.container_id,
        "pod removed"
    );
    Ok(())
}

async fn check(
    conf: &NetConf,
    env: &CniEnv,
    connect: impl AsyncFnOnce() -> Result<Client, CniError>,
) -> Result<(), CniError> {
    let plugin = ipam_plugin(conf, env)?;
    let prev = conf.prev_result.as_ref().ok_or_else(|| {
        CniError::invalid_config("prevResult", "(absent)", "is required for CHECK")
    })?;
    let workload = workload(conf, env)?;
    let netns = Netns::open(&env.netns).map_err(netns_error)?;
    let client = connect().await?;
    let host_name = wiring::host_veth_name(&workload.veth_id());
    let ips: Vec<IpAddr> = prev.ips.iter().map(|i| i.address.addr()).collect();
    wiring::check(
        &netns,
        &WiringSpec {
            host_name: &host_name,
            pod_ifname: &env.ifname,
            ips: &ips,
            mtu: conf.mtu,
        },
    )
    .map_err(|e| CniError::plugin("the pod's plumbing is not as ADD left it", &e))?;
    let wep = endpoint::stored(&client, &workload)
        .await
        .map_err(|e| CniError::plugin("cannot read the workload endpoint", &e))?
        .ok_or_else(|| {
            CniError::new(
                ErrorCode::Plugin,
                "the workload endpoint is missing",
                workload.endpoint_name().unwrap_or_default(),
            )
        })?;
    let want: Vec<String> = ips
        .iter()
        .map(|ip| ipnet::IpNet::from(*ip).to_string())
        .collect();
    if wep.spec.container_id != workload.container_id
        || wep.spec.interface_name != host_name
        || wep.spec.ip_networks != want
    {
        return Err(CniError::new(
            ErrorCode::Plugin,
            "the workload endpoint does not match the pod",
            format!(
                "stored containerID {}, interface {}, ipNetworks {:?}; expected {}, {host_name}, {want:?}",
                wep.spec.container_id,
                wep.spec.interface_name,
                wep.spec.ip_networks,
                workload.container_id
            ),
        ));
    }
    delegate::run(&plugin, Command::Check, &conf.raw)?;
    Ok(())
}
