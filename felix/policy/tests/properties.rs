//! Property tests over random clusters and random update sequences:
//! - every selector ipset holds exactly the addresses of the entities whose labels (own over
//!   inherited profile labels) the selector matches, and only selectors of policies that
//!   select a local endpoint become sets;
//! - applying the incremental changes of every update, in order, gives exactly the full
//!   render of a fresh state loaded with the final objects, and after every update the chains
//!   only jump to chains and use sets that exist.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use fabric_api::rule::EntityRule;
use fabric_api::{Action, Port, Protocol, Rule};
use felix_policy::model::entity::{NamedPort, WorkloadPlacement};
use felix_policy::model::policy::Policy;
use felix_policy::model::rule::compile_all;
use felix_policy::model::selectors;
use felix_policy::render::rules::selector_id;
use felix_policy::{
    Changes, Entity, EntityKey, FamilyRender, IpFamily, IpSetMember, PolicyKey, PolicyState,
    PortProtocol, ProfileModel, RenderConfig, TierEnd, TierModel,
};
use ipnet::IpNet;
use proptest::prelude::*;

const NAMESPACES: [&str; 3] = ["a", "b", "c"];
const SELECTORS: [&str; 8] = [
    "app == 'x'",
    "app == 'y'",
    "has(role)",
    "role in {'r1', 'r2'}",
    "all()",
    "!has(app)",
    "pcns.team == 't1'",
    "app == 'x' || role == 'r2'",
];
const NS_SELECTORS: [&str; 3] = ["team == 't1'", "all()", "global()"];

/// One random update.
#[derive(Debug, Clone)]
enum Op {
    Entity {
        slot: u8,
        ns: u8,
        app: u8,
        role: u8,
        local: bool,
        kind: u8,
    },
    RemoveEntity(u8),
    Policy {
        slot: u8,
        namespaced: Option<u8>,
        selector: u8,
        tier: bool,
        order: Option<u8>,
        types: u8,
        rules: Vec<(u8, u8, bool, u8)>,
    },
    RemovePolicy(u8),
    Profile {
        ns: u8,
        team: u8,
    },
    RemoveProfile(u8),
    Tier {
        order: u8,
        pass: bool,
    },
    RemoveTier,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..10, 0u8..3, 0u8..3, 0u8..3, any::<bool>(), 0u8..6).prop_map(
            |(slot, ns, app, role, local, kind)| Op::Entity { slot, ns, app, role, local, kind }
        ),
        1 => (0u8..10).prop_map(Op::RemoveEntity),
        3 => (
            0u8..6,
            prop::option::of(0u8..3),
            0u8..8,
            any::<bool>(),
            prop::option::of(0u8..4),
            1u8..4,
            prop::collection::vec((0u8..9, 0u8..9, any::<bool>(), 0u8..5), 0..4)
        )
            .prop_map(|(slot, namespaced, selector, tier, order, types, rules)| Op::Policy {
                slot, namespaced, selector, tier, order, types, rules
            }),
        1 => (0u8..6).prop_map(Op::RemovePolicy),
        2 => (0u8..3, 0u8..3).prop_map(|(ns, team)| Op::Profile { ns, team }),
        1 => (0u8..3).prop_map(Op::RemoveProfile),
        1 => (0u8..3, any::<bool>()).prop_map(|(order, pass)| Op::Tier { order, pass }),
        1 => Just(Op::RemoveTier),
    ]
}

fn pick(i: u8, values: &[&str]) -> Option<String> {
    values.get(usize::from(i)).map(|s| s.to_string())
}

fn entity(slot: u8, ns: u8, app: u8, role: u8, local: bool, kind: u8) -> Entity {
    let ns = NAMESPACES[usize::from(ns)].to_string();
    let mut labels = BTreeMap::new();
    if let Some(a) = pick(app, &["x", "y"]) {
        labels.insert("app".to_string(), a);
    }
    if let Some(r) = pick(role, &["r1", "r2"]) {
        labels.insert("role".to_string(), r);
    }
    let ip: IpNet = format!("10.0.{slot}.1/32").parse().unwrap();
    let v6: IpNet = format!("fd00::{slot}:1/128").parse().unwrap();
    match kind {
        // A network set (namespaced) or a host endpoint: addresses and labels only.
        0 => {
            labels.insert("projectcalico.org/namespace".into(), ns.clone());
            Entity {
                key: EntityKey::NetworkSet {
                    namespace: ns.clone(),
                    name: format!("s{slot}"),
                },
                labels,
                profiles: vec![format!("kns.{ns}")],
                nets: vec![format!("192.168.{slot}.0/24").parse().unwrap()],
                ports: Vec::new(),
                workload: None,
            }
        }
        1 => Entity {
            key: EntityKey::Host {
                name: format!("h{slot}"),
            },
            labels,
            profiles: Vec::new(),
            nets: vec![ip],
            ports: Vec::new(),
            workload: None,
        },
        _ => {
            labels.insert("projectcalico.org/namespace".into(), ns.clone());
            Entity {
                key: EntityKey::Workload {
                    namespace: ns.clone(),
                    name: format!("w{slot}"),
                },
                labels,
                profiles: vec![format!("kns.{ns}")],
                nets: vec![ip, v6],
                ports: vec![NamedPort {
                    name: "http".into(),
                    protocol: PortProtocol::Tcp,
                    port: 8000 + u16::from(slot),
                }],
                workload: Some(WorkloadPlacement {
                    node: if local { "node1" } else { "node2" }.into(),
                    interface: format!("cali{slot}x"),
                }),
            }
        }
    }
}

