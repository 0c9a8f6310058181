//! Small address types shared by the reconcilers: IP family, MAC address, interface names.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::status::InvalidInput;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl IpFamily {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> IpFamily {
        match addr {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    /// The family of a prefix.
    pub fn of_net(net: &IpNet) -> IpFamily {
        IpFamily::of(net.addr())
    }

    /// The digit Calico uses in names (`cali40...`, `cali60...`).
    pub fn digit(self) -> char {
        match self {
            IpFamily::V4 => '4',
            IpFamily::V6 => '6',
        }
    }

    /// The host prefix length: 32 or 128.
    pub fn host_len(self) -> u8 {
        match self {
            IpFamily::V4 => 32,
            IpFamily::V6 => 128,
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        })
    }
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The MAC from a netlink attribute, if it has six bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<MacAddr> {
        <[u8; 6]>::try_from(bytes).ok().map(MacAddr)
    }

    /// True for `00:00:00:00:00:00`.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// True for a multicast (group) address.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// The text is not a MAC address of the form `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address (expected six hex bytes separated by ':')")]
pub struct ParseMacError(String);

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(|| ParseMacError(s.to_string()))?;
            if part.len() != 2 {
                return Err(ParseMacError(s.to_string()));
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| ParseMacError(s.to_string()))?;
        }
        if parts.next().is_some() {
            return Err(ParseMacError(s.to_string()));
        }
        Ok(MacAddr(out))
    }
}

/// Checks a Linux interface name: 1 to 15 bytes, no `/`, whitespace or `:`, not `.` or `..`.
pub fn check_interface_name(path: &str, name: &str) -> Result<(), InvalidInput> {
    match interface_name_rule(name) {
        Some(rule) => Err(InvalidInput::new(path, name, rule)),
        None => Ok(()),
    }
}

/// The interface-name rule `name` breaks, if any (no allocation on the happy path).
pub fn interface_name_rule(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an interface name must not be empty")
    } else if name.len() > 15 {
        Some("an interface name has at most 15 bytes")
    } else if name == "." || name == ".." {
        Some("an interface name must not be \".\" or \"..\"")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some("an interface name must not contain '/', ':', whitespace or control characters")
    } else {
        None
    }
}

/// Checks that a prefix has no host bits set (`10.0.0.1/24` is rejected, `10.0.0.0/24` is
/// fine); the error is the rule broken.
pub fn check_prefix(net: &IpNet) -> Result<(), String> {
    if net.trunc() != *net {
        return Err(format!(
            "host bits must be zero (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_address_round_trips_through_text() {
        let mac: MacAddr = "ee:ee:ee:0a:1b:ff".parse().unwrap();
        assert_eq!(mac.0, [0xee, 0xee, 0xee, 0x0a, 0x1b, 0xff]);
        assert_eq!(mac.to_string(), "ee:ee:ee:0a:1b:ff");
    }

    #[test]
    fn a_malformed_mac_address_is_rejected() {
        for bad in [
            "",
            "ee:ee",
            "ee:ee:ee:ee:ee:ee:ee",
            "eee:e:ee:ee:ee:ee",
            "zz:ee:ee:ee:ee:ee",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn interface_names_follow_the_kernel_rules() {
        assert!(check_interface_name("x", "cali1234567890a").is_ok());
        assert!(check_interface_name("x", "vxlan.calico").is_ok());
        let err = check_interface_name("route.interface", "cali1234567890ab").unwrap_err();
        assert_eq!(err.path, "route.interface");
        assert!(err.rule.contains("15 bytes"));
        assert!(check_interface_name("x", "").is_err());
        assert!(check_interface_name("x", "a/b").is_err());
        assert!(check_interface_name("x", "..").is_err());
    }

    #[test]
    fn a_prefix_with_host_bits_is_rejected() {
        let err = check_prefix(&"10.0.0.1/24".parse().unwrap()).unwrap_err();
        assert!(err.contains("10.0.0.0/24"), "{err}");
        assert!(check_prefix(&"10.0.0.0/24".parse().unwrap()).is_ok());
    }
}
