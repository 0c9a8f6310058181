//! The node-local IPAM service: calico-node serves its node's allocations on a Unix socket,
//! so the short-lived `calico-ipam` CNI process asks a long-lived allocator (inputs watched,
//! the node's blocks cached, one datastore connection) instead of opening its own datastore
//! connection and reading pools, configuration, affinities and blocks for every pod.
//!
//! The protocol is one JSON object per line each way; a connection may carry several
//! requests. The service only allocates for its own node: a request naming another node is
//! refused with [`ServiceErrorKind::WrongNode`], and the client then falls back to the
//! datastore. Each request is exactly the call the plugin would make itself, so a request
//! that dies with the connection is retried safely by the plugin (ADD is idempotent by
//! handle).
//!
//! The service's writes (assign, release) run one at a time, like the host-wide IPAM lock of
//! Calico's plugin: every request of a node changes the same few blocks, so concurrent ones
//! would only make each other's compare-and-swap fail and retry. Assignments that queue while
//! a write runs are served together by the next turn: a burst of pods shares one block
//! transaction (see `batch`). Reads run at once.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::types::{AssignedIps, AutoAssignArgs, IntendedUse};
use crate::{Ipam, IpamError};

/// Where calico-node serves its IPAM service unless told otherwise (`CALICO_IPAM_SOCKET`).
pub const DEFAULT_SOCKET: &str = "/var/run/calico/ipam.sock";

/// The longest request line the service reads (a request is a few hundred bytes).
const MAX_LINE: usize = 64 * 1024;

/// How long a client waits for the service's answer before it gives up on the service.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServiceRequest {
    /// A pod's addresses: those the handle already holds (a retried ADD), else new ones.
    Assign {
        /// The node (must be the service's).
        node: String,
        /// The handle, `k8s-pod-network.<containerID>`.
        handle: String,
        /// Owner attributes (`pod`, `namespace`).
        #[serde(default)]
        attrs: BTreeMap<String, String>,
        /// IPv4 addresses wanted.
        num_v4: usize,
        /// IPv6 addresses wanted.
        num_v6: usize,
        /// IPv4 pools (CNI `ipv4_pools`).
        #[serde(default)]
        pools_v4: Vec<String>,
        /// IPv6 pools (CNI `ipv6_pools`).
        #[serde(default)]
        pools_v6: Vec<String>,
    },
    /// Releases every address of a handle (idempotent).
    ReleaseHandle {
        /// The node (must be the service's).
        node: String,
        /// The handle.
        handle: String,
    },
    /// The addresses a handle holds.
    IpsByHandle {
        /// The node (must be the service's).
        node: String,
        /// The handle.
        handle: String,
    },
}

impl ServiceRequest {
    fn node(&self) -> &str {
        match self {
            ServiceRequest::Assign { node, .. }
            | ServiceRequest::ReleaseHandle { node, .. }
            | ServiceRequest::IpsByHandle { node, .. } => node,
        }
    }
}

/// What a request failed on, for the caller to map to its own error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceErrorKind {
    /// The request breaks a rule (a field, a pool name); nothing was written.
    InvalidArgument,
    /// No pool can serve the request.
    NoPool,
    /// The pools have no free address for the node.
    Exhausted,
    /// The service allocates for another node: ask the datastore directly.
    WrongNode,
    /// The request line did not decode.
    BadRequest,
    /// Anything else (the datastore, conflicts).
    Other,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ServiceReply {
    /// The addresses assigned, released or held.
    Ips {
        /// The addresses.
        ips: Vec<IpAddr>,
        /// For `assign`: the handle already held them (a retried ADD).
        #[serde(default)]
        held: bool,
    },
    /// The request failed; nothing was changed by it.
    Error {
        /// What kind of failure.
        kind: ServiceErrorKind,
        /// The error, for humans.
        message: String,
    },
}

fn kind_of(e: &IpamError) -> ServiceErrorKind {
    match e {
        IpamError::InvalidArgument { .. } => ServiceErrorKind::InvalidArgument,
        IpamError::NoPool { .. } => ServiceErrorKind::NoPool,
        IpamError::Exhausted { .. } => ServiceErrorKind::Exhausted,
        _ => ServiceErrorKind::Other,
    }
}

