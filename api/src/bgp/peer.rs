//! `BGPPeer`: a peering between Calico nodes and a router (by `peerIP`), other Calico nodes
//! (by `peerSelector`) or local workloads, global or limited to some nodes.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::bgp::{ASNumber, BGPPassword, check_as_number, check_password};
use crate::error::{Errors, index};
use crate::is_false;
use crate::resource::{Rules, resource};
use crate::validate::check_selector;
use crate::validate::duration::Duration;
use crate::validate::names::check_name;

resource!(
    /// A BGP peering.
    BGPPeer,
    BGPPeerSpec
);

/// How the next hop of routes sent to the peer is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NextHopMode {
    /// BGP's default behaviour.
    Auto,
    /// `next hop self`.
    #[serde(rename = "Self")]
    SelfHop,
    /// `next hop keep`.
    Keep,
}

/// Which source address the session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceAddress {
    /// The node's IP (default).
    UseNodeIP,
    /// No explicit source address.
    None,
}

/// Whether reverse peerings between Calico nodes are generated automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReversePeering {
    /// Generated (default).
    Auto,
    /// A separate BGPPeer is needed.
    Manual,
}

/// `BGPPeer.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPeerSpec {
    /// The one node that has this peering (exclusive with `nodeSelector`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// The nodes that have this peering (exclusive with `node`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    /// Peer address: `ip`, `ipv4:port` or `[ipv6]:port`.
    #[serde(default, rename = "peerIP", skip_serializing_if = "String::is_empty")]
    pub peer_ip: String,
    /// The peer's AS number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<ASNumber>,
    /// Local AS number for this peering (overrides the node's).
    #[serde(
        default,
        rename = "localASNumber",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_as_number: Option<ASNumber>,
    /// Calico nodes to peer with (exclusive with `peerIP` and `asNumber`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer_selector: String,
    /// Deprecated: `next hop keep` (use `nextHopMode`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_original_next_hop: bool,
    /// Next-hop handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_mode: Option<NextHopMode>,
    /// TCP MD5 password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<BGPPassword>,
    /// Source address choice (default `UseNodeIP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<SourceAddress>,
    /// Graceful-restart time (BIRD default 120s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_time: Option<Duration>,
    /// Keepalive interval (BIRD default: a third of the hold time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<Duration>,
    /// Times our AS may appear in received AS paths (allowas-in).
    #[serde(
        default,
        rename = "numAllowedLocalASNumbers",
        skip_serializing_if = "Option::is_none"
    )]
    pub num_allowed_local_as_numbers: Option<i32>,
    /// GTSM (RFC 5082): hop count to the peer.
    #[serde(
        default,
        rename = "ttlSecurity",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_security: Option<u8>,
    /// Gateway for a static /32 (/128) route to the peer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reachable_by: String,
    /// BGPFilter names, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// Local workloads to peer with (needs `asNumber`; exclusive with `peerIP`/`peerSelector`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local_workload_selector: String,
    /// Reverse peering generation (default `Auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_peering: Option<ReversePeering>,
}

/// Parses a `peerIP`: `10.0.0.1`, `10.0.0.1:1179`, `fd00::1` or `[fd00::1]:1179`. Returns the
/// address and the port, if one was given.
pub fn parse_peer_ip(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad =
        || "is not a valid peerIP: expected <ip>, <ipv4>:<port> or [<ipv6>]:<port>".to_string();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        let ip: std::net::Ipv6Addr = h.parse().map_err(|_| bad())?;
        (IpAddr::V6(ip), p)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or_else(bad)?;
        let ip: std::net::Ipv4Addr = h.parse().map_err(|_| bad())?;
        (IpAddr::V4(ip), p)
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p >= 1 => Ok((host, Some(p))),
        _ => Err("has an invalid port; ports are 1-65535".to_string()),
    }
}

impl BGPPeerSpec {
    /// Whether the peering applies to every node (neither `node` nor `nodeSelector`).
    pub fn is_global(&self) -> bool {
        self.node.is_empty() && self.node_selector.is_empty()
    }

    /// The source-address choice in effect (`UseNodeIP` when unset).
    pub fn effective_source_address(&self) -> SourceAddress {
        self.source_address.unwrap_or(SourceAddress::UseNodeIP)
    }

    /// Reverse peering in effect (`Auto` when unset).
    pub fn effective_reverse_peering(&self) -> ReversePeering {
        self.reverse_peering.unwrap_or(ReversePeering::Auto)
    }

    /// The next-hop mode in effect: `nextHopMode`, else `Keep` when the deprecated
    /// `keepOriginalNextHop` is set, else `Auto`.
    pub fn effective_next_hop_mode(&self) -> NextHopMode {
        match (self.next_hop_mode, self.keep_original_next_hop) {
            (Some(m), _) => m,
            (None, true) => NextHopMode::Keep,
            (None, false) => NextHopMode::Auto,
        }
    }

    /// The parsed peer address and port (`None` when unset or invalid).
    pub fn parsed_peer_ip(&self) -> Option<(IpAddr, Option<u16>)> {
        parse_peer_ip(&self.peer_ip).ok()
    }
}

