//! Pods: a network namespace per pod, wired by running the node's CNI plugin chain from
//! inside the node with the CNI exec protocol (ADD, and DEL in reverse with the cached
//! result). The configuration is the first of the node's `/etc/cni/net.d/*.{conflist,conf,json}`
//! (as libcni picks it), or the project's `calico` plugin with `calico-ipam` when there is none.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use super::exec::{enter_node, exit_code, node_environment};
use super::net;
use super::process::Enter;
use super::roles::in_view;
use super::state::{Deployed, PodRecord, StateDir};
use calico_lab::cni::{
    self, CniResult, NetworkConfigList, PodIdentity, default_calico_config, pick_config_file,
};
use calico_lab::model::{Node, NodeKind};

/// Directories searched for CNI plugins after the directory of `calico-lab` itself, unless the
/// node's `env` sets `CNI_PATH`.
pub const DEFAULT_CNI_DIRS: [&str; 2] = ["/opt/cni/bin", "/usr/lib/cni"];

/// The interface name inside pods.
pub const POD_IFNAME: &str = "eth0";

/// What `pod add` asks for.
#[derive(Debug, Clone)]
pub struct PodRequest {
    /// Pod name (a DNS-1123 label).
    pub name: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// The node whose plugin wires the pod.
    pub node: String,
    /// Labels, passed to the plugin in `args.cni.labels`.
    pub labels: BTreeMap<String, String>,
}

/// `pod add`: creates the pod's namespace and runs CNI ADD; prints nothing, returns the record.
pub fn add(state: &StateDir, deployed: &Deployed, req: &PodRequest) -> Result<PodRecord> {
    check_dns_label("pod name", &req.name)?;
    check_dns_label("namespace", &req.namespace)?;
    for k in req.labels.keys() {
        if k.is_empty() {
            bail!("--label: a label needs a name (K=V)");
        }
    }
    if let Some(p) = state.read_pod(&req.name)? {
        bail!("pod {} already exists (on node {})", p.name, p.node);
    }
    let lab = &deployed.lab;
    let node = lab
        .node(&req.node)
        .ok_or_else(|| anyhow!("lab {} has no node {:?}", lab.name, req.node))?;
    if node.kind != NodeKind::Linux {
        bail!(
            "node {} is a bridge; pods need a linux node to run the CNI plugin",
            node.name
        );
    }
    let (enter, view) = node_view(state, node)?;
    let list = node_config(&view, node, deployed)?;
    let netns = lab.pod_namespace(&req.name);
    if lab.namespaces().contains(&netns) || net::netns_exists(&netns) {
        bail!(
            "network namespace {netns} for pod {} already exists",
            req.name
        );
    }
    let identity = PodIdentity {
        container_id: format!("calico-lab-{}-{}", lab.name, req.name),
        name: req.name.clone(),
        namespace: req.namespace.clone(),
    };
    net::ip(&["netns", "add", &netns])?;
    state.record_namespace(&netns)?;
    net::ip_in(&netns, &["link", "set", "lo", "up"])?;
    let invoker = Invoker {
        enter: &enter,
        view: &view,
        node,
        deployed,
        identity: &identity,
        netns: &netns,
    };
    let mut prev: Option<Value> = None;
    let mut last: Option<CniResult> = None;
    for i in 0..list.plugins.len() {
        let conf = list.plugin_config(i, prev.as_ref(), &req.labels);
        match invoker.call(list.plugin_type(i), "ADD", &conf) {
            Ok(Some(r)) => {
                prev = Some(r.raw.clone());
                last = Some(r);
            }
            Ok(None) => {}
            Err(e) => {
                for j in (0..=i).rev() {
                    let conf = list.plugin_config(j, prev.as_ref(), &req.labels);
                    let _ = invoker.call(list.plugin_type(j), "DEL", &conf);
                }
                let _ = net::delete_netns(&netns);
                return Err(e.context(format!("pod {}: CNI ADD on node {}", req.name, node.name)));
            }
        }
    }
    let result =
        last.ok_or_else(|| anyhow!("pod {}: the CNI chain returned no result", req.name))?;
    let record = PodRecord {
        name: req.name.clone(),
        namespace: req.namespace.clone(),
        node: node.name.clone(),
        netns,
        container_id: identity.container_id.clone(),
        labels: req.labels.clone(),
        config_source: list.source.clone(),
        config_json: list.to_json().to_string(),
        addresses: result.ips.iter().map(ToString::to_string).collect(),
        result: result.raw,
    };
    state.write_pod(&record)?;
    Ok(record)
}

/// `pod del` (and `destroy`): CNI DEL in reverse order, then the namespace and the record go.
/// With `force`, a failing DEL (or a node that is gone) does not stop the clean-up.
pub fn delete(state: &StateDir, deployed: &Deployed, pod: &PodRecord, force: bool) -> Result<()> {
    let outcome = cni_del(state, deployed, pod);
    if let Err(e) = &outcome
        && !force
    {
        bail!(
            "pod {}: CNI DEL failed, the pod is kept so DEL can be retried: {e:#}",
            pod.name
        );
    }
    net::delete_netns(&pod.netns)?;
    state.remove_pod(&pod.name)?;
    outcome
}

