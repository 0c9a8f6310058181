//! Import/export policies in TOML (`[policy.<name>]` with ordered `[[policy.<name>.rule]]`) and
//! their translation to the core's [`bgpd_core::Policy`]: the model Calico `BGPFilter` maps onto.

use bgp_wire::{Community, LargeCommunity};
use bgpd_core::{Family, Match, Operation, PeerType, Policy, PolicyRule, PrefixOp, RouteSource};
use ipnet::IpNet;
use serde::Deserialize;

use super::{ConfigError, FamilyName, de};

/// Accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Let the route through.
    #[default]
    Accept,
    /// Drop it.
    Reject,
}

/// How `prefix` is compared with the route's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrefixMatchOp {
    /// Within the prefix, length in `prefix-length` (default: from its length to the maximum).
    #[default]
    In,
    /// Not `in`.
    NotIn,
    /// Exactly the prefix.
    Equal,
    /// Not exactly the prefix.
    NotEqual,
}

/// iBGP or eBGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerTypeName {
    /// Same AS.
    Ibgp,
    /// Different AS.
    Ebgp,
}

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteSourceName {
    /// Originated by this speaker.
    Local,
    /// Learned from a neighbour.
    Remote,
}

/// A named policy: rules in order, first match decides, else `default`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PolicyConfig {
    /// Verdict when no rule matches.
    #[serde(default)]
    pub default: Verdict,
    /// The rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
}

/// One rule: every condition given must hold; then `action`, and for accepted routes the `set-*`,
/// `add-*` and `prepend` operations.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RuleConfig {
    /// Match the route's prefix against this prefix.
    #[serde(default, deserialize_with = "de::opt")]
    pub prefix: Option<IpNet>,
    /// How to compare (`in`, `not-in`, `equal`, `not-equal`).
    #[serde(default)]
    pub prefix_op: PrefixMatchOp,
    /// Inclusive prefix-length range `[min, max]` for `in`/`not-in`.
    #[serde(default)]
    pub prefix_length: Option<[u8; 2]>,
    /// The route's family.
    #[serde(default)]
    pub family: Option<FamilyName>,
    /// The route carries every one of these standard communities.
    #[serde(default, deserialize_with = "de::list")]
    pub community: Vec<Community>,
    /// The route carries every one of these large communities.
    #[serde(default, deserialize_with = "de::list")]
    pub large_community: Vec<LargeCommunity>,
    /// The AS path starts with these AS numbers.
    #[serde(default)]
    pub as_path_prefix: Option<Vec<u32>>,
    /// The peer (on import: the sender; on export: the receiver) is iBGP or eBGP.
    #[serde(default)]
    pub peer_type: Option<PeerTypeName>,
    /// The route is ours or learned.
    #[serde(default)]
    pub source: Option<RouteSourceName>,
    /// Accept or reject a matching route.
    #[serde(default)]
    pub action: Verdict,
    /// Set LOCAL_PREF.
    #[serde(default)]
    pub set_local_pref: Option<u32>,
    /// Set MULTI_EXIT_DISC.
    #[serde(default)]
    pub set_med: Option<u32>,
    /// Add standard communities.
    #[serde(default, deserialize_with = "de::list")]
    pub add_community: Vec<Community>,
    /// Add large communities.
    #[serde(default, deserialize_with = "de::list")]
    pub add_large_community: Vec<LargeCommunity>,
    /// Prepend the AS path this many times (1..=32).
    #[serde(default)]
    pub prepend: Option<u8>,
    /// AS to prepend (default: the session's local AS).
    #[serde(default)]
    pub prepend_asn: Option<u32>,
}

