//! The renderer's output: filter-table chains, hooks and ipsets per IP family, as plain data
//! (felix converts them to its `iptables::Chain` and `ipsets::IpSetSpec`).

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// IPv4 or IPv6: each has its own table (`iptables` / `ip6tables`) and its own ipsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpFamily {
    /// Both families, IPv4 first.
    pub const ALL: [IpFamily; 2] = [IpFamily::V4, IpFamily::V6];

    /// The digit Calico puts in names (`cali40...`, `cali60...`).
    pub fn digit(self) -> char {
        match self {
            IpFamily::V4 => '4',
            IpFamily::V6 => '6',
        }
    }

    /// 0 for IPv4, 1 for IPv6 (an index into per-family arrays).
    pub fn index(self) -> usize {
        match self {
            IpFamily::V4 => 0,
            IpFamily::V6 => 1,
        }
    }

    /// The family of an address.
    pub fn of(addr: IpAddr) -> IpFamily {
        match addr {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    /// The family of a prefix.
    pub fn of_net(net: &IpNet) -> IpFamily {
        IpFamily::of(net.addr())
    }

    /// The rule `ipVersion` of this family (4 or 6).
    pub fn version(self) -> u8 {
        match self {
            IpFamily::V4 => 4,
            IpFamily::V6 => 6,
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        })
    }
}

/// One chain: its name and its rules as `iptables` arguments (matches and target, without the
/// chain and without the `cali:<hash>` comment the table adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The chain name (`cali-tw-cali1234`), or a kernel chain for hooks (`FORWARD`).
    pub name: String,
    /// The rules in order.
    pub rules: Vec<String>,
}

impl Chain {
    /// A chain called `name` with `rules`.
    pub fn new(name: impl Into<String>, rules: Vec<String>) -> Chain {
        Chain {
            name: name.into(),
            rules,
        }
    }
}

/// A transport protocol with ports (for named-port set members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortProtocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl PortProtocol {
    /// The name ipset uses (`tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
            PortProtocol::Sctp => "sctp",
        }
    }

    /// The protocol with this IANA number, if it has ports.
    pub fn from_number(n: u8) -> Option<PortProtocol> {
        match n {
            6 => Some(PortProtocol::Tcp),
            17 => Some(PortProtocol::Udp),
            132 => Some(PortProtocol::Sctp),
            _ => None,
        }
    }
}

/// The ipset types the renderer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpSetKind {
    /// `hash:net`: selector and CIDR sets (members are prefixes, host addresses as /32, /128).
    HashNet,
    /// `hash:ip,port`: named-port sets (members are address, protocol and port).
    HashIpPort,
}

impl IpSetKind {
    /// The ipset type name.
    pub fn as_str(self) -> &'static str {
        match self {
            IpSetKind::HashNet => "hash:net",
            IpSetKind::HashIpPort => "hash:ip,port",
        }
    }
}

/// One ipset member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpSetMember {
    /// A prefix (`hash:net`); never /0 (ipset refuses it; a /0 is stored as two /1s).
    Net(IpNet),
    /// An address with a protocol and port (`hash:ip,port`: `10.0.0.1,tcp:8080`).
    IpPort {
        /// The address.
        addr: IpAddr,
        /// The protocol.
        protocol: PortProtocol,
        /// The port.
        port: u16,
    },
}

impl IpSetMember {
    /// The member's family.
    pub fn family(&self) -> IpFamily {
        match self {
            IpSetMember::Net(n) => IpFamily::of_net(n),
            IpSetMember::IpPort { addr, .. } => IpFamily::of(*addr),
        }
    }
}

impl fmt::Display for IpSetMember {
    /// The form `ipset add` takes: `10.0.0.0/8`, `10.0.0.1,tcp:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpSetMember::Net(n) => write!(f, "{n}"),
            IpSetMember::IpPort {
                addr,
                protocol,
                port,
            } => write!(f, "{addr},{}:{port}", protocol.as_str()),
        }
    }
}

/// One ipset of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSet {
    /// The id after the `cali40`/`cali60` prefix (`s:qMt7iLlGDhvLnCjM0l9nzxb`), at most 25
    /// characters.
    pub id: String,
    /// The family of its members.
    pub family: IpFamily,
    /// Its type.
    pub kind: IpSetKind,
    /// Its members.
    pub members: BTreeSet<IpSetMember>,
}

impl IpSet {
    /// The kernel name: `cali40<id>` or `cali60<id>` (at most 31 characters).
    pub fn name(&self) -> String {
        ipset_name(self.family, &self.id)
    }
}

/// The kernel name of the set `id` of `family`.
pub fn ipset_name(family: IpFamily, id: &str) -> String {
    format!("cali{}0{id}", family.digit())
}

/// Everything the renderer wants in one family's filter table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRender {
    /// The family.
    pub family: IpFamily,
    /// Our `cali-` chains, sorted by name.
    pub chains: Vec<Chain>,
    /// Our jumps from the kernel chains (`FORWARD -> cali-FORWARD`, ...).
    pub hooks: Vec<Chain>,
    /// The ipsets the chains use, sorted by id.
    pub ipsets: Vec<IpSet>,
}

/// What changed in one ipset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSetDelta {
    /// The set id.
    pub id: String,
    /// Its type.
    pub kind: IpSetKind,
    /// Whether `added` is the set's whole content (a new set, or one to rewrite from scratch:
    /// create it if missing, replace its members if present); otherwise `added` and `removed`
    /// are changes to the members it has.
    pub created: bool,
    /// Members added.
    pub added: Vec<IpSetMember>,
    /// Members removed.
    pub removed: Vec<IpSetMember>,
}

