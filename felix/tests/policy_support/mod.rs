//! Policy tests' world on top of `support`: two nodes (VXLAN pool) each running the `felix`
//! binary, pods in Kubernetes namespaces with labels (wired as the CNI plugin does), their
//! namespaces' `kns.` profiles, resources applied from YAML, TCP/UDP servers in pods, and
//! traffic probes run in parallel against an expected allow/deny matrix.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fabric_api::endpoint::{WorkloadEndpointPort, WorkloadEndpointSpec};
use fabric_api::felix::FelixConfigurationSpec;
use fabric_api::ippool::{IPIPMode, VXLANMode};
use fabric_api::meta::ObjectMeta;
use fabric_api::{
    AnyResource, FelixConfiguration, Kind, KubernetesNetworkPolicy, WorkloadEndpoint,
};
use fabric_testkit::{ChildGuard, Netns};

use crate::support::{Cluster, FelixProcess, Pod, eventually, wire_pod};

/// A labelled pod.
pub struct LabPod {
    /// Namespace, address, interface, node.
    pub pod: Pod,
    /// The pod's name (`web`).
    pub name: String,
    /// Its Kubernetes namespace.
    pub namespace: String,
    /// Servers running in it.
    servers: Vec<ChildGuard>,
}

impl LabPod {
    /// Its address.
    pub fn ip(&self) -> &str {
        &self.pod.ip
    }
}

/// The cluster, its felixes and its pods.
pub struct Lab {
    /// The cluster of `support`.
    pub c: Cluster,
    /// One felix per node (started by [`Lab::start`]).
    pub felixes: Vec<FelixProcess>,
}

impl Lab {
    /// Two nodes and a VXLAN pool; `refresh` sets `iptablesRefreshInterval` (and
    /// `ipsetsRefreshInterval`) in FelixConfiguration `default`.
    pub fn new(refresh: Option<&str>) -> Lab {
        let c = Cluster::new(2, IPIPMode::Never, VXLANMode::Always);
        if let Some(r) = refresh {
            let every = fabric_api::Duration::parse(r).unwrap();
            c.block_on(c.client.apply(FelixConfiguration {
                metadata: ObjectMeta::named("default"),
                spec: FelixConfigurationSpec {
                    iptables_refresh_interval: Some(every.clone()),
                    ipsets_refresh_interval: Some(every),
                    ..FelixConfigurationSpec::default()
                },
            }))
            .unwrap();
        }
        Lab {
            c,
            felixes: Vec::new(),
        }
    }

    /// Creates namespace `name` with `labels` (its `kns.<name>` profile, with the
    /// `kubernetes.io/metadata.name` label Kubernetes adds).
    pub fn namespace(&self, name: &str, labels: &[(&str, &str)]) {
        let mut l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.insert("kubernetes.io/metadata.name".into(), name.into());
        let profile = felix_policy::namespace_profile(name, &l);
        self.c.block_on(self.c.client.apply(profile)).unwrap();
    }

