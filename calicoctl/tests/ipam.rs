//! `calicoctl ipam` as an operator runs it: the real binary against sqlite and against etcd,
//! over addresses handed out by `fabric_ipam` (as the CNI plugin does). `show` prints
//! calicoctl's tables; `check` reports a leak, writes its JSON report and exits 1;
//! `release --from-report` frees the leak and refuses a stale report; `release --ip` and
//! `configure` do what they say; bad input is refused with the flag, the value and the rule,
//! and the store is unchanged.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::sync::Arc;

use fabric_api::ippool::IPPoolSpec;
use fabric_api::{IPPool, ObjectMeta, WorkloadEndpoint, WorkloadEndpointSpec};
use fabric_datastore::{Backend, EtcdBackend, KeyValue, SqliteBackend};
use fabric_ipam::handles::pod_handle;
use fabric_ipam::{AutoAssignArgs, CheckReport, Ipam};
use fabric_testkit::{TestEtcd, test_etcd, unique_name};

/// A datastore of the test's own, an `Ipam` on it, and the environment that points the
/// calicoctl binary at it.
struct Store {
    vars: Vec<(String, String)>,
    ipam: Ipam,
    backend: Arc<dyn Backend>,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    _etcd: Option<TestEtcd>,
}

/// What one calicoctl run printed and returned.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    #[track_caller]
    fn failed(&self) -> &str {
        assert_eq!(
            self.code, 1,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stderr
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Store {
    fn sqlite() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calico.db");
        let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&path).unwrap());
        let vars = vec![
            ("DATASTORE_TYPE".into(), "sqlite".into()),
            ("SQLITE_PATH".into(), path.display().to_string()),
        ];
        Store::new(vars, backend, runtime(), dir, None)
    }

    fn etcd() -> Store {
        let etcd = test_etcd();
        let prefix = format!("/{}", unique_name("calicoctl-ipam"));
        let rt = runtime();
        let backend = rt
            .block_on(EtcdBackend::connect_with_prefix(
                &[etcd.endpoint()],
                &prefix,
            ))
            .unwrap();
        let vars = vec![
            ("DATASTORE_TYPE".into(), "etcdv3".into()),
            ("ETCD_ENDPOINTS".into(), etcd.endpoint()),
            (calicoctl::ETCD_KEY_PREFIX_ENV.into(), prefix),
        ];
        let dir = tempfile::tempdir().unwrap();
        Store::new(vars, Arc::new(backend), rt, dir, Some(etcd))
    }

    fn new(
        vars: Vec<(String, String)>,
        backend: Arc<dyn Backend>,
        rt: tokio::runtime::Runtime,
        dir: tempfile::TempDir,
        etcd: Option<TestEtcd>,
    ) -> Store {
        let ipam = Ipam::from_backend(backend.clone());
        rt.block_on(ipam.client().create(IPPool {
            metadata: ObjectMeta::named("pool-a"),
            spec: IPPoolSpec {
                cidr: "10.9.0.0/24".into(),
                block_size: Some(26),
                ..IPPoolSpec::default()
            },
            status: None,
        }))
        .unwrap();
        Store {
            vars,
            ipam,
            backend,
            rt,
            dir,
            _etcd: etcd,
        }
    }

    /// Runs the real calicoctl binary with `args`, in the scratch directory, with only this
    /// store's environment.
    fn calicoctl(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_calicoctl"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        // No default config file in the test's view: /etc/calico/calicoctl.cfg is absent here.
        let out = cmd.output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// One address for pod `name` on `node`, as the CNI plugin asks for it.
    fn allocate(&self, node: &str, name: &str) -> IpAddr {
        let args = AutoAssignArgs {
            node: node.into(),
            handle: pod_handle(name),
            attrs: attrs(name),
            num_v4: 1,
            ..AutoAssignArgs::default()
        };
        self.rt.block_on(self.ipam.auto_assign(args)).unwrap().v4[0].0
    }

    /// The WorkloadEndpoint of pod `name` using `ip`.
    fn endpoint(&self, node: &str, name: &str, ip: IpAddr) {
        let wep = WorkloadEndpoint {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            spec: WorkloadEndpointSpec {
                orchestrator: "k8s".into(),
                node: node.into(),
                pod: name.into(),
                endpoint: "eth0".into(),
                container_id: name.into(),
                interface_name: format!("cali{name}"),
                ip_networks: vec![format!("{ip}/32")],
                ..WorkloadEndpointSpec::default()
            },
        };
        self.rt.block_on(self.ipam.client().create(wep)).unwrap();
    }

    /// Every key with its value and revisions.
    fn snapshot(&self) -> Vec<KeyValue> {
        self.rt.block_on(self.backend.list("")).unwrap().items
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn attrs(pod: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("pod".to_string(), pod.to_string()),
        ("namespace".to_string(), "default".to_string()),
    ])
}

