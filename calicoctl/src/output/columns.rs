//! The table columns of every kind, as calicoctl's resource managers define them: the
//! default (`ps`) and `wide` column sets, the headings `custom-columns` may name, and how each
//! cell is printed (Go template formatting: `true`/`false`, `<nil>` for an unset pointer, Go's
//! `%v` for floats such as `1e+06`, lists joined with `,`).

use std::fmt::Write as _;

use fabric_api::{AnyResource, Kind};
use serde::Serialize;

/// The column sets of one kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Columns {
    /// `-o ps` (the default).
    pub(crate) ps: &'static [&'static str],
    /// `-o wide`.
    pub(crate) wide: &'static [&'static str],
    /// Every heading `custom-columns` accepts.
    pub(crate) all: &'static [&'static str],
    /// Whether a `NAMESPACE` column is put first when `-n` or `-A` is given.
    pub(crate) namespace_column: bool,
}

const POLICY_ALL: &[&str] = &["NAME", "NAMESPACE", "ORDER", "SELECTOR", "TIER"];
const GLOBAL_POLICY_ALL: &[&str] = &["NAME", "ORDER", "SELECTOR", "TIER"];

/// The columns of `kind`.
pub(crate) fn columns(kind: Kind) -> Columns {
    let c = |ps, wide, all, namespace_column| Columns {
        ps,
        wide,
        all,
        namespace_column,
    };
    match kind {
        Kind::IPPool => c(
            &["NAME", "CIDR", "SELECTOR"],
            &[
                "NAME",
                "CIDR",
                "NAT",
                "IPIPMODE",
                "VXLANMODE",
                "DISABLED",
                "DISABLEBGPEXPORT",
                "SELECTOR",
                "ASSIGNMENTMODE",
            ],
            &[
                "NAME",
                "CIDR",
                "NAT",
                "IPIPMODE",
                "VXLANMODE",
                "DISABLED",
                "DISABLEBGPEXPORT",
                "SELECTOR",
                "ASSIGNMENTMODE",
            ],
            false,
        ),
        Kind::IPReservation => c(&["NAME"], &["NAME", "CIDRS"], &["NAME", "CIDRS"], false),
        Kind::IPAMConfiguration => c(
            &["NAME", "STRICTAFFINITY", "AUTOALLOCATEBLOCKS"],
            &[
                "NAME",
                "STRICTAFFINITY",
                "AUTOALLOCATEBLOCKS",
                "MAXBLOCKSPERHOST",
            ],
            &[
                "NAME",
                "STRICTAFFINITY",
                "AUTOALLOCATEBLOCKS",
                "MAXBLOCKSPERHOST",
            ],
            false,
        ),
        Kind::BGPConfiguration => {
            const COLS: &[&str] = &["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"];
            c(COLS, COLS, COLS, false)
        }
        Kind::BGPPeer => {
            const COLS: &[&str] = &["NAME", "PEERIP", "NODE", "ASN"];
            c(COLS, COLS, COLS, false)
        }
        Kind::BGPFilter => {
            const COLS: &[&str] = &[
                "NAME",
                "NUMEXPORTV4",
                "NUMIMPORTV4",
                "NUMEXPORTV6",
                "NUMIMPORTV6",
            ];
            c(COLS, COLS, COLS, false)
        }
        Kind::Node => c(
            &["NAME"],
            &["NAME", "ASN", "IPV4", "IPV6"],
            &["NAME", "ASN", "IPV4", "IPV6"],
            false,
        ),
        Kind::FelixConfiguration => c(&["NAME"], &["NAME"], &["NAME"], false),
        Kind::Tier => {
            const COLS: &[&str] = &["NAME", "ORDER"];
            c(COLS, COLS, COLS, false)
        }
        Kind::NetworkPolicy | Kind::StagedNetworkPolicy => c(
            &["NAME", "TIER"],
            &["NAME", "TIER", "ORDER", "SELECTOR"],
            POLICY_ALL,
            true,
        ),
        Kind::GlobalNetworkPolicy | Kind::StagedGlobalNetworkPolicy => c(
            &["NAME", "TIER"],
            &["NAME", "TIER", "ORDER", "SELECTOR"],
            GLOBAL_POLICY_ALL,
            false,
        ),
        Kind::NetworkSet => c(
            &["NAME"],
            &["NAME", "NETS"],
            &["NAME", "NAMESPACE", "NETS"],
            true,
        ),
        Kind::GlobalNetworkSet => c(&["NAME"], &["NAME", "NETS"], &["NAME", "NETS"], false),
        Kind::HostEndpoint => c(
            &["NAME", "NODE"],
            &["NAME", "NODE", "INTERFACE", "IPS", "PROFILES"],
            &["NAME", "NODE", "INTERFACE", "IPS", "PROFILES"],
            false,
        ),
        Kind::WorkloadEndpoint => c(
            &["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"],
            &[
                "NAME",
                "WORKLOAD",
                "NODE",
                "NETWORKS",
                "INTERFACE",
                "PROFILES",
                "NATS",
            ],
            &[
                "NAME",
                "NAMESPACE",
                "NODE",
                "ORCHESTRATOR",
                "WORKLOAD",
                "NETWORKS",
                "NATS",
                "PROFILES",
                "INTERFACE",
            ],
            true,
        ),
        Kind::Profile => c(&["NAME"], &["NAME", "LABELS"], &["NAME", "LABELS"], false),
    }
}

