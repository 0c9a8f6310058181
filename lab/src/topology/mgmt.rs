//! The management network: subnets and gateways from `mgmt`, and each node's addresses
//! (`mgmt-ipv4`/`mgmt-ipv6`, or the next free ones in node-name order).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde_yaml_ng::{Mapping, Value};

use super::node::MgmtRequest;
use super::{Invalid, describe, keys, links::check_interface_name};
use crate::model::{Ignored, MgmtAddresses, MgmtNetwork, Node};

/// containerlab's default IPv4 management subnet.
pub const DEFAULT_IPV4_SUBNET: &str = "172.20.20.0/24";
/// containerlab's default IPv6 management subnet.
pub const DEFAULT_IPV6_SUBNET: &str = "3fff:172:20:20::/64";

/// The `mgmt` section, checked.
#[derive(Debug, Clone)]
pub(crate) struct MgmtSpec {
    network: String,
    namespace: String,
    bridge: String,
    mtu: u32,
    v4: Ipv4Net,
    v4_gw: Ipv4Addr,
    v4_range: Ipv4Net,
    v6: Ipv6Net,
    v6_gw: Ipv6Addr,
    v6_range: Ipv6Net,
}

pub(crate) fn parse(
    value: Value,
    lab_prefix: &str,
    ignored: &mut Vec<Ignored>,
) -> Result<MgmtSpec, Invalid> {
    let mut m = keys::mapping(value, "mgmt")?;
    keys::check(&mut m, "mgmt", keys::MGMT, ignored)?;
    for (new, old) in [
        ("ipv4-subnet", "ipv4_subnet"),
        ("ipv6-subnet", "ipv6_subnet"),
    ] {
        if let Some(v) = m.remove(old) {
            if m.contains_key(new) {
                return Err(Invalid::new(
                    format!("mgmt.{old}"),
                    format!("both `{new}` and its old spelling `{old}` are set; keep `{new}`"),
                ));
            }
            m.insert(Value::String(new.into()), v);
        }
    }
    let network = string(&m, "network")?.unwrap_or_else(|| "clab".into());
    let bridge = string(&m, "bridge")?.unwrap_or_else(|| "br-mgmt".into());
    check_interface_name(&bridge, "mgmt.bridge")?;
    let mtu = match m.get("mtu") {
        None | Some(Value::Null) => 1500,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (68..=65535).contains(&v) => u32::try_from(v).unwrap_or(1500),
            _ => {
                return Err(Invalid::new(
                    "mgmt.mtu",
                    format!("MTU {n} is out of range (68 to 65535)"),
                ));
            }
        },
        Some(other) => {
            return Err(Invalid::new(
                "mgmt.mtu",
                format!("expected a number, got {}", describe(other)),
            ));
        }
    };

    let v4: Ipv4Net = subnet(&m, "ipv4-subnet", DEFAULT_IPV4_SUBNET, 30)?;
    let v6: Ipv6Net = subnet(&m, "ipv6-subnet", DEFAULT_IPV6_SUBNET, 126)?;
    let v4_gw = match string(&m, "ipv4-gw")? {
        None => first_host_v4(v4),
        Some(s) => {
            let a: Ipv4Addr = s.parse().map_err(|_| {
                Invalid::new("mgmt.ipv4-gw", format!("{s:?} is not an IPv4 address"))
            })?;
            usable_v4(v4, a, "mgmt.ipv4-gw")?;
            a
        }
    };
    let v6_gw = match string(&m, "ipv6-gw")? {
        None => first_host_v6(v6),
        Some(s) => {
            let a: Ipv6Addr = s.parse().map_err(|_| {
                Invalid::new("mgmt.ipv6-gw", format!("{s:?} is not an IPv6 address"))
            })?;
            if !v6.contains(&a) || a == v6.network() {
                return Err(Invalid::new(
                    "mgmt.ipv6-gw",
                    format!("{a} is not a host address of the management subnet {v6}"),
                ));
            }
            a
        }
    };
    let v4_range = range(&m, "ipv4-range", v4)?;
    let v6_range = range(&m, "ipv6-range", v6)?;
    Ok(MgmtSpec {
        network,
        namespace: format!("{lab_prefix}mgmt"),
        bridge,
        mtu,
        v4,
        v4_gw,
        v4_range,
        v6,
        v6_gw,
        v6_range,
    })
}

fn string(m: &Mapping, key: &str) -> Result<Option<String>, Invalid> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Invalid::new(
            format!("mgmt.{key}"),
            format!("expected a string, got {}", describe(other)),
        )),
    }
}

