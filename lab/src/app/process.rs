//! Processes the lab starts inside nodes: how they enter a node, how they are recorded (pid
//! plus kernel start time, so a recycled pid is never mistaken for ours), and how they stop.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::state::StateDir;

/// A process started by the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// The node it runs in (or `mgmt` for the management namespace).
    pub node: String,
    /// What it is: `holder`, `zebra`, `bird`, `etcd`, `cmd`, ...
    pub name: String,
    /// Its pid.
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
    /// Its command line.
    pub argv: Vec<String>,
    /// Where its stdout and stderr go.
    pub log: Option<PathBuf>,
}

impl ProcessRecord {
    /// Whether this very process (same pid and start time) is still alive and not a zombie.
    pub fn is_running(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, start)) if start == self.start_time && state != 'Z' && state != 'X')
    }
}

/// `(state, start time)` from `/proc/<pid>/stat`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// How a command enters a node.
#[derive(Debug, Clone)]
pub enum Enter {
    /// A linux node: its holder's mount, network and UTS namespaces.
    Node {
        /// The holder's pid.
        holder: i32,
    },
    /// Only a network namespace (bridge nodes, the management namespace).
    Net {
        /// The namespace name under /run/netns.
        netns: String,
    },
}

impl Enter {
    /// The `nsenter` words that run a program inside.
    pub fn prefix(&self) -> Vec<String> {
        match self {
            Enter::Node { holder } => vec![
                "nsenter".into(),
                format!("--target={holder}"),
                "--mount".into(),
                "--net".into(),
                "--uts".into(),
                "--".into(),
            ],
            Enter::Net { netns } => vec![
                "nsenter".into(),
                format!("--net=/run/netns/{netns}"),
                "--".into(),
            ],
        }
    }

    /// A command running `argv` inside with exactly `env` as its environment.
    pub fn command(&self, argv: &[String], env: &BTreeMap<String, String>) -> Command {
        let prefix = self.prefix();
        let mut c = Command::new(&prefix[0]);
        c.args(&prefix[1..]).args(argv).env_clear().envs(env);
        c
    }
}

/// Starts `argv` inside a node as a long-running process in a session of its own, output to
/// the node's log directory, and records it.
pub fn start(
    state: &StateDir,
    node: &str,
    name: &str,
    enter: &Enter,
    argv: &[String],
    env: &BTreeMap<String, String>,
) -> Result<ProcessRecord> {
    let log = state.log_file(node, name)?;
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("opening {}", log.display()))?;
    let mut full = enter.prefix();
    full.extend(argv.iter().cloned());
    let child = Command::new("setsid")
        .args(&full)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("node {node}: starting {}", argv.join(" ")))?;
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    let start_time = proc_stat(pid).map_or(0, |(_, s)| s);
    let record = ProcessRecord {
        node: node.to_string(),
        name: name.to_string(),
        pid,
        start_time,
        argv: argv.to_vec(),
        log: Some(log),
    };
    state.record_process(&record)?;
    tracing::info!(node, process = name, pid, "started");
    Ok(record)
}

/// Stops processes: SIGTERM, up to `grace` to exit, then SIGKILL.
pub fn stop_all(records: &[ProcessRecord], grace: Duration) {
    let running: Vec<&ProcessRecord> = records.iter().filter(|r| r.is_running()).collect();
    for r in &running {
        let _ = kill(Pid::from_raw(r.pid), Signal::SIGTERM);
    }
    if !wait_gone(&running, grace) {
        for r in running.iter().filter(|r| r.is_running()) {
            tracing::warn!(node = %r.node, process = %r.name, pid = r.pid, "did not stop on SIGTERM, killing");
            let _ = kill(Pid::from_raw(r.pid), Signal::SIGKILL);
        }
        wait_gone(&running, Duration::from_secs(5));
    }
}

fn wait_gone(records: &[&ProcessRecord], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if records.iter().all(|r| !r.is_running()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of a log file (for error messages).
pub fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_seen_running_with_its_start_time() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let (state, start) = proc_stat(pid).unwrap();
        assert!(state == 'R' || state == 'S');
        let r = ProcessRecord {
            node: "n".into(),
            name: "me".into(),
            pid,
            start_time: start,
            argv: vec![],
            log: None,
        };
        assert!(r.is_running());
        let other = ProcessRecord {
            start_time: start + 1,
            ..r
        };
        assert!(
            !other.is_running(),
            "a different start time is a different process"
        );
    }
}
