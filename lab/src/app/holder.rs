//! A node's holder: the small process that owns a linux node's private view of the host.
//!
//! `deploy` starts `calico-lab node-holder <spec>` per linux node. The holder enters the node's
//! network namespace, takes a mount and UTS namespace of its own, sets the host name, and
//! builds the node's file view:
//!
//! * `/run` and `/tmp` are private tmpfs (pid files, control sockets such as FRR's
//!   `/run/frr/*.vty` and BIRD's `/run/bird/bird.ctl` never clash between nodes), with
//!   `/run/netns` and the lab's state directory still visible;
//! * `/etc`, `/var` and `/root` are copy-on-write overlays of the host's (writes stay in
//!   `nodes/<node>/overlay/` of the state directory);
//! * `tmpfs` entries and `binds` are mounted last (missing targets are created, below the
//!   host's own directories through an overlay of the nearest existing one).
//!
//! Every process of the node (daemons, `exec`, `calico-lab exec`, CNI plugins) joins the
//! holder's namespaces with `nsenter --target <holder>`, so all see the same view.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use serde::{Deserialize, Serialize};

use super::net::netns_path;
use super::process::{ProcessRecord, proc_stat};
use super::state::StateDir;
use calico_lab::model::Bind;

/// The process name under which holders are recorded.
pub const HOLDER_NAME: &str = "holder";

/// Directories that are a private tmpfs in every node.
const PRIVATE_TMPFS: [&str; 2] = ["/run", "/tmp"];

/// Directories every node sees as a copy-on-write overlay of the host's.
const OVERLAYS: [&str; 3] = ["/etc", "/var", "/root"];

/// Directories created in each node's private `/run`, with their owner (a user name).
const RUN_DIRS: [(&str, Option<&str>); 5] = [
    ("frr", Some("frr")),
    ("bird", None),
    ("calico", None),
    ("lock", None),
    ("gobgp", None),
];

/// Everything a holder needs, written by `deploy` as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HolderSpec {
    /// The node's network namespace.
    pub netns: String,
    /// The node's host name.
    pub hostname: String,
    /// The node's directory in the state directory.
    pub node_dir: PathBuf,
    /// Host paths inside the private directories that stay visible (the state directory,
    /// `/run/netns`, ...).
    pub keep_visible: Vec<PathBuf>,
    /// `tmpfs` mounts (target, options).
    pub tmpfs: Vec<(PathBuf, String)>,
    /// Bind mounts, parents before children.
    pub binds: Vec<Bind>,
}

