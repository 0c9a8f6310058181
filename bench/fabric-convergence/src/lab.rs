//! Driving `calico-lab` for the benchmark: the programs (built in release beside the benchmark),
//! a deployed lab under a unique name (destroyed on drop), pods, and reading each node's BGP
//! status and routes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use fabric_e2e::routes::{KernelRoute, parse_ip_routes};
use fabric_e2e::status::parse_node_status;
use serde_json::Value;

/// The programs a lab needs, side by side.
pub const PROGRAMS: [&str; 5] = [
    "calico-lab",
    "calico-node",
    "calicoctl",
    "calico",
    "calico-ipam",
];

/// The directory with [`PROGRAMS`]: `explicit`, else this benchmark's own directory after a
/// `cargo build --release` of their packages (a no-op when they are fresh).
pub fn programs(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let dir = match explicit {
        Some(d) => d,
        None => {
            let exe = std::env::current_exe().context("the benchmark's own path")?;
            let dir = exe
                .parent()
                .context("the benchmark binary has no directory")?
                .to_path_buf();
            let target = dir
                .parent()
                .context("the profile directory has no parent")?;
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .nth(2)
                .context("bench/fabric-convergence lies in the workspace")?;
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            eprintln!("building {} (release)", PROGRAMS.join(", "));
            let status = Command::new(&cargo)
                .arg("build")
                .arg("--manifest-path")
                .arg(workspace.join("Cargo.toml"))
                .args(["--release", "--bins"])
                .args(["-p", "calico-lab", "-p", "calico-node"])
                .args(["-p", "calicoctl", "-p", "fabric-cni"])
                .env("CARGO_TARGET_DIR", target)
                .status()
                .with_context(|| format!("running {cargo} build"))?;
            if !status.success() {
                bail!("cargo build of the lab's programs failed ({status})");
            }
            dir
        }
    };
    for p in PROGRAMS {
        if !dir.join(p).is_file() {
            bail!("{} has no {p}", dir.display());
        }
    }
    Ok(dir)
}

/// A deployed lab; destroyed when dropped.
pub struct LabRun {
    bin: PathBuf,
    topo: PathBuf,
    /// Unique lab name.
    pub name: String,
    /// Prefix of the lab's namespaces (pods are `<prefix>pod-<name>`).
    lab_prefix: String,
    destroyed: bool,
}

impl LabRun {
    /// Deploys `topo` (sqlite datastore) under a unique name.
    pub fn deploy(bin: &Path, topo: &Path) -> Result<LabRun> {
        let mut lab = LabRun {
            bin: bin.to_path_buf(),
            topo: topo.to_path_buf(),
            name: fabric_testkit::unique_name("bench"),
            lab_prefix: String::new(),
            destroyed: false,
        };
        lab.run(&["deploy", "--datastore", "sqlite"])
            .with_context(|| format!("deploying {}", topo.display()))?;
        lab.lab_prefix = lab.read_lab_prefix()?;
        Ok(lab)
    }

    /// `calico-lab -t <topo> --name <lab> ARGS`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin.join("calico-lab"));
        c.arg("-t")
            .arg(&self.topo)
            .args(["--name", &self.name])
            .args(args)
            .env("FABRIC_BIN_DIR", &self.bin)
            .stdin(Stdio::null());
        c
    }

    /// Runs calico-lab; its stdout, or an error with its stderr.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let out = self
            .command(args)
            .output()
            .with_context(|| format!("running calico-lab {args:?}"))?;
        if !out.status.success() {
            bail!(
                "calico-lab {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Node name -> network namespace, for the calico-nodes.
    pub fn calico_nodes(&self) -> Result<BTreeMap<String, String>> {
        let report: Value = serde_json::from_str(&self.run(&["inspect", "--json"])?)
            .context("parsing inspect --json")?;
        Ok(report["nodes"]
            .as_array()
            .context("inspect: no nodes")?
            .iter()
            .filter(|n| n["role"] == "calico-node")
            .filter_map(|n| {
                Some((
                    n["name"].as_str()?.to_string(),
                    n["namespace"].as_str()?.to_string(),
                ))
            })
            .collect())
    }

    /// Adds pod `name` on `node`; its address and network namespace.
    pub fn pod_add(&self, node: &str, name: &str) -> Result<(Ipv4Addr, String)> {
        let out = self.run(&["pod", "add", "--node", node, name])?;
        let ip = out
            .split_whitespace()
            .filter_map(|a| a.split('/').next()?.parse::<Ipv4Addr>().ok())
            .next()
            .with_context(|| format!("pod add {name} printed no IPv4 address: {out:?}"))?;
        let netns = calico_lab::model::pod_namespace(&self.lab_prefix, name);
        Ok((ip, netns))
    }

    fn read_lab_prefix(&self) -> Result<String> {
        let report: Value = serde_json::from_str(&self.run(&["inspect", "--json"])?)
            .context("parsing inspect --json")?;
        let state = report["state_dir"]
            .as_str()
            .context("inspect: no state_dir")?;
        let lab: Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(state).join("lab.json"))
                .context("reading lab.json")?,
        )
        .context("parsing lab.json")?;
        Ok(lab["lab"]["lab_prefix"]
            .as_str()
            .context("lab.json: no lab_prefix")?
            .to_string())
    }

    /// How many of `node`'s BGP sessions are Established, and how many it lists.
    pub fn sessions(&self, node: &str) -> Result<(usize, usize)> {
        let out = self.run(&["exec", node, "--", "calicoctl", "node", "status"])?;
        let rows = parse_node_status(&out);
        Ok((rows.iter().filter(|r| r.established()).count(), rows.len()))
    }

    /// Destroys the lab now.
    pub fn destroy(mut self) -> Result<()> {
        self.destroyed = true;
        self.run(&["destroy"]).map(drop)
    }
}

impl Drop for LabRun {
    fn drop(&mut self) {
        if !self.destroyed
            && let Err(e) = self.run(&["destroy"])
        {
            eprintln!("destroying lab {}: {e:#}", self.name);
        }
    }
}

/// The IPv4 routes of network namespace `netns` (read from the host with `ip -n`).
pub fn routes_in(netns: &str) -> Result<Vec<KernelRoute>> {
    let out = Command::new("ip")
        .args(["-n", netns, "-j", "-4", "route", "show", "table", "main"])
        .output()
        .context("running ip route")?;
    if !out.status.success() {
        bail!(
            "ip -n {netns} route: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_ip_routes(&String::from_utf8_lossy(&out.stdout)).map_err(anyhow::Error::msg)
}

/// Copies directory `from` to `to` recursively.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}