fn failed(e: &IpamError) -> ServiceReply {
    ServiceReply::Error {
        kind: kind_of(e),
        message: fabric_api::error_chain(e),
    }
}

/// What every connection of one service shares.
#[derive(Debug)]
struct Served {
    ipam: Ipam,
    node: String,
    /// Held by each write for its whole run: one node's writes go one at a time (FIFO).
    writes: tokio::sync::Mutex<()>,
    /// Assignments waiting for a turn; the next turn serves them all.
    queue: std::sync::Mutex<Vec<Queued>>,
}

/// An assignment waiting for a turn, and where its result goes.
#[derive(Debug)]
struct Queued {
    args: AutoAssignArgs,
    reply: tokio::sync::oneshot::Sender<Result<AssignedIps, IpamError>>,
}

/// Queues an assignment and waits for its turn. The request that gets the turn takes every
/// queued request with it ([`Ipam::auto_assign_batch`]): a burst of pods shares a few
/// transactions. `None` if the request vanished from the queue (never expected).
async fn assign_in_turn(
    served: &Served,
    args: AutoAssignArgs,
) -> Option<Result<AssignedIps, IpamError>> {
    let (reply, mut answer) = tokio::sync::oneshot::channel();
    lock(&served.queue).push(Queued { args, reply });
    let _turn = served.writes.lock().await;
    if let Ok(result) = answer.try_recv() {
        // An earlier turn took this request along.
        return Some(result);
    }
    let (args, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut *lock(&served.queue))
        .into_iter()
        .map(|q| (q.args, q.reply))
        .unzip();
    let results = served.ipam.auto_assign_batch(&args).await;
    for (reply, result) in replies.into_iter().zip(results) {
        // A receiver that is gone belongs to a connection task that ended.
        let _ = reply.send(result);
    }
    answer.try_recv().ok()
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Answers one request for the served node.
async fn handle_request(served: &Served, request: ServiceRequest) -> ServiceReply {
    let (ipam, node) = (&served.ipam, served.node.as_str());
    if request.node() != node {
        return ServiceReply::Error {
            kind: ServiceErrorKind::WrongNode,
            message: format!(
                "this IPAM service allocates for node {node:?}, not {:?}",
                request.node()
            ),
        };
    }
    match request {
        ServiceRequest::Assign {
            node,
            handle,
            attrs,
            num_v4,
            num_v6,
            pools_v4,
            pools_v6,
        } => {
            let args = AutoAssignArgs {
                node,
                handle,
                attrs,
                num_v4,
                num_v6,
                pools_v4,
                pools_v6,
                intended_use: IntendedUse::Workload,
                new_handle: true,
                ..AutoAssignArgs::default()
            };
            match assign_in_turn(served, args).await {
                Some(Ok(got)) => ServiceReply::Ips {
                    ips: got.all().collect(),
                    held: false,
                },
                // A retried ADD: what the handle holds.
                Some(Err(IpamError::HandleInUse { handle })) => {
                    match ipam.ips_by_handle(&handle).await {
                        Ok(ips) => ServiceReply::Ips { ips, held: true },
                        Err(e) => failed(&e),
                    }
                }
                Some(Err(e)) => failed(&e),
                None => ServiceReply::Error {
                    kind: ServiceErrorKind::Other,
                    message: "the request was lost from the service's queue".into(),
                },
            }
        }
        ServiceRequest::ReleaseHandle { handle, .. } => {
            let _turn = served.writes.lock().await;
            match ipam.release_by_handle(&handle).await {
                Ok(ips) => ServiceReply::Ips { ips, held: false },
                Err(e) => failed(&e),
            }
        }
        ServiceRequest::IpsByHandle { handle, .. } => match ipam.ips_by_handle(&handle).await {
            Ok(ips) => ServiceReply::Ips { ips, held: false },
            Err(e) => failed(&e),
        },
    }
}

/// A running service; the socket file is removed when it is dropped.
#[derive(Debug)]
pub struct Service {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    /// Serves `node`'s allocations with `ipam` on a Unix socket at `path` (a stale socket
    /// file there is replaced; the directory is created; the socket is for root only).
    /// Starts watching the IPAM inputs first, so requests need no read of them.
    pub async fn start(ipam: Ipam, node: &str, path: &Path) -> Result<Service, ServiceError> {
        ipam.watch_inputs().await.map_err(ServiceError::Inputs)?;
        let io = |source| ServiceError::Socket {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        tracing::info!(path = %path.display(), node, "IPAM service listening");
        let served = Arc::new(Served {
            ipam,
            node: node.to_string(),
            writes: tokio::sync::Mutex::new(()),
            queue: std::sync::Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(accept(listener, served));
        Ok(Service {
            path: path.to_path_buf(),
            task,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept(listener: UnixListener, served: Arc<Served>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let served = served.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_connection(stream, &served).await {
                        tracing::debug!(error = %e, "IPAM service connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "IPAM service cannot accept; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(stream: UnixStream, served: &Served) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let reply = if n > MAX_LINE {
            ServiceReply::Error {
                kind: ServiceErrorKind::BadRequest,
                message: format!("request line longer than {MAX_LINE} bytes"),
            }
        } else {
            match serde_json::from_str::<ServiceRequest>(&line) {
                Ok(request) => handle_request(served, request).await,
                Err(e) => ServiceReply::Error {
                    kind: ServiceErrorKind::BadRequest,
                    message: format!("request does not decode: {e}"),
                },
            }
        };
        let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
        out.push(b'\n');
        write.write_all(&out).await?;
        if n > MAX_LINE {
            return Ok(());
        }
    }
}

/// Why the service could not start, or a client could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The IPAM inputs watch did not start.
    #[error("cannot watch the IPAM inputs")]
    Inputs(#[source] IpamError),
    /// The socket could not be set up, reached, written or read.
    #[error("IPAM service socket {path}")]
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The service did not answer in time.
    #[error("IPAM service at {path} did not answer within {timeout:?}")]
    Timeout {
        /// The socket's path.
        path: PathBuf,
        /// How long the client waited.
        timeout: Duration,
    },
    /// The answer did not decode.
    #[error("IPAM service at {path} sent an answer that does not decode")]
    BadReply {
        /// The socket's path.
        path: PathBuf,
        /// The decode error.
        #[source]
        source: serde_json::Error,
    },
}

/// Sends one request to the service at `path` on a new connection and returns its answer.
pub async fn request(path: &Path, request: &ServiceRequest) -> Result<ServiceReply, ServiceError> {
    let io = |source| ServiceError::Socket {
        path: path.to_path_buf(),
        source,
    };
    let exchange = async {
        let mut stream = UnixStream::connect(path).await.map_err(io)?;
        let mut line = serde_json::to_vec(request).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        stream.write_all(&line).await.map_err(io)?;
        let mut reader = BufReader::new(stream);
        let mut answer = String::new();
        let n = reader.read_line(&mut answer).await.map_err(io)?;
        if n == 0 {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the service closed the connection without an answer",
            )));
        }
        serde_json::from_str(&answer).map_err(|source| ServiceError::BadReply {
            path: path.to_path_buf(),
            source,
        })
    };
    tokio::time::timeout(CLIENT_TIMEOUT, exchange)
        .await
        .map_err(|_| ServiceError::Timeout {
            path: path.to_path_buf(),
            timeout: CLIENT_TIMEOUT,
        })?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_and_replies_use_the_documented_json() {
        let r: ServiceRequest = serde_json::from_str(
            r#"{"op":"assign","node":"n1","handle":"k8s-pod-network.c1","num_v4":1,"num_v6":0}"#,
        )
        .unwrap();
        assert_eq!(r.node(), "n1");
        let reply = ServiceReply::Error {
            kind: ServiceErrorKind::WrongNode,
            message: "m".into(),
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"error":{"kind":"wrong_node","message":"m"}}"#
        );
        let ips = ServiceReply::Ips {
            ips: vec!["10.0.0.1".parse().unwrap()],
            held: false,
        };
        assert_eq!(
            serde_json::to_string(&ips).unwrap(),
            r#"{"ips":{"ips":["10.0.0.1"],"held":false}}"#
        );
    }

    #[test]
    fn a_request_with_an_unknown_field_does_not_decode() {
        let r = serde_json::from_str::<ServiceRequest>(
            r#"{"op":"release_handle","node":"n1","handle":"h","extra":1}"#,
        );
        assert!(r.is_err());
    }
}
