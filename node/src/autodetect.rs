//! BGP address autodetection with Calico's `IP_AUTODETECTION_METHOD` methods: `first-found`,
//! `can-reach=DEST`, `interface=RE,..`, `skip-interface=RE,..` and `cidr=CIDR,..`.
//!
//! The methods work on a list of [`Interface`]s ([`host_interfaces`] reads this namespace's),
//! so they are pure and unit-tested. Regular expressions are matched anywhere in the name
//! (unanchored, as Go's `regexp.MatchString` that Calico uses).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};

use ipnet::IpNet;
use regex::Regex;

use crate::settings::SettingError;

/// Interfaces `first-found` and `skip-interface` never use (Calico's default exclusions).
pub const DEFAULT_EXCLUDED: &[&str] = &[
    "^docker.*",
    "^cbr.*",
    "^dummy.*",
    "^virbr.*",
    "^lxcbr.*",
    "^veth.*",
    "^lo$",
    "^cali.*",
    "^tunl.*",
    "^flannel.*",
    "^kube-ipvs.*",
    "^cni.*",
    "^vxlan.calico.*",
    "^vxlan-v6.calico.*",
    "^wireguard.cali.*",
    "^wg-v6.cali.*",
    "^nodelocaldns.*",
];

/// One network interface and its addresses (with prefix lengths), in kernel index order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The name (`eth0`).
    pub name: String,
    /// The kernel index (the order `first-found` walks).
    pub index: u32,
    /// Its addresses.
    pub addrs: Vec<IpNet>,
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 (`IP`).
    V4,
    /// IPv6 (`IP6`).
    V6,
}

impl Family {
    fn has(self, ip: IpAddr) -> bool {
        matches!(
            (self, ip),
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
        )
    }
}

/// A parsed autodetection method.
#[derive(Debug, Clone)]
pub enum Method {
    /// The first usable address of the first interface not excluded by default.
    FirstFound,
    /// The source address the kernel picks to reach this destination (address or host name).
    CanReach(String),
    /// The first usable address of the first interface whose name matches one of these.
    Interface(Vec<Regex>),
    /// `first-found`, also skipping interfaces that match one of these.
    SkipInterface(Vec<Regex>),
    /// The first usable address inside one of these ranges.
    Cidr(Vec<IpNet>),
}

impl Method {
    /// Parses `text`, the value of `variable` (for the error).
    pub fn parse(variable: &str, text: &str) -> Result<Method, SettingError> {
        let text = text.trim();
        let err = |rule: String| SettingError::new(variable, text, rule);
        if text.is_empty() || text == "first-found" {
            return Ok(Method::FirstFound);
        }
        let Some((name, value)) = text.split_once('=') else {
            return Err(err(
                "must be first-found, can-reach=DEST, interface=REGEX,.., \
                 skip-interface=REGEX,.. or cidr=CIDR,.."
                    .into(),
            ));
        };
        let list: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if list.is_empty() {
            return Err(err(format!("{name}= needs a value")));
        }
        let regexes = |list: &[&str]| -> Result<Vec<Regex>, SettingError> {
            list.iter()
                .map(|r| {
                    Regex::new(r)
                        .map_err(|e| err(format!("{r:?} is not a regular expression: {e}")))
                })
                .collect()
        };
        match name {
            "can-reach" => Ok(Method::CanReach(value.trim().to_string())),
            "interface" => Ok(Method::Interface(regexes(&list)?)),
            "skip-interface" => Ok(Method::SkipInterface(regexes(&list)?)),
            "cidr" => list
                .iter()
                .map(|c| {
                    c.parse::<IpNet>()
                        .map_err(|_| err(format!("{c:?} is not a CIDR (like 10.0.0.0/24)")))
                })
                .collect::<Result<_, _>>()
                .map(Method::Cidr),
            other => Err(err(format!(
                "unknown method {other:?}: expected first-found, can-reach, interface, \
                 skip-interface or cidr"
            ))),
        }
    }
}

