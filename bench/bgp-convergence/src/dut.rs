//! The device under test: BIRD 2 or our bgpd, started inside the `dut` namespace with sessions
//! to the feeder (192.0.2.1, AS 65001) and the receiver (192.0.2.6, AS 65003).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bgpd::status::protocol::{Request, query};
use fabric_testkit::routers::BirdControl;
use fabric_testkit::{Bird, ChildGuard, Netns};

/// Which speaker sits between feeder and receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DutKind {
    /// No speaker: the feeder talks to the receiver directly (the harness's own ceiling).
    Direct,
    /// BIRD 2.
    Bird,
    /// The project's bgpd.
    Bgpd,
}

impl fmt::Display for DutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DutKind::Direct => "none (feeder → receiver)",
            DutKind::Bird => "BIRD 2",
            DutKind::Bgpd => "bgpd",
        })
    }
}

/// BIRD as DUT: import all / export all on both sessions, `next hop self` toward the receiver,
/// no kernel protocol.
const BIRD_CONFIG: &str = r#"router id 192.0.2.2;
protocol device { }
protocol bgp feeder {
  local 192.0.2.2 as 65002;
  neighbor 192.0.2.1 as 65001;
  hold time 90;
  ipv4 { import all; export all; };
}
protocol bgp receiver {
  local 192.0.2.5 as 65002;
  neighbor 192.0.2.6 as 65003;
  hold time 90;
  ipv4 { import all; export all; next hop self; };
}
"#;

/// bgpd's configuration (the TOML format the BGP speaker issue fixes).
fn bgpd_config(status_socket: &Path) -> String {
    format!(
        r#"router-id = "192.0.2.2"
asn = 65002
listen = ["192.0.2.2:179", "192.0.2.5:179"]
status-socket = "{}"

[[neighbor]]
address = "192.0.2.1"
remote-asn = 65001

[[neighbor]]
address = "192.0.2.6"
remote-asn = 65003
"#,
        status_socket.display()
    )
}

/// A running DUT; stopped when dropped.
#[derive(Debug)]
pub enum Dut {
    /// BIRD, and a control-socket session for cheap polling.
    Bird(Bird, Option<BirdControl>),
    /// bgpd with its directory (config, status socket, log).
    Bgpd {
        /// The process.
        child: ChildGuard,
        /// Its directory.
        dir: tempfile::TempDir,
    },
}

impl Dut {
    /// Starts the DUT inside `ns`. `bgpd` is the binary for [`DutKind::Bgpd`].
    pub fn start(kind: DutKind, ns: &Netns, bgpd: Option<&Path>) -> Result<Dut> {
        match kind {
            DutKind::Direct => bail!("the direct run has no DUT"),
            DutKind::Bird => {
                let bird = Bird::start(ns, BIRD_CONFIG).context("starting BIRD as the DUT")?;
                let control = bird.control().context("opening BIRD's control socket")?;
                Ok(Dut::Bird(bird, Some(control)))
            }
            DutKind::Bgpd => {
                let binary = bgpd.context("no bgpd binary")?;
                let dir = tempfile::Builder::new()
                    .prefix("bench-bgpd-")
                    .tempdir()
                    .context("creating the bgpd directory")?;
                let config = dir.path().join("bgpd.toml");
                std::fs::write(&config, bgpd_config(&dir.path().join("bench.sock")))
                    .with_context(|| format!("writing {}", config.display()))?;
                let log_path = dir.path().join("bgpd.log");
                let log = std::fs::File::create(&log_path)
                    .with_context(|| format!("creating {}", log_path.display()))?;
                let child = ns
                    .cmd(&binary.to_string_lossy())
                    .arg("--config")
                    .arg(&config)
                    .stdout(log.try_clone().context("opening the bgpd log")?)
                    .stderr(log)
                    .spawn()
                    .with_context(|| format!("starting {}", binary.display()))?;
                Ok(Dut::Bgpd {
                    child: ChildGuard(child),
                    dir,
                })
            }
        }
    }

    /// The DUT's process id.
    pub fn pid(&self) -> u32 {
        match self {
            Dut::Bird(b, _) => b.pid(),
            Dut::Bgpd { child, .. } => child.id(),
        }
    }

    /// The log file to show when a run fails.
    pub fn log_path(&self) -> PathBuf {
        match self {
            Dut::Bird(b, _) => b.log_path().to_path_buf(),
            Dut::Bgpd { dir, .. } => dir.path().join("bgpd.log"),
        }
    }

    /// Routes the DUT has imported from the feeder: BIRD's channel statistics, bgpd's accepted
    /// prefix counter of the feeder session (a `neighbors` request on its status socket).
    pub fn rib_count(&mut self) -> Option<u64> {
        match self {
            Dut::Bird(_, control) => control.as_mut()?.imported_routes("feeder"),
            Dut::Bgpd { dir, .. } => {
                let socket = dir.path().join("bench.sock");
                let response = query(&socket, &Request::Neighbors).ok()?;
                let feeder = IpAddr::from([192, 0, 2, 1]);
                response
                    .neighbors?
                    .iter()
                    .find(|n| n.address == feeder)
                    .map(|n| n.accepted())
            }
        }
    }

    /// The last lines of the DUT's log (the log itself is removed with the DUT).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Fails if the DUT process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        let log = self.log_path();
        if let Dut::Bgpd { child, .. } = self
            && let Some(status) = child.0.try_wait().context("checking on bgpd")?
        {
            bail!("bgpd exited ({status}); log {}", log.display());
        }
        Ok(())
    }
}

/// `VmHWM` and `VmRSS` of the DUT in bytes.
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    fabric_testkit::routers::process_memory(pid)
}