trait Subnet: Sized + Copy + std::fmt::Display + std::str::FromStr {
    fn prefix(&self) -> u8;
    fn truncated(&self) -> Self;
    fn covers(&self, other: &Self) -> bool;
}

impl Subnet for Ipv4Net {
    fn prefix(&self) -> u8 {
        self.prefix_len()
    }
    fn truncated(&self) -> Self {
        self.trunc()
    }
    fn covers(&self, other: &Self) -> bool {
        self.contains(other)
    }
}

impl Subnet for Ipv6Net {
    fn prefix(&self) -> u8 {
        self.prefix_len()
    }
    fn truncated(&self) -> Self {
        self.trunc()
    }
    fn covers(&self, other: &Self) -> bool {
        self.contains(other)
    }
}

fn subnet<T: Subnet + PartialEq>(
    m: &Mapping,
    key: &str,
    default: &str,
    max_prefix: u8,
) -> Result<T, Invalid> {
    let at = format!("mgmt.{key}");
    let text = match string(m, key)? {
        None => default.to_string(),
        Some(s) if s == "auto" => default.to_string(),
        Some(s) => s,
    };
    let net: T = text
        .parse()
        .map_err(|_| Invalid::new(&at, format!("{text:?} is not a subnet in CIDR notation")))?;
    if net.truncated() != net {
        return Err(Invalid::new(
            at,
            format!("{net} has host bits set; the subnet is {}", net.truncated()),
        ));
    }
    if net.prefix() > max_prefix {
        return Err(Invalid::new(
            at,
            format!("{net} is too small for a gateway and nodes (at most /{max_prefix})"),
        ));
    }
    Ok(net)
}

fn range<T: Subnet + PartialEq>(m: &Mapping, key: &str, within: T) -> Result<T, Invalid> {
    let Some(text) = string(m, key)? else {
        return Ok(within);
    };
    let at = format!("mgmt.{key}");
    let net: T = text
        .parse()
        .map_err(|_| Invalid::new(&at, format!("{text:?} is not a range in CIDR notation")))?;
    if !within.covers(&net) {
        return Err(Invalid::new(
            at,
            format!("range {net} is not inside the management subnet {within}"),
        ));
    }
    Ok(net)
}

fn first_host_v4(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()).saturating_add(1))
}

fn first_host_v6(net: Ipv6Net) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(net.network()).saturating_add(1))
}

fn usable_v4(net: Ipv4Net, a: Ipv4Addr, at: &str) -> Result<(), Invalid> {
    if !net.contains(&a) || a == net.network() || a == net.broadcast() {
        return Err(Invalid::new(
            at,
            format!("{a} is not a host address of the management subnet {net}"),
        ));
    }
    Ok(())
}

/// One address family's allocation state, addresses as integers.
struct Pool {
    subnet: String,
    range: String,
    prefix: u8,
    /// Usable host addresses of the subnet, inclusive.
    hosts: (u128, u128),
    /// The range addresses are handed out from, inclusive.
    range_bounds: (u128, u128),
    next: u128,
    used: BTreeMap<u128, String>,
    family: &'static str,
    to_ip: fn(u128) -> IpAddr,
    parse: fn(&str) -> Option<u128>,
}

