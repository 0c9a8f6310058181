//! The local servers around the speaker task: the Unix status socket (JSON lines, see
//! [`crate::status::protocol`]) and the Prometheus `/metrics` endpoint. Both are bound before
//! anything changes, so a reconfiguration that cannot bind them is refused whole.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::{DaemonError, DaemonHandle};
use crate::config::Config;
use crate::status::protocol::{MAX_REQUEST_LEN, Request, Response};

/// Sockets bound but not yet served.
#[derive(Debug, Default)]
pub(crate) struct Servers {
    status: Option<(PathBuf, UnixListener)>,
    metrics: Option<(SocketAddr, TcpListener)>,
}

/// Sockets bound for a reconfiguration: `None` = unchanged, `Some(None)` = remove.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    status: Option<Option<(PathBuf, UnixListener)>>,
    metrics: Option<Option<(SocketAddr, TcpListener)>>,
}

/// Servers being served.
#[derive(Debug, Default)]
pub(crate) struct Running {
    status: Option<(PathBuf, JoinHandle<()>)>,
    metrics: Option<JoinHandle<()>>,
}

/// Binds the status socket, replacing a stale socket file but never a live one.
fn bind_status(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::Bind {
        what: format!("the status socket {}", path.display()),
        source,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another process is serving this socket",
            )));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    UnixListener::bind(path).map_err(err)
}

async fn bind_metrics(addr: SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind {
            what: format!("the metrics address {addr}"),
            source,
        })
}

impl Servers {
    /// Binds what `config` asks for.
    pub(crate) async fn bind(config: &Config) -> Result<Servers, DaemonError> {
        let status = match &config.status_socket {
            Some(p) => Some((p.clone(), bind_status(p)?)),
            None => None,
        };
        let metrics = match config.metrics_address {
            Some(a) => Some((a, bind_metrics(a).await?)),
            None => None,
        };
        Ok(Servers { status, metrics })
    }

    /// Binds what changed between `old` and `new`.
    pub(crate) async fn rebind(old: &Config, new: &Config) -> Result<Staged, DaemonError> {
        let mut staged = Staged::default();
        if old.status_socket != new.status_socket {
            staged.status = Some(match &new.status_socket {
                Some(p) => Some((p.clone(), bind_status(p)?)),
                None => None,
            });
        }
        if old.metrics_address != new.metrics_address {
            staged.metrics = Some(match new.metrics_address {
                Some(a) => Some((a, bind_metrics(a).await?)),
                None => None,
            });
        }
        Ok(staged)
    }

    /// Starts serving.
    pub(crate) fn start(self, handle: DaemonHandle) -> Running {
        let mut running = Running::default();
        running.replace(
            Staged {
                status: Some(self.status),
                metrics: Some(self.metrics),
            },
            handle,
        );
        running
    }
}

impl Staged {
    /// Drops what was bound (a refused reconfiguration), removing a new socket file.
    pub(crate) fn discard(self) {
        if let Some(Some((path, listener))) = self.status {
            drop(listener);
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Running {
    /// Swaps in what was staged.
    pub(crate) fn replace(&mut self, staged: Staged, handle: DaemonHandle) {
        if let Some(status) = staged.status {
            if let Some((path, task)) = self.status.take() {
                task.abort();
                let _ = std::fs::remove_file(path);
            }
            self.status = status.map(|(path, l)| {
                tracing::info!(path = %path.display(), "status socket ready");
                (path, tokio::spawn(serve_status(l, handle.clone())))
            });
        }
        if let Some(metrics) = staged.metrics {
            if let Some(task) = self.metrics.take() {
                task.abort();
            }
            self.metrics = metrics.map(|(addr, l)| {
                tracing::info!(%addr, "metrics endpoint ready");
                tokio::spawn(serve_metrics(l, handle.clone()))
            });
        }
    }

    /// Stops serving and removes the socket file.
    pub(crate) fn stop(self) {
        if let Some((path, task)) = self.status {
            task.abort();
            let _ = std::fs::remove_file(path);
        }
        if let Some(task) = self.metrics {
            task.abort();
        }
    }
}

pub(crate) use fabric_api::error_chain;

async fn serve_status(listener: UnixListener, handle: DaemonHandle) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(status_connection(stream, handle.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "status socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn status_connection(stream: UnixStream, handle: DaemonHandle) {
    let (rd, mut wr) = stream.into_split();
    let mut reader = BufReader::new(rd);
    loop {
        let mut line = String::new();
        let limit = u64::try_from(MAX_REQUEST_LEN).unwrap_or(u64::MAX) + 1;
        match (&mut reader).take(limit).read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let response = if line.len() > MAX_REQUEST_LEN {
            Response::error(format!("request longer than {MAX_REQUEST_LEN} octets"))
        } else {
            match serde_json::from_str::<Request>(&line) {
                Ok(r) => answer(r, &handle).await,
                Err(e) => Response::error(format!("bad request: {e}")),
            }
        };
        let mut text = match serde_json::to_vec(&response) {
            Ok(t) => t,
            Err(e) => return tracing::error!(error = %e, "cannot encode a status response"),
        };
        text.push(b'\n');
        if wr.write_all(&text).await.is_err() || line.len() > MAX_REQUEST_LEN {
            return;
        }
    }
}

async fn answer(request: Request, handle: &DaemonHandle) -> Response {
    let result = match request {
        Request::Status => handle.status().await.map(|s| Response {
            status: Some(s),
            ..Response::ok()
        }),
        Request::Neighbors => handle.neighbors().await.map(|n| Response {
            neighbors: Some(n),
            ..Response::ok()
        }),
        Request::Routes { prefix } => handle.loc_rib(prefix).await.map(|r| Response {
            routes: Some(r),
            ..Response::ok()
        }),
        Request::Reload => handle.reload().await.map(|r| Response {
            reload: Some(r),
            ..Response::ok()
        }),
        Request::AdminDown { address, message } => handle
            .admin_down(address, message)
            .await
            .map(|()| Response::ok()),
        Request::AdminUp { address } => handle.admin_up(address).await.map(|()| Response::ok()),
    };
    result.unwrap_or_else(|e| Response::error(error_chain(&e)))
}

async fn serve_metrics(listener: TcpListener, handle: DaemonHandle) {
    use axum::extract::State;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    async fn metrics(State(h): State<DaemonHandle>) -> axum::response::Response {
        match h.metrics().await {
            Ok(text) => (
                [(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                text,
            )
                .into_response(),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        }
    }
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(handle);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics endpoint failed");
    }
}
