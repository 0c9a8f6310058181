//! Which pools a request may use: the IPAM inputs read in one snapshot (pools, reservations,
//! configuration), and Calico's selection rules: IP version, `disabled`, `allowedUses`,
//! `assignmentMode` (manual pools only when asked for), the caller's explicit pool list (names
//! or CIDRs), `nodeSelector` over the Node's labels and `namespaceSelector`.

use std::collections::BTreeMap;

use fabric_api::ippool::{AssignmentMode, IPPoolAllowedUse};
use fabric_api::selector::Selector;
use fabric_api::{AnyResource, IPAMConfiguration, IPPool, IPReservation};
use fabric_datastore::client::decode as decode_resource;
use fabric_datastore::keys::RESOURCES_PREFIX;
use fabric_datastore::{Backend, KeyValue};
use ipnet::IpNet;

use crate::blocks::Reservations;
use crate::error::IpamError;
use crate::store;
use crate::types::{IntendedUse, IpamConfig};

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// 4 or 6.
    pub fn version(self) -> u8 {
        match self {
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }

    /// The family of a network.
    pub fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    /// `/calico/ipam/v2/assignment/ipv4/` (or `ipv6/`): the prefix of this family's blocks.
    pub fn block_prefix(self) -> String {
        let fam = match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        };
        format!("{}{fam}/", fabric_datastore::keys::IPAM_BLOCK_PREFIX)
    }
}

/// The v3 resource keys IPAM reads for every request: `ippools/`, `ipreservations/` and
/// `ipamconfigurations/` all start with this, so one list reads them in one snapshot.
pub fn ipam_resources_prefix() -> String {
    format!("{RESOURCES_PREFIX}ip")
}

/// The IPAM inputs of one request, read together.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Every pool, by name.
    pub pools: Vec<IPPool>,
    /// Every reserved address.
    pub reservations: Reservations,
    /// The configuration in effect.
    pub config: IpamConfig,
}

/// The configuration in effect for a stored `IPAMConfiguration` (Calico's defaults if none).
pub fn effective_config(resource: Option<&IPAMConfiguration>) -> IpamConfig {
    match resource {
        None => IpamConfig::default(),
        Some(r) => IpamConfig {
            strict_affinity: r.spec.effective_strict_affinity(),
            auto_allocate_blocks: r.spec.effective_auto_allocate_blocks(),
            max_blocks_per_host: r.spec.effective_max_blocks_per_host(),
            ip_cooldown_seconds: r.spec.effective_ip_cooldown_seconds(),
        },
    }
}

/// Reads pools, reservations and the configuration in one list request.
pub async fn load_env(backend: &dyn Backend) -> Result<Env, IpamError> {
    let items = store::list(backend, &ipam_resources_prefix()).await?;
    env_from(items.iter())
}

/// The inputs held by the given keys (other keys are ignored).
pub fn env_from<'a>(items: impl Iterator<Item = &'a KeyValue>) -> Result<Env, IpamError> {
    let mut pools = Vec::new();
    let mut reservations: Vec<IPReservation> = Vec::new();
    let mut config = None;
    for kv in items {
        let Some(decoded) = decode_resource(kv) else {
            continue;
        };
        match decoded? {
            AnyResource::IPPool(p) => pools.push(p),
            AnyResource::IPReservation(r) => reservations.push(r),
            AnyResource::IPAMConfiguration(c)
                if c.metadata.name_str() == fabric_api::ipam::IPAM_CONFIG_NAME =>
            {
                config = Some(c);
            }
            _ => {}
        }
    }
    pools.sort_by(|a, b| a.metadata.name_str().cmp(b.metadata.name_str()));
    Ok(Env {
        pools,
        reservations: Reservations::from_resources(&reservations),
        config: effective_config(config.as_ref()),
    })
}

/// A pool a request may allocate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolChoice {
    /// The pool's name.
    pub name: String,
    /// The pool's CIDR.
    pub cidr: IpNet,
    /// The prefix length of its blocks.
    pub block_prefix: u8,
}

