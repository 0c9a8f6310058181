//! IP address and CIDR parsing and the CIDR rules Calico's validator applies: strictly masked
//! networks (`net`), any CIDR (`cidr`), plain addresses, and per-family variants.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::Errors;

/// A parsed CIDR: an address and a prefix length (the address may have host bits set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address as written (host bits kept).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `v6/n` (a prefix length is required).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| "is not a CIDR (expected address/prefix-length)".to_string())?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("is not a CIDR: {addr:?} is not an IP address"))?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 3 {
            return Err(format!("is not a CIDR: {len:?} is not a prefix length"));
        }
        let prefix_len: u8 = len
            .parse()
            .map_err(|_| format!("is not a CIDR: {len:?} is not a prefix length"))?;
        let max = max_prefix(addr);
        if prefix_len > max {
            return Err(format!(
                "is not a CIDR: prefix length {prefix_len} is longer than {max}"
            ));
        }
        Ok(Cidr { addr, prefix_len })
    }

    /// Parses a CIDR, or a bare address taken as a full-length prefix (/32 or /128).
    pub fn parse_or_ip(s: &str) -> Result<Cidr, String> {
        if s.contains('/') {
            return Cidr::parse(s);
        }
        let addr: IpAddr = s
            .parse()
            .map_err(|_| "is neither an IP address nor a CIDR".to_string())?;
        Ok(Cidr {
            addr,
            prefix_len: max_prefix(addr),
        })
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        mask(self.addr, self.prefix_len)
    }

    /// The same CIDR with host bits cleared.
    pub fn masked(&self) -> Cidr {
        Cidr {
            addr: self.network(),
            prefix_len: self.prefix_len,
        }
    }

    /// Whether host bits are clear.
    pub fn is_strictly_masked(&self) -> bool {
        self.network() == self.addr
    }

    /// Whether this is an IPv4 CIDR.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// 4 or 6.
    pub fn version(&self) -> u8 {
        if self.addr.is_ipv4() { 4 } else { 6 }
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix_len) == self.network()
    }

    /// Whether the two networks share at least one address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

/// The canonical text of a CIDR or address as written: `fd00:0::/48` becomes `fd00::/48`.
/// Returns `None` when the text does not parse.
pub fn canonical_text(s: &str) -> Option<String> {
    if s.contains('/') {
        Cidr::parse(s).ok().map(|c| c.to_string())
    } else {
        s.parse::<IpAddr>().ok().map(|a| a.to_string())
    }
}

/// Calico's `net` rule: a strictly masked CIDR, or a bare address. Returns the parsed CIDR.
pub(crate) fn check_net(errs: &mut Errors, field: &str, s: &str) -> Option<Cidr> {
    match Cidr::parse_or_ip(s) {
        Err(rule) => {
            errs.add(field, s, rule);
            None
        }
        Ok(c) if !c.is_strictly_masked() => {
            errs.add(
                field,
                s,
                format!(
                    "has host bits set; a CIDR must be strictly masked ({})",
                    c.masked()
                ),
            );
            None
        }
        Ok(c) => Some(c),
    }
}

/// Calico's `netv4`/`netv6` rules: [`check_net`] plus the address family.
pub(crate) fn check_net_family(errs: &mut Errors, field: &str, s: &str, v: u8) -> Option<Cidr> {
    let c = check_net(errs, field, s)?;
    if c.version() != v {
        errs.add(field, s, format!("is not an IPv{v} network"));
        return None;
    }
    Some(c)
}

/// Calico's `cidr` rule: any CIDR (host bits allowed) or a bare address.
pub(crate) fn check_cidr(errs: &mut Errors, field: &str, s: &str) -> Option<Cidr> {
    match Cidr::parse_or_ip(s) {
        Err(rule) => {
            errs.add(field, s, rule);
            None
        }
        Ok(c) => Some(c),
    }
}

/// Calico's `cidrv4`/`cidrv6` rules: any CIDR or address of the given family.
pub(crate) fn check_cidr_family(errs: &mut Errors, field: &str, s: &str, v: u8) -> Option<Cidr> {
    let c = check_cidr(errs, field, s)?;
    if c.version() != v {
        errs.add(field, s, format!("is not an IPv{v} address or CIDR"));
        return None;
    }
    Some(c)
}

/// A plain IP address of either family.
pub(crate) fn check_ip(errs: &mut Errors, field: &str, s: &str) -> Option<IpAddr> {
    match s.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errs.add(field, s, "is not an IP address");
            None
        }
    }
}

/// A plain IP address of the given family (4 or 6).
pub(crate) fn check_ip_family(errs: &mut Errors, field: &str, s: &str, v: u8) -> Option<IpAddr> {
    match s.parse::<IpAddr>() {
        Ok(a) if (v == 4) == a.is_ipv4() => Some(a),
        _ => {
            errs.add(field, s, format!("is not an IPv{v} address"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cidr_with_host_bits_is_rejected_with_the_masked_form() {
        let mut errs = Errors::default();
        assert!(check_net(&mut errs, "spec.cidr", "10.0.0.1/16").is_none());
        let e = &errs.into_result().unwrap_err()[0];
        assert_eq!(
            e.to_string(),
            r#"spec.cidr: "10.0.0.1/16" has host bits set; a CIDR must be strictly masked (10.0.0.0/16)"#
        );
    }

    #[test]
    fn ipv6_cidrs_are_masked_and_canonicalised() {
        let c = Cidr::parse("fd00:0:0:0::1/64").unwrap();
        assert_eq!(c.masked().to_string(), "fd00::/64");
        assert_eq!(canonical_text("FD00:0::/48").as_deref(), Some("fd00::/48"));
        assert!(Cidr::parse("fd00::/129").is_err());
    }

    #[test]
    fn bare_addresses_count_as_full_length_networks() {
        assert_eq!(Cidr::parse_or_ip("10.1.2.3").unwrap().prefix_len, 32);
        assert_eq!(Cidr::parse_or_ip("fd00::1").unwrap().prefix_len, 128);
        assert!(Cidr::parse("10.1.2.3").is_err());
    }

    #[test]
    fn overlap_is_symmetric() {
        let a = Cidr::parse("169.254.0.0/16").unwrap();
        let b = Cidr::parse("169.0.0.0/8").unwrap();
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        let v6 = Cidr::parse("fe80::/10").unwrap();
        assert!(!a.overlaps(&v6));
    }

    #[test]
    fn malformed_cidrs_are_rejected() {
        for s in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/+8",
            "x/8",
            "010.0.0.0/8",
        ] {
            assert!(Cidr::parse(s).is_err(), "{s}");
        }
    }
}
