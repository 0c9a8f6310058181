//! [`PolicyState`]: the cluster's policies, profiles, tiers and labelled entities, indexed so
//! that each change re-renders only what it affects, and the rendered chains and ipsets.
//!
//! Every mutator validates nothing itself (conversion from resources does that) and records
//! which chains and sets it touched; [`PolicyState::flush`] renders those and returns the
//! [`Changes`]. A label change on one endpoint touches the sets it joins or leaves and, when
//! its policies change, its own endpoint chains (and the chains of policies that become active
//! or inactive); an edited policy touches its own chains, its sets, and the chains of the
//! endpoints it starts or stops selecting (or all it selects, when its tier, order or types
//! change).

mod render;
mod sets;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use fabric_api::AnyResource;

use crate::config::RenderConfig;
use crate::error::PolicyError;
use crate::model::entity::{Entity, EntityKey, effective_labels};
use crate::model::policy::{Policy, PolicyKey};
use crate::model::profile::{ProfileModel, implicit_profile};
use crate::model::tier::TierModel;
use crate::render::rules::{RuleContext, SetNeed, rule_sets};
use crate::types::{Changes, FamilyRender, IpFamily, IpSet};
use sets::{EntityView, SetRegistry};

/// What produces a group of chains.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Static,
    Dispatch,
    Endpoint(EntityKey),
    Policy(PolicyKey),
    Profile(String),
}

/// What holds references on ipsets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Holder {
    Policy(PolicyKey),
    Profile(String),
}

#[derive(Debug, Clone)]
struct EntityEntry {
    entity: Entity,
    labels: BTreeMap<String, String>,
}

impl EntityEntry {
    fn view(&self) -> EntityView<'_> {
        EntityView {
            labels: &self.labels,
            nets: &self.entity.nets,
            ports: &self.entity.ports,
        }
    }
}

#[derive(Debug, Clone)]
struct PolicyEntry {
    policy: Policy,
    active_on: BTreeSet<EntityKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalEntry {
    iface: String,
    profiles: Vec<String>,
    policies: BTreeSet<PolicyKey>,
}

/// The policy model of the cluster and its rendering for this node.
#[derive(Debug, Clone)]
pub struct PolicyState {
    config: RenderConfig,
    families: Vec<IpFamily>,
    ctx: RuleContext,
    tiers: BTreeMap<String, TierModel>,
    policies: BTreeMap<PolicyKey, PolicyEntry>,
    profiles: BTreeMap<String, ProfileModel>,
    entities: BTreeMap<EntityKey, EntityEntry>,
    profile_users: BTreeMap<String, BTreeSet<EntityKey>>,
    local: BTreeMap<EntityKey, LocalEntry>,
    iface_claims: BTreeMap<String, BTreeSet<EntityKey>>,
    profile_refs: BTreeMap<String, usize>,
    held: BTreeMap<Holder, Vec<(IpFamily, String)>>,
    sets: SetRegistry,
    owners: BTreeMap<Owner, [Vec<String>; 2]>,
    chains: [BTreeMap<String, Vec<String>>; 2],
    dirty: BTreeSet<Owner>,
    /// Changes computed outside a flush (by [`PolicyState::reconfigure`]), handed out with the
    /// next one.
    pending: Option<Changes>,
}

/// The ipsets `policy`'s rules need in `families`.
fn policy_needs(families: &[IpFamily], policy: &Policy) -> Vec<SetNeed> {
    let mut out = Vec::new();
    for f in families {
        for rules in [&policy.ingress, &policy.egress].into_iter().flatten() {
            for r in rules {
                out.extend(rule_sets(r, *f));
            }
        }
    }
    out
}

impl PolicyState {
    /// An empty state; the first [`PolicyState::flush`] yields the fixed chains and empty
    /// dispatch chains.
    pub fn new(config: RenderConfig) -> Result<PolicyState, PolicyError> {
        config.validate()?;
        Ok(PolicyState::build(config))
    }

    /// An empty state with Calico's default settings for `node_name` (which always validate).
    pub fn with_default_config(node_name: &str) -> PolicyState {
        PolicyState::build(RenderConfig::new(node_name))
    }

