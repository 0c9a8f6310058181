//! Policy in the kernel: felix-policy's filter chains (one [`Table`] per family, hooks from
//! `FORWARD`, `INPUT` and `OUTPUT`) and its ipsets (one scoped [`IpSets`]), applied in order:
//! sets created and filled, then the chains (one `iptables-restore --noflush` per family with
//! only the changed chains), then sets no rule uses any more destroyed. Switching the iptables
//! backend carries the chains over and empties ours in the other backend.

use felix_policy::names::IPSET_ID_PREFIXES;
use felix_policy::{Changes, FamilyRender, IpSetKind, IpSetMember};

use super::Reconciler;
use super::addr::IpFamily;
use super::iptables::ipsets::{IpPort, IpSetScope, IpSetSpec, IpSetType, IpSets, IpsetBackend};
use super::iptables::{Chain, IptablesBackend, Rule, Table, TableConfig};
use super::status::{ApplyReport, Health, InvalidInput};

fn family(f: felix_policy::IpFamily) -> IpFamily {
    match f {
        felix_policy::IpFamily::V4 => IpFamily::V4,
        felix_policy::IpFamily::V6 => IpFamily::V6,
    }
}

fn chain(c: &felix_policy::Chain) -> Chain {
    Chain::new(c.name.clone(), c.rules.iter().map(Rule::new).collect())
}

/// A felix-policy set (or a set's whole content) as felix's ipset spec.
fn set_spec(
    id: &str,
    f: felix_policy::IpFamily,
    kind: IpSetKind,
    members: &[IpSetMember],
) -> IpSetSpec {
    match kind {
        IpSetKind::HashNet => IpSetSpec::new(
            id,
            family(f),
            IpSetType::HashNet,
            members.iter().filter_map(|m| match m {
                IpSetMember::Net(n) => Some(*n),
                IpSetMember::IpPort { .. } => None,
            }),
        ),
        IpSetKind::HashIpPort => IpSetSpec::ip_port(
            id,
            family(f),
            members.iter().filter_map(|m| match m {
                IpSetMember::IpPort {
                    addr,
                    protocol,
                    port,
                } => Some(IpPort {
                    addr: *addr,
                    protocol: *protocol,
                    port: *port,
                }),
                IpSetMember::Net(_) => None,
            }),
        ),
    }
}

/// The filter tables and ipsets of policy.
#[derive(Debug)]
pub struct PolicyReconciler<I: IptablesBackend, S: IpsetBackend> {
    tables: Vec<(IpFamily, Table<I>)>,
    /// Tables of a backend we no longer use: emptied of our chains, then dropped.
    retired: Vec<Table<I>>,
    sets: IpSets<S>,
    in_sync: bool,
    health: Health,
}

impl<I: IptablesBackend, S: IpsetBackend> PolicyReconciler<I, S> {
    /// A reconciler writing the filter tables through `backend(family)` and sets through
    /// `ipset`. `other_backend` (when given) reaches the backend we do not use: our chains left
    /// there by an earlier run are removed once in sync.
    pub fn new(
        mut backend: impl FnMut(IpFamily) -> I,
        ipset: S,
        other_backend: Option<&mut dyn FnMut(IpFamily) -> I>,
    ) -> Result<PolicyReconciler<I, S>, InvalidInput> {
        let mut tables = Vec::new();
        let mut retired = Vec::new();
        for f in [IpFamily::V4, IpFamily::V6] {
            tables.push((f, Table::new(backend(f), TableConfig::calico("filter", f))?));
        }
        if let Some(other) = other_backend {
            for f in [IpFamily::V4, IpFamily::V6] {
                retired.push(Table::new(other(f), TableConfig::calico("filter", f))?);
            }
        }
        Ok(PolicyReconciler {
            tables,
            retired,
            sets: IpSets::with_scope(ipset, IpSetScope::only(&IPSET_ID_PREFIXES)),
            in_sync: false,
            health: Health::healthy(),
        })
    }

    fn table(&mut self, f: IpFamily) -> Option<&mut Table<I>> {
        self.tables
            .iter_mut()
            .find(|(tf, _)| *tf == f)
            .map(|(_, t)| t)
    }

