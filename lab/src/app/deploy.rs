//! `deploy`: checks everything first, then builds the lab in its own namespaces.
//!
//! Order (containerlab's, on namespaces): namespaces; the management network; etcd (with
//! `--datastore etcdv3`); bridges; each linux node's holder (its mount/UTS namespaces and file
//! view); links; sysctls; each node's processes (after its `startup-delay`), waiting until
//! they are ready; then each node's `exec` commands in order.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::datastore::{self, Datastore, DatastoreKind};
use super::exec::{exit_code, node_environment};
use super::holder::{self, HolderSpec};
use super::net::{self, VethEnd, ip_in};
use super::process::{self, Enter, ProcessRecord};
use super::roles::{self, Ready};
use super::state::{Deployed, StateDir};
use calico_lab::model::{Bind, Lab, Node, NodeKind, StartupConfig};

/// `deploy` options.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// The datastore to set up.
    pub datastore: DatastoreKind,
    /// Destroy an existing deployment of the same lab first.
    pub reconfigure: bool,
    /// How long a node's processes may take to become ready.
    pub ready_timeout: Duration,
}

/// Deploys `lab`. On failure the partial lab stays (its logs help); `destroy` removes it.
pub fn deploy(lab: &Lab, opts: &DeployOptions) -> Result<()> {
    let state = StateDir::for_lab(&lab.name);
    if state.exists() {
        if opts.reconfigure {
            super::destroy::destroy(&state, false)?;
        } else {
            bail!(
                "lab {} is already deployed (state in {}); destroy it first or deploy with --reconfigure",
                lab.name,
                state.root().display()
            );
        }
    }
    preflight(lab, opts)?;
    state.create()?;
    let datastore = Datastore::create(opts.datastore, lab, &state);
    state.write_deployed(&Deployed {
        lab: lab.clone(),
        datastore: datastore.clone(),
    })?;
    build(lab, &state, &datastore, opts).with_context(|| {
        format!(
            "deploying lab {} stopped part way; logs are in {}, and `calico-lab destroy -t {}{}` removes what was created",
            lab.name,
            state.root().display(),
            lab.topology_file.display(),
            name_flag(lab)
        )
    })
}

fn name_flag(lab: &Lab) -> String {
    format!(" --name {}", lab.name)
}

/// Everything that can be checked before anything is created.
fn preflight(lab: &Lab, opts: &DeployOptions) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("calico-lab creates network namespaces and must run as root");
    }
    let base = StateDir::for_lab(&lab.name);
    if let Some(parent) = base.root().parent()
        && ["/etc", "/var", "/root"]
            .iter()
            .any(|d| parent.starts_with(d))
    {
        bail!(
            "the state directory {} lies under /etc, /var or /root, which every node sees as its own copy-on-write overlay; set CALICO_LAB_STATE_DIR elsewhere (default {})",
            parent.display(),
            super::state::DEFAULT_BASE
        );
    }
    let mut programs = vec!["ip".to_string(), "nsenter".into(), "setsid".into()];
    if opts.datastore == DatastoreKind::Etcdv3 {
        programs.push("etcd".into());
    }
    for node in &lab.nodes {
        programs.extend(roles::required_programs(node));
        if node.role == calico_lab::role::Role::CalicoNode && node.entrypoint.is_none() {
            roles::calico_node_program()?;
        }
    }
    for p in programs {
        if roles::which(&p).is_none() {
            bail!(
                "{p} is needed but not installed (Debian: iproute2, util-linux, frr, bird2, gobgpd, etcd-server)"
            );
        }
    }
    for ns in lab.namespaces() {
        if net::netns_exists(&ns) {
            bail!(
                "network namespace {ns} already exists but lab {} is not deployed; remove it (ip netns del {ns}) or rename the lab",
                lab.name
            );
        }
    }
    Ok(())
}

