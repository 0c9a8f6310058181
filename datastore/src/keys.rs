//! Calico's etcd key layout: v3 resources and the IPAM v2 objects, with parsers.
//!
//! The same layout is used in every backend, so a sqlite file and an etcd cluster hold the
//! same keys.

use ipnet::IpNet;

/// The prefix of every v3 resource key.
pub const RESOURCES_PREFIX: &str = "/calico/resources/v3/projectcalico.org/";
/// The prefix of every IPAM v2 key.
pub const IPAM_PREFIX: &str = "/calico/ipam/v2/";
/// The prefix of IPAM block keys (both families).
pub const IPAM_BLOCK_PREFIX: &str = "/calico/ipam/v2/assignment/";
/// The prefix of host block-affinity keys.
pub const IPAM_HOST_PREFIX: &str = "/calico/ipam/v2/host/";
/// The prefix of IPAM handle keys.
pub const IPAM_HANDLE_PREFIX: &str = "/calico/ipam/v2/handle/";
/// The key of the IPAM configuration singleton.
pub const IPAM_CONFIG_KEY: &str = "/calico/ipam/v2/config";

/// `.../<plural>/[<namespace>/]<name>` under [`RESOURCES_PREFIX`].
pub fn resource_key(plural: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{RESOURCES_PREFIX}{plural}/{ns}/{name}"),
        None => format!("{RESOURCES_PREFIX}{plural}/{name}"),
    }
}

/// The prefix of every resource of a kind (`namespace: None`), or of a kind within one
/// namespace; ends with `/`.
pub fn resource_prefix(plural: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{RESOURCES_PREFIX}{plural}/{ns}/"),
        None => format!("{RESOURCES_PREFIX}{plural}/"),
    }
}

/// Splits a resource key into (plural, namespace, name). `is_namespaced(plural)` says whether
/// the kind has a namespace segment. `None` when the key is not a well-formed resource key.
pub fn parse_resource_key(
    key: &str,
    is_namespaced: impl Fn(&str) -> bool,
) -> Option<(String, Option<String>, String)> {
    let rest = key.strip_prefix(RESOURCES_PREFIX)?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    match parts.as_slice() {
        [plural, ns, name] if is_namespaced(plural) => {
            Some((plural.to_string(), Some(ns.to_string()), name.to_string()))
        }
        [plural, name] if !is_namespaced(plural) => {
            Some((plural.to_string(), None, name.to_string()))
        }
        _ => None,
    }
}

fn family(cidr: &IpNet) -> &'static str {
    match cidr {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    }
}

/// The CIDR as Calico writes it in keys: `10.0.1.0/26` becomes `10.0.1.0-26`.
fn cidr_segment(cidr: &IpNet) -> String {
    format!("{}-{}", cidr.addr(), cidr.prefix_len())
}

/// Parses a `10.0.1.0-26` segment of the given family; rejects host bits.
fn parse_cidr_segment(segment: &str, family_name: &str) -> Option<IpNet> {
    let (addr, len) = segment.rsplit_once('-')?;
    let cidr: IpNet = format!("{addr}/{len}").parse().ok()?;
    if family(&cidr) != family_name || cidr.trunc() != cidr {
        return None;
    }
    Some(cidr)
}

/// `/calico/ipam/v2/assignment/ipv4/block/10.0.1.0-26` (`ipv6` likewise). `cidr` is the
/// block's network address and prefix, as IPAM produces it.
pub fn ipam_block_key(cidr: &IpNet) -> String {
    format!(
        "{IPAM_BLOCK_PREFIX}{}/block/{}",
        family(cidr),
        cidr_segment(cidr)
    )
}

/// The block CIDR of an IPAM block key.
pub fn parse_ipam_block_key(key: &str) -> Option<IpNet> {
    let rest = key.strip_prefix(IPAM_BLOCK_PREFIX)?;
    let (fam, segment) = rest.split_once("/block/")?;
    parse_cidr_segment(segment, fam)
}

/// `/calico/ipam/v2/host/<node>/ipv4/block/10.0.1.0-26`.
pub fn ipam_affinity_key(node: &str, cidr: &IpNet) -> String {
    format!(
        "{IPAM_HOST_PREFIX}{node}/{}/block/{}",
        family(cidr),
        cidr_segment(cidr)
    )
}

/// The prefix of every affinity of one node; ends with `/`.
pub fn ipam_host_prefix(node: &str) -> String {
    format!("{IPAM_HOST_PREFIX}{node}/")
}

