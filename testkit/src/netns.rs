//! Private network namespaces for root-only tests, deleted on drop (and swept if orphaned).

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

/// Every namespace this crate creates is named `ft-<tag>-<pid>x<n>`.
const PREFIX: &str = "ft-";
const NETNS_DIR: &str = "/run/netns";

/// Panics with a clear message unless the test runs as root (network namespaces need it).
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates network namespaces and must run as root"
    );
}

/// A network namespace owned by a test. Dropping it kills every process inside and deletes it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `ft-<tag>-<pid>x<n>` with its loopback up. Panics if that fails.
    pub fn new(tag: &str) -> Netns {
        require_root();
        sweep_orphans();
        let name = crate::unique_name(&format!("{PREFIX}{tag}-"));
        run_checked(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> <args>` (args split on whitespace); panics with stderr on failure.
    pub fn ip(&self, args: &str) -> String {
        self.try_ip(args)
            .unwrap_or_else(|e| panic!("ip -n {} {args}: {e}", self.name))
    }

    /// `ip -n <ns> <args>`; the error is stderr.
    pub fn try_ip(&self, args: &str) -> Result<String, String> {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args.split_whitespace())
            .output()
            .map_err(|e| e.to_string())?;
        output_result(out)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `sh -c script` inside the namespace; panics with stderr on failure.
    pub fn sh(&self, script: &str) -> String {
        self.try_sh(script)
            .unwrap_or_else(|e| panic!("in {}: sh -c {script:?}: {e}", self.name))
    }

    /// Runs `sh -c script` inside the namespace; the error is stderr.
    pub fn try_sh(&self, script: &str) -> Result<String, String> {
        let out = self
            .cmd("sh")
            .args(["-c", script])
            .output()
            .map_err(|e| e.to_string())?;
        output_result(out)
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result.
    pub fn run_in<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter_current_thread()
                    .unwrap_or_else(|e| panic!("entering {}: {e}", self.name));
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Moves the calling thread into this namespace (for threads a test owns).
    pub fn enter_current_thread(&self) -> std::io::Result<()> {
        let file = File::open(Path::new(NETNS_DIR).join(&self.name))?;
        setns(file, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_namespace(&self.name);
    }
}

/// Creates a veth pair `a_if` in `a` and `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    a.ip(&format!(
        "link add {a_if} type veth peer name {b_if} netns {}",
        b.name()
    ));
    a.ip(&format!("link set {a_if} up"));
    b.ip(&format!("link set {b_if} up"));
}

fn kill_inside(name: &str) {
    for _ in 0..50 {
        let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() else {
            return;
        };
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn delete_namespace(name: &str) {
    kill_inside(name);
    let _ = Command::new("ip").args(["netns", "del", name]).output();
}

/// Deletes `ft-*` namespaces whose creating process no longer exists.
fn sweep_orphans() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((_, tail)) = rest.rsplit_once('-') else {
            continue;
        };
        let Some((pid, _)) = tail.split_once('x') else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            delete_namespace(&name);
        }
    }
}

fn run_checked(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    output_result(out).unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn output_result(out: Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