/// Addresses autodetection never picks: loopback, link-local, unspecified, multicast.
fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_loopback() || a.is_link_local() || a.is_unspecified() || a.is_multicast())
        }
        IpAddr::V6(a) => {
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (a.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

fn default_excluded() -> Vec<Regex> {
    DEFAULT_EXCLUDED
        .iter()
        .filter_map(|r| Regex::new(r).ok())
        .collect()
}

fn first_in(
    ifaces: &[Interface],
    family: Family,
    include: impl Fn(&Interface) -> bool,
) -> Option<IpNet> {
    ifaces
        .iter()
        .filter(|i| include(i))
        .flat_map(|i| i.addrs.iter())
        .find(|a| family.has(a.addr()) && usable(a.addr()))
        .copied()
}

/// Runs `method` over `ifaces` for `family`. `Ok(None)`: no address found. `route_source`
/// answers `can-reach` (the local address used to reach a destination).
pub fn detect(
    method: &Method,
    family: Family,
    ifaces: &[Interface],
    route_source: impl Fn(&str, Family) -> std::io::Result<IpAddr>,
) -> std::io::Result<Option<IpNet>> {
    let excluded = default_excluded();
    let not_excluded = |i: &Interface| !excluded.iter().any(|r| r.is_match(&i.name));
    Ok(match method {
        Method::FirstFound => first_in(ifaces, family, not_excluded),
        Method::Interface(res) => {
            first_in(ifaces, family, |i| res.iter().any(|r| r.is_match(&i.name)))
        }
        Method::SkipInterface(res) => first_in(ifaces, family, |i| {
            not_excluded(i) && !res.iter().any(|r| r.is_match(&i.name))
        }),
        Method::Cidr(nets) => ifaces
            .iter()
            .flat_map(|i| i.addrs.iter())
            .find(|a| {
                family.has(a.addr())
                    && usable(a.addr())
                    && nets.iter().any(|n| n.contains(&a.addr()))
            })
            .copied(),
        Method::CanReach(dest) => {
            let source = route_source(dest, family)?;
            let found = ifaces
                .iter()
                .flat_map(|i| i.addrs.iter())
                .find(|a| a.addr() == source)
                .copied();
            Some(found.unwrap_or_else(|| IpNet::from(source)))
        }
    })
}

/// The local address the kernel uses to reach `dest` (an address or host name): a UDP
/// socket is connected (nothing is sent) and its local address read.
pub fn route_source(dest: &str, family: Family) -> std::io::Result<IpAddr> {
    let target: SocketAddr = match dest.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, 53),
        Err(_) => (dest, 53)
            .to_socket_addrs()?
            .find(|a| family.has(a.ip()))
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{dest} has no address of the wanted family"),
                )
            })?,
    };
    let bind: SocketAddr = match target {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(target)?;
    Ok(socket.local_addr()?.ip())
}