fn build(lab: &Lab, state: &StateDir, datastore: &Datastore, opts: &DeployOptions) -> Result<()> {
    for ns in lab.namespaces() {
        net::ip(&["netns", "add", &ns])?;
        state.record_namespace(&ns)?;
        ip_in(&ns, &["link", "set", "lo", "up"])?;
    }
    management(lab)?;
    if opts.datastore == DatastoreKind::Etcdv3 {
        datastore::start_etcd(lab, state, opts.ready_timeout)?;
    }
    for node in lab.nodes.iter().filter(|n| n.kind == NodeKind::Bridge) {
        ip_in(
            &node.namespace,
            &["link", "add", node.bridge_device(), "type", "bridge"],
        )?;
        ip_in(
            &node.namespace,
            &["link", "set", node.bridge_device(), "up"],
        )?;
    }
    let mut holders: BTreeMap<String, ProcessRecord> = BTreeMap::new();
    for node in lab.nodes.iter().filter(|n| n.kind == NodeKind::Linux) {
        let spec = holder_spec(node, state)?;
        holders.insert(node.name.clone(), holder::start(state, &node.name, &spec)?);
    }
    links(lab)?;
    for node in &lab.nodes {
        for (k, v) in &node.sysctls {
            net::set_sysctl(&node.namespace, k, v)
                .with_context(|| format!("node {}: sysctls.{k}", node.name))?;
        }
    }
    for node in lab.nodes.iter().filter(|n| n.kind == NodeKind::Linux) {
        if node.startup_delay_secs > 0 {
            tracing::info!(node = %node.name, seconds = node.startup_delay_secs, "startup-delay");
            std::thread::sleep(Duration::from_secs(node.startup_delay_secs));
        }
        let holder = holders
            .get(&node.name)
            .ok_or_else(|| anyhow!("node {}: no holder", node.name))?;
        start_node(node, holder, state, datastore, opts.ready_timeout)?;
    }
    for node in lab.nodes.iter().filter(|n| n.kind == NodeKind::Linux) {
        let holder = holders
            .get(&node.name)
            .ok_or_else(|| anyhow!("node {}: no holder", node.name))?;
        let enter = Enter::Node { holder: holder.pid };
        let env = node_environment(node, datastore);
        for (i, c) in node.exec.iter().enumerate() {
            run_checked(state, &node.name, i, &enter, &c.argv, &env, &c.text, "exec")?;
        }
    }
    Ok(())
}

/// The management bridge in its namespace, and every node's `eth0` on it.
fn management(lab: &Lab) -> Result<()> {
    let m = &lab.mgmt;
    let mtu = m.mtu.to_string();
    let ns = m.namespace.as_str();
    ip_in(
        ns,
        &["link", "add", &m.bridge, "mtu", &mtu, "type", "bridge"],
    )?;
    let gw4 = format!("{}/{}", m.ipv4_gateway, m.ipv4_subnet.prefix_len());
    let gw6 = format!("{}/{}", m.ipv6_gateway, m.ipv6_subnet.prefix_len());
    ip_in(ns, &["addr", "add", &gw4, "dev", &m.bridge])?;
    ip_in(ns, &["addr", "add", &gw6, "dev", &m.bridge, "nodad"])?;
    ip_in(ns, &["link", "set", &m.bridge, "up"])?;
    for (idx, node) in lab.nodes.iter().enumerate() {
        let Some(addrs) = &node.mgmt else { continue };
        let port = format!("m{idx}");
        net::add_veth(
            &VethEnd {
                ns: &node.namespace,
                name: "eth0",
                mac: None,
            },
            &VethEnd {
                ns,
                name: &port,
                mac: None,
            },
            m.mtu,
        )?;
        ip_in(ns, &["link", "set", &port, "master", &m.bridge])?;
        let n = node.namespace.as_str();
        ip_in(n, &["addr", "add", &addrs.ipv4.to_string(), "dev", "eth0"])?;
        ip_in(
            n,
            &[
                "addr",
                "add",
                &addrs.ipv6.to_string(),
                "dev",
                "eth0",
                "nodad",
            ],
        )?;
        ip_in(
            n,
            &[
                "route",
                "add",
                "default",
                "via",
                &m.ipv4_gateway.to_string(),
            ],
        )?;
        ip_in(
            n,
            &[
                "-6",
                "route",
                "add",
                "default",
                "via",
                &m.ipv6_gateway.to_string(),
            ],
        )?;
    }
    Ok(())
}

fn links(lab: &Lab) -> Result<()> {
    for link in &lab.links {
        let node = |name: &str| {
            lab.node(name)
                .ok_or_else(|| anyhow!("link endpoint node {name} is missing"))
        };
        let (na, nb) = (node(&link.a.node)?, node(&link.b.node)?);
        net::add_veth(
            &VethEnd {
                ns: &na.namespace,
                name: &link.a.interface,
                mac: link.a.mac.as_deref(),
            },
            &VethEnd {
                ns: &nb.namespace,
                name: &link.b.interface,
                mac: link.b.mac.as_deref(),
            },
            link.mtu,
        )
        .with_context(|| format!("link {} <-> {}", link.a, link.b))?;
        for (n, ep) in [(na, &link.a), (nb, &link.b)] {
            if n.kind == NodeKind::Bridge {
                ip_in(
                    &n.namespace,
                    &["link", "set", &ep.interface, "master", n.bridge_device()],
                )?;
            }
        }
    }
    Ok(())
}

