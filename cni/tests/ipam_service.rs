//! `calico-ipam` and calico-node's IPAM service (`fabric_ipam::service`) in a real namespace:
//! with a service for its node listening, the plugin allocates, answers a retried ADD,
//! CHECKs and releases through it without ever opening the datastore (its datastore
//! settings point at nothing); a service error is the plugin's error; with a stale socket
//! or another node's service, it falls back to the datastore.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::Harness;
use fabric_ipam::Ipam;
use fabric_ipam::service::Service;
use serde_json::{Value, json};

/// Runs a service for `node` over the harness's datastore on its own runtime (the plugin
/// runs while the test thread waits for it).
struct Running {
    path: PathBuf,
    _service: Service,
    _rt: tokio::runtime::Runtime,
}

fn start_service(h: &Harness, node: &str) -> Running {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let path = h.dir.path().join(format!("{node}-ipam.sock"));
    let ipam = Ipam::new(h.client());
    let service = rt.block_on(Service::start(ipam, node, &path)).unwrap();
    Running {
        path,
        _service: service,
        _rt: rt,
    }
}

/// A `calico-ipam` configuration asking the service at `socket`.
fn ipam_conf(h: &Harness, socket: &Path) -> Value {
    let mut c = h.conf("1.0.0", "calico-ipam");
    c["type"] = json!("calico-ipam");
    c["ipam_socket"] = json!(socket.display().to_string());
    c
}

fn address(result: &Value) -> String {
    result["ips"][0]["address"].as_str().unwrap().to_string()
}

#[test]
fn calico_ipam_goes_through_the_nodes_ipam_service_without_opening_the_datastore() {
    let h = Harness::sqlite("svc", "10.71.0.0/24");
    let svc = start_service(&h, &h.node);
    let mut conf = ipam_conf(&h, &svc.path);
    // Nothing listens here: a datastore connection would fail the command.
    conf["datastore_type"] = json!("etcdv3");
    conf["etcd_endpoints"] = json!("http://127.0.0.1:9");
    conf.as_object_mut().unwrap().remove("sqlite_path");
    let ns = "/var/run/netns/none";

    let add = h.run("calico-ipam", "ADD", &conf, "ctr-1", ns, "web-0");
    assert!(add.ok, "{}\n{}", add.stdout, add.stderr);
    let ip = address(&add.stdout);
    assert!(ip.starts_with("10.71.0."), "{ip}");
    let held = h.held_by("ctr-1");
    assert_eq!(held.len(), 1);
    assert_eq!(format!("{}/32", held[0]), ip);
    let info =
        h.rt.block_on(h.ipam().get_assignment_attributes(held[0]))
            .unwrap()
            .unwrap();
    assert_eq!(info.attrs.get("node"), Some(&h.node));
    assert_eq!(info.attrs.get("pod").map(String::as_str), Some("web-0"));
    assert_eq!(
        info.attrs.get("namespace").map(String::as_str),
        Some("test-ns")
    );

    let again = h.run("calico-ipam", "ADD", &conf, "ctr-1", ns, "web-0");
    assert!(again.ok, "{}", again.stderr);
    assert_eq!(
        address(&again.stdout),
        ip,
        "a retried ADD gets the same address"
    );
    assert_eq!(h.allocated(), 1);

    let mut check = conf.clone();
    check["prevResult"] = add.stdout.clone();
    let checked = h.run("calico-ipam", "CHECK", &check, "ctr-1", ns, "web-0");
    assert!(checked.ok, "{}\n{}", checked.stdout, checked.stderr);

    // The service's own error is the plugin's: no fallback, nothing allocated.
    let mut no_pool = conf.clone();
    no_pool["ipam"]["ipv4_pools"] = json!(["no-such-pool"]);
    let failed = h.run("calico-ipam", "ADD", &no_pool, "ctr-2", ns, "web-1");
    assert!(!failed.ok);
    assert_eq!(failed.stdout["code"], json!(7), "{}", failed.stdout);
    assert!(
        failed.stdout["msg"]
            .as_str()
            .unwrap()
            .contains("no-such-pool"),
        "{}",
        failed.stdout
    );
    assert!(h.held_by("ctr-2").is_empty());

    for _ in 0..2 {
        let del = h.run("calico-ipam", "DEL", &check, "ctr-1", ns, "web-0");
        assert!(del.ok, "{}\n{}", del.stdout, del.stderr);
    }
    assert!(h.held_by("ctr-1").is_empty());
    assert_eq!(h.allocated(), 0);
}

#[test]
fn the_calico_plugin_wires_a_pod_with_an_address_from_the_service() {
    let h = Harness::sqlite("svcpod", "10.72.0.0/24");
    let svc = start_service(&h, &h.node);
    let mut conf = h.conf("1.0.0", "calico-ipam");
    conf["ipam_socket"] = json!(svc.path.display().to_string());
    let pod = h.add_pod("web-0", &conf);
    assert_eq!(h.held_by(&pod.container_id), vec![pod.ip()]);
    let out = pod.netns.ip("-4 -o addr show dev eth0");
    assert!(out.contains(&format!("{}/32", pod.ip())), "{out}");
    let del = h.del_pod(&pod, &conf);
    assert!(del.ok, "{}", del.stderr);
    assert!(h.held_by(&pod.container_id).is_empty());
}

#[test]
fn a_stale_socket_or_another_nodes_service_sends_the_plugin_to_the_datastore() {
    let h = Harness::sqlite("svcfall", "10.73.0.0/24");
    let ns = "/var/run/netns/none";
    // A socket file nobody listens on (calico-node died).
    let stale = h.dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let add = h.run(
        "calico-ipam",
        "ADD",
        &ipam_conf(&h, &stale),
        "ctr-s",
        ns,
        "a",
    );
    assert!(add.ok, "{}\n{}", add.stdout, add.stderr);
    assert!(add.stderr.contains("using the datastore"), "{}", add.stderr);
    assert_eq!(h.held_by("ctr-s").len(), 1);

    // A service for another node must not allocate for this one.
    let other = start_service(&h, "some-other-node");
    let add = h.run(
        "calico-ipam",
        "ADD",
        &ipam_conf(&h, &other.path),
        "ctr-o",
        ns,
        "b",
    );
    assert!(add.ok, "{}\n{}", add.stdout, add.stderr);
    assert!(add.stderr.contains("refused the request"), "{}", add.stderr);
    let held = h.held_by("ctr-o");
    assert_eq!(held.len(), 1);
    let info =
        h.rt.block_on(h.ipam().get_assignment_attributes(held[0]))
            .unwrap()
            .unwrap();
    assert_eq!(info.attrs.get("node"), Some(&h.node));
    let theirs =
        h.rt.block_on(h.ipam().affinities(Some("some-other-node")))
            .unwrap();
    assert!(
        theirs.is_empty(),
        "the other node's service claimed nothing: {theirs:?}"
    );
}
