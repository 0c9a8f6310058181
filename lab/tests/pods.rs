//! Root tests: pods wired by running a CNI plugin chain from inside a node (Debian's bridge
//! and host-local plugins as a stand-in for the project's calico plugin).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Lab, text};

#[test]
fn two_pods_on_a_node_get_addresses_reach_each_other_and_go_away_on_del() {
    let lab = Lab::deploy("pods/pods.clab.yml", &[]);
    let add = |name: &str, labels: &[&str]| {
        let mut args = vec!["pod", "add", "--node", "n1", "--namespace", "shop"];
        for l in labels {
            args.extend(["--label", l]);
        }
        args.push(name);
        let out = lab.run(&args);
        assert!(out.status.success(), "pod add {name}:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let a = add("web-1", &["app=web", "tier=front"]);
    let b = add("web-2", &[]);
    assert!(a.starts_with("10.244.1.") && a.ends_with("/24"), "{a}");
    assert!(b.starts_with("10.244.1.") && a != b, "{a} {b}");
    let b_addr = b.split('/').next().unwrap();

    let ping = lab.run(&[
        "pod", "exec", "web-1", "--", "ping", "-c", "1", "-W", "2", b_addr,
    ]);
    assert!(ping.status.success(), "ping between pods:\n{}", text(&ping));

    let conf = lab.exec_ok("n1", &["cat", "/var/lib/cni/record/ADD.json"]);
    let conf: serde_json::Value = serde_json::from_str(&conf).unwrap();
    assert_eq!(conf["name"], "labnet");
    assert_eq!(conf["prevResult"]["ips"][0]["address"], b.as_str());
    let args = lab.exec_ok("n1", &["cat", "/var/lib/cni/record/ADD.args"]);
    assert!(
        args.contains("K8S_POD_NAMESPACE=shop") && args.contains("K8S_POD_NAME=web-2"),
        "{args}"
    );

    let report = lab.inspect();
    let pods = report["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 2);
    assert_eq!(pods[0]["labels"]["app"], "web");
    let netns = pods[0]["netns"].as_str().unwrap().to_string();
    assert_eq!(netns, format!("clab-{}-pod-web-1", lab.name));

    let del = lab.run(&["pod", "del", "web-1"]);
    assert!(del.status.success(), "pod del:\n{}", text(&del));
    assert!(!std::path::Path::new("/run/netns").join(&netns).exists());
    let del_conf = lab.exec_ok("n1", &["cat", "/var/lib/cni/record/DEL.json"]);
    let del_conf: serde_json::Value = serde_json::from_str(&del_conf).unwrap();
    assert_eq!(del_conf["args"]["cni"]["labels"][0]["key"], "app");
    assert_eq!(del_conf["args"]["cni"]["labels"][0]["value"], "web");
    assert_eq!(del_conf["prevResult"]["ips"][0]["address"], a.as_str());
    let again = lab.run(&["pod", "del", "web-1"]);
    assert!(
        !again.status.success(),
        "deleting a deleted pod is an error"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("no pod \"web-1\""));

    let dup = lab.run(&["pod", "add", "--node", "n1", "web-2"]);
    assert!(!dup.status.success(), "a pod name is used once");
    lab.destroy_and_check();
}
