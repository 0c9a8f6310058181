//! Import and export policy: ordered rules, first match wins, then the policy's default. This is
//! the model Calico `BGPFilter` maps onto (`importV4`/`exportV4`/`importV6`/`exportV6` rules with
//! `cidr` + `matchOperator` + `prefixLength`, `peerType`, `source`, `communities`,
//! `asPathPrefix`; actions Accept/Reject; operations).
//!
//! **RFC 8212 is not applied by default.** RFC 8212 asks for default-deny on eBGP sessions that
//! have no policy. Calico (through BIRD) always configures explicit filters, so the fabric layer
//! states the defaults it wants in [`Policy::default_action`]; an empty policy accepts.

use std::net::IpAddr;

use bgp_wire::{AsPath, Community, LargeCommunity, Prefix, SegmentType};

use crate::attrs::RouteAttrs;
use crate::error::ConfigError;
use crate::family::Family;

/// Accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Verdict {
    /// Let the route through.
    #[default]
    Accept,
    /// Drop the route.
    Reject,
}

/// An ordered list of rules and the verdict when none matches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Rules, evaluated in order; the first whose matches all hold decides.
    pub rules: Vec<PolicyRule>,
    /// The verdict when no rule matches (default: accept; see the module docs on RFC 8212).
    pub default_action: Verdict,
}

/// One rule: all `matches` must hold (an empty list always holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    /// Conditions, all of which must hold.
    pub matches: Vec<Match>,
    /// What to do with a matching route.
    pub action: Verdict,
    /// Changes applied to an accepted route, in order.
    pub operations: Vec<Operation>,
}

/// How a [`Match::Prefix`] compares the route's prefix with the CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixOp {
    /// The prefix is exactly the CIDR.
    Equal,
    /// The prefix is not exactly the CIDR.
    NotEqual,
    /// The prefix lies within the CIDR, with its length in the range.
    In,
    /// Not [`PrefixOp::In`].
    NotIn,
}

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSource {
    /// Originated by this speaker.
    Local,
    /// Learned from a peer.
    Remote,
}

/// iBGP or eBGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerType {
    /// Same AS.
    Internal,
    /// Different AS.
    External,
}

/// A condition on a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// The route's prefix against a CIDR (Calico `cidr` + `matchOperator` + `prefixLength`).
    /// A CIDR of the other address family never matches `Equal`/`In`.
    Prefix {
        /// The CIDR (host bits must be clear).
        cidr: Prefix,
        /// The comparison.
        op: PrefixOp,
        /// Inclusive prefix-length range for `In`/`NotIn`; `None` means from the CIDR's length
        /// to the family maximum.
        length: Option<(u8, u8)>,
    },
    /// The route's family.
    Family(Family),
    /// The route carries this standard community.
    Community(Community),
    /// The route carries this large community.
    LargeCommunity(LargeCommunity),
    /// The AS path starts with these AS numbers (leftmost first).
    AsPathPrefix(Vec<u32>),
    /// The peer is iBGP or eBGP: on import the peer the route came from, on export the peer it
    /// goes to.
    PeerType(PeerType),
    /// The route is ours or learned.
    Source(RouteSource),
}

/// A change to an accepted route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Set LOCAL_PREF.
    SetLocalPref(u32),
    /// Add a standard community (if absent).
    AddCommunity(Community),
    /// Add a large community (if absent).
    AddLargeCommunity(LargeCommunity),
    /// Prepend `asn` (the local AS of the session when `None`) `count` times.
    PrependAsPath {
        /// The AS to prepend; `None` = the session's local AS.
        asn: Option<u32>,
        /// How many times (1..=32).
        count: u8,
    },
    /// Set MULTI_EXIT_DISC.
    SetMed(u32),
}

/// What a policy evaluation depends on besides the route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicyContext {
    pub peer_type: PeerType,
    pub source: RouteSource,
}

/// The outcome of an evaluation: the verdict and the rule that decided (`None` = default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Outcome {
    pub verdict: Verdict,
    pub rule: Option<usize>,
}

impl Policy {
    /// A policy that accepts everything.
    pub fn accept_all() -> Policy {
        Policy::default()
    }

    /// Whether the policy has no rules (so the outcome does not depend on the route).
    pub(crate) fn is_trivial(&self) -> bool {
        self.rules.is_empty()
    }

