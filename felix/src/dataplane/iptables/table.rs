//! One iptables table: our chains written wholesale when their hashes change, our jumps kept
//! at the top of kernel chains, stale chains and jumps removed once in sync.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::backend::IptablesBackend;
use super::save::{SavedTable, parse_save};
use super::{Chain, Rule, TableConfig, check_chain_name, check_rule, rule_hashes};
use crate::dataplane::Reconciler;
use crate::dataplane::status::{ApplyReport, DataplaneError, Health, InvalidInput, error_chain};

/// The `cali-` chains of one (family, table) and our jumps into its kernel chains.
///
/// Each apply sends at most one `iptables-restore --noflush` transaction holding only what
/// changed. The cache of the kernel's state is trusted between applies and re-read on the first
/// apply, after a failed transaction and on [`Reconciler::resync`].
#[derive(Debug)]
pub struct Table<B: IptablesBackend> {
    backend: B,
    config: TableConfig,
    chains: BTreeMap<String, Vec<Rule>>,
    /// The rule hashes of each of `chains`, computed when a chain is set (so that an apply
    /// after a one-chain change does not hash every rule of the table again).
    hashes: BTreeMap<String, Vec<String>>,
    hooks: BTreeMap<String, Vec<Rule>>,
    actual: SavedTable,
    needs_read: bool,
    dirty: bool,
    in_sync: bool,
    health: Health,
}

/// The transaction for one apply and the state it leaves behind.
struct Plan {
    declare: Vec<String>,
    rules: Vec<String>,
    hook_edits: Vec<String>,
    delete_chains: Vec<String>,
    expected: SavedTable,
    created: usize,
    updated: usize,
    deleted: usize,
    deferred: usize,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.declare.is_empty()
            && self.rules.is_empty()
            && self.hook_edits.is_empty()
            && self.delete_chains.is_empty()
    }

    fn script(&self, table: &str) -> String {
        let mut s = format!("*{table}\n");
        for c in &self.declare {
            let _ = writeln!(s, ":{c} - [0:0]");
        }
        for line in self.rules.iter().chain(&self.hook_edits) {
            s.push_str(line);
            s.push('\n');
        }
        for c in &self.delete_chains {
            let _ = writeln!(s, "-F {c}");
        }
        for c in &self.delete_chains {
            let _ = writeln!(s, "-X {c}");
        }
        s.push_str("COMMIT\n");
        s
    }
}

impl<B: IptablesBackend> Table<B> {
    /// A table over `backend`; it reads the kernel on its first apply.
    pub fn new(backend: B, config: TableConfig) -> Result<Table<B>, InvalidInput> {
        if !["filter", "nat", "mangle", "raw"].contains(&config.table.as_str()) {
            return Err(InvalidInput::new(
                "table_config.table",
                &config.table,
                "the table is one of filter, nat, mangle, raw",
            ));
        }
        if config.chain_prefix.is_empty() || config.hash_prefix.is_empty() {
            return Err(InvalidInput::new(
                "table_config.chain_prefix",
                &config.chain_prefix,
                "the chain and hash prefixes must not be empty (they mark what is ours)",
            ));
        }
        Ok(Table {
            backend,
            config,
            chains: BTreeMap::new(),
            hashes: BTreeMap::new(),
            hooks: BTreeMap::new(),
            actual: SavedTable::default(),
            needs_read: true,
            dirty: true,
            in_sync: false,
            health: Health::healthy(),
        })
    }

    fn check_chain(&self, chain: &Chain, owned: bool) -> Result<(), InvalidInput> {
        let path = format!("{}.chains[{}]", self.config.table, chain.name);
        check_chain_name(&path, &chain.name, &self.config.chain_prefix, owned)?;
        for (i, r) in chain.rules.iter().enumerate() {
            check_rule(&format!("{path}.rules[{i}]"), r, &self.config.hash_prefix)?;
        }
        Ok(())
    }

    /// Replaces all our chains. Rejects (changing nothing) a chain without our prefix, a bad
    /// rule or a repeated chain. No I/O.
    pub fn set_chains(&mut self, chains: Vec<Chain>) -> Result<(), InvalidInput> {
        let mut next = BTreeMap::new();
        for c in &chains {
            self.check_chain(c, true)?;
            if next.insert(c.name.clone(), c.rules.clone()).is_some() {
                return Err(InvalidInput::new(
                    format!("{}.chains", self.config.table),
                    &c.name,
                    "a chain appears twice",
                ));
            }
        }
        if next != self.chains {
            self.hashes = next
                .iter()
                .map(|(name, rules)| (name.clone(), rule_hashes(name, rules)))
                .collect();
            self.chains = next;
            self.dirty = true;
        }
        Ok(())
    }

