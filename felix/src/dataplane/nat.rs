//! NAT for `natOutgoing` pools: `POSTROUTING -> cali-POSTROUTING -> cali-nat-outgoing`, which
//! masquerades traffic from a masquerading pool to anywhere outside all pools, with the pools in
//! the ipsets `cali40masq-ipam-pools` and `cali40all-ipam-pools` (calico.md §3.4).

use std::net::IpAddr;

use ipnet::IpNet;

use super::Reconciler;
use super::addr::{IpFamily, check_prefix};
use super::iptables::ipsets::{IpSetScope, IpSetSpec, IpSetType, IpSets, IpsetBackend};
use super::iptables::{Chain, IptablesBackend, Rule, Table, TableConfig};
use super::status::{ApplyReport, Health, InvalidInput};

/// The set of every pool.
pub const ALL_POOLS_SET: &str = "all-ipam-pools";
/// The set of the pools with `natOutgoing: true`.
pub const MASQ_POOLS_SET: &str = "masq-ipam-pools";
/// Our chain jumped to from `POSTROUTING`.
pub const POSTROUTING_CHAIN: &str = "cali-POSTROUTING";
/// The chain holding the masquerade rule.
pub const NAT_OUTGOING_CHAIN: &str = "cali-nat-outgoing";

/// A pool as NAT sees it (disabled pools still count as pools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatPool {
    /// The pool's CIDR.
    pub cidr: IpNet,
    /// `natOutgoing`.
    pub nat_outgoing: bool,
}

/// NAT options (FelixConfiguration `natOutgoingAddress`, iptables `--random-fully`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// The family this reconciler handles.
    pub family: IpFamily,
    /// `SNAT --to-source` this address instead of `MASQUERADE`.
    pub nat_outgoing_address: Option<IpAddr>,
    /// Add `--random-fully` to the NAT target.
    pub random_fully: bool,
}

impl NatConfig {
    /// Plain `MASQUERADE` for `family`.
    pub fn masquerade(family: IpFamily) -> NatConfig {
        NatConfig {
            family,
            nat_outgoing_address: None,
            random_fully: false,
        }
    }
}

/// The chains and hook for natOutgoing (pure; a policy-era `nat` table adds these to its own).
pub fn nat_outgoing_chains(config: &NatConfig, any_masquerading: bool) -> (Vec<Chain>, Vec<Chain>) {
    let d = config.family.digit();
    let mut rules = Vec::new();
    if any_masquerading {
        let target = match config.nat_outgoing_address {
            Some(a) => format!("-j SNAT --to-source {a}"),
            None => "-j MASQUERADE".to_string(),
        };
        let random = if config.random_fully {
            " --random-fully"
        } else {
            ""
        };
        rules.push(Rule::new(format!(
            "-m set --match-set cali{d}0{MASQ_POOLS_SET} src -m set ! --match-set cali{d}0{ALL_POOLS_SET} dst {target}{random}"
        )));
    }
    let chains = vec![
        Chain::new(
            POSTROUTING_CHAIN,
            vec![Rule::new(format!("-j {NAT_OUTGOING_CHAIN}"))],
        ),
        Chain::new(NAT_OUTGOING_CHAIN, rules),
    ];
    let hooks = vec![Chain::new(
        "POSTROUTING",
        vec![Rule::new(format!("-j {POSTROUTING_CHAIN}"))],
    )];
    (chains, hooks)
}

/// Keeps the natOutgoing ipsets and chains: sets are updated first, then the `nat` table, then
/// stale sets are destroyed.
#[derive(Debug)]
pub struct NatReconciler<I: IptablesBackend, S: IpsetBackend> {
    table: Table<I>,
    sets: IpSets<S>,
    config: NatConfig,
    health: Health,
}

impl<I: IptablesBackend, S: IpsetBackend> NatReconciler<I, S> {
    /// A reconciler writing through `iptables` and `ipset`.
    pub fn new(
        iptables: I,
        ipset: S,
        config: NatConfig,
    ) -> Result<NatReconciler<I, S>, InvalidInput> {
        if let Some(a) = config.nat_outgoing_address
            && IpFamily::of(a) != config.family
        {
            return Err(InvalidInput::new(
                "nat.nat_outgoing_address",
                a,
                format!("the address must be {}", config.family),
            ));
        }
        let table = Table::new(iptables, TableConfig::calico("nat", config.family))?;
        let mut r = NatReconciler {
            table,
            // Policy's selector, named-port and CIDR sets belong to the policy reconciler.
            sets: IpSets::with_scope(
                ipset,
                IpSetScope::except(&felix_policy::names::IPSET_ID_PREFIXES),
            ),
            config,
            health: Health::healthy(),
        };
        r.set_desired(&[])?;
        Ok(r)
    }

    /// Sets the pools. Rejects (changing nothing) a pool of another family or with host bits.
    /// No I/O.
    pub fn set_desired(&mut self, pools: &[NatPool]) -> Result<(), InvalidInput> {
        for p in pools {
            let path = format!("pools[{}].cidr", p.cidr);
            check_prefix(&p.cidr).map_err(|rule| InvalidInput::new(&path, p.cidr, rule))?;
            if IpFamily::of_net(&p.cidr) != self.config.family {
                return Err(InvalidInput::new(
                    path,
                    p.cidr,
                    format!("this NAT reconciler handles {} pools", self.config.family),
                ));
            }
        }
        let family = self.config.family;
        let all = IpSetSpec::new(
            ALL_POOLS_SET,
            family,
            IpSetType::HashNet,
            pools.iter().map(|p| p.cidr),
        );
        let masq = IpSetSpec::new(
            MASQ_POOLS_SET,
            family,
            IpSetType::HashNet,
            pools.iter().filter(|p| p.nat_outgoing).map(|p| p.cidr),
        );
        let any = !masq.members.is_empty();
        let (chains, hooks) = nat_outgoing_chains(&self.config, any);
        self.sets.set_desired(vec![all, masq])?;
        self.table.set_chains(chains)?;
        self.table.set_hooks(hooks)?;
        Ok(())
    }

