//! A real etcd (Debian `etcd-server`) for tests: the suite's shared one, or one per test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{ChildGuard, free_port, wait_until};

/// The environment variable the test command sets to the shared etcd's client URL.
pub const SHARED_ETCD_ENV: &str = "FABRIC_TEST_ETCD";

/// An etcd server owned by one test: its own data directory and loopback ports.
#[derive(Debug)]
pub struct EtcdServer {
    child: Option<ChildGuard>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

impl EtcdServer {
    /// Starts etcd on free 127.0.0.1 ports and waits until it reports healthy.
    pub fn start() -> EtcdServer {
        let dir = tempfile::tempdir().expect("etcd data directory");
        let mut server = EtcdServer {
            child: None,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
        };
        server.start_again();
        server
    }

    /// The client URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Stops the server (SIGKILL), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Starts the server again on the same ports and data; waits until healthy.
    pub fn start_again(&mut self) {
        self.stop();
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .args(["--name", "test"])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting etcd (Debian package etcd-server)");
        self.child = Some(ChildGuard(child));
        let port = self.client_port;
        assert!(
            wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
                healthy(port)
            }),
            "etcd on port {port} did not become healthy within 30 s"
        );
    }
}

/// The etcd a test should use: the suite's shared server, or one started for this test.
#[derive(Debug)]
pub enum TestEtcd {
    /// The server the test command started (`FABRIC_TEST_ETCD`).
    Shared(String),
    /// A server owned by this test.
    Own(EtcdServer),
}

impl TestEtcd {
    /// The client URL.
    pub fn endpoint(&self) -> String {
        match self {
            TestEtcd::Shared(url) => url.clone(),
            TestEtcd::Own(server) => server.endpoint(),
        }
    }
}

/// The shared etcd when the test command started one, else a new server for this test.
///
/// Tests on the shared server must keep to key prefixes of their own.
pub fn test_etcd() -> TestEtcd {
    match std::env::var(SHARED_ETCD_ENV) {
        Ok(url) if !url.is_empty() => TestEtcd::Shared(url),
        _ => TestEtcd::Own(EtcdServer::start()),
    }
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}
