//! FRR (Debian `frr`) inside a test namespace: zebra, bgpd and staticd started by hand (no
//! watchfrr, no systemd) with every socket, pid and log file in one instance directory, so
//! several instances run at once; configured and queried through `vtysh --vty_socket`.
//!
//! What makes instances independent: `--vty_socket <dir>` (the daemons' vty sockets, also what
//! vtysh connects to), `-z <dir>/zserv.api` (zebra's API socket, given to every daemon),
//! `-i <dir>/<daemon>.pid`, `-f <dir>/empty.conf`, `--log file:<dir>/<daemon>.log` and `-P 0`
//! (no TCP vty port). The daemons drop privileges to the `frr` user, so the directory is
//! handed to `frr:frr`; running them as root is refused (root is not in `frrvty`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::{
    RouterError, STARTUP, check_alive, in_dir, instance_dir, io_error, parse_json, poll, run,
    spawn_in, write_file,
};
use crate::{ChildGuard, Netns};

const FRR_LIBEXEC: &str = "/usr/lib/frr";
/// The daemons started, in order (zebra first: the others connect to it).
const DAEMONS: [&str; 3] = ["zebra", "bgpd", "staticd"];

/// A running FRR instance (zebra, bgpd, staticd); all killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Frr {
    children: Vec<ChildGuard>,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Frr {
    /// Starts zebra, bgpd and staticd inside `ns` from a fresh directory owned by `frr`, waits
    /// for their vty sockets, then applies `frr_conf` with `vtysh -f`.
    pub fn start(ns: &Netns, frr_conf: &str) -> Result<Frr, RouterError> {
        let dir = instance_dir("frr-")?;
        let empty = in_dir(&dir, "empty.conf");
        write_file(&empty, "")?;
        give_to_frr(&[dir.path(), &empty])?;
        let config = in_dir(&dir, "frr.conf");
        write_file(&config, frr_conf)?;
        let mut frr = Frr {
            children: Vec::new(),
            dir,
            config,
        };
        for daemon in DAEMONS {
            frr.start_daemon(ns, daemon, &empty)?;
        }
        let applied = frr.vtysh_command(&["-f", &frr.config.to_string_lossy()])?;
        if applied.lines().any(|l| l.contains("% ")) {
            return Err(RouterError::Command {
                command: format!("vtysh -f {}", frr.config.display()),
                output: applied,
                log: frr.log_path().display().to_string(),
            });
        }
        Ok(frr)
    }

    fn start_daemon(&mut self, ns: &Netns, daemon: &str, empty: &Path) -> Result<(), RouterError> {
        let d = |name: &str| in_dir(&self.dir, name).to_string_lossy().into_owned();
        let (vty_dir, zserv) = (d(""), d("zserv.api"));
        let (pid, log) = (d(&format!("{daemon}.pid")), d(&format!("{daemon}.log")));
        let log_arg = format!("file:{log}");
        let empty = empty.to_string_lossy();
        let args = [
            "-P",
            "0",
            "--vty_socket",
            &vty_dir,
            "-z",
            &zserv,
            "-i",
            &pid,
            "-f",
            &empty,
            "--log",
            &log_arg,
        ];
        let output = in_dir(&self.dir, &format!("{daemon}.out"));
        let program = format!("{FRR_LIBEXEC}/{daemon}");
        let mut child = spawn_in(ns, &program, &args, &output)?;
        let vty = in_dir(&self.dir, &format!("{daemon}.vty"));
        let log = PathBuf::from(log);
        let ready = poll(&format!("{daemon} vty socket"), STARTUP, &log, |last| {
            check_alive(&mut child, daemon, &output, &log)?;
            let up = vty.exists() && (daemon != "zebra" || Path::new(&zserv).exists());
            *last = format!("{} exists: {}", vty.display(), vty.exists());
            Ok(up.then_some(()))
        });
        self.children.push(child);
        ready
    }

    /// bgpd's log file.
    pub fn log_path(&self) -> PathBuf {
        in_dir(&self.dir, "bgpd.log")
    }

    /// Every daemon's log file (zebra, bgpd, staticd).
    pub fn log_paths(&self) -> Vec<PathBuf> {
        DAEMONS
            .iter()
            .map(|d| in_dir(&self.dir, &format!("{d}.log")))
            .collect()
    }

    /// The instance directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// bgpd's process id.
    pub fn bgpd_pid(&self) -> Option<u32> {
        self.children.get(1).map(ChildGuard::id)
    }

    fn vtysh_command(&self, args: &[&str]) -> Result<String, RouterError> {
        run(
            Command::new("vtysh")
                .arg("--vty_socket")
                .arg(self.dir.path())
                .args(args),
            &self.log_path(),
        )
    }

    /// `vtysh -c <cmd>` against this instance; panics on failure.
    pub fn vtysh(&self, cmd: &str) -> String {
        self.try_vtysh(cmd)
            .unwrap_or_else(|e| panic!("vtysh -c {cmd:?}: {e}"))
    }

    /// `vtysh -c <cmd>` against this instance.
    pub fn try_vtysh(&self, cmd: &str) -> Result<String, RouterError> {
        self.vtysh_command(&["-c", cmd])
    }

    fn json(&self, cmd: &str) -> Result<Value, RouterError> {
        parse_json(cmd, &self.try_vtysh(cmd)?)
    }

    /// `show bgp summary json`.
    pub fn bgp_summary_json(&self) -> Value {
        self.json("show bgp summary json")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `show bgp ipv4 unicast json` (routes under `"routes"`, keyed by prefix).
    pub fn bgp_routes_json(&self) -> Value {
        self.json("show bgp ipv4 unicast json")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The IPv4 unicast prefixes bgpd holds, sorted.
    pub fn bgp_prefixes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .bgp_routes_json()
            .get("routes")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The state of the session with neighbor `addr` from the IPv4 unicast summary.
    pub fn neighbor_state(&self, addr: &str) -> Option<String> {
        let v = self.json("show bgp summary json").ok()?;
        v.pointer(&format!("/ipv4Unicast/peers/{addr}/state"))?
            .as_str()
            .map(str::to_string)
    }

    /// Polls until the session with `addr` is Established.
    pub fn wait_established(&self, addr: &str, timeout: Duration) -> Result<(), RouterError> {
        poll(
            &format!("FRR neighbor {addr} Established"),
            timeout,
            &self.log_path(),
            |last| {
                let state = self.neighbor_state(addr).unwrap_or_default();
                let up = state == "Established";
                *last = state;
                Ok(up.then_some(()))
            },
        )
    }
}

/// Hands paths to the `frr` user and group (the daemons drop privileges to it).
fn give_to_frr(paths: &[&Path]) -> Result<(), RouterError> {
    let not_found = || RouterError::Io {
        what: "looking up the frr user and group (is the Debian frr package installed?)".into(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    let user = nix::unistd::User::from_name("frr")
        .ok()
        .flatten()
        .ok_or_else(not_found)?;
    let group = nix::unistd::Group::from_name("frr")
        .ok()
        .flatten()
        .ok_or_else(not_found)?;
    for p in paths {
        nix::unistd::chown(*p, Some(user.uid), Some(group.gid))
            .map_err(|e| io_error(format!("chown frr {}", p.display()))(e.into()))?;
    }
    Ok(())
}
