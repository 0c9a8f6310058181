//! Shared helpers for the lab's root tests: run the real `calico-lab` binary on a topology
//! under a unique lab name, and always destroy the lab afterwards (also when a test fails).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use fabric_testkit::{require_root, unique_name, wait_until};
use serde_json::Value;

/// The calico-lab binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_calico-lab")
}

/// A topology file under `tests/topologies/`.
pub fn topology(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/topologies")
        .join(rel)
}

/// A deployed lab; dropping it destroys the lab.
pub struct Lab {
    pub name: String,
    pub topo: PathBuf,
    env: Vec<(String, String)>,
    destroyed: bool,
}

impl Lab {
    /// Deploys `rel` (under tests/topologies) as a uniquely named lab; panics with calico-lab's
    /// output if deploying fails (the guard still destroys what was created).
    pub fn deploy(rel: &str, extra: &[&str]) -> Lab {
        Lab::deploy_with_env(rel, extra, &[])
    }

    /// As [`Lab::deploy`], with extra environment for calico-lab.
    pub fn deploy_with_env(rel: &str, extra: &[&str], env: &[(&str, &str)]) -> Lab {
        require_root();
        let lab = Lab {
            name: unique_name("t"),
            topo: topology(rel),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            destroyed: false,
        };
        let mut args = vec!["deploy"];
        args.extend_from_slice(extra);
        let out = lab.run(&args);
        assert!(
            out.status.success(),
            "deploy of {rel} as {} failed:\n{}",
            lab.name,
            text(&out)
        );
        lab
    }

    /// Deploys `rel` expecting deploy to fail; returns the guard and deploy's output.
    pub fn deploy_expecting_failure(rel: &str) -> (Lab, Output) {
        require_root();
        let lab = Lab {
            name: unique_name("t"),
            topo: topology(rel),
            env: Vec::new(),
            destroyed: false,
        };
        let out = lab.run(&["deploy"]);
        assert!(
            !out.status.success(),
            "deploy of {rel} should fail:\n{}",
            text(&out)
        );
        (lab, out)
    }

    /// `calico-lab -t <topo> --name <lab> <args...>`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("-t").arg(&self.topo).args(["--name", &self.name]);
        c.args(args);
        c.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// Runs calico-lab and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
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
            "exec {node} {cmd:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `exec NODE CMD` until its stdout satisfies `ok` (and it exits 0), for up to
    /// `timeout`; panics with the last output otherwise. Returns the satisfying stdout.
    pub fn wait_exec(
        &self,
        node: &str,
        cmd: &[&str],
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let mut last = String::new();
        let done = wait_until(timeout, Duration::from_millis(500), || {
            let out = self.exec(node, cmd);
            last = text(&out);
            out.status.success() && ok(&String::from_utf8_lossy(&out.stdout))
        });
        assert!(
            done,
            "on {node}, {cmd:?} did not give the expected answer within {timeout:?}; last:\n{last}"
        );
        last
    }

    /// `inspect --json`.
    pub fn inspect(&self) -> Value {
        let out = self.run(&["inspect", "--json"]);
        assert!(out.status.success(), "inspect failed:\n{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
    }

    /// Destroys the lab and checks that no namespace and no recorded process is left.
    pub fn destroy_and_check(mut self) {
        let report = self.inspect();
        let pids: Vec<(i64, u64)> = report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|n| n["processes"].as_array().unwrap().clone())
            .chain(report["processes"].as_array().unwrap().clone())
            .map(|p| {
                (
                    p["pid"].as_i64().unwrap(),
                    p["start_time"].as_u64().unwrap(),
                )
            })
            .collect();
        assert!(!pids.is_empty(), "the lab recorded no processes");
        let out = self.run(&["destroy"]);
        self.destroyed = true;
        assert!(out.status.success(), "destroy failed:\n{}", text(&out));
        let prefix = format!("clab-{}-", self.name);
        let left: Vec<String> = std::fs::read_dir("/run/netns")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "namespaces left after destroy: {left:?}");
        for (pid, start_time) in pids {
            assert!(
                !alive(pid, start_time),
                "process {pid} of the lab still runs after destroy"
            );
        }
        let again = self.run(&["destroy"]);
        assert!(
            again.status.success(),
            "a second destroy must succeed:\n{}",
            text(&again)
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.destroyed {
            let _ = self.run(&["destroy"]);
        }
    }
}

/// Whether the process `pid` started at `start_time` is still alive (not a zombie).
pub fn alive(pid: i64, start_time: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let state = fields.first().copied().unwrap_or("X");
    let started = fields.get(19).and_then(|s| s.parse::<u64>().ok());
    started == Some(start_time) && state != "Z" && state != "X"
}

/// stdout and stderr of an output, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The node called `name` in an inspect report.
pub fn node<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("node {name} not in the report: {report:#}"))
}