    fn build(config: RenderConfig) -> PolicyState {
        let ctx = RuleContext {
            mark_accept: config.mark_accept,
            mark_pass: config.mark_pass,
            log_prefix: config.log_prefix.clone(),
        };
        PolicyState {
            families: config.families(),
            config,
            ctx,
            tiers: BTreeMap::new(),
            policies: BTreeMap::new(),
            profiles: BTreeMap::new(),
            entities: BTreeMap::new(),
            profile_users: BTreeMap::new(),
            local: BTreeMap::new(),
            iface_claims: BTreeMap::new(),
            profile_refs: BTreeMap::new(),
            held: BTreeMap::new(),
            sets: SetRegistry::default(),
            owners: BTreeMap::new(),
            chains: [BTreeMap::new(), BTreeMap::new()],
            dirty: [Owner::Static, Owner::Dispatch].into(),
            pending: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &RenderConfig {
        &self.config
    }

    /// Adds or replaces an entity (workload or host endpoint, network set).
    pub fn upsert_entity(&mut self, entity: Entity) {
        let key = entity.key.clone();
        let old = self.entities.remove(&key);
        if let Some(o) = &old {
            for p in &o.entity.profiles {
                if let Some(users) = self.profile_users.get_mut(p) {
                    users.remove(&key);
                    if users.is_empty() {
                        self.profile_users.remove(p);
                    }
                }
            }
        }
        for p in &entity.profiles {
            self.profile_users
                .entry(p.clone())
                .or_default()
                .insert(key.clone());
        }
        let labels = self.effective(&entity);
        let new = EntityEntry { entity, labels };
        self.sets
            .update_entity(&key, old.as_ref().map(EntityEntry::view), Some(new.view()));
        self.entities.insert(key.clone(), new);
        self.refresh_local(&key);
    }

    /// Removes an entity.
    pub fn remove_entity(&mut self, key: &EntityKey) {
        let Some(old) = self.entities.remove(key) else {
            return;
        };
        for p in &old.entity.profiles {
            if let Some(users) = self.profile_users.get_mut(p) {
                users.remove(key);
                if users.is_empty() {
                    self.profile_users.remove(p);
                }
            }
        }
        self.sets.update_entity(key, Some(old.view()), None);
        self.refresh_local(key);
    }

    /// Adds or replaces a policy.
    pub fn upsert_policy(&mut self, policy: Policy) {
        let key = policy.key.clone();
        let old = self.policies.remove(&key);
        let new_on: BTreeSet<EntityKey> = if policy.host_only {
            BTreeSet::new()
        } else {
            self.local
                .keys()
                .filter(|k| {
                    self.entities
                        .get(*k)
                        .is_some_and(|e| policy.selector.matches(&e.labels))
                })
                .cloned()
                .collect()
        };
        let (old_on, reorder) = match old {
            Some(o) => {
                let p = &o.policy;
                let reorder = p.tier != policy.tier
                    || p.order != policy.order
                    || p.ingress.is_some() != policy.ingress.is_some()
                    || p.egress.is_some() != policy.egress.is_some();
                (o.active_on, reorder)
            }
            None => (BTreeSet::new(), true),
        };
        for ep in old_on.union(&new_on) {
            let (was, now) = (old_on.contains(ep), new_on.contains(ep));
            if was != now
                && let Some(le) = self.local.get_mut(ep)
            {
                if now {
                    le.policies.insert(key.clone());
                } else {
                    le.policies.remove(&key);
                }
            }
            if was != now || reorder {
                self.dirty.insert(Owner::Endpoint(ep.clone()));
            }
        }
        let needs = if new_on.is_empty() {
            Vec::new()
        } else {
            policy_needs(&self.families, &policy)
        };
        self.policies.insert(
            key.clone(),
            PolicyEntry {
                policy,
                active_on: new_on,
            },
        );
        self.hold(Holder::Policy(key.clone()), needs);
        self.dirty.insert(Owner::Policy(key));
    }

    /// Removes a policy.
    pub fn remove_policy(&mut self, key: &PolicyKey) {
        let Some(old) = self.policies.remove(key) else {
            return;
        };
        for ep in &old.active_on {
            if let Some(le) = self.local.get_mut(ep) {
                le.policies.remove(key);
            }
            self.dirty.insert(Owner::Endpoint(ep.clone()));
        }
        self.hold(Holder::Policy(key.clone()), Vec::new());
        self.dirty.insert(Owner::Policy(key.clone()));
    }

    /// Adds or replaces a profile.
    pub fn upsert_profile(&mut self, profile: ProfileModel) {
        let name = profile.name.clone();
        let labels_changed = self
            .profile(&name)
            .map_or(!profile.labels.is_empty(), |o| o.labels != profile.labels);
        self.profiles.insert(name.clone(), profile);
        self.profile_changed(&name, labels_changed);
    }

    /// Removes a profile. Endpoints that still list it get an empty profile chain, except for a
    /// `kns.<namespace>` profile, which falls back to the implicit namespace profile
    /// ([`crate::model::profile::implicit_profile`]).
    pub fn remove_profile(&mut self, name: &str) {
        let Some(old) = self.profiles.remove(name) else {
            return;
        };
        let labels_changed = self
            .profile(name)
            .map_or(!old.labels.is_empty(), |now| now.labels != old.labels);
        self.profile_changed(name, labels_changed);
    }

    /// The profile `name`: stored, or implicit for a namespace.
    fn profile(&self, name: &str) -> Option<Cow<'_, ProfileModel>> {
        match self.profiles.get(name) {
            Some(p) => Some(Cow::Borrowed(p)),
            None => implicit_profile(name).map(Cow::Owned),
        }
    }

    /// Adds or replaces a tier.
    pub fn upsert_tier(&mut self, tier: TierModel) {
        let name = tier.name.clone();
        if self.tiers.get(&name) == Some(&tier) {
            return;
        }
        self.tiers.insert(name.clone(), tier);
        self.tier_changed(&name);
    }

    /// Removes a tier (its policies then sort after every existing tier, as in Calico).
    pub fn remove_tier(&mut self, name: &str) {
        if self.tiers.remove(name).is_some() {
            self.tier_changed(name);
        }
    }

    /// Applies a resource of a kind policy cares about (Tier, NetworkPolicy,
    /// GlobalNetworkPolicy, Profile, WorkloadEndpoint, HostEndpoint, NetworkSet,
    /// GlobalNetworkSet). Returns `false` for other kinds, staged policies included: staged
    /// policies are never enforced. Invalid input changes nothing.
    pub fn apply_resource(&mut self, resource: &AnyResource) -> Result<bool, PolicyError> {
        match resource {
            AnyResource::Tier(t) => self.upsert_tier(TierModel::from_tier(t)?),
            AnyResource::NetworkPolicy(p) => self.upsert_policy(Policy::from_network_policy(p)?),
            AnyResource::GlobalNetworkPolicy(p) => {
                self.upsert_policy(Policy::from_global_network_policy(p)?);
            }
            AnyResource::Profile(p) => self.upsert_profile(ProfileModel::from_profile(p)?),
            AnyResource::WorkloadEndpoint(w) => {
                self.upsert_entity(Entity::from_workload_endpoint(w)?);
            }
            AnyResource::HostEndpoint(h) => self.upsert_entity(Entity::from_host_endpoint(h)?),
            AnyResource::NetworkSet(s) => self.upsert_entity(Entity::from_network_set(s)?),
            AnyResource::GlobalNetworkSet(s) => {
                self.upsert_entity(Entity::from_global_network_set(s)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Removes what [`PolicyState::apply_resource`] added for the resource of `kind` called
    /// `name` (in `namespace`). Returns `false` for kinds policy does not use.
    pub fn remove_resource(
        &mut self,
        kind: fabric_api::Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        use fabric_api::Kind;
        let ns = || namespace.unwrap_or_default().to_string();
        match kind {
            Kind::Tier => self.remove_tier(name),
            Kind::NetworkPolicy => self.remove_policy(&PolicyKey::namespaced(ns(), name)),
            Kind::GlobalNetworkPolicy => self.remove_policy(&PolicyKey::global(name)),
            Kind::Profile => self.remove_profile(name),
            Kind::WorkloadEndpoint => self.remove_entity(&EntityKey::Workload {
                namespace: ns(),
                name: name.to_string(),
            }),
            Kind::HostEndpoint => self.remove_entity(&EntityKey::Host {
                name: name.to_string(),
            }),
            Kind::NetworkSet => self.remove_entity(&EntityKey::NetworkSet {
                namespace: ns(),
                name: name.to_string(),
            }),
            Kind::GlobalNetworkSet => self.remove_entity(&EntityKey::GlobalNetworkSet {
                name: name.to_string(),
            }),
            _ => return false,
        }
        true
    }

    /// Whether a [`PolicyState::flush`] would have anything to render or report.
    pub fn has_pending_work(&self) -> bool {
        !self.dirty.is_empty() || self.pending.is_some() || self.sets.has_pending()
    }

    /// Renders what the updates since the last flush touched and returns what changed.
    pub fn flush(&mut self) -> Changes {
        let changes = self.render_dirty();
        match self.pending.take() {
            Some(mut earlier) => {
                earlier.merge(changes);
                earlier
            }
            None => changes,
        }
    }

    /// Changes the settings (node, families, marks, actions, log prefix): everything is
    /// re-rendered and the next [`PolicyState::flush`] returns the difference, including the
    /// removal of a family that is no longer enabled. Invalid settings change nothing.
    pub fn reconfigure(&mut self, config: RenderConfig) -> Result<(), PolicyError> {
        if config == self.config {
            return Ok(());
        }
        let mut fresh = PolicyState::new(config)?;
        for t in self.tiers.values() {
            fresh.upsert_tier(t.clone());
        }
        for p in self.profiles.values() {
            fresh.upsert_profile(p.clone());
        }
        for e in self.entities.values() {
            fresh.upsert_entity(e.entity.clone());
        }
        for p in self.policies.values() {
            fresh.upsert_policy(p.policy.clone());
        }
        fresh.render_dirty();
        let mut changes = self.flush();
        let mut diff = Changes::default();
        for family in IpFamily::ALL {
            let f = family.index();
            let enabled = |s: &PolicyState| s.families.contains(&family);
            if !enabled(self) && !enabled(&fresh) {
                continue;
            }
            let mut fc = crate::FamilyChanges::empty(family);
            for (name, rules) in &fresh.chains[f] {
                if self.chains[f].get(name) != Some(rules) {
                    fc.chains
                        .push(crate::Chain::new(name.clone(), rules.clone()));
                }
            }
            fc.removed_chains = self.chains[f]
                .keys()
                .filter(|n| !fresh.chains[f].contains_key(*n))
                .cloned()
                .collect();
            let old_sets: BTreeMap<String, IpSet> = self
                .sets
                .sets(family)
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect();
            for set in fresh.sets.sets(family) {
                if old_sets.get(&set.id) != Some(&set) {
                    fc.ipsets.push(crate::IpSetDelta {
                        id: set.id.clone(),
                        kind: set.kind,
                        created: true,
                        added: set.members.iter().copied().collect(),
                        removed: Vec::new(),
                    });
                }
            }
            fc.removed_ipsets = old_sets
                .keys()
                .filter(|id| fresh.sets.get(family, id).is_none())
                .cloned()
                .collect();
            diff.families.push(fc);
        }
        changes.merge(diff);
        fresh.pending = Some(changes);
        *self = fresh;
        Ok(())
    }

    /// Everything, for a full resync (pending updates are flushed first).
    pub fn full(&mut self) -> Vec<FamilyRender> {
        self.flush();
        self.families
            .iter()
            .map(|f| FamilyRender {
                family: *f,
                chains: self.chains[f.index()]
                    .iter()
                    .map(|(n, r)| crate::Chain::new(n.clone(), r.clone()))
                    .collect(),
                hooks: crate::render::static_chains::hooks(),
                ipsets: self.sets.sets(*f),
            })
            .collect()
    }

    /// One ipset as it is now (after the last flush), if it exists in `family`.
    pub fn ipset(&self, family: IpFamily, id: &str) -> Option<IpSet> {
        self.sets.get(family, id)
    }

    /// The ipsets of `family` as they are now (after the last flush), sorted by id.
    pub fn ipsets(&self, family: IpFamily) -> Vec<IpSet> {
        self.sets.sets(family)
    }

    /// Number of local workload endpoints with chains.
    pub fn local_endpoint_count(&self) -> usize {
        self.iface_claims.len()
    }

    /// Number of policies that select a local endpoint (and so are rendered).
    pub fn active_policy_count(&self) -> usize {
        self.policies
            .values()
            .filter(|p| !p.active_on.is_empty())
            .count()
    }

    /// Number of rendered rules in `family` (after the last flush).
    pub fn rule_count(&self, family: IpFamily) -> usize {
        self.chains[family.index()].values().map(Vec::len).sum()
    }

    fn effective(&self, entity: &Entity) -> BTreeMap<String, String> {
        let profiles: Vec<Cow<'_, ProfileModel>> = entity
            .profiles
            .iter()
            .filter_map(|p| self.profile(p))
            .collect();
        effective_labels(&entity.labels, profiles.iter().map(|p| &p.labels))
    }

    fn profile_needs(&self, name: &str) -> Vec<SetNeed> {
        let Some(p) = self.profile(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for f in &self.families {
            for r in p.ingress.iter().chain(&p.egress) {
                out.extend(rule_sets(r, *f));
            }
        }
        out
    }

    /// Makes `holder` hold exactly the sets `needs` (new ones taken before old ones dropped,
    /// so shared sets survive).
    fn hold(&mut self, holder: Holder, needs: Vec<SetNeed>) {
        let entities = &self.entities;
        for n in &needs {
            self.sets
                .acquire(n, entities.iter().map(|(k, e)| (k, e.view())));
        }
        let keys: Vec<(IpFamily, String)> = needs.into_iter().map(|n| (n.family, n.id)).collect();
        let old = if keys.is_empty() {
            self.held.remove(&holder)
        } else {
            self.held.insert(holder, keys)
        };
        for (f, id) in old.unwrap_or_default() {
            self.sets.release(f, &id);
        }
    }

    fn profile_changed(&mut self, name: &str, labels_changed: bool) {
        if labels_changed {
            let users: Vec<EntityKey> = self
                .profile_users
                .get(name)
                .map(|u| u.iter().cloned().collect())
                .unwrap_or_default();
            for key in users {
                self.relabel(&key);
            }
        }
        if self.profile_refs.get(name).is_some_and(|c| *c > 0) {
            let needs = self.profile_needs(name);
            self.hold(Holder::Profile(name.to_string()), needs);
            self.dirty.insert(Owner::Profile(name.to_string()));
        }
    }

    fn tier_changed(&mut self, name: &str) {
        for (key, le) in &self.local {
            let in_tier = le
                .policies
                .iter()
                .any(|p| self.policies.get(p).is_some_and(|e| e.policy.tier == name));
            if in_tier {
                self.dirty.insert(Owner::Endpoint(key.clone()));
            }
        }
    }

    /// Recomputes an entity's labels after a profile's labels changed.
    fn relabel(&mut self, key: &EntityKey) {
        let Some(entry) = self.entities.get(key) else {
            return;
        };
        let labels = self.effective(&entry.entity);
        if labels == entry.labels {
            return;
        }
        let Some(mut entry) = self.entities.remove(key) else {
            return;
        };
        let old_labels = std::mem::replace(&mut entry.labels, labels);
        let old_view = EntityView {
            labels: &old_labels,
            nets: &entry.entity.nets,
            ports: &entry.entity.ports,
        };
        self.sets
            .update_entity(key, Some(old_view), Some(entry.view()));
        self.entities.insert(key.clone(), entry);
        self.refresh_local(key);
    }

    /// Brings the local-endpoint indexes up to date with the entity `key` as it is now.
    fn refresh_local(&mut self, key: &EntityKey) {
        let node = &self.config.node_name;
        let now = self.entities.get(key).and_then(|e| {
            let iface = e.entity.local_interface(node)?.to_string();
            let policies: BTreeSet<PolicyKey> = self
                .policies
                .iter()
                .filter(|(_, p)| !p.policy.host_only && p.policy.selector.matches(&e.labels))
                .map(|(k, _)| k.clone())
                .collect();
            Some(LocalEntry {
                iface,
                profiles: e.entity.profiles.clone(),
                policies,
            })
        });
        let before = self.local.remove(key);
        if before == now {
            if let Some(le) = now {
                self.local.insert(key.clone(), le);
            }
            return;
        }
        self.dirty.insert(Owner::Endpoint(key.clone()));
        // Interfaces: dispatch and whoever else claims the same interface.
        let old_iface = before.as_ref().map(|b| b.iface.clone());
        let new_iface = now.as_ref().map(|n| n.iface.clone());
        if old_iface != new_iface {
            self.dirty.insert(Owner::Dispatch);
            if let Some(i) = &old_iface {
                self.unclaim(i, key);
            }
            if let Some(i) = &new_iface {
                self.claim(i, key);
            }
        }
        // Policies that start or stop selecting this endpoint.
        let empty = BTreeSet::new();
        let old_p = before.as_ref().map_or(&empty, |b| &b.policies);
        let new_p = now.as_ref().map_or(&empty, |n| &n.policies);
        let flipped: Vec<(PolicyKey, bool)> = old_p
            .symmetric_difference(new_p)
            .map(|p| (p.clone(), new_p.contains(p)))
            .collect();
        for (p, add) in flipped {
            self.set_active_on(&p, key, add);
        }
        // Profiles that become used or unused on this node.
        let old_prof = before.map(|b| b.profiles).unwrap_or_default();
        let new_prof = now.as_ref().map(|n| n.profiles.clone()).unwrap_or_default();
        if let Some(le) = now {
            self.local.insert(key.clone(), le);
        }
        for p in &new_prof {
            self.profile_ref(p, true);
        }
        for p in &old_prof {
            self.profile_ref(p, false);
        }
    }

    fn claim(&mut self, iface: &str, key: &EntityKey) {
        let claims = self.iface_claims.entry(iface.to_string()).or_default();
        claims.insert(key.clone());
        if claims.len() > 1 {
            tracing::warn!(interface = %iface, endpoints = ?claims, "several local endpoints claim one interface; the first by name gets chains");
        }
        for k in claims.iter() {
            self.dirty.insert(Owner::Endpoint(k.clone()));
        }
    }

    fn unclaim(&mut self, iface: &str, key: &EntityKey) {
        if let Some(claims) = self.iface_claims.get_mut(iface) {
            claims.remove(key);
            for k in claims.iter() {
                self.dirty.insert(Owner::Endpoint(k.clone()));
            }
            if claims.is_empty() {
                self.iface_claims.remove(iface);
            }
        }
    }

    fn set_active_on(&mut self, policy: &PolicyKey, ep: &EntityKey, add: bool) {
        let Some(entry) = self.policies.get_mut(policy) else {
            return;
        };
        let was_active = !entry.active_on.is_empty();
        if add {
            entry.active_on.insert(ep.clone());
        } else {
            entry.active_on.remove(ep);
        }
        let is_active = !entry.active_on.is_empty();
        if was_active != is_active {
            let needs = if is_active {
                policy_needs(&self.families, &entry.policy)
            } else {
                Vec::new()
            };
            self.hold(Holder::Policy(policy.clone()), needs);
            self.dirty.insert(Owner::Policy(policy.clone()));
        }
    }

    fn profile_ref(&mut self, name: &str, add: bool) {
        let count = self.profile_refs.entry(name.to_string()).or_insert(0);
        let before = *count;
        if add {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
        }
        let after = *count;
        if after == 0 {
            self.profile_refs.remove(name);
        }
        if (before == 0) != (after == 0) {
            let needs = if after > 0 {
                self.profile_needs(name)
            } else {
                Vec::new()
            };
            self.hold(Holder::Profile(name.to_string()), needs);
            self.dirty.insert(Owner::Profile(name.to_string()));
        }
    }
}
