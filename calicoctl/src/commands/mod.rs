//! Parsing the command line, logging, the async runtime, dispatching to a command and turning
//! its result into output and an exit code.
//!
//! Plug-in point: a new command family adds its module here (`mod ipam;`, `mod node;`) and an
//! arm in [`dispatch`]; see `cli.rs` for the matching `Command` variant.

mod common;
mod get;
pub(crate) mod ipam;
mod label;
pub(crate) mod node;
mod patch;
mod resources;
mod version;

use std::ffi::OsString;
use std::io::{Read, Write};

use clap::Parser;
use clap::error::ErrorKind;
use tracing::level_filters::LevelFilter;

use crate::cli::{Cli, Command};
use crate::context::{Ctx, Env};

/// Runs one command line; returns the exit code.
pub(crate) fn main<I, T>(
    args: I,
    env: &Env,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = stdout.write_all(text.as_bytes());
                    0
                }
                _ => {
                    let _ = stderr.write_all(text.as_bytes());
                    1
                }
            };
        }
    };
    let level_text = cli
        .log_level
        .clone()
        .or_else(|| cli.log_level_short.clone())
        .unwrap_or_else(|| "panic".into());
    let level = match log_level(&level_text) {
        Ok(level) => level,
        Err(e) => {
            let _ = writeln!(stderr, "{e}");
            return 1;
        }
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("failed to start the async runtime: {e}"))?;
        let mut ctx = Ctx::new(env, cli.config.clone(), stdin, stdout);
        if cli.context.is_some() {
            tracing::debug!("--context is ignored: this build has no Kubernetes datastore");
        }
        runtime.block_on(dispatch(cli.command, &mut ctx))
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            let mut text = format!("{e:#}");
            if !text.ends_with('\n') {
                text.push('\n');
            }
            let _ = stderr.write_all(text.as_bytes());
            1
        }
    }
}

/// Runs the command.
async fn dispatch(command: Command, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    use resources::Action;
    match command {
        Command::Create(a) => {
            let action = Action::Create {
                skip_exists: a.skip_exists,
            };
            resources::write(ctx, &a.write, action).await
        }
        Command::Apply(a) => resources::write(ctx, &a, Action::Apply).await,
        Command::Replace(a) => resources::write(ctx, &a, Action::Replace).await,
        Command::Validate(a) => resources::write(ctx, &a, Action::Validate).await,
        Command::Delete(a) => resources::delete(ctx, &a).await,
        Command::Get(a) => get::get(ctx, &a).await,
        Command::Patch(a) => patch::patch(ctx, &a).await,
        Command::Label(a) => label::label(ctx, &a).await,
        Command::Version(a) => version::version(ctx, &a),
        Command::Node(a) => node::run(ctx, a).await,
        Command::Ipam(a) => ipam::run(ctx, a).await,
        // Plug-in point: `Command::Ipam(a) => ipam::run(ctx, a).await` and
        // `Command::Node(a) => node::run(ctx, a).await` go here.
    }
}

/// calicoctl's log levels (logrus names; `panic` and `fatal` log nothing here).
fn log_level(text: &str) -> anyhow::Result<LevelFilter> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "panic" | "fatal" => LevelFilter::OFF,
        "error" => LevelFilter::ERROR,
        "warn" | "warning" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => anyhow::bail!(
            "unknown log level: {text}, expected one of: panic, fatal, error, warn, info, debug, trace"
        ),
    })
}
