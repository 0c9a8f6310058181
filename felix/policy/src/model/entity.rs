//! Labelled entities whose addresses fill selector ipsets: workload endpoints (and, when
//! local, their interfaces), host endpoints, network sets and global network sets.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use fabric_api::{GlobalNetworkSet, HostEndpoint, NetworkSet, WorkloadEndpoint};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::PolicyError;
use crate::types::PortProtocol;

/// Label Calico sets on namespaced entities: their namespace.
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
/// Label Calico sets on workload endpoints: their orchestrator.
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";
/// Label Calico sets on Kubernetes workload endpoints: their service account.
pub const LABEL_SERVICE_ACCOUNT: &str = "projectcalico.org/serviceaccount";

/// Which entity: kind, namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKey {
    /// A `WorkloadEndpoint`.
    Workload {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A `HostEndpoint`.
    Host {
        /// Its name.
        name: String,
    },
    /// A `NetworkSet`.
    NetworkSet {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A `GlobalNetworkSet`.
    GlobalNetworkSet {
        /// Its name.
        name: String,
    },
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityKey::Workload { namespace, name } => {
                write!(f, "WorkloadEndpoint {namespace}/{name}")
            }
            EntityKey::Host { name } => write!(f, "HostEndpoint {name}"),
            EntityKey::NetworkSet { namespace, name } => {
                write!(f, "NetworkSet {namespace}/{name}")
            }
            EntityKey::GlobalNetworkSet { name } => write!(f, "GlobalNetworkSet {name}"),
        }
    }
}

/// A named port of an endpoint (for named-port matches).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamedPort {
    /// The port's name.
    pub name: String,
    /// Its protocol.
    pub protocol: PortProtocol,
    /// Its number.
    pub port: u16,
}

/// Where a workload endpoint lives and which host interface is its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadPlacement {
    /// `spec.node`.
    pub node: String,
    /// `spec.interfaceName` (the host side of the veth, `cali...`).
    pub interface: String,
}

/// An entity as the policy engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// Which entity.
    pub key: EntityKey,
    /// Its own labels (with the labels Calico implies: namespace, orchestrator, service
    /// account); profiles add theirs underneath.
    pub labels: BTreeMap<String, String>,
    /// Profiles whose `labelsToApply` it inherits (earlier ones win) and, for workloads,
    /// whose rules apply after policy.
    pub profiles: Vec<String>,
    /// Its addresses (masked prefixes; host addresses as /32 and /128; a /0 as two /1s).
    pub nets: Vec<IpNet>,
    /// Its named ports.
    pub ports: Vec<NamedPort>,
    /// For workload endpoints: node and interface.
    pub workload: Option<WorkloadPlacement>,
}

fn bad(key: &EntityKey, field: &str, value: &str, rule: &str) -> PolicyError {
    PolicyError::new(format!("{key}: {field}"), value, rule)
}

/// Parses a CIDR or a bare address into masked prefixes (a /0 becomes two /1s, which ipset
/// `hash:net` can hold).
pub fn parse_net(text: &str) -> Result<Vec<IpNet>, String> {
    let net = match text.parse::<IpNet>() {
        Ok(n) => n.trunc(),
        Err(_) => match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => IpNet::V4(Ipv4Net::from(a)),
            Ok(IpAddr::V6(a)) => IpNet::V6(Ipv6Net::from(a)),
            Err(_) => return Err("is not an IP address or CIDR".to_string()),
        },
    };
    Ok(split_zero(net))
}

/// A /0 as its two /1 halves; anything else unchanged.
pub fn split_zero(net: IpNet) -> Vec<IpNet> {
    if net.prefix_len() != 0 {
        return vec![net];
    }
    match net.subnets(1) {
        Ok(halves) => halves.collect(),
        Err(_) => vec![net],
    }
}

