//! Kernel networking for the lab, always inside the lab's own namespaces: namespaces, veth
//! pairs, bridges, addresses, sysctls, and reachability checks from inside a namespace.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// The file of namespace `name`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Whether namespace `name` exists.
pub fn netns_exists(name: &str) -> bool {
    netns_path(name).exists()
}

/// Runs `ip <args>`; the error carries ip's stderr.
pub fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("running ip {}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }
}

/// Runs `ip -n <ns> <args>`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip(&full)
}

/// Kills whatever still runs in namespace `name` and deletes it (no error if it is gone).
pub fn delete_netns(name: &str) -> Result<()> {
    if !netns_exists(name) {
        return Ok(());
    }
    for _ in 0..100 {
        let pids = pids_in(name);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ip(&["netns", "del", name]).map(drop)
}

/// The pids of processes in namespace `name`.
pub fn pids_in(name: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// One end of a veth pair to create.
pub struct VethEnd<'a> {
    /// Namespace.
    pub ns: &'a str,
    /// Interface name.
    pub name: &'a str,
    /// MAC address, if fixed.
    pub mac: Option<&'a str>,
}

/// Creates a veth pair directly between two namespaces (never in the host's), both ends up.
pub fn add_veth(a: &VethEnd<'_>, b: &VethEnd<'_>, mtu: u32) -> Result<()> {
    let mtu = mtu.to_string();
    let mut args = vec!["link", "add", a.name, "mtu", &mtu];
    if let Some(mac) = a.mac {
        args.extend(["address", mac]);
    }
    args.extend(["type", "veth", "peer", "name", b.name, "mtu", &mtu]);
    if let Some(mac) = b.mac {
        args.extend(["address", mac]);
    }
    if a.ns != b.ns {
        args.extend(["netns", b.ns]);
    }
    ip_in(a.ns, &args)?;
    ip_in(a.ns, &["link", "set", a.name, "up"])?;
    ip_in(b.ns, &["link", "set", b.name, "up"])?;
    Ok(())
}

/// Runs `f` on a thread that entered the network namespace at `netns_file`.
pub fn in_netns<R: Send>(netns_file: &Path, f: impl FnOnce() -> R + Send) -> Result<R> {
    let file = File::open(netns_file)
        .with_context(|| format!("opening namespace {}", netns_file.display()))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(file, CloneFlags::CLONE_NEWNET)
                .map_err(|e| anyhow!("entering namespace {}: {e}", netns_file.display()))?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow!("a thread inside {} panicked", netns_file.display()))?
    })
}

/// Sets a sysctl inside namespace `ns` (`net.ipv4.ip_forward` -> /proc/sys/net/ipv4/ip_forward).
pub fn set_sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    in_netns(&netns_path(ns), || std::fs::write(&path, value))?
        .with_context(|| format!("in {ns}: setting {key}={value} ({})", path.display()))
}

/// Whether a TCP connection to `addr` succeeds from inside the namespace at `netns_file`.
pub fn tcp_accepts(netns_file: &Path, addr: SocketAddr) -> bool {
    in_netns(netns_file, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
    })
    .unwrap_or(false)
}

/// A plain HTTP/1.0 GET from inside the namespace at `netns_file`; returns the body.
pub fn http_get(netns_file: &Path, addr: SocketAddr, path: &str) -> Result<String> {
    in_netns(netns_file, || -> Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .with_context(|| format!("connecting to {addr}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .context("setting a read timeout")?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")
            .with_context(|| format!("sending to {addr}"))?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)
            .with_context(|| format!("reading from {addr}"))?;
        Ok(resp
            .split_once("\r\n\r\n")
            .map_or(resp.clone(), |(_, body)| body.to_string()))
    })?
}
