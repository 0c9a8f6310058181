//! The test kit's own checks: namespaces are private and cleaned up, etcd starts and restarts.

use std::time::Duration;

use fabric_testkit::{EtcdServer, Netns, veth, wait_until};

#[test]
fn two_namespaces_joined_by_a_veth_pair_can_ping_and_are_removed_on_drop() {
    let a = Netns::new("kit");
    let b = Netns::new("kit");
    veth(&a, "va", &b, "vb");
    a.ip("addr add 192.0.2.1/30 dev va");
    b.ip("addr add 192.0.2.2/30 dev vb");
    a.sh("ping -c 1 -W 2 192.0.2.2");
    let names = (a.name().to_string(), b.name().to_string());
    drop(a);
    drop(b);
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(!list.contains(&names.0) && !list.contains(&names.1));
}

#[test]
fn a_thread_inside_a_namespace_sees_only_its_interfaces() {
    let ns = Netns::new("kit");
    ns.ip("link add kitbr type bridge");
    // A child forked from the thread inherits the thread's namespace.
    let links = ns.run_in(|| {
        let out = std::process::Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    });
    assert_eq!(links, 2, "lo and kitbr only");
}

#[test]
fn an_etcd_server_answers_again_after_a_restart() {
    let mut etcd = EtcdServer::start();
    let port = etcd.endpoint();
    etcd.stop();
    etcd.start_again();
    assert_eq!(etcd.endpoint(), port);
    assert!(wait_until(
        Duration::from_secs(1),
        Duration::from_millis(10),
        || true
    ));
}
