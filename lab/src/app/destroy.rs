//! `destroy`: removes everything a deployment (complete or partial) recorded: pods (with a
//! CNI DEL), processes, namespaces and the state directory. Running it again does nothing.

use std::time::Duration;

use anyhow::Result;

use super::holder::HOLDER_NAME;
use super::net;
use super::process::{self, ProcessRecord};
use super::state::StateDir;

/// Destroys the lab whose state is `state`; with `cleanup`, also its containerlab lab
/// directory (`clab-<lab>` next to the topology file).
pub fn destroy(state: &StateDir, cleanup: bool) -> Result<()> {
    if !state.exists() {
        return Ok(());
    }
    let deployed = state.read_deployed()?;
    if let Some(d) = &deployed {
        for pod in state.pods()? {
            if let Err(e) = super::pod::delete(state, d, &pod, true) {
                tracing::warn!(pod = %pod.name, error = %format!("{e:#}"), "CNI DEL failed; removing the pod anyway");
            }
        }
    }
    let procs = state.processes()?;
    let (keepers, workers): (Vec<ProcessRecord>, Vec<ProcessRecord>) = procs
        .into_iter()
        .partition(|p| p.name == HOLDER_NAME || p.node == "mgmt");
    process::stop_all(&workers, Duration::from_secs(10));
    process::stop_all(&keepers, Duration::from_secs(5));
    let mut namespaces = state.namespaces()?;
    namespaces.reverse();
    namespaces.dedup();
    for ns in namespaces {
        net::delete_netns(&ns)?;
        tracing::info!(namespace = %ns, "deleted");
    }
    if cleanup && let Some(d) = &deployed {
        match std::fs::remove_dir_all(&d.lab.lab_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %d.lab.lab_dir.display(), error = %e, "could not remove the lab directory");
            }
            _ => {}
        }
    }
    state.remove()
}
