//! ipsets named `cali40<id>`/`cali60<id>`: created and updated through `ipset restore`
//! (increments as add/del lines, big changes as a temporary set swapped in), destroyed once in
//! sync and after the rules that use them are gone. Several [`IpSets`] can share a namespace,
//! each owning the ids its [`IpSetScope`] covers (NAT its pools, policy its selector sets).

pub mod fake;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use felix_policy::PortProtocol;
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
    /// `hash:ip,port`: address, protocol and port (named-port matches).
    HashIpPort,
}

impl IpSetType {
    /// The ipset type name.
    pub fn as_str(self) -> &'static str {
        match self {
            IpSetType::HashIp => "hash:ip",
            IpSetType::HashNet => "hash:net",
            IpSetType::HashIpPort => "hash:ip,port",
        }
    }
}

/// A member of a `hash:ip,port` set: `10.65.0.10,tcp:8080`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPort {
    /// The address.
    pub addr: IpAddr,
    /// The protocol.
    pub protocol: PortProtocol,
    /// The port.
    pub port: u16,
}

impl std::fmt::Display for IpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{}:{}", self.addr, self.protocol.as_str(), self.port)
    }
}

/// Which of our sets an [`IpSets`] manages (creates, repairs, destroys when stale), by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSetScope {
    /// Ids starting with one of these are managed (empty: every id).
    pub include: Vec<String>,
    /// Ids starting with one of these are left alone (another `IpSets` owns them).
    pub exclude: Vec<String>,
}

impl IpSetScope {
    /// Every set with our name prefix.
    pub fn all() -> IpSetScope {
        IpSetScope::default()
    }

    /// Sets whose id starts with one of `prefixes`.
    pub fn only(prefixes: &[&str]) -> IpSetScope {
        IpSetScope {
            include: prefixes.iter().map(ToString::to_string).collect(),
            exclude: Vec::new(),
        }
    }

    /// Every set except those whose id starts with one of `prefixes`.
    pub fn except(prefixes: &[&str]) -> IpSetScope {
        IpSetScope {
            include: Vec::new(),
            exclude: prefixes.iter().map(ToString::to_string).collect(),
        }
    }