impl Rules for BGPPeer {
    fn defaults(&mut self) {}

    fn check(&self, errs: &mut Errors) {
        check_name(errs, "metadata.name", self.metadata.name_str());
        let s = &self.spec;
        if !s.node.is_empty() {
            check_name(errs, "spec.node", &s.node);
            if !s.node_selector.is_empty() {
                errs.rule(
                    "spec.nodeSelector",
                    "cannot be set together with spec.node; use one of them",
                );
            }
        }
        check_selector(errs, "spec.nodeSelector", &s.node_selector);
        check_selector(errs, "spec.peerSelector", &s.peer_selector);
        check_selector(
            errs,
            "spec.localWorkloadSelector",
            &s.local_workload_selector,
        );
        let peer = if s.peer_ip.is_empty() {
            None
        } else {
            match parse_peer_ip(&s.peer_ip) {
                Ok((ip, _)) => Some(ip),
                Err(rule) => {
                    errs.add("spec.peerIP", s.peer_ip.as_str(), rule);
                    None
                }
            }
        };
        check_as_number(errs, "spec.asNumber", s.as_number);
        check_as_number(errs, "spec.localASNumber", s.local_as_number);
        if !s.peer_selector.is_empty() {
            if !s.peer_ip.is_empty() {
                errs.rule(
                    "spec.peerIP",
                    "cannot be set together with spec.peerSelector; use one of them",
                );
            }
            if s.as_number.is_some() {
                errs.rule(
                    "spec.asNumber",
                    "must be empty when peerSelector is set (the AS comes from the selected nodes)",
                );
            }
        }
        if !s.local_workload_selector.is_empty() {
            if !s.peer_ip.is_empty() {
                errs.rule(
                    "spec.peerIP",
                    "must be empty when localWorkloadSelector is set",
                );
            }
            if !s.peer_selector.is_empty() {
                errs.rule(
                    "spec.peerSelector",
                    "must be empty when localWorkloadSelector is set",
                );
            }
            if s.as_number.is_none() {
                errs.rule(
                    "spec.asNumber",
                    "is required when localWorkloadSelector is set",
                );
            }
        }
        check_reachable_by(errs, s, peer);
        if s.keep_original_next_hop && s.next_hop_mode.is_some() {
            errs.rule(
                "spec.keepOriginalNextHop",
                "cannot be set together with nextHopMode (keepOriginalNextHop is deprecated; \
                 use nextHopMode: Keep)",
            );
        }
        if let Some(p) = &s.password {
            check_password(errs, "spec.password", p);
        }
        check_times(errs, s);
        if let Some(n) = s.num_allowed_local_as_numbers
            && n < 0
        {
            errs.add(
                "spec.numAllowedLocalASNumbers",
                n.to_string(),
                "must not be negative",
            );
        }
        for (i, f) in s.filters.iter().enumerate() {
            check_name(errs, &index("spec.filters", i), f);
        }
    }
}

fn check_reachable_by(errs: &mut Errors, s: &BGPPeerSpec, peer: Option<IpAddr>) {
    if s.reachable_by.is_empty() {
        return;
    }
    let Ok(gw) = s.reachable_by.parse::<IpAddr>() else {
        errs.add(
            "spec.reachableBy",
            s.reachable_by.as_str(),
            "is not an IP address",
        );
        return;
    };
    if s.peer_ip.is_empty() {
        errs.rule("spec.reachableBy", "must be empty when peerIP is empty");
    } else if let Some(peer) = peer
        && peer.is_ipv4() != gw.is_ipv4()
    {
        errs.add(
            "spec.reachableBy",
            s.reachable_by.as_str(),
            "is not in the address family of peerIP",
        );
    }
}

fn check_times(errs: &mut Errors, s: &BGPPeerSpec) {
    if let Some(d) = &s.max_restart_time
        && d.as_nanos() < 0
    {
        errs.add("spec.maxRestartTime", d.as_str(), "must not be negative");
    }
    if let Some(d) = &s.keepalive_time
        && d.whole_seconds() < 1
    {
        errs.add(
            "spec.keepaliveTime",
            d.as_str(),
            "must be at least 1s (BGP timers are whole seconds)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ips_take_optional_ports() {
        assert_eq!(
            parse_peer_ip("10.0.0.1"),
            Ok(("10.0.0.1".parse().unwrap(), None))
        );
        assert_eq!(
            parse_peer_ip("10.0.0.1:1179"),
            Ok(("10.0.0.1".parse().unwrap(), Some(1179)))
        );
        assert_eq!(
            parse_peer_ip("[fd00::1]:179"),
            Ok(("fd00::1".parse().unwrap(), Some(179)))
        );
        assert_eq!(
            parse_peer_ip("fd00::1"),
            Ok(("fd00::1".parse().unwrap(), None))
        );
        for bad in [
            "10.0.0.1:0",
            "10.0.0.1:70000",
            "[fd00::1]",
            "fd00::1:x",
            "host:179",
            "",
        ] {
            assert!(parse_peer_ip(bad).is_err(), "{bad}");
        }
    }
}