impl PolicyConfig {
    /// Checks the rules; `key` names the policy (`policy.calico-export`).
    pub(crate) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        for (i, r) in self.rules.iter().enumerate() {
            let k = format!("{key}.rule[{i}]");
            if let Some(p) = r.prefix
                && p.trunc() != p
            {
                return Err(ConfigError::invalid(
                    format!("{k}.prefix"),
                    p,
                    format!("host bits must be clear (write {})", p.trunc()),
                ));
            }
            if let Some([min, max]) = r.prefix_length {
                let Some(p) = r.prefix else {
                    return Err(ConfigError::invalid(
                        format!("{k}.prefix-length"),
                        format!("[{min}, {max}]"),
                        "prefix-length needs a prefix",
                    ));
                };
                if !matches!(r.prefix_op, PrefixMatchOp::In | PrefixMatchOp::NotIn) {
                    return Err(ConfigError::invalid(
                        format!("{k}.prefix-length"),
                        format!("[{min}, {max}]"),
                        "prefix-length applies to prefix-op \"in\" and \"not-in\" only",
                    ));
                }
                if min > max || min < p.prefix_len() || max > p.max_prefix_len() {
                    return Err(ConfigError::invalid(
                        format!("{k}.prefix-length"),
                        format!("[{min}, {max}]"),
                        format!(
                            "the range must satisfy {} <= min <= max <= {}",
                            p.prefix_len(),
                            p.max_prefix_len()
                        ),
                    ));
                }
            }
            if let Some(n) = r.prepend
                && !(1..=32).contains(&n)
            {
                return Err(ConfigError::invalid(
                    format!("{k}.prepend"),
                    n,
                    "an AS path prepend count must be 1..=32",
                ));
            }
            if r.prepend_asn.is_some() && r.prepend.is_none() {
                return Err(ConfigError::invalid(
                    format!("{k}.prepend-asn"),
                    r.prepend_asn.unwrap_or_default(),
                    "prepend-asn needs prepend (the count)",
                ));
            }
            if let Some(a) = r.prepend_asn {
                super::validate::asn(&format!("{k}.prepend-asn"), a)?;
            }
            if r.action == Verdict::Reject && r.has_operations() {
                return Err(ConfigError::invalid(
                    format!("{k}.action"),
                    "reject",
                    "a rejecting rule cannot change the route (remove the set-/add-/prepend keys)",
                ));
            }
        }
        Ok(())
    }

    /// The core policy.
    pub(crate) fn to_core(&self) -> Policy {
        Policy {
            rules: self.rules.iter().map(RuleConfig::to_core).collect(),
            default_action: self.default.to_core(),
        }
    }
}

impl Verdict {
    fn to_core(self) -> bgpd_core::Verdict {
        match self {
            Verdict::Accept => bgpd_core::Verdict::Accept,
            Verdict::Reject => bgpd_core::Verdict::Reject,
        }
    }
}

impl FamilyName {
    /// The core family.
    pub(crate) fn to_core(self) -> Family {
        match self {
            FamilyName::Ipv4 => Family::Ipv4Unicast,
            FamilyName::Ipv6 => Family::Ipv6Unicast,
        }
    }
}

impl RuleConfig {
    fn has_operations(&self) -> bool {
        self.set_local_pref.is_some()
            || self.set_med.is_some()
            || !self.add_community.is_empty()
            || !self.add_large_community.is_empty()
            || self.prepend.is_some()
    }

    fn to_core(&self) -> PolicyRule {
        let mut matches = Vec::new();
        if let Some(cidr) = self.prefix {
            let op = match self.prefix_op {
                PrefixMatchOp::In => PrefixOp::In,
                PrefixMatchOp::NotIn => PrefixOp::NotIn,
                PrefixMatchOp::Equal => PrefixOp::Equal,
                PrefixMatchOp::NotEqual => PrefixOp::NotEqual,
            };
            matches.push(Match::Prefix {
                cidr,
                op,
                length: self.prefix_length.map(|[a, b]| (a, b)),
            });
        }
        if let Some(f) = self.family {
            matches.push(Match::Family(f.to_core()));
        }
        matches.extend(self.community.iter().map(|c| Match::Community(*c)));
        matches.extend(
            self.large_community
                .iter()
                .map(|c| Match::LargeCommunity(*c)),
        );
        if let Some(p) = &self.as_path_prefix {
            matches.push(Match::AsPathPrefix(p.clone()));
        }
        if let Some(t) = self.peer_type {
            matches.push(Match::PeerType(match t {
                PeerTypeName::Ibgp => PeerType::Internal,
                PeerTypeName::Ebgp => PeerType::External,
            }));
        }
        if let Some(s) = self.source {
            matches.push(Match::Source(match s {
                RouteSourceName::Local => RouteSource::Local,
                RouteSourceName::Remote => RouteSource::Remote,
            }));
        }
        let mut operations = Vec::new();
        if let Some(lp) = self.set_local_pref {
            operations.push(Operation::SetLocalPref(lp));
        }
        if let Some(med) = self.set_med {
            operations.push(Operation::SetMed(med));
        }
        operations.extend(
            self.add_community
                .iter()
                .map(|c| Operation::AddCommunity(*c)),
        );
        operations.extend(
            self.add_large_community
                .iter()
                .map(|c| Operation::AddLargeCommunity(*c)),
        );
        if let Some(count) = self.prepend {
            operations.push(Operation::PrependAsPath {
                asn: self.prepend_asn,
                count,
            });
        }
        PolicyRule {
            matches,
            action: self.action.to_core(),
            operations,
        }
    }
}
