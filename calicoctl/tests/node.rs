//! `calicoctl node status` and `node checksystem` in-process. A real calico-node is behind the
//! status socket in `node/tests/mesh.rs`; here a one-shot socket server answers with a response
//! in bgpd's format, and checksystem reads this host.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;

use calicoctl::Env;

fn calicoctl(env: &Env, args: &[&str]) -> (i32, String, String) {
    let mut stdin: &[u8] = b"";
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut argv = vec!["calicoctl"];
    argv.extend_from_slice(args);
    let code = calicoctl::run_with_env(argv, env, &mut stdin, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

const NEIGHBORS: &str = r#"{"version":1,"ok":true,"neighbors":[
 {"address":"10.0.0.2","remote_asn":64512,"local_asn":64512,"peer_type":"internal",
  "description":"node-to-node mesh","state":"Established","since_unix_ms":1000,
  "passive":false,"route_reflector_client":false,"admin_down":false,"md5":false,
  "session":null,"prefixes":[],"last_error":null,"graceful_restart_stale":false,
  "established_transitions":1,"flaps":0,"messages_received":{},"messages_sent":{}},
 {"address":"fd00::3","remote_asn":65001,"local_asn":64512,"peer_type":"external",
  "description":"global","state":"Active","since_unix_ms":1000,
  "last_error":{"message":"Connection refused"}}]}"#;

/// Serves one connection: checks the request, answers with `reply`.
fn serve_once(path: std::path::PathBuf, reply: &'static str) -> std::thread::JoinHandle<String> {
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request = String::new();
        reader.read_line(&mut request).unwrap();
        let mut w = stream;
        w.write_all(reply.replace('\n', "").as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        request
    })
}

#[test]
fn node_status_prints_each_family_from_the_status_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bgpd.sock");
    let server = serve_once(socket.clone(), NEIGHBORS);
    let env = Env::empty().with_var("CALICO_NODE_STATUS_SOCKET", socket.display().to_string());
    let (code, out, err) = calicoctl(&env, &["node", "status"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.join().unwrap().trim(), r#"{"request":"neighbors"}"#);
    assert!(
        out.starts_with("Calico process is running.\n\nIPv4 BGP status\n"),
        "{out}"
    );
    assert!(
        out.contains("| 10.0.0.2     | node-to-node mesh | up    |"),
        "{out}"
    );
    assert!(out.contains("| Established "), "{out}");
    assert!(out.contains("IPv6 BGP status\n"), "{out}");
    assert!(
        out.contains(
            "| fd00::3      | global    | start | 1970-01-01 | Active Connection refused |"
        ),
        "{out}"
    );
}

#[test]
fn node_status_as_json_lists_the_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bgpd.sock");
    let server = serve_once(socket.clone(), NEIGHBORS);
    let (code, out, err) = calicoctl(
        &Env::empty(),
        &[
            "node",
            "status",
            "-o",
            "json",
            "--socket",
            socket.to_str().unwrap(),
        ],
    );
    server.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["address"], "10.0.0.2");
    assert_eq!(v[1]["state"], "Active");
}

#[test]
fn node_status_without_calico_node_says_it_is_not_running_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let env = Env::empty().with_var("CALICO_NODE_STATUS_SOCKET", socket.display().to_string());
    let (code, out, err) = calicoctl(&env, &["node", "status"]);
    assert_eq!(code, 1);
    assert_eq!(out, "Calico process is not running.\n");
    assert!(err.contains("absent.sock"), "{err}");
}

#[test]
fn checksystem_lists_every_feature_with_its_state() {
    let (code, out, err) = calicoctl(&Env::empty(), &["node", "checksystem"]);
    for feature in [
        "ipip",
        "vxlan",
        "netfilter (iptables)",
        "nf_tables",
        "ipset",
        "conntrack",
        "ip forwarding",
    ] {
        assert!(out.contains(feature), "{feature} missing from:\n{out}");
    }
    // Whatever this host has, the verdict and the exit code agree.
    if code == 0 {
        assert!(
            out.contains("System meets minimum system requirements"),
            "{out}"
        );
    } else {
        assert!(err.contains("required kernel features missing"), "{err}");
    }
}
