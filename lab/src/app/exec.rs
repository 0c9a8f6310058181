//! Running commands inside a node: the node's environment (its `env`, containerlab's
//! variables and the datastore's) and the way in (the holder's namespaces).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;

use anyhow::{Context, Result, anyhow, bail};

use super::datastore::Datastore;
use super::process::Enter;
use super::state::{Deployed, StateDir};
use calico_lab::model::{Node, NodeKind};

/// PATH inside nodes unless the node's `env` sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment of every process in `node`: a container-like base (`PATH`, `HOME`,
/// `HOSTNAME`), the node's `env`, then the lab's datastore variables (which win).
pub fn node_environment(node: &Node, datastore: &Datastore) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOME".to_string(), "/root".to_string()),
        ("HOSTNAME".to_string(), node.hostname.clone()),
    ]);
    env.extend(node.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(datastore.env());
    env
}

/// How to enter a deployed node.
pub fn enter_node(state: &StateDir, node: &Node) -> Result<Enter> {
    match node.kind {
        NodeKind::Bridge => Ok(Enter::Net {
            netns: node.namespace.clone(),
        }),
        NodeKind::Linux => {
            let holder = state.holder(&node.name)?.ok_or_else(|| {
                anyhow!("node {} was never started (no holder recorded)", node.name)
            })?;
            if !holder.is_running() {
                bail!(
                    "node {}: its holder process (pid {}) is gone, so its namespaces are too; destroy and deploy the lab again",
                    node.name,
                    holder.pid
                );
            }
            Ok(Enter::Node { holder: holder.pid })
        }
    }
}

/// `calico-lab exec`: runs `argv` in the node with the caller's stdin/stdout/stderr and
/// returns its exit code (128 + signal number when killed by a signal).
pub fn run(state: &StateDir, deployed: &Deployed, node_name: &str, argv: &[String]) -> Result<i32> {
    let node = deployed.lab.node(node_name).ok_or_else(|| {
        anyhow!(
            "lab {} has no node {node_name:?} (nodes: {})",
            deployed.lab.name,
            deployed
                .lab
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let enter = enter_node(state, node)?;
    let mut env = node_environment(node, &deployed.datastore);
    if let Ok(term) = std::env::var("TERM") {
        env.entry("TERM".into()).or_insert(term);
    }
    let status = enter
        .command(argv, &env)
        .status()
        .with_context(|| format!("node {node_name}: running {}", argv.join(" ")))?;
    Ok(exit_code(status))
}

/// An exit status as a shell reports it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
