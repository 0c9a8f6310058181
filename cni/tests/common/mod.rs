//! A host namespace, a datastore with one pool, and helpers to run the plugins like a runtime.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;

use fabric_api::ippool::IPPoolSpec;
use fabric_api::{IPPool, ObjectMeta};
use fabric_datastore::{Backend, Client, EtcdBackend, SqliteBackend};
use fabric_ipam::Ipam;
use fabric_testkit::Netns;
use serde_json::{Value, json};

/// Where cargo put the plugins.
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_calico"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Our plugins first, then Debian's.
pub fn cni_path() -> String {
    format!("{}:/usr/lib/cni", bin_dir().display())
}

/// Listens on 127.0.0.1 inside `ns` and forwards every connection to `target` in the test's
/// own namespace (a socket keeps the namespace it was created in), so plugins running in
/// the namespace reach the suite's etcd. Returns the port.
pub fn forward_into(ns: &Netns, target: SocketAddr) -> u16 {
    let listener = ns.run_in(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(down) = conn else { break };
            let Ok(up) = TcpStream::connect(target) else {
                continue;
            };
            let (mut d2, mut u2) = (down.try_clone().unwrap(), up.try_clone().unwrap());
            let (mut d, mut u) = (down, up);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut d, &mut u);
                let _ = u.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u2, &mut d2);
                let _ = d2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// Which datastore a harness uses.
pub enum Store {
    /// A sqlite file.
    Sqlite(PathBuf),
    /// etcd with a key prefix of the test's own; `inside` is the URL the plugins use from
    /// the host namespace (a forwarder to `endpoint`).
    Etcd {
        endpoint: String,
        prefix: String,
        inside: String,
    },
}

/// One "host": a namespace the plugins run in, a datastore, a pool.
pub struct Harness {
    pub host: Netns,
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub node: String,
    pub pool: String,
    pub pool_cidr: String,
    pub rt: tokio::runtime::Runtime,
    _etcd: Option<fabric_testkit::TestEtcd>,
}

/// The result of one plugin run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: Value,
    pub stderr: String,
}

/// A pod: its namespace and what ADD returned.
pub struct Pod {
    pub name: String,
    pub netns: Netns,
    pub container_id: String,
    pub result: Value,
}

impl Pod {
    /// The pod's IPv4 address from the ADD result.
    pub fn ip(&self) -> IpAddr {
        let text = self.result["ips"][0]["address"].as_str().unwrap();
        text.split('/').next().unwrap().parse().unwrap()
    }

    /// `/run/netns/<name>`.
    pub fn netns_path(&self) -> String {
        format!("/run/netns/{}", self.netns.name())
    }
}

impl Harness {
    /// A host with a sqlite datastore and pool `cidr`.
    pub fn sqlite(tag: &str, cidr: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calico.db");
        Harness::new(tag, cidr, dir, Store::Sqlite(path), None)
    }

    /// A host with the suite's etcd (under a prefix of its own) and pool `cidr`.
    pub fn etcd(tag: &str, cidr: &str) -> Harness {
        let etcd = fabric_testkit::test_etcd();
        let prefix = format!("/{}", fabric_testkit::unique_name("cni-test-"));
        let store = Store::Etcd {
            endpoint: etcd.endpoint(),
            prefix,
            inside: String::new(),
        };
        let mut h = Harness::new(tag, cidr, tempfile::tempdir().unwrap(), store, Some(etcd));
        if let Store::Etcd {
            endpoint, inside, ..
        } = &mut h.store
        {
            let target: SocketAddr = endpoint.trim_start_matches("http://").parse().unwrap();
            *inside = format!("http://127.0.0.1:{}", forward_into(&h.host, target));
        }
        h
    }

