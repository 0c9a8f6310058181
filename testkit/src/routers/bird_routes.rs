//! Parsing BIRD 2's `show route [table T] all` output into routes with their BGP attributes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use bgp_wire::ipnet::IpNet;
use bgp_wire::{Community, LargeCommunity};

/// One route as BIRD shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdRoute {
    /// The network.
    pub prefix: IpNet,
    /// Route type: `unicast`, `blackhole`, `unreachable`, ...
    pub kind: String,
    /// The protocol that supplied it.
    pub protocol: String,
    /// BIRD's best route for the network (`*`).
    pub primary: bool,
    /// Preference, from `(100)`.
    pub preference: Option<u32>,
    /// Next hops from `via X on IF` lines.
    pub next_hops: Vec<IpAddr>,
    /// Interface of the first next hop.
    pub interface: Option<String>,
    /// `BGP.origin` (`IGP`, `EGP`, `Incomplete`).
    pub origin: Option<String>,
    /// `BGP.as_path`, AS numbers in order (set brackets dropped).
    pub as_path: Vec<u32>,
    /// `BGP.next_hop`.
    pub bgp_next_hop: Option<IpAddr>,
    /// `BGP.med`.
    pub med: Option<u32>,
    /// `BGP.local_pref`.
    pub local_pref: Option<u32>,
    /// `BGP.community`.
    pub communities: Vec<Community>,
    /// `BGP.large_community`.
    pub large_communities: Vec<LargeCommunity>,
    /// `BGP.originator_id`.
    pub originator_id: Option<Ipv4Addr>,
    /// `BGP.cluster_list`.
    pub cluster_list: Vec<Ipv4Addr>,
    /// Every `Key: value` line as printed (`Type`, `BGP.*`, ...).
    pub attributes: BTreeMap<String, String>,
}

/// Parses the output of `show route ... all` (a leading `BIRD x ready.` line is ignored).
pub fn parse_bird_routes(text: &str) -> Vec<BirdRoute> {
    let mut routes: Vec<BirdRoute> = Vec::new();
    let mut current_prefix: Option<IpNet> = None;
    for line in text.lines() {
        if line.trim().is_empty()
            || line.starts_with("BIRD ")
            || line.starts_with("Table ")
            || line.starts_with("Total:")
        {
            continue;
        }
        let indented = line.starts_with(char::is_whitespace);
        let trimmed = line.trim();
        if !indented {
            let mut parts = trimmed.splitn(2, char::is_whitespace);
            current_prefix = parts.next().and_then(|p| p.parse().ok());
            if let Some(r) =
                current_prefix.and_then(|p| header(parts.next().unwrap_or_default(), p))
            {
                routes.push(r);
            }
            continue;
        }
        if line.starts_with('\t') || !trimmed.contains('[') {
            if let Some(r) = routes.last_mut() {
                detail(r, trimmed);
            }
        } else if let Some(r) = current_prefix.and_then(|p| header(trimmed, p)) {
            // Another route for the same network.
            routes.push(r);
        }
    }
    routes
}

/// `unicast [peer_a 17:18:07.139] * (100) [AS65001i]`
fn header(rest: &str, prefix: IpNet) -> Option<BirdRoute> {
    let rest = rest.trim();
    let (kind, after) = rest.split_once('[')?;
    let (inside, tail) = after.split_once(']')?;
    let tail = tail.trim();
    Some(BirdRoute {
        prefix,
        kind: kind.trim().to_string(),
        protocol: inside.split_whitespace().next().unwrap_or_default().into(),
        primary: tail.starts_with('*'),
        preference: tail
            .split_once('(')
            .and_then(|(_, p)| p.split([')', '/']).next())
            .and_then(|p| p.parse().ok()),
        next_hops: Vec::new(),
        interface: None,
        origin: None,
        as_path: Vec::new(),
        bgp_next_hop: None,
        med: None,
        local_pref: None,
        communities: Vec::new(),
        large_communities: Vec::new(),
        originator_id: None,
        cluster_list: Vec::new(),
        attributes: BTreeMap::new(),
    })
}

