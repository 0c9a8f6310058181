//! Health: what the main loop and the kernel thread report, and the `/liveness`,
//! `/readiness` and `/metrics` HTTP endpoints (restarted on a new address when the settings
//! change).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::task::JoinHandle;

use super::metrics::Metrics;

/// Liveness fails when the main loop has not run for this long.
const HEARTBEAT_LIMIT: Duration = Duration::from_secs(60);
/// Liveness fails when one apply has been running for this long (Calico's dataplane watchdog).
const APPLY_LIMIT: Duration = Duration::from_secs(90);

/// felix's health, as `/liveness` and `/readiness` report it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// The main loop and the kernel thread are making progress.
    pub live: bool,
    /// In sync with the datastore, the last apply succeeded and nothing is degraded.
    pub ready: bool,
    /// Why not ready (or not live), one line each.
    pub reasons: Vec<String>,
}

#[derive(Debug)]
struct Inner {
    in_sync: bool,
    last_apply_ok: Option<bool>,
    reasons: Vec<String>,
    heartbeat: Instant,
    apply_started: Option<Instant>,
    kernel_alive: bool,
}

/// The health state shared by the main loop and the HTTP handlers.
#[derive(Debug)]
pub(crate) struct HealthShared {
    inner: Mutex<Inner>,
}

impl Default for HealthShared {
    fn default() -> Self {
        HealthShared {
            inner: Mutex::new(Inner {
                in_sync: false,
                last_apply_ok: None,
                reasons: Vec::new(),
                heartbeat: Instant::now(),
                apply_started: None,
                kernel_alive: true,
            }),
        }
    }
}

impl HealthShared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The main loop is running.
    pub(crate) fn heartbeat(&self) {
        self.lock().heartbeat = Instant::now();
    }

    /// The datastore snapshot is complete.
    pub(crate) fn set_in_sync(&self) {
        self.lock().in_sync = true;
    }

    /// An apply was handed to the kernel thread.
    pub(crate) fn apply_started(&self) {
        self.lock().apply_started = Some(Instant::now());
    }

    /// An apply finished: whether it succeeded and what is degraded.
    pub(crate) fn apply_finished(&self, ok: bool, reasons: Vec<String>) {
        let mut i = self.lock();
        i.apply_started = None;
        i.last_apply_ok = Some(ok);
        i.reasons = reasons;
    }

    /// The kernel thread is gone.
    pub(crate) fn kernel_died(&self) {
        self.lock().kernel_alive = false;
    }

    /// The current report.
    pub(crate) fn report(&self) -> HealthReport {
        let i = self.lock();
        let mut reasons = Vec::new();
        let mut live = true;
        if !i.kernel_alive {
            live = false;
            reasons.push("the kernel thread has stopped".to_string());
        }
        if i.heartbeat.elapsed() > HEARTBEAT_LIMIT {
            live = false;
            reasons.push(format!(
                "the main loop has not run for {} s",
                i.heartbeat.elapsed().as_secs()
            ));
        }
        if let Some(started) = i.apply_started
            && started.elapsed() > APPLY_LIMIT
        {
            live = false;
            reasons.push(format!(
                "a dataplane apply has been running for {} s",
                started.elapsed().as_secs()
            ));
        }
        if !i.in_sync {
            reasons.push("not in sync with the datastore yet".to_string());
        }
        match i.last_apply_ok {
            None => reasons.push("no dataplane apply has completed yet".to_string()),
            Some(false) => reasons.push("the last dataplane apply failed (retrying)".to_string()),
            Some(true) => {}
        }
        reasons.extend(i.reasons.iter().cloned());
        HealthReport {
            live,
            ready: live && reasons.is_empty(),
            reasons,
        }
    }
}

/// A running HTTP server and the address it was asked to serve.
#[derive(Debug)]
pub(crate) struct HttpServer {
    address: (String, u16),
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keeps one HTTP server running on the wanted address (or none).
#[derive(Debug, Default)]
pub(crate) struct ServerSlot {
    server: Option<HttpServer>,
}

impl ServerSlot {
    /// Makes the server serve `want` (`None`: stopped); rebinds when the address changed.
    pub(crate) async fn ensure(
        &mut self,
        what: &'static str,
        want: Option<(String, u16)>,
        app: impl FnOnce() -> axum::Router,
    ) {
        if self.server.as_ref().map(|s| &s.address) == want.as_ref() {
            return;
        }
        self.server = None;
        let Some((host, port)) = want else {
            return;
        };
        let bind_host = if host.is_empty() {
            "0.0.0.0".to_string()
        } else {
            host.clone()
        };
        match tokio::net::TcpListener::bind((bind_host.as_str(), port)).await {
            Ok(listener) => {
                let local = listener.local_addr().ok();
                tracing::info!(server = what, address = ?local, "serving");
                let app = app();
                let task = tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::error!(server = what, error = %e, "HTTP server failed");
                    }
                });
                self.server = Some(HttpServer {
                    address: (host, port),
                    task,
                });
            }
            Err(e) => {
                tracing::error!(server = what, host = %host, port, error = %e, "cannot bind");
            }
        }
    }
}

/// The `/liveness` and `/readiness` endpoints.
pub(crate) fn health_app(state: Arc<HealthShared>) -> axum::Router {
    async fn liveness(State(s): State<Arc<HealthShared>>) -> Response {
        let r = s.report();
        json(
            if r.live {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            &r,
        )
    }
    async fn readiness(State(s): State<Arc<HealthShared>>) -> Response {
        let r = s.report();
        json(
            if r.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            &r,
        )
    }
    axum::Router::new()
        .route("/liveness", axum::routing::get(liveness))
        .route("/readiness", axum::routing::get(readiness))
        .with_state(state)
}

/// The `/metrics` endpoint.
pub(crate) fn metrics_app(metrics: Metrics) -> axum::Router {
    async fn render(State(m): State<Metrics>) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            m.encode(),
        )
            .into_response()
    }
    axum::Router::new()
        .route("/metrics", axum::routing::get(render))
        .with_state(metrics)
}

fn json(status: StatusCode, report: &HealthReport) -> Response {
    let body = serde_json::to_string(report).unwrap_or_else(|_| "{}".to_string());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_after_sync_and_a_clean_apply() {
        let h = HealthShared::default();
        let r = h.report();
        assert!(r.live && !r.ready);
        assert!(r.reasons.iter().any(|x| x.contains("not in sync")), "{r:?}");
        h.set_in_sync();
        h.apply_started();
        h.apply_finished(true, Vec::new());
        assert!(h.report().ready, "{:?}", h.report());
        h.apply_finished(true, vec!["IPIP unsupported by this kernel".into()]);
        let r = h.report();
        assert!(!r.ready && r.live);
        assert_eq!(
            r.reasons,
            vec!["IPIP unsupported by this kernel".to_string()]
        );
        h.kernel_died();
        assert!(!h.report().live);
    }
}
