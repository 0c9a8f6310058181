//! Programming through felix's `PolicyReconciler` (its filter `Table`s over the chosen iptables
//! backend and its scoped `IpSets`), with the iptables-restore and ipset processes timed, plus
//! counting what the kernel holds and timing a whole-table restore for comparison.

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use felix::dataplane::iptables::{CommandError, rule_hashes};
use felix::dataplane::{
    IpsetBackend, IpsetCommand, IptablesBackend, IptablesCommands, PolicyReconciler, Reconciler,
    Rule,
};
use felix_policy::{Changes, FamilyRender};

/// Time spent in external processes.
#[derive(Debug, Clone, Default)]
pub struct Clock(Rc<Cell<Duration>>);

impl Clock {
    fn add(&self, d: Duration) {
        self.0.set(self.0.get() + d);
    }

    /// The time so far, reset to zero.
    pub fn take(&self) -> Duration {
        self.0.replace(Duration::ZERO)
    }
}

/// The real iptables commands, timing `iptables-restore`.
#[derive(Debug)]
pub struct TimedIptables {
    inner: IptablesCommands,
    clock: Clock,
}

impl IptablesBackend for TimedIptables {
    fn save(&mut self, table: &str) -> Result<String, CommandError> {
        self.inner.save(table)
    }

    fn restore(&mut self, input: &str) -> Result<(), CommandError> {
        let start = Instant::now();
        let r = self.inner.restore(input);
        self.clock.add(start.elapsed());
        r
    }
}

/// The real ipset command, timing `ipset restore`.
#[derive(Debug)]
pub struct TimedIpset {
    inner: IpsetCommand,
    clock: Clock,
}

impl IpsetBackend for TimedIpset {
    fn save(&mut self) -> Result<String, CommandError> {
        self.inner.save()
    }

    fn restore(&mut self, input: &str) -> Result<(), CommandError> {
        let start = Instant::now();
        let r = self.inner.restore(input);
        self.clock.add(start.elapsed());
        r
    }
}

/// felix's policy reconciler in the current namespace, with its process clocks.
pub struct Dataplane {
    backend: String,
    policy: PolicyReconciler<TimedIptables, TimedIpset>,
    /// Time in `iptables-restore`.
    pub iptables_clock: Clock,
    /// Time in `ipset restore`.
    pub ipset_clock: Clock,
}

impl Dataplane {
    /// A reconciler writing through `iptables-<backend>-*` and `ipset`.
    pub fn new(backend: &str) -> Result<Dataplane> {
        let commands = match backend {
            "nft" => IptablesCommands::nft,
            "legacy" => IptablesCommands::legacy,
            other => bail!("unknown backend {other:?}; use nft or legacy"),
        };
        let iptables_clock = Clock::default();
        let ipset_clock = Clock::default();
        let c = iptables_clock.clone();
        let mut policy = PolicyReconciler::new(
            move |f| TimedIptables {
                inner: commands(f),
                clock: c.clone(),
            },
            TimedIpset {
                inner: IpsetCommand::default(),
                clock: ipset_clock.clone(),
            },
            None,
        )
        .map_err(anyhow::Error::msg)?;
        policy.set_in_sync(true);
        Ok(Dataplane {
            backend: backend.to_string(),
            policy,
            iptables_clock,
            ipset_clock,
        })
    }

    /// Applies one update's changes (sets, chains, stale sets).
    pub fn apply(&mut self, changes: &Changes) -> Result<()> {
        self.policy.update(changes).map_err(anyhow::Error::msg)?;
        let report = self.policy.apply();
        ensure!(report.is_ok(), "policy apply: {:?}", report.errors);
        Ok(())
    }

    /// (our rules, our chains, our sets) as the kernel holds them.
    pub fn counts(&mut self) -> Result<(usize, usize, usize)> {
        let out = Command::new(format!("iptables-{}-save", self.backend))
            .args(["-t", "filter"])
            .output()
            .context("iptables-save")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let rules = text
            .lines()
            .filter(|l| l.starts_with("-A ") && l.contains("\"cali:"))
            .count();
        let chains = text.lines().filter(|l| l.starts_with(":cali-")).count();
        let sets = Command::new("ipset")
            .args(["list", "-n"])
            .output()
            .context("ipset list")?;
        let sets = String::from_utf8_lossy(&sets.stdout)
            .lines()
            .filter(|l| l.starts_with("cali40"))
            .count();
        Ok((rules, chains, sets))
    }

    /// Times one whole-table `iptables-restore` of the render (the non-incremental way).
    pub fn full_restore(&mut self, r: &FamilyRender) -> Result<Duration> {
        let mut script = String::from(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n",
        );
        for c in &r.chains {
            let _ = writeln!(script, ":{} - [0:0]", c.name);
        }
        for c in r.hooks.iter().chain(&r.chains) {
            let rules: Vec<Rule> = c.rules.iter().map(Rule::new).collect();
            for (rule, hash) in c.rules.iter().zip(rule_hashes(&c.name, &rules)) {
                let _ = writeln!(
                    script,
                    "-A {} -m comment --comment \"cali:{hash}\" {rule}",
                    c.name
                );
            }
        }
        script.push_str("COMMIT\n");
        let start = Instant::now();
        let mut child = Command::new(format!("iptables-{}-restore", self.backend))
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("iptables-restore")?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(script.as_bytes())
            .context("feeding iptables-restore")?;
        let out = child.wait_with_output().context("iptables-restore")?;
        let took = start.elapsed();
        ensure!(
            out.status.success(),
            "iptables-restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The table cache no longer matches what it wrote; make it re-read.
        let _ = self.policy.resync();
        Ok(took)
    }
}
