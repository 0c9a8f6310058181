//! The local endpoint index: this node's WorkloadEndpoints, their `cali*` interfaces and
//! addresses, indexed both ways so one endpoint update touches only its own routes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fabric_api::WorkloadEndpoint;
use ipnet::IpNet;

use crate::dataplane::addr::interface_name_rule;
use crate::dataplane::{IpFamily, Route};

/// One local endpoint as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalEndpoint {
    /// The host-side interface (`cali...`).
    pub interface: String,
    /// Its addresses as full-length prefixes.
    pub nets: Vec<IpNet>,
    /// The sandbox identity (container ID and MAC): a new value means the CNI plugin wired
    /// the pod again and its interface may be a new one under the same name.
    pub sandbox: (String, String),
}

impl LocalEndpoint {
    /// The endpoint if it is on `node` and usable; `Err` says why it is not usable.
    pub(crate) fn from_endpoint(
        key: &str,
        wep: &WorkloadEndpoint,
        node: &str,
    ) -> Option<Result<LocalEndpoint, String>> {
        if wep.spec.node != node {
            return None;
        }
        let interface = wep.spec.interface_name.clone();
        if let Some(rule) = interface_name_rule(&interface) {
            return Some(Err(format!(
                "{key}: spec.interfaceName {interface:?} is invalid: {rule}"
            )));
        }
        let mut nets = Vec::new();
        for (i, text) in wep.spec.ip_networks.iter().enumerate() {
            let addr = text
                .parse::<IpNet>()
                .map(|n| n.addr())
                .or_else(|_| text.parse());
            match addr {
                Ok(a) => nets.push(IpNet::from(a)),
                Err(_) => {
                    return Some(Err(format!(
                        "{key}: spec.ipNetworks[{i}] {text:?} is not an address or CIDR"
                    )));
                }
            }
        }
        nets.sort();
        nets.dedup();
        Some(Ok(LocalEndpoint {
            interface,
            nets,
            sandbox: (wep.spec.container_id.clone(), wep.spec.mac.clone()),
        }))
    }
}

/// This node's endpoints, by key and by address.
#[derive(Debug, Default, Clone)]
pub(crate) struct LocalEndpoints {
    by_key: HashMap<String, LocalEndpoint>,
    /// Address -> the keys of the endpoints claiming it (normally one).
    by_prefix: HashMap<IpNet, BTreeSet<String>>,
}

impl LocalEndpoints {
    /// Sets or removes one endpoint; returns the addresses whose routes may change, and
    /// whether an existing endpoint was replaced by a different one.
    pub(crate) fn set(&mut self, key: &str, endpoint: Option<LocalEndpoint>) -> (Vec<IpNet>, bool) {
        let old = match &endpoint {
            Some(e) => self.by_key.insert(key.to_string(), e.clone()),
            None => self.by_key.remove(key),
        };
        if old == endpoint {
            return (Vec::new(), false);
        }
        let replaced = old.is_some() && endpoint.is_some();
        let mut touched = Vec::new();
        if let Some(o) = &old {
            for n in &o.nets {
                if let Some(keys) = self.by_prefix.get_mut(n) {
                    keys.remove(key);
                    if keys.is_empty() {
                        self.by_prefix.remove(n);
                    }
                }
                touched.push(*n);
            }
        }
        if let Some(e) = &endpoint {
            for n in &e.nets {
                self.by_prefix
                    .entry(*n)
                    .or_default()
                    .insert(key.to_string());
                touched.push(*n);
            }
        }
        touched.sort();
        touched.dedup();
        (touched, replaced)
    }

    /// The workload route for `prefix`; with two endpoints claiming one address the first by
    /// key wins (a deterministic choice; the conflict is the CNI plugin's to fix).
    pub(crate) fn route(&self, prefix: &IpNet) -> Option<Route> {
        let key = self.by_prefix.get(prefix)?.iter().next()?;
        let e = self.by_key.get(key)?;
        Some(Route::workload(*prefix, e.interface.clone()))
    }

    /// How many local endpoints there are.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Each local interface with the families of its addresses (for sysctls).
    pub(crate) fn interfaces(&self) -> BTreeMap<String, (bool, bool)> {
        let mut out: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for e in self.by_key.values() {
            let entry = out.entry(e.interface.clone()).or_default();
            for n in &e.nets {
                match IpFamily::of_net(n) {
                    IpFamily::V4 => entry.0 = true,
                    IpFamily::V6 => entry.1 = true,
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_api::endpoint::WorkloadEndpointSpec;

    fn wep(node: &str, iface: &str, ips: &[&str]) -> WorkloadEndpoint {
        WorkloadEndpoint {
            spec: WorkloadEndpointSpec {
                node: node.into(),
                interface_name: iface.into(),
                ip_networks: ips.iter().map(|s| s.to_string()).collect(),
                ..WorkloadEndpointSpec::default()
            },
            ..WorkloadEndpoint::default()
        }
    }

    #[test]
    fn endpoints_of_other_nodes_are_not_local() {
        assert!(LocalEndpoint::from_endpoint("k", &wep("b", "cali1", &[]), "a").is_none());
    }

    #[test]
    fn a_bad_interface_or_address_is_reported_with_the_field() {
        let e = LocalEndpoint::from_endpoint("k", &wep("a", "cali with space", &[]), "a");
        assert!(e.unwrap().unwrap_err().contains("spec.interfaceName"));
        let e = LocalEndpoint::from_endpoint("k", &wep("a", "cali1", &["10.0.0.1", "x"]), "a");
        assert!(e.unwrap().unwrap_err().contains("spec.ipNetworks[1]"));
    }

    #[test]
    fn the_first_endpoint_by_key_wins_a_shared_address_and_the_other_takes_over_on_delete() {
        let mut eps = LocalEndpoints::default();
        let one = LocalEndpoint::from_endpoint("k2", &wep("a", "cali2", &["10.0.0.1/32"]), "a")
            .unwrap()
            .unwrap();
        let two = LocalEndpoint::from_endpoint("k1", &wep("a", "cali1", &["10.0.0.1"]), "a")
            .unwrap()
            .unwrap();
        eps.set("k2", Some(one));
        eps.set("k1", Some(two));
        let p: IpNet = "10.0.0.1/32".parse().unwrap();
        assert_eq!(eps.route(&p), Some(Route::workload(p, "cali1")));
        assert_eq!(eps.set("k1", None), (vec![p], false));
        assert_eq!(eps.route(&p), Some(Route::workload(p, "cali2")));
    }
}