fn parse_nets(key: &EntityKey, field: &str, texts: &[String]) -> Result<Vec<IpNet>, PolicyError> {
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let nets = parse_net(t).map_err(|rule| bad(key, &format!("{field}[{i}]"), t, &rule))?;
        out.extend(nets);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn port_protocol(
    key: &EntityKey,
    field: &str,
    p: fabric_api::Protocol,
) -> Result<PortProtocol, PolicyError> {
    PortProtocol::from_number(p.number())
        .ok_or_else(|| bad(key, field, &p.to_string(), "is not TCP, UDP or SCTP"))
}

fn namespace_of(key_kind: &str, ns: Option<&str>, name: &str) -> Result<String, PolicyError> {
    match ns {
        Some(ns) if !ns.is_empty() => Ok(ns.to_string()),
        _ => Err(PolicyError::new(
            format!("{key_kind} {name}: metadata.namespace"),
            "",
            "is required",
        )),
    }
}

impl Entity {
    /// A workload endpoint: its labels plus `projectcalico.org/namespace`,
    /// `projectcalico.org/orchestrator` and (when set) `projectcalico.org/serviceaccount`, as
    /// Calico stores them.
    pub fn from_workload_endpoint(wep: &WorkloadEndpoint) -> Result<Entity, PolicyError> {
        let name = wep.metadata.name_str().to_string();
        let namespace = namespace_of("WorkloadEndpoint", wep.metadata.namespace.as_deref(), &name)?;
        let key = EntityKey::Workload {
            namespace: namespace.clone(),
            name,
        };
        let spec = &wep.spec;
        let mut labels = wep.metadata.labels.clone();
        labels.insert(LABEL_NAMESPACE.to_string(), namespace);
        if !spec.orchestrator.is_empty() {
            labels.insert(LABEL_ORCHESTRATOR.to_string(), spec.orchestrator.clone());
        }
        if !spec.service_account_name.is_empty() {
            labels.insert(
                LABEL_SERVICE_ACCOUNT.to_string(),
                spec.service_account_name.clone(),
            );
        }
        let nets = parse_nets(&key, "spec.ipNetworks", &spec.ip_networks)?;
        let mut ports = Vec::new();
        for (i, p) in spec.ports.iter().enumerate() {
            if p.name.is_empty() {
                continue;
            }
            let protocol = port_protocol(&key, &format!("spec.ports[{i}].protocol"), p.protocol)?;
            ports.push(NamedPort {
                name: p.name.clone(),
                protocol,
                port: p.port,
            });
        }
        if spec.interface_name.is_empty() {
            return Err(bad(&key, "spec.interfaceName", "", "is required"));
        }
        Ok(Entity {
            workload: Some(WorkloadPlacement {
                node: spec.node.clone(),
                interface: spec.interface_name.clone(),
            }),
            key,
            labels,
            profiles: spec.profiles.clone(),
            nets,
            ports,
        })
    }

    /// A host endpoint: its labels, its `expectedIPs` and its named ports (its interface is
    /// not policed by this renderer).
    pub fn from_host_endpoint(hep: &HostEndpoint) -> Result<Entity, PolicyError> {
        let key = EntityKey::Host {
            name: hep.metadata.name_str().to_string(),
        };
        let nets = parse_nets(&key, "spec.expectedIPs", &hep.spec.expected_ips)?;
        let mut ports = Vec::new();
        for (i, p) in hep.spec.ports.iter().enumerate() {
            let protocol = port_protocol(&key, &format!("spec.ports[{i}].protocol"), p.protocol)?;
            ports.push(NamedPort {
                name: p.name.clone(),
                protocol,
                port: p.port,
            });
        }
        Ok(Entity {
            key,
            labels: hep.metadata.labels.clone(),
            profiles: hep.spec.profiles.clone(),
            nets,
            ports,
            workload: None,
        })
    }

    /// A namespaced network set: its labels plus `projectcalico.org/namespace`, inheriting
    /// the namespace's labels through the `kns.<namespace>` profile (as Calico does).
    pub fn from_network_set(set: &NetworkSet) -> Result<Entity, PolicyError> {
        let name = set.metadata.name_str().to_string();
        let namespace = namespace_of("NetworkSet", set.metadata.namespace.as_deref(), &name)?;
        let key = EntityKey::NetworkSet {
            namespace: namespace.clone(),
            name,
        };
        let nets = parse_nets(&key, "spec.nets", &set.spec.nets)?;
        let mut labels = set.metadata.labels.clone();
        labels.insert(LABEL_NAMESPACE.to_string(), namespace.clone());
        Ok(Entity {
            key,
            labels,
            profiles: vec![format!("{}{namespace}", crate::NAMESPACE_PROFILE_PREFIX)],
            nets,
            ports: Vec::new(),
            workload: None,
        })
    }

    /// A global network set: its labels and nets.
    pub fn from_global_network_set(set: &GlobalNetworkSet) -> Result<Entity, PolicyError> {
        let key = EntityKey::GlobalNetworkSet {
            name: set.metadata.name_str().to_string(),
        };
        let nets = parse_nets(&key, "spec.nets", &set.spec.nets)?;
        Ok(Entity {
            key,
            labels: set.metadata.labels.clone(),
            profiles: Vec::new(),
            nets,
            ports: Vec::new(),
            workload: None,
        })
    }

    /// Its interface, if it is a workload endpoint on `node`.
    pub fn local_interface(&self, node: &str) -> Option<&str> {
        self.workload
            .as_ref()
            .filter(|w| w.node == node)
            .map(|w| w.interface.as_str())
    }
}

/// Own labels over profile labels: the entity's own label wins, then the first profile that
/// has the label.
pub fn effective_labels<'a>(
    own: &BTreeMap<String, String>,
    profile_labels: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for labels in profile_labels {
        for (k, v) in labels {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    for (k, v) in own {
        out.insert(k.clone(), v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_prefix_is_split_into_two_halves_and_addresses_become_host_prefixes() {
        assert_eq!(
            parse_net("0.0.0.0/0").unwrap(),
            vec![
                "0.0.0.0/1".parse::<IpNet>().unwrap(),
                "128.0.0.0/1".parse().unwrap()
            ]
        );
        assert_eq!(
            parse_net("10.1.2.3").unwrap(),
            vec!["10.1.2.3/32".parse::<IpNet>().unwrap()]
        );
        assert_eq!(
            parse_net("10.1.2.3/8").unwrap(),
            vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]
        );
        assert!(parse_net("nope").is_err());
    }

    #[test]
    fn own_labels_win_over_profiles_and_earlier_profiles_over_later_ones() {
        let own: BTreeMap<String, String> = [("a".into(), "own".into())].into();
        let p1: BTreeMap<String, String> =
            [("a".into(), "p1".into()), ("b".into(), "p1".into())].into();
        let p2: BTreeMap<String, String> =
            [("b".into(), "p2".into()), ("c".into(), "p2".into())].into();
        let eff = effective_labels(&own, [&p1, &p2].into_iter());
        assert_eq!(eff["a"], "own");
        assert_eq!(eff["b"], "p1");
        assert_eq!(eff["c"], "p2");
    }
}