    /// Pod `name` at ordinal `ordinal` of node `node` (address `10.65.<node+1>.<ordinal>`) in
    /// `namespace` with `labels`.
    pub fn pod(
        &self,
        node: usize,
        ordinal: u8,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> LabPod {
        let n = &self.c.nodes[node];
        let ip = format!("10.65.{}.{ordinal}", n.index);
        let iface = format!("cali{:011x}", u64::from(n.index) << 8 | u64::from(ordinal));
        let ns = Netns::new("fpp");
        wire_pod(&n.ns, &ns, &iface, &ip);
        let pod = LabPod {
            pod: Pod {
                ns,
                ip,
                iface,
                node,
            },
            name: name.to_string(),
            namespace: namespace.to_string(),
            servers: Vec::new(),
        };
        self.set_labels(&pod, labels);
        pod
    }

    /// Writes `pod`'s WorkloadEndpoint with `labels`.
    pub fn set_labels(&self, pod: &LabPod, labels: &[(&str, &str)]) {
        self.set_endpoint(pod, labels, &[]);
    }

    /// Writes `pod`'s WorkloadEndpoint with `labels` and named TCP `ports`.
    pub fn set_endpoint(&self, pod: &LabPod, labels: &[(&str, &str)], ports: &[(&str, u16)]) {
        let wep = WorkloadEndpoint {
            metadata: ObjectMeta {
                namespace: Some(pod.namespace.clone()),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..ObjectMeta::default()
            },
            spec: WorkloadEndpointSpec {
                orchestrator: "k8s".into(),
                node: self.c.nodes[pod.pod.node].name.clone(),
                pod: pod.name.clone(),
                endpoint: "eth0".into(),
                interface_name: pod.pod.iface.clone(),
                ip_networks: vec![format!("{}/32", pod.pod.ip)],
                profiles: vec![format!("kns.{}", pod.namespace)],
                service_account_name: "default".into(),
                ports: ports
                    .iter()
                    .map(|(name, port)| WorkloadEndpointPort {
                        name: name.to_string(),
                        protocol: fabric_api::Protocol::Tcp,
                        port: *port,
                        host_port: 0,
                        host_ip: String::new(),
                    })
                    .collect(),
                ..WorkloadEndpointSpec::default()
            },
        };
        self.c.block_on(self.c.client.apply(wep)).unwrap();
    }

    /// Applies every Calico resource of `yaml`.
    pub fn apply(&self, yaml: &str) {
        for r in fabric_api::document::parse_documents(yaml, "test").unwrap() {
            self.c.block_on(self.c.client.apply_any(r)).unwrap();
        }
    }

    /// Applies a Kubernetes NetworkPolicy as Calico's Kubernetes datastore presents it.
    pub fn apply_k8s(&self, yaml: &str) {
        let np = KubernetesNetworkPolicy::from_yaml(yaml)
            .unwrap()
            .to_calico()
            .unwrap();
        self.c
            .block_on(self.c.client.apply_any(AnyResource::NetworkPolicy(np)))
            .unwrap();
    }

    /// Deletes a resource.
    pub fn delete(&self, kind: Kind, namespace: Option<&str>, name: &str) {
        self.c
            .block_on(self.c.client.delete_any(kind, namespace, name, None))
            .unwrap();
    }

    /// Starts felix on both nodes with `env` and waits until each has programmed its fixed
    /// filter chains (flows are then awaited by [`assert_flows`]).
    pub fn start(&mut self, env: &[(&str, &str)]) {
        for i in 0..self.c.nodes.len() {
            self.felixes.push(self.c.start_felix(i, env));
        }
        let backend = env
            .iter()
            .find(|(k, _)| *k == "FELIX_IPTABLESBACKEND")
            .map_or("nft", |(_, v)| {
                if v.eq_ignore_ascii_case("legacy") {
                    "legacy"
                } else {
                    "nft"
                }
            });
        for i in 0..self.c.nodes.len() {
            let ns = &self.c.nodes[i].ns;
            let ready = eventually(30, || {
                ns.try_sh(&format!("iptables-{backend}-save -t filter"))
                    .is_ok_and(|t| {
                        t.contains("-A cali-FORWARD") && t.contains("-A cali-to-wl-dispatch")
                    })
            });
            assert!(
                ready,
                "felix {i} did not program its chains:\n{}",
                self.felixes[i].log()
            );
        }
    }

    /// Freezes felix on node `i` (SIGSTOP): the kernel state can then be changed by hand
    /// without felix repairing it half-way.
    pub fn pause(&self, i: usize) {
        self.signal(i, nix::sys::signal::Signal::SIGSTOP);
    }

    /// Lets felix on node `i` run again (SIGCONT) after [`Lab::pause`].
    pub fn resume(&self, i: usize) {
        self.signal(i, nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, i: usize, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.felixes[i].child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// `iptables-<backend>-save -t filter` of node `i`.
    pub fn filter(&self, i: usize, backend: &str) -> String {
        self.c.nodes[i]
            .ns
            .sh(&format!("iptables-{backend}-save -c -t filter"))
    }

    /// The logs of every felix, for failure messages.
    pub fn logs(&self) -> String {
        self.felixes
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let log = f.log();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                format!(
                    "--- felix {i} (last lines) ---\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs TCP servers on `tcp` ports and UDP servers on `udp` ports in `pod` (each answers
/// `ok`).
pub fn serve(pod: &mut LabPod, tcp: &[u16], udp: &[u16]) {
    for p in tcp {
        pod.servers.push(spawn(
            &pod.pod.ns,
            &[&format!("TCP4-LISTEN:{p},fork,reuseaddr"), "SYSTEM:echo ok"],
        ));
    }
    for p in udp {
        pod.servers.push(spawn(
            &pod.pod.ns,
            &[
                &format!("UDP4-RECVFROM:{p},fork,reuseaddr"),
                "SYSTEM:echo ok",
            ],
        ));
    }
    // Wait until they listen.
    let listening = eventually(10, || {
        let out = pod.pod.ns.sh("ss -H -lntu");
        tcp.iter()
            .chain(udp)
            .all(|p| out.contains(&format!(":{p} ")))
    });
    assert!(listening, "servers did not start in {}", pod.name);
}

fn spawn(ns: &Netns, args: &[&str]) -> ChildGuard {
    ChildGuard(
        ns.cmd("socat")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A flow to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// A TCP connection that gets `ok` back.
    Tcp(u16),
    /// A UDP datagram that gets `ok` back.
    Udp(u16),
    /// One echo request answered.
    Icmp,
}

/// Whether `from` reaches `to` with `proto` now: up to three tries (a lost datagram or SYN is
/// not a verdict), each giving up after `wait`.
pub fn reaches(from: &LabPod, to: &str, proto: Proto, wait: Duration) -> bool {
    (0..3).any(|_| reaches_once(from, to, proto, wait))
}

/// Whether `from` reaches `to` with `proto` in one try giving up after `wait`.
pub fn reaches_once(from: &LabPod, to: &str, proto: Proto, wait: Duration) -> bool {
    let to = to.to_string();
    match proto {
        Proto::Icmp => {
            let secs = wait.as_secs().max(1);
            from.pod
                .ns
                .try_sh(&format!("ping -c 1 -W {secs} {to}"))
                .is_ok()
        }
        Proto::Tcp(port) => from.pod.ns.run_in(move || {
            let addr: SocketAddr = format!("{to}:{port}").parse().unwrap();
            let Ok(mut s) = TcpStream::connect_timeout(&addr, wait) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(wait));
            let mut buf = [0u8; 8];
            matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"ok"))
        }),
        Proto::Udp(port) => from.pod.ns.run_in(move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            let _ = s.set_read_timeout(Some(wait));
            let addr: SocketAddr = format!("{to}:{port}").parse().unwrap();
            let _ = s.send_to(b"hi\n", addr);
            let mut buf = [0u8; 8];
            matches!(s.recv_from(&mut buf), Ok((n, _)) if buf[..n].starts_with(b"ok"))
        }),
    }
}

/// One expected outcome.
pub struct Expect<'a> {
    /// The client.
    pub from: &'a LabPod,
    /// The server.
    pub to: &'a LabPod,
    /// What is tried.
    pub proto: Proto,
    /// Whether it must get through.
    pub allowed: bool,
}

/// `from -> to proto`: must get through.
pub fn ok<'a>(from: &'a LabPod, to: &'a LabPod, proto: Proto) -> Expect<'a> {
    Expect {
        from,
        to,
        proto,
        allowed: true,
    }
}

/// `from -> to proto`: must be blocked.
pub fn no<'a>(from: &'a LabPod, to: &'a LabPod, proto: Proto) -> Expect<'a> {
    Expect {
        from,
        to,
        proto,
        allowed: false,
    }
}

/// Probes every flow in parallel (each up to three tries); returns the mismatches.
pub fn mismatches(expect: &[Expect<'_>]) -> Vec<String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = expect
            .iter()
            .map(|e| {
                s.spawn(move || {
                    // An allowed flow gets longer per try: on a loaded machine the server's
                    // answer (a forked `echo`) can take a while, and a late answer is not a
                    // block. A blocked flow needs no more than the short wait.
                    let wait = Duration::from_millis(if e.allowed { 2000 } else { 500 });
                    let got = reaches(e.from, e.to.ip(), e.proto, wait);
                    (got != e.allowed).then(|| {
                        format!(
                            "{}/{} -> {}/{} {:?}: expected {}, got {}",
                            e.from.namespace,
                            e.from.name,
                            e.to.namespace,
                            e.to.name,
                            e.proto,
                            if e.allowed { "allowed" } else { "blocked" },
                            if got { "allowed" } else { "blocked" }
                        )
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    })
}

/// Waits up to `secs` for every flow to behave as expected, then checks once more (so a flow
/// that is allowed only intermittently fails). Panics with the mismatches and the logs.
pub fn assert_flows(lab: &Lab, what: &str, secs: u64, expect: &[Expect<'_>]) {
    let start = Instant::now();
    let mut last = Vec::new();
    let settled = eventually(secs, || {
        last = mismatches(expect);
        last.is_empty()
    });
    if settled {
        last = mismatches(expect);
    }
    assert!(
        last.is_empty(),
        "{what}: after {:.1} s:\n{}\n{}\nnode 1 filter table:\n{}",
        start.elapsed().as_secs_f64(),
        last.join("\n"),
        lab.logs(),
        lab.filter(0, "nft")
    );
}
