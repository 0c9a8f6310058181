//! Rendering the chains of the owners an update touched, and diffing them against what was
//! rendered before.

use std::collections::{BTreeMap, BTreeSet};

use fabric_api::tier::DEFAULT_TIER_ORDER;

use super::{Owner, PolicyState};
use crate::model::policy::Policy;
use crate::model::tier::TierEnd;
use crate::names::{from_workload_chain, policy_chain, profile_chain, to_workload_chain};
use crate::render::dispatch::dispatch_chains;
use crate::render::endpoint::{TierChains, endpoint_rules};
use crate::render::rules::render_rules;
use crate::render::static_chains::static_chains;
use crate::types::{Chain, Changes, FamilyChanges, IpFamily};

/// Sort key of a tier: existing tiers first (by order, then name), then tiers that do not
/// exist (by name). `default` exists implicitly.
fn tier_key(state: &PolicyState, name: &str) -> (u8, f64, String) {
    match state.tiers.get(name) {
        Some(t) => (0, t.order, name.to_string()),
        None if name == fabric_api::policy::DEFAULT_TIER => {
            (0, DEFAULT_TIER_ORDER, name.to_string())
        }
        None => (1, f64::INFINITY, name.to_string()),
    }
}

impl PolicyState {
    fn endpoint_tiers(
        &self,
        policies: &BTreeSet<crate::PolicyKey>,
        ingress: bool,
    ) -> Vec<TierChains> {
        let mut list: Vec<(&Policy, (u8, f64, String))> = policies
            .iter()
            .filter_map(|k| self.policies.get(k))
            .map(|e| &e.policy)
            .filter(|p| p.rules(ingress).is_some())
            .map(|p| (p, tier_key(self, &p.tier)))
            .collect();
        list.sort_by(|(a, ta), (b, tb)| {
            ta.0.cmp(&tb.0)
                .then(ta.1.total_cmp(&tb.1))
                .then(ta.2.cmp(&tb.2))
                .then(a.sort_order().total_cmp(&b.sort_order()))
                .then_with(|| a.key.to_string().cmp(&b.key.to_string()))
        });
        let mut out: Vec<TierChains> = Vec::new();
        for (p, _) in list {
            let chain = policy_chain(ingress, &p.identity());
            match out.last_mut() {
                Some(t) if t.tier == p.tier => t.policy_chains.push(chain),
                _ => out.push(TierChains {
                    tier: p.tier.clone(),
                    end: self.tiers.get(&p.tier).map_or(TierEnd::Deny, |t| t.end),
                    policy_chains: vec![chain],
                }),
            }
        }
        out
    }

    fn render_owner(&self, owner: &Owner, family: IpFamily) -> Vec<Chain> {
        match owner {
            Owner::Static => static_chains(&self.config, family),
            Owner::Dispatch => {
                let ifaces: Vec<&str> = self.iface_claims.keys().map(String::as_str).collect();
                dispatch_chains(&ifaces)
            }
            Owner::Endpoint(key) => {
                let Some(le) = self.local.get(key) else {
                    return Vec::new();
                };
                let first = self
                    .iface_claims
                    .get(&le.iface)
                    .and_then(|c| c.iter().next());
                if first != Some(key) {
                    return Vec::new();
                }
                let mut out = Vec::new();
                for ingress in [true, false] {
                    let name = if ingress {
                        to_workload_chain(&le.iface)
                    } else {
                        from_workload_chain(&le.iface)
                    };
                    let profiles: Vec<String> = le
                        .profiles
                        .iter()
                        .map(|p| profile_chain(ingress, p))
                        .collect();
                    let tiers = self.endpoint_tiers(&le.policies, ingress);
                    out.push(Chain::new(
                        name,
                        endpoint_rules(&self.config, &tiers, &profiles),
                    ));
                }
                out
            }
            Owner::Policy(key) => {
                let Some(entry) = self.policies.get(key).filter(|e| !e.active_on.is_empty()) else {
                    return Vec::new();
                };
                let p = &entry.policy;
                let mut out = Vec::new();
                for ingress in [true, false] {
                    let Some(rules) = p.rules(ingress) else {
                        continue;
                    };
                    let dir = if ingress { "ingress" } else { "egress" };
                    out.push(Chain::new(
                        policy_chain(ingress, &p.identity()),
                        render_rules(
                            rules,
                            family,
                            &self.ctx,
                            &format!("{} {} {dir}", p.key.kind(), p.key),
                        ),
                    ));
                }
                out
            }
            Owner::Profile(name) => {
                if !self.profile_refs.contains_key(name) {
                    return Vec::new();
                }
                let profile = self.profile(name);
                let mut out = Vec::new();
                for ingress in [true, false] {
                    let dir = if ingress { "ingress" } else { "egress" };
                    let rules = profile
                        .as_ref()
                        .map(|p| {
                            if ingress {
                                &p.ingress[..]
                            } else {
                                &p.egress[..]
                            }
                        })
                        .unwrap_or_default();
                    out.push(Chain::new(
                        profile_chain(ingress, name),
                        render_rules(rules, family, &self.ctx, &format!("Profile {name} {dir}")),
                    ));
                }
                out
            }
        }
    }

    pub(super) fn render_dirty(&mut self) -> Changes {
        let dirty = std::mem::take(&mut self.dirty);
        let families = self.families.clone();
        let mut result: BTreeMap<IpFamily, FamilyChanges> = families
            .iter()
            .map(|f| (*f, FamilyChanges::empty(*f)))
            .collect();
        for family in &families {
            let f = family.index();
            let mut written: BTreeSet<String> = BTreeSet::new();
            let mut gone: Vec<String> = Vec::new();
            let Some(changes) = result.get_mut(family) else {
                continue;
            };
            for owner in &dirty {
                let chains = self.render_owner(owner, *family);
                let names: Vec<String> = chains.iter().map(|c| c.name.clone()).collect();
                let before = self
                    .owners
                    .get(owner)
                    .map(|n| n[f].clone())
                    .unwrap_or_default();
                gone.extend(before.into_iter().filter(|n| !names.contains(n)));
                for c in chains {
                    written.insert(c.name.clone());
                    if self.chains[f].get(&c.name) != Some(&c.rules) {
                        self.chains[f].insert(c.name.clone(), c.rules.clone());
                        changes.chains.push(c);
                    }
                }
                let slot = self.owners.entry(owner.clone()).or_default();
                slot[f] = names;
            }
            for name in gone {
                if !written.contains(&name) && self.chains[f].remove(&name).is_some() {
                    changes.removed_chains.push(name);
                }
            }
            changes.chains.sort_by(|a, b| a.name.cmp(&b.name));
            changes.removed_chains.sort();
        }
        self.owners
            .retain(|_, names| names.iter().any(|n| !n.is_empty()));
        for (family, (deltas, removed)) in self.sets.finish(&families) {
            if let Some(c) = result.get_mut(&family) {
                c.ipsets = deltas;
                c.removed_ipsets = removed;
            }
        }
        Changes {
            families: result.into_values().collect(),
        }
    }
}