/// This network namespace's interfaces and addresses, in index order.
pub fn host_interfaces() -> std::io::Result<Vec<Interface>> {
    let mut out: Vec<Interface> = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        let name = ifa.interface_name.clone();
        let Some(addr) = ifa.address.as_ref() else {
            continue;
        };
        let (ip, prefix) = if let Some(v4) = addr.as_sockaddr_in() {
            let mask = ifa
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in())
                .map_or(32, |m| u32::from(m.ip()).count_ones() as u8);
            (IpAddr::V4(v4.ip()), mask)
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            let mask = ifa
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in6())
                .map_or(128, |m| u128::from(m.ip()).count_ones() as u8);
            (IpAddr::V6(v6.ip()), mask)
        } else {
            continue;
        };
        let Ok(net) = IpNet::new(ip, prefix) else {
            continue;
        };
        match out.iter_mut().find(|i| i.name == name) {
            Some(i) => i.addrs.push(net),
            None => {
                let index = nix::net::if_::if_nametoindex(name.as_str()).unwrap_or(u32::MAX);
                out.push(Interface {
                    name,
                    index,
                    addrs: vec![net],
                });
            }
        }
    }
    out.sort_by_key(|i| i.index);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, index: u32, addrs: &[&str]) -> Interface {
        Interface {
            name: name.into(),
            index,
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn host() -> Vec<Interface> {
        vec![
            iface("lo", 1, &["127.0.0.1/8", "::1/128"]),
            iface("docker0", 2, &["172.17.0.1/16"]),
            iface(
                "eth0",
                3,
                &[
                    "169.254.3.3/16",
                    "10.0.0.11/24",
                    "fe80::1/64",
                    "fd00::11/64",
                ],
            ),
            iface("eth1", 4, &["192.168.5.11/24"]),
            iface("cali12345", 5, &["10.244.0.1/32"]),
        ]
    }

    fn no_route(_: &str, _: Family) -> std::io::Result<IpAddr> {
        Err(std::io::Error::other("no route"))
    }

    fn run(method: &str, family: Family) -> Option<String> {
        let m = Method::parse("IP_AUTODETECTION_METHOD", method).unwrap();
        detect(&m, family, &host(), no_route)
            .unwrap()
            .map(|n| n.to_string())
    }

    #[test]
    fn first_found_skips_loopback_docker_and_link_local_addresses() {
        assert_eq!(
            run("first-found", Family::V4).as_deref(),
            Some("10.0.0.11/24")
        );
        assert_eq!(run("", Family::V4).as_deref(), Some("10.0.0.11/24"));
        assert_eq!(
            run("first-found", Family::V6).as_deref(),
            Some("fd00::11/64")
        );
    }

    #[test]
    fn interface_picks_the_first_matching_interface() {
        assert_eq!(
            run("interface=eth1", Family::V4).as_deref(),
            Some("192.168.5.11/24")
        );
        assert_eq!(
            run("interface=ens.*,eth1", Family::V4).as_deref(),
            Some("192.168.5.11/24")
        );
        assert_eq!(run("interface=wlan0", Family::V4), None);
    }

    #[test]
    fn skip_interface_skips_the_named_ones_and_the_defaults() {
        assert_eq!(
            run("skip-interface=eth0", Family::V4).as_deref(),
            Some("192.168.5.11/24")
        );
        assert_eq!(run("skip-interface=eth.*", Family::V4), None);
    }

    #[test]
    fn cidr_picks_the_first_address_inside_a_range() {
        assert_eq!(
            run("cidr=192.168.0.0/16", Family::V4).as_deref(),
            Some("192.168.5.11/24")
        );
        assert_eq!(
            run("cidr=172.30.0.0/16,10.0.0.0/8", Family::V4).as_deref(),
            Some("10.0.0.11/24")
        );
    }

    #[test]
    fn can_reach_takes_the_route_source_with_its_interface_prefix() {
        let m = Method::parse("IP_AUTODETECTION_METHOD", "can-reach=192.168.5.1").unwrap();
        let got = detect(&m, Family::V4, &host(), |dest, _| {
            assert_eq!(dest, "192.168.5.1");
            Ok("192.168.5.11".parse().unwrap())
        })
        .unwrap();
        assert_eq!(got, Some("192.168.5.11/24".parse().unwrap()));
    }

    #[test]
    fn can_reach_a_loopback_destination_uses_the_kernel_route() {
        let src = route_source("127.0.0.1", Family::V4).unwrap();
        assert!(src.is_loopback(), "{src}");
    }

    #[test]
    fn a_bad_method_names_the_variable_the_value_and_the_rule() {
        let e = Method::parse("IP_AUTODETECTION_METHOD", "fastest").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("IP_AUTODETECTION_METHOD") && text.contains("fastest"),
            "{text}"
        );
        assert!(text.contains("first-found"), "{text}");
        let e = Method::parse("IP_AUTODETECTION_METHOD", "interface=eth(").unwrap_err();
        assert!(e.to_string().contains("regular expression"), "{e}");
        let e = Method::parse("IP_AUTODETECTION_METHOD", "cidr=10.0.0.0/33").unwrap_err();
        assert!(e.to_string().contains("not a CIDR"), "{e}");
        let e = Method::parse("IP_AUTODETECTION_METHOD", "nearest=1.2.3.4").unwrap_err();
        assert!(e.to_string().contains("unknown method"), "{e}");
    }
}