/// The (node, block CIDR) of a host affinity key.
pub fn parse_ipam_affinity_key(key: &str) -> Option<(String, IpNet)> {
    let rest = key.strip_prefix(IPAM_HOST_PREFIX)?;
    let (node, rest) = rest.split_once('/')?;
    let (fam, segment) = rest.split_once("/block/")?;
    if node.is_empty() {
        return None;
    }
    Some((node.to_string(), parse_cidr_segment(segment, fam)?))
}

/// `/calico/ipam/v2/handle/<handle>`.
pub fn ipam_handle_key(handle: &str) -> String {
    format!("{IPAM_HANDLE_PREFIX}{handle}")
}

/// The handle id of a handle key.
pub fn parse_ipam_handle_key(key: &str) -> Option<String> {
    let handle = key.strip_prefix(IPAM_HANDLE_PREFIX)?;
    if handle.is_empty() || handle.contains('/') {
        return None;
    }
    Some(handle.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn a_namespaced_resource_key_has_the_namespace_segment() {
        let key = resource_key("networkpolicies", Some("prod"), "allow-dns");
        assert_eq!(
            key,
            "/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow-dns"
        );
        let parsed = parse_resource_key(&key, |p| p == "networkpolicies").unwrap();
        assert_eq!(
            parsed,
            (
                "networkpolicies".into(),
                Some("prod".into()),
                "allow-dns".into()
            )
        );
    }

    #[test]
    fn a_cluster_scoped_resource_key_round_trips() {
        let key = resource_key("ippools", None, "default-ipv4-ippool");
        assert_eq!(
            key,
            "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool"
        );
        assert_eq!(
            parse_resource_key(&key, |_| false),
            Some(("ippools".into(), None, "default-ipv4-ippool".into()))
        );
    }

    #[test]
    fn a_resource_key_with_the_wrong_segment_count_is_not_parsed() {
        let key = resource_key("ippools", None, "a");
        assert_eq!(parse_resource_key(&key, |_| true), None);
        let key = resource_key("networkpolicies", Some("ns"), "a");
        assert_eq!(parse_resource_key(&key, |_| false), None);
        assert_eq!(parse_resource_key("/calico/other/x", |_| false), None);
        assert_eq!(
            parse_resource_key(&format!("{RESOURCES_PREFIX}ippools//a"), |_| true),
            None
        );
    }

    #[test]
    fn ipam_block_keys_follow_calicos_layout_for_both_families() {
        let v4 = net("10.0.1.0/26");
        assert_eq!(
            ipam_block_key(&v4),
            "/calico/ipam/v2/assignment/ipv4/block/10.0.1.0-26"
        );
        assert_eq!(parse_ipam_block_key(&ipam_block_key(&v4)), Some(v4));
        let v6 = net("fd00:10:244::/122");
        assert_eq!(
            ipam_block_key(&v6),
            "/calico/ipam/v2/assignment/ipv6/block/fd00:10:244::-122"
        );
        assert_eq!(parse_ipam_block_key(&ipam_block_key(&v6)), Some(v6));
    }

    #[test]
    fn a_block_key_with_host_bits_or_the_wrong_family_is_not_parsed() {
        assert_eq!(
            parse_ipam_block_key("/calico/ipam/v2/assignment/ipv4/block/10.0.1.5-26"),
            None
        );
        assert_eq!(
            parse_ipam_block_key("/calico/ipam/v2/assignment/ipv6/block/10.0.1.0-26"),
            None
        );
    }

    #[test]
    fn affinity_and_handle_keys_round_trip() {
        let cidr = net("10.0.1.0/26");
        let key = ipam_affinity_key("node-1", &cidr);
        assert_eq!(key, "/calico/ipam/v2/host/node-1/ipv4/block/10.0.1.0-26");
        assert!(key.starts_with(&ipam_host_prefix("node-1")));
        assert_eq!(parse_ipam_affinity_key(&key), Some(("node-1".into(), cidr)));
        let key = ipam_handle_key("k8s-pod-network.abc");
        assert_eq!(key, "/calico/ipam/v2/handle/k8s-pod-network.abc");
        assert_eq!(
            parse_ipam_handle_key(&key),
            Some("k8s-pod-network.abc".into())
        );
        assert_eq!(parse_ipam_handle_key(IPAM_HANDLE_PREFIX), None);
    }
}
