//! The pod routes in each node's kernel and the fabric's invariant on them: every node holds
//! a blackhole for each of its own blocks, a `/32` to each local pod, and exactly one route
//! per remote block plus one `/32` per pod that lives on another node with a borrowed address
//! (an address from a block that is not its node's) — nothing else inside the pool.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use fabric_testkit::wait_until;
use ipnet::Ipv4Net;
use serde_json::Value;

use crate::lab::{Lab, Pod, text};

/// What a route inside the pool does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `blackhole`: a block of this node.
    Blackhole,
    /// Straight to a device without gateway (`dev caliX scope link`): a local workload.
    Device(String),
    /// Through gateways (several when ECMP), with the device of the first.
    Via {
        /// Next hops.
        gateways: Vec<Ipv4Addr>,
        /// Outgoing device.
        dev: Option<String>,
    },
}

/// One IPv4 route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Destination.
    pub dst: Ipv4Net,
    /// What it does.
    pub target: Target,
}

/// Parses `ip -j -4 route show table main` output; skips `default`.
pub fn parse_ip_routes(json: &str) -> Result<Vec<KernelRoute>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("ip -j route: {e}: {json}"))?;
    let mut out = Vec::new();
    for r in v.as_array().ok_or("ip -j route: not a list")? {
        let Some(dst) = r["dst"].as_str() else {
            continue;
        };
        if dst == "default" {
            continue;
        }
        let dst: Ipv4Net = if dst.contains('/') {
            dst.parse::<Ipv4Net>().map_err(|e| e.to_string())
        } else {
            dst.parse::<Ipv4Addr>()
                .map(Ipv4Net::from)
                .map_err(|e| e.to_string())
        }
        .map_err(|e| format!("ip -j route: bad dst {dst}: {e}"))?;
        let gateway = |h: &Value| h["gateway"].as_str().and_then(|g| g.parse().ok());
        let target = if r["type"] == "blackhole" {
            Target::Blackhole
        } else if let Some(hops) = r["nexthops"].as_array() {
            Target::Via {
                gateways: hops.iter().filter_map(gateway).collect(),
                dev: hops
                    .first()
                    .and_then(|h| h["dev"].as_str())
                    .map(str::to_string),
            }
        } else if let Some(g) = gateway(r) {
            Target::Via {
                gateways: vec![g],
                dev: r["dev"].as_str().map(str::to_string),
            }
        } else {
            Target::Device(r["dev"].as_str().unwrap_or_default().to_string())
        };
        out.push(KernelRoute { dst, target });
    }
    Ok(out)
}

/// The IPv4 routes of `node`'s main table inside `pool`.
pub fn pool_routes(lab: &Lab, node: &str, pool: Ipv4Net) -> Result<Vec<KernelRoute>, String> {
    let out = lab.exec(node, &["ip", "-j", "-4", "route", "show", "table", "main"]);
    if !out.status.success() {
        return Err(format!("ip route on {node}: {}", text(&out)));
    }
    Ok(parse_ip_routes(&String::from_utf8_lossy(&out.stdout))?
        .into_iter()
        .filter(|r| pool.contains(&r.dst))
        .collect())
}

/// Where routes to another node's blocks must point.
#[derive(Debug, Clone)]
pub enum NextHops {
    /// Via the owning node's address (mesh, route reflection; a map node -> address).
    Owner(BTreeMap<String, Ipv4Addr>),
    /// Through this device (VXLAN: `vxlan.calico`).
    Device(String),
    /// Any gateway (a ToR in between).
    AnyGateway,
}

/// An address the route check accounts for: a pod's, or a node's tunnel address (VXLAN),
/// with the node it lives on.
#[derive(Debug, Clone)]
pub struct PodPlace {
    /// Its node.
    pub node: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Whether its node routes it to a `cali*` interface (a pod); a tunnel address sits on the
    /// tunnel device instead and has no route of its own on its node.
    pub local_route: bool,
}

impl PodPlace {
    /// A node's tunnel address: routed as a /32 by the other nodes when borrowed.
    pub fn tunnel(node: &str, ip: Ipv4Addr) -> PodPlace {
        PodPlace {
            node: node.to_string(),
            ip,
            local_route: false,
        }
    }
}