    fn new(
        tag: &str,
        cidr: &str,
        dir: tempfile::TempDir,
        store: Store,
        etcd: Option<fabric_testkit::TestEtcd>,
    ) -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let h = Harness {
            host: Netns::new(tag),
            dir,
            store,
            node: fabric_testkit::unique_name("node-"),
            pool: fabric_testkit::unique_name("pool-"),
            pool_cidr: cidr.to_string(),
            rt,
            _etcd: etcd,
        };
        // An uplink with a default route, as on a real node: proxy ARP answers for
        // 169.254.1.1 only when the host has a route to it.
        h.host.ip("link add eth0 type veth peer name uplink0");
        h.host.ip("addr add 192.0.2.1/24 dev eth0");
        h.host.ip("link set eth0 up");
        h.host.ip("link set uplink0 up");
        h.host.ip("route add default via 192.0.2.254 dev eth0");
        let client = h.client();
        let pool = IPPool {
            metadata: ObjectMeta::named(h.pool.clone()),
            spec: IPPoolSpec {
                cidr: cidr.to_string(),
                block_size: Some(26),
                ..IPPoolSpec::default()
            },
            status: None,
        };
        h.rt.block_on(client.create(pool)).unwrap();
        h
    }

    /// A client of the harness's datastore.
    pub fn client(&self) -> Client {
        let backend: std::sync::Arc<dyn Backend> = match &self.store {
            Store::Sqlite(p) => std::sync::Arc::new(SqliteBackend::open(p).unwrap()),
            Store::Etcd {
                endpoint, prefix, ..
            } => std::sync::Arc::new(
                self.rt
                    .block_on(EtcdBackend::connect_with_prefix(
                        std::slice::from_ref(endpoint),
                        prefix,
                    ))
                    .unwrap(),
            ),
        };
        Client::new(backend)
    }

    /// IPAM over the harness's datastore.
    pub fn ipam(&self) -> Ipam {
        Ipam::new(self.client())
    }

    /// Addresses allocated in the harness's pool.
    pub fn allocated(&self) -> u128 {
        let usage = self.rt.block_on(self.ipam().usage()).unwrap();
        usage
            .iter()
            .filter(|p| p.name == self.pool)
            .map(|p| p.in_use)
            .sum()
    }

    /// Addresses held by a container's handle.
    pub fn held_by(&self, container_id: &str) -> Vec<IpAddr> {
        let handle = fabric_ipam::handles::pod_handle(container_id);
        self.rt
            .block_on(self.ipam().ips_by_handle(&handle))
            .unwrap()
    }

    /// The calico plugin's configuration in `version`, IPAM by `ipam_type`.
    pub fn conf(&self, version: &str, ipam_type: &str) -> Value {
        let mut c = json!({
            "cniVersion": version,
            "name": "k8s-pod-network",
            "type": "calico",
            "log_level": "debug",
            "nodename": self.node,
            "mtu": 1450,
            // The plugins' own datastore path; tests/ipam_service.rs covers the service.
            "ipam_socket": "none",
            "ipam": {"type": ipam_type, "ipv4_pools": [self.pool]},
        });
        self.add_datastore(&mut c);
        c
    }

    /// Adds the datastore keys to a configuration.
    pub fn add_datastore(&self, c: &mut Value) {
        match &self.store {
            Store::Sqlite(p) => {
                c["datastore_type"] = json!("sqlite");
                c["sqlite_path"] = json!(p.display().to_string());
            }
            Store::Etcd { prefix, inside, .. } => {
                c["datastore_type"] = json!("etcdv3");
                c["etcd_endpoints"] = json!(inside);
                c["etcd_key_prefix"] = json!(prefix);
            }
        }
    }

    /// Runs `plugin` in the host namespace like a runtime does.
    pub fn run(
        &self,
        plugin: &str,
        command: &str,
        conf: &Value,
        container_id: &str,
        netns: &str,
        pod: &str,
    ) -> Run {
        let program = bin_dir().join(plugin);
        let mut cmd = if plugin.starts_with('/') {
            self.host.cmd(plugin)
        } else {
            self.host.cmd(program.to_str().unwrap())
        };
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", cni_path())
            .env(
                "CNI_ARGS",
                format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=test-ns;K8S_POD_NAME={pod}"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        Run {
            ok: out.status.success(),
            stdout: if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text:?}"))
            },
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }

    /// ADD of pod `name` with `conf`; panics on failure.
    pub fn add_pod(&self, name: &str, conf: &Value) -> Pod {
        let netns = Netns::new("pod");
        let container_id = fabric_testkit::unique_name("ctr-");
        let path = format!("/run/netns/{}", netns.name());
        let r = self.run("calico", "ADD", conf, &container_id, &path, name);
        assert!(r.ok, "ADD {name} failed: {}\n{}", r.stdout, r.stderr);
        Pod {
            name: name.to_string(),
            netns,
            container_id,
            result: r.stdout,
        }
    }

    /// DEL of a pod with `conf` (prevResult added); returns the run.
    pub fn del_pod(&self, pod: &Pod, conf: &Value) -> Run {
        let mut c = conf.clone();
        c["prevResult"] = pod.result.clone();
        self.run(
            "calico",
            "DEL",
            &c,
            &pod.container_id,
            &pod.netns_path(),
            &pod.name,
        )
    }

    /// The interfaces of the host namespace whose names start with `cali`.
    pub fn cali_links(&self) -> Vec<String> {
        self.host
            .ip("-o link show")
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap().to_string())
            .filter(|n| n.starts_with("cali"))
            .collect()
    }
}
