//! The `felix` binary: runs felix on its own (no BGP), configured like Calico's felix from the
//! environment (`NODENAME`, `DATASTORE_TYPE`, `SQLITE_PATH`, `ETCD_ENDPOINTS`, `FELIX_*`).

use std::process::ExitCode;

use anyhow::Context;

fn main() -> ExitCode {
    felix::logging::init(&["FELIX_LOGSEVERITYSCREEN"]);
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "felix failed");
            eprintln!("felix: {e:#}");
            ExitCode::FAILURE
        }
    }
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