impl From<&Pod> for PodPlace {
    fn from(p: &Pod) -> PodPlace {
        PodPlace {
            node: p.node.clone(),
            ip: p.ip,
            local_route: true,
        }
    }
}

/// What the check found: block owners and borrowed addresses (for the test to assert on).
#[derive(Debug, Clone, Default)]
pub struct Fabric {
    /// Each block and the node that blackholes it.
    pub blocks: BTreeMap<Ipv4Net, String>,
    /// Pods on a node other than their block's owner: (pod address, its node, block owner).
    pub borrowed: Vec<(Ipv4Addr, String, String)>,
}

/// Checks the invariant of the module docs on `tables` (node -> its routes inside the pool);
/// returns the fabric or every mismatch found.
pub fn check_tables(
    tables: &BTreeMap<String, Vec<KernelRoute>>,
    pods: &[PodPlace],
    next_hops: &NextHops,
) -> Result<Fabric, String> {
    let mut problems = Vec::new();
    let mut fabric = Fabric::default();
    for (node, routes) in tables {
        for r in routes.iter().filter(|r| r.target == Target::Blackhole) {
            if let Some(other) = fabric.blocks.insert(r.dst, node.clone()) {
                problems.push(format!(
                    "block {} is blackholed on {other} and {node}",
                    r.dst
                ));
            }
        }
    }
    let owner_of = |ip: Ipv4Addr| -> Option<&String> {
        fabric
            .blocks
            .iter()
            .find(|(b, _)| b.contains(&ip))
            .map(|(_, n)| n)
    };
    for p in pods {
        match owner_of(p.ip) {
            None => problems.push(format!(
                "pod {} on {}: no node blackholes a block holding it",
                p.ip, p.node
            )),
            Some(owner) if owner != &p.node => {
                fabric.borrowed.push((p.ip, p.node.clone(), owner.clone()));
            }
            Some(_) => {}
        }
    }
    for (node, routes) in tables {
        let local_expected: BTreeSet<Ipv4Net> = pods
            .iter()
            .filter(|p| &p.node == node && p.local_route)
            .map(|p| Ipv4Net::from(p.ip))
            .collect();
        let local_found: BTreeSet<Ipv4Net> = routes
            .iter()
            .filter(|r| matches!(&r.target, Target::Device(d) if d.starts_with("cali")))
            .map(|r| r.dst)
            .collect();
        if local_found != local_expected {
            problems.push(format!(
                "{node}: local pod routes {local_found:?}, expected {local_expected:?}"
            ));
        }
        // Remote destinations and the node each must lead to.
        let mut expected: BTreeMap<Ipv4Net, String> = fabric
            .blocks
            .iter()
            .filter(|(_, owner)| *owner != node)
            .map(|(b, owner)| (*b, owner.clone()))
            .collect();
        for (ip, on, _) in &fabric.borrowed {
            if on != node {
                expected.insert(Ipv4Net::from(*ip), on.clone());
            }
        }
        let remote: Vec<&KernelRoute> = routes
            .iter()
            .filter(|r| {
                r.target != Target::Blackhole
                    && !matches!(&r.target, Target::Device(d) if d.starts_with("cali"))
            })
            .collect();
        for (dst, toward) in &expected {
            let found: Vec<&&KernelRoute> = remote.iter().filter(|r| r.dst == *dst).collect();
            match found.as_slice() {
                [] => problems.push(format!("{node}: no route to {dst} (on {toward})")),
                [one] => {
                    if let Some(why) = wrong_next_hop(&one.target, toward, next_hops) {
                        problems.push(format!("{node}: route to {dst} (on {toward}) {why}"));
                    }
                }
                many => problems.push(format!(
                    "{node}: {} routes to {dst}, expected one: {many:?}",
                    many.len()
                )),
            }
        }
        for r in &remote {
            if !expected.contains_key(&r.dst) {
                problems.push(format!("{node}: unexpected route {r:?}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(fabric)
    } else {
        Err(problems.join("\n"))
    }
}

fn wrong_next_hop(target: &Target, toward: &str, rule: &NextHops) -> Option<String> {
    let Target::Via { gateways, dev } = target else {
        return Some(format!("is {target:?}, not via a gateway"));
    };
    match rule {
        NextHops::Owner(addrs) => {
            let want = addrs.get(toward)?;
            (gateways.as_slice() != [*want]).then(|| format!("goes via {gateways:?}, not {want}"))
        }
        NextHops::Device(want) => (dev.as_deref() != Some(want.as_str()))
            .then(|| format!("goes out of {dev:?}, not {want}")),
        NextHops::AnyGateway => gateways.is_empty().then(|| "has no gateway".to_string()),
    }
}

/// Reads every node's pool routes until they satisfy [`check_tables`] (or `timeout`, then
/// panics with the mismatches and the tables).
pub fn wait_fabric_routes(
    lab: &Lab,
    nodes: &[String],
    pool: Ipv4Net,
    pods: &[PodPlace],
    next_hops: &NextHops,
    timeout: Duration,
) -> Fabric {
    let mut last: Result<Fabric, String> = Err("not checked yet".into());
    let mut tables = BTreeMap::new();
    let ok = wait_until(timeout, Duration::from_millis(250), || {
        tables.clear();
        for n in nodes {
            match pool_routes(lab, n, pool) {
                Ok(r) => {
                    tables.insert(n.clone(), r);
                }
                Err(e) => {
                    last = Err(e);
                    return false;
                }
            }
        }
        last = check_tables(&tables, pods, next_hops);
        last.is_ok()
    });
    let problems = match last {
        Ok(fabric) if ok => return fabric,
        Ok(_) => "the check passed only after the deadline".to_string(),
        Err(problems) => problems,
    };
    let mut msg = format!("pod routes not as expected within {timeout:?}:\n{problems}\n");
    for (n, routes) in &tables {
        msg += &format!("== {n}\n");
        for r in routes {
            msg += &format!("  {} {:?}\n", r.dst, r.target);
        }
    }
    panic!("{msg}");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn via(dst: &str, gw: &str) -> KernelRoute {
        KernelRoute {
            dst: net(dst),
            target: Target::Via {
                gateways: vec![gw.parse().unwrap()],
                dev: Some("eth1".into()),
            },
        }
    }

    fn blackhole(dst: &str) -> KernelRoute {
        KernelRoute {
            dst: net(dst),
            target: Target::Blackhole,
        }
    }

    fn local(dst: &str) -> KernelRoute {
        KernelRoute {
            dst: net(dst),
            target: Target::Device("cali1234".into()),
        }
    }

    fn owners() -> NextHops {
        NextHops::Owner(BTreeMap::from([
            ("a".to_string(), "10.0.0.11".parse().unwrap()),
            ("b".to_string(), "10.0.0.12".parse().unwrap()),
        ]))
    }

    fn pod(node: &str, ip: &str) -> PodPlace {
        PodPlace {
            node: node.into(),
            ip: ip.parse().unwrap(),
            local_route: true,
        }
    }

    #[test]
    fn ip_json_routes_are_parsed_with_blackholes_devices_gateways_and_ecmp() {
        let json = r#"[{"dst":"default","gateway":"172.20.20.1","dev":"eth0","flags":[]},
          {"type":"blackhole","dst":"10.244.1.0/26","protocol":"80","flags":[]},
          {"dst":"10.244.1.1","dev":"cali0123456789a","protocol":"80","scope":"link","flags":[]},
          {"dst":"10.244.2.0/26","gateway":"10.0.0.12","dev":"eth1","protocol":"80","flags":[]},
          {"dst":"10.244.3.0/26","protocol":"80","flags":[],"nexthops":[
             {"gateway":"10.0.1.1","dev":"eth1","weight":1,"flags":[]},
             {"gateway":"10.0.1.2","dev":"eth1","weight":1,"flags":[]}]}]"#;
        let r = parse_ip_routes(json).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].target, Target::Blackhole);
        assert_eq!(r[1].dst, net("10.244.1.1/32"));
        assert_eq!(r[1].target, Target::Device("cali0123456789a".into()));
        assert_eq!(r[2], via("10.244.2.0/26", "10.0.0.12"));
        let Target::Via { gateways, .. } = &r[3].target else {
            panic!("not via")
        };
        assert_eq!(gateways.len(), 2);
    }

    #[test]
    fn a_complete_fabric_with_a_borrowed_address_passes() {
        // b's pod 10.244.1.2 is borrowed from a's block.
        let tables = BTreeMap::from([
            (
                "a".to_string(),
                vec![
                    blackhole("10.244.1.0/30"),
                    local("10.244.1.1/32"),
                    via("10.244.2.0/30", "10.0.0.12"),
                    via("10.244.1.2/32", "10.0.0.12"),
                ],
            ),
            (
                "b".to_string(),
                vec![
                    blackhole("10.244.2.0/30"),
                    local("10.244.2.0/32"),
                    local("10.244.1.2/32"),
                    via("10.244.1.0/30", "10.0.0.11"),
                ],
            ),
        ]);
        let pods = [
            pod("a", "10.244.1.1"),
            pod("b", "10.244.2.0"),
            pod("b", "10.244.1.2"),
        ];
        let f = check_tables(&tables, &pods, &owners()).unwrap();
        assert_eq!(
            f.borrowed,
            vec![(
                "10.244.1.2".parse().unwrap(),
                "b".to_string(),
                "a".to_string()
            )]
        );
    }

    #[test]
    fn a_missing_borrowed_route_a_duplicate_and_a_stray_route_are_reported() {
        let tables = BTreeMap::from([
            (
                "a".to_string(),
                vec![
                    blackhole("10.244.1.0/30"),
                    local("10.244.1.1/32"),
                    via("10.244.2.0/30", "10.0.0.12"),
                    via("10.244.9.0/30", "10.0.0.12"),
                ],
            ),
            (
                "b".to_string(),
                vec![
                    blackhole("10.244.2.0/30"),
                    local("10.244.1.2/32"),
                    via("10.244.1.0/30", "10.0.0.13"),
                ],
            ),
        ]);
        let pods = [pod("a", "10.244.1.1"), pod("b", "10.244.1.2")];
        let e = check_tables(&tables, &pods, &owners()).unwrap_err();
        assert!(e.contains("a: no route to 10.244.1.2/32 (on b)"), "{e}");
        assert!(e.contains("a: unexpected route"), "{e}");
        assert!(
            e.contains("b: route to 10.244.1.0/30 (on a) goes via"),
            "{e}"
        );
    }

    #[test]
    fn a_borrowed_tunnel_address_needs_a_route_elsewhere_but_none_on_its_node() {
        // b has no block: its tunnel address 10.244.1.2 is borrowed from a's block.
        let vxlan = |dst: &str, gw: &str| KernelRoute {
            dst: net(dst),
            target: Target::Via {
                gateways: vec![gw.parse().unwrap()],
                dev: Some("vxlan.calico".into()),
            },
        };
        let tables = BTreeMap::from([
            (
                "a".to_string(),
                vec![
                    blackhole("10.244.1.0/30"),
                    vxlan("10.244.1.2/32", "10.244.1.2"),
                ],
            ),
            ("b".to_string(), vec![vxlan("10.244.1.0/30", "10.244.1.0")]),
        ]);
        let places = [PodPlace::tunnel("b", "10.244.1.2".parse().unwrap())];
        let rule = NextHops::Device("vxlan.calico".into());
        let f = check_tables(&tables, &places, &rule).unwrap();
        assert_eq!(f.borrowed.len(), 1);
        let mut without = tables.clone();
        without.get_mut("a").unwrap().pop();
        let e = check_tables(&without, &places, &rule).unwrap_err();
        assert!(e.contains("a: no route to 10.244.1.2/32 (on b)"), "{e}");
    }

    #[test]
    fn a_pod_outside_every_block_fails_the_check() {
        let tables = BTreeMap::from([("a".to_string(), vec![local("10.244.1.1/32")])]);
        let e =
            check_tables(&tables, &[pod("a", "10.244.1.1")], &NextHops::AnyGateway).unwrap_err();
        assert!(e.contains("no node blackholes a block holding it"), "{e}");
    }
}