fn cni_del(state: &StateDir, deployed: &Deployed, pod: &PodRecord) -> Result<()> {
    let node = deployed
        .lab
        .node(&pod.node)
        .ok_or_else(|| anyhow!("pod {}: its node {} is not in the lab", pod.name, pod.node))?;
    let (enter, view) = node_view(state, node)?;
    let list = NetworkConfigList::parse(&pod.config_source, &pod.config_json)?;
    let identity = PodIdentity {
        container_id: pod.container_id.clone(),
        name: pod.name.clone(),
        namespace: pod.namespace.clone(),
    };
    let invoker = Invoker {
        enter: &enter,
        view: &view,
        node,
        deployed,
        identity: &identity,
        netns: &pod.netns,
    };
    let mut first_error = None;
    for i in (0..list.plugins.len()).rev() {
        let conf = list.plugin_config(i, Some(&pod.result), &pod.labels);
        if let Err(e) = invoker.call(list.plugin_type(i), "DEL", &conf) {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `pod exec`: runs `argv` in the pod's network namespace; returns its exit code.
pub fn exec(pod: &PodRecord, argv: &[String]) -> Result<i32> {
    let mut env = BTreeMap::from([
        ("PATH".to_string(), super::exec::DEFAULT_PATH.to_string()),
        ("HOME".to_string(), "/root".to_string()),
    ]);
    if let Ok(term) = std::env::var("TERM") {
        env.insert("TERM".into(), term);
    }
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", &pod.netns])
        .args(argv)
        .env_clear()
        .envs(&env)
        .status()
        .with_context(|| format!("pod {}: running {}", pod.name, argv.join(" ")))?;
    Ok(exit_code(status))
}

/// How to enter a linux node, and its file view from outside (`/proc/<holder>/root`).
fn node_view(state: &StateDir, node: &Node) -> Result<(Enter, PathBuf)> {
    let enter = enter_node(state, node)?;
    let Enter::Node { holder } = enter else {
        bail!("node {} is not a linux node", node.name);
    };
    Ok((enter, PathBuf::from(format!("/proc/{holder}/root"))))
}

/// The node's CNI configuration: the first file in its `/etc/cni/net.d`, or the default.
fn node_config(view: &Path, node: &Node, deployed: &Deployed) -> Result<NetworkConfigList> {
    let dir = in_view(view, cni::CONF_DIR);
    let mut names = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if let Some(n) = e.file_name().to_str() {
                names.push(n.to_string());
            }
        }
    }
    match pick_config_file(names) {
        Some(file) => {
            let path = dir.join(&file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("node {}: reading {}/{file}", node.name, cni::CONF_DIR))?;
            Ok(NetworkConfigList::parse(&file, &text)?)
        }
        None => Ok(default_calico_config(
            &node.hostname,
            &deployed.datastore.cni_ref(),
        )),
    }
}

/// Runs CNI plugins inside a node for one pod.
struct Invoker<'a> {
    enter: &'a Enter,
    view: &'a Path,
    node: &'a Node,
    deployed: &'a Deployed,
    identity: &'a PodIdentity,
    netns: &'a str,
}

impl Invoker<'_> {
    fn cni_dirs(&self) -> Vec<String> {
        if let Some(p) = self.node.env.get("CNI_PATH") {
            return p
                .split(':')
                .filter(|d| !d.is_empty())
                .map(String::from)
                .collect();
        }
        let mut dirs: Vec<String> = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.display().to_string()))
            .into_iter()
            .collect();
        dirs.extend(DEFAULT_CNI_DIRS.iter().map(|d| d.to_string()));
        dirs
    }

    fn call(&self, plugin: &str, command: &str, conf: &Value) -> Result<Option<CniResult>> {
        let dirs = self.cni_dirs();
        let program = dirs
            .iter()
            .map(|d| format!("{}/{plugin}", d.trim_end_matches('/')))
            .find(|p| in_view(self.view, p).is_file())
            .ok_or_else(|| {
                anyhow!(
                    "CNI plugin {plugin} is not in CNI_PATH ({}) of node {}",
                    dirs.join(":"),
                    self.node.name
                )
            })?;
        let mut env = node_environment(self.node, &self.deployed.datastore);
        for (k, v) in [
            ("CNI_COMMAND", command.to_string()),
            ("CNI_CONTAINERID", self.identity.container_id.clone()),
            (
                "CNI_NETNS",
                net::netns_path(self.netns).display().to_string(),
            ),
            ("CNI_IFNAME", POD_IFNAME.to_string()),
            ("CNI_PATH", dirs.join(":")),
            ("CNI_ARGS", self.identity.cni_args()),
        ] {
            env.insert(k.to_string(), v);
        }
        let mut child = self
            .enter
            .command(std::slice::from_ref(&program), &env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("node {}: starting CNI plugin {program}", self.node.name))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(conf.to_string().as_bytes())
                .with_context(|| format!("writing the network configuration to {plugin}"))?;
        }
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for CNI plugin {plugin}"))?;
        tracing::info!(node = %self.node.name, plugin, command, status = %out.status, "CNI plugin ran");
        cni::parse_output(plugin, &out.stdout, out.status.success()).map_err(|e| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.trim().is_empty() {
                anyhow!(e)
            } else {
                anyhow!(e).context(format!("{plugin} {command} (stderr: {})", stderr.trim()))
            }
        })
    }
}

fn check_dns_label(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if !ok {
        bail!(
            "{what} {s:?} is not valid: 1 to 63 lowercase letters, digits and `-`, starting and ending with a letter or digit"
        );
    }
    Ok(())
}
