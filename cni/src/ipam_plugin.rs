//! The `calico-ipam` plugin: ADD auto-assigns (one IPv4 and/or one IPv6 address, as the
//! configuration asks) under the handle `k8s-pod-network.<containerID>`, DEL releases by that
//! handle (idempotent), CHECK verifies the handle still holds the addresses of `prevResult`.
//!
//! Each command goes to calico-node's IPAM service on the node first (a Unix socket: see
//! `fabric_ipam::service`), which allocates with its inputs watched and the node's blocks
//! cached; only when there is no service (no socket, nothing listening, another node's
//! service, a broken answer) does the plugin open the datastore and do the same itself. Then
//! ADD and DEL hold Calico's host-wide IPAM lock (`ipam_lock_file`) while they write, so
//! plugin runs on one host take turns instead of failing each other's compare-and-swap of
//! the node's block.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use fabric_datastore::Client;
use fabric_ipam::service::{self, ServiceErrorKind, ServiceReply, ServiceRequest};
use fabric_ipam::{AutoAssignArgs, IntendedUse, Ipam, handles};
use ipnet::IpNet;

use crate::config::NetConf;
use crate::env::{CniEnv, Command};
use crate::spec::{CniError, CniResult, ErrorCode, IpConfig, error_chain};

/// The environment variable naming the IPAM service socket (as calico-node reads it).
pub const IPAM_SOCKET_ENV: &str = "CALICO_IPAM_SOCKET";

fn ipam_error(what: &str, e: &fabric_ipam::IpamError) -> CniError {
    use fabric_ipam::IpamError as E;
    let code = match e {
        E::InvalidArgument { .. } | E::NoPool { .. } => ErrorCode::InvalidNetworkConfig,
        _ => ErrorCode::Plugin,
    };
    CniError::new(code, format!("{what}: {e}"), error_chain(e))
}

/// One command, checked and ready for either path.
enum Op {
    Add(AutoAssignArgs),
    Del,
    Check,
}

/// Where the IPAM service is, if it is to be asked: the configuration's `ipam_socket`, else
/// `CALICO_IPAM_SOCKET`, else the default path; `none` (or empty) turns it off.
fn service_socket(conf: &NetConf, lookup: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let chosen = conf
        .ipam_socket
        .clone()
        .or_else(|| lookup(IPAM_SOCKET_ENV))
        .unwrap_or_else(|| service::DEFAULT_SOCKET.to_string());
    let chosen = chosen.trim();
    if chosen.is_empty() || chosen.eq_ignore_ascii_case("none") {
        return None;
    }
    Some(PathBuf::from(chosen))
}

/// Runs one `calico-ipam` command; ADD returns the result to print. `connect` opens the
/// datastore, only when the IPAM service cannot answer.
pub async fn run(
    conf: &NetConf,
    env: &CniEnv,
    connect: impl AsyncFnOnce() -> Result<Client, CniError>,
) -> Result<Option<CniResult>, CniError> {
    let handle = handles::pod_handle(&env.container_id);
    let op = match env.command {
        Command::Add => Op::Add(add_args(conf, env, &handle)?),
        Command::Del => Op::Del,
        Command::Check => Op::Check,
        Command::Version => return Ok(None),
    };
    if let Some(path) = service_socket(conf, |n| std::env::var(n).ok())
        && path.exists()
    {
        match conf.node_name() {
            Ok(node) => {
                if let Some(done) = via_service(conf, &op, &path, &node, &handle).await {
                    return done;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e.msg, "no node name for the IPAM service; using the datastore")
            }
        }
    }
    let _host_lock = match op {
        Op::Add(_) | Op::Del => host_lock(&conf.ipam_lock_file).await,
        Op::Check => None,
    };
    let ipam = Ipam::new(connect().await?);
    match op {
        Op::Add(args) => add_direct(&ipam, args).await.map(Some),
        Op::Del => {
            let released = ipam
                .release_by_handle(&handle)
                .await
                .map_err(|e| ipam_error("releasing the pod's addresses", &e))?;
            tracing::info!(handle, released = ?released, "released addresses");
            Ok(None)
        }
        Op::Check => {
            let held = ipam
                .ips_by_handle(&handle)
                .await
                .map_err(|e| ipam_error("reading the pod's handle", &e))?;
            check(conf, &handle, &held).map(|()| None)
        }
    }
}

/// Takes the host-wide IPAM lock (an exclusive `flock` of `path`, created with its directory
/// if absent), waiting for it; released when the file is dropped or the process ends. Best
/// effort, as in Calico: a lock file that cannot be used is logged and the command goes on.
async fn host_lock(path: &Path) -> Option<std::fs::File> {
    let at = path.to_path_buf();
    let locked = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        if let Some(dir) = at.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&at)?;
        file.lock()?;
        Ok(file)
    })
    .await;
    match locked {
        Ok(Ok(file)) => Some(file),
        Ok(Err(e)) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot take the host-wide IPAM lock; going on without it");
            None
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the host-wide IPAM lock task failed; going on without it");
            None
        }
    }
}