/// Pods p1 and p2 on n1 (p2 leaked: no endpoint), p3 on n2 borrowing from n1's block.
fn populated(store: &Store) -> (IpAddr, IpAddr, IpAddr) {
    let p1 = store.allocate("n1", "p1");
    store.endpoint("n1", "p1", p1);
    let p2 = store.allocate("n1", "p2");
    let IpAddr::V4(base) = p1 else {
        panic!("{p1} is not IPv4")
    };
    let block_start = u32::from(base) & !63;
    let p3 = IpAddr::V4((block_start + 10).into());
    store
        .rt
        .block_on(
            store
                .ipam
                .assign_ip(p3, &pod_handle("p3"), &attrs("p3"), "n2"),
        )
        .unwrap();
    store.endpoint("n2", "p3", p3);
    (p1, p2, p3)
}

fn show_prints_calicoctls_tables(store: &Store) {
    let (p1, _, p3) = populated(store);
    assert_eq!(
        store.calicoctl(&["ipam", "show"]).ok(),
        "+----------+-------------+-----------+------------+--------------+-----------+\n\
         | GROUPING | CIDR        | IPS TOTAL | IPS IN USE | IPS RESERVED | IPS FREE  |\n\
         +----------+-------------+-----------+------------+--------------+-----------+\n\
         | IP Pool  | 10.9.0.0/24 |       256 |     3 (1%) |       0 (0%) | 253 (99%) |\n\
         +----------+-------------+-----------+------------+--------------+-----------+\n"
    );
    let IpAddr::V4(base) = p1 else { unreachable!() };
    let block = format!("{}/26", std::net::Ipv4Addr::from(u32::from(base) & !63));
    let blocks = store.calicoctl(&["ipam", "show", "--show-blocks"]);
    let row = blocks
        .ok()
        .lines()
        .find(|l| l.starts_with("| Block "))
        .unwrap_or_else(|| panic!("no block row in\n{}", blocks.stdout));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(
        cells[1..7],
        ["Block", &block, "64", "3 (5%)", "0 (0%)", "61 (95%)"]
    );

    let borrowed = store.calicoctl(&["ipam", "show", "--show-borrowed"]);
    let lines: Vec<&str> = borrowed.ok().lines().collect();
    let header: Vec<&str> = lines[1].split('|').map(str::trim).collect();
    assert_eq!(
        header[1..7],
        [
            "IP",
            "BORROWING-NODE",
            "BLOCK",
            "BLOCK OWNER",
            "TYPE",
            "ALLOCATED-TO"
        ]
    );
    let cells: Vec<&str> = lines[3].split('|').map(str::trim).collect();
    assert_eq!(
        cells[1..7],
        [
            p3.to_string().as_str(),
            "n2",
            &block,
            "n1",
            "pod",
            "default/p3"
        ]
    );
    assert_eq!(lines.len(), 5, "{}", borrowed.stdout);

    let ip = p1.to_string();
    assert_eq!(
        store.calicoctl(&["ipam", "show", "--ip", &ip]).ok(),
        format!(
            "IP {ip} is in use\nHandle ID: k8s-pod-network.p1\nActive Owner Attributes:\n  \
             namespace: default\n  node: n1\n  pod: p1\nBlock: {block} (affine to n1)\n\
             Sequence number: {}\n",
            store
                .rt
                .block_on(store.ipam.get_assignment_attributes(p1))
                .unwrap()
                .unwrap()
                .sequence
        )
    );
    assert_eq!(
        store.calicoctl(&["ipam", "show", "--ip=10.9.0.250"]).ok(),
        "IP 10.9.0.250 is not currently assigned\n"
    );
    assert_eq!(
        store
            .calicoctl(&["ipam", "show", "--show-configuration"])
            .ok(),
        "+--------------------+-------+\n\
         | PROPERTY           | VALUE |\n\
         +--------------------+-------+\n\
         | StrictAffinity     | false |\n\
         | AutoAllocateBlocks | true  |\n\
         | MaxBlocksPerHost   | 20    |\n\
         | IPCooldownSeconds  | 0     |\n\
         +--------------------+-------+\n"
    );
}

