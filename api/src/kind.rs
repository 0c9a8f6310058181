//! The resource kinds of `projectcalico.org/v3`: names, etcd plurals, scope and the spellings
//! calicoctl accepts on its command line.

use std::fmt;

/// A `projectcalico.org/v3` resource kind this project understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `IPPool`: an address range IPAM carves into blocks.
    IPPool,
    /// `IPReservation`: addresses IPAM must never hand out.
    IPReservation,
    /// `IPAMConfiguration`: the IPAM singleton `default`.
    IPAMConfiguration,
    /// `BGPConfiguration`: global (`default`) or per-node (`node.<name>`) BGP settings.
    BGPConfiguration,
    /// `BGPPeer`: a BGP peering.
    BGPPeer,
    /// `BGPFilter`: import/export rules referenced by peers.
    BGPFilter,
    /// `Node`: a Calico node.
    Node,
    /// `FelixConfiguration`: dataplane agent settings.
    FelixConfiguration,
    /// `Tier`: an ordered group of policies.
    Tier,
    /// `NetworkPolicy`: namespaced policy.
    NetworkPolicy,
    /// `GlobalNetworkPolicy`: cluster-wide policy.
    GlobalNetworkPolicy,
    /// `StagedNetworkPolicy`: a namespaced policy that is previewed, not enforced.
    StagedNetworkPolicy,
    /// `StagedGlobalNetworkPolicy`: a cluster-wide policy that is previewed, not enforced.
    StagedGlobalNetworkPolicy,
    /// `NetworkSet`: namespaced set of networks selectable by policy.
    NetworkSet,
    /// `GlobalNetworkSet`: cluster-wide set of networks selectable by policy.
    GlobalNetworkSet,
    /// `HostEndpoint`: a host interface policy applies to.
    HostEndpoint,
    /// `WorkloadEndpoint`: a pod interface.
    WorkloadEndpoint,
    /// `Profile`: rules and labels shared by endpoints.
    Profile,
}