    /// Takes one update of felix-policy's changes (no I/O). Rejects, changing nothing in the
    /// family concerned, chains or sets the reconcilers refuse.
    pub fn update(&mut self, changes: &Changes) -> Result<(), InvalidInput> {
        for fc in &changes.families {
            let f = family(fc.family);
            for d in &fc.ipsets {
                let name = format!("cali{}0{}", f.digit(), d.id);
                if d.created || !self.sets.has_set(&name) {
                    self.sets
                        .update_set(set_spec(&d.id, fc.family, d.kind, &d.added))?;
                } else {
                    let split = |list: &[IpSetMember]| {
                        let mut nets = Vec::new();
                        let mut ports = Vec::new();
                        for m in list {
                            match m {
                                IpSetMember::Net(n) => nets.push(*n),
                                IpSetMember::IpPort {
                                    addr,
                                    protocol,
                                    port,
                                } => ports.push(IpPort {
                                    addr: *addr,
                                    protocol: *protocol,
                                    port: *port,
                                }),
                            }
                        }
                        (nets, ports)
                    };
                    let (add, add_ports) = split(&d.added);
                    let (remove, remove_ports) = split(&d.removed);
                    self.sets
                        .change_members(&name, &add, &remove, &add_ports, &remove_ports)?;
                }
            }
            for id in &fc.removed_ipsets {
                self.sets.remove_set(&format!("cali{}0{id}", f.digit()));
            }
            let Some(table) = self.table(f) else {
                continue;
            };
            for c in &fc.chains {
                table.update_chain(chain(c))?;
            }
            for name in &fc.removed_chains {
                table.remove_chain(name);
            }
            // Hooks only while our top-level chains exist.
            let ours = fc
                .chains
                .iter()
                .any(|c| c.name == felix_policy::names::CHAIN_FORWARD);
            let gone = fc
                .removed_chains
                .iter()
                .any(|n| n == felix_policy::names::CHAIN_FORWARD);
            if ours {
                let hooks: Vec<Chain> = felix_policy::render::static_chains::hooks()
                    .iter()
                    .map(chain)
                    .collect();
                table.set_hooks(hooks)?;
            } else if gone {
                table.set_hooks(Vec::new())?;
            }
        }
        Ok(())
    }

    /// Replaces everything with a full render (families not in `renders` are emptied).
    pub fn set_full(&mut self, renders: &[FamilyRender]) -> Result<(), InvalidInput> {
        let mut sets = Vec::new();
        for r in renders {
            for s in &r.ipsets {
                let members: Vec<IpSetMember> = s.members.iter().copied().collect();
                sets.push(set_spec(&s.id, r.family, s.kind, &members));
            }
        }
        self.sets.set_desired(sets)?;
        for (f, table) in &mut self.tables {
            match renders.iter().find(|r| family(r.family) == *f) {
                Some(r) => {
                    table.set_chains(r.chains.iter().map(chain).collect())?;
                    table.set_hooks(r.hooks.iter().map(chain).collect())?;
                }
                None => {
                    table.set_chains(Vec::new())?;
                    table.set_hooks(Vec::new())?;
                }
            }
        }
        Ok(())
    }

    /// Moves our chains to another backend; ours in the current one are removed on the next
    /// applies (once in sync).
    pub fn switch_backend(
        &mut self,
        mut backend: impl FnMut(IpFamily) -> I,
    ) -> Result<(), InvalidInput> {
        let mut fresh = Vec::new();
        for (f, old) in &self.tables {
            let mut t = Table::new(backend(*f), TableConfig::calico("filter", *f))?;
            let (chains, hooks) = old.desired();
            t.set_chains(chains)?;
            t.set_hooks(hooks)?;
            t.set_in_sync(self.in_sync);
            fresh.push((*f, t));
        }
        for (_, mut old) in std::mem::replace(&mut self.tables, fresh) {
            old.set_chains(Vec::new())?;
            old.set_hooks(Vec::new())?;
            self.retired.push(old);
        }
        Ok(())
    }

    /// Our ipsets and our rules in the kernel (as last read or written).
    pub fn counts(&self) -> (usize, usize) {
        let rules = self
            .tables
            .iter()
            .map(|(_, t)| {
                t.cached()
                    .chains
                    .values()
                    .map(|r| r.iter().filter(|h| h.is_some()).count())
                    .sum::<usize>()
            })
            .sum();
        (self.sets.cached().len(), rules)
    }

    fn run(&mut self, resync: bool) -> ApplyReport {
        let mut report = if resync {
            self.sets.resync_updates()
        } else {
            self.sets.apply_updates()
        };
        for (_, t) in &mut self.tables {
            report.merge(if resync { t.resync() } else { t.apply() });
        }
        let in_sync = self.in_sync;
        self.retired.retain_mut(|t| {
            t.set_in_sync(in_sync);
            let r = t.apply();
            // Gone once it has nothing of ours left (or that backend cannot even be read).
            let done = r.is_ok() && in_sync && r.deferred_deletes == 0;
            let unusable = !r.is_ok() && t.cached().chains.is_empty();
            if !r.is_ok() && !unusable {
                report.merge(r);
            }
            !(done || unusable)
        });
        report.merge(self.sets.apply_deletions());
        self.health = Health::from_reasons(report.error_lines());
        report
    }
}