impl Pool {
    fn v4(spec: &MgmtSpec) -> Pool {
        let (net, bcast) = (u32::from(spec.v4.network()), u32::from(spec.v4.broadcast()));
        let (lo, hi) = (
            u32::from(spec.v4_range.network()),
            u32::from(spec.v4_range.broadcast()),
        );
        let mut p = Pool {
            subnet: spec.v4.to_string(),
            range: spec.v4_range.to_string(),
            prefix: spec.v4.prefix_len(),
            hosts: (u128::from(net) + 1, u128::from(bcast) - 1),
            range_bounds: (u128::from(lo), u128::from(hi)),
            next: u128::from(lo),
            used: BTreeMap::new(),
            family: "IPv4",
            to_ip: |v| IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(0))),
            parse: |s| s.parse::<Ipv4Addr>().ok().map(|a| u128::from(u32::from(a))),
        };
        p.used.insert(
            u128::from(u32::from(spec.v4_gw)),
            "the management gateway".into(),
        );
        p
    }

    fn v6(spec: &MgmtSpec) -> Pool {
        let (net, last) = (
            u128::from(spec.v6.network()),
            u128::from(spec.v6.broadcast()),
        );
        let (lo, hi) = (
            u128::from(spec.v6_range.network()),
            u128::from(spec.v6_range.broadcast()),
        );
        let mut p = Pool {
            subnet: spec.v6.to_string(),
            range: spec.v6_range.to_string(),
            prefix: spec.v6.prefix_len(),
            hosts: (net + 1, last),
            range_bounds: (lo, hi),
            next: lo,
            used: BTreeMap::new(),
            family: "IPv6",
            to_ip: |v| IpAddr::V6(Ipv6Addr::from(v)),
            parse: |s| s.parse::<Ipv6Addr>().ok().map(u128::from),
        };
        p.used
            .insert(u128::from(spec.v6_gw), "the management gateway".into());
        p
    }

    /// Reserves an address a node asked for (`mgmt-ipv4`/`mgmt-ipv6` at `at`).
    fn claim(&mut self, text: &str, at: &str, owner: &str) -> Result<u128, Invalid> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        if let Some(l) = len
            && l.parse::<u8>().ok() != Some(self.prefix)
        {
            return Err(Invalid::new(
                at,
                format!(
                    "{text:?}: the prefix length must be the management subnet's (/{}) or left out",
                    self.prefix
                ),
            ));
        }
        let v = (self.parse)(addr).ok_or_else(|| {
            Invalid::new(at, format!("{text:?} is not an {} address", self.family))
        })?;
        let ip = (self.to_ip)(v);
        if v < self.hosts.0 || v > self.hosts.1 {
            return Err(Invalid::new(
                at,
                format!(
                    "{ip} is not a host address of the management subnet {}",
                    self.subnet
                ),
            ));
        }
        if let Some(other) = self.used.insert(v, owner.to_string()) {
            return Err(Invalid::new(at, format!("{ip} is already used by {other}")));
        }
        Ok(v)
    }

    /// The next free address of the range.
    fn next_free(&mut self, owner: &str) -> Result<u128, Invalid> {
        loop {
            let v = self.next;
            if v > self.range_bounds.1 {
                return Err(Invalid::new(
                    "mgmt",
                    format!(
                        "the management range {} has no free {} address left for {owner}",
                        self.range, self.family
                    ),
                ));
            }
            self.next = v.saturating_add(1);
            if v >= self.hosts.0 && v <= self.hosts.1 && !self.used.contains_key(&v) {
                self.used.insert(v, owner.to_string());
                return Ok(v);
            }
        }
    }
}

/// Gives every node that uses the management network its addresses: the ones asked for,
/// then the next free ones in node-name order.
pub(crate) fn assign(
    spec: &MgmtSpec,
    nodes: &mut [Node],
    requests: &BTreeMap<String, MgmtRequest>,
) -> Result<MgmtNetwork, Invalid> {
    let (mut v4, mut v6) = (Pool::v4(spec), Pool::v6(spec));
    let mut chosen: BTreeMap<String, (Option<u128>, Option<u128>)> = BTreeMap::new();
    for (name, req) in requests.iter().filter(|(_, r)| r.enabled) {
        let owner = format!("node {name}");
        let a = req
            .ipv4
            .as_ref()
            .map(|(text, at)| v4.claim(text, at, &owner))
            .transpose()?;
        let b = req
            .ipv6
            .as_ref()
            .map(|(text, at)| v6.claim(text, at, &owner))
            .transpose()?;
        chosen.insert(name.clone(), (a, b));
    }
    for node in nodes.iter_mut() {
        let Some((a, b)) = chosen.get(&node.name).copied() else {
            continue;
        };
        let owner = format!("node {}", node.name);
        let a = match a {
            Some(a) => a,
            None => v4.next_free(&owner)?,
        };
        let b = match b {
            Some(b) => b,
            None => v6.next_free(&owner)?,
        };
        let a = Ipv4Addr::from(u32::try_from(a).unwrap_or(0));
        node.mgmt = Some(MgmtAddresses {
            ipv4: Ipv4Net::new(a, spec.v4.prefix_len()).unwrap_or(spec.v4),
            ipv6: Ipv6Net::new(Ipv6Addr::from(b), spec.v6.prefix_len()).unwrap_or(spec.v6),
        });
    }
    Ok(MgmtNetwork {
        network: spec.network.clone(),
        namespace: spec.namespace.clone(),
        bridge: spec.bridge.clone(),
        mtu: spec.mtu,
        ipv4_subnet: spec.v4,
        ipv4_gateway: spec.v4_gw,
        ipv6_subnet: spec.v6,
        ipv6_gateway: spec.v6_gw,
    })
}
