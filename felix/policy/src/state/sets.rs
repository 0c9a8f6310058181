//! The ipsets in use: reference-counted per family by the rules that need them, their
//! members kept up to date as entities come, go and change labels, and the per-update deltas.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use crate::model::entity::{EntityKey, NamedPort};
use crate::render::rules::{SetNeed, SetSource};
use crate::types::{IpFamily, IpSet, IpSetDelta, IpSetKind, IpSetMember};

/// What the registry needs to know about an entity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntityView<'a> {
    /// Effective labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Addresses.
    pub nets: &'a [IpNet],
    /// Named ports.
    pub ports: &'a [NamedPort],
}

#[derive(Debug, Clone)]
struct SetEntry {
    source: SetSource,
    kind: IpSetKind,
    refs: [u32; 2],
    matching: BTreeSet<EntityKey>,
    members: [BTreeMap<IpSetMember, u32>; 2],
}

#[derive(Debug, Default, Clone)]
struct Pending {
    existed_before: bool,
    added: BTreeSet<IpSetMember>,
    removed: BTreeSet<IpSetMember>,
}

/// The sets and what changed since the last [`SetRegistry::finish`].
#[derive(Debug, Default, Clone)]
pub(crate) struct SetRegistry {
    sets: BTreeMap<String, SetEntry>,
    pending: BTreeMap<(IpFamily, String), Pending>,
}

fn members_of(source: &SetSource, e: EntityView<'_>) -> Vec<IpSetMember> {
    match source {
        SetSource::Nets(_) => Vec::new(),
        SetSource::Selector(s) => {
            if s.matches(e.labels) {
                e.nets.iter().map(|n| IpSetMember::Net(*n)).collect()
            } else {
                Vec::new()
            }
        }
        SetSource::NamedPort {
            selector,
            protocol,
            name,
        } => {
            if !selector.matches(e.labels) {
                return Vec::new();
            }
            let mut out = Vec::new();
            for p in e.ports {
                if p.name != *name || protocol.is_some_and(|want| want != p.protocol) {
                    continue;
                }
                for n in e.nets {
                    if n.prefix_len() == n.max_prefix_len() {
                        out.push(IpSetMember::IpPort {
                            addr: n.addr(),
                            protocol: p.protocol,
                            port: p.port,
                        });
                    }
                }
            }
            out
        }
    }
}

fn matches(source: &SetSource, labels: &BTreeMap<String, String>) -> bool {
    match source {
        SetSource::Nets(_) => false,
        SetSource::Selector(s) | SetSource::NamedPort { selector: s, .. } => s.matches(labels),
    }
}

impl SetRegistry {
    fn pending(&mut self, family: IpFamily, id: &str, exists: bool) -> &mut Pending {
        self.pending
            .entry((family, id.to_string()))
            .or_insert_with(|| Pending {
                existed_before: exists,
                ..Pending::default()
            })
    }

    fn change_member(&mut self, id: &str, member: IpSetMember, add: bool) {
        let family = member.family();
        let f = family.index();
        let Some(entry) = self.sets.get_mut(id) else {
            return;
        };
        let flipped = if add {
            let c = entry.members[f].entry(member).or_insert(0);
            *c += 1;
            *c == 1
        } else {
            match entry.members[f].get_mut(&member) {
                Some(c) if *c > 1 => {
                    *c -= 1;
                    false
                }
                Some(_) => {
                    entry.members[f].remove(&member);
                    true
                }
                None => false,
            }
        };
        let exists = entry.refs[f] > 0;
        if !flipped || !(exists || self.pending.contains_key(&(family, id.to_string()))) {
            return;
        }
        let p = self.pending(family, id, exists);
        let (this, other) = if add {
            (&mut p.added, &mut p.removed)
        } else {
            (&mut p.removed, &mut p.added)
        };
        if !other.remove(&member) {
            this.insert(member);
        }
    }