/// The command through the IPAM service; `None` when the service cannot answer it (the
/// caller then uses the datastore).
async fn via_service(
    conf: &NetConf,
    op: &Op,
    path: &Path,
    node: &str,
    handle: &str,
) -> Option<Result<Option<CniResult>, CniError>> {
    let (request, what) = match op {
        Op::Add(args) => (
            ServiceRequest::Assign {
                node: node.to_string(),
                handle: handle.to_string(),
                attrs: args.attrs.clone(),
                num_v4: args.num_v4,
                num_v6: args.num_v6,
                pools_v4: args.pools_v4.clone(),
                pools_v6: args.pools_v6.clone(),
            },
            "assigning addresses",
        ),
        Op::Del => (
            ServiceRequest::ReleaseHandle {
                node: node.to_string(),
                handle: handle.to_string(),
            },
            "releasing the pod's addresses",
        ),
        Op::Check => (
            ServiceRequest::IpsByHandle {
                node: node.to_string(),
                handle: handle.to_string(),
            },
            "reading the pod's handle",
        ),
    };
    let reply = match service::request(path, &request).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::warn!(socket = %path.display(), error = %error_chain(&e), "IPAM service unavailable; using the datastore");
            return None;
        }
    };
    let ips = match reply {
        ServiceReply::Ips { ips, held } => {
            tracing::info!(handle, node, ips = ?ips, held, via = "ipam-service", "{what}");
            ips
        }
        ServiceReply::Error {
            kind: ServiceErrorKind::WrongNode | ServiceErrorKind::BadRequest,
            message,
        } => {
            tracing::warn!(socket = %path.display(), message, "IPAM service refused the request; using the datastore");
            return None;
        }
        ServiceReply::Error { kind, message } => {
            let code = match kind {
                ServiceErrorKind::InvalidArgument | ServiceErrorKind::NoPool => {
                    ErrorCode::InvalidNetworkConfig
                }
                _ => ErrorCode::Plugin,
            };
            return Some(Err(CniError::new(
                code,
                format!("{what}: {message}"),
                message,
            )));
        }
    };
    Some(match op {
        Op::Add(_) => Ok(Some(result_of(ips))),
        Op::Del => Ok(None),
        Op::Check => check(conf, handle, &ips).map(|()| None),
    })
}

fn add_args(conf: &NetConf, env: &CniEnv, handle: &str) -> Result<AutoAssignArgs, CniError> {
    let settings = conf.require_ipam()?;
    if !settings.assign_ipv4 && !settings.assign_ipv6 {
        return Err(CniError::invalid_config(
            "ipam.assign_ipv4",
            "\"false\"",
            "and ipam.assign_ipv6 are both false: nothing to assign",
        ));
    }
    let mut attrs = BTreeMap::new();
    if let Some(pod) = env.pod_name() {
        attrs.insert("pod".to_string(), pod.to_string());
    }
    if let Some(ns) = env.pod_namespace() {
        attrs.insert("namespace".to_string(), ns.to_string());
    }
    Ok(AutoAssignArgs {
        node: conf.node_name()?,
        handle: handle.to_string(),
        attrs,
        num_v4: usize::from(settings.assign_ipv4),
        num_v6: usize::from(settings.assign_ipv6),
        pools_v4: settings.ipv4_pools.clone(),
        pools_v6: settings.ipv6_pools.clone(),
        intended_use: IntendedUse::Workload,
        new_handle: true,
        ..AutoAssignArgs::default()
    })
}

async fn add_direct(ipam: &Ipam, args: AutoAssignArgs) -> Result<CniResult, CniError> {
    let (handle, node) = (args.handle.clone(), args.node.clone());
    let ips: Vec<IpAddr> = match ipam.auto_assign(args).await {
        Ok(got) => {
            let ips: Vec<IpAddr> = got.all().collect();
            tracing::info!(handle, node, ips = ?ips, "assigned addresses");
            ips
        }
        // A retried ADD for the same container gets what it already holds.
        Err(fabric_ipam::IpamError::HandleInUse { .. }) => {
            let held = ipam
                .ips_by_handle(&handle)
                .await
                .map_err(|e| ipam_error("reading the pod's handle", &e))?;
            tracing::info!(handle, ips = ?held, "handle already holds addresses; returning them");
            held
        }
        Err(e) => return Err(ipam_error("assigning addresses", &e)),
    };
    Ok(result_of(ips))
}

fn result_of(ips: Vec<IpAddr>) -> CniResult {
    CniResult {
        ips: ips
            .into_iter()
            .map(|ip| IpConfig {
                address: IpNet::from(ip),
                gateway: None,
                interface: None,
            })
            .collect(),
        ..CniResult::default()
    }
}

fn check(conf: &NetConf, handle: &str, held: &[IpAddr]) -> Result<(), CniError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn conf(extra: &str) -> NetConf {
        let text = format!(
            r#"{{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico-ipam"{extra},"ipam":{{"type":"calico-ipam"}}}}"#
        );
        NetConf::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_config_then_the_environment_then_the_default_names_the_service_socket() {
        fn env(v: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
            move |n| {
                (n == IPAM_SOCKET_ENV)
                    .then_some(v)
                    .flatten()
                    .map(str::to_string)
            }
        }
        assert_eq!(
            service_socket(
                &conf(r#","ipam_socket":"/run/a.sock""#),
                env(Some("/run/b.sock"))
            ),
            Some(PathBuf::from("/run/a.sock"))
        );
        assert_eq!(
            service_socket(&conf(""), env(Some("/run/b.sock"))),
            Some(PathBuf::from("/run/b.sock"))
        );
        assert_eq!(
            service_socket(&conf(""), env(None)),
            Some(PathBuf::from(service::DEFAULT_SOCKET))
        );
    }

    #[test]
    fn none_turns_the_service_off() {
        let none = |_: &str| None;
        assert_eq!(
            service_socket(&conf(r#","ipam_socket":"none""#), none),
            None
        );
        let env_none = |n: &str| (n == IPAM_SOCKET_ENV).then(|| "none".to_string());
        assert_eq!(service_socket(&conf(""), env_none), None);
    }
}