/// The pool's CIDR as a network, if it parses.
pub fn pool_net(pool: &IPPool) -> Option<IpNet> {
    let c = pool.spec.parsed_cidr()?;
    IpNet::new(c.addr, c.prefix_len).ok().map(|n| n.trunc())
}

/// The pool's block prefix length, clamped into its family's range.
pub fn pool_block_prefix(pool: &IPPool, net: &IpNet) -> u8 {
    let bs = pool.spec.effective_block_size();
    u8::try_from(bs)
        .unwrap_or(net.max_prefix_len())
        .clamp(net.prefix_len(), net.max_prefix_len())
}

/// What a selection is for.
#[derive(Debug, Clone, Copy)]
pub struct PoolRequest<'a> {
    /// The family wanted.
    pub family: Family,
    /// Pools the caller named (names or CIDRs); empty for automatic selection.
    pub requested: &'a [String],
    /// Workload or Tunnel.
    pub intended_use: IntendedUse,
    /// The requesting node.
    pub node: &'a str,
    /// The pod's namespace labels, when the caller has them.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
}

fn allowed(use_: IntendedUse) -> IPPoolAllowedUse {
    match use_ {
        IntendedUse::Workload => IPPoolAllowedUse::Workload,
        IntendedUse::Tunnel => IPPoolAllowedUse::Tunnel,
    }
}

/// Whether `entry` (a name or a CIDR) names `pool`.
fn names_pool(entry: &str, pool: &IPPool, net: Option<&IpNet>) -> bool {
    entry == pool.metadata.name_str()
        || entry
            .parse::<IpNet>()
            .ok()
            .is_some_and(|e| Some(&e.trunc()) == net && e.trunc() == e)
}

/// The pools that pass every rule except the nodeSelector, and why the others fail. An
/// explicit request naming a pool that does not exist is an error of its own.
fn candidates<'p>(
    pools: &'p [IPPool],
    req: &PoolRequest<'_>,
    reasons: &mut Vec<String>,
) -> Result<Vec<(&'p IPPool, IpNet)>, IpamError> {
    for entry in req.requested {
        if !pools
            .iter()
            .any(|p| names_pool(entry, p, pool_net(p).as_ref()))
        {
            return Err(IpamError::invalid(
                format!("pools_v{}", req.family.version()),
                entry.clone(),
                "names no IP pool (give a pool name or its exact CIDR)",
            ));
        }
    }
    let mut out = Vec::new();
    for pool in pools {
        let name = pool.metadata.name_str();
        let Some(net) = pool_net(pool) else {
            reasons.push(format!(
                "pool {name}: cidr {:?} does not parse",
                pool.spec.cidr
            ));
            continue;
        };
        let requested = req
            .requested
            .iter()
            .any(|e| names_pool(e, pool, Some(&net)));
        if !req.requested.is_empty() && !requested {
            continue;
        }
        let label = format!("pool {name} ({net})");
        if Family::of(&net) != req.family {
            if requested {
                reasons.push(format!(
                    "{label}: is IPv{}, not IPv{}",
                    Family::of(&net).version(),
                    req.family.version()
                ));
            }
            continue;
        }
        if pool.spec.disabled {
            reasons.push(format!("{label}: disabled"));
            continue;
        }
        let uses = pool.spec.effective_allowed_uses();
        if !uses.contains(&allowed(req.intended_use)) {
            reasons.push(format!(
                "{label}: allowedUses {uses:?} does not include {}",
                req.intended_use
            ));
            continue;
        }
        if pool.spec.assignment_mode == Some(AssignmentMode::Manual) && !requested {
            reasons.push(format!(
                "{label}: assignmentMode Manual (used only when requested by name or CIDR)"
            ));
            continue;
        }
        if let Some(ns_labels) = req.namespace_labels
            && !pool.spec.namespace_selector.is_empty()
        {
            match Selector::parse(&pool.spec.namespace_selector) {
                Ok(sel) if sel.matches(ns_labels) => {}
                Ok(_) => {
                    reasons.push(format!(
                        "{label}: namespaceSelector {:?} does not select the pod's namespace",
                        pool.spec.namespace_selector
                    ));
                    continue;
                }
                Err(e) => {
                    reasons.push(format!(
                        "{label}: namespaceSelector {:?} does not parse: {e}",
                        pool.spec.namespace_selector
                    ));
                    continue;
                }
            }
        }
        out.push((pool, net));
    }
    Ok(out)
}

