//! Serde helpers that parse textual values (addresses, prefixes, communities) with errors naming
//! the value and what was expected; the key path is added by `serde_path_to_error`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use bgp_wire::{Community, LargeCommunity};
use ipnet::IpNet;
use serde::de::{Deserialize, Deserializer, Error};

/// A value written as a string in the configuration.
pub(crate) trait Textual: FromStr + Sized {
    /// What a valid value looks like, for error messages.
    const EXPECTED: &'static str;
}

impl Textual for IpAddr {
    const EXPECTED: &'static str = "an IPv4 or IPv6 address";
}
impl Textual for Ipv4Addr {
    const EXPECTED: &'static str = "an IPv4 address (a.b.c.d)";
}
impl Textual for Ipv6Addr {
    const EXPECTED: &'static str = "an IPv6 address";
}
impl Textual for SocketAddr {
    const EXPECTED: &'static str = "an address and port (192.0.2.1:179 or [2001:db8::1]:179)";
}
impl Textual for IpNet {
    const EXPECTED: &'static str = "a prefix (address/length, 10.244.0.0/16 or 2001:db8::/64)";
}
impl Textual for Community {
    const EXPECTED: &'static str = "a standard community aa:nn (each part 0..=65535)";
}
impl Textual for LargeCommunity {
    const EXPECTED: &'static str = "a large community aa:nn:mm (each part a 32-bit number)";
}

fn parse<E: Error, T: Textual>(s: &str) -> Result<T, E> {
    s.parse()
        .map_err(|_| E::custom(format!("{s:?} is not {}", T::EXPECTED)))
}

/// One required value.
pub(crate) fn one<'de, D: Deserializer<'de>, T: Textual>(d: D) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s)
}

/// An optional value.
pub(crate) fn opt<'de, D: Deserializer<'de>, T: Textual>(d: D) -> Result<Option<T>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse(&s)).transpose()
}

/// A list of values.
pub(crate) fn list<'de, D: Deserializer<'de>, T: Textual>(d: D) -> Result<Vec<T>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter().map(|s| parse(s)).collect()
}
