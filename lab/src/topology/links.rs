//! `topology.links`: brief (`endpoints: ["a:eth1", "b:eth1"]`) and extended (`type: veth`)
//! links become veth pairs; every endpoint is checked and used once.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::node::MgmtRequest;
use super::{Invalid, describe, keys};
use crate::model::{Endpoint, Ignored, Link, Node, NodeKind};

/// containerlab's default MTU for veth links.
pub const DEFAULT_LINK_MTU: u32 = 9500;

/// Parses the links and records each node's interfaces (and `CLAB_INTFS`) on `nodes`.
pub(crate) fn parse(
    value: Value,
    nodes: &mut [Node],
    mgmt: &BTreeMap<String, MgmtRequest>,
    ignored: &mut Vec<Ignored>,
) -> Result<Vec<Link>, Invalid> {
    let items = match value {
        Value::Null => Vec::new(),
        Value::Sequence(s) => s,
        other => {
            return Err(Invalid::new(
                "topology.links",
                format!("expected a list of links, got {}", describe(&other)),
            ));
        }
    };
    let mut links = Vec::new();
    let mut used: BTreeMap<(String, String), String> = BTreeMap::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("topology.links[{i}]");
        let mut map = keys::mapping(item, &at)?;
        let link = if map.contains_key("type") {
            extended(&mut map, &at, ignored)?
        } else {
            brief(&mut map, &at, ignored)?
        };
        for (j, ep) in [&link.a, &link.b].into_iter().enumerate() {
            let ep_at = format!("{at}.endpoints[{j}]");
            let Some(node) = nodes.iter().find(|n| n.name == ep.node) else {
                return Err(Invalid::new(ep_at, undefined_node_message(&ep.node)));
            };
            check_interface_name(&ep.interface, &ep_at)?;
            let mgmt_enabled = mgmt.get(&ep.node).is_some_and(|r| r.enabled);
            if ep.interface == "eth0" && node.kind == NodeKind::Linux && mgmt_enabled {
                return Err(Invalid::new(
                    ep_at,
                    format!(
                        "{ep}: eth0 is the node's management interface; use eth1 and up (or network-mode: none)"
                    ),
                ));
            }
            if node.kind == NodeKind::Bridge && ep.interface == node.bridge_device() {
                return Err(Invalid::new(
                    ep_at,
                    format!("{ep}: the port cannot have the bridge's own name"),
                ));
            }
            let key = (ep.node.clone(), ep.interface.clone());
            if let Some(first) = used.insert(key, ep_at.clone()) {
                return Err(Invalid::new(
                    ep_at,
                    format!(
                        "endpoint {ep} is already used at {first}; each interface can be in one link only"
                    ),
                ));
            }
        }
        links.push(link);
    }
    for link in &links {
        for ep in [&link.a, &link.b] {
            if let Some(n) = nodes.iter_mut().find(|n| n.name == ep.node) {
                n.interfaces.push(ep.interface.clone());
            }
        }
    }
    for n in nodes.iter_mut().filter(|n| n.kind == NodeKind::Linux) {
        n.env
            .insert("CLAB_INTFS".into(), n.interfaces.len().to_string());
    }
    Ok(links)
}

fn undefined_node_message(node: &str) -> String {
    let special = match node {
        "host" => {
            Some("host links end in the host's network namespace, which calico-lab never touches")
        }
        "mgmt-net" => Some(
            "mgmt-net links attach to the host side of the management network; link to a bridge node instead",
        ),
        "macvlan" => Some("macvlan links need a host interface, which calico-lab never touches"),
        _ => None,
    };
    match special {
        Some(why) => format!("`{node}` endpoints are not supported: {why}"),
        None => format!("node `{node}` is not defined under topology.nodes"),
    }
}

fn brief(map: &mut Mapping, at: &str, ignored: &mut Vec<Ignored>) -> Result<Link, Invalid> {
    keys::check(map, at, keys::LINK_BRIEF, ignored)?;
    refuse_addresses(map, at)?;
    let ep_at = format!("{at}.endpoints");
    let endpoints = match map.get("endpoints") {
        Some(Value::Sequence(s)) => s,
        Some(other) => {
            return Err(Invalid::new(
                ep_at,
                format!(
                    "expected two \"node:interface\" strings, got {}",
                    describe(other)
                ),
            ));
        }
        None => return Err(Invalid::new(at, "the link has no `endpoints`")),
    };
    if endpoints.len() != 2 {
        return Err(Invalid::new(
            ep_at,
            format!(
                "a link has exactly two endpoints, this one has {}",
                endpoints.len()
            ),
        ));
    }
    let mut eps = Vec::new();
    for (j, v) in endpoints.iter().enumerate() {
        let at = format!("{ep_at}[{j}]");
        let Value::String(s) = v else {
            return Err(Invalid::new(
                at,
                format!("expected \"node:interface\", got {}", describe(v)),
            ));
        };
        let Some((node, interface)) = s.split_once(':') else {
            return Err(Invalid::new(at, format!("{s:?} is not \"node:interface\"")));
        };
        eps.push(Endpoint {
            node: node.to_string(),
            interface: interface.to_string(),
            mac: None,
        });
    }
    pair(eps, mtu(map, at)?, at)
}

