//! Speaker and peer configuration, with defaults matching how Calico configures BIRD, and the
//! checks that reject bad values before anything changes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::error::ConfigError;
use crate::family::{Family, FamilySet};
use crate::policy::{Policy, peer_path};

/// Configuration of one BGP instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// BGP identifier (Calico: the node's IPv4 address).
    pub router_id: Ipv4Addr,
    /// Local AS (Calico default 64512).
    pub local_as: u32,
    /// Route reflection cluster id; the router id when `None` (RFC 4456 §7).
    pub cluster_id: Option<Ipv4Addr>,
    /// Hold time proposed in OPEN (default 240 s, as BIRD). 0 disables keepalives.
    pub hold_time: Duration,
    /// Keepalive interval; `None` = a third of the negotiated hold time.
    pub keepalive: Option<Duration>,
    /// ConnectRetry timer (Calico: `connect retry time 5`).
    pub connect_retry: Duration,
    /// Delay before the first connection attempt to a new peer (Calico: `connect delay time 2`).
    pub connect_delay: Duration,
    /// First idle hold after a session error (Calico: `error wait time 5,30`).
    pub idle_hold_initial: Duration,
    /// Cap of the doubling idle hold.
    pub idle_hold_max: Duration,
    /// A session Established at least this long resets the idle hold to its initial value.
    pub idle_hold_reset_after: Duration,
    /// Graceful restart (RFC 4724).
    pub graceful_restart: GracefulRestartConfig,
    /// Best path and ECMP options.
    pub decision: DecisionConfig,
    /// Advertise the Extended Message capability (RFC 8654).
    pub extended_message: bool,
}

impl SpeakerConfig {
    /// A configuration with the defaults for everything but the identity.
    pub fn new(router_id: Ipv4Addr, local_as: u32) -> SpeakerConfig {
        SpeakerConfig {
            router_id,
            local_as,
            cluster_id: None,
            hold_time: Duration::from_secs(240),
            keepalive: None,
            connect_retry: Duration::from_secs(5),
            connect_delay: Duration::ZERO,
            idle_hold_initial: Duration::from_secs(5),
            idle_hold_max: Duration::from_secs(30),
            idle_hold_reset_after: Duration::from_secs(300),
            graceful_restart: GracefulRestartConfig::default(),
            decision: DecisionConfig::default(),
            extended_message: true,
        }
    }

    /// The effective cluster id.
    pub fn cluster_id(&self) -> Ipv4Addr {
        self.cluster_id.unwrap_or(self.router_id)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.router_id.is_unspecified() {
            return Err(ConfigError::invalid(
                "router_id",
                self.router_id.to_string(),
                "the BGP identifier must be non-zero (RFC 6286 §2.1)",
            ));
        }
        check_as("local_as", self.local_as)?;
        check_hold("hold_time", self.hold_time)?;
        if self.decision.max_paths == 0 {
            return Err(ConfigError::invalid(
                "decision.max_paths",
                "0".into(),
                "at least one path must be selected",
            ));
        }
        if self.graceful_restart.restart_time > Duration::from_secs(4095) {
            return Err(ConfigError::invalid(
                "graceful_restart.restart_time",
                format!("{:?}", self.graceful_restart.restart_time),
                "the restart time has 12 bits: at most 4095 s (RFC 4724 §3)",
            ));
        }
        if self.connect_retry.is_zero() {
            return Err(ConfigError::invalid(
                "connect_retry",
                format!("{:?}", self.connect_retry),
                "the ConnectRetry time must be positive",
            ));
        }
        if self.idle_hold_initial > self.idle_hold_max {
            return Err(ConfigError::invalid(
                "idle_hold_initial",
                format!("{:?}", self.idle_hold_initial),
                "the initial idle hold must not exceed idle_hold_max",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_router_id_or_connect_retry_is_rejected_with_the_field_name() {
        let mut c = SpeakerConfig::new(Ipv4Addr::UNSPECIFIED, 64512);
        assert_eq!(c.validate().unwrap_err().path, "router_id");
        c.router_id = Ipv4Addr::new(10, 0, 0, 1);
        c.connect_retry = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().path, "connect_retry");
        c.connect_retry = Duration::from_secs(5);
        c.local_as = 23456;
        assert_eq!(c.validate().unwrap_err().path, "local_as");
    }

    #[test]
    fn route_reflector_clients_must_be_internal() {
        let s = SpeakerConfig::new(Ipv4Addr::new(10, 0, 0, 1), 64512);
        let mut p = PeerConfig::new("10.0.0.2".parse().unwrap(), 65001);
        p.route_reflector_client = true;
        let e = p.validate(&s).unwrap_err();
        assert_eq!(e.path, "peers[10.0.0.2].route_reflector_client");
    }
}

/// Graceful restart settings (RFC 4724).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Advertise the capability and act as a helper for peers that restart.
    pub enabled: bool,
    /// Restart time advertised to peers (Calico/BIRD default 120 s).
    pub restart_time: Duration,
    /// This speaker is restarting: OPEN carries the R bit, route selection and advertisement
    /// wait for End-of-RIB from the peers or `selection_deferral`.
    pub restarting: bool,
    /// The forwarding state was kept across the restart (F bit): felix keeps kernel routes.
    pub forwarding_preserved: bool,
    /// Longest wait for End-of-RIB when restarting.
    pub selection_deferral: Duration,
    /// As helper: how long stale routes are kept after the peer is back, waiting for its
    /// End-of-RIB.
    pub stale_routes_time: Duration,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        GracefulRestartConfig {
            enabled: true,
            restart_time: Duration::from_secs(120),
            restarting: false,
            forwarding_preserved: true,
            selection_deferral: Duration::from_secs(120),
            stale_routes_time: Duration::from_secs(360),
        }
    }
}

/// Decision process options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionConfig {
    /// Compare MED between routes from different neighbour ASes.
    pub always_compare_med: bool,
    /// Most paths in an ECMP set (1 = no multipath).
    pub max_paths: u8,
    /// Allow ECMP over paths from different neighbour ASes.
    pub multipath_relax: bool,
}

