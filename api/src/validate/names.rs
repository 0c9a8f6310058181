//! Name rules: DNS-1123 labels and subdomains, Calico's per-kind resource-name formats,
//! Kubernetes label keys/values and annotations, port names, interface names and MAC addresses.

use std::collections::BTreeMap;

use crate::error::{Errors, join};

/// Longest DNS-1123 label.
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Largest total size of a resource's annotations (keys plus values), in bytes.
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` (no length limit).
fn matches_label_format(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

/// Calico's name format: labels joined by dots, with no length limit.
fn matches_subdomain_format(s: &str) -> bool {
    s.split('.').all(matches_label_format)
}

/// A DNS-1123 label: lower-case alphanumerics and `-`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= DNS1123_LABEL_MAX && matches_label_format(s)
}

/// A DNS-1123 subdomain: labels joined by `.`, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= DNS1123_SUBDOMAIN_MAX && matches_subdomain_format(s)
}

const SUBDOMAIN_RULE: &str = "is not a valid name: use lower-case letters, digits, '-' and '.', \
     starting and ending with a letter or digit (DNS-1123 subdomain)";
const LABEL_RULE: &str = "is not a valid name: use lower-case letters, digits and '-', \
     starting and ending with a letter or digit (DNS-1123 label, no dots)";

/// Calico's default resource-name rule (`metadata.name` of most kinds, and every field that
/// names another resource): a DNS-1123 subdomain.
pub(crate) fn check_name(errs: &mut Errors, field: &str, s: &str) {
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.add(
            field,
            s,
            format!("is too long by {} bytes", s.len() - DNS1123_SUBDOMAIN_MAX),
        );
    } else if !matches_subdomain_format(s) {
        errs.add(field, s, SUBDOMAIN_RULE);
    }
}

/// A DNS-1123 label (tier names, namespaces).
pub(crate) fn check_label_name(errs: &mut Errors, field: &str, s: &str) {
    if s.len() > DNS1123_LABEL_MAX {
        errs.add(
            field,
            s,
            format!("is too long by {} bytes", s.len() - DNS1123_LABEL_MAX),
        );
    } else if !matches_label_format(s) {
        errs.add(field, s, LABEL_RULE);
    }
}

/// Calico's NetworkPolicy/StagedNetworkPolicy name rule: a label, or two labels joined by one
/// dot, or `knp.default.<subdomain>` / `ossg.default.<subdomain>`; at most 253 characters.
pub(crate) fn check_network_policy_name(errs: &mut Errors, field: &str, s: &str) {
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.add(
            field,
            s,
            format!("is too long by {} bytes", s.len() - DNS1123_SUBDOMAIN_MAX),
        );
        return;
    }
    let special = ["knp.default.", "ossg.default."]
        .iter()
        .any(|p| s.strip_prefix(p).is_some_and(matches_subdomain_format));
    if !(special || at_most_two_labels(s)) {
        errs.add(
            field,
            s,
            "is not a valid policy name: use lower-case letters, digits and '-', with at most \
             one '.' (for example default.allow-dns)",
        );
    }
}

/// Calico's GlobalNetworkPolicy/StagedGlobalNetworkPolicy name rule: a label, or two labels
/// joined by one dot; at most 253 characters.
pub(crate) fn check_global_network_policy_name(errs: &mut Errors, field: &str, s: &str) {
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.add(
            field,
            s,
            format!("is too long by {} bytes", s.len() - DNS1123_SUBDOMAIN_MAX),
        );
    } else if !at_most_two_labels(s) {
        errs.add(
            field,
            s,
            "is not a valid policy name: use lower-case letters, digits and '-', with at most \
             one '.' (for example default.allow-dns)",
        );
    }
}

fn at_most_two_labels(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| matches_label_format(p))
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`: the name part of a label key, and label values.
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter()
            .all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
}

/// Why `key` is not a Kubernetes qualified name (`[prefix/]name`), or `None` when it is one.
pub fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Some("has an empty prefix before '/'".into());
        }
        if !is_dns1123_subdomain(p) {
            return Some(format!(
                "has prefix {p:?}, which is not a DNS-1123 subdomain (lower-case, at most 253 characters)"
            ));
        }
        if name.contains('/') {
            return Some("has more than one '/'".into());
        }
    }
    if name.is_empty() {
        return Some("has an empty name part".into());
    }
    if name.len() > DNS1123_LABEL_MAX {
        return Some("has a name part longer than 63 characters".into());
    }
    if !matches_qualified_name_part(name) {
        return Some(
            "is not a valid key: use letters, digits, '-', '_' and '.', starting and ending with \
             a letter or digit, optionally after a DNS prefix and '/'"
                .into(),
        );
    }
    None
}

/// Why `value` is not a valid Kubernetes label value, or `None` when it is one.
pub fn label_value_problem(value: &str) -> Option<String> {
    if value.len() > DNS1123_LABEL_MAX {
        return Some("is longer than 63 characters".into());
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        return Some(
            "is not a valid label value: use letters, digits, '-', '_' and '.', starting and \
             ending with a letter or digit"
                .into(),
        );
    }
    None
}

/// Kubernetes label rules for a whole map: keys are qualified names, values label values.
pub(crate) fn check_labels(errs: &mut Errors, field: &str, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        if let Some(p) = qualified_name_problem(k) {
            errs.add(field, k, format!("is not a valid label key: it {p}"));
        }
        if let Some(p) = label_value_problem(v) {
            errs.add(join(field, k), v, p);
        }
    }
}