fn rule(sel: u8, not_sel: u8, ns_sel: bool, shape: u8) -> Rule {
    let mut r =
        Rule::new([Action::Allow, Action::Deny, Action::Pass, Action::Log][usize::from(shape % 4)]);
    let mut side = EntityRule::default();
    if let Some(s) = pick(sel, &SELECTORS) {
        side.selector = s;
    }
    if let Some(s) = pick(not_sel, &SELECTORS) {
        side.not_selector = s;
    }
    if ns_sel {
        side.namespace_selector = NS_SELECTORS[usize::from(sel) % 3].to_string();
    }
    match shape {
        0 => r.source = side,
        1 => {
            r.protocol = Some(Protocol::Tcp);
            side.ports = vec![Port::Named("http".into()), Port::Single(443)];
            r.destination = side;
        }
        2 => {
            side.nets = vec![
                "10.0.0.0/8".into(),
                "fd00::/8".into(),
                "172.16.0.0/12".into(),
            ];
            r.source = side;
        }
        3 => r.destination = side,
        _ => {
            r.protocol = Some(Protocol::Udp);
            side.not_ports = vec![Port::Single(53)];
            r.source = side;
        }
    }
    r
}

/// The test's own record of the cluster, to rebuild a fresh state and to compute expected
/// set members independently.
#[derive(Default, Clone)]
struct Cluster {
    entities: BTreeMap<EntityKey, Entity>,
    policies: BTreeMap<PolicyKey, Policy>,
    profiles: BTreeMap<String, ProfileModel>,
    tier: Option<TierModel>,
}

fn apply(state: &mut PolicyState, cluster: &mut Cluster, op: &Op) {
    match op.clone() {
        Op::Entity {
            slot,
            ns,
            app,
            role,
            local,
            kind,
        } => {
            // One entity per slot, whatever its kind.
            let e = entity(slot, ns, app, role, local, kind);
            let stale: Vec<EntityKey> = cluster
                .entities
                .keys()
                .filter(|k| slot_of(k) == slot && **k != e.key)
                .cloned()
                .collect();
            for k in stale {
                state.remove_entity(&k);
                cluster.entities.remove(&k);
            }
            cluster.entities.insert(e.key.clone(), e.clone());
            state.upsert_entity(e);
        }
        Op::RemoveEntity(slot) => {
            let keys: Vec<EntityKey> = cluster
                .entities
                .keys()
                .filter(|k| slot_of(k) == slot)
                .cloned()
                .collect();
            for k in keys {
                state.remove_entity(&k);
                cluster.entities.remove(&k);
            }
        }
        Op::Policy {
            slot,
            namespaced,
            selector,
            tier,
            order,
            types,
            rules,
        } => {
            let ns = namespaced.map(|n| NAMESPACES[usize::from(n)]);
            let key = match ns {
                Some(ns) => PolicyKey::namespaced(ns, format!("p{slot}")),
                None => PolicyKey::global(format!("p{slot}")),
            };
            let text = SELECTORS[usize::from(selector)];
            let sel = match ns {
                Some(ns) => selectors::namespaced_policy_selector("p", text, ns, "").unwrap(),
                None => selectors::global_policy_selector("p", text, "", "").unwrap(),
            };
            let api_rules: Vec<Rule> = rules
                .iter()
                .map(|(a, b, c, d)| rule(*a, *b, *c, *d))
                .collect();
            let compiled = compile_all("p", &api_rules, ns).unwrap();
            let p = Policy {
                key: key.clone(),
                tier: if tier { "t1" } else { "default" }.into(),
                order: order.map(f64::from),
                selector: sel,
                ingress: (types & 1 != 0).then(|| compiled.clone()),
                egress: (types & 2 != 0).then_some(compiled),
                host_only: false,
            };
            // A policy renamed into another tier is another key here; same key replaces.
            cluster.policies.insert(key, p.clone());
            state.upsert_policy(p);
        }
        Op::RemovePolicy(slot) => {
            let keys: Vec<PolicyKey> = cluster
                .policies
                .keys()
                .filter(|k| k.name == format!("p{slot}"))
                .cloned()
                .collect();
            for k in keys {
                state.remove_policy(&k);
                cluster.policies.remove(&k);
            }
        }
        Op::Profile { ns, team } => {
            let name = format!("kns.{}", NAMESPACES[usize::from(ns)]);
            let mut labels = BTreeMap::new();
            if let Some(t) = pick(team, &["t1", "t2"]) {
                labels.insert("pcns.team".to_string(), t);
            }
            labels.insert("app".to_string(), "y".to_string());
            let allow = compile_all("p", &[Rule::new(Action::Allow)], None).unwrap();
            let p = ProfileModel {
                name: name.clone(),
                labels,
                ingress: allow.clone(),
                egress: allow,
            };
            cluster.profiles.insert(name, p.clone());
            state.upsert_profile(p);
        }
        Op::RemoveProfile(ns) => {
            let name = format!("kns.{}", NAMESPACES[usize::from(ns)]);
            cluster.profiles.remove(&name);
            state.remove_profile(&name);
        }
        Op::Tier { order, pass } => {
            let t = TierModel {
                name: "t1".into(),
                order: f64::from(order) * 1_000_000.0,
                end: if pass { TierEnd::Pass } else { TierEnd::Deny },
            };
            cluster.tier = Some(t.clone());
            state.upsert_tier(t);
        }
        Op::RemoveTier => {
            cluster.tier = None;
            state.remove_tier("t1");
        }
    }
}