fn extended(map: &mut Mapping, at: &str, ignored: &mut Vec<Ignored>) -> Result<Link, Invalid> {
    keys::check(map, at, keys::LINK_EXTENDED, ignored)?;
    match map.get("type") {
        Some(Value::String(t)) if t == "veth" => {}
        Some(Value::String(t)) => {
            let why = match t.as_str() {
                "host" | "mgmt-net" | "macvlan" | "vxlan" | "vxlan-stitch" => {
                    "it attaches to the host's network namespace, which calico-lab never touches"
                }
                "dummy" => "the kernel here has no dummy interfaces",
                _ => "calico-lab creates veth links only",
            };
            return Err(Invalid::new(
                format!("{at}.type"),
                format!("link type `{t}` is not supported: {why}"),
            ));
        }
        Some(other) => {
            return Err(Invalid::new(
                format!("{at}.type"),
                format!("expected a link type, got {}", describe(other)),
            ));
        }
        None => {}
    }
    refuse_addresses(map, at)?;
    let ep_at = format!("{at}.endpoints");
    let endpoints = match map.remove("endpoints") {
        Some(Value::Sequence(s)) if s.len() == 2 => s,
        Some(Value::Sequence(s)) => {
            return Err(Invalid::new(
                ep_at,
                format!(
                    "a veth link has exactly two endpoints, this one has {}",
                    s.len()
                ),
            ));
        }
        Some(other) => {
            return Err(Invalid::new(
                ep_at,
                format!("expected two endpoints, got {}", describe(&other)),
            ));
        }
        None => return Err(Invalid::new(at, "the link has no `endpoints`")),
    };
    let mut eps = Vec::new();
    for (j, v) in endpoints.into_iter().enumerate() {
        let at = format!("{ep_at}[{j}]");
        let mut m = keys::mapping(v, &at)?;
        keys::check(&mut m, &at, keys::ENDPOINT, ignored)?;
        refuse_addresses(&m, &at)?;
        let field = |k: &str| -> Result<String, Invalid> {
            match m.get(k) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(Invalid::new(
                    format!("{at}.{k}"),
                    format!("expected a string, got {}", describe(other)),
                )),
                None => Err(Invalid::new(&at, format!("the endpoint has no `{k}`"))),
            }
        };
        let node = field("node")?;
        let interface = field("interface")?;
        let mac = match m.get("mac") {
            None | Some(Value::Null) => None,
            Some(_) => {
                let mac = field("mac")?;
                check_mac(&mac, &format!("{at}.mac"))?;
                Some(mac)
            }
        };
        eps.push(Endpoint {
            node,
            interface,
            mac,
        });
    }
    pair(eps, mtu(map, at)?, at)
}

fn pair(mut eps: Vec<Endpoint>, mtu: u32, at: &str) -> Result<Link, Invalid> {
    let b = eps.pop();
    let a = eps.pop();
    match (a, b, eps.is_empty()) {
        (Some(a), Some(b), true) => Ok(Link { a, b, mtu }),
        _ => Err(Invalid::new(at, "a link has exactly two endpoints")),
    }
}

/// containerlab applies link addresses only for some network OS kinds, never for `linux` or
/// `bridge`: accepting them would make the lab differ from containerlab.
fn refuse_addresses(map: &Mapping, at: &str) -> Result<(), Invalid> {
    for k in ["ipv4", "ipv6"] {
        if map.contains_key(k) {
            return Err(Invalid::new(
                format!("{at}.{k}"),
                "containerlab does not configure link addresses on linux or bridge nodes; add them with `exec: [\"ip addr add ...\"]` on the node",
            ));
        }
    }
    Ok(())
}

fn mtu(map: &Mapping, at: &str) -> Result<u32, Invalid> {
    match map.get("mtu") {
        None | Some(Value::Null) => Ok(DEFAULT_LINK_MTU),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(m) if (68..=65535).contains(&m) => {
                Ok(u32::try_from(m).unwrap_or(DEFAULT_LINK_MTU))
            }
            _ => Err(Invalid::new(
                format!("{at}.mtu"),
                format!("MTU {n} is out of range (68 to 65535)"),
            )),
        },
        Some(other) => Err(Invalid::new(
            format!("{at}.mtu"),
            format!("expected a number, got {}", describe(other)),
        )),
    }
}

/// A Linux interface name: 1 to 15 bytes, no `/`, `:` or blanks, not `.`/`..`, not `lo`.
pub(crate) fn check_interface_name(name: &str, at: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name != "lo"
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            at,
            format!(
                "{name:?} is not a usable Linux interface name (1 to 15 characters, no `/`, `:` or blanks, not lo)"
            ),
        ))
    }
}

fn check_mac(mac: &str, at: &str) -> Result<(), Invalid> {
    let parts: Vec<&str> = mac.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            at,
            format!("{mac:?} is not a MAC address (six hex pairs)"),
        ))
    }
}