/// The name of the first candidate pool whose nodeSelector needs the Node's labels (not
/// `all()`), if any: only then must the caller read the Node.
pub fn needs_node_labels(pools: &[IPPool], req: &PoolRequest<'_>) -> Option<String> {
    let mut reasons = Vec::new();
    let cands = candidates(pools, req, &mut reasons).ok()?;
    cands
        .into_iter()
        .find(|(p, _)| {
            Selector::parse(p.spec.effective_node_selector()).map_or(true, |s| !s.is_all())
        })
        .map(|(p, _)| p.metadata.name_str().to_string())
}

/// The pools the request may use, in name order. `node_labels` may be `None` only when
/// [`needs_node_labels`] said so. An empty answer is [`IpamError::NoPool`] with every
/// excluded pool's reason.
pub fn select_pools(
    pools: &[IPPool],
    req: &PoolRequest<'_>,
    node_labels: Option<&BTreeMap<String, String>>,
) -> Result<Vec<PoolChoice>, IpamError> {
    let mut reasons = Vec::new();
    let empty = BTreeMap::new();
    let labels = node_labels.unwrap_or(&empty);
    let mut out = Vec::new();
    for (pool, net) in candidates(pools, req, &mut reasons)? {
        let name = pool.metadata.name_str();
        let text = pool.spec.effective_node_selector();
        match Selector::parse(text) {
            Ok(sel) if sel.matches(labels) => {}
            Ok(_) => {
                reasons.push(format!(
                    "pool {name} ({net}): nodeSelector {text:?} does not select node {}",
                    req.node
                ));
                continue;
            }
            Err(e) => {
                reasons.push(format!(
                    "pool {name} ({net}): nodeSelector {text:?} does not parse: {e}"
                ));
                continue;
            }
        }
        out.push(PoolChoice {
            name: name.to_string(),
            cidr: net,
            block_prefix: pool_block_prefix(pool, &net),
        });
    }
    if out.is_empty() {
        if reasons.is_empty() {
            reasons.push(format!("no IPv{} pools exist", req.family.version()));
        }
        return Err(IpamError::NoPool {
            version: req.family.version(),
            node: req.node.to_string(),
            intended_use: req.intended_use.to_string(),
            reasons,
        });
    }
    Ok(out)
}

/// The enabled pool containing `ip`, if any.
pub fn pool_for_ip(pools: &[IPPool], ip: std::net::IpAddr) -> Option<PoolChoice> {
    pools.iter().filter(|p| !p.spec.disabled).find_map(|p| {
        let net = pool_net(p)?;
        net.contains(&ip).then(|| PoolChoice {
            name: p.metadata.name_str().to_string(),
            cidr: net,
            block_prefix: pool_block_prefix(p, &net),
        })
    })
}

/// The block of `prefix` length containing `ip`.
pub fn block_of(ip: std::net::IpAddr, prefix: u8) -> IpNet {
    IpNet::new(ip, prefix)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(ip))
}

#[cfg(test)]
mod tests {
    use fabric_api::ObjectMeta;
    use fabric_api::ippool::IPPoolSpec;

    use super::*;

    fn pool(name: &str, cidr: &str) -> IPPool {
        IPPool {
            metadata: ObjectMeta::named(name),
            spec: IPPoolSpec {
                cidr: cidr.into(),
                ..IPPoolSpec::default()
            },
            status: None,
        }
    }

