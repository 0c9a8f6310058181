//! The `felix` binary: runs felix on its own (no BGP), configured like Calico's felix from the
//! environment (`NODENAME`, `DATASTORE_TYPE`, `SQLITE_PATH`, `ETCD_ENDPOINTS`, `FELIX_*`).

use std::process::ExitCode;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    init_logging();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "felix failed");
            eprintln!("felix: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG` if set, else `FELIX_LOGSEVERITYSCREEN` (Calico's levels), else `info`.
fn init_logging() {
    let level = std::env::var("FELIX_LOGSEVERITYSCREEN")
        .ok()
        .map(|l| match l.to_ascii_lowercase().as_str() {
            "debug" => "debug",
            "warning" | "warn" => "warn",
            "error" | "fatal" | "panic" => "error",
            _ => "info",
        })
        .unwrap_or("info");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run() -> anyhow::Result<()> {
    let config = felix::FelixConfig::from_env().context("reading the configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime
        .block_on(felix::run(config, None, shutdown_signal()))
        .context("running felix")
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop felix with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}
