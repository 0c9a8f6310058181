//! A deployed lab: `calico-lab` run on a private topology copy under a unique name, destroyed
//! when the value is dropped (also when the test panics, after printing what helps to read the
//! failure: `calico-lab inspect`, each node's log tail, BGP status and routing table).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use fabric_testkit::{ChildGuard, require_root, unique_name, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::binaries;
use crate::topology::TopologyCopy;

/// The datastore the lab's nodes share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datastore {
    /// The embedded SQLite file in the lab's state directory (calico-lab's default).
    Sqlite,
    /// etcd v3 in the lab's management namespace.
    Etcdv3,
}

impl Datastore {
    /// The `--datastore` value.
    pub fn flag(self) -> &'static str {
        match self {
            Datastore::Sqlite => "sqlite",
            Datastore::Etcdv3 => "etcdv3",
        }
    }
}

/// The TCP port every pod's listener answers on with the pod's name.
pub const POD_TCP_PORT: u16 = 7777;

/// A pod added through a node's CNI plugin; it answers TCP on [`POD_TCP_PORT`] with its name.
pub struct Pod {
    /// Pod name.
    pub name: String,
    /// The node whose CNI plugin wired it.
    pub node: String,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its network namespace on the host.
    pub netns: String,
    listener: Option<ChildGuard>,
}

impl Pod {
    /// Stops the TCP listener (before the pod is deleted).
    fn stop_listener(&mut self) {
        if let Some(mut l) = self.listener.take() {
            l.kill();
        }
    }
}

/// A calico-node started by the test (a restart, or a node joining), not by deploy.
struct StartedNode {
    node: String,
    child: Child,
    log: PathBuf,
}

/// A deployed lab.
pub struct Lab {
    /// The unique lab name (`--name`).
    pub name: String,
    topo: TopologyCopy,
    started: Mutex<Vec<StartedNode>>,
    destroyed: bool,
}

impl Lab {
    /// Deploys `topo` under a unique name with `datastore`; panics with calico-lab's output
    /// when deploy fails (the guard still prints diagnostics and destroys the partial lab).
    pub fn deploy(topo: TopologyCopy, datastore: Datastore) -> Lab {
        require_root();
        binaries::bin_dir();
        let lab = Lab {
            name: unique_name("e2e"),
            topo,
            started: Mutex::new(Vec::new()),
            destroyed: false,
        };
        eprintln!(
            "deploying {} as lab {} ({} datastore)",
            lab.topo.file().display(),
            lab.name,
            datastore.flag()
        );
        let out = lab.run(&["deploy", "--datastore", datastore.flag()]);
        assert!(
            out.status.success(),
            "deploy of lab {} failed:\n{}",
            lab.name,
            text(&out)
        );
        lab
    }

