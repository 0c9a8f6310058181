//! Topology files: what the lab accepts (and how inheritance resolves) and what it rejects,
//! with the place in the file and the rule in the message. No root needed.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use calico_lab::model::{Lab, NodeKind, StartupConfig};
use calico_lab::role::Role;
use calico_lab::topology::{LoadOptions, TopologyError, load};

/// Writes `yaml` as `lab.clab.yml` plus `files` into a fresh directory and loads it.
fn load_case(
    yaml: &str,
    files: &[(&str, &str)],
) -> (tempfile::TempDir, Result<Lab, TopologyError>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let file = dir.path().join("lab.clab.yml");
    std::fs::write(&file, yaml).unwrap();
    let opts = LoadOptions {
        env: BTreeMap::from([
            ("HOME".to_string(), "/root".to_string()),
            ("USER".to_string(), "tester".to_string()),
            ("IMAGE_TAG".to_string(), "2.0.12".to_string()),
        ]),
        ..LoadOptions::default()
    };
    let lab = load(&file, &opts);
    (dir, lab)
}

/// Files that break a rule, with words the error must contain.
const INVALID: &[(&str, &str, &[&str])] = &[
    (
        "unknown node key",
        "name: x\ntopology:\n  nodes:\n    n1:\n      kind: linux\n      imagee: alpine\n",
        &[
            "topology.nodes.n1",
            "unknown key `imagee`",
            "did you mean `image`",
        ],
    ),
    (
        "unknown top-level key",
        "name: x\ntopolgy:\n  nodes: {}\n",
        &["top level", "unknown key `topolgy`", "`topology`"],
    ),
    (
        "link to a node that does not exist",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
        &["topology.links[0].endpoints[1]", "node `b` is not defined"],
    ),
    (
        "endpoint used twice",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n    c: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"a:eth1\", \"c:eth1\"]\n",
        &[
            "topology.links[1].endpoints[0]",
            "a:eth1 is already used at topology.links[0].endpoints[0]",
        ],
    ),
    (
        "one endpoint",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\"]\n",
        &["topology.links[0].endpoints", "exactly two endpoints"],
    ),
    (
        "endpoint without an interface",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [\"a\", \"b:eth1\"]\n",
        &[
            "topology.links[0].endpoints[0]",
            "\"a\" is not \"node:interface\"",
        ],
    ),
    (
        "eth0 is the management interface",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth1\"]\n",
        &["a:eth0", "management interface"],
    ),
    (
        "interface name too long",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [\"a:ethernet-1-1-long\", \"b:eth1\"]\n",
        &[
            "topology.links[0].endpoints[0]",
            "\"ethernet-1-1-long\" is not a usable Linux interface name",
        ],
    ),
    (
        "host link",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"host:veth-a\"]\n",
        &["`host` endpoints are not supported", "never touches"],
    ),
    (
        "link addresses on linux nodes",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.0.0.1/30\", \"10.0.0.2/30\"]\n",
        &[
            "topology.links[0].ipv4",
            "does not configure link addresses",
        ],
    ),
    (
        "macvlan link type",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n  links:\n    - type: macvlan\n      endpoint: {node: a, interface: eth1}\n",
        &["topology.links[0]", "unknown key `endpoint`"],
    ),
    (
        "unsupported kind",
        "name: x\ntopology:\n  nodes:\n    srl: {kind: nokia_srlinux}\n",
        &[
            "topology.nodes.srl.kind",
            "kind `nokia_srlinux` is not supported",
        ],
    ),
    (
        "no kind anywhere",
        "name: x\ntopology:\n  nodes:\n    a: {image: alpine}\n",
        &["topology.nodes.a", "has no kind"],
    ),
    (
        "refused key says why",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux, user: alice}\n",
        &["topology.nodes.a.user", "not supported by calico-lab"],
    ),
    (
        "stages are refused in kinds too",
        "name: x\ntopology:\n  kinds:\n    linux:\n      stages: {}\n  nodes:\n    a: {kind: linux}\n",
        &["topology.kinds.linux.stages", "not supported"],
    ),
    (
        "network-mode host",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux, network-mode: host}\n",
        &["topology.nodes.a.network-mode", "host's network namespace"],
    ),
    (
        "missing bind source",
        "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      binds: [\"nothere.conf:/etc/x.conf\"]\n",
        &["topology.nodes.a.binds[0]", "nothere.conf does not exist"],
    ),
    (
        "bind without a target",
        "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      binds: [\"/var/run/somedir\"]\n",
        &["topology.nodes.a.binds[0]", "has no target"],
    ),
    (
        "relative bind target",
        "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      binds: [\"f.conf:etc/x\"]\n",
        &["topology.nodes.a.binds[0]", "must be an absolute path"],
    ),
    (
        "host-wide sysctl",
        "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      sysctls: {kernel.pid_max: 100}\n",
        &[
            "topology.nodes.a.sysctls.kernel.pid_max",
            "only network-namespace sysctls",
        ],
    ),
    (
        "unterminated quote in exec",
        "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      exec: [\"sh -c 'echo\"]\n",
        &["topology.nodes.a.exec[0]", "unterminated single quote"],
    ),
    (
        "exec is not a list",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux, exec: {a: b}}\n",
        &[
            "topology.nodes.a.exec",
            "expected a list of strings, got a map",
        ],
    ),
    (
        "management address outside the subnet",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux, mgmt-ipv4: 10.9.9.9}\n",
        &[
            "topology.nodes.a.mgmt-ipv4",
            "10.9.9.9 is not a host address of the management subnet 172.20.20.0/24",
        ],
    ),
    (
        "management address used twice",
        "name: x\nmgmt: {ipv4-subnet: 10.50.0.0/24}\ntopology:\n  nodes:\n    a: {kind: linux, mgmt-ipv4: 10.50.0.7}\n    b: {kind: linux, mgmt-ipv4: 10.50.0.7}\n",
        &[
            "topology.nodes.b.mgmt-ipv4",
            "10.50.0.7 is already used by node a",
        ],
    ),
    (
        "management subnet too small for the nodes",
        "name: x\nmgmt: {ipv4-subnet: 10.60.0.0/30}\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n",
        &[
            "mgmt",
            "10.60.0.0/30 has no free IPv4 address left for node b",
        ],
    ),
    (
        "management subnet with host bits",
        "name: x\nmgmt: {ipv4-subnet: 10.50.0.1/24}\ntopology:\n  nodes:\n    a: {kind: linux}\n",
        &[
            "mgmt.ipv4-subnet",
            "has host bits set; the subnet is 10.50.0.0/24",
        ],
    ),
    (
        "bridge node with exec",
        "name: x\ntopology:\n  nodes:\n    br1: {kind: bridge, exec: [\"true\"]}\n",
        &["topology.nodes.br1.exec", "a bridge node runs nothing"],
    ),
    (
        "unknown role label",
        "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      labels: {calico-lab.role: quagga}\n",
        &["unknown role \"quagga\""],
    ),
    (
        "no name",
        "topology:\n  nodes:\n    a: {kind: linux}\n",
        &["no `name`"],
    ),
    (
        "bad lab name",
        "name: my lab\ntopology:\n  nodes:\n    a: {kind: linux}\n",
        &["lab name \"my lab\" is not valid"],
    ),
    (
        "node named like the management namespace",
        "name: x\ntopology:\n  nodes:\n    mgmt: {kind: linux}\n",
        &[
            "topology.nodes.mgmt",
            "clab-x-mgmt is already used by the management network",
        ],
    ),
    (
        "startup-config URL",
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: frr, startup-config: \"https://example.org/a.cfg\"}\n",
        &["topology.nodes.a.startup-config", "is a URL"],
    ),
    (
        "startup-config and a bind to the same file",
        "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      image: quay.io/frrouting/frr\n      startup-config: f.conf\n      binds: [\"f.conf:/etc/frr/frr.conf\"]\n",
        &["both startup-config and a bind provide /etc/frr/frr.conf"],
    ),
    (
        "YAML syntax",
        "name: x\ntopology:\n  nodes: [\n",
        &["not valid YAML"],
    ),
];