    /// Takes a reference on the set `need` describes, creating it (members from `entities`)
    /// when it is new.
    pub(crate) fn acquire<'a>(
        &mut self,
        need: &SetNeed,
        entities: impl Iterator<Item = (&'a EntityKey, EntityView<'a>)>,
    ) {
        let f = need.family.index();
        if !self.sets.contains_key(&need.id) {
            let kind = match need.source {
                SetSource::NamedPort { .. } => IpSetKind::HashIpPort,
                _ => IpSetKind::HashNet,
            };
            let mut entry = SetEntry {
                source: need.source.clone(),
                kind,
                refs: [0, 0],
                matching: BTreeSet::new(),
                members: [BTreeMap::new(), BTreeMap::new()],
            };
            if let SetSource::Nets(nets) = &need.source {
                for n in nets {
                    entry.members[IpFamily::of_net(n).index()].insert(IpSetMember::Net(*n), 1);
                }
            } else {
                for (key, view) in entities {
                    if !matches(&entry.source, view.labels) {
                        continue;
                    }
                    entry.matching.insert(key.clone());
                    for m in members_of(&entry.source, view) {
                        *entry.members[m.family().index()].entry(m).or_insert(0) += 1;
                    }
                }
            }
            self.sets.insert(need.id.clone(), entry);
        }
        let Some(entry) = self.sets.get_mut(&need.id) else {
            return;
        };
        let existed = entry.refs[f] > 0;
        entry.refs[f] += 1;
        self.pending(need.family, &need.id, existed);
    }

    /// Drops a reference taken by [`SetRegistry::acquire`].
    pub(crate) fn release(&mut self, family: IpFamily, id: &str) {
        let f = family.index();
        let Some(entry) = self.sets.get_mut(id) else {
            return;
        };
        let existed = entry.refs[f] > 0;
        entry.refs[f] = entry.refs[f].saturating_sub(1);
        self.pending(family, id, existed);
    }

    /// Brings every set up to date with an entity that changed (`old` before, `new` after;
    /// `None` when absent).
    pub(crate) fn update_entity(
        &mut self,
        key: &EntityKey,
        old: Option<EntityView<'_>>,
        new: Option<EntityView<'_>>,
    ) {
        let ids: Vec<String> = self.sets.keys().cloned().collect();
        for id in ids {
            let Some(entry) = self.sets.get_mut(&id) else {
                continue;
            };
            if matches!(entry.source, SetSource::Nets(_)) {
                continue;
            }
            let was = entry.matching.contains(key);
            let now = new.is_some_and(|n| matches(&entry.source, n.labels));
            if !was && !now {
                continue;
            }
            let before = match (was, old) {
                (true, Some(o)) => members_of(&entry.source, o),
                _ => Vec::new(),
            };
            let after = match (now, new) {
                (true, Some(n)) => members_of(&entry.source, n),
                _ => Vec::new(),
            };
            if now {
                entry.matching.insert(key.clone());
            } else {
                entry.matching.remove(key);
            }
            if before == after {
                continue;
            }
            for m in after {
                self.change_member(&id, m, true);
            }
            for m in before {
                self.change_member(&id, m, false);
            }
        }
    }

    /// The deltas since the last call, per family in `families`: changed or created sets and
    /// removed set ids. Forgets sets nobody references any more.
    pub(crate) fn finish(
        &mut self,
        families: &[IpFamily],
    ) -> BTreeMap<IpFamily, (Vec<IpSetDelta>, Vec<String>)> {
        let mut out: BTreeMap<IpFamily, (Vec<IpSetDelta>, Vec<String>)> = families
            .iter()
            .map(|f| (*f, (Vec::new(), Vec::new())))
            .collect();
        for ((family, id), p) in std::mem::take(&mut self.pending) {
            let Some((deltas, removed)) = out.get_mut(&family) else {
                continue;
            };
            let entry = self.sets.get(&id);
            let exists = entry.is_some_and(|e| e.refs[family.index()] > 0);
            match (p.existed_before, exists, entry) {
                (true, false, _) => removed.push(id),
                (false, true, Some(e)) => deltas.push(IpSetDelta {
                    id,
                    kind: e.kind,
                    created: true,
                    added: e.members[family.index()].keys().copied().collect(),
                    removed: Vec::new(),
                }),
                (true, true, Some(e)) if !(p.added.is_empty() && p.removed.is_empty()) => {
                    deltas.push(IpSetDelta {
                        id,
                        kind: e.kind,
                        created: false,
                        added: p.added.into_iter().collect(),
                        removed: p.removed.into_iter().collect(),
                    });
                }
                _ => {}
            }
        }
        self.sets.retain(|_, e| e.refs != [0, 0]);
        out
    }

    /// Whether member or reference changes wait for [`SetRegistry::finish`].
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The sets that exist in `family`, sorted by id.
    pub(crate) fn sets(&self, family: IpFamily) -> Vec<IpSet> {
        let f = family.index();
        self.sets
            .iter()
            .filter(|(_, e)| e.refs[f] > 0)
            .map(|(id, e)| IpSet {
                id: id.clone(),
                family,
                kind: e.kind,
                members: e.members[f].keys().copied().collect(),
            })
            .collect()
    }

    /// One set, if it exists in `family`.
    pub(crate) fn get(&self, family: IpFamily, id: &str) -> Option<IpSet> {
        let e = self.sets.get(id).filter(|e| e.refs[family.index()] > 0)?;
        Some(IpSet {
            id: id.to_string(),
            family,
            kind: e.kind,
            members: e.members[family.index()].keys().copied().collect(),
        })
    }
}