fn slot_of(k: &EntityKey) -> u8 {
    let name = match k {
        EntityKey::Workload { name, .. }
        | EntityKey::Host { name }
        | EntityKey::NetworkSet { name, .. }
        | EntityKey::GlobalNetworkSet { name } => name,
    };
    name[1..].parse().unwrap()
}

fn config() -> RenderConfig {
    let mut c = RenderConfig::new("node1");
    c.ipv6 = true;
    c
}

fn fresh(cluster: &Cluster) -> PolicyState {
    let mut s = PolicyState::new(config()).unwrap();
    if let Some(t) = &cluster.tier {
        s.upsert_tier(t.clone());
    }
    for p in cluster.profiles.values() {
        s.upsert_profile(p.clone());
    }
    for e in cluster.entities.values() {
        s.upsert_entity(e.clone());
    }
    for p in cluster.policies.values() {
        s.upsert_policy(p.clone());
    }
    s
}

/// What a consumer of the changes holds: per family, chains and sets.
#[derive(Default, Debug)]
struct Mirror {
    chains: [BTreeMap<String, Vec<String>>; 2],
    sets: [BTreeMap<String, BTreeSet<IpSetMember>>; 2],
    /// Merged changes may remove what was never there and rewrite sets whole.
    lenient: bool,
}

impl PartialEq for Mirror {
    fn eq(&self, other: &Self) -> bool {
        self.chains == other.chains && self.sets == other.sets
    }
}

impl Mirror {
    fn apply(&mut self, changes: &Changes) {
        for fc in &changes.families {
            let f = fc.family.index();
            for name in &fc.removed_chains {
                let known = self.chains[f].remove(name).is_some();
                assert!(self.lenient || known, "removed unknown chain {name}");
            }
            for c in &fc.chains {
                self.chains[f].insert(c.name.clone(), c.rules.clone());
            }
            for d in &fc.ipsets {
                if d.created {
                    assert!(
                        self.lenient || !self.sets[f].contains_key(&d.id),
                        "created twice: {}",
                        d.id
                    );
                    self.sets[f].insert(d.id.clone(), d.added.iter().copied().collect());
                } else {
                    let set = self.sets[f].get_mut(&d.id).unwrap();
                    for m in &d.removed {
                        assert!(set.remove(m), "removed absent member {m} of {}", d.id);
                    }
                    for m in &d.added {
                        assert!(set.insert(*m), "added present member {m} to {}", d.id);
                    }
                }
            }
            for id in &fc.removed_ipsets {
                let known = self.sets[f].remove(id).is_some();
                assert!(self.lenient || known, "removed unknown set {id}");
            }
        }
    }

    fn of(renders: &[FamilyRender]) -> Mirror {
        let mut m = Mirror::default();
        for r in renders {
            let f = r.family.index();
            for c in &r.chains {
                m.chains[f].insert(c.name.clone(), c.rules.clone());
            }
            for s in &r.ipsets {
                m.sets[f].insert(s.id.clone(), s.members.clone());
            }
        }
        m
    }

