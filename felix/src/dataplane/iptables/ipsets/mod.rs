//! ipsets named `cali40<id>`/`cali60<id>`: created and updated through `ipset restore`
//! (increments as add/del lines, big changes as a temporary set swapped in), destroyed once in
//! sync and after the rules that use them are gone.

pub mod fake;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use super::backend::{CommandError, run};
use crate::dataplane::Reconciler;
use crate::dataplane::addr::IpFamily;
use crate::dataplane::status::{ApplyReport, DataplaneError, Health, InvalidInput, error_chain};

/// ipset names are at most this long.
const MAX_NAME: usize = 31;
/// Name prefixes that mark our sets (main and temporary, both families).
const OWN_PREFIXES: [&str; 4] = ["cali40", "cali60", "cali4t", "cali6t"];
/// The `maxelem` of every set we create.
const MAX_ELEMENTS: usize = 1 << 20;

/// The ipset types we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpSetType {
    /// `hash:ip`: host addresses.
    HashIp,
    /// `hash:net`: prefixes.
    HashNet,
}

impl IpSetType {
    /// The ipset type name.
    pub fn as_str(self) -> &'static str {
        match self {
            IpSetType::HashIp => "hash:ip",
            IpSetType::HashNet => "hash:net",
        }
    }
}

/// One desired set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSetSpec {
    /// The id after the prefix (`all-ipam-pools`).
    pub id: String,
    /// The family of its members.
    pub family: IpFamily,
    /// The set type.
    pub kind: IpSetType,
    /// The members (host addresses as /32 or /128 for `hash:ip`).
    pub members: BTreeSet<IpNet>,
}

impl IpSetSpec {
    /// A set `id` of `family` and `kind` with `members`.
    pub fn new(
        id: &str,
        family: IpFamily,
        kind: IpSetType,
        members: impl IntoIterator<Item = IpNet>,
    ) -> IpSetSpec {
        IpSetSpec {
            id: id.to_string(),
            family,
            kind,
            members: members.into_iter().collect(),
        }
    }

    /// The kernel name: `cali40<id>` or `cali60<id>`.
    pub fn name(&self) -> String {
        format!("cali{}0{}", self.family.digit(), self.id)
    }

    /// The temporary name used for a full rewrite: `cali4t<id>` or `cali6t<id>`.
    pub fn temp_name(&self) -> String {
        format!("cali{}t{}", self.family.digit(), self.id)
    }

    fn validate(&self) -> Result<(), InvalidInput> {
        let path = format!("ipsets[{}]", self.name());
        if self.id.is_empty()
            || self.name().len() > MAX_NAME
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
        {
            return Err(InvalidInput::new(
                format!("{path}.id"),
                &self.id,
                "an ipset id has 1 to 25 characters from [A-Za-z0-9-_:.]",
            ));
        }
        for m in &self.members {
            if IpFamily::of_net(m) != self.family {
                return Err(InvalidInput::new(
                    format!("{path}.members"),
                    m,
                    format!("members must be {}", self.family),
                ));
            }
            if m.trunc() != *m {
                return Err(InvalidInput::new(
                    format!("{path}.members"),
                    m,
                    "host bits must be zero",
                ));
            }
            if self.kind == IpSetType::HashIp && m.prefix_len() != self.family.host_len() {
                return Err(InvalidInput::new(
                    format!("{path}.members"),
                    m,
                    "a hash:ip set holds host addresses only",
                ));
            }
        }
        if self.members.len() > MAX_ELEMENTS {
            return Err(InvalidInput::new(
                format!("{path}.members"),
                self.members.len(),
                format!("a set holds at most {MAX_ELEMENTS} members"),
            ));
        }
        Ok(())
    }
}

/// One set as read back from `ipset save`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSet {
    /// `hash:ip`, `hash:net`, ...
    pub kind: String,
    /// `inet` or `inet6`.
    pub family: String,
    /// Members.
    pub members: BTreeSet<IpNet>,
}

fn family_word(f: IpFamily) -> &'static str {
    match f {
        IpFamily::V4 => "inet",
        IpFamily::V6 => "inet6",
    }
}

