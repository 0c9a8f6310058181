//! GoBGP inside a test namespace: `gobgpd` with its TOML config and its gRPC API on a free port
//! of the namespace's own loopback, queried with `gobgp -j`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::{
    RouterError, STARTUP, check_alive, in_dir, instance_dir, io_error, parse_json, poll, run,
    spawn_in, write_file,
};
use crate::{ChildGuard, Netns};

/// A running gobgpd; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct GoBgp {
    child: ChildGuard,
    dir: tempfile::TempDir,
    netns: String,
    api_port: u16,
    log: PathBuf,
}

/// GoBGP's numeric session states (its API's `PeerState.SessionState`).
fn session_state_name(n: u64) -> &'static str {
    match n {
        1 => "Idle",
        2 => "Connect",
        3 => "Active",
        4 => "OpenSent",
        5 => "OpenConfirm",
        6 => "Established",
        _ => "Unknown",
    }
}

impl GoBgp {
    /// Writes `toml` into a fresh directory and runs `gobgpd -f <toml> -t toml -p
    /// --api-hosts 127.0.0.1:<port> --pprof-disable` inside `ns` (the port is free in that
    /// namespace), then waits until `gobgp global` answers.
    pub fn start(ns: &Netns, toml: &str) -> Result<GoBgp, RouterError> {
        let dir = instance_dir("gobgp-")?;
        let conf = in_dir(&dir, "gobgpd.toml");
        let log = in_dir(&dir, "gobgpd.log");
        write_file(&conf, toml)?;
        let api_port = ns
            .run_in(|| TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()))
            .map_err(io_error(format!("finding a free port in {}", ns.name())))?
            .port();
        let api = format!("127.0.0.1:{api_port}");
        let conf_s = conf.to_string_lossy().into_owned();
        let args = [
            "-f",
            &conf_s,
            "-t",
            "toml",
            "-p",
            "-l",
            "info",
            "--api-hosts",
            &api,
            "--pprof-disable",
        ];
        let child = spawn_in(ns, "gobgpd", &args, &log)?;
        let mut gobgp = GoBgp {
            child,
            dir,
            netns: ns.name().to_string(),
            api_port,
            log,
        };
        let log = gobgp.log.clone();
        poll("gobgpd answering on its API", STARTUP, &log, |last| {
            check_alive(&mut gobgp.child, "gobgpd", &log, &log)?;
            match gobgp.try_gobgp(&["global"]) {
                Ok(v) if v.get("asn").is_some() => Ok(Some(())),
                Ok(v) => {
                    *last = v.to_string();
                    Ok(None)
                }
                Err(e) => {
                    *last = e.to_string();
                    Ok(None)
                }
            }
        })?;
        Ok(gobgp)
    }

    /// The gobgpd process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// gobgpd's log (its stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The instance directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, json: bool, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.netns,
            "gobgp",
            "-u",
            "127.0.0.1",
            "-p",
        ])
        .arg(self.api_port.to_string());
        if json {
            c.arg("-j");
        }
        c.args(args);
        c
    }

    /// `gobgp -j <args>` parsed as JSON; panics on failure.
    pub fn gobgp(&self, args: &[&str]) -> Value {
        self.try_gobgp(args)
            .unwrap_or_else(|e| panic!("gobgp {args:?}: {e}"))
    }

    /// `gobgp -j <args>` parsed as JSON (empty output is `null`).
    pub fn try_gobgp(&self, args: &[&str]) -> Result<Value, RouterError> {
        let out = run(&mut self.command(true, args), &self.log)?;
        if out.trim().is_empty() {
            return Ok(Value::Null);
        }
        parse_json(&format!("gobgp -j {}", args.join(" ")), &out)
    }

    /// `gobgp <args>` without `-j` (commands such as `global rib add` print nothing).
    pub fn gobgp_text(&self, args: &[&str]) -> Result<String, RouterError> {
        run(&mut self.command(false, args), &self.log)
    }

    /// The session state with neighbor `addr` (`Established`, `Active`, ...), if configured.
    pub fn neighbor_state(&self, addr: &str) -> Option<String> {
        let v = self.try_gobgp(&["neighbor", addr]).ok()?;
        let n = v.pointer("/state/session_state")?.as_u64()?;
        Some(session_state_name(n).to_string())
    }

    /// Polls until the session with `addr` is Established.
    pub fn wait_established(&self, addr: &str, timeout: Duration) -> Result<(), RouterError> {
        poll(
            &format!("GoBGP neighbor {addr} Established"),
            timeout,
            &self.log,
            |last| {
                let state = self.neighbor_state(addr).unwrap_or_default();
                let up = state == "Established";
                *last = state;
                Ok(up.then_some(()))
            },
        )
    }

    /// `gobgp -j global rib -a <family>`: an object from prefix to its paths.
    pub fn rib(&self, family: &str) -> Value {
        self.gobgp(&["global", "rib", "-a", family])
    }

    /// The prefixes in the global RIB of `family` (`ipv4`, `ipv6`), sorted.
    pub fn rib_prefixes(&self, family: &str) -> Vec<String> {
        let mut v: Vec<String> = match self.rib(family) {
            Value::Object(m) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        v.sort();
        v
    }
}
