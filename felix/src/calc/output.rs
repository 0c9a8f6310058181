//! What the calc graph produces: the changes since the last flush (for the sequencer) and a
//! full snapshot of the desired dataplane (for tests and diagnostics).

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::settings::Settings;
use crate::dataplane::{DesiredLinks, NatPool, Route, SysctlSet, VtepNeighbour};

/// The complete desired dataplane of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDataplane {
    /// Every desired route, by destination.
    pub routes: BTreeMap<IpNet, Route>,
    /// The tunnel devices.
    pub links: DesiredLinks,
    /// Remote IPv4 VTEPs (neighbour + FDB entries on `vxlan.calico`), by tunnel address.
    pub vteps_v4: Vec<VtepNeighbour>,
    /// Remote IPv6 VTEPs on `vxlan-v6.calico`.
    pub vteps_v6: Vec<VtepNeighbour>,
    /// Node and workload-interface sysctls.
    pub sysctls: SysctlSet,
    /// IPv4 pools for natOutgoing, by CIDR.
    pub nat_v4: Vec<NatPool>,
    /// IPv6 pools for natOutgoing, by CIDR.
    pub nat_v6: Vec<NatPool>,
    /// The effective settings.
    pub settings: Settings,
}

/// What changed since the previous flush. `None` fields did not change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataplaneChanges {
    /// Route upserts (`Some`) and removals (`None`), by destination, sorted.
    pub routes: Vec<(IpNet, Option<Route>)>,
    /// The new tunnel devices.
    pub links: Option<DesiredLinks>,
    /// The new IPv4 VTEP list.
    pub vteps_v4: Option<Vec<VtepNeighbour>>,
    /// The new IPv6 VTEP list.
    pub vteps_v6: Option<Vec<VtepNeighbour>>,
    /// The new sysctls.
    pub sysctls: Option<SysctlSet>,
    /// The new IPv4 NAT pools.
    pub nat_v4: Option<Vec<NatPool>>,
    /// The new IPv6 NAT pools.
    pub nat_v6: Option<Vec<NatPool>>,
    /// The new settings.
    pub settings: Option<Settings>,
    /// Local endpoints were added, changed or removed.
    pub endpoints_changed: bool,
    /// An existing local endpoint was replaced (updated, or deleted and re-added): its
    /// interface may have been recreated under the same name, so cached interface indexes
    /// are suspect.
    pub endpoints_replaced: bool,
    /// Policy: filter chains and ipsets that changed.
    pub policy: Option<felix_policy::Changes>,
}

impl DataplaneChanges {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
            && self.links.is_none()
            && self.vteps_v4.is_none()
            && self.vteps_v6.is_none()
            && self.sysctls.is_none()
            && self.nat_v4.is_none()
            && self.nat_v6.is_none()
            && self.settings.is_none()
            && !self.endpoints_changed
            && self
                .policy
                .as_ref()
                .is_none_or(felix_policy::Changes::is_empty)
            && !self.endpoints_replaced
    }

    /// Folds `later` into these changes (later values win), for a sequencer that could not
    /// apply these yet.
    pub fn merge(&mut self, later: DataplaneChanges) {
        if !later.routes.is_empty() {
            let mut map: BTreeMap<IpNet, Option<Route>> =
                std::mem::take(&mut self.routes).into_iter().collect();
            map.extend(later.routes);
            self.routes = map.into_iter().collect();
        }
        macro_rules! later_wins {
            ($($f:ident),*) => { $( if later.$f.is_some() { self.$f = later.$f; } )* };
        }
        later_wins!(links, vteps_v4, vteps_v6, sysctls, nat_v4, nat_v6, settings);
        match (&mut self.policy, later.policy) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
        self.endpoints_changed |= later.endpoints_changed;
        self.endpoints_replaced |= later.endpoints_replaced;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_changes_keep_the_latest_value_per_destination() {
        let p: IpNet = "10.0.0.1/32".parse().unwrap();
        let q: IpNet = "10.0.0.2/32".parse().unwrap();
        let mut a = DataplaneChanges {
            routes: vec![(p, Some(Route::workload(p, "cali1"))), (q, None)],
            ..DataplaneChanges::default()
        };
        a.merge(DataplaneChanges {
            routes: vec![(p, None)],
            endpoints_changed: true,
            ..DataplaneChanges::default()
        });
        assert_eq!(a.routes, vec![(p, None), (q, None)]);
        assert!(a.endpoints_changed);
        assert!(!a.is_empty());
    }
}
