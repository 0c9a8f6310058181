//! Root tests: the lab's datastore (etcd in the management namespace, or the shared SQLite
//! file) and the generic launcher for the project's node image.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Lab, node};

#[test]
fn with_etcd_the_datastore_runs_in_the_mgmt_namespace_and_nodes_reach_it() {
    let lab = Lab::deploy("etcd/etcd.clab.yml", &["--datastore", "etcdv3"]);
    let report = lab.inspect();
    assert_eq!(report["datastore"]["type"], "etcdv3");
    assert_eq!(report["datastore"]["endpoint"], "http://172.20.20.1:2379");
    assert_eq!(report["processes"][0]["name"], "etcd");
    assert_eq!(report["processes"][0]["running"], true);
    let health = lab.exec_ok("n1", &["sh", "-c", "curl -s $ETCD_ENDPOINTS/health"]);
    assert!(health.contains("\"health\":\"true\""), "{health}");
    let env = lab.exec_ok("n1", &["sh", "-c", "echo $DATASTORE_TYPE"]);
    assert_eq!(env.trim(), "etcdv3");
    lab.destroy_and_check();
}

#[test]
fn the_node_image_runs_the_configured_program_with_cmd_and_the_datastore_environment() {
    let lab = Lab::deploy_with_env(
        "node-standin/node-standin.clab.yml",
        &[],
        &[("CALICO_LAB_NODE_BIN", "/bin/sh")],
    );
    let env = lab.wait_exec(
        "n1",
        &["cat", "/tmp/standin.env"],
        Duration::from_secs(30),
        |o| o.contains("DATASTORE_TYPE="),
    );
    let state_dir = format!("/run/calico-lab/{}", lab.name);
    assert!(env.contains("DATASTORE_TYPE=sqlite"), "{env}");
    assert!(
        env.contains(&format!("SQLITE_PATH={state_dir}/datastore.sqlite")),
        "{env}"
    );
    assert!(env.contains("NODENAME=n1"), "{env}");
    assert!(env.contains("CLAB_LABEL_CLAB_NODE_NAME=n1"), "{env}");
    let code = lab.exec("n1", &["sh", "-c", "test \"$SQLITE_PATH\" && exit 7"]);
    assert_eq!(
        code.status.code(),
        Some(7),
        "exec passes the exit code through"
    );
    let report = lab.inspect();
    let n1 = node(&report, "n1");
    assert_eq!(n1["role"], "calico-node");
    let p = n1["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "calico-node")
        .unwrap();
    assert_eq!(p["running"], true);
    lab.destroy_and_check();
}

#[test]
fn a_failing_exec_names_node_and_command_and_the_partial_lab_is_destroyed() {
    let lab = Lab::deploy_expecting_failure("broken-exec/broken-exec.clab.yml");
    let stderr = String::from_utf8_lossy(&lab.1.stderr).into_owned();
    assert!(
        stderr.contains("node n1: exec command `sh -c 'echo no such thing >&2; exit 3'` failed with exit code 3: no such thing"),
        "{stderr}"
    );
    assert!(stderr.contains("calico-lab destroy"), "{stderr}");
    let again = lab.0.run(&["deploy"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is already deployed"),
        "{}",
        common::text(&again)
    );
    lab.0.destroy_and_check();
}