/// The changes to one family's chains and ipsets since the previous update.
///
/// Apply ipset creations and additions before the chains, and remove chains before the ipsets
/// they used ([`FamilyChanges::removed_ipsets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyChanges {
    /// The family.
    pub family: IpFamily,
    /// Chains created or rewritten (full content).
    pub chains: Vec<Chain>,
    /// Chains no longer wanted.
    pub removed_chains: Vec<String>,
    /// Sets created or changed.
    pub ipsets: Vec<IpSetDelta>,
    /// Ids of sets no longer wanted.
    pub removed_ipsets: Vec<String>,
}

impl IpSetDelta {
    /// This delta followed by `later` (a delta of the same set).
    fn then(self, later: IpSetDelta) -> IpSetDelta {
        use std::collections::BTreeSet;
        if later.created {
            return later;
        }
        let a_add: BTreeSet<IpSetMember> = self.added.into_iter().collect();
        let a_rem: BTreeSet<IpSetMember> = self.removed.into_iter().collect();
        let b_add: BTreeSet<IpSetMember> = later.added.into_iter().collect();
        let b_rem: BTreeSet<IpSetMember> = later.removed.into_iter().collect();
        if self.created {
            // Whole content: apply the later changes to it.
            let mut all = a_add;
            all.retain(|m| !b_rem.contains(m));
            all.extend(b_add);
            return IpSetDelta {
                id: self.id,
                kind: later.kind,
                created: true,
                added: all.into_iter().collect(),
                removed: Vec::new(),
            };
        }
        let added = a_add
            .difference(&b_rem)
            .chain(b_add.difference(&a_rem))
            .copied()
            .collect::<BTreeSet<_>>();
        let removed = a_rem
            .difference(&b_add)
            .chain(b_rem.difference(&a_add))
            .copied()
            .collect::<BTreeSet<_>>();
        IpSetDelta {
            id: self.id,
            kind: later.kind,
            created: false,
            added: added.into_iter().collect(),
            removed: removed.into_iter().collect(),
        }
    }
}

impl FamilyChanges {
    /// Folds `later` (the next changes of the same family) into these, so that applying the
    /// result equals applying both in turn. A chain or set that was created and removed again
    /// may be named in the removals although the consumer never saw it (removing what does not
    /// exist must be a no-op for the consumer).
    pub fn merge(&mut self, later: FamilyChanges) {
        use std::collections::BTreeMap;
        let mut chains: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        for c in std::mem::take(&mut self.chains) {
            chains.insert(c.name, Some(c.rules));
        }
        for n in std::mem::take(&mut self.removed_chains) {
            chains.insert(n, None);
        }
        for n in later.removed_chains {
            chains.insert(n, None);
        }
        for c in later.chains {
            chains.insert(c.name, Some(c.rules));
        }
        for (name, rules) in chains {
            match rules {
                Some(rules) => self.chains.push(Chain { name, rules }),
                None => self.removed_chains.push(name),
            }
        }
        // Sets: Some(delta) or None (removed).
        let mut sets: BTreeMap<String, Option<IpSetDelta>> = BTreeMap::new();
        for d in std::mem::take(&mut self.ipsets) {
            sets.insert(d.id.clone(), Some(d));
        }
        for id in std::mem::take(&mut self.removed_ipsets) {
            sets.insert(id, None);
        }
        for id in later.removed_ipsets {
            sets.insert(id, None);
        }
        for d in later.ipsets {
            let merged = match sets.remove(&d.id) {
                Some(Some(earlier)) => earlier.then(d),
                _ => d,
            };
            sets.insert(merged.id.clone(), Some(merged));
        }
        for (id, d) in sets {
            match d {
                Some(d) => self.ipsets.push(d),
                None => self.removed_ipsets.push(id),
            }
        }
    }

    /// No change for `family`.
    pub fn empty(family: IpFamily) -> FamilyChanges {
        FamilyChanges {
            family,
            chains: Vec::new(),
            removed_chains: Vec::new(),
            ipsets: Vec::new(),
            removed_ipsets: Vec::new(),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
            && self.removed_chains.is_empty()
            && self.ipsets.is_empty()
            && self.removed_ipsets.is_empty()
    }
}

/// The result of one update of the policy state: per enabled family, what changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    /// One entry per enabled family (IPv4 first).
    pub families: Vec<FamilyChanges>,
}

impl Changes {
    /// Folds `later` into these changes (see [`FamilyChanges::merge`]), for a consumer that
    /// could not apply these yet.
    pub fn merge(&mut self, later: Changes) {
        for fc in later.families {
            match self.families.iter_mut().find(|f| f.family == fc.family) {
                Some(mine) => mine.merge(fc),
                None => self.families.push(fc),
            }
        }
        self.families.sort_by_key(|f| f.family);
    }

    /// Whether nothing changed in any family.
    pub fn is_empty(&self) -> bool {
        self.families.iter().all(FamilyChanges::is_empty)
    }

    /// The changes of `family`, if it is enabled.
    pub fn family(&self, family: IpFamily) -> Option<&FamilyChanges> {
        self.families.iter().find(|f| f.family == family)
    }

    /// Number of chains written or removed, over all families.
    pub fn chain_count(&self) -> usize {
        self.families
            .iter()
            .map(|f| f.chains.len() + f.removed_chains.len())
            .sum()
    }
}
