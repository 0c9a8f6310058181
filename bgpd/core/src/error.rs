//! Errors for bad configuration and bad driver input. Protocol failures are not errors: they
//! are actions ([`crate::Action::SessionDown`]) with a [`crate::DownReason`].

use std::net::IpAddr;

/// A configuration value breaks a rule. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} = {value}: {rule}")]
pub struct ConfigError {
    /// Where the value is (`peers[10.0.0.1].remote_as`).
    pub path: String,
    /// The value given.
    pub value: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

impl ConfigError {
    pub(crate) fn invalid(path: impl Into<String>, value: String, rule: &'static str) -> Self {
        ConfigError {
            path: path.into(),
            value,
            rule,
        }
    }
}

/// An input the speaker cannot apply. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A configuration value is invalid.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    /// The input names a peer that is not configured.
    #[error("peer {0} is not configured")]
    UnknownPeer(IpAddr),
    /// `AddPeer` for an address that is already configured.
    #[error("peer {0} is already configured; use UpdatePeer")]
    DuplicatePeer(IpAddr),
    /// The input needs an Established session.
    #[error("peer {peer} has no established session")]
    NotEstablished {
        /// The peer.
        peer: IpAddr,
    },
    /// ROUTE-REFRESH for a family not negotiated or a peer without the capability.
    #[error("peer {peer} did not negotiate route refresh for {family}")]
    RouteRefreshNotNegotiated {
        /// The peer.
        peer: IpAddr,
        /// The family asked for.
        family: bgp_wire::AfiSafi,
    },
    /// The speaker was shut down.
    #[error("the speaker has been shut down")]
    ShutDown,
}
