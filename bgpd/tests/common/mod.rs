//! Running our `bgpd` binary inside a test namespace, with its status socket, state file and log
//! in a private directory, and the topologies the interop tests share.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bgpd::status::protocol::{Request, Response, query};
use bgpd::{NeighborStatus, RouteStatus};
use fabric_testkit::{ChildGuard, Netns, veth, wait_until};

/// How long sessions may take to come up.
pub const SESSION: Duration = Duration::from_secs(40);
/// How long routes may take to propagate.
pub const ROUTES: Duration = Duration::from_secs(30);
/// Poll interval.
pub const POLL: Duration = Duration::from_millis(100);

/// A running bgpd (SIGKILLed when dropped). Its directory survives [`Bgpd::kill`] so a restart
/// finds the graceful-restart state file.
#[derive(Debug)]
pub struct Bgpd {
    child: Option<ChildGuard>,
    dir: tempfile::TempDir,
    netns: String,
    body: String,
    starts: u32,
}

impl Bgpd {
    /// Writes the configuration (`body` after the status-socket, state-file and log-level
    /// keys) and starts bgpd in `ns`; waits until the status socket answers.
    pub fn start(ns: &Netns, body: &str) -> Bgpd {
        let dir = tempfile::Builder::new().prefix("bgpd-").tempdir().unwrap();
        let mut b = Bgpd {
            child: None,
            dir,
            netns: ns.name().to_string(),
            body: body.to_string(),
            starts: 0,
        };
        b.launch();
        b
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("bgpd.sock")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("bgpd.toml")
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join("run/bgpd.state")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("bgpd.{}.log", self.starts))
    }

    fn config_text(&self, body: &str) -> String {
        format!(
            "status-socket = \"{}\"\nstate-file = \"{}\"\nlog-level = \"debug\"\n{body}",
            self.socket().display(),
            self.state_file().display()
        )
    }

    fn launch(&mut self) {
        self.starts += 1;
        std::fs::write(self.config_path(), self.config_text(&self.body)).unwrap();
        let log = std::fs::File::create(self.log_path()).unwrap();
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(env!("CARGO_BIN_EXE_bgpd"))
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .env_remove("RUST_LOG")
            .spawn()
            .unwrap();
        self.child = Some(ChildGuard(child));
        let up = wait_until(Duration::from_secs(20), POLL, || {
            self.try_query(&Request::Status).is_ok()
        });
        assert!(up, "bgpd did not come up; log:\n{}", self.log());
    }

    /// SIGKILL (no Cease, the state file stays).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        c.0.wait().unwrap()
    }

    /// Starts bgpd again with the same directory and configuration.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Rewrites the configuration file with `body` and sends SIGHUP.
    pub fn reload_with_sighup(&mut self, body: &str) {
        self.body = body.to_string();
        std::fs::write(self.config_path(), self.config_text(body)).unwrap();
        let pid = self.child.as_ref().unwrap().id();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    }

    /// Rewrites the configuration file with `body` and asks for a reload on the status socket.
    pub fn reload(&mut self, body: &str) -> Result<Response, String> {
        std::fs::write(self.config_path(), self.config_text(body)).unwrap();
        let r = self.try_query(&Request::Reload);
        if r.is_ok() {
            self.body = body.to_string();
        }
        r
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn try_query(&self, r: &Request) -> Result<Response, String> {
        query(&self.socket(), r).map_err(|e| {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(x) = src {
                s.push_str(&format!(": {x}"));
                src = x.source();
            }
            s
        })
    }

    pub fn neighbors(&self) -> Vec<NeighborStatus> {
        self.try_query(&Request::Neighbors)
            .ok()
            .and_then(|r| r.neighbors)
            .unwrap_or_default()
    }

    pub fn neighbor(&self, addr: &str) -> Option<NeighborStatus> {
        let a: IpAddr = addr.parse().unwrap();
        self.neighbors().into_iter().find(|n| n.address == a)
    }

    pub fn routes(&self) -> Vec<RouteStatus> {
        self.try_query(&Request::Routes { prefix: None })
            .ok()
            .and_then(|r| r.routes)
            .unwrap_or_default()
    }

    pub fn route(&self, prefix: &str) -> Option<RouteStatus> {
        let p = prefix.parse().unwrap();
        self.routes().into_iter().find(|r| r.prefix == p)
    }

    pub fn wait_established(&self, addr: &str) {
        let ok = wait_until(SESSION, POLL, || {
            self.neighbor(addr)
                .is_some_and(|n| n.state == "Established")
        });
        assert!(
            ok,
            "bgpd: {addr} not Established: {:?}\nlog:\n{}",
            self.neighbor(addr),
            self.log()
        );
    }

    /// Waits until `prefix` is in the Loc-RIB with a path from `from` (true) or until no path
    /// is (false).
    pub fn wait_route(&self, prefix: &str, from: &str, present: bool) {
        let from: IpAddr = from.parse().unwrap();
        let ok = wait_until(ROUTES, POLL, || {
            let has = self
                .route(prefix)
                .is_some_and(|r| r.paths.iter().any(|p| p.from == Some(from)));
            has == present
        });
        assert!(
            ok,
            "bgpd: route {prefix} from {from} present={present} not reached; routes: {:#?}\nlog:\n{}",
            self.routes(),
            self.log()
        );
    }

    /// The last 80 lines of the current log.
    pub fn log(&self) -> String {
        tail(&self.log_path(), 80)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Two namespaces joined by `va`/`vb`: A = 192.0.2.1/30, 2001:db8::1/64; B = 192.0.2.2/30,
/// 2001:db8::2/64 (no DAD, so the addresses are usable at once).
pub fn two_namespaces(tag: &str) -> (Netns, Netns) {
    let a = Netns::new(tag);
    let b = Netns::new(tag);
    veth(&a, "va", &b, "vb");
    a.ip("addr add 192.0.2.1/30 dev va");
    b.ip("addr add 192.0.2.2/30 dev vb");
    a.ip("addr add 2001:db8::1/64 dev va nodad");
    b.ip("addr add 2001:db8::2/64 dev vb nodad");
    (a, b)
}

/// Puts `addr/len` on a veth between `a` and `b` (names `a_if`, `b_if`) with the given
/// addresses.
pub fn link(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    veth(a, a_if, b, b_if);
    a.ip(&format!("addr add {a_addr} dev {a_if}"));
    b.ip(&format!("addr add {b_addr} dev {b_if}"));
}