    /// Every jump target and every set a rule uses exists.
    fn check_references(&self) {
        for f in 0..2 {
            for (name, rules) in &self.chains[f] {
                for r in rules {
                    let words: Vec<&str> = r.split_whitespace().collect();
                    for w in words.windows(2) {
                        if (w[0] == "-j" || w[0] == "-g") && w[1].starts_with("cali-") {
                            assert!(
                                self.chains[f].contains_key(w[1]),
                                "{name}: {r}: no chain {}",
                                w[1]
                            );
                        }
                        if w[0] == "--match-set" {
                            let id = &w[1][6..];
                            assert!(
                                self.sets[f].contains_key(id),
                                "{name}: {r}: no set {}",
                                w[1]
                            );
                        }
                    }
                }
            }
        }
    }
}

fn effective(cluster: &Cluster, e: &Entity) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for p in e.profiles.iter().rev() {
        let profile = cluster
            .profiles
            .get(p)
            .cloned()
            .or_else(|| felix_policy::model::profile::implicit_profile(p));
        if let Some(p) = profile {
            labels.extend(p.labels);
        }
    }
    labels.extend(e.labels.clone());
    labels
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn selector_sets_hold_exactly_the_matching_entities_addresses(ops in prop::collection::vec(op(), 1..40)) {
        let mut state = PolicyState::new(config()).unwrap();
        let mut cluster = Cluster::default();
        for op in &ops {
            apply(&mut state, &mut cluster, op);
        }
        state.flush();
        let labelled: Vec<(&Entity, BTreeMap<String, String>)> = cluster
            .entities
            .values()
            .map(|e| (e, effective(&cluster, e)))
            .collect();
        let local: Vec<&BTreeMap<String, String>> = labelled
            .iter()
            .filter(|(e, _)| e.local_interface("node1").is_some())
            .map(|(_, l)| l)
            .collect();
        let mut expected_ids = BTreeSet::new();
        for p in cluster.policies.values() {
            if !local.iter().any(|l| p.selector.matches(*l)) {
                continue;
            }
            for r in p.ingress.iter().chain(&p.egress).flatten() {
                for sel in [&r.src.selector, &r.src.not_selector, &r.dst.selector, &r.dst.not_selector]
                    .into_iter()
                    .flatten()
                {
                    let id = selector_id(sel);
                    expected_ids.insert(id.clone());
                    for family in IpFamily::ALL {
                        let want: BTreeSet<IpSetMember> = labelled
                            .iter()
                            .filter(|(_, l)| sel.matches(l))
                            .flat_map(|(e, _)| e.nets.iter().copied())
                            .filter(|n| IpFamily::of_net(n) == family)
                            .map(IpSetMember::Net)
                            .collect();
                        let got = state.ipset(family, &id).map(|s| s.members).unwrap_or_default();
                        prop_assert_eq!(&got, &want, "{} {} ({})", family, id, sel);
                    }
                }
            }
        }
        let got_ids: BTreeSet<String> = state
            .full()
            .iter()
            .flat_map(|r| r.ipsets.iter().map(|s| s.id.clone()))
            .filter(|id| id.starts_with("s:"))
            .collect();
        prop_assert_eq!(got_ids, expected_ids);
    }

    #[test]
    fn incremental_changes_add_up_to_the_full_render_of_the_final_state(
        ops in prop::collection::vec(op(), 1..40),
        flush_every in 1usize..4,
    ) {
        let mut state = PolicyState::new(config()).unwrap();
        let mut cluster = Cluster::default();
        let mut mirror = Mirror::default();
        for (i, op) in ops.iter().enumerate() {
            apply(&mut state, &mut cluster, op);
            if i % flush_every == 0 {
                mirror.apply(&state.flush());
                mirror.check_references();
            }
        }
        mirror.apply(&state.flush());
        mirror.check_references();
        let want = Mirror::of(&fresh(&cluster).full());
        prop_assert_eq!(&mirror, &want);
        prop_assert_eq!(Mirror::of(&state.full()), want);
        prop_assert!(state.flush().is_empty(), "a flush with no update changes nothing");
    }

    #[test]
    fn merged_changes_apply_like_the_changes_one_after_another(
        ops in prop::collection::vec(op(), 1..40),
        split in 0usize..40,
    ) {
        let mut state = PolicyState::new(config()).unwrap();
        let mut cluster = Cluster::default();
        let mut one_by_one = Mirror::default();
        let mut merged = Mirror { lenient: true, ..Mirror::default() };
        // Changes up to `split` are applied; the rest pile up merged, as behind a busy kernel.
        let mut pending: Option<Changes> = None;
        for (i, op) in ops.iter().enumerate() {
            apply(&mut state, &mut cluster, op);
            let c = state.flush();
            one_by_one.apply(&c);
            if i < split {
                merged.apply(&c);
            } else if let Some(p) = &mut pending {
                p.merge(c);
            } else {
                pending = Some(c);
            }
        }
        if let Some(p) = pending {
            merged.apply(&p);
        }
        prop_assert_eq!(merged, one_by_one);
    }
}
