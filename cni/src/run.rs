//! The binaries' shared entry point: read stdin and the `CNI_*` environment, set up logging
//! (stderr or `log_file_path`, never stdout), run the plugin, and print its result or the CNI
//! error object on stdout with the matching exit status.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use fabric_datastore::Client;
use serde_json::Value;

use crate::config::NetConf;
use crate::env::{CniEnv, Command};
use crate::spec::{self, CniError, ErrorCode};

/// Which plugin the binary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    /// `calico`.
    Calico,
    /// `calico-ipam`.
    CalicoIpam,
}

fn init_logging(conf: &NetConf) {
    let level = match conf
        .log_level
        .as_deref()
        .unwrap_or("info")
        .to_ascii_lowercase()
        .as_str()
    {
        "trace" => "trace",
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CNI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let file = conf.log_file_path.as_ref().and_then(|p| {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let _ = match file {
        Some(f) => builder.with_writer(std::sync::Mutex::new(f)).try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
}

fn print(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

async fn connect(conf: &NetConf) -> Result<Client, CniError> {
    let backend = crate::datastore::connect(&conf.datastore, |n| std::env::var(n).ok()).await?;
    Ok(Client::new(Arc::clone(&backend)))
}

async fn dispatch(plugin: Plugin, conf: &NetConf, env: &CniEnv) -> Result<Option<Value>, CniError> {
    if env.command == Command::Check && !spec::supports_check(&conf.cni_version) {
        return Err(CniError::new(
            ErrorCode::IncompatibleVersion,
            format!("CHECK is not defined for cniVersion {}", conf.cni_version),
            "CHECK needs cniVersion 0.4.0 or later",
        ));
    }
    let result = match plugin {
        Plugin::Calico => {
            crate::calico_plugin::run(conf, env, async || connect(conf).await).await?
        }
        Plugin::CalicoIpam => {
            crate::ipam_plugin::run(conf, env, async || connect(conf).await).await?
        }
    };
    Ok(result.map(|r| r.to_version(&conf.cni_version)))
}

/// Runs `plugin` as a CNI binary and returns the exit status.
pub fn main(plugin: Plugin) -> ExitCode {
    let mut input = Vec::new();
    let read = std::io::stdin().read_to_end(&mut input);
    let env = match CniEnv::from_process() {
        Ok(e) => e,
        Err(e) => {
            print(&e.to_json(spec::CURRENT_VERSION));
            return ExitCode::FAILURE;
        }
    };
    if env.command == Command::Version {
        print(&spec::version_info());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = read {
        let e = CniError::new(ErrorCode::IoFailure, "cannot read stdin", e.to_string());
        print(&e.to_json(spec::CURRENT_VERSION));
        return ExitCode::FAILURE;
    }
    let conf = match NetConf::parse(&input) {
        Ok(c) => c,
        Err(e) => {
            let version = serde_json::from_slice::<Value>(&input)
                .ok()
                .and_then(|v| {
                    v.get("cniVersion")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .filter(|v| spec::SUPPORTED_VERSIONS.contains(&v.as_str()))
                .unwrap_or_else(|| spec::CURRENT_VERSION.to_string());
            print(&e.to_json(&version));
            return ExitCode::FAILURE;
        }
    };
    init_logging(&conf);
    tracing::debug!(
        command = env.command.as_str(),
        container = env.container_id,
        "invoked"
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let e = CniError::new(
                ErrorCode::IoFailure,
                "cannot start the runtime",
                e.to_string(),
            );
            print(&e.to_json(&conf.cni_version));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(plugin, &conf, &env)) {
        Ok(Some(v)) => {
            print(&v);
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(command = env.command.as_str(), container = env.container_id, error = %e, "failed");
            print(&e.to_json(&conf.cni_version));
            ExitCode::FAILURE
        }
    }
}