    /// Evaluates the rules against a route.
    pub(crate) fn evaluate(
        &self,
        prefix: &Prefix,
        attrs: &RouteAttrs,
        ctx: PolicyContext,
    ) -> Outcome {
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.matches.iter().all(|m| m.holds(prefix, attrs, ctx)) {
                return Outcome {
                    verdict: rule.action,
                    rule: Some(i),
                };
            }
        }
        Outcome {
            verdict: self.default_action,
            rule: None,
        }
    }

    /// The operations of the rule that decided `outcome` (none for the default).
    pub(crate) fn operations(&self, outcome: Outcome) -> &[Operation] {
        outcome
            .rule
            .and_then(|i| self.rules.get(i))
            .map_or(&[], |r| r.operations.as_slice())
    }

    /// Checks the policy; `path` names it in errors (`peers[10.0.0.1].import_policy`).
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        for (i, rule) in self.rules.iter().enumerate() {
            for (j, m) in rule.matches.iter().enumerate() {
                m.validate(&format!("{path}.rules[{i}].matches[{j}]"))?;
            }
            for (j, op) in rule.operations.iter().enumerate() {
                if let Operation::PrependAsPath { count, .. } = op
                    && !(1..=32).contains(count)
                {
                    return Err(ConfigError::invalid(
                        format!("{path}.rules[{i}].operations[{j}].count"),
                        count.to_string(),
                        "an AS path prepend count must be 1..=32",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn max_len(p: &Prefix) -> u8 {
    match p {
        Prefix::V4(_) => 32,
        Prefix::V6(_) => 128,
    }
}

impl Match {
    fn holds(&self, prefix: &Prefix, attrs: &RouteAttrs, ctx: PolicyContext) -> bool {
        match self {
            Match::Prefix { cidr, op, length } => {
                let same_family = Family::of(cidr) == Family::of(prefix);
                let within = || {
                    let (lo, hi) = length.unwrap_or((cidr.prefix_len(), max_len(cidr)));
                    same_family && cidr.contains(prefix) && (lo..=hi).contains(&prefix.prefix_len())
                };
                match op {
                    PrefixOp::Equal => cidr == prefix,
                    PrefixOp::NotEqual => cidr != prefix,
                    PrefixOp::In => within(),
                    PrefixOp::NotIn => !within(),
                }
            }
            Match::Family(f) => Family::of(prefix) == *f,
            Match::Community(c) => attrs.path.communities.contains(c),
            Match::LargeCommunity(c) => attrs.path.large_communities.contains(c),
            Match::AsPathPrefix(asns) => as_path_starts_with(attrs.path.as_path.as_ref(), asns),
            Match::PeerType(t) => ctx.peer_type == *t,
            Match::Source(s) => ctx.source == *s,
        }
    }

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if let Match::Prefix { cidr, length, .. } = self {
            if cidr.trunc() != *cidr {
                return Err(ConfigError::invalid(
                    format!("{path}.cidr"),
                    cidr.to_string(),
                    "a CIDR must not have host bits set",
                ));
            }
            if let Some((lo, hi)) = length {
                let max = max_len(cidr);
                if lo > hi || *hi > max || *lo < cidr.prefix_len() {
                    return Err(ConfigError::invalid(
                        format!("{path}.length"),
                        format!("{lo}..={hi}"),
                        "a prefix-length range must satisfy cidr length <= min <= max <= 32 (IPv4) or 128 (IPv6)",
                    ));
                }
            }
        }
        if let Match::AsPathPrefix(asns) = self
            && asns.is_empty()
        {
            return Err(ConfigError::invalid(
                format!("{path}.as_path_prefix"),
                "[]".to_string(),
                "an AS path prefix needs at least one AS number",
            ));
        }
        Ok(())
    }
}

/// Whether the AS_SEQUENCE at the start of the path begins with `asns`.
fn as_path_starts_with(path: Option<&AsPath>, asns: &[u32]) -> bool {
    let mut leading = path
        .into_iter()
        .flat_map(|p| p.segments.iter())
        .take_while(|s| s.kind == SegmentType::AsSequence)
        .flat_map(|s| s.asns.iter().copied());
    asns.iter().all(|want| leading.next() == Some(*want))
}

/// Applies operations to a copy of the attributes. `local_as` is the session's local AS for
/// prepends without an explicit AS.
pub(crate) fn apply_operations(attrs: &mut RouteAttrs, ops: &[Operation], local_as: u32) {
    for op in ops {
        match op {
            Operation::SetLocalPref(v) => attrs.path.local_pref = Some(*v),
            Operation::SetMed(v) => attrs.path.multi_exit_disc = Some(*v),
            Operation::AddCommunity(c) => {
                if !attrs.path.communities.contains(c) {
                    attrs.path.communities.push(*c);
                }
            }
            Operation::AddLargeCommunity(c) => {
                if !attrs.path.large_communities.contains(c) {
                    attrs.path.large_communities.push(*c);
                }
            }
            Operation::PrependAsPath { asn, count } => {
                let path = attrs.path.as_path.get_or_insert_with(AsPath::default);
                for _ in 0..*count {
                    path.prepend(asn.unwrap_or(local_as));
                }
            }
        }
    }
}

/// The peer type of a session between `local_as` and `remote_as`.
pub(crate) fn peer_type(local_as: u32, remote_as: u32) -> PeerType {
    if local_as == remote_as {
        PeerType::Internal
    } else {
        PeerType::External
    }
}

/// Formats an address for error paths.
pub(crate) fn peer_path(addr: IpAddr) -> String {
    format!("peers[{addr}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_wire::{NextHop, PathAttributes};
    use std::net::Ipv4Addr;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn route(path: &[u32], communities: &[Community]) -> RouteAttrs {
        RouteAttrs {
            path: PathAttributes {
                as_path: Some(AsPath::from_sequence(path.iter().copied())),
                communities: communities.to_vec(),
                ..PathAttributes::default()
            },
            next_hop: NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)),
        }
    }

    const EBGP_REMOTE: PolicyContext = PolicyContext {
        peer_type: PeerType::External,
        source: RouteSource::Remote,
    };

    fn rule(matches: Vec<Match>, action: Verdict) -> PolicyRule {
        PolicyRule {
            matches,
            action,
            operations: vec![],
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_the_default_applies_otherwise() {
        let policy = Policy {
            rules: vec![
                rule(
                    vec![Match::Prefix {
                        cidr: p("10.244.0.0/16"),
                        op: PrefixOp::In,
                        length: Some((24, 28)),
                    }],
                    Verdict::Accept,
                ),
                rule(vec![Match::Family(Family::Ipv4Unicast)], Verdict::Reject),
            ],
            default_action: Verdict::Accept,
        };
        let a = route(&[65001], &[]);
        let eval = |s| policy.evaluate(&p(s), &a, EBGP_REMOTE);
        assert_eq!(eval("10.244.1.0/26").rule, Some(0));
        assert_eq!(eval("10.244.1.0/26").verdict, Verdict::Accept);
        assert_eq!(eval("10.244.1.0/30").verdict, Verdict::Reject);
        assert_eq!(eval("10.244.0.0/16").rule, Some(1));
        assert_eq!(eval("2001:db8::/64").rule, None);
        assert_eq!(eval("2001:db8::/64").verdict, Verdict::Accept);
    }

    #[test]
    fn equal_and_not_equal_compare_the_exact_prefix() {
        let eq = Match::Prefix {
            cidr: p("10.0.0.0/8"),
            op: PrefixOp::Equal,
            length: None,
        };
        let ne = Match::Prefix {
            cidr: p("10.0.0.0/8"),
            op: PrefixOp::NotEqual,
            length: None,
        };
        let a = route(&[], &[]);
        assert!(eq.holds(&p("10.0.0.0/8"), &a, EBGP_REMOTE));
        assert!(!eq.holds(&p("10.0.0.0/9"), &a, EBGP_REMOTE));
        assert!(ne.holds(&p("10.0.0.0/9"), &a, EBGP_REMOTE));
        let not_in = Match::Prefix {
            cidr: p("10.0.0.0/8"),
            op: PrefixOp::NotIn,
            length: None,
        };
        assert!(not_in.holds(&p("192.168.0.0/16"), &a, EBGP_REMOTE));
        assert!(!not_in.holds(&p("10.1.0.0/16"), &a, EBGP_REMOTE));
    }

    #[test]
    fn communities_as_path_prefix_peer_type_and_source_match() {
        let c = Community::new(65000, 100);
        let a = route(&[65001, 65002], &[c]);
        let pr = p("10.0.0.0/24");
        assert!(Match::Community(c).holds(&pr, &a, EBGP_REMOTE));
        assert!(!Match::Community(Community::new(1, 1)).holds(&pr, &a, EBGP_REMOTE));
        assert!(Match::AsPathPrefix(vec![65001]).holds(&pr, &a, EBGP_REMOTE));
        assert!(Match::AsPathPrefix(vec![65001, 65002]).holds(&pr, &a, EBGP_REMOTE));
        assert!(!Match::AsPathPrefix(vec![65002]).holds(&pr, &a, EBGP_REMOTE));
        assert!(Match::PeerType(PeerType::External).holds(&pr, &a, EBGP_REMOTE));
        assert!(!Match::Source(RouteSource::Local).holds(&pr, &a, EBGP_REMOTE));
    }

    #[test]
    fn operations_set_add_and_prepend() {
        let mut a = route(&[65001], &[]);
        let lc = LargeCommunity {
            global_admin: 1,
            local_data_1: 2,
            local_data_2: 3,
        };
        apply_operations(
            &mut a,
            &[
                Operation::SetLocalPref(300),
                Operation::AddCommunity(Community::new(1, 2)),
                Operation::AddCommunity(Community::new(1, 2)),
                Operation::AddLargeCommunity(lc),
                Operation::PrependAsPath {
                    asn: None,
                    count: 2,
                },
                Operation::SetMed(7),
            ],
            64512,
        );
        assert_eq!(a.path.local_pref, Some(300));
        assert_eq!(a.path.communities, vec![Community::new(1, 2)]);
        assert_eq!(a.path.large_communities, vec![lc]);
        assert_eq!(a.path.multi_exit_disc, Some(7));
        assert_eq!(
            a.path.as_path,
            Some(AsPath::from_sequence([64512, 64512, 65001]))
        );
    }

    #[test]
    fn a_bad_prefix_length_range_is_rejected_with_its_path() {
        let policy = Policy {
            rules: vec![rule(
                vec![Match::Prefix {
                    cidr: p("10.0.0.0/16"),
                    op: PrefixOp::In,
                    length: Some((8, 24)),
                }],
                Verdict::Accept,
            )],
            default_action: Verdict::Accept,
        };
        let err = policy
            .validate("peers[10.0.0.1].import_policy")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("peers[10.0.0.1].import_policy.rules[0].matches[0].length"),
            "{err}"
        );
    }
}