/// Starts the holder of a node and waits until its view is ready.
pub fn start(state: &StateDir, node: &str, spec: &HolderSpec) -> Result<ProcessRecord> {
    let node_dir = state.node_dir(node)?;
    let spec_path = node_dir.join("holder.json");
    fs::write(
        &spec_path,
        serde_json::to_string_pretty(spec).context("serializing the holder spec")?,
    )
    .with_context(|| format!("writing {}", spec_path.display()))?;
    let log = state.log_file(node, HOLDER_NAME)?;
    let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let exe = std::env::current_exe().context("finding the calico-lab executable")?;
    let mut child = Command::new(&exe)
        .arg("node-holder")
        .arg(&spec_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("node {node}: starting its holder"))?;
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    let record = ProcessRecord {
        node: node.to_string(),
        name: HOLDER_NAME.to_string(),
        pid,
        start_time: proc_stat(pid).map_or(0, |(_, s)| s),
        argv: vec![
            exe.display().to_string(),
            "node-holder".into(),
            spec_path.display().to_string(),
        ],
        log: Some(log.clone()),
    };
    state.record_process(&record)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("node {node}: the holder has no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .with_context(|| format!("node {node}: reading from its holder"))?;
    if line.trim() != "ready" {
        let status = child.wait().ok();
        bail!(
            "node {node}: preparing its namespaces and file view failed ({}): {}",
            status.map_or_else(|| "unknown status".into(), |s| s.to_string()),
            super::process::log_tail(&log, 10)
        );
    }
    Ok(record)
}

/// The `node-holder` subcommand: builds the view, reports `ready` on stdout, then waits to
/// be killed.
pub fn run(spec_path: &Path) -> Result<()> {
    let text = fs::read_to_string(spec_path)
        .with_context(|| format!("reading {}", spec_path.display()))?;
    let spec: HolderSpec =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", spec_path.display()))?;
    let _ = nix::unistd::setsid();
    let netns = File::open(netns_path(&spec.netns))
        .with_context(|| format!("opening namespace {}", spec.netns))?;
    setns(netns, CloneFlags::CLONE_NEWNET)
        .map_err(|e| anyhow!("entering namespace {}: {e}", spec.netns))?;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS)
        .map_err(|e| anyhow!("creating mount and UTS namespaces: {e}"))?;
    mount_flags("/", MsFlags::MS_REC | MsFlags::MS_SLAVE)?;
    let _ = umount2("/sys", MntFlags::MNT_DETACH);
    mount(
        Some("sysfs"),
        "/sys",
        Some("sysfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| anyhow!("mounting /sys for the node's namespace: {e}"))?;
    nix::unistd::sethostname(&spec.hostname)
        .map_err(|e| anyhow!("setting host name {}: {e}", spec.hostname))?;

    let kept: Vec<(PathBuf, File)> = spec
        .keep_visible
        .iter()
        .filter(|p| p.exists())
        .map(|p| open_path(p).map(|f| (p.clone(), f)))
        .collect::<Result<_>>()?;
    let sources: Vec<File> = spec
        .binds
        .iter()
        .map(|b| open_path(&b.source))
        .collect::<Result<_>>()?;

    for dir in PRIVATE_TMPFS {
        let mode = if dir == "/tmp" { "1777" } else { "0755" };
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("mode={mode}").as_str()),
        )
        .map_err(|e| anyhow!("mounting a private tmpfs on {dir}: {e}"))?;
        for (path, fd) in kept.iter().filter(|(p, _)| p.starts_with(dir)) {
            create_like(path, fd)?;
            bind_from_fd(fd, path, true)?;
        }
    }
    for (name, owner) in RUN_DIRS {
        let d = Path::new("/run").join(name);
        fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        if let Some(user) = owner.and_then(|u| nix::unistd::User::from_name(u).ok().flatten()) {
            nix::unistd::chown(&d, Some(user.uid), Some(user.gid))
                .map_err(|e| anyhow!("chown {} to {}: {e}", d.display(), user.name))?;
        }
    }

    let mut writable: Vec<PathBuf> = PRIVATE_TMPFS.iter().map(PathBuf::from).collect();
    for dir in OVERLAYS {
        if Path::new(dir).is_dir() {
            overlay(Path::new(dir), &spec.node_dir)?;
            writable.push(PathBuf::from(dir));
        }
    }
    for (target, options) in &spec.tmpfs {
        ensure_target(target, true, &spec.node_dir, &mut writable)?;
        let (flags, data) = tmpfs_options(options);
        mount(
            Some("tmpfs"),
            target,
            Some("tmpfs"),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .map_err(|e| anyhow!("tmpfs on {} ({options}): {e}", target.display()))?;
    }
    for (bind, fd) in spec.binds.iter().zip(&sources) {
        let is_dir = fd
            .metadata()
            .with_context(|| format!("inspecting bind source {}", bind.source.display()))?
            .is_dir();
        ensure_target(&bind.target, is_dir, &spec.node_dir, &mut writable)?;
        bind_from_fd(fd, &bind.target, true)?;
        if bind.read_only {
            mount(
                None::<&str>,
                &bind.target,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(|e| anyhow!("making {} read-only: {e}", bind.target.display()))?;
        }
    }

    let mut out = std::io::stdout();
    writeln!(out, "ready").context("reporting readiness")?;
    out.flush().context("reporting readiness")?;
    let devnull = File::open("/dev/null").context("opening /dev/null")?;
    let _ = nix::unistd::dup2_stdout(&devnull);
    loop {
        std::thread::park();
    }
}

fn mount_flags(target: &str, flags: MsFlags) -> Result<()> {
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(|e| anyhow!("changing mount propagation of {target}: {e}"))
}

/// An `O_PATH` handle: keeps a host path reachable after it is covered by another mount.
fn open_path(p: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_PATH.bits())
        .open(p)
        .with_context(|| format!("opening {}", p.display()))
}

fn bind_from_fd(fd: &File, target: &Path, recursive: bool) -> Result<()> {
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(source.as_str()),
        target,
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(|e| anyhow!("bind mount onto {}: {e}", target.display()))
}

/// Creates an empty file or directory at `path`, of the same type as what `fd` refers to.
fn create_like(path: &Path, fd: &File) -> Result<()> {
    let is_dir = fd
        .metadata()
        .with_context(|| format!("inspecting {}", path.display()))?
        .is_dir();
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    if is_dir {
        fs::create_dir_all(path)
    } else {
        File::create(path).map(drop)
    }
    .with_context(|| format!("creating {}", path.display()))
}

/// Mounts a copy-on-write overlay of host directory `dir` on itself.
fn overlay(dir: &Path, node_dir: &Path) -> Result<()> {
    let name = dir
        .display()
        .to_string()
        .trim_start_matches('/')
        .replace('/', "_");
    let base = node_dir.join("overlay").join(name);
    let (upper, work) = (base.join("upper"), base.join("work"));
    for d in [&upper, &work] {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        dir.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        dir,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| {
        anyhow!(
            "overlay on {} (upper in {}): {e}",
            dir.display(),
            base.display()
        )
    })
}

/// Makes sure a mount target exists in the node's view without touching the host: it is
/// created inside a private or overlaid directory, overlaying its nearest existing ancestor
/// first when that is one of the host's own directories.
fn ensure_target(
    target: &Path,
    is_dir: bool,
    node_dir: &Path,
    writable: &mut Vec<PathBuf>,
) -> Result<()> {
    if fs::symlink_metadata(target).is_ok() {
        return Ok(());
    }
    let mut ancestor = target.parent();
    while let Some(a) = ancestor {
        if a.is_dir() {
            break;
        }
        ancestor = a.parent();
    }
    let ancestor = ancestor.unwrap_or(Path::new("/"));
    if !writable.iter().any(|w| ancestor.starts_with(w)) {
        if ancestor == Path::new("/") {
            bail!(
                "mount target {} does not exist on this host, and calico-lab creates missing targets only below an existing directory other than / (use a target under /etc, /opt, /srv, ...)",
                target.display()
            );
        }
        overlay(ancestor, node_dir)?;
        writable.push(ancestor.to_path_buf());
    }
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    if is_dir {
        fs::create_dir_all(target)
    } else {
        File::create(target).map(drop)
    }
    .with_context(|| format!("creating mount target {}", target.display()))
}

/// Docker-style tmpfs options: flag words become mount flags, the rest tmpfs data.
fn tmpfs_options(options: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match o {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "rw" | "exec" | "suid" | "dev" => {}
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_tmpfs_flags_become_mount_flags() {
        let (flags, data) = tmpfs_options("rw,noexec,nosuid,size=65536k,mode=1777");
        assert!(flags.contains(MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID));
        assert_eq!(data, "size=65536k,mode=1777");
    }
}
