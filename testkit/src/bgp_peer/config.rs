//! What a raw test peer says about itself in its OPEN, and how it keeps received routes.

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_wire::{
    AddPathMode, AfiSafi, AsPath, Capability, GracefulRestart, Open, Origin, PathAttributes,
};

/// How the peer keeps the routes it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableMode {
    /// Every route with its attributes and next hop, in [`crate::bgp_peer::PeerState::routes`].
    Full,
    /// Only the set of prefixes currently held (no attributes, no per-prefix allocation beyond
    /// the set itself), and the instant the count first reaches `target`.
    Count {
        /// The count whose first arrival is timed.
        target: usize,
    },
}

/// The parameters of a raw peer: its OPEN (AS, router id, hold time, capabilities), the route
/// table mode and the handshake deadline. Build with [`PeerConfig::new`] and the builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Local AS (4-octet; the OPEN's 2-octet field becomes AS_TRANS above 65535).
    pub asn: u32,
    /// BGP Identifier.
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds; KEEPALIVEs go out every third of the negotiated one.
    pub hold_time: u16,
    /// Capabilities other than 4-octet AS (that one is governed by `four_octet_as`).
    pub capabilities: Vec<Capability>,
    /// Advertise the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
    /// How received routes are kept.
    pub table: TableMode,
    /// Deadline for TCP connect / accept and for reaching Established.
    pub timeout: Duration,
}

impl PeerConfig {
    /// A peer of `asn` with IPv4 unicast (Multiprotocol), Route Refresh, 4-octet AS, hold time
    /// 90 s, a full route table and a 30 s handshake deadline.
    pub fn new(asn: u32, router_id: Ipv4Addr) -> PeerConfig {
        PeerConfig {
            asn,
            router_id,
            hold_time: 90,
            capabilities: vec![
                Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
                Capability::RouteRefresh,
            ],
            four_octet_as: true,
            table: TableMode::Full,
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets the proposed hold time (0 disables KEEPALIVEs and the hold timer).
    pub fn hold_time(mut self, seconds: u16) -> Self {
        self.hold_time = seconds;
        self
    }

    /// Adds a Multiprotocol capability for `family` (no-op if already present).
    pub fn family(mut self, family: AfiSafi) -> Self {
        let cap = Capability::Multiprotocol(family);
        if !self.capabilities.contains(&cap) {
            self.capabilities.push(cap);
        }
        self
    }

    /// Removes every capability with this code (for example to drop Route Refresh).
    pub fn without_capability(mut self, code: u8) -> Self {
        self.capabilities.retain(|c| c.code() != code);
        if code == bgp_wire::iana::capability::FOUR_OCTET_AS {
            self.four_octet_as = false;
        }
        self
    }

    /// Leaves out the 4-octet AS capability: the peer behaves as an old 2-octet speaker.
    pub fn without_four_octet_as(mut self) -> Self {
        self.four_octet_as = false;
        self
    }

    /// Adds a Graceful Restart capability with this restart time and families (F bit each).
    pub fn graceful_restart(mut self, restart_time: u16, families: &[(AfiSafi, bool)]) -> Self {
        self.capabilities
            .retain(|c| !matches!(c, Capability::GracefulRestart(_)));
        self.capabilities
            .push(Capability::GracefulRestart(GracefulRestart {
                restart_time,
                families: families.to_vec(),
                ..GracefulRestart::default()
            }));
        self
    }

    /// Adds (or extends) the ADD-PATH capability with `family` in `mode`.
    pub fn add_path(mut self, family: AfiSafi, mode: AddPathMode) -> Self {
        let existing = self.capabilities.iter_mut().find_map(|c| match c {
            Capability::AddPath(entries) => Some(entries),
            _ => None,
        });
        match existing {
            Some(entries) => {
                entries.retain(|(af, _)| *af != family);
                entries.push((family, mode));
            }
            None => self
                .capabilities
                .push(Capability::AddPath(vec![(family, mode)])),
        }
        self
    }

    /// Adds the Extended Message capability (RFC 8654).
    pub fn extended_message(mut self) -> Self {
        if !self.capabilities.contains(&Capability::ExtendedMessage) {
            self.capabilities.push(Capability::ExtendedMessage);
        }
        self
    }

    /// Adds any capability as given.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Keeps only a count of held prefixes and times the first arrival at `target`.
    pub fn counting(mut self, target: usize) -> Self {
        self.table = TableMode::Count { target };
        self
    }

    /// Sets the connect / accept / Established deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The OPEN this configuration sends.
    pub fn open(&self) -> Open {
        let mut open = Open::new(
            self.asn,
            self.hold_time,
            self.router_id,
            self.capabilities.clone(),
        );
        if !self.four_octet_as {
            open.capabilities
                .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
        }
        open
    }
}

/// ORIGIN IGP and an AS_SEQUENCE of `as_path`: the attributes an eBGP speaker originating a
/// route sends (the next hop is given separately when announcing).
pub fn ebgp_attributes(as_path: &[u32]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(as_path.iter().copied())),
        ..PathAttributes::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_open_carries_ipv4_route_refresh_and_four_octet_as() {
        let open = PeerConfig::new(4_200_000_001, Ipv4Addr::new(192, 0, 2, 1)).open();
        assert_eq!(open.asn(), 4_200_000_001);
        assert_eq!(u32::from(open.my_as), bgp_wire::AS_TRANS);
        assert_eq!(
            open.multiprotocol().collect::<Vec<_>>(),
            [AfiSafi::IPV4_UNICAST]
        );
        assert!(open.capabilities.contains(&Capability::RouteRefresh));
    }

    #[test]
    fn add_path_entries_for_several_families_share_one_capability() {
        let cfg = PeerConfig::new(65001, Ipv4Addr::new(192, 0, 2, 1))
            .add_path(AfiSafi::IPV4_UNICAST, AddPathMode::Both)
            .add_path(AfiSafi::IPV6_UNICAST, AddPathMode::Receive)
            .add_path(AfiSafi::IPV4_UNICAST, AddPathMode::Send);
        let open = cfg.open();
        let entries: Vec<_> = open.add_path().collect();
        assert_eq!(
            entries,
            [
                (AfiSafi::IPV6_UNICAST, AddPathMode::Receive),
                (AfiSafi::IPV4_UNICAST, AddPathMode::Send)
            ]
        );
    }

    #[test]
    fn a_two_octet_peer_sends_no_four_octet_as_capability() {
        let open = PeerConfig::new(65001, Ipv4Addr::new(192, 0, 2, 1))
            .without_four_octet_as()
            .open();
        assert_eq!(open.four_octet_as(), None);
        assert_eq!(open.my_as, 65001);
    }
}
