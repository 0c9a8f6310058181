//! The `calico-node` binary, with Calico's single-dash flags: no flag (or `-felix -bird`) runs
//! the node; `-startup` registers it and exits; `-felix-ready -bird-ready` and
//! `-felix-live -bird-live` are the probes (exit 0 or 1); `-v` prints the version.

use std::process::ExitCode;

use anyhow::{Context, bail};
use calico_node::{RunConfig, probes};

const USAGE: &str = "usage: calico-node [-felix] [-bird] | -startup | [-felix-ready] [-bird-ready] \
                     | [-felix-live] [-bird-live] | -v";

#[derive(Debug, Default)]
struct Flags {
    startup: bool,
    felix_ready: bool,
    bird_ready: bool,
    felix_live: bool,
    bird_live: bool,
    version: bool,
}

fn parse_flags(args: &[String]) -> anyhow::Result<Flags> {
    let mut f = Flags::default();
    for a in args {
        match a.trim_start_matches('-') {
            "felix" | "bird" | "confd" | "allocate-tunnel-addrs" => {}
            "startup" => f.startup = true,
            "felix-ready" => f.felix_ready = true,
            "bird-ready" | "bird6-ready" => f.bird_ready = true,
            "felix-live" => f.felix_live = true,
            "bird-live" | "bird6-live" => f.bird_live = true,
            "v" | "version" => f.version = true,
            _ => bail!("unknown flag {a:?}\n{USAGE}"),
        }
    }
    Ok(f)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match parse_flags(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("calico-node: {e:#}");
            return ExitCode::from(2);
        }
    };
    if flags.version {
        println!("v{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if flags.felix_ready || flags.bird_ready || flags.felix_live || flags.bird_live {
        return probe(&flags);
    }
    felix::logging::init(&["CALICO_STARTUP_LOGLEVEL", "FELIX_LOGSEVERITYSCREEN"]);
    match main_run(flags.startup) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "calico-node failed");
            eprintln!("calico-node: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn probe(flags: &Flags) -> ExitCode {
    let socket = std::env::var("CALICO_NODE_STATUS_SOCKET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| calico_node::settings::DEFAULT_STATUS_SOCKET.into());
    let socket = std::path::Path::new(&socket);
    let mut failures = Vec::new();
    if flags.felix_ready
        && let Err(e) = probes::felix_check("/readiness")
    {
        failures.push(e);
    }
    if flags.felix_live
        && let Err(e) = probes::felix_check("/liveness")
    {
        failures.push(e);
    }
    if flags.bird_ready
        && let Err(e) = probes::bird_ready(socket)
    {
        failures.push(e);
    }
    if flags.bird_live
        && let Err(e) = probes::bird_live(socket)
    {
        failures.push(e);
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in failures {
            eprintln!("calico-node: {f}");
        }
        ExitCode::FAILURE
    }
}

fn main_run(startup_only: bool) -> anyhow::Result<()> {
    let config = RunConfig::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if startup_only {
        runtime.block_on(calico_node::run::startup(&config))?;
        return Ok(());
    }
    runtime.block_on(calico_node::run(config, shutdown_signal()))
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop calico-node with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}
