//! A lab's state directory (`/run/calico-lab/<lab>/`, or under `CALICO_LAB_STATE_DIR`): the
//! deployed lab, the namespaces and processes it created, its pods and its datastore.
//!
//! Layout: `lab.json` (what was deployed), `namespaces` (one created namespace a line,
//! appended as each is created), `processes.jsonl` (one started process a line), `pods/`,
//! `nodes/<node>/` (logs, generated configs, the node's private overlays), `datastore.sqlite`
//! or `etcd/`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::datastore::Datastore;
use super::process::ProcessRecord;
use calico_lab::model::Lab;

/// Default parent of all lab state directories.
pub const DEFAULT_BASE: &str = "/run/calico-lab";

/// What `deploy` recorded about a lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployed {
    /// The lab as deployed.
    pub lab: Lab,
    /// Its datastore.
    pub datastore: Datastore,
}

/// A pod created by `pod add`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    /// Pod name.
    pub name: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// The node whose CNI plugin wired it.
    pub node: String,
    /// The pod's network namespace.
    pub netns: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// Labels passed to the plugin.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The network configuration list used (file name and JSON text), for DEL.
    pub config_source: String,
    /// The configuration list's JSON.
    pub config_json: String,
    /// The ADD result (the DEL's `prevResult`).
    pub result: serde_json::Value,
    /// Addresses from the result.
    pub addresses: Vec<String>,
}

/// One lab's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory of lab `name` (it may not exist).
    pub fn for_lab(name: &str) -> StateDir {
        let base = std::env::var_os("CALICO_LAB_STATE_DIR")
            .filter(|b| !b.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_BASE), PathBuf::from);
        StateDir {
            root: base.join(name),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a deployment (complete or partial) exists.
    pub fn exists(&self) -> bool {
        self.root.exists()
    }

    /// Creates the directory for a new deployment.
    pub fn create(&self) -> Result<()> {
        fs::create_dir_all(self.root.join("pods"))
            .with_context(|| format!("creating state directory {}", self.root.display()))
    }

    /// A node's private directory, created on first use.
    pub fn node_dir(&self, node: &str) -> Result<PathBuf> {
        let d = self.root.join("nodes").join(node);
        fs::create_dir_all(d.join("logs")).with_context(|| format!("creating {}", d.display()))?;
        Ok(d)
    }

    /// The log file of process `name` of node `node` (or `mgmt`).
    pub fn log_file(&self, node: &str, name: &str) -> Result<PathBuf> {
        Ok(self
            .node_dir(node)?
            .join("logs")
            .join(format!("{name}.log")))
    }

    /// The SQLite datastore file.
    pub fn sqlite_path(&self) -> PathBuf {
        self.root.join("datastore.sqlite")
    }

    /// etcd's data directory.
    pub fn etcd_dir(&self) -> PathBuf {
        self.root.join("etcd")
    }

    /// Writes `lab.json`.
    pub fn write_deployed(&self, d: &Deployed) -> Result<()> {
        let path = self.root.join("lab.json");
        let text = serde_json::to_string_pretty(d).context("serializing the lab")?;
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads `lab.json` (`None` if a deployment failed before writing it).
    pub fn read_deployed(&self) -> Result<Option<Deployed>> {
        read_json(&self.root.join("lab.json"))
    }

    /// Records a namespace the lab just created.
    pub fn record_namespace(&self, ns: &str) -> Result<()> {
        append_line(&self.root.join("namespaces"), ns)
    }

    /// The namespaces the lab created, in creation order.
    pub fn namespaces(&self) -> Result<Vec<String>> {
        Ok(read_lines(&self.root.join("namespaces"))?
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// Records a process the lab started.
    pub fn record_process(&self, p: &ProcessRecord) -> Result<()> {
        let line = serde_json::to_string(p).context("serializing a process record")?;
        append_line(&self.root.join("processes.jsonl"), &line)
    }

    /// The processes the lab started, in start order.
    pub fn processes(&self) -> Result<Vec<ProcessRecord>> {
        let path = self.root.join("processes.jsonl");
        read_lines(&path)?
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("reading {}", path.display())))
            .collect()
    }

    /// The holder process of a node (the owner of its mount view), if recorded.
    pub fn holder(&self, node: &str) -> Result<Option<ProcessRecord>> {
        Ok(self
            .processes()?
            .into_iter()
            .find(|p| p.node == node && p.name == super::holder::HOLDER_NAME))
    }

    /// Writes a pod record.
    pub fn write_pod(&self, pod: &PodRecord) -> Result<()> {
        let path = self.pod_path(&pod.name);
        let text = serde_json::to_string_pretty(pod).context("serializing a pod record")?;
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads pod `name`'s record, if the pod exists.
    pub fn read_pod(&self, name: &str) -> Result<Option<PodRecord>> {
        read_json(&self.pod_path(name))
    }

    /// Deletes pod `name`'s record.
    pub fn remove_pod(&self, name: &str) -> Result<()> {
        let path = self.pod_path(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// All pods, by name.
    pub fn pods(&self) -> Result<Vec<PodRecord>> {
        let dir = self.root.join("pods");
        let mut names = Vec::new();
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for e in entries {
                    let e = e.with_context(|| format!("listing {}", dir.display()))?;
                    if let Some(n) = e.file_name().to_str().and_then(|n| n.strip_suffix(".json")) {
                        names.push(n.to_string());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        }
        names.sort();
        let mut pods = Vec::new();
        for n in names {
            if let Some(p) = self.read_pod(&n)? {
                pods.push(p);
            }
        }
        Ok(pods)
    }

    fn pod_path(&self, name: &str) -> PathBuf {
        self.root.join("pods").join(format!("{name}.json"))
    }

    /// Removes the whole directory.
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", self.root.display()))
            }
            _ => Ok(()),
        }
    }
}

/// A JSON file's value, `None` if the file does not exist.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{line}").with_context(|| format!("writing {}", path.display()))
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_string).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
