//! Helpers shared by the calicoctl integration tests: a datastore of the test's own (a sqlite
//! file in a temporary directory, or a unique key prefix on the suite's etcd), running
//! calicoctl in-process or as the real binary, and a snapshot of the whole store.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use calicoctl::{ETCD_KEY_PREFIX_ENV, Env};
use fabric_datastore::{Backend, EtcdBackend, KeyValue, SqliteBackend};
use fabric_testkit::{TestEtcd, test_etcd, unique_name};

/// What one calicoctl run printed and returned.
#[derive(Debug)]
pub struct Output {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure and returns stderr.
    #[track_caller]
    pub fn failed(&self) -> &str {
        assert_ne!(
            self.code, 0,
            "expected failure\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stderr
    }
}

/// A datastore for one test, and calicoctl pointed at it.
pub struct Ctl {
    env: Env,
    vars: Vec<(String, String)>,
    backend: Arc<dyn Backend>,
    runtime: tokio::runtime::Runtime,
    /// Keeps the temporary directory (sqlite) or the etcd server alive.
    _guard: Guard,
    /// A scratch directory for manifests.
    pub dir: tempfile::TempDir,
}

enum Guard {
    Dir(tempfile::TempDir),
    Etcd(TestEtcd),
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A config file path that does not exist, so the environment is used.
fn no_default_config(dir: &Path) -> PathBuf {
    dir.join("no-calicoctl.cfg")
}

impl Ctl {
    /// A fresh sqlite datastore in a temporary directory (`SQLITE_PATH`).
    pub fn sqlite() -> Ctl {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calico.db");
        let scratch = tempfile::tempdir().unwrap();
        let vars = vec![
            ("DATASTORE_TYPE".to_string(), "sqlite".to_string()),
            ("SQLITE_PATH".to_string(), path.display().to_string()),
        ];
        let rt = runtime();
        let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&path).unwrap());
        Ctl::new(vars, backend, rt, Guard::Dir(dir), scratch)
    }

    /// The suite's etcd (or one of this test's own), under a key prefix of this test's own
    /// (`ETCD_ENDPOINTS` and the test-only `FABRIC_ETCD_KEY_PREFIX`).
    pub fn etcd() -> Ctl {
        let etcd = test_etcd();
        let prefix = format!("/{}", unique_name("calicoctl-test"));
        let scratch = tempfile::tempdir().unwrap();
        let vars = vec![
            ("DATASTORE_TYPE".to_string(), "etcdv3".to_string()),
            ("ETCD_ENDPOINTS".to_string(), etcd.endpoint()),
            (ETCD_KEY_PREFIX_ENV.to_string(), prefix.clone()),
        ];
        let rt = runtime();
        let backend = rt
            .block_on(EtcdBackend::connect_with_prefix(
                &[etcd.endpoint()],
                &prefix,
            ))
            .unwrap();
        Ctl::new(vars, Arc::new(backend), rt, Guard::Etcd(etcd), scratch)
    }

    fn new(
        vars: Vec<(String, String)>,
        backend: Arc<dyn Backend>,
        runtime: tokio::runtime::Runtime,
        guard: Guard,
        dir: tempfile::TempDir,
    ) -> Ctl {
        let mut env = Env::empty().with_default_config_file(no_default_config(dir.path()));
        for (k, v) in &vars {
            env = env.with_var(k.clone(), v.clone());
        }
        Ctl {
            env,
            vars,
            backend,
            runtime,
            _guard: guard,
            dir,
        }
    }

    /// Runs `calicoctl ARGS` in-process with empty stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, "")
    }

    /// Runs `calicoctl ARGS` in-process with `stdin`.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let argv = std::iter::once("calicoctl").chain(args.iter().copied());
        let code =
            calicoctl::run_with_env(argv, &self.env, &mut stdin.as_bytes(), &mut out, &mut err);
        Output {
            code,
            stdout: String::from_utf8(out).unwrap(),
            stderr: String::from_utf8(err).unwrap(),
        }
    }

    /// Runs the real `calicoctl` binary with this datastore's environment.
    pub fn binary(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_calicoctl"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// Writes a manifest into the scratch directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// Every key of the store (under this test's prefix) with its value and its create and
    /// modify revisions: any write changes it. (The store-wide revision is left out: on the
    /// suite's shared etcd, other tests raise it.)
    pub fn snapshot(&self) -> Vec<KeyValue> {
        self.runtime
            .block_on(async { self.backend.list("").await.unwrap().items })
    }

    /// The keys of the store.
    pub fn keys(&self) -> Vec<String> {
        self.snapshot().into_iter().map(|kv| kv.key).collect()
    }
}

/// The path of a manifest from `api/tests/manifests`.
pub fn manifest(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../api/tests/manifests")
        .join(name)
        .display()
        .to_string()
}