#[test]
fn show_prints_calicoctls_tables_on_sqlite() {
    show_prints_calicoctls_tables(&Store::sqlite());
}

#[test]
fn show_prints_calicoctls_tables_on_etcd() {
    show_prints_calicoctls_tables(&Store::etcd());
}

fn check_finds_the_leak_and_release_from_report_frees_only_it(store: &Store) {
    let (p1, p2, p3) = populated(store);
    let report_path = store.path("report.json");
    let run = store.calicoctl(&["ipam", "check", "--show-problem-ips", "-o", &report_path]);
    assert!(
        run.failed().contains("ipam check found 1 problem(s)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains("Found 1 IPs that are allocated in IPAM but not actually in use."),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&p2.to_string()), "{}", run.stdout);
    assert!(run.stdout.contains("Check complete; found 1 problems."));
    let report: CheckReport =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let leaked: Vec<IpAddr> = report
        .release_requests()
        .into_iter()
        .map(|r| r.ip)
        .collect();
    assert_eq!(leaked, vec![p2]);

    let out = store
        .calicoctl(&["ipam", "release", "--from-report", &report_path])
        .ok()
        .to_string();
    assert!(out.contains("Releasing 1 old IPs..."), "{out}");
    assert!(out.contains("Released 1 IPs successfully"), "{out}");
    let clean = store.calicoctl(&["ipam", "check"]);
    assert!(clean.ok().contains("Check complete; found 0 problems."));
    for (ip, in_use) in [(p1, true), (p2, false), (p3, true)] {
        let text = store.calicoctl(&["ipam", "show", "--ip", &ip.to_string()]);
        assert_eq!(
            text.ok().contains("is in use"),
            in_use,
            "{ip}: {}",
            text.stdout
        );
    }
}

#[test]
fn check_finds_the_leak_and_release_from_report_frees_only_it_on_sqlite() {
    check_finds_the_leak_and_release_from_report_frees_only_it(&Store::sqlite());
}

#[test]
fn check_finds_the_leak_and_release_from_report_frees_only_it_on_etcd() {
    check_finds_the_leak_and_release_from_report_frees_only_it(&Store::etcd());
}

fn a_stale_report_is_refused_unless_forced(store: &Store) {
    let (_, p2, _) = populated(store);
    let report_path = store.path("report.json");
    store
        .calicoctl(&["ipam", "check", "-o", &report_path])
        .failed();
    // A new pod after the report: the report no longer describes the datastore.
    let p4 = store.allocate("n1", "p4");
    store.endpoint("n1", "p4", p4);
    let before = store.snapshot();
    let run = store.calicoctl(&["ipam", "release", "--from-report", &report_path]);
    let err = run.failed();
    assert!(err.contains("the provided reports are all stale"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        store.snapshot(),
        before,
        "a refused release changed the store"
    );

    // Forced, it frees the leak the report saw, and nothing allocated since.
    let out = store
        .calicoctl(&["ipam", "release", "--from-report", &report_path, "--force"])
        .ok()
        .to_string();
    assert!(
        out.contains("WARNING: The provided reports are all stale"),
        "{out}"
    );
    assert!(out.contains("Released 1 IPs successfully"), "{out}");
    let show = |ip: IpAddr| store.calicoctl(&["ipam", "show", "--ip", &ip.to_string()]);
    assert!(show(p2).ok().contains("is not currently assigned"));
    assert!(show(p4).ok().contains("is in use"));
}

#[test]
fn a_stale_report_is_refused_unless_forced_on_sqlite() {
    a_stale_report_is_refused_unless_forced(&Store::sqlite());
}

#[test]
fn a_stale_report_is_refused_unless_forced_on_etcd() {
    a_stale_report_is_refused_unless_forced(&Store::etcd());
}

fn release_by_ip_and_configure_change_what_they_name(store: &Store) {
    let (_, p2, _) = populated(store);
    let ip = p2.to_string();
    assert_eq!(
        store.calicoctl(&["ipam", "release", "--ip", &ip]).ok(),
        format!("Successfully released IP address {ip}\n")
    );
    let again = store.calicoctl(&["ipam", "release", &format!("--ip={ip}")]);
    assert_eq!(again.failed(), format!("IP address {ip} is not assigned\n"));

    assert_eq!(
        store
            .calicoctl(&[
                "ipam",
                "configure",
                "--strictaffinity=true",
                "--max-blocks-per-host=3"
            ])
            .ok(),
        "Successfully set StrictAffinity to: true\nSuccessfully set MaxBlocksPerHost to: 3\n"
    );
    let config = store.rt.block_on(store.ipam.config()).unwrap();
    assert!(config.strict_affinity);
    assert_eq!(config.max_blocks_per_host, 3);
    store
        .calicoctl(&["ipam", "configure", "--strictaffinity", "false"])
        .ok();
    let config = store.rt.block_on(store.ipam.config()).unwrap();
    assert!(!config.strict_affinity);
    assert_eq!(config.max_blocks_per_host, 3, "an option not given is kept");
    let shown = store.calicoctl(&["ipam", "show", "--show-configuration"]);
    assert!(
        shown.ok().contains("| MaxBlocksPerHost   | 3     |"),
        "{}",
        shown.stdout
    );
}

#[test]
fn release_by_ip_and_configure_change_what_they_name_on_sqlite() {
    release_by_ip_and_configure_change_what_they_name(&Store::sqlite());
}

#[test]
fn release_by_ip_and_configure_change_what_they_name_on_etcd() {
    release_by_ip_and_configure_change_what_they_name(&Store::etcd());
}

fn bad_input_is_refused_naming_the_flag_and_changes_nothing(store: &Store) {
    populated(store);
    let garbage = store.path("garbage.json");
    std::fs::write(&garbage, "{\"allocations\": 7}").unwrap();
    let report = store.path("report.json");
    store.calicoctl(&["ipam", "check", "-o", &report]).failed();
    let other_version = store.path("other-version.json");
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    r["version"] = "0.0.1".into();
    std::fs::write(&other_version, r.to_string()).unwrap();
    let missing = store.path("missing.json");
    let unwritable = store.path("no-such-dir/report.json");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["ipam", "show", "--ip=10.9.0.300"],
            "invalid value for --ip: \"10.9.0.300\" is not an IP address".into(),
        ),
        (
            vec!["ipam", "show", "--ip=10.9.0.1", "--show-blocks"],
            "'--ip <IP>' cannot be used with '--show-blocks'".into(),
        ),
        (
            vec!["ipam", "release", "--ip", "nope"],
            "invalid value for --ip: \"nope\"".into(),
        ),
        (
            vec!["ipam", "release"],
            "specify the address to release with --ip=<IP>, or a report with --from-report=<REPORT>"
                .into(),
        ),
        (
            vec!["ipam", "release", "--ip=10.9.0.1", "--from-report", &report],
            "'--ip <IP>' cannot be used with '--from-report <REPORT>'".into(),
        ),
        (
            vec!["ipam", "release", "--from-report", &missing],
            format!("failed to read the report {missing}"),
        ),
        (
            vec!["ipam", "release", "--from-report", &garbage],
            format!("{garbage} is not a report of `calicoctl ipam check -o`"),
        ),
        (
            vec!["ipam", "release", "--from-report", &other_version],
            "was produced using a different version (0.0.1) of calicoctl".into(),
        ),
        (
            vec!["ipam", "configure", "--strictaffinity=maybe"],
            "invalid value for --strictaffinity: \"maybe\"; use true or false".into(),
        ),
        (
            vec!["ipam", "configure", "--max-blocks-per-host=-1"],
            "invalid value for --max-blocks-per-host: \"-1\"; use a whole number from 0 to"
                .into(),
        ),
        (
            vec!["ipam", "configure", "--strictaffinity=true", "--max-blocks-per-host=many"],
            "invalid value for --max-blocks-per-host: \"many\"".into(),
        ),
        (
            vec!["ipam", "configure"],
            "at least one configuration option must be specified".into(),
        ),
        (
            vec!["ipam", "check", "-o", &unwritable],
            format!("failed to write the report to {unwritable}"),
        ),
    ];
    for (args, expect) in cases {
        let before = store.snapshot();
        let run = store.calicoctl(&args);
        let err = run.failed();
        assert!(
            err.contains(&expect),
            "{args:?}: expected {expect:?} in:\n{err}"
        );
        assert_eq!(store.snapshot(), before, "{args:?} changed the store");
    }
}

#[test]
fn bad_input_is_refused_naming_the_flag_and_changes_nothing_on_sqlite() {
    bad_input_is_refused_naming_the_flag_and_changes_nothing(&Store::sqlite());
}

#[test]
fn bad_input_is_refused_naming_the_flag_and_changes_nothing_on_etcd() {
    bad_input_is_refused_naming_the_flag_and_changes_nothing(&Store::etcd());
}