    /// Adds or replaces one of our chains. No I/O.
    pub fn update_chain(&mut self, chain: Chain) -> Result<(), InvalidInput> {
        self.check_chain(&chain, true)?;
        if self.chains.get(&chain.name) != Some(&chain.rules) {
            self.hashes
                .insert(chain.name.clone(), rule_hashes(&chain.name, &chain.rules));
            self.chains.insert(chain.name, chain.rules);
            self.dirty = true;
        }
        Ok(())
    }

    /// Removes one of our chains (deleted from the kernel once in sync). No I/O.
    pub fn remove_chain(&mut self, name: &str) {
        if self.chains.remove(name).is_some() {
            self.hashes.remove(name);
            self.dirty = true;
        }
    }

    /// Sets our rules at the top of kernel chains (`POSTROUTING` -> `-j cali-POSTROUTING`).
    /// No I/O.
    pub fn set_hooks(&mut self, hooks: Vec<Chain>) -> Result<(), InvalidInput> {
        let mut next = BTreeMap::new();
        for h in &hooks {
            self.check_chain(h, false)?;
            next.insert(h.name.clone(), h.rules.clone());
        }
        if next != self.hooks {
            self.hooks = next;
            self.dirty = true;
        }
        Ok(())
    }

    /// Our desired chains and hooks (to carry them over to another backend).
    pub fn desired(&self) -> (Vec<Chain>, Vec<Chain>) {
        let chains = |m: &BTreeMap<String, Vec<Rule>>| -> Vec<Chain> {
            m.iter()
                .map(|(n, r)| Chain::new(n.clone(), r.clone()))
                .collect()
        };
        (chains(&self.chains), chains(&self.hooks))
    }

    /// The table's state as last read or written.
    pub fn cached(&self) -> &SavedTable {
        &self.actual
    }

