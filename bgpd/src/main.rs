//! The `bgpd` binary: runs the daemon from a TOML file (SIGHUP reloads it, SIGTERM shuts down
//! with Cease) or, with `show`, prints the status of a running daemon from its status socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bgpd::status::protocol::{self, Request};
use bgpd::status::table;
use bgpd::{Config, Daemon};
use clap::{Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Default status socket of `bgpd show`.
const DEFAULT_SOCKET: &str = "/run/bgpd/bgpd.sock";

#[derive(Debug, Parser)]
#[command(name = "bgpd", about = "BGP speaker for the Calico-compatible fabric")]
struct Cli {
    /// Configuration file (TOML, see bgpd/README.md).
    #[arg(
        long,
        short = 'c',
        env = "BGPD_CONFIG",
        default_value = "/etc/bgpd/bgpd.toml"
    )]
    config: PathBuf,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Check the configuration file and exit.
    Check,
    /// Print the state of a running daemon.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
        /// Print the JSON response instead of a table.
        #[arg(long, global = true)]
        json: bool,
        /// Status socket (default: `status-socket` of the configuration file, else
        /// /run/bgpd/bgpd.sock).
        #[arg(long, global = true)]
        socket: Option<PathBuf>,
    },
    /// Ask a running daemon to re-read its configuration file.
    Reload {
        /// Status socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ShowWhat {
    /// Neighbours: address, AS, state, since, prefixes, last error.
    Neighbors,
    /// Loc-RIB routes with next hops, AS paths, communities, best/ECMP marks and reasons.
    Routes {
        /// Only this prefix.
        prefix: Option<ipnet::IpNet>,
    },
    /// The daemon summary.
    Summary,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Run) => run(&cli.config, cli.log_json),
        Some(Command::Check) => {
            Config::load(&cli.config)
                .with_context(|| format!("checking {}", cli.config.display()))?;
            println!("{}: ok", cli.config.display());
            Ok(())
        }
        Some(Command::Show { what, json, socket }) => show(&cli.config, what, json, socket),
        Some(Command::Reload { socket }) => {
            let socket = socket_path(&cli.config, socket);
            let r = protocol::query(&socket, &Request::Reload)?;
            println!("{}", serde_json::to_string_pretty(&r.reload)?);
            Ok(())
        }
    }
}

/// The status socket: the flag, else the configuration file's, else the default.
fn socket_path(config: &Path, flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| Config::load(config).ok().and_then(|c| c.status_socket))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

fn show(config: &Path, what: ShowWhat, json: bool, socket: Option<PathBuf>) -> Result<()> {
    let socket = socket_path(config, socket);
    let request = match &what {
        ShowWhat::Neighbors => Request::Neighbors,
        ShowWhat::Routes { prefix } => Request::Routes { prefix: *prefix },
        ShowWhat::Summary => Request::Status,
    };
    let response = protocol::query(&socket, &request)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&response)?);
        return Ok(());
    }
    match what {
        ShowWhat::Neighbors => print!(
            "{}",
            table::neighbors(&response.neighbors.unwrap_or_default())
        ),
        ShowWhat::Routes { .. } => {
            print!("{}", table::routes(&response.routes.unwrap_or_default()))
        }
        ShowWhat::Summary => {
            let Some(s) = response.status else {
                bail!("the daemon sent no status");
            };
            println!(
                "router id {}  AS {}  started {} UTC{}  prefixes {}",
                s.router_id,
                s.asn,
                table::utc_time(s.started_unix_ms),
                if s.restarting {
                    "  (graceful restart)"
                } else {
                    ""
                },
                s.table_prefixes
            );
            print!("{}", table::neighbors(&s.neighbors));
        }
    }
    Ok(())
}

type FilterHandle = tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>;

fn init_logging(level: Option<&str>, json: bool) -> Result<FilterHandle> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::builder().parse(level.unwrap_or("info")))
        .context("parsing the log filter")?;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(tracing_subscriber::fmt::layer().json())
            .try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer()).try_init()
    }
    .context("installing the logger")?;
    Ok(handle)
}

fn run(path: &Path, json: bool) -> Result<()> {
    let config = Config::load(path).with_context(|| format!("loading {}", path.display()))?;
    let logging = init_logging(config.log_level.as_deref(), json)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("bgpd-worker")
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(path.to_path_buf(), config, logging))
}

async fn serve(path: PathBuf, config: Config, logging: FilterHandle) -> Result<()> {
    let reload_path = path.clone();
    let reloader: bgpd::Reloader = Arc::new(move || Config::load(&reload_path));
    let handle = Daemon::start_with_reloader(config, Some(reloader))
        .await
        .map_err(|e| anyhow::anyhow!(fabric_api::error_chain(&e)))
        .with_context(|| format!("starting bgpd with {}", path.display()))?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!(path = %path.display(), "SIGHUP: reloading the configuration");
                match handle.reload().await {
                    Ok(report) => {
                        let level = handle.config().log_level.unwrap_or_else(|| "info".into());
                        if let Ok(f) = EnvFilter::builder().parse(&level) {
                            let _ = logging.reload(f);
                        }
                        tracing::info!(?report, "reloaded");
                    }
                    Err(e) => tracing::error!(error = %fabric_api::error_chain(&e), "reload refused; nothing changed"),
                }
            }
            () = handle.stopped() => bail!("the speaker task stopped unexpectedly"),
        }
    }
    tracing::info!("shutting down (Cease to every neighbour)");
    handle.shutdown(false).await.context("shutting down")?;
    Ok(())
}
