//! The node-local IPAM service over a real Unix socket: assign (and the same handle again),
//! release, the handle's addresses, refusal of another node's request, bad request lines,
//! the socket's mode, the socket file going with the service, and one node's concurrent
//! requests taking turns.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;

use fabric_ipam::service::{self, Service, ServiceErrorKind, ServiceReply, ServiceRequest};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use common::*;

fn assign(node: &str, handle: &str) -> ServiceRequest {
    ServiceRequest::Assign {
        node: node.into(),
        handle: handle.into(),
        attrs: [("pod".to_string(), "web-0".to_string())].into(),
        num_v4: 1,
        num_v6: 0,
        pools_v4: Vec::new(),
        pools_v6: Vec::new(),
    }
}

fn ips(reply: ServiceReply) -> (Vec<IpAddr>, bool) {
    match reply {
        ServiceReply::Ips { ips, held } => (ips, held),
        ServiceReply::Error { kind, message } => panic!("{kind:?}: {message}"),
    }
}

async fn raw_exchange(path: &std::path::Path, line: &[u8]) -> String {
    let mut stream = tokio::net::UnixStream::connect(path).await.unwrap();
    stream.write_all(line).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer).await.unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_assigns_releases_and_answers_a_retried_add_with_the_same_address() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.9.0.0/24", 26).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/ipam.sock");
    let svc = Service::start(ipam.clone(), "node-a", &path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is for root only");

    let (first, held) = ips(
        service::request(&path, &assign("node-a", "k8s-pod-network.c1"))
            .await
            .unwrap(),
    );
    assert_eq!(first.len(), 1);
    assert!(!held);
    let (again, held) = ips(
        service::request(&path, &assign("node-a", "k8s-pod-network.c1"))
            .await
            .unwrap(),
    );
    assert_eq!(again, first, "a retried ADD gets what the handle holds");
    assert!(held);
    let info = ipam
        .get_assignment_attributes(first[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.attrs.get("node").map(String::as_str), Some("node-a"));
    assert_eq!(info.attrs.get("pod").map(String::as_str), Some("web-0"));

    // Many clients at once: every address distinct.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let path = path.clone();
        tasks.spawn(async move {
            let req = assign("node-a", &format!("k8s-pod-network.p{i}"));
            ips(service::request(&path, &req).await.unwrap()).0
        });
    }
    let mut all: BTreeSet<IpAddr> = first.iter().copied().collect();
    while let Some(got) = tasks.join_next().await {
        for ip in got.unwrap() {
            assert!(all.insert(ip), "{ip} handed out twice");
        }
    }
    assert_eq!(all.len(), 41);

    let by_handle = ServiceRequest::IpsByHandle {
        node: "node-a".into(),
        handle: "k8s-pod-network.c1".into(),
    };
    assert_eq!(
        ips(service::request(&path, &by_handle).await.unwrap()).0,
        first
    );
    let release = ServiceRequest::ReleaseHandle {
        node: "node-a".into(),
        handle: "k8s-pod-network.c1".into(),
    };
    assert_eq!(
        ips(service::request(&path, &release).await.unwrap()).0,
        first
    );
    assert!(
        ips(service::request(&path, &release).await.unwrap())
            .0
            .is_empty(),
        "DEL twice"
    );
    assert!(
        ipam.ips_by_handle("k8s-pod-network.c1")
            .await
            .unwrap()
            .is_empty()
    );

    drop(svc);
    assert!(!path.exists(), "the socket file goes with the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_request_and_bad_lines_are_refused_and_change_nothing() {
    let (_, ipam) = mem();
    pool(&ipam, "p", "10.9.0.0/24", 26).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipam.sock");
    // A stale socket file from a previous run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let _svc = Service::start(ipam.clone(), "node-a", &path).await.unwrap();

    match service::request(&path, &assign("node-b", "k8s-pod-network.x"))
        .await
        .unwrap()
    {
        ServiceReply::Error { kind, message } => {
            assert_eq!(kind, ServiceErrorKind::WrongNode);
            assert!(
                message.contains("node-a") && message.contains("node-b"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let bad_field = raw_exchange(&path, b"{\"op\":\"assign\",\"node\":\"node-a\"}\n").await;
    assert!(
        bad_field.contains("bad_request") && bad_field.contains("handle"),
        "{bad_field}"
    );
    let not_json = raw_exchange(&path, b"hello\n").await;
    assert!(not_json.contains("bad_request"), "{not_json}");
    let mut long = vec![b'x'; 70 * 1024];
    long.push(b'\n');
    let too_long = raw_exchange(&path, &long).await;
    assert!(too_long.contains("longer than"), "{too_long}");
    let mut invalid = assign("node-a", "k8s-pod-network.y");
    if let ServiceRequest::Assign { num_v4, .. } = &mut invalid {
        *num_v4 = 0;
    }
    match service::request(&path, &invalid).await.unwrap() {
        ServiceReply::Error { kind, message } => {
            assert_eq!(kind, ServiceErrorKind::InvalidArgument);
            assert!(message.contains("num_v4"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        ipam.affinities(None).await.unwrap().is_empty(),
        "nothing was claimed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_of_one_node_take_turns_instead_of_failing_each_others_writes() {
    let (store, ipam) = counted();
    pool(&ipam, "p", "10.9.0.0/24", 26).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipam.sock");
    let _svc = Service::start(ipam.clone(), "node-a", &path).await.unwrap();
    // The block is claimed first, so the burst below shares one block.
    ips(
        service::request(&path, &assign("node-a", "k8s-pod-network.first"))
            .await
            .unwrap(),
    );

    let burst = |make: fn(usize) -> ServiceRequest| {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..30 {
            let path = path.clone();
            tasks.spawn(async move { ips(service::request(&path, &make(i)).await.unwrap()).0 });
        }
        tasks
    };
    let mut assigned = BTreeSet::new();
    let mut tasks = burst(|i| assign("node-a", &format!("k8s-pod-network.b{i}")));
    while let Some(got) = tasks.join_next().await {
        for ip in got.unwrap() {
            assert!(assigned.insert(ip), "{ip} handed out twice");
        }
    }
    assert_eq!(assigned.len(), 30);
    let mut tasks = burst(|i| ServiceRequest::ReleaseHandle {
        node: "node-a".into(),
        handle: format!("k8s-pod-network.b{i}"),
    });
    let mut released = BTreeSet::new();
    while let Some(got) = tasks.join_next().await {
        released.extend(got.unwrap());
    }
    assert_eq!(released, assigned);
    assert_eq!(
        store.around.failed(),
        0,
        "no request's transaction failed on another's write"
    );
}
