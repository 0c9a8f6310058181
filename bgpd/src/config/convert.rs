//! Translation of the configuration into the core's types ([`SpeakerConfig`], [`PeerConfig`],
//! [`OriginAttributes`]) and into the socket options the driver applies per neighbour.

use std::time::Duration;

use bgpd_core::{
    DecisionConfig, FamilySet, GracefulRestartConfig, MaxPrefix, NextHopMode, OriginAttributes,
    PeerConfig, Policy, Secret, SpeakerConfig,
};

use super::{Config, NeighborConfig, OriginateConfig};

/// Socket options of one neighbour's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransportOptions {
    /// TCP MD5 key.
    pub password: Option<String>,
    /// GTSM hop count: send TTL 255, accept TTL >= 256 - hops.
    pub ttl_security: Option<u8>,
    /// TTL when GTSM is off; `None` = the system default.
    pub ttl: Option<u8>,
}

fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl Config {
    /// The speaker configuration; `restarting` sets the graceful-restart R bit.
    pub(crate) fn speaker_config(&self, restarting: bool) -> SpeakerConfig {
        let mut s = SpeakerConfig::new(self.router_id, self.asn);
        s.cluster_id = self
            .cluster_id
            .or_else(|| self.neighbors.iter().find_map(|n| n.cluster_id));
        s.hold_time = secs(self.hold_time);
        s.keepalive = self.keepalive.map(secs);
        s.connect_retry = secs(self.connect_retry);
        s.connect_delay = secs(self.connect_delay);
        s.idle_hold_initial = secs(self.error_wait[0]);
        s.idle_hold_max = secs(self.error_wait[1]);
        let gr = &self.graceful_restart;
        s.graceful_restart = GracefulRestartConfig {
            enabled: gr.enabled,
            restart_time: secs(gr.restart_time),
            restarting: restarting && gr.enabled,
            forwarding_preserved: gr.forwarding_preserved,
            selection_deferral: secs(gr.selection_deferral),
            stale_routes_time: secs(gr.stale_routes_time),
        };
        s.decision = DecisionConfig {
            always_compare_med: self.always_compare_med,
            max_paths: self.max_paths,
            multipath_relax: self.multipath_relax,
        };
        s.extended_message = self.extended_message;
        s
    }

    /// The core configuration of a neighbour (policies resolved by name).
    pub(crate) fn peer_config(&self, n: &NeighborConfig) -> PeerConfig {
        let mut p = PeerConfig::new(n.address, n.remote_asn);
        p.port = n.port;
        p.local_as = n.local_asn;
        p.local_address = n.local_address;
        p.passive = n.passive;
        if let Some(f) = &n.families {
            p.families = f.iter().map(|f| f.to_core()).collect::<FamilySet>();
        }
        p.require_all_families = n.require_all_families;
        p.hold_time = n.hold_time.map(secs);
        p.keepalive = n.keepalive.map(secs);
        p.route_reflector_client = n.route_reflector_client;
        p.next_hop_mode = if n.next_hop_self {
            NextHopMode::SelfAddress
        } else if n.next_hop_keep {
            NextHopMode::Keep
        } else {
            NextHopMode::Auto
        };
        p.next_hop_v4 = n.next_hop_v4;
        p.next_hop_v6 = n.next_hop_v6;
        p.link_local_next_hop = n.link_local_next_hop;
        p.allow_local_as = n.allow_local_as;
        p.enforce_first_as = n.enforce_first_as;
        p.graceful_restart = n.graceful_restart;
        let policy = |name: &Option<String>| {
            name.as_ref()
                .and_then(|name| self.policy.get(name))
                .map_or_else(Policy::accept_all, |p| p.to_core())
        };
        p.import_policy = policy(&n.import_policy);
        p.export_policy = policy(&n.export_policy);
        p.max_prefix = n.max_prefix.as_ref().map(|m| MaxPrefix {
            ipv4: m.ipv4,
            ipv6: m.ipv6,
            restart_after: m.restart_after.map(|s| Duration::from_secs(u64::from(s))),
        });
        p.md5_password = n.password.clone().map(Secret);
        p.ttl_security = n.ttl_security;
        p
    }

    /// Socket options of a neighbour: GTSM, else the configured TTL, else 1 hop for eBGP (as
    /// BIRD does without `multihop`) and the system default for iBGP.
    pub(crate) fn transport(&self, n: &NeighborConfig) -> TransportOptions {
        let ebgp = n.local_asn.unwrap_or(self.asn) != n.remote_asn;
        TransportOptions {
            password: n.password.clone(),
            ttl_security: n.ttl_security,
            ttl: match (n.ttl_security, n.multihop) {
                (Some(_), _) => None,
                (None, Some(m)) => Some(m),
                (None, None) if ebgp => Some(1),
                (None, None) => None,
            },
        }
    }
}

impl OriginateConfig {
    /// The core attributes of this origination.
    pub(crate) fn attributes(&self) -> OriginAttributes {
        OriginAttributes {
            communities: self.communities.clone(),
            large_communities: self.large_communities.clone(),
            local_pref: self.local_pref,
            med: self.med,
            next_hop: self.next_hop,
        }
    }
}