    /// The `nat` table (tests use it to reach a fake backend).
    pub fn table_mut(&mut self) -> &mut Table<I> {
        &mut self.table
    }

    /// The ipsets (tests use them to reach a fake backend).
    pub fn sets_mut(&mut self) -> &mut IpSets<S> {
        &mut self.sets
    }
}

impl<I: IptablesBackend, S: IpsetBackend> Reconciler for NatReconciler<I, S> {
    fn name(&self) -> &'static str {
        "nat"
    }

    fn apply(&mut self) -> ApplyReport {
        let mut report = self.sets.apply_updates();
        report.merge(self.table.apply());
        report.merge(self.sets.apply_deletions());
        self.health = Health::from_reasons(report.error_lines());
        report
    }

    fn resync(&mut self) -> ApplyReport {
        let mut report = self.sets.resync_updates();
        report.merge(self.table.resync());
        report.merge(self.sets.apply_deletions());
        self.health = Health::from_reasons(report.error_lines());
        report
    }

    fn set_in_sync(&mut self, in_sync: bool) {
        self.sets.set_in_sync(in_sync);
        self.table.set_in_sync(in_sync);
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

    fn pool(cidr: &str, nat: bool) -> NatPool {
        NatPool {
            cidr: cidr.parse().unwrap(),
            nat_outgoing: nat,
        }
    }

    fn reconciler() -> NatReconciler<FakeIptables, FakeIpset> {
        NatReconciler::new(
            FakeIptables::new(),
            FakeIpset::new(),
            NatConfig::masquerade(IpFamily::V4),
        )
        .unwrap()
    }

    #[test]
    fn masquerade_is_programmed_for_nat_outgoing_pools() {
        let mut r = reconciler();
        r.set_desired(&[pool("10.65.0.0/16", true), pool("10.66.0.0/16", false)])
            .unwrap();
        let report = r.apply();
        assert!(report.is_ok(), "{:?}", report.errors);
        let sets = &r.sets_mut().backend_mut().sets;
        assert_eq!(sets["cali40all-ipam-pools"].members.len(), 2);
        assert_eq!(sets["cali40masq-ipam-pools"].members.len(), 1);
        let b = r.table_mut().backend_mut();
        let rule = &b.rules("nat", "cali-nat-outgoing")[0];
        assert!(rule.contains("--match-set cali40masq-ipam-pools src -m set ! --match-set cali40all-ipam-pools dst -j MASQUERADE"), "{rule}");
        assert!(b.rules("nat", "POSTROUTING")[0].ends_with("-j cali-POSTROUTING"));
        assert!(b.rules("nat", "cali-POSTROUTING")[0].ends_with("-j cali-nat-outgoing"));
    }

    #[test]
    fn without_masquerading_pools_the_chain_is_empty_but_present() {
        let mut r = reconciler();
        r.set_desired(&[pool("10.65.0.0/16", false)]).unwrap();
        assert!(r.apply().is_ok());
        let b = r.table_mut().backend_mut();
        assert!(b.table("nat").chain("cali-nat-outgoing").is_some());
        assert!(b.rules("nat", "cali-nat-outgoing").is_empty());
    }

    #[test]
    fn the_sets_exist_before_the_rule_that_uses_them() {
        let mut r = reconciler();
        r.set_desired(&[pool("10.65.0.0/16", true)]).unwrap();
        // If the table were written first the fake would still accept it, so check order by
        // failing the ipset write: then no rule may have been written.
        r.sets_mut().backend_mut().fail_next_restore("busy");
        let report = r.apply();
        assert!(!report.is_ok());
        assert!(r.apply().is_ok());
        assert_eq!(r.sets_mut().backend_mut().restores.len(), 2);
    }

    #[test]
    fn snat_to_an_address_and_random_fully_are_supported() {
        let config = NatConfig {
            nat_outgoing_address: Some("192.0.2.1".parse().unwrap()),
            random_fully: true,
            ..NatConfig::masquerade(IpFamily::V4)
        };
        let (chains, _) = nat_outgoing_chains(&config, true);
        assert!(
            chains[1].rules[0]
                .spec
                .ends_with("-j SNAT --to-source 192.0.2.1 --random-fully")
        );
        let bad = NatConfig {
            nat_outgoing_address: Some("fd00::1".parse().unwrap()),
            ..NatConfig::masquerade(IpFamily::V4)
        };
        assert!(NatReconciler::new(FakeIptables::new(), FakeIpset::new(), bad).is_err());
    }

    #[test]
    fn a_pool_of_the_wrong_family_is_rejected_and_changes_nothing() {
        let mut r = reconciler();
        r.set_desired(&[pool("10.65.0.0/16", true)]).unwrap();
        let err = r.set_desired(&[pool("fd00:65::/64", true)]).unwrap_err();
        assert!(err.to_string().contains("IPv4 pools"), "{err}");
        r.apply();
        let sets = &r.sets_mut().backend_mut().sets;
        assert!(
            sets["cali40masq-ipam-pools"]
                .members
                .contains("10.65.0.0/16")
        );
    }
}
