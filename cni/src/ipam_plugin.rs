//! The `calico-ipam` plugin: ADD auto-assigns (one IPv4 and/or one IPv6 address, as the
//! configuration asks) under the handle `k8s-pod-network.<containerID>`, DEL releases by that
//! handle (idempotent), CHECK verifies the handle still holds the addresses of `prevResult`.

use std::collections::BTreeMap;

use fabric_ipam::{AutoAssignArgs, IntendedUse, Ipam, handles};
use ipnet::IpNet;

use crate::config::NetConf;
use crate::env::{CniEnv, Command};
use crate::spec::{CniError, CniResult, ErrorCode, IpConfig, error_chain};

fn ipam_error(what: &str, e: &fabric_ipam::IpamError) -> CniError {
    use fabric_ipam::IpamError as E;
    let code = match e {
        E::InvalidArgument { .. } | E::NoPool { .. } => ErrorCode::InvalidNetworkConfig,
        _ => ErrorCode::Plugin,
    };
    CniError::new(code, format!("{what}: {e}"), error_chain(e))
}

/// Runs one `calico-ipam` command; ADD returns the result to print.
pub async fn run(conf: &NetConf, env: &CniEnv, ipam: &Ipam) -> Result<Option<CniResult>, CniError> {
    let handle = handles::pod_handle(&env.container_id);
    match env.command {
        Command::Add => add(conf, env, ipam, &handle).await.map(Some),
        Command::Del => {
            let released = ipam
                .release_by_handle(&handle)
                .await
                .map_err(|e| ipam_error("releasing the pod's addresses", &e))?;
            tracing::info!(handle, released = ?released, "released addresses");
            Ok(None)
        }
        Command::Check => check(conf, ipam, &handle).await.map(|()| None),
        Command::Version => Ok(None),
    }
}

async fn add(
    conf: &NetConf,
    env: &CniEnv,
    ipam: &Ipam,
    handle: &str,
) -> Result<CniResult, CniError> {
    let settings = conf.require_ipam()?;
    if !settings.assign_ipv4 && !settings.assign_ipv6 {
        return Err(CniError::invalid_config(
            "ipam.assign_ipv4",
            "\"false\"",
            "and ipam.assign_ipv6 are both false: nothing to assign",
        ));
    }
    let node = conf.node_name()?;
    // A retried ADD for the same container gets what it already holds.
    let held = ipam
        .ips_by_handle(handle)
        .await
        .map_err(|e| ipam_error("reading the pod's handle", &e))?;
    let ips: Vec<std::net::IpAddr> = if held.is_empty() {
        let mut attrs = BTreeMap::new();
        if let Some(pod) = env.pod_name() {
            attrs.insert("pod".to_string(), pod.to_string());
        }
        if let Some(ns) = env.pod_namespace() {
            attrs.insert("namespace".to_string(), ns.to_string());
        }
        let got = ipam
            .auto_assign(AutoAssignArgs {
                node: node.clone(),
                handle: handle.to_string(),
                attrs,
                num_v4: usize::from(settings.assign_ipv4),
                num_v6: usize::from(settings.assign_ipv6),
                pools_v4: settings.ipv4_pools.clone(),
                pools_v6: settings.ipv6_pools.clone(),
                intended_use: IntendedUse::Workload,
                ..AutoAssignArgs::default()
            })
            .await
            .map_err(|e| ipam_error("assigning addresses", &e))?;
        got.all().collect()
    } else {
        tracing::info!(handle, ips = ?held, "handle already holds addresses; returning them");
        held
    };
    tracing::info!(handle, node, ips = ?ips, "assigned addresses");
    Ok(CniResult {
        ips: ips
            .into_iter()
            .map(|ip| IpConfig {
                address: IpNet::from(ip),
                gateway: None,
                interface: None,
            })
            .collect(),
        ..CniResult::default()
    })
}

async fn check(conf: &NetConf, ipam: &Ipam, handle: &str) -> Result<(), CniError> {
    let held = ipam
        .ips_by_handle(handle)
        .await
        .map_err(|e| ipam_error("reading the pod's handle", &e))?;
    if held.is_empty() {
        return Err(CniError::new(
            ErrorCode::Plugin,
            format!("handle {handle} holds no addresses"),
            "the pod's addresses were released or never assigned",
        ));
    }
    if let Some(prev) = &conf.prev_result {
        for ip in &prev.ips {
            if !held.contains(&ip.address.addr()) {
                return Err(CniError::new(
                    ErrorCode::Plugin,
                    format!("{} is not allocated to handle {handle}", ip.address.addr()),
                    format!("prevResult lists it; the handle holds {held:?}"),
                ));
            }
        }
    }
    Ok(())
}