/// Per kind: (kind, name, etcd plural, namespaced, calicoctl spellings).
const TABLE: [(Kind, &str, &str, bool, &[&str]); 18] = [
    (
        Kind::IPPool,
        "IPPool",
        "ippools",
        false,
        &["ippool", "ippools", "ipp", "ipps", "pool", "pools"],
    ),
    (
        Kind::IPReservation,
        "IPReservation",
        "ipreservations",
        false,
        &[
            "ipreservation",
            "ipreservations",
            "reservation",
            "reservations",
        ],
    ),
    (
        Kind::IPAMConfiguration,
        "IPAMConfiguration",
        "ipamconfigurations",
        false,
        &[
            "ipamconfiguration",
            "ipamconfigurations",
            "ipamconfig",
            "ipamconfigs",
        ],
    ),
    (
        Kind::BGPConfiguration,
        "BGPConfiguration",
        "bgpconfigurations",
        false,
        &[
            "bgpconfiguration",
            "bgpconfigurations",
            "bgpconfig",
            "bgpconfigs",
        ],
    ),
    (
        Kind::BGPPeer,
        "BGPPeer",
        "bgppeers",
        false,
        &["bgppeer", "bgppeers", "bgpp", "bgpps", "bp", "bps"],
    ),
    (
        Kind::BGPFilter,
        "BGPFilter",
        "bgpfilters",
        false,
        &["bgpfilter", "bgpfilters", "bgpf", "bgpfs", "bf", "bfs"],
    ),
    (
        Kind::Node,
        "Node",
        "nodes",
        false,
        &["node", "nodes", "no", "nos"],
    ),
    (
        Kind::FelixConfiguration,
        "FelixConfiguration",
        "felixconfigurations",
        false,
        &[
            "felixconfiguration",
            "felixconfigurations",
            "felixconfig",
            "felixconfigs",
        ],
    ),
    (Kind::Tier, "Tier", "tiers", false, &["tier", "tiers"]),
    (
        Kind::NetworkPolicy,
        "NetworkPolicy",
        "networkpolicies",
        true,
        &[
            "networkpolicy",
            "networkpolicies",
            "policy",
            "np",
            "policies",
            "pol",
            "pols",
        ],
    ),
    (
        Kind::GlobalNetworkPolicy,
        "GlobalNetworkPolicy",
        "globalnetworkpolicies",
        false,
        &[
            "globalnetworkpolicy",
            "globalnetworkpolicies",
            "gnp",
            "gnps",
        ],
    ),
    (
        Kind::StagedNetworkPolicy,
        "StagedNetworkPolicy",
        "stagednetworkpolicies",
        true,
        &[
            "stagednetworkpolicy",
            "stagednetworkpolicies",
            "stagedpolicy",
            "snp",
            "stagedpolicies",
            "spol",
            "spols",
        ],
    ),
    (
        Kind::StagedGlobalNetworkPolicy,
        "StagedGlobalNetworkPolicy",
        "stagedglobalnetworkpolicies",
        false,
        &[
            "stagedglobalnetworkpolicy",
            "stagedglobalnetworkpolicies",
            "sgnp",
            "sgnps",
        ],
    ),
    (
        Kind::NetworkSet,
        "NetworkSet",
        "networksets",
        true,
        &["networkset", "networksets", "netsets"],
    ),
    (
        Kind::GlobalNetworkSet,
        "GlobalNetworkSet",
        "globalnetworksets",
        false,
        &["globalnetworkset", "globalnetworksets", "gnetsets"],
    ),
    (
        Kind::HostEndpoint,
        "HostEndpoint",
        "hostendpoints",
        false,
        &["hostendpoint", "hostendpoints", "hep", "heps"],
    ),
    (
        Kind::WorkloadEndpoint,
        "WorkloadEndpoint",
        "workloadendpoints",
        true,
        &["workloadendpoint", "workloadendpoints", "wep", "weps"],
    ),
    (
        Kind::Profile,
        "Profile",
        "profiles",
        false,
        &["profile", "profiles", "pro", "pros"],
    ),
];

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 18] = [
        Kind::IPPool,
        Kind::IPReservation,
        Kind::IPAMConfiguration,
        Kind::BGPConfiguration,
        Kind::BGPPeer,
        Kind::BGPFilter,
        Kind::Node,
        Kind::FelixConfiguration,
        Kind::Tier,
        Kind::NetworkPolicy,
        Kind::GlobalNetworkPolicy,
        Kind::StagedNetworkPolicy,
        Kind::StagedGlobalNetworkPolicy,
        Kind::NetworkSet,
        Kind::GlobalNetworkSet,
        Kind::HostEndpoint,
        Kind::WorkloadEndpoint,
        Kind::Profile,
    ];

    fn row(
        self,
    ) -> &'static (
        Kind,
        &'static str,
        &'static str,
        bool,
        &'static [&'static str],
    ) {
        // TABLE is in the same order as the enum.
        &TABLE[self as usize]
    }

    /// The `kind` field value: `"IPPool"`.
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// The plural used in etcd keys and URLs: `"ippools"`, `"networkpolicies"`.
    pub fn plural(self) -> &'static str {
        self.row().2
    }

    /// Whether resources of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        self.row().3
    }

    /// The `kind` field value of a list of this kind: `"IPPoolList"`.
    pub fn list_name(self) -> String {
        format!("{}List", self.name())
    }

    /// The spellings calicoctl accepts for this kind on its command line (lower case).
    pub fn user_spellings(self) -> &'static [&'static str] {
        self.row().4
    }

    /// Resolves a kind the way calicoctl does on its command line: singular, plural or
    /// short name, case-insensitive (`ippool`, `IPPools`, `pool`, `gnp`, `wep`, `bgpconfig`).
    pub fn from_user(s: &str) -> Option<Kind> {
        let lower = s.trim().to_ascii_lowercase();
        TABLE
            .iter()
            .find(|row| row.4.contains(&lower.as_str()))
            .map(|row| row.0)
    }

    /// Resolves the exact `kind` field value of a resource (`"IPPool"`, case-sensitive).
    /// List kinds (`"IPPoolList"`) are not kinds of a resource; see [`Kind::from_list_field`].
    pub fn from_kind_field(s: &str) -> Option<Kind> {
        TABLE.iter().find(|row| row.1 == s).map(|row| row.0)
    }

    /// Resolves the `kind` field value of a list (`"IPPoolList"`) to the kind of its items.
    pub fn from_list_field(s: &str) -> Option<Kind> {
        s.strip_suffix("List").and_then(Kind::from_kind_field)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_enum_order() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].0, *k);
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn calicoctl_spellings_resolve_case_insensitively() {
        assert_eq!(Kind::from_user("IPPools"), Some(Kind::IPPool));
        assert_eq!(Kind::from_user("pool"), Some(Kind::IPPool));
        assert_eq!(Kind::from_user("bgpconfig"), Some(Kind::BGPConfiguration));
        assert_eq!(Kind::from_user("gnp"), Some(Kind::GlobalNetworkPolicy));
        assert_eq!(Kind::from_user("np"), Some(Kind::NetworkPolicy));
        assert_eq!(Kind::from_user("wep"), Some(Kind::WorkloadEndpoint));
        assert_eq!(Kind::from_user("hep"), Some(Kind::HostEndpoint));
        assert_eq!(Kind::from_user("bgpp"), Some(Kind::BGPPeer));
        assert_eq!(
            Kind::from_user("felixconfig"),
            Some(Kind::FelixConfiguration)
        );
        assert_eq!(Kind::from_user("netpol"), None);
    }

    #[test]
    fn every_kind_resolves_from_its_name_plural_and_list() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_kind_field(k.name()), Some(k));
            assert_eq!(Kind::from_user(k.name()), Some(k));
            assert_eq!(Kind::from_user(k.plural()), Some(k));
            assert_eq!(Kind::from_list_field(&k.list_name()), Some(k));
        }
        assert_eq!(Kind::from_kind_field("IPPoolList"), None);
        assert_eq!(Kind::from_kind_field("ippool"), None);
    }

    #[test]
    fn exactly_four_kinds_are_namespaced() {
        let namespaced: Vec<_> = Kind::ALL.iter().filter(|k| k.is_namespaced()).collect();
        assert_eq!(
            namespaced,
            [
                &Kind::NetworkPolicy,
                &Kind::StagedNetworkPolicy,
                &Kind::NetworkSet,
                &Kind::WorkloadEndpoint
            ]
        );
    }
}