impl Default for DecisionConfig {
    fn default() -> Self {
        DecisionConfig {
            always_compare_med: false,
            max_paths: 16,
            multipath_relax: false,
        }
    }
}

/// Which next hop is advertised to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NextHopMode {
    /// eBGP: our address; iBGP: keep the route's next hop (reflected routes keep theirs); our own
    /// originations: our address (Calico `nextHopMode: Auto`).
    #[default]
    Auto,
    /// Always our address (`next hop self`).
    SelfAddress,
    /// Always the route's next hop (`next hop keep`); our originations still use our address.
    Keep,
}

/// Max-prefix limit (RFC 4486 Cease/1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxPrefix {
    /// Limit of IPv4 prefixes received (held in Adj-RIB-In, filtered ones included).
    pub ipv4: Option<u32>,
    /// Limit of IPv6 prefixes received.
    pub ipv6: Option<u32>,
    /// Restart the session this long after the limit tripped; `None` = stay down until AdminUp.
    pub restart_after: Option<Duration>,
}

impl MaxPrefix {
    pub(crate) fn limit(&self, f: Family) -> Option<u32> {
        match f {
            Family::Ipv4Unicast => self.ipv4,
            Family::Ipv6Unicast => self.ipv6,
        }
    }
}

/// Configuration of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's address (the key).
    pub address: IpAddr,
    /// TCP port to connect to (179).
    pub port: u16,
    /// The peer's AS.
    pub remote_as: u32,
    /// Local AS for this session (Calico `localASNumber`); the speaker's when `None`.
    pub local_as: Option<u32>,
    /// Source address for our connections (Calico `sourceAddress: UseNodeIP`).
    pub local_address: Option<IpAddr>,
    /// Never connect; wait for the peer (Calico: passive when peerIP > myIP in the mesh).
    pub passive: bool,
    /// Families to negotiate.
    pub families: FamilySet,
    /// Every family in `families` must be negotiated (else 2/7 Unsupported Capability); when
    /// false only an empty intersection is an error.
    pub require_all_families: bool,
    /// Hold time override.
    pub hold_time: Option<Duration>,
    /// Keepalive override (Calico `keepaliveTime`).
    pub keepalive: Option<Duration>,
    /// The peer is a route reflector client of this speaker (Calico `rr client`).
    pub route_reflector_client: bool,
    /// Next hop advertised (Calico `nextHopMode`).
    pub next_hop_mode: NextHopMode,
    /// IPv4 next hop to advertise as "self" (default: the session's local address if IPv4).
    pub next_hop_v4: Option<Ipv4Addr>,
    /// IPv6 global next hop to advertise as "self" (default: the session's local address if
    /// IPv6 and not link-local).
    pub next_hop_v6: Option<Ipv6Addr>,
    /// IPv6 link-local next hop sent with the global one when the peer is on-link.
    pub link_local_next_hop: Option<Ipv6Addr>,
    /// Occurrences of our AS allowed in a received AS path (Calico `numAllowedLocalASNumbers`).
    pub allow_local_as: u8,
    /// Check that an eBGP route's first AS is the peer's (RFC 4271 §6.3).
    pub enforce_first_as: bool,
    /// Graceful restart with this peer (needs the speaker's GR enabled).
    pub graceful_restart: bool,
    /// Import policy.
    pub import_policy: Policy,
    /// Export policy.
    pub export_policy: Policy,
    /// Max-prefix limit.
    pub max_prefix: Option<MaxPrefix>,
    /// TCP MD5 key (RFC 2385, Calico `password`). The core only carries it: the driver sets it
    /// on its sockets; a change resets the session.
    pub md5_password: Option<Secret>,
    /// GTSM (RFC 5082, Calico `ttlSecurity`): the largest hop count accepted. Carried for the
    /// driver like `md5_password`.
    pub ttl_security: Option<u8>,
}