/// What some cells need beyond the resource itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct CellContext {
    /// The cluster's AS number as Node's `ASN` column shows an inherited one: the default
    /// BGPConfiguration's `asNumber`, `64512` when unset, `unknown` when it cannot be read.
    pub(crate) global_as_number: String,
}

/// The text of cell `heading` for `res` (the heading must be one of the kind's `all`).
pub(crate) fn cell(res: &AnyResource, heading: &str, ctx: &CellContext) -> String {
    match heading {
        "NAME" => return res.name().to_string(),
        "NAMESPACE" => return res.namespace().unwrap_or_default().to_string(),
        _ => {}
    }
    match res {
        AnyResource::IPPool(p) => {
            let s = &p.spec;
            match heading {
                "CIDR" => s.cidr.clone(),
                "NAT" => s.nat_outgoing.to_string(),
                "IPIPMODE" => s.ipip_mode.map_or("Never".into(), |m| enum_text(&m)),
                "VXLANMODE" => s.vxlan_mode.map_or("Never".into(), |m| enum_text(&m)),
                "DISABLED" => s.disabled.to_string(),
                "DISABLEBGPEXPORT" => s.disable_bgp_export.to_string(),
                "SELECTOR" => s.node_selector.clone(),
                "ASSIGNMENTMODE" => s.assignment_mode.map_or(NIL.into(), |m| enum_text(&m)),
                _ => String::new(),
            }
        }
        AnyResource::IPReservation(r) => match heading {
            "CIDRS" => join_truncated(&r.spec.reserved_cidrs, 80),
            _ => String::new(),
        },
        AnyResource::IPAMConfiguration(c) => {
            let s = &c.spec;
            match heading {
                "STRICTAFFINITY" => s.strict_affinity.unwrap_or(false).to_string(),
                "AUTOALLOCATEBLOCKS" => s.auto_allocate_blocks.unwrap_or(false).to_string(),
                "MAXBLOCKSPERHOST" => s.max_blocks_per_host.unwrap_or(0).to_string(),
                _ => String::new(),
            }
        }
        AnyResource::BGPConfiguration(c) => {
            let s = &c.spec;
            match heading {
                "LOGSEVERITY" => s.log_severity_screen.clone(),
                "MESHENABLED" => s
                    .node_to_node_mesh_enabled
                    .map_or("-".into(), |b| b.to_string()),
                "ASNUMBER" => s.as_number.map_or("-".into(), |a| a.to_string()),
                _ => String::new(),
            }
        }
        AnyResource::BGPPeer(p) => {
            let s = &p.spec;
            match heading {
                "PEERIP" => s.peer_ip.clone(),
                "NODE" if !s.node.is_empty() => s.node.clone(),
                "NODE" if !s.node_selector.is_empty() => s.node_selector.clone(),
                "NODE" => "(global)".into(),
                "ASN" => s.as_number.map_or(0, |a| a.0).to_string(),
                _ => String::new(),
            }
        }
        AnyResource::BGPFilter(f) => {
            let s = &f.spec;
            match heading {
                "NUMEXPORTV4" => s.export_v4.len().to_string(),
                "NUMIMPORTV4" => s.import_v4.len().to_string(),
                "NUMEXPORTV6" => s.export_v6.len().to_string(),
                "NUMIMPORTV6" => s.import_v6.len().to_string(),
                _ => String::new(),
            }
        }
        AnyResource::Node(n) => {
            let Some(bgp) = &n.spec.bgp else {
                return String::new();
            };
            match heading {
                "ASN" => bgp
                    .as_number
                    .map_or_else(|| format!("({})", ctx.global_as_number), |a| a.to_string()),
                "IPV4" => bgp.ipv4_address.clone(),
                "IPV6" => bgp.ipv6_address.clone(),
                _ => String::new(),
            }
        }
        AnyResource::Tier(t) => match heading {
            "ORDER" => go_float_or_nil(t.spec.order),
            _ => String::new(),
        },
        AnyResource::NetworkPolicy(p) => {
            policy_cell(heading, &p.spec.tier, p.spec.order, &p.spec.selector)
        }
        AnyResource::StagedNetworkPolicy(p) => {
            policy_cell(heading, &p.spec.tier, p.spec.order, &p.spec.selector)
        }
        AnyResource::GlobalNetworkPolicy(p) => {
            policy_cell(heading, &p.spec.tier, p.spec.order, &p.spec.selector)
        }
        AnyResource::StagedGlobalNetworkPolicy(p) => {
            policy_cell(heading, &p.spec.tier, p.spec.order, &p.spec.selector)
        }
        AnyResource::NetworkSet(s) => match heading {
            "NETS" => join_truncated(&s.spec.nets, 80),
            _ => String::new(),
        },
        AnyResource::GlobalNetworkSet(s) => match heading {
            "NETS" => join_truncated(&s.spec.nets, 80),
            _ => String::new(),
        },
        AnyResource::HostEndpoint(h) => {
            let s = &h.spec;
            match heading {
                "NODE" => s.node.clone(),
                "INTERFACE" => s.interface_name.clone(),
                "IPS" => s.expected_ips.join(","),
                "PROFILES" => s.profiles.join(","),
                _ => String::new(),
            }
        }
        AnyResource::WorkloadEndpoint(w) => {
            let s = &w.spec;
            match heading {
                "NODE" => s.node.clone(),
                "ORCHESTRATOR" => s.orchestrator.clone(),
                "WORKLOAD" if s.workload.is_empty() => s.pod.clone(),
                "WORKLOAD" => s.workload.clone(),
                "NETWORKS" => s.ip_networks.join(","),
                // Go prints each IPNAT struct as `{internal external}`.
                "NATS" => s
                    .ip_nats
                    .iter()
                    .map(|n| format!("{{{} {}}}", n.internal_ip, n.external_ip))
                    .collect::<Vec<_>>()
                    .join(","),
                "PROFILES" => s.profiles.join(","),
                "INTERFACE" => s.interface_name.clone(),
                _ => String::new(),
            }
        }
        AnyResource::Profile(p) => match heading {
            "LABELS" => p
                .spec
                .labels_to_apply
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        },
        AnyResource::FelixConfiguration(_) => String::new(),
    }
}