/// `via 192.0.2.1 on vb`, `Type: BGP univ`, `BGP.as_path: 65001 65002`, ...
fn detail(r: &mut BirdRoute, line: &str) {
    if let Some(via) = line.strip_prefix("via ") {
        let mut words = via.split_whitespace();
        if let Some(addr) = words.next().and_then(|a| a.parse().ok()) {
            r.next_hops.push(addr);
        }
        if r.interface.is_none() && words.next() == Some("on") {
            r.interface = words.next().map(str::to_string);
        }
        return;
    }
    let Some((key, value)) = line.split_once(':') else {
        return;
    };
    let (key, value) = (key.trim(), value.trim());
    r.attributes.insert(key.to_string(), value.to_string());
    let numbers = |v: &str| -> Vec<u32> {
        v.split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    let addresses = |v: &str| -> Vec<Ipv4Addr> {
        v.split_whitespace()
            .filter_map(|a| a.parse().ok())
            .collect()
    };
    match key {
        "BGP.origin" => r.origin = Some(value.to_string()),
        "BGP.as_path" => r.as_path = numbers(value),
        "BGP.next_hop" => {
            r.bgp_next_hop = value.split_whitespace().next().and_then(|a| a.parse().ok())
        }
        "BGP.med" => r.med = value.parse().ok(),
        "BGP.local_pref" => r.local_pref = value.parse().ok(),
        "BGP.originator_id" => r.originator_id = value.parse().ok(),
        "BGP.cluster_list" => r.cluster_list = addresses(value),
        "BGP.community" => {
            r.communities = tuples(value)
                .iter()
                .filter_map(|t| match t[..] {
                    [a, b] => Some(Community::new(
                        u16::try_from(a).ok()?,
                        u16::try_from(b).ok()?,
                    )),
                    _ => None,
                })
                .collect();
        }
        "BGP.large_community" => {
            r.large_communities = tuples(value)
                .iter()
                .filter_map(|t| match t[..] {
                    [a, b, c] => Some(LargeCommunity {
                        global_admin: a,
                        local_data_1: b,
                        local_data_2: c,
                    }),
                    _ => None,
                })
                .collect();
        }
        _ => {}
    }
}

/// `(65001,1) (65001,2)` or `(65001, 1, 2)` as lists of numbers.
fn tuples(value: &str) -> Vec<Vec<u32>> {
    value
        .split('(')
        .filter_map(|t| t.split_once(')').map(|(inner, _)| inner))
        .map(|inner| {
            inner
                .split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "BIRD 2.0.12 ready.
Table master4:
10.244.1.0/26        unicast [peer_a 17:18:07.139] * (100) [AS65001i]
\tvia 192.0.2.1 on vb
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65001 65010
\tBGP.next_hop: 192.0.2.1
\tBGP.med: 7
\tBGP.local_pref: 100
\tBGP.community: (65001,1) (65001,2)
\tBGP.large_community: (65001, 7, 9)
\tBGP.originator_id: 10.0.0.1
\tBGP.cluster_list: 10.0.0.9 10.0.0.10
                     unicast [peer_c 17:18:08.000] (100) [AS65003i]
\tvia 192.0.2.6 on vc
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65003
10.244.1.64/26       blackhole [pods 17:18:00.349] * (200)
\tType: static univ
";

    #[test]
    fn a_route_all_listing_yields_every_route_with_its_attributes() {
        let routes = parse_bird_routes(SAMPLE);
        assert_eq!(routes.len(), 3);
        let r = &routes[0];
        assert_eq!(r.prefix.to_string(), "10.244.1.0/26");
        assert_eq!(r.kind, "unicast");
        assert_eq!(r.protocol, "peer_a");
        assert!(r.primary);
        assert_eq!(r.preference, Some(100));
        assert_eq!(r.next_hops, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.interface.as_deref(), Some("vb"));
        assert_eq!(r.as_path, [65001, 65010]);
        assert_eq!(r.med, Some(7));
        assert_eq!(
            r.communities,
            [Community::new(65001, 1), Community::new(65001, 2)]
        );
        assert_eq!(r.large_communities[0].local_data_2, 9);
        assert_eq!(r.originator_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(r.cluster_list.len(), 2);
        assert_eq!(r.attributes["Type"], "BGP univ");
        let second = &routes[1];
        assert_eq!(second.prefix, r.prefix);
        assert_eq!(second.protocol, "peer_c");
        assert!(!second.primary);
        assert_eq!(routes[2].kind, "blackhole");
        assert_eq!(routes[2].preference, Some(200));
    }
}