fn is_ours(name: &str) -> bool {
    OWN_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn parse_member(text: &str) -> Option<IpNet> {
    if let Ok(n) = text.parse::<IpNet>() {
        return Some(n);
    }
    let ip: IpAddr = text.parse().ok()?;
    IpNet::new(ip, IpFamily::of(ip).host_len()).ok()
}

/// Parses `ipset save` output, keeping only our sets.
pub fn parse_ipset_save(text: &str) -> BTreeMap<String, SavedSet> {
    let mut out: BTreeMap<String, SavedSet> = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["create", name, kind, rest @ ..] if is_ours(name) => {
                let family = rest
                    .windows(2)
                    .find(|w| w[0] == "family")
                    .map_or("inet", |w| w[1]);
                out.insert(
                    name.to_string(),
                    SavedSet {
                        kind: kind.to_string(),
                        family: family.to_string(),
                        members: BTreeSet::new(),
                    },
                );
            }
            ["add", name, member, ..] => {
                if let (Some(set), Some(m)) = (out.get_mut(*name), parse_member(member)) {
                    set.members.insert(m);
                }
            }
            _ => {}
        }
    }
    out
}

/// Reading and writing ipsets.
pub trait IpsetBackend {
    /// `ipset save` output.
    fn save(&mut self) -> Result<String, CommandError>;
    /// Feeds `input` to `ipset -exist restore`.
    fn restore(&mut self, input: &str) -> Result<(), CommandError>;
}

/// The real backend: the `ipset` binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsetCommand {
    /// The binary (`ipset`).
    pub program: String,
}

impl Default for IpsetCommand {
    fn default() -> Self {
        IpsetCommand {
            program: "ipset".to_string(),
        }
    }
}

impl IpsetBackend for IpsetCommand {
    fn save(&mut self) -> Result<String, CommandError> {
        run(&self.program, &["save"], None)
    }

    fn restore(&mut self, input: &str) -> Result<(), CommandError> {
        run(&self.program, &["-exist", "restore"], Some(input)).map(|_| ())
    }
}

/// Keeps our ipsets equal to the desired ones.
///
/// [`IpSets::apply_updates`] creates and fills sets (run it before the iptables rules that
/// use them); [`IpSets::apply_deletions`] destroys stale sets once in sync (run it after the
/// rules are gone). [`Reconciler::apply`] does both.
#[derive(Debug)]
pub struct IpSets<B: IpsetBackend> {
    backend: B,
    desired: BTreeMap<String, IpSetSpec>,
    actual: BTreeMap<String, SavedSet>,
    needs_read: bool,
    dirty: bool,
    in_sync: bool,
    health: Health,
}

impl<B: IpsetBackend> IpSets<B> {
    /// A reconciler over `backend`; it reads the kernel on its first apply.
    pub fn new(backend: B) -> IpSets<B> {
        IpSets {
            backend,
            desired: BTreeMap::new(),
            actual: BTreeMap::new(),
            needs_read: true,
            dirty: true,
            in_sync: false,
            health: Health::healthy(),
        }
    }

    /// Replaces all desired sets. Rejects (changing nothing) an invalid set or a repeated
    /// name. No I/O.
    pub fn set_desired(&mut self, sets: Vec<IpSetSpec>) -> Result<(), InvalidInput> {
        let mut next = BTreeMap::new();
        for s in sets {
            s.validate()?;
            let name = s.name();
            if next.insert(name.clone(), s).is_some() {
                return Err(InvalidInput::new("ipsets", name, "a set appears twice"));
            }
        }
        if next != self.desired {
            self.desired = next;
            self.dirty = true;
        }
        Ok(())
    }

    /// Adds or replaces one desired set. No I/O.
    pub fn update_set(&mut self, set: IpSetSpec) -> Result<(), InvalidInput> {
        set.validate()?;
        if self.desired.get(&set.name()) != Some(&set) {
            self.desired.insert(set.name(), set);
            self.dirty = true;
        }
        Ok(())
    }

    /// The sets as last read or written.
    pub fn cached(&self) -> &BTreeMap<String, SavedSet> {
        &self.actual
    }