/// How Go's template prints a nil pointer.
const NIL: &str = "<nil>";

fn policy_cell(heading: &str, tier: &str, order: Option<f64>, selector: &str) -> String {
    match heading {
        "TIER" => tier.to_string(),
        "ORDER" => go_float_or_nil(order),
        "SELECTOR" => selector.to_string(),
        _ => String::new(),
    }
}

/// A unit enum as its serialized name (`CrossSubnet`).
fn enum_text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// calicoctl's `joinAndTruncate`: joined with `,`; past `max` characters, cut to `max - 3`
/// and ended with `...`.
fn join_truncated(items: &[String], max: usize) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
        if out.len() > max {
            let mut cut = max - 3;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("...");
            break;
        }
    }
    out
}

fn go_float_or_nil(v: Option<f64>) -> String {
    v.map_or(NIL.into(), go_float)
}

/// A float as Go's `%v` prints it: the shortest representation that reads back exactly, in
/// exponent form (`1e+06`, `1.5e-05`) when the decimal exponent is below -4 or at least 6.
pub(crate) fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1e6`, `1.234567e6`, `-2.5e-5`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let mut out = String::new();
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "{mantissa}e{sign}{:02}", exp.abs());
        out
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go_percent_v() {
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(100.0), "100");
        assert_eq!(go_float(123_456.0), "123456");
        assert_eq!(go_float(1_234_567.0), "1.234567e+06");
        assert_eq!(go_float(100.5), "100.5");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.000_015), "1.5e-05");
        assert_eq!(go_float(-2.0), "-2");
        assert_eq!(go_float(0.0), "0");
    }

    #[test]
    fn long_lists_are_truncated_like_calicoctl() {
        let nets: Vec<String> = (0..20).map(|i| format!("10.{i}.0.0/16")).collect();
        let out = join_truncated(&nets, 80);
        assert_eq!(out.len(), 80);
        assert!(out.ends_with("..."), "{out}");
        assert_eq!(join_truncated(&["a".into(), "b".into()], 80), "a,b");
    }

    #[test]
    fn every_listed_column_is_in_the_kinds_headings() {
        for kind in Kind::ALL {
            let c = columns(kind);
            for h in c.ps.iter().chain(c.wide) {
                assert!(c.all.contains(h), "{kind}: {h} not in {:?}", c.all);
            }
            assert_eq!(c.all.contains(&"NAMESPACE"), c.namespace_column, "{kind}");
        }
    }
}
