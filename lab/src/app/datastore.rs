//! The lab's datastore: a SQLite file in the state directory shared by every node (default),
//! or a real etcd started in the management namespace on the management gateway address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::net::{http_get, netns_path};
use super::process::{self, Enter, ProcessRecord};
use super::state::StateDir;
use calico_lab::cni::DatastoreRef;
use calico_lab::model::Lab;

/// etcd's client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;

/// Which datastore `deploy` sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DatastoreKind {
    /// A SQLite file in the lab's state directory.
    Sqlite,
    /// etcd (Debian's etcd-server) in the management namespace.
    Etcdv3,
}

/// The datastore a deployed lab uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Datastore {
    /// A SQLite file.
    Sqlite {
        /// The file.
        path: PathBuf,
    },
    /// etcd v3.
    Etcdv3 {
        /// Client URL reachable from every node over eth0.
        endpoint: String,
    },
}

impl Datastore {
    /// The variables every node process and `exec` get.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            Datastore::Sqlite { path } => vec![
                ("DATASTORE_TYPE".into(), "sqlite".into()),
                ("SQLITE_PATH".into(), path.display().to_string()),
            ],
            Datastore::Etcdv3 { endpoint } => vec![
                ("DATASTORE_TYPE".into(), "etcdv3".into()),
                ("ETCD_ENDPOINTS".into(), endpoint.clone()),
            ],
        }
    }

    /// The same, for the default CNI configuration.
    pub fn cni_ref(&self) -> DatastoreRef {
        match self {
            Datastore::Sqlite { path } => DatastoreRef::Sqlite(path.display().to_string()),
            Datastore::Etcdv3 { endpoint } => DatastoreRef::Etcd(endpoint.clone()),
        }
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            Datastore::Sqlite { path } => format!("sqlite {}", path.display()),
            Datastore::Etcdv3 { endpoint } => format!("etcdv3 {endpoint}"),
        }
    }

    /// Sets up the datastore for `lab` (for etcd: starts it and waits until it is healthy).
    pub fn create(kind: DatastoreKind, lab: &Lab, state: &StateDir) -> Datastore {
        match kind {
            DatastoreKind::Sqlite => Datastore::Sqlite {
                path: state.sqlite_path(),
            },
            DatastoreKind::Etcdv3 => Datastore::Etcdv3 {
                endpoint: format!("http://{}:{ETCD_CLIENT_PORT}", lab.mgmt.ipv4_gateway),
            },
        }
    }
}

/// Starts etcd in the management namespace and waits (up to `timeout`) until it is healthy.
pub fn start_etcd(lab: &Lab, state: &StateDir, timeout: Duration) -> Result<ProcessRecord> {
    let gw = lab.mgmt.ipv4_gateway;
    let client = format!("http://{gw}:{ETCD_CLIENT_PORT},http://127.0.0.1:{ETCD_CLIENT_PORT}");
    let peer = "http://127.0.0.1:2380".to_string();
    let argv: Vec<String> = [
        "etcd",
        "--name",
        "calico-lab",
        "--data-dir",
        &state.etcd_dir().display().to_string(),
        "--listen-client-urls",
        &client,
        "--advertise-client-urls",
        &format!("http://{gw}:{ETCD_CLIENT_PORT}"),
        "--listen-peer-urls",
        &peer,
        "--initial-advertise-peer-urls",
        &peer,
        "--initial-cluster",
        &format!("calico-lab={peer}"),
        "--log-level",
        "warn",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = [("PATH".to_string(), super::exec::DEFAULT_PATH.to_string())].into();
    let enter = Enter::Net {
        netns: lab.mgmt.namespace.clone(),
    };
    let record = process::start(state, "mgmt", "etcd", &enter, &argv, &env)?;
    let addr = SocketAddr::from((gw, ETCD_CLIENT_PORT));
    let ns = netns_path(&lab.mgmt.namespace);
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(body) = http_get(&ns, addr, "/health")
            && body.contains("\"health\":\"true\"")
        {
            tracing::info!(endpoint = %addr, "etcd is healthy");
            return Ok(record);
        }
        if !record.is_running() {
            bail!(
                "etcd exited during start: {}",
                record
                    .log
                    .as_deref()
                    .map(|l| process::log_tail(l, 10))
                    .unwrap_or_default()
            );
        }
        if Instant::now() >= deadline {
            bail!("etcd did not become healthy at {addr} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
