//! A fake iptables for unit tests: interprets the `iptables-restore --noflush` subset the
//! [`Table`](super::Table) writes (atomically per `COMMIT`), prints `iptables-save` output, and
//! lets tests tamper and inject failures.

use std::collections::VecDeque;

use super::backend::{CommandError, IptablesBackend};

/// One chain: name, policy (`ACCEPT` for built-ins, `-` for user chains) and rule texts
/// (everything after `-A <chain> `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeChain {
    /// Chain name.
    pub name: String,
    /// Policy as `iptables-save` prints it.
    pub policy: String,
    /// Rule texts.
    pub rules: Vec<String>,
}

/// One table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTable {
    /// Table name.
    pub name: String,
    /// Chains in creation order.
    pub chains: Vec<FakeChain>,
}

impl FakeTable {
    fn new(name: &str) -> FakeTable {
        let builtins: &[&str] = match name {
            "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
            "filter" => &["INPUT", "FORWARD", "OUTPUT"],
            "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
            _ => &["PREROUTING", "OUTPUT"],
        };
        FakeTable {
            name: name.to_string(),
            chains: builtins
                .iter()
                .map(|c| FakeChain {
                    name: c.to_string(),
                    policy: "ACCEPT".to_string(),
                    rules: Vec::new(),
                })
                .collect(),
        }
    }

    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&FakeChain> {
        self.chains.iter().find(|c| c.name == name)
    }

    fn chain_mut(&mut self, name: &str) -> Result<&mut FakeChain, String> {
        self.chains
            .iter_mut()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("No chain/target/match by that name: {name}"))
    }

    fn check_target(&self, rule: &str) -> Result<(), String> {
        let mut words = rule.split_whitespace();
        while let Some(w) = words.next() {
            if w == "-j" || w == "-g" {
                let target = words.next().unwrap_or_default();
                let builtin = target.chars().all(|c| c.is_ascii_uppercase());
                if !builtin && self.chain(target).is_none() {
                    return Err(format!("No chain/target/match by that name: {target}"));
                }
            }
        }
        Ok(())
    }

    fn referenced(&self, chain: &str) -> bool {
        self.chains.iter().any(|c| {
            c.rules.iter().any(|r| {
                let words: Vec<&str> = r.split_whitespace().collect();
                words
                    .windows(2)
                    .any(|w| (w[0] == "-j" || w[0] == "-g") && w[1] == chain)
            })
        })
    }

    /// Applies one command line of a restore transaction.
    fn command(&mut self, line: &str) -> Result<(), String> {
        if let Some(decl) = line.strip_prefix(':') {
            let mut parts = decl.split_whitespace();
            let name = parts.next().ok_or("empty chain declaration")?;
            let policy = parts.next().unwrap_or("-").to_string();
            match self.chains.iter_mut().find(|c| c.name == name) {
                Some(c) => c.rules.clear(),
                None => self.chains.push(FakeChain {
                    name: name.to_string(),
                    policy,
                    rules: Vec::new(),
                }),
            }
            return Ok(());
        }
        let (cmd, rest) = line
            .split_once(' ')
            .ok_or_else(|| format!("bad line {line:?}"))?;
        let (chain, rule) = rest.split_once(' ').unwrap_or((rest, ""));
        match cmd {
            "-A" => {
                self.check_target(rule)?;
                self.chain_mut(chain)?.rules.push(rule.to_string());
            }
            "-I" => {
                let (at, rule) = match rule.split_once(' ') {
                    Some((n, r)) if n.parse::<usize>().is_ok() => {
                        (n.parse::<usize>().unwrap_or(1), r)
                    }
                    _ => (1, rule),
                };
                self.check_target(rule)?;
                let c = self.chain_mut(chain)?;
                if at == 0 || at > c.rules.len() + 1 {
                    return Err(format!("index of insertion too big: {at}"));
                }
                c.rules.insert(at - 1, rule.to_string());
            }
            "-D" => {
                let c = self.chain_mut(chain)?;
                match rule.trim().parse::<usize>() {
                    Ok(n) if n >= 1 && n <= c.rules.len() => {
                        c.rules.remove(n - 1);
                    }
                    Ok(n) => return Err(format!("index of deletion too big: {n}")),
                    Err(_) => {
                        let at = c
                            .rules
                            .iter()
                            .position(|r| r == rule)
                            .ok_or("Bad rule (does a matching rule exist in that chain?)")?;
                        c.rules.remove(at);
                    }
                }
            }
            "-F" => self.chain_mut(chain)?.rules.clear(),
            "-X" => {
                let c = self
                    .chain(chain)
                    .ok_or("No chain/target/match by that name")?;
                if c.policy != "-" {
                    return Err("Cannot delete built-in chain".into());
                }
                if !c.rules.is_empty() {
                    return Err("Directory not empty".into());
                }
                if self.referenced(chain) {
                    return Err("Too many links".into());
                }
                self.chains.retain(|c| c.name != chain);
            }
            other => return Err(format!("unknown command {other}")),
        }
        Ok(())
    }
}