/// Kubernetes annotation rules: keys are qualified names (case-insensitively), total size at
/// most 256 KiB.
pub(crate) fn check_annotations(
    errs: &mut Errors,
    field: &str,
    annotations: &BTreeMap<String, String>,
) {
    let mut total = 0usize;
    for (k, v) in annotations {
        if let Some(p) = qualified_name_problem(&k.to_ascii_lowercase()) {
            errs.add(field, k, format!("is not a valid annotation key: it {p}"));
        }
        total += k.len() + v.len();
    }
    if total > ANNOTATIONS_MAX_BYTES {
        errs.rule(
            field,
            format!(
                "total size of annotations is too large by {} bytes",
                total - ANNOTATIONS_MAX_BYTES
            ),
        );
    }
}

/// Why `s` is not a Kubernetes port name (IANA service name), or `None` when it is one:
/// 1-15 characters of `a-z`, `0-9` and `-`, with a letter, no `--`, no leading/trailing `-`.
pub fn port_name_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("is empty; a port name is required");
    }
    if s.len() > 15 {
        return Some("is not a valid port name: at most 15 characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some(
            "is not a valid port name: use only lower-case letters, digits and '-' (IANA service name)",
        );
    }
    if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        return Some("is not a valid port name: it must contain at least one letter");
    }
    if s.contains("--") || s.starts_with('-') || s.ends_with('-') {
        return Some(
            "is not a valid port name: no leading, trailing or consecutive '-' (IANA service name)",
        );
    }
    None
}

fn is_iface_char(b: u8, extra: &[u8]) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-' || extra.contains(&b)
}

/// A Linux interface name as Calico accepts it: 1-15 of `[a-zA-Z0-9_.-]`.
pub fn is_interface_name(s: &str) -> bool {
    (1..=15).contains(&s.len()) && s.bytes().all(|b| is_iface_char(b, &[]))
}

/// An interface name pattern with `*` wildcards (BGPFilter `interface`, `ignoredInterfaces`).
pub fn is_interface_pattern(s: &str) -> bool {
    (1..=15).contains(&s.len()) && s.bytes().all(|b| is_iface_char(b, b"*"))
}

/// An iptables-style interface filter (`eth+`, `cali*`): 1-15 of `[a-zA-Z0-9:._+-]`.
pub fn is_interface_filter(s: &str) -> bool {
    (1..=15).contains(&s.len()) && s.bytes().all(|b| is_iface_char(b, b":+"))
}

/// Calico's container-ID format: `[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?`.
pub fn is_container_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum(c) || c == b'-')
}

/// A MAC address in the forms Go's `net.ParseMAC` accepts: `02:42:0a:f4:03:05`,
/// `02-42-0a-f4-03-05`, `0242.0af4.0305` (EUI-48, EUI-64 and 20-octet InfiniBand).
pub fn is_mac(s: &str) -> bool {
    let groups_ok = |sep: char, width: usize, counts: &[usize]| {
        let parts: Vec<&str> = s.split(sep).collect();
        counts.contains(&parts.len())
            && parts
                .iter()
                .all(|p| p.len() == width && p.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    groups_ok(':', 2, &[6, 8, 20])
        || groups_ok('-', 2, &[6, 8, 20])
        || groups_ok('.', 4, &[3, 4, 10])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_and_labels_follow_dns_1123() {
        assert!(is_dns1123_subdomain("node.worker-1"));
        assert!(!is_dns1123_subdomain("Node-1"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(is_dns1123_label("tier-1"));
        assert!(!is_dns1123_label("tier.1"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
    }

    #[test]
    fn policy_names_allow_at_most_one_dot_except_knp_and_ossg() {
        let ok = |f: fn(&mut Errors, &str, &str), s: &str| {
            let mut e = Errors::default();
            f(&mut e, "metadata.name", s);
            e.into_result().is_ok()
        };
        assert!(ok(check_network_policy_name, "allow-dns"));
        assert!(ok(check_network_policy_name, "security.allow-dns"));
        assert!(!ok(check_network_policy_name, "a.b.c"));
        assert!(ok(check_network_policy_name, "knp.default.a.b.c"));
        assert!(ok(check_global_network_policy_name, "security.allow"));
        assert!(!ok(check_global_network_policy_name, "knp.default.x"));
    }

    #[test]
    fn label_keys_may_have_a_dns_prefix() {
        assert_eq!(qualified_name_problem("projectcalico.org/namespace"), None);
        assert_eq!(qualified_name_problem("app"), None);
        assert!(qualified_name_problem("Bad_Prefix/x").is_some());
        assert!(qualified_name_problem("a/b/c").is_some());
        assert!(qualified_name_problem("-x").is_some());
        assert_eq!(label_value_problem(""), None);
        assert!(label_value_problem("has space").is_some());
    }

    #[test]
    fn port_names_follow_iana_service_names() {
        assert_eq!(port_name_problem("http"), None);
        assert_eq!(port_name_problem("web-8080"), None);
        assert!(port_name_problem("HTTP").is_some());
        assert!(port_name_problem("8080").is_some());
        assert!(port_name_problem("a--b").is_some());
        assert!(port_name_problem("averyveryverylongname").is_some());
    }

    #[test]
    fn mac_addresses_in_go_forms_are_accepted() {
        assert!(is_mac("02:42:0a:f4:03:05"));
        assert!(is_mac("02-42-0A-F4-03-05"));
        assert!(is_mac("0242.0af4.0305"));
        assert!(!is_mac("02:42:0a:f4:03"));
        assert!(!is_mac("zz:42:0a:f4:03:05"));
    }

    #[test]
    fn interface_names_are_at_most_fifteen_characters() {
        assert!(is_interface_name("eth0"));
        assert!(!is_interface_name("cali0123456789abc"));
        assert!(!is_interface_name("eth*"));
        assert!(is_interface_pattern("*.calico"));
        assert!(is_interface_filter("eth+"));
    }
}
