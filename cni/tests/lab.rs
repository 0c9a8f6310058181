//! `calico-lab pod add` on a one-node plain topology with the real `calico` and `calico-ipam`
//! plugins (root). calico-lab must sit beside the plugins (the workspace test run builds it;
//! alone: `cargo build -p calico-lab`), or be named by `CALICO_LAB_BIN`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fabric_api::ippool::IPPoolSpec;
use fabric_api::{IPPool, ObjectMeta, WorkloadEndpoint};
use fabric_datastore::{Client, SqliteBackend};
use fabric_ipam::Ipam;

fn calico_lab() -> PathBuf {
    if let Ok(p) = std::env::var("CALICO_LAB_BIN") {
        return PathBuf::from(p);
    }
    let beside = PathBuf::from(env!("CARGO_BIN_EXE_calico"))
        .parent()
        .unwrap()
        .join("calico-lab");
    assert!(
        beside.is_file(),
        "{} is missing: build it with `cargo build -p calico-lab` (same CARGO_TARGET_DIR) \
         or set CALICO_LAB_BIN",
        beside.display()
    );
    beside
}

struct Lab {
    name: String,
    topo: PathBuf,
    state: tempfile::TempDir,
}

impl Lab {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(calico_lab())
            .arg("-t")
            .arg(&self.topo)
            .args(["--name", &self.name])
            .args(args)
            .env("CALICO_LAB_STATE_DIR", self.state.path())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "calico-lab {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn datastore(&self) -> PathBuf {
        self.state.path().join(&self.name).join("datastore.sqlite")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.run(&["destroy"]);
    }
}

#[test]
fn calico_lab_pods_get_addresses_from_calico_ipam_and_reach_each_other() {
    fabric_testkit::require_root();
    let lab = Lab {
        name: fabric_testkit::unique_name("cni"),
        topo: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/topologies/one-node.clab.yml"),
        state: tempfile::Builder::new()
            .prefix("cni-lab-")
            .tempdir_in("/tmp")
            .unwrap(),
    };
    lab.ok(&["deploy"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new(std::sync::Arc::new(
        SqliteBackend::open(lab.datastore()).unwrap(),
    ));
    rt.block_on(client.create(IPPool {
        metadata: ObjectMeta::named("lab-pool"),
        spec: IPPoolSpec {
            cidr: "10.244.0.0/16".into(),
            block_size: Some(26),
            ..IPPoolSpec::default()
        },
        status: None,
    }))
    .unwrap();

    let a = lab.ok(&[
        "pod",
        "add",
        "--node",
        "n1",
        "--namespace",
        "shop",
        "--label",
        "app=web",
        "web-1",
    ]);
    let b = lab.ok(&["pod", "add", "--node", "n1", "--namespace", "shop", "web-2"]);
    let (a, b) = (a.trim().to_string(), b.trim().to_string());
    assert!(a.starts_with("10.244.") && a.ends_with("/32"), "{a}");
    assert!(b.starts_with("10.244.") && a != b, "{a} {b}");
    let b_addr = b.split('/').next().unwrap();
    lab.ok(&[
        "pod", "exec", "web-1", "--", "ping", "-c", "1", "-W", "2", b_addr,
    ]);

    let wep = rt
        .block_on(client.try_get::<WorkloadEndpoint>(Some("shop"), "n1-k8s-web--1-eth0"))
        .unwrap()
        .expect("the endpoint of web-1");
    assert_eq!(wep.metadata.labels["app"], "web");
    assert_eq!(wep.spec.ip_networks, vec![a.clone()]);
    let links = lab.ok(&["exec", "n1", "--", "ip", "-o", "link"]);
    assert_eq!(links.matches("cali").count(), 2, "{links}");

    lab.ok(&["pod", "del", "web-1"]);
    lab.ok(&["pod", "del", "web-2"]);
    let links = lab.ok(&["exec", "n1", "--", "ip", "-o", "link"]);
    assert!(!links.contains("cali"), "{links}");
    let usage = rt.block_on(Ipam::new(client.clone()).usage()).unwrap();
    assert_eq!(usage.iter().map(|p| p.in_use).sum::<u128>(), 0);
    assert!(
        rt.block_on(client.try_get::<WorkloadEndpoint>(Some("shop"), "n1-k8s-web--1-eth0"))
            .unwrap()
            .is_none()
    );
    lab.ok(&["destroy"]);
}