    /// Whether the kernel set `name` is ours and in this scope.
    pub fn covers(&self, name: &str) -> bool {
        if !is_ours(name) {
            return false;
        }
        let id = &name[OWN_PREFIXES[0].len()..];
        (self.include.is_empty() || self.include.iter().any(|p| id.starts_with(p.as_str())))
            && !self.exclude.iter().any(|p| id.starts_with(p.as_str()))
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
    /// The members (host addresses as /32 or /128 for `hash:ip`); empty for `hash:ip,port`.
    pub members: BTreeSet<IpNet>,
    /// The members of a `hash:ip,port` set.
    pub ports: BTreeSet<IpPort>,
}

impl IpSetSpec {
    /// A `hash:ip,port` set `id` of `family` with `members`.
    pub fn ip_port(
        id: &str,
        family: IpFamily,
        members: impl IntoIterator<Item = IpPort>,
    ) -> IpSetSpec {
        IpSetSpec {
            id: id.to_string(),
            family,
            kind: IpSetType::HashIpPort,
            members: BTreeSet::new(),
            ports: members.into_iter().collect(),
        }
    }

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
            ports: BTreeSet::new(),
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
        let port_set = self.kind == IpSetType::HashIpPort;
        if port_set && !self.members.is_empty() {
            return Err(InvalidInput::new(
                format!("{path}.members"),
                self.members.len(),
                "a hash:ip,port set holds address,protocol:port members only",
            ));
        }
        if !port_set && !self.ports.is_empty() {
            return Err(InvalidInput::new(
                format!("{path}.ports"),
                self.ports.len(),
                "only a hash:ip,port set holds address,protocol:port members",
            ));
        }
        for p in &self.ports {
            if IpFamily::of(p.addr) != self.family {
                return Err(InvalidInput::new(
                    format!("{path}.ports"),
                    p,
                    format!("members must be {}", self.family),
                ));
            }
        }
        if self.members.len() + self.ports.len() > MAX_ELEMENTS {
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
    /// Members of a `hash:ip,port` set.
    pub ports: BTreeSet<IpPort>,
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

fn parse_port_member(text: &str) -> Option<IpPort> {
    let (addr, rest) = text.split_once(',')?;
    let (proto, port) = rest.split_once(':')?;
    let protocol = match proto {
        "tcp" => PortProtocol::Tcp,
        "udp" => PortProtocol::Udp,
        "sctp" => PortProtocol::Sctp,
        _ => return None,
    };
    Some(IpPort {
        addr: addr.parse().ok()?,
        protocol,
        port: port.parse().ok()?,
    })
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
    parse_ipset_save_scoped(text, &IpSetScope::all())
}

/// Parses `ipset save` output, keeping only our sets in `scope`.
pub fn parse_ipset_save_scoped(text: &str, scope: &IpSetScope) -> BTreeMap<String, SavedSet> {
    let mut out: BTreeMap<String, SavedSet> = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["create", name, kind, rest @ ..] if scope.covers(name) => {
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
                        ports: BTreeSet::new(),
                    },
                );
            }
            ["add", name, member, ..] => {
                let Some(set) = out.get_mut(*name) else {
                    continue;
                };
                if set.kind == IpSetType::HashIpPort.as_str() {
                    if let Some(p) = parse_port_member(member) {
                        set.ports.insert(p);
                    }
                } else if let Some(m) = parse_member(member) {
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
    scope: IpSetScope,
    desired: BTreeMap<String, IpSetSpec>,
    actual: BTreeMap<String, SavedSet>,
    needs_read: bool,
    dirty: bool,
    in_sync: bool,
    health: Health,
}

impl<B: IpsetBackend> IpSets<B> {
    /// A reconciler over `backend` managing all our sets; it reads the kernel on its first
    /// apply.
    pub fn new(backend: B) -> IpSets<B> {
        IpSets::with_scope(backend, IpSetScope::all())
    }

    /// A reconciler over `backend` managing the sets `scope` covers (desired sets must be in
    /// it).
    pub fn with_scope(backend: B, scope: IpSetScope) -> IpSets<B> {
        IpSets {
            backend,
            scope,
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
            self.validate(&s)?;
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
        self.validate(&set)?;
        if self.desired.get(&set.name()) != Some(&set) {
            self.desired.insert(set.name(), set);
            self.dirty = true;
        }
        Ok(())
    }

    /// Whether the set `name` (`cali40<id>`) is desired.
    pub fn has_set(&self, name: &str) -> bool {
        self.desired.contains_key(name)
    }

    /// Adds and removes members of the desired set `name` (cheaper than
    /// [`IpSets::update_set`] for a few changes to a big set). Fails, changing nothing, when
    /// the set is not desired or a new member does not fit it. No I/O.
    pub fn change_members(
        &mut self,
        name: &str,
        add: &[IpNet],
        remove: &[IpNet],
        add_ports: &[IpPort],
        remove_ports: &[IpPort],
    ) -> Result<(), InvalidInput> {
        let Some(spec) = self.desired.get(name) else {
            return Err(InvalidInput::new(
                format!("ipsets[{name}]"),
                name,
                "is not a desired set, so its members cannot change",
            ));
        };
        let probe = IpSetSpec {
            id: spec.id.clone(),
            family: spec.family,
            kind: spec.kind,
            members: add.iter().copied().collect(),
            ports: add_ports.iter().copied().collect(),
        };
        probe.validate()?;
        if spec.members.len() + spec.ports.len() + add.len() + add_ports.len() > MAX_ELEMENTS {
            return Err(InvalidInput::new(
                format!("ipsets[{name}].members"),
                spec.members.len() + add.len(),
                format!("a set holds at most {MAX_ELEMENTS} members"),
            ));
        }
        if let Some(spec) = self.desired.get_mut(name) {
            for m in remove {
                spec.members.remove(m);
            }
            for p in remove_ports {
                spec.ports.remove(p);
            }
            spec.members.extend(add.iter().copied());
            spec.ports.extend(add_ports.iter().copied());
            self.dirty = true;
        }
        Ok(())
    }

    /// Removes one desired set (destroyed by [`IpSets::apply_deletions`] once in sync). No I/O.
    pub fn remove_set(&mut self, name: &str) {
        if self.desired.remove(name).is_some() {
            self.dirty = true;
        }
    }

    fn validate(&self, set: &IpSetSpec) -> Result<(), InvalidInput> {
        set.validate()?;
        if !self.scope.covers(&set.name()) {
            return Err(InvalidInput::new(
                format!("ipsets[{}].id", set.name()),
                &set.id,
                "is outside the ids this reconciler manages",
            ));
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
        self.actual = parse_ipset_save_scoped(&text, &self.scope);
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
                ports: spec.ports.clone(),
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
                Some(have) if have.members == want.members && have.ports == want.ports => continue,
                Some(have) => {
                    let adds: Vec<String> = want
                        .members
                        .difference(&have.members)
                        .map(|m| member(spec.kind, m))
                        .chain(want.ports.difference(&have.ports).map(ToString::to_string))
                        .collect();
                    let dels: Vec<String> = have
                        .members
                        .difference(&want.members)
                        .map(|m| member(spec.kind, m))
                        .chain(have.ports.difference(&want.ports).map(ToString::to_string))
                        .collect();
                    let size = want.members.len() + want.ports.len();
                    if adds.len() + dels.len() > 64.max(size / 2) {
                        // Cheaper and atomic for the rules: fill a temporary set, swap it in.
                        let tmp = spec.temp_name();
                        create_lines(&mut script, &tmp, spec);
                        let _ = writeln!(script, "swap {tmp} {name}");
                        let _ = writeln!(script, "destroy {tmp}");
                    } else {
                        for m in dels {
                            let _ = writeln!(script, "del {name} {m}");
                        }
                        for m in adds {
                            let _ = writeln!(script, "add {name} {m}");
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
        IpSetType::HashNet | IpSetType::HashIpPort => m.to_string(),
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
    for p in &spec.ports {
        let _ = writeln!(script, "add {name} {p}");
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
