//! Reference routers for interop tests: BIRD 2, GoBGP and FRR (Debian packages), each run inside
//! a test's [`crate::Netns`] from its own temporary directory (config, control sockets, pid and
//! log files), killed when dropped. Every wait polls with a deadline; every error names the
//! router's log file so a failing test can show it.

mod bird;
mod bird_routes;
mod frr;
mod gobgp;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use bird::{Bird, BirdControl};
pub use bird_routes::{BirdRoute, parse_bird_routes};
pub use frr::Frr;
pub use gobgp::GoBgp;

use crate::{ChildGuard, Netns};

/// A reference router could not be started, queried or awaited.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// A file or process operation failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A command exited unsuccessfully or printed an error.
    #[error("`{command}` failed: {output}; log: {log}")]
    Command {
        /// The command line.
        command: String,
        /// Its output (stderr, else stdout), trimmed.
        output: String,
        /// The router's log file.
        log: String,
    },
    /// The router process exited.
    #[error("{program} exited ({status}); output: {output}; log: {log}")]
    Exited {
        /// The program.
        program: String,
        /// Its exit status.
        status: String,
        /// The tail of its stdout/stderr.
        output: String,
        /// The router's log file.
        log: String,
    },
    /// A condition was not reached in time.
    #[error("{what} not reached within {timeout:?}; last answer: {last}; log: {log}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        timeout: Duration,
        /// The last answer seen while polling.
        last: String,
        /// The router's log file.
        log: String,
    },
    /// A command printed output that is not the JSON it should be.
    #[error("`{command}` printed output that is not JSON: {output:?}")]
    Json {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// How often readiness and state are polled.
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// How long a daemon may take to come up.
pub(crate) const STARTUP: Duration = Duration::from_secs(20);

pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RouterError {
    let what = what.into();
    move |source| RouterError::Io { what, source }
}

/// Writes `text` to `path`.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), RouterError> {
    std::fs::write(path, text).map_err(io_error(format!("writing {}", path.display())))
}

/// Starts `program args` inside `ns` with stdout and stderr appended to `output`.
pub(crate) fn spawn_in(
    ns: &Netns,
    program: &str,
    args: &[&str],
    output: &Path,
) -> Result<ChildGuard, RouterError> {
    let out = File::create(output).map_err(io_error(format!("creating {}", output.display())))?;
    let err = out
        .try_clone()
        .map_err(io_error(format!("opening {}", output.display())))?;
    let child = ns
        .cmd(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(io_error(format!("starting {program} in {}", ns.name())))?;
    Ok(ChildGuard(child))
}

/// An error if the child has exited, with the tail of its output file.
pub(crate) fn check_alive(
    child: &mut ChildGuard,
    program: &str,
    output: &Path,
    log: &Path,
) -> Result<(), RouterError> {
    match child.0.try_wait() {
        Ok(None) => Ok(()),
        Ok(Some(status)) => Err(RouterError::Exited {
            program: program.to_string(),
            status: status.to_string(),
            output: tail(output, 2000),
            log: log.display().to_string(),
        }),
        Err(e) => Err(io_error(format!("checking on {program}"))(e)),
    }
}

/// The last `max` bytes of a text file (empty if unreadable).
pub(crate) fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].trim().to_string()
}

/// Runs a command to completion; its stdout on success, else a [`RouterError::Command`].
pub(crate) fn run(cmd: &mut Command, log: &Path) -> Result<String, RouterError> {
    let command = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(io_error(format!("running {command}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let output = if stderr.trim().is_empty() {
        stdout.trim().to_string()
    } else {
        stderr.trim().to_string()
    };
    Err(RouterError::Command {
        command,
        output: format!("{} ({})", output, out.status),
        log: log.display().to_string(),
    })
}

/// Polls `f` every [`POLL`] until it returns `Ok(Some(_))`; an `Err` ends the wait at once.
/// `last` is updated by `f` with a description of the latest answer for the timeout error.
pub(crate) fn poll<T>(
    what: &str,
    timeout: Duration,
    log: &Path,
    mut f: impl FnMut(&mut String) -> Result<Option<T>, RouterError>,
) -> Result<T, RouterError> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        if let Some(v) = f(&mut last)? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(RouterError::Timeout {
                what: what.to_string(),
                timeout,
                last,
                log: log.display().to_string(),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Parses JSON printed by `command`.
pub(crate) fn parse_json(command: &str, output: &str) -> Result<serde_json::Value, RouterError> {
    serde_json::from_str(output).map_err(|source| RouterError::Json {
        command: command.to_string(),
        output: output.chars().take(2000).collect(),
        source,
    })
}

/// A fresh temporary directory for one router instance.
pub(crate) fn instance_dir(prefix: &str) -> Result<tempfile::TempDir, RouterError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(io_error("creating a router directory"))
}

/// `VmHWM` and `VmRSS` of a process in bytes (peak and current resident set size).
pub fn process_memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// A path inside a router's directory.
pub(crate) fn in_dir(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
