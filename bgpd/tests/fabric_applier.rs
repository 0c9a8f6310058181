//! The fabric applier against real daemons: two nodes on loopback addresses, each a bgpd kept
//! in step with one in-memory datastore by its own [`Applier`], form the node-to-node mesh; a
//! change to one BGPPeer reaches both daemons and leaves the mesh session alone.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bgpd::fabric::{Applier, FabricSettings};
use bgpd::{Daemon, DaemonHandle, NeighborStatus};
use fabric_api::AnyResource;
use fabric_datastore::{Backend, Client, MemBackend};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn put(client: &Client, kind: &str, name: &str, spec: serde_json::Value) {
    let res: AnyResource = serde_json::from_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": kind,
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap();
    client.apply_any(res).await.unwrap();
}

async fn start_node(backend: Arc<dyn Backend>, name: &str) -> DaemonHandle {
    let mut applier = Applier::start(
        backend,
        name,
        FabricSettings::default(),
        std::env::temp_dir().join("no-secrets-here"),
    )
    .with_debounce(Duration::from_millis(20));
    let config = applier.initial_config().await.unwrap();
    let daemon = Daemon::start(config).await.unwrap();
    let d = daemon.clone();
    tokio::spawn(async move {
        let _ = applier.run(d).await;
    });
    daemon
}

async fn neighbor(d: &DaemonHandle, addr: &str) -> Option<NeighborStatus> {
    let addr: std::net::IpAddr = addr.parse().unwrap();
    d.neighbors()
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.address == addr)
}

async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_one_peer_reaches_the_daemons_and_leaves_the_mesh_session_up() {
    let backend: Arc<dyn Backend> = Arc::new(MemBackend::new());
    let client = Client::new(backend.clone());
    let port = fabric_testkit::free_port();
    put(
        &client,
        "BGPConfiguration",
        "default",
        json!({"listenPort": port, "bindMode": "NodeIP", "asNumber": 64512}),
    )
    .await;
    put(&client, "IPPool", "pool", json!({"cidr": "10.244.0.0/16"})).await;
    for (n, ip) in [("n1", "127.0.1.1/8"), ("n2", "127.0.1.2/8")] {
        put(&client, "Node", n, json!({"bgp": {"ipv4Address": ip}})).await;
    }
    // A global peer nobody answers for (127.0.1.3 has no listener).
    put(
        &client,
        "BGPPeer",
        "tor",
        json!({"peerIP": "127.0.1.3", "asNumber": 65100}),
    )
    .await;
    let d1 = start_node(backend.clone(), "n1").await;
    let d2 = start_node(backend.clone(), "n2").await;

    wait_for("the mesh session", async || {
        neighbor(&d1, "127.0.1.2")
            .await
            .is_some_and(|n| n.state == "Established")
    })
    .await;
    let before = neighbor(&d1, "127.0.1.2").await.unwrap();
    assert_eq!(before.description.as_deref(), Some("node-to-node mesh"));
    assert_eq!(
        neighbor(&d2, "127.0.1.3")
            .await
            .unwrap()
            .description
            .as_deref(),
        Some("global")
    );

    // Change the peer's AS: both daemons follow, the mesh session stays.
    put(
        &client,
        "BGPPeer",
        "tor",
        json!({"peerIP": "127.0.1.3", "asNumber": 65200}),
    )
    .await;
    for d in [&d1, &d2] {
        wait_for("the new peer AS", async || {
            neighbor(d, "127.0.1.3")
                .await
                .is_some_and(|n| n.remote_asn == 65200)
        })
        .await;
    }
    let after = neighbor(&d1, "127.0.1.2").await.unwrap();
    assert_eq!(after.state, "Established");
    assert_eq!(
        after.established_transitions,
        before.established_transitions
    );
    assert_eq!(after.flaps, 0);
    assert_eq!(after.since_unix_ms, before.since_unix_ms);

    // Deleting the peer removes only that neighbour.
    client
        .delete_any(fabric_api::Kind::BGPPeer, None, "tor", None)
        .await
        .unwrap();
    wait_for("the peer to go", async || {
        neighbor(&d1, "127.0.1.3").await.is_none()
    })
    .await;
    let last = neighbor(&d1, "127.0.1.2").await.unwrap();
    assert_eq!(last.flaps, 0);
    assert_eq!(last.since_unix_ms, before.since_unix_ms);

    d1.shutdown(false).await.unwrap();
    d2.shutdown(false).await.unwrap();
}