    /// The backend (tests use it to tamper with a fake one).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    fn comment(&self, hash: &str) -> String {
        format!("-m comment --comment \"{}{hash}\"", self.config.hash_prefix)
    }

    fn plan(&self, delete_chains: bool) -> Plan {
        let mut p = Plan {
            declare: Vec::new(),
            rules: Vec::new(),
            hook_edits: Vec::new(),
            delete_chains: Vec::new(),
            expected: self.actual.clone(),
            created: 0,
            updated: 0,
            deleted: 0,
            deferred: 0,
        };
        let no_hashes = Vec::new();
        for (name, rules) in &self.chains {
            let hashes = self.hashes.get(name).unwrap_or(&no_hashes);
            let in_place = p.expected.chains.get(name).is_some_and(|have| {
                have.len() == hashes.len()
                    && have
                        .iter()
                        .zip(hashes)
                        .all(|(a, b)| a.as_deref() == Some(b.as_str()))
            });
            if in_place {
                continue;
            }
            let want: Vec<Option<String>> = hashes.iter().cloned().map(Some).collect();
            if p.expected.has_chain(name) {
                p.updated += 1;
            } else {
                p.created += 1;
            }
            p.declare.push(name.clone());
            for (r, h) in rules.iter().zip(hashes) {
                p.rules
                    .push(format!("-A {name} {} {}", self.comment(h), r.spec));
            }
            p.expected.chains.insert(name.clone(), want);
        }
        let stale: Vec<String> = self
            .actual
            .chains
            .keys()
            .filter(|c| c.starts_with(&self.config.chain_prefix) && !self.chains.contains_key(*c))
            .cloned()
            .collect();
        for c in stale {
            if self.in_sync && delete_chains {
                p.expected.chains.remove(&c);
                p.delete_chains.push(c);
                p.deleted += 1;
            } else {
                p.deferred += 1;
            }
        }
        // Kernel (and foreign) chains with our hooks or any rule carrying our hash.
        let kernel_chains: BTreeSet<String> = self
            .actual
            .chains
            .iter()
            .filter(|(c, rules)| {
                !c.starts_with(&self.config.chain_prefix) && rules.iter().any(Option::is_some)
            })
            .map(|(c, _)| c.clone())
            .chain(self.hooks.keys().cloned())
            .collect();
        for chain in kernel_chains {
            self.plan_hooks(&chain, &mut p);
        }
        p
    }

    /// Keeps our rules of `chain` at its top, in order, once each.
    fn plan_hooks(&self, chain: &str, p: &mut Plan) {
        let rules = self.hooks.get(chain).cloned().unwrap_or_default();
        let want = rule_hashes(chain, &rules);
        let mut current = p.expected.chains.get(chain).cloned().unwrap_or_default();
        let ours: Vec<&String> = current
            .iter()
            .flatten()
            .filter(|h| want.contains(h))
            .collect();
        let had_ours = !ours.is_empty();
        let in_place = ours.len() == want.len() && ours.iter().zip(&want).all(|(a, b)| *a == b);
        let mut delete: Vec<usize> = Vec::new();
        for (i, h) in current.iter().enumerate() {
            let Some(h) = h else { continue };
            if want.contains(h) {
                if !in_place {
                    delete.push(i);
                }
            } else if self.in_sync {
                delete.push(i);
                p.deleted += 1;
            } else {
                p.deferred += 1;
            }
        }
        for i in delete.iter().rev() {
            p.hook_edits.push(format!("-D {chain} {}", i + 1));
            current.remove(*i);
        }
        if !in_place {
            if !had_ours {
                p.created += want.len();
            } else {
                p.updated += 1;
            }
            for (r, h) in rules.iter().zip(&want).rev() {
                p.hook_edits
                    .push(format!("-I {chain} 1 {} {}", self.comment(h), r.spec));
                current.insert(0, Some(h.clone()));
            }
        }
        p.expected.chains.insert(chain.to_string(), current);
    }

    fn read(&mut self) -> Result<(), DataplaneError> {
        let text =
            self.backend
                .save(&self.config.table)
                .map_err(|source| DataplaneError::Command {
                    what: format!(
                        "reading the {} {} table",
                        self.config.family, self.config.table
                    ),
                    source,
                })?;
        self.actual = parse_save(&text, &self.config.table, &self.config.hash_prefix);
        self.needs_read = false;
        Ok(())
    }

    fn restore(&mut self, plan: &Plan) -> Result<(), DataplaneError> {
        let script = plan.script(&self.config.table);
        tracing::debug!(table = %self.config.table, lines = script.lines().count(), "iptables-restore");
        self.backend
            .restore(&script)
            .map_err(|source| DataplaneError::Command {
                what: format!(
                    "writing the {} {} table",
                    self.config.family, self.config.table
                ),
                source,
            })
    }

    fn run(&mut self, report: &mut ApplyReport) -> Result<(), DataplaneError> {
        if self.needs_read {
            self.read()?;
            report.resynced = true;
        }
        let plan = self.plan(true);
        report.deferred_deletes += plan.deferred;
        if plan.is_empty() {
            return Ok(());
        }
        report.batches += 1;
        match self.restore(&plan) {
            Ok(()) => {
                report.created += plan.created;
                report.updated += plan.updated;
                report.deleted += plan.deleted;
                self.actual = plan.expected;
                Ok(())
            }
            Err(e) if !plan.delete_chains.is_empty() => {
                // A stale chain may still be referenced by a foreign rule: keep it, write the
                // rest, and report why.
                tracing::warn!(table = %self.config.table, chains = ?plan.delete_chains, "transaction with chain deletions failed; retrying without them");
                report.errors.push(e);
                self.read()?;
                let plan = self.plan(false);
                report.batches += 1;
                self.restore(&plan)?;
                report.created += plan.created;
                report.updated += plan.updated;
                report.deleted += plan.deleted;
                self.actual = plan.expected;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

impl<B: IptablesBackend> Reconciler for Table<B> {
    fn name(&self) -> &'static str {
        "iptables"
    }

    fn apply(&mut self) -> ApplyReport {
        let mut report = ApplyReport::default();
        if !self.dirty && !self.needs_read {
            return report;
        }
        match self.run(&mut report) {
            Ok(()) => self.dirty = !report.errors.is_empty(),
            Err(e) => {
                self.needs_read = true;
                report.errors.push(e);
            }
        }
        if !report.is_ok() {
            self.needs_read = true;
        }
        self.health = Health::from_reasons(report.errors.iter().map(|e| error_chain(e)).collect());
        report
    }

    fn resync(&mut self) -> ApplyReport {
        self.needs_read = true;
        self.dirty = true;
        self.apply()
    }

    fn set_in_sync(&mut self, in_sync: bool) {
        if in_sync && !self.in_sync {
            self.dirty = true;
        }
        self.in_sync = in_sync;
    }

    fn health(&self) -> Health {
        self.health.clone()
    }
}
