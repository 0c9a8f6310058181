//! Delegating to another plugin through the CNI exec protocol: find `<type>` in `CNI_PATH`,
//! run it with our environment (its own `CNI_COMMAND`) and the configuration on stdin, and
//! read its result or error from stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use serde_json::Value;

use crate::env::Command;
use crate::spec::{CniError, CniResult, ErrorCode};

/// Finds plugin `kind` in the `CNI_PATH` directories.
pub fn find_plugin(kind: &str, path: &[PathBuf]) -> Result<PathBuf, CniError> {
    if kind.contains('/') || kind.is_empty() {
        return Err(CniError::invalid_config(
            "ipam.type",
            format!("{kind:?}"),
            "is not a plugin name (a file name in CNI_PATH)",
        ));
    }
    path.iter()
        .map(|d| d.join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::new(
                ErrorCode::InvalidNetworkConfig,
                format!("IPAM plugin {kind:?} not found in CNI_PATH"),
                format!(
                    "field ipam.type = {kind:?}: no such file in CNI_PATH ({})",
                    path.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":")
                ),
            )
        })
}

/// Runs `plugin` for `command` with `config` on stdin. ADD returns its result; DEL and CHECK
/// return `None`. A failing plugin's CNI error is passed through unchanged.
pub fn run(plugin: &Path, command: Command, config: &Value) -> Result<Option<CniResult>, CniError> {
    let name = plugin.display().to_string();
    let io_err = |what: &str, e: std::io::Error| {
        CniError::new(
            ErrorCode::IoFailure,
            format!("cannot run the IPAM plugin {name}: {what}"),
            e.to_string(),
        )
    };
    let mut child = Process::new(plugin)
        .env("CNI_COMMAND", command.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| io_err("spawn", e))?;
    let input = serde_json::to_vec(config).map_err(|e| {
        CniError::new(
            ErrorCode::DecodingFailure,
            "cannot encode the configuration",
            e.to_string(),
        )
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&input)
            .map_err(|e| io_err("write stdin", e))?;
    }
    let out = child.wait_with_output().map_err(|e| io_err("wait", e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let parsed: Option<Value> = serde_json::from_str(stdout.trim()).ok();
        if let Some(v) = parsed
            && let Some(code) = v.get("code").and_then(Value::as_u64)
        {
            let msg = v
                .get("msg")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let details = v
                .get("details")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            return Err(CniError::new(
                code_from(code),
                format!("IPAM plugin {name} failed: {msg}"),
                details,
            ));
        }
        return Err(CniError::new(
            ErrorCode::Plugin,
            format!("IPAM plugin {name} failed ({})", out.status),
            stdout.trim().to_string(),
        ));
    }
    if command != Command::Add {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        CniError::new(
            ErrorCode::DecodingFailure,
            format!("IPAM plugin {name} printed no JSON result"),
            e.to_string(),
        )
    })?;
    CniResult::parse(&value).map(Some)
}

fn code_from(code: u64) -> ErrorCode {
    match code {
        1 => ErrorCode::IncompatibleVersion,
        2 => ErrorCode::UnsupportedField,
        3 => ErrorCode::UnknownContainer,
        4 => ErrorCode::InvalidEnvironment,
        5 => ErrorCode::IoFailure,
        6 => ErrorCode::DecodingFailure,
        7 => ErrorCode::InvalidNetworkConfig,
        11 => ErrorCode::TryAgainLater,
        _ => ErrorCode::Plugin,
    }
}