    /// `calico-lab -t <copy> --name <lab> <args...>` with `FABRIC_BIN_DIR` set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(binaries::program("calico-lab"));
        c.arg("-t")
            .arg(self.topo.file())
            .args(["--name", &self.name])
            .args(args)
            .env("FABRIC_BIN_DIR", binaries::bin_dir());
        c
    }

    /// Runs calico-lab and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running calico-lab {args:?}: {e}"))
    }

    /// `calico-lab exec NODE -- CMD...`.
    pub fn exec(&self, node: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", node, "--"];
        args.extend_from_slice(cmd);
        self.run(&args)
    }

    /// `exec` that must succeed; returns stdout.
    pub fn exec_ok(&self, node: &str, cmd: &[&str]) -> String {
        let out = self.exec(node, cmd);
        assert!(
            out.status.success(),
            "on {node}, {cmd:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `calicoctl ARGS...` run inside `node` (with the lab's datastore variables); must succeed.
    pub fn calicoctl(&self, node: &str, args: &[&str]) -> String {
        let mut cmd = vec!["calicoctl"];
        cmd.extend_from_slice(args);
        self.exec_ok(node, &cmd)
    }

    /// `calicoctl apply -f -` of `yaml` inside `node`.
    pub fn apply(&self, node: &str, yaml: &str) {
        let mut child = self
            .command(&["exec", node, "--", "calicoctl", "apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running calico-lab exec");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(yaml.as_bytes())
            .expect("writing to calicoctl");
        let out = child
            .wait_with_output()
            .expect("waiting for calicoctl apply");
        assert!(
            out.status.success(),
            "calicoctl apply on {node} of\n{yaml}\nfailed:\n{}",
            text(&out)
        );
    }

    /// `inspect --json`.
    pub fn inspect(&self) -> Value {
        let out = self.run(&["inspect", "--json"]);
        assert!(out.status.success(), "inspect failed:\n{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
    }

    /// The nodes whose role is `role` (`calico-node`, `bird`, ...), in the lab's order.
    pub fn nodes_with_role(&self, role: &str) -> Vec<String> {
        self.inspect()["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["role"] == role)
            .map(|n| n["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Adds pod `name` on `node` through the node's CNI plugin and starts its TCP listener.
    pub fn add_pod(&self, node: &str, name: &str) -> Pod {
        let out = self.run(&["pod", "add", "--node", node, name]);
        assert!(
            out.status.success(),
            "pod add {name} on {node} failed:\n{}",
            text(&out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let ip = stdout
            .split_whitespace()
            .filter_map(|a| a.split('/').next()?.parse::<Ipv4Addr>().ok())
            .next()
            .unwrap_or_else(|| panic!("pod add {name} printed no IPv4 address: {stdout:?}"));
        let report = self.inspect();
        let netns = report["pods"]
            .as_array()
            .and_then(|pods| pods.iter().find(|p| p["name"] == name))
            .and_then(|p| p["netns"].as_str())
            .unwrap_or_else(|| panic!("pod {name} is not in the inspect report"))
            .to_string();
        let listener = Command::new("ip")
            .args(["netns", "exec", &netns, "socat"])
            .arg(format!("TCP-LISTEN:{POD_TCP_PORT},fork,reuseaddr"))
            .arg(format!("SYSTEM:echo {name}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting socat in the pod");
        eprintln!("pod {name} on {node}: {ip}");
        Pod {
            name: name.to_string(),
            node: node.to_string(),
            ip,
            netns,
            listener: Some(ChildGuard(listener)),
        }
    }

    /// Deletes a pod through the CNI plugin (`pod del`).
    pub fn delete_pod(&self, mut pod: Pod) {
        pod.stop_listener();
        let out = self.run(&["pod", "del", &pod.name]);
        assert!(
            out.status.success(),
            "pod del {} failed:\n{}",
            pod.name,
            text(&out)
        );
    }

    /// `calico-lab pod exec POD -- CMD...`.
    pub fn pod_exec(&self, pod: &Pod, cmd: &[&str]) -> Output {
        let mut args = vec!["pod", "exec", &pod.name, "--"];
        args.extend_from_slice(cmd);
        self.run(&args)
    }

    /// The pid of the calico-node process running in `node` (started by deploy or the test).
    pub fn calico_node_pid(&self, node: &str) -> Option<i32> {
        let started = self.started.lock().expect("lock");
        if let Some(s) = started.iter().rev().find(|s| s.node == node) {
            return children_of(s.child.id())
                .into_iter()
                .next()
                .filter(|p| alive(*p));
        }
        drop(started);
        let report = self.inspect();
        report["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["name"] == node)?["processes"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "calico-node" && p["running"] == true)
            .and_then(|p| p["pid"].as_i64())
            .and_then(|p| i32::try_from(p).ok())
    }

    /// SIGKILLs the calico-node of `node` and waits until it is gone.
    pub fn kill_calico_node(&self, node: &str) {
        let pid = self
            .calico_node_pid(node)
            .unwrap_or_else(|| panic!("no calico-node runs in {node}"));
        eprintln!("SIGKILL calico-node of {node} (pid {pid})");
        kill(Pid::from_raw(pid), Signal::SIGKILL).expect("sending SIGKILL");
        assert!(
            wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
                !alive(pid)
            }),
            "calico-node {pid} of {node} survived SIGKILL"
        );
    }

    /// Starts calico-node in `node` (as the node's role would: its environment, its file
    /// view), for a restart or for a node the topology left without one. Its output goes to a
    /// log file that failures print.
    pub fn start_calico_node(&self, node: &str) {
        let mut started = self.started.lock().expect("lock");
        let n = started.iter().filter(|s| s.node == node).count();
        let log = self.topo.dir().join(format!("{node}-calico-node-{n}.log"));
        let out = std::fs::File::create(&log).expect("creating the log file");
        let err = out.try_clone().expect("cloning the log file");
        let child = self
            .command(&["exec", node, "--", "calico-node"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting calico-lab exec calico-node");
        eprintln!("started calico-node in {node} (log {})", log.display());
        let id = child.id();
        started.push(StartedNode {
            node: node.to_string(),
            child,
            log,
        });
        drop(started);
        assert!(
            wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
                !children_of(id).is_empty()
            }),
            "calico-node did not start in {node}"
        );
    }

    /// Everything that helps to read a failure: inspect, every node's log tail, BGP status and
    /// routes.
    pub fn diagnostics(&self) -> String {
        let mut s = format!("===== diagnostics of lab {} =====\n", self.name);
        let out = self.run(&["inspect"]);
        s += &format!("--- calico-lab inspect\n{}\n", text(&out));
        let Ok(report) = serde_json::from_slice::<Value>(&self.run(&["inspect", "--json"]).stdout)
        else {
            return s;
        };
        for node in report["nodes"].as_array().into_iter().flatten() {
            let name = node["name"].as_str().unwrap_or_default();
            let role = node["role"].as_str().unwrap_or_default();
            if role == "bridge" {
                continue;
            }
            s += &format!("===== node {name} ({role})\n");
            for p in node["processes"].as_array().into_iter().flatten() {
                if let Some(log) = p["log"].as_str() {
                    s += &format!(
                        "--- {} (pid {}, running {}) {log}, last lines:\n{}\n",
                        p["name"],
                        p["pid"],
                        p["running"],
                        tail(log, 60)
                    );
                }
            }
            for started in self.started.lock().expect("lock").iter() {
                if started.node == name {
                    s += &format!(
                        "--- calico-node started by the test, {}, last lines:\n{}\n",
                        started.log.display(),
                        tail(&started.log.display().to_string(), 60)
                    );
                }
            }
            match role {
                "calico-node" => {
                    s += &format!(
                        "--- calicoctl node status\n{}\n",
                        text(&self.exec(name, &["calicoctl", "node", "status"]))
                    );
                }
                "bird" => {
                    s += &format!(
                        "--- birdc show protocols\n{}\n",
                        text(&self.exec(name, &["birdc", "show", "protocols"]))
                    );
                }
                _ => {}
            }
            s += &format!(
                "--- ip route\n{}\n",
                String::from_utf8_lossy(&self.exec(name, &["ip", "route"]).stdout)
            );
        }
        s
    }

    /// Destroys the lab now.
    pub fn destroy(mut self) {
        self.teardown();
    }

    fn teardown(&mut self) {
        if self.destroyed {
            return;
        }
        self.destroyed = true;
        let out = self.run(&["destroy"]);
        if !out.status.success() {
            eprintln!("destroy of lab {} failed:\n{}", self.name, text(&out));
        }
        for s in self.started.lock().expect("lock").iter_mut() {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.destroyed {
            eprintln!("{}", self.diagnostics());
        }
        self.teardown();
    }
}

/// The last `n` lines of a file (or why it cannot be read).
fn tail(path: &str, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read: {e})"),
    }
}

/// The children of process `pid`.
fn children_of(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("X");
    state != "Z" && state != "X"
}

/// The status, stdout and stderr of an output, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