    fn req<'a>(family: Family, requested: &'a [String], use_: IntendedUse) -> PoolRequest<'a> {
        PoolRequest {
            family,
            requested,
            intended_use: use_,
            node: "n1",
            namespace_labels: None,
        }
    }

    #[test]
    fn the_resources_prefix_covers_exactly_the_ipam_kinds() {
        let prefix = ipam_resources_prefix();
        let covered: Vec<_> = fabric_api::Kind::ALL
            .into_iter()
            .filter(|k| {
                fabric_datastore::client::kind_prefix(*k, None).starts_with(prefix.as_str())
            })
            .collect();
        assert_eq!(
            covered,
            vec![
                fabric_api::Kind::IPPool,
                fabric_api::Kind::IPReservation,
                fabric_api::Kind::IPAMConfiguration
            ]
        );
    }

    #[test]
    fn pools_are_chosen_by_version_disabled_use_and_mode() {
        let mut disabled = pool("b-disabled", "10.1.0.0/16");
        disabled.spec.disabled = true;
        let mut tunnel_only = pool("c-tunnel", "10.2.0.0/16");
        tunnel_only.spec.allowed_uses = vec![IPPoolAllowedUse::Tunnel];
        let mut manual = pool("d-manual", "10.3.0.0/16");
        manual.spec.assignment_mode = Some(AssignmentMode::Manual);
        let pools = vec![
            pool("a-v4", "10.0.0.0/16"),
            disabled,
            tunnel_only,
            manual,
            pool("e-v6", "fd00::/48"),
        ];
        let names = |r: &PoolRequest<'_>| -> Vec<String> {
            select_pools(&pools, r, None)
                .unwrap()
                .into_iter()
                .map(|p| p.name)
                .collect()
        };
        assert_eq!(
            names(&req(Family::V4, &[], IntendedUse::Workload)),
            ["a-v4"]
        );
        assert_eq!(
            names(&req(Family::V4, &[], IntendedUse::Tunnel)),
            ["a-v4", "c-tunnel"]
        );
        assert_eq!(
            names(&req(Family::V6, &[], IntendedUse::Workload)),
            ["e-v6"]
        );
        let asked = vec!["d-manual".to_string()];
        assert_eq!(
            names(&req(Family::V4, &asked, IntendedUse::Workload)),
            ["d-manual"]
        );
        let by_cidr = vec!["10.3.0.0/16".to_string()];
        assert_eq!(
            names(&req(Family::V4, &by_cidr, IntendedUse::Workload)),
            ["d-manual"]
        );
    }

    #[test]
    fn no_usable_pool_explains_every_exclusion() {
        let mut disabled = pool("p1", "10.1.0.0/16");
        disabled.spec.disabled = true;
        let mut selective = pool("p2", "10.2.0.0/16");
        selective.spec.node_selector = "rack == 'a'".into();
        let pools = vec![disabled, selective];
        let r = req(Family::V4, &[], IntendedUse::Workload);
        assert_eq!(needs_node_labels(&pools, &r), Some("p2".into()));
        let labels = BTreeMap::from([("rack".to_string(), "b".to_string())]);
        let err = select_pools(&pools, &r, Some(&labels)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("pool p1 (10.1.0.0/16): disabled"), "{text}");
        assert!(text.contains("does not select node n1"), "{text}");
        let labels = BTreeMap::from([("rack".to_string(), "a".to_string())]);
        assert_eq!(select_pools(&pools, &r, Some(&labels)).unwrap().len(), 1);
    }

    #[test]
    fn a_requested_pool_that_does_not_exist_is_an_error_naming_it() {
        let pools = vec![pool("a", "10.0.0.0/16")];
        let asked = vec!["nope".to_string()];
        let err = select_pools(
            &pools,
            &req(Family::V4, &asked, IntendedUse::Workload),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("pools_v4 = \"nope\""), "{err}");
    }

    #[test]
    fn no_pools_at_all_says_so() {
        let err =
            select_pools(&[], &req(Family::V6, &[], IntendedUse::Workload), None).unwrap_err();
        assert!(err.to_string().contains("no IPv6 pools exist"), "{err}");
    }
}