impl<I: IptablesBackend, S: IpsetBackend> Reconciler for PolicyReconciler<I, S> {
    fn name(&self) -> &'static str {
        "policy"
    }

    fn apply(&mut self) -> ApplyReport {
        self.run(false)
    }

    fn resync(&mut self) -> ApplyReport {
        self.run(true)
    }

    fn set_in_sync(&mut self, in_sync: bool) {
        self.in_sync = in_sync;
        self.sets.set_in_sync(in_sync);
        for (_, t) in &mut self.tables {
            t.set_in_sync(in_sync);
        }
    }

    fn health(&self) -> Health {
        self.health.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::iptables::fake::FakeIptables;
    use crate::dataplane::iptables::ipsets::fake::FakeIpset;
    use fabric_api::document::parse_documents;
    use felix_policy::{PolicyState, RenderConfig};

    const CLUSTER: &str = "apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: n1-k8s-web-eth0, namespace: prod, labels: {app: web}}
spec: {node: n1, orchestrator: k8s, pod: web, endpoint: eth0, interfaceName: caliweb, ipNetworks: [10.65.0.10/32], ports: [{name: http, protocol: TCP, port: 80}]}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: n2-k8s-db-eth0, namespace: prod, labels: {app: db}}
spec: {node: n2, orchestrator: k8s, pod: db, endpoint: eth0, interfaceName: calidb, ipNetworks: [10.65.1.10/32]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: web}
spec:
  selector: app == 'web'
  ingress:
  - {action: Allow, protocol: TCP, source: {selector: app == 'db'}, destination: {ports: [http]}}
";

    fn state() -> PolicyState {
        let mut s = PolicyState::new(RenderConfig::new("n1")).unwrap();
        for r in parse_documents(CLUSTER, "t").unwrap() {
            s.apply_resource(&r).unwrap();
        }
        s
    }

    fn reconciler() -> PolicyReconciler<FakeIptables, FakeIpset> {
        let mut r = PolicyReconciler::new(|_| FakeIptables::new(), FakeIpset::new(), None).unwrap();
        r.set_in_sync(true);
        r
    }

    fn tw(r: &mut PolicyReconciler<FakeIptables, FakeIpset>) -> Vec<String> {
        r.table(IpFamily::V4)
            .unwrap()
            .backend_mut()
            .rules("filter", "cali-tw-caliweb")
    }

    #[test]
    fn changes_become_sets_then_chains_and_hooks_in_the_filter_table() {
        let mut s = state();
        let mut r = reconciler();
        r.update(&s.flush()).unwrap();
        let report = r.apply();
        assert!(report.is_ok(), "{:?}", report.errors);
        let sets = &r.sets.backend_mut().sets;
        let selector = sets.keys().find(|n| n.starts_with("cali40s:")).unwrap();
        assert!(sets[selector].members.contains("10.65.1.10"));
        let named = sets.keys().find(|n| n.starts_with("cali40n:")).unwrap();
        assert!(
            sets[named].members.contains("10.65.0.10,tcp:80"),
            "{sets:?}"
        );
        let t = r.table(IpFamily::V4).unwrap().backend_mut();
        assert!(t.rules("filter", "FORWARD")[0].ends_with("-j cali-FORWARD"));
        assert!(!t.rules("filter", "cali-tw-caliweb").is_empty());
        assert!(r.apply().is_noop(), "converged");
        let (ipsets, rules) = r.counts();
        assert_eq!(ipsets, 2);
        assert!(rules > 20);
    }

    #[test]
    fn deltas_change_members_and_stale_sets_go_after_their_rules() {
        let mut s = state();
        let mut r = reconciler();
        r.update(&s.flush()).unwrap();
        r.apply();
        // db changes label: it leaves the selector set (a member delta), web's chain stays.
        let db = "apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: n2-k8s-db-eth0, namespace: prod, labels: {app: cache}}
spec: {node: n2, orchestrator: k8s, pod: db, endpoint: eth0, interfaceName: calidb, ipNetworks: [10.65.1.10/32]}
";
        s.apply_resource(&parse_documents(db, "t").unwrap()[0])
            .unwrap();
        let c = s.flush();
        assert!(
            c.family(felix_policy::IpFamily::V4)
                .unwrap()
                .chains
                .is_empty()
        );
        r.update(&c).unwrap();
        assert!(r.apply().is_ok());
        let sets = &r.sets.backend_mut().sets;
        let selector = sets.keys().find(|n| n.starts_with("cali40s:")).unwrap();
        assert!(sets[selector].members.is_empty());
        // The policy goes: its chain and both sets go.
        s.remove_policy(&felix_policy::PolicyKey::global("web"));
        r.update(&s.flush()).unwrap();
        let report = r.apply();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert!(r.sets.backend_mut().sets.is_empty());
        assert!(!tw(&mut r).iter().any(|rule| rule.contains("cali-pi-")));
    }

    #[test]
    fn switching_backends_carries_the_chains_over() {
        let mut s = state();
        let mut r = reconciler();
        r.update(&s.flush()).unwrap();
        r.apply();
        let before = tw(&mut r);
        r.switch_backend(|_| FakeIptables::new()).unwrap();
        assert!(r.apply().is_ok());
        assert_eq!(
            r.retired.len(),
            0,
            "the old tables were emptied and dropped"
        );
        let after: Vec<String> = tw(&mut r);
        assert_eq!(before, after);
    }

    #[test]
    fn a_full_render_replaces_everything() {
        let mut s = state();
        let mut r = reconciler();
        r.set_full(&s.full()).unwrap();
        assert!(r.apply().is_ok());
        assert!(!tw(&mut r).is_empty());
        r.set_full(&[]).unwrap();
        assert!(r.apply().is_ok());
        assert!(tw(&mut r).is_empty());
        assert!(r.sets.backend_mut().sets.is_empty());
    }
}