/// A secret string whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl PeerConfig {
    /// A peer with defaults: port 179, the address's family, active, GR on, accept-all policies.
    pub fn new(address: IpAddr, remote_as: u32) -> PeerConfig {
        PeerConfig {
            address,
            port: 179,
            remote_as,
            local_as: None,
            local_address: None,
            passive: false,
            families: if address.is_ipv4() {
                FamilySet::IPV4
            } else {
                FamilySet::IPV6
            },
            require_all_families: false,
            hold_time: None,
            keepalive: None,
            route_reflector_client: false,
            next_hop_mode: NextHopMode::Auto,
            next_hop_v4: None,
            next_hop_v6: None,
            link_local_next_hop: None,
            allow_local_as: 0,
            enforce_first_as: true,
            graceful_restart: true,
            import_policy: Policy::default(),
            export_policy: Policy::default(),
            max_prefix: None,
            md5_password: None,
            ttl_security: None,
        }
    }

    pub(crate) fn validate(&self, speaker: &SpeakerConfig) -> Result<(), ConfigError> {
        let base = peer_path(self.address);
        if self.address.is_unspecified() || self.address.is_multicast() {
            return Err(ConfigError::invalid(
                format!("{base}.address"),
                self.address.to_string(),
                "a peer address must be a unicast address",
            ));
        }
        check_as(&format!("{base}.remote_as"), self.remote_as)?;
        if let Some(a) = self.local_as {
            check_as(&format!("{base}.local_as"), a)?;
        }
        if self.families.is_empty() {
            return Err(ConfigError::invalid(
                format!("{base}.families"),
                "[]".into(),
                "a peer needs at least one address family",
            ));
        }
        if let Some(h) = self.hold_time {
            check_hold(&format!("{base}.hold_time"), h)?;
        }
        if self.route_reflector_client
            && self.remote_as != self.local_as.unwrap_or(speaker.local_as)
        {
            return Err(ConfigError::invalid(
                format!("{base}.route_reflector_client"),
                "true".into(),
                "route reflector clients must be iBGP peers (RFC 4456 §5)",
            ));
        }
        if let Some(ll) = self.link_local_next_hop
            && !is_link_local(ll)
        {
            return Err(ConfigError::invalid(
                format!("{base}.link_local_next_hop"),
                ll.to_string(),
                "must be an IPv6 link-local address (fe80::/10)",
            ));
        }
        if let Some(mp) = &self.max_prefix
            && (mp.ipv4 == Some(0) || mp.ipv6 == Some(0))
        {
            return Err(ConfigError::invalid(
                format!("{base}.max_prefix"),
                format!("{mp:?}"),
                "a prefix limit must be at least 1",
            ));
        }
        self.import_policy
            .validate(&format!("{base}.import_policy"))?;
        self.export_policy
            .validate(&format!("{base}.export_policy"))?;
        Ok(())
    }

    /// Whether changing from `self` to `new` needs a session reset (identity, capabilities,
    /// timers, route reflection role); other changes apply as a soft reset.
    pub(crate) fn session_relevant_change(&self, new: &PeerConfig) -> bool {
        self.address != new.address
            || self.port != new.port
            || self.remote_as != new.remote_as
            || self.local_as != new.local_as
            || self.local_address != new.local_address
            || self.passive != new.passive
            || self.families != new.families
            || self.require_all_families != new.require_all_families
            || self.hold_time != new.hold_time
            || self.keepalive != new.keepalive
            || self.route_reflector_client != new.route_reflector_client
            || self.graceful_restart != new.graceful_restart
            || self.md5_password != new.md5_password
            || self.ttl_security != new.ttl_security
    }
}

/// Whether an IPv6 address is link-local (fe80::/10).
pub(crate) fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

fn check_as(path: &str, asn: u32) -> Result<(), ConfigError> {
    if asn == 0 || asn == bgp_wire::AS_TRANS {
        return Err(ConfigError::invalid(
            path,
            asn.to_string(),
            "AS 0 and AS_TRANS (23456) are not usable AS numbers (RFC 7607, RFC 6793)",
        ));
    }
    Ok(())
}

fn check_hold(path: &str, hold: Duration) -> Result<(), ConfigError> {
    let s = hold.as_secs();
    if matches!(s, 1 | 2) || s > u64::from(u16::MAX) || hold.subsec_nanos() != 0 {
        return Err(ConfigError::invalid(
            path,
            format!("{hold:?}"),
            "the hold time must be 0 or 3..=65535 whole seconds (RFC 4271 §4.2)",
        ));
    }
    Ok(())
}