    /// The backend (tests use it to tamper with a fake one).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    fn read(&mut self, report: &mut ApplyReport) -> Result<(), DataplaneError> {
        if !self.needs_read {
            return Ok(());
        }
        let text = self
            .backend
            .save()
            .map_err(|source| DataplaneError::Command {
                what: "reading ipsets".to_string(),
                source,
            })?;
        self.actual = parse_ipset_save(&text);
        self.needs_read = false;
        report.resynced = true;
        Ok(())
    }

    /// Creates missing sets and brings members up to date, in one `ipset restore`.
    pub fn apply_updates(&mut self) -> ApplyReport {
        let mut report = ApplyReport::default();
        if !self.dirty && !self.needs_read {
            return report;
        }
        if let Err(e) = self.read(&mut report) {
            report.errors.push(e);
            return self.finish(report);
        }
        let mut script = String::new();
        let mut expected = self.actual.clone();
        for (name, spec) in &self.desired {
            let want = SavedSet {
                kind: spec.kind.as_str().to_string(),
                family: family_word(spec.family).to_string(),
                members: spec.members.clone(),
            };
            match self.actual.get(name) {
                None => {
                    create_lines(&mut script, name, spec);
                    report.created += 1;
                }
                Some(have) if have.kind != want.kind || have.family != want.family => {
                    let _ = writeln!(script, "destroy {name}");
                    create_lines(&mut script, name, spec);
                    report.updated += 1;
                }
                Some(have) if have.members == want.members => continue,
                Some(have) => {
                    let adds: Vec<&IpNet> = want.members.difference(&have.members).collect();
                    let dels: Vec<&IpNet> = have.members.difference(&want.members).collect();
                    if adds.len() + dels.len() > 64.max(want.members.len() / 2) {
                        // Cheaper and atomic for the rules: fill a temporary set, swap it in.
                        let tmp = spec.temp_name();
                        create_lines(&mut script, &tmp, spec);
                        let _ = writeln!(script, "swap {tmp} {name}");
                        let _ = writeln!(script, "destroy {tmp}");
                    } else {
                        for m in dels {
                            let _ = writeln!(script, "del {name} {}", member(spec.kind, m));
                        }
                        for m in adds {
                            let _ = writeln!(script, "add {name} {}", member(spec.kind, m));
                        }
                    }
                    report.updated += 1;
                }
            }
            expected.insert(name.clone(), want);
        }
        if !script.is_empty() {
            report.batches += 1;
            match self.backend.restore(&script) {
                Ok(()) => self.actual = expected,
                Err(source) => {
                    report.created = 0;
                    report.updated = 0;
                    report.errors.push(DataplaneError::Command {
                        what: "updating ipsets".to_string(),
                        source,
                    });
                }
            }
        }
        self.finish(report)
    }

    /// Re-reads the kernel's sets, then [`IpSets::apply_updates`].
    pub fn resync_updates(&mut self) -> ApplyReport {
        self.needs_read = true;
        self.dirty = true;
        self.apply_updates()
    }

    /// Destroys stale own sets (and leftover temporary sets), once in sync.
    pub fn apply_deletions(&mut self) -> ApplyReport {
        let mut report = ApplyReport::default();
        if let Err(e) = self.read(&mut report) {
            report.errors.push(e);
            self.needs_read = true;
            return report;
        }
        let stale: Vec<String> = self
            .actual
            .keys()
            .filter(|n| !self.desired.contains_key(*n))
            .cloned()
            .collect();
        for name in stale {
            if !self.in_sync {
                report.deferred_deletes += 1;
                continue;
            }
            report.batches += 1;
            match self.backend.restore(&format!("destroy {name}\n")) {
                Ok(()) => {
                    self.actual.remove(&name);
                    report.deleted += 1;
                }
                Err(source) => report.errors.push(DataplaneError::Command {
                    what: format!("destroying ipset {name}"),
                    source,
                }),
            }
        }
        if !report.is_ok() {
            // A set still in use by a rule: re-read and retry on the next apply.
            self.needs_read = true;
            self.dirty = true;
        }
        self.health = Health::from_reasons(report.error_lines());
        report
    }

    fn finish(&mut self, report: ApplyReport) -> ApplyReport {
        if report.is_ok() {
            self.dirty = false;
        } else {
            self.needs_read = true;
            self.dirty = true;
        }
        self.health = Health::from_reasons(report.errors.iter().map(|e| error_chain(e)).collect());
        report
    }
}

fn member(kind: IpSetType, m: &IpNet) -> String {
    match kind {
        IpSetType::HashIp => m.addr().to_string(),
        IpSetType::HashNet => m.to_string(),
    }
}

fn create_lines(script: &mut String, name: &str, spec: &IpSetSpec) {
    let _ = writeln!(
        script,
        "create {name} {} family {} hashsize 1024 maxelem {MAX_ELEMENTS}",
        spec.kind.as_str(),
        family_word(spec.family)
    );
    let _ = writeln!(script, "flush {name}");
    for m in &spec.members {
        let _ = writeln!(script, "add {name} {}", member(spec.kind, m));
    }
}

impl<B: IpsetBackend> Reconciler for IpSets<B> {
    fn name(&self) -> &'static str {
        "ipsets"
    }

    fn apply(&mut self) -> ApplyReport {
        let mut report = self.apply_updates();
        let deletions = self.apply_deletions();
        report.merge(deletions);
        self.health = Health::from_reasons(report.error_lines());
        report
    }

    fn resync(&mut self) -> ApplyReport {
        self.needs_read = true;
        self.dirty = true;
        self.apply()
    }

    fn set_in_sync(&mut self, in_sync: bool) {
        self.in_sync = in_sync;
    }

    fn health(&self) -> Health {
        self.health.clone()
    }
}