fn holder_spec(node: &Node, state: &StateDir) -> Result<HolderSpec> {
    let node_dir = state.node_dir(&node.name)?;
    let mut binds = node.binds.clone();
    if let Some(config) = &node.startup_config {
        let (source, hint) = match config {
            StartupConfig::File(p) => (p.clone(), p.display().to_string()),
            StartupConfig::Embedded(text) => {
                let p = node_dir.join("startup-config");
                std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
                (p, String::new())
            }
        };
        if let Some(target) = node.role.startup_config_target(&hint) {
            binds.push(Bind {
                source,
                target: PathBuf::from(target),
                read_only: false,
            });
            binds.sort_by(|a, b| {
                (a.target.components().count(), &a.target)
                    .cmp(&(b.target.components().count(), &b.target))
            });
        }
    }
    Ok(HolderSpec {
        netns: node.namespace.clone(),
        hostname: node.hostname.clone(),
        node_dir,
        keep_visible: vec![
            PathBuf::from(net::NETNS_DIR),
            state.root().to_path_buf(),
            PathBuf::from("/run/systemd/resolve"),
        ],
        tmpfs: node.tmpfs.clone(),
        binds,
    })
}

fn start_node(
    node: &Node,
    holder: &ProcessRecord,
    state: &StateDir,
    datastore: &Datastore,
    timeout: Duration,
) -> Result<()> {
    let view = PathBuf::from(format!("/proc/{}/root", holder.pid));
    let launch = roles::launch(node, &view)?;
    let enter = Enter::Node { holder: holder.pid };
    let env = node_environment(node, datastore);
    let netns = net::netns_path(&node.namespace);
    for d in &launch.daemons {
        let record = process::start(state, &node.name, &d.name, &enter, &d.argv, &env)?;
        let deadline = Instant::now() + timeout;
        loop {
            let ready = match &d.ready {
                Ready::Started => true,
                Ready::Path(p) => roles::in_view(&view, &p.display().to_string()).exists(),
                Ready::Tcp(addr) => net::tcp_accepts(&netns, *addr),
            };
            if ready {
                break;
            }
            if !record.is_running() {
                bail!(
                    "node {}: {} exited during start; its log ({}):\n{}",
                    node.name,
                    d.name,
                    record
                        .log
                        .as_deref()
                        .map(|l| l.display().to_string())
                        .unwrap_or_default(),
                    record
                        .log
                        .as_deref()
                        .map(|l| process::log_tail(l, 15))
                        .unwrap_or_default()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "node {}: {} did not become ready within {timeout:?} (waiting for {:?})",
                    node.name,
                    d.name,
                    d.ready
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for (i, argv) in launch.after.iter().enumerate() {
        run_checked(
            state,
            &node.name,
            i,
            &enter,
            argv,
            &env,
            &argv.join(" "),
            "start-up",
        )?;
    }
    Ok(())
}

/// Runs a command in a node to completion; a failure names the node and the command.
///
/// Output goes to files in the node's log directory (`<what>-<index>.out`/`.err`), not pipes,
/// so a command that leaves a background process behind (`sh -c 'daemon &'`) cannot hold
/// the deployment up.
#[allow(clippy::too_many_arguments)]
fn run_checked(
    state: &StateDir,
    node: &str,
    index: usize,
    enter: &Enter,
    argv: &[String],
    env: &BTreeMap<String, String>,
    text: &str,
    what: &str,
) -> Result<()> {
    let base = state.log_file(node, &format!("{what}-{index}"))?;
    let (out_path, err_path) = (base.with_extension("out"), base.with_extension("err"));
    let out = std::fs::File::create(&out_path)
        .with_context(|| format!("creating {}", out_path.display()))?;
    let err = std::fs::File::create(&err_path)
        .with_context(|| format!("creating {}", err_path.display()))?;
    let status = enter
        .command(argv, env)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("node {node}: running {what} command `{text}`"))?;
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if !status.success() {
        bail!(
            "node {node}: {what} command `{text}` failed with exit code {}: {}",
            exit_code(status),
            [stderr.trim(), stdout.trim()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    tracing::info!(node, command = text, output = %stdout.trim(), "{what} command done");
    Ok(())
}
