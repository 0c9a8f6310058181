//! `deploy/`: the Kubernetes manifest and the image's Dockerfile cannot run here (no Docker, no
//! Kubernetes), so they are checked against the code they drive: the manifest parses, the
//! DaemonSet is shaped as Calico's (host network, privileged, the probes calico-node answers),
//! every variable it sets is one calico-node (or felix, or the datastore settings) reads, the
//! CNI configuration it installs is valid and names only keys the CNI plugin reads, the init
//! container's script really installs the plugins, and the Dockerfile builds packages and
//! binaries that exist. No root needed.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize as _;
use serde_yaml_ng::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn documents() -> Vec<Value> {
    let path = workspace().join("deploy/calico.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("deploy/calico.yaml has no {kind} {name}"))
}

fn container<'a>(pod: &'a Value, list: &str, name: &str) -> &'a Value {
    pod[list]
        .as_sequence()
        .unwrap_or_else(|| panic!("no {list}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {list} entry {name}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn env_names(c: &Value) -> Vec<String> {
    c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

/// The text of every `.rs` file under `dirs` (relative to the workspace).
fn sources(dirs: &[&str]) -> String {
    fn walk(dir: &Path, out: &mut String) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    let mut out = String::new();
    for d in dirs {
        walk(&workspace().join(d), &mut out);
    }
    out
}

#[test]
fn the_daemonset_runs_calico_node_privileged_on_the_host_network_with_its_probes() {
    let docs = documents();
    let ds = find(&docs, "DaemonSet", "calico-node");
    assert_eq!(ds["apiVersion"], "apps/v1");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    let sa = pod["serviceAccountName"].as_str().unwrap();
    find(&docs, "ServiceAccount", sa);
    let node = container(pod, "containers", "calico-node");
    assert!(
        node["image"]
            .as_str()
            .unwrap()
            .starts_with("ghcr.io/calico-rs/node:")
    );
    assert_eq!(node["securityContext"]["privileged"], true);
    assert_eq!(
        strings(&node["readinessProbe"]["exec"]["command"]),
        ["calico-node", "-felix-ready", "-bird-ready"]
    );
    assert_eq!(
        strings(&node["livenessProbe"]["exec"]["command"]),
        ["calico-node", "-felix-live", "-bird-live"]
    );
    // No command: the image's ENTRYPOINT (calico-node with no arguments) runs everything.
    assert!(node["command"].is_null() && node["args"].is_null());
}

#[test]
fn every_variable_the_daemonset_sets_is_read_by_calico_node_felix_or_the_datastore_settings() {
    let docs = documents();
    let pod = &find(&docs, "DaemonSet", "calico-node")["spec"]["template"]["spec"];
    let code = sources(&["node/src", "felix/src", "datastore/src"]);
    let unread: Vec<String> = env_names(container(pod, "containers", "calico-node"))
        .into_iter()
        .filter(|n| !code.contains(&format!("\"{n}\"")))
        .collect();
    assert!(
        unread.is_empty(),
        "deploy/calico.yaml sets {unread:?}, which no string literal in node/src, felix/src or \
         datastore/src names: calico-node would ignore them"
    );
}

#[test]
fn every_config_map_reference_names_an_existing_key() {
    let docs = documents();
    let pod = &find(&docs, "DaemonSet", "calico-node")["spec"]["template"]["spec"];
    let mut containers = pod["containers"].as_sequence().unwrap().clone();
    containers.extend(pod["initContainers"].as_sequence().unwrap().iter().cloned());
    for c in &containers {
        for e in c["env"].as_sequence().into_iter().flatten() {
            let r = &e["valueFrom"]["configMapKeyRef"];
            if r.is_null() {
                continue;
            }
            let map = find(&docs, "ConfigMap", r["name"].as_str().unwrap());
            let key = r["key"].as_str().unwrap();
            assert!(
                !map["data"][key].is_null(),
                "{}: {} refers to missing key {key}",
                c["name"].as_str().unwrap(),
                e["name"].as_str().unwrap()
            );
        }
    }
}

/// The manifest's CNI configuration with the node's values, as install-cni writes it.
fn installed_conflist(dir: &Path) -> serde_json::Value {
    let docs = documents();
    let map = find(&docs, "ConfigMap", "calico-config");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for p in ["calico", "calico-ipam"] {
        std::fs::write(plugins.join(p), format!("#!/bin/sh\necho {p}\n")).unwrap();
    }
    let out = Command::new("sh")
        .arg(workspace().join("deploy/install-cni.sh"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PLUGIN_DIR", &plugins)
        .env("HOST_BIN_DIR", dir.join("opt/cni/bin"))
        .env("HOST_NET_DIR", dir.join("etc/cni/net.d"))
        .env("CNI_CONF_NAME", "10-calico.conflist")
        .env(
            "CNI_NETWORK_CONFIG",
            map["data"]["cni_network_config"].as_str().unwrap(),
        )
        .env(
            "ETCD_ENDPOINTS",
            map["data"]["etcd_endpoints"].as_str().unwrap(),
        )
        .env("CNI_MTU", map["data"]["veth_mtu"].as_str().unwrap())
        .env("KUBERNETES_NODE_NAME", "worker-1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install-cni failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in ["calico", "calico-ipam"] {
        let installed = dir.join("opt/cni/bin").join(p);
        assert_eq!(
            std::fs::read(&installed).unwrap(),
            std::fs::read(plugins.join(p)).unwrap()
        );
    }
    let text = std::fs::read_to_string(dir.join("etc/cni/net.d/10-calico.conflist")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("installed conflist: {e}\n{text}"))
}

#[test]
fn install_cni_installs_both_plugins_and_a_valid_conflist_for_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let conf = installed_conflist(dir.path());
    assert_eq!(conf["cniVersion"], "1.0.0");
    let calico = &conf["plugins"][0];
    assert_eq!(calico["type"], "calico");
    assert_eq!(calico["nodename"], "worker-1");
    assert_eq!(calico["datastore_type"], "etcdv3");
    assert!(
        calico["etcd_endpoints"]
            .as_str()
            .unwrap()
            .starts_with("http")
    );
    assert_eq!(calico["mtu"], 1500);
    assert_eq!(calico["ipam"]["type"], "calico-ipam");
}

#[test]
fn install_cni_refuses_to_run_without_a_node_name_and_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg(workspace().join("deploy/install-cni.sh"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOST_BIN_DIR", dir.path().join("bin"))
        .env("HOST_NET_DIR", dir.path().join("net.d"))
        .env("CNI_NETWORK_CONFIG", "{}")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KUBERNETES_NODE_NAME"));
    assert!(!dir.path().join("bin").exists());
}

#[test]
fn every_key_of_the_calico_plugin_configuration_is_read_by_the_cni_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let conf = installed_conflist(dir.path());
    let code = sources(&["cni/src"]);
    let calico = conf["plugins"][0].as_object().unwrap();
    let mut keys: Vec<&String> = calico.keys().collect();
    let ipam = calico["ipam"].as_object().unwrap();
    keys.extend(ipam.keys());
    // serde field names are Rust identifiers (or `rename`d strings) in the plugin's source.
    let unread: Vec<&&String> = keys
        .iter()
        .filter(|k| {
            let ident = k.replace('-', "_");
            !code.contains(&format!("\"{k}\"")) && !code.contains(&format!("{ident}:"))
        })
        .collect();
    assert!(
        unread.is_empty(),
        "the installed calico plugin configuration sets {unread:?}, which cni/src never names"
    );
}

#[test]
fn the_dockerfile_builds_existing_packages_and_ships_their_binaries_with_calico_node_as_entrypoint()
{
    let ws = workspace();
    let text = std::fs::read_to_string(ws.join("deploy/Dockerfile")).unwrap();
    assert!(
        text.lines()
            .any(|l| l.trim() == r#"ENTRYPOINT ["calico-node"]"#),
        "ENTRYPOINT must be calico-node (calico-lab's calico-node role mirrors it)"
    );
    // Package -> directory and the binaries it must produce.
    for (package, dir, bins) in [
        ("calico-node", "node", &["calico-node"][..]),
        ("calicoctl", "calicoctl", &["calicoctl"][..]),
        ("fabric-cni", "cni", &["calico", "calico-ipam"][..]),
    ] {
        assert!(
            text.contains(&format!("-p {package}")),
            "{package} not built"
        );
        let manifest = std::fs::read_to_string(ws.join(dir).join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{package}\"")),
            "{dir}/Cargo.toml is not package {package}"
        );
        for b in bins {
            assert!(
                text.contains(&format!("target/release/{b}")),
                "{b} not copied"
            );
            let src = ws.join(dir).join("src");
            let declared = manifest.contains(&format!("name = \"{b}\""))
                && (src.join("main.rs").is_file() || manifest.contains("[[bin]]"))
                || src.join("bin").join(format!("{b}.rs")).is_file()
                || src.join("bin").join(b).join("main.rs").is_file();
            assert!(declared, "package {package} declares no binary {b}");
        }
    }
    for line in text.lines().filter(|l| l.starts_with("COPY deploy/")) {
        let src = line.split_whitespace().nth(1).unwrap();
        assert!(ws.join(src).is_file(), "{line}: {src} does not exist");
    }
    assert!(text.contains("iproute2") && text.contains("iptables") && text.contains("ipset"));
}

#[test]
fn the_topologies_and_the_daemonset_use_the_same_node_image() {
    let docs = documents();
    let pod = &find(&docs, "DaemonSet", "calico-node")["spec"]["template"]["spec"];
    let image = container(pod, "containers", "calico-node")["image"]
        .as_str()
        .unwrap()
        .to_string();
    for (name, file) in fabric_e2e::topology::product_topologies() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains(&format!("image: {image}")),
            "{name} does not use {image}"
        );
    }
}