/// The fake backend: tables in memory.
#[derive(Debug, Default)]
pub struct FakeIptables {
    /// Every table that was touched.
    pub tables: Vec<FakeTable>,
    /// Every restore input, in order.
    pub restores: Vec<String>,
    /// How many saves were taken.
    pub saves: usize,
    fail_restores: VecDeque<String>,
}

impl FakeIptables {
    /// No tables yet (they appear with their built-in chains on first use).
    pub fn new() -> FakeIptables {
        FakeIptables::default()
    }

    /// The table called `name` (created with its built-in chains).
    pub fn table(&mut self, name: &str) -> &mut FakeTable {
        if let Some(i) = self.tables.iter().position(|t| t.name == name) {
            return &mut self.tables[i];
        }
        self.tables.push(FakeTable::new(name));
        let last = self.tables.len() - 1;
        &mut self.tables[last]
    }

    /// Runs one command as `iptables -t <table> <line>` would (tampering, foreign rules).
    pub fn run(&mut self, table: &str, line: &str) -> Result<(), String> {
        if let Some(name) = line.strip_prefix("-N ") {
            return self
                .table(table)
                .command(&format!(":{} - [0:0]", name.trim()));
        }
        self.table(table).command(line)
    }

    /// The rules of `chain` in `table`.
    pub fn rules(&mut self, table: &str, chain: &str) -> Vec<String> {
        self.table(table)
            .chain(chain)
            .map(|c| c.rules.clone())
            .unwrap_or_default()
    }

    /// Makes the next restore fail with `message`, changing nothing.
    pub fn fail_next_restore(&mut self, message: &str) {
        self.fail_restores.push_back(message.to_string());
    }
}

fn failed(stderr: String) -> CommandError {
    CommandError::Failed {
        program: "fake-iptables-restore".to_string(),
        args: "--noflush".to_string(),
        status: "exit status: 1".to_string(),
        stderr,
    }
}

impl IptablesBackend for FakeIptables {
    fn save(&mut self, table: &str) -> Result<String, CommandError> {
        self.saves += 1;
        let t = self.table(table);
        let mut out = format!("# Generated by fake\n*{}\n", t.name);
        for c in &t.chains {
            out.push_str(&format!(":{} {} [0:0]\n", c.name, c.policy));
        }
        for c in &t.chains {
            for r in &c.rules {
                out.push_str(&format!("-A {} {r}\n", c.name));
            }
        }
        out.push_str("COMMIT\n");
        Ok(out)
    }

    fn restore(&mut self, input: &str) -> Result<(), CommandError> {
        self.restores.push(input.to_string());
        if let Some(msg) = self.fail_restores.pop_front() {
            return Err(failed(msg));
        }
        let mut current: Option<FakeTable> = None;
        for (n, line) in input.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('*') {
                current = Some(self.table(name).clone());
            } else if line == "COMMIT" {
                let done = current
                    .take()
                    .ok_or_else(|| failed("COMMIT outside a table".into()))?;
                let name = done.name.clone();
                *self.table(&name) = done;
            } else {
                let t = current
                    .as_mut()
                    .ok_or_else(|| failed(format!("line {}: no table", n + 1)))?;
                t.command(line)
                    .map_err(|e| failed(format!("line {} failed: {e}", n + 1)))?;
            }
        }
        Ok(())
    }
}