#[test]
fn invalid_topologies_are_rejected_with_the_place_and_the_rule() {
    let mut failures = Vec::new();
    for (case, yaml, words) in INVALID {
        let (_dir, result) = load_case(yaml, &[("f.conf", "x")]);
        match result {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(e) => {
                let msg = e.to_string();
                for w in *words {
                    if !msg.contains(w) {
                        failures.push(format!("{case}: {msg:?} lacks {w:?}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const VALID: &str = r#"
name: demo
prefix: lab
mgmt:
  network: fabric
  ipv4-subnet: 10.50.0.0/24
  external-access: false
topology:
  defaults:
    kind: linux
    env: {LEVEL: defaults, FROM_DEFAULTS: "1"}
    exec: ["echo defaults"]
    binds: ["shared.conf:/etc/shared.conf:ro"]
    labels: {team: net}
  kinds:
    linux:
      image: pierky/bird:${IMAGE_TAG}
      env: {LEVEL: kind}
      exec: ["echo kind", "echo defaults"]
  groups:
    edge:
      env: {LEVEL: group}
      sysctls: {net.ipv4.ip_forward: 1}
  nodes:
    r1:
      group: edge
      env: {LEVEL: node, COUNT: 3, ON: true}
      env-files: [vars.env]
      exec:
        - ip addr add 192.0.2.1/30 dev eth1
        - sh -c 'echo $$HOSTNAME __clabNodeName__ $UNSET_VAR'
      binds:
        - r1.conf:/etc/shared.conf
        - __clabNodeDir__:/srv/node
      mgmt-ipv4: 10.50.0.10
      ports: ["179:179"]
      cmd: bird -f -c "/etc/bird/my bird.conf"
    r2:
      image: quay.io/frrouting/frr:8.4.4
      startup-config: |
        hostname r2
        router bgp 65002
    br1:
      kind: bridge
    host1:
      image: alpine:3
      network-mode: none
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
    - type: veth
      mtu: 1500
      endpoints:
        - {node: r2, interface: eth2, mac: "02:00:00:00:00:02"}
        - {node: br1, interface: p1}
    - endpoints: ["host1:eth0", "br1:p2"]
"#;

#[test]
fn a_valid_topology_resolves_as_containerlab_merges_it() {
    let (dir, lab) = load_case(
        VALID,
        &[
            ("shared.conf", "s"),
            ("r1.conf", "r"),
            ("vars.env", "FROM_FILE=yes\nLEVEL=file\n"),
            ("clab-demo/r1/keep", ""),
        ],
    );
    let lab = lab.unwrap();
    let d = dir.path();
    assert_eq!(lab.name, "demo");
    assert_eq!(lab.node_prefix, "lab-demo-");
    assert_eq!(lab.mgmt.namespace, "lab-demo-mgmt");
    assert_eq!(lab.mgmt.network, "fabric");
    assert_eq!(lab.mgmt.ipv4_gateway.to_string(), "10.50.0.1");
    assert_eq!(lab.lab_dir, d.join("clab-demo"));

    let r1 = lab.node("r1").unwrap();
    assert_eq!(r1.namespace, "lab-demo-r1");
    assert_eq!(r1.kind, NodeKind::Linux);
    assert_eq!(r1.image.as_deref(), Some("pierky/bird:2.0.12"));
    assert_eq!(r1.role, Role::Bird);
    assert_eq!(r1.env["LEVEL"], "node");
    assert_eq!(r1.env["FROM_DEFAULTS"], "1");
    assert_eq!(r1.env["FROM_FILE"], "yes");
    assert_eq!(r1.env["COUNT"], "3");
    assert_eq!(r1.env["ON"], "true");
    assert_eq!(r1.env["CLAB_INTFS"], "1");
    assert_eq!(r1.env["CLAB_LABEL_TEAM"], "net");
    assert_eq!(r1.env["CLAB_LABEL_CLAB_NODE_NAME"], "r1");
    assert_eq!(r1.labels["clab-node-longname"], "lab-demo-r1");
    assert_eq!(r1.labels["clab-owner"], "tester");
    assert_eq!(r1.sysctls["net.ipv4.ip_forward"], "1");
    let exec: Vec<&str> = r1.exec.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        exec,
        [
            "echo defaults",
            "echo kind",
            "ip addr add 192.0.2.1/30 dev eth1",
            "sh -c 'echo $HOSTNAME r1 $UNSET_VAR'"
        ]
    );
    assert_eq!(
        r1.exec[3].argv,
        ["sh", "-c", "echo $HOSTNAME r1 $UNSET_VAR"]
    );
    assert_eq!(
        r1.cmd.as_deref().unwrap(),
        ["bird", "-f", "-c", "/etc/bird/my bird.conf"]
    );
    let binds: Vec<(String, String, bool)> = r1
        .binds
        .iter()
        .map(|b| {
            (
                b.source.display().to_string(),
                b.target.display().to_string(),
                b.read_only,
            )
        })
        .collect();
    assert_eq!(
        binds,
        [
            (
                d.join("r1.conf").display().to_string(),
                "/etc/shared.conf".to_string(),
                false
            ),
            (
                d.join("clab-demo/r1").display().to_string(),
                "/srv/node".to_string(),
                false
            ),
        ]
    );
    assert_eq!(r1.mgmt.as_ref().unwrap().ipv4.to_string(), "10.50.0.10/24");

    let r2 = lab.node("r2").unwrap();
    assert_eq!(r2.role, Role::Frr);
    assert!(
        matches!(&r2.startup_config, Some(StartupConfig::Embedded(t)) if t.contains("router bgp 65002"))
    );
    assert_eq!(r2.mgmt.as_ref().unwrap().ipv4.to_string(), "10.50.0.2/24");
    assert_eq!(r2.interfaces, ["eth1", "eth2"]);
    assert!(r2.sysctls.is_empty(), "the group applies to r1 only");

    let br1 = lab.node("br1").unwrap();
    assert_eq!(br1.kind, NodeKind::Bridge);
    assert_eq!(br1.role, Role::Bridge);
    assert!(br1.mgmt.is_none());

    let host1 = lab.node("host1").unwrap();
    assert_eq!(host1.role, Role::Plain);
    assert!(host1.mgmt.is_none(), "network-mode none has no eth0");

    assert_eq!(lab.links.len(), 3);
    assert_eq!(lab.links[0].mtu, 9500);
    assert_eq!(lab.links[1].mtu, 1500);
    assert_eq!(lab.links[1].a.mac.as_deref(), Some("02:00:00:00:00:02"));
    let ignored: Vec<&str> = lab.ignored.iter().map(|i| i.at.as_str()).collect();
    assert!(ignored.contains(&"mgmt.external-access"), "{ignored:?}");
    assert!(ignored.contains(&"topology.nodes.r1.ports"), "{ignored:?}");
}

#[test]
fn the_repository_test_topologies_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/topologies");
    let mut count = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.to_string_lossy().ends_with(".clab.yml") {
                load(&p, &LoadOptions::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                count += 1;
            }
        }
    }
    assert!(count >= 6, "found {count} topologies");
}

#[test]
fn a_read_error_names_the_file() {
    let e = load(
        Path::new("/nonexistent/x.clab.yml"),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.clab.yml"), "{e}");
}
