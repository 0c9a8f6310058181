//! Reusable validation rules and value types: CIDRs, names, ports and protocols, durations,
//! AS numbers, selectors and enumerations.

pub mod cidr;
pub mod duration;
pub mod names;
pub mod numbers;
pub mod ports;

use crate::error::Errors;
use crate::selector::Selector;

/// Longest selector Calico's CRDs accept.
pub const SELECTOR_MAX_LEN: usize = 1024;

/// A selector must parse (an empty selector means "not set" and is not checked).
pub(crate) fn check_selector(errs: &mut Errors, field: &str, s: &str) {
    if s.is_empty() {
        return;
    }
    if s.len() > SELECTOR_MAX_LEN {
        errs.add(
            field,
            s,
            format!("is longer than {SELECTOR_MAX_LEN} characters"),
        );
        return;
    }
    if let Err(e) = Selector::parse(s) {
        errs.add(field, s, format!("is not a valid selector: {e}"));
    }
}

/// A selector that must parse and must not use `global()` (only an EntityRule's
/// `namespaceSelector` may).
pub(crate) fn check_selector_without_global(errs: &mut Errors, field: &str, s: &str) {
    if s.contains("global(") {
        errs.add(
            field,
            s,
            "uses global(), which is only valid on its own in a rule's namespaceSelector",
        );
    } else {
        check_selector(errs, field, s);
    }
}

/// `value` must be one of `allowed` (exact match).
pub(crate) fn check_one_of(errs: &mut Errors, field: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        errs.add(
            field,
            value,
            format!("is not one of {}", allowed.join(", ")),
        );
    }
}

/// `value` must be one of `allowed`, compared case-insensitively (FelixConfiguration and
/// BGPConfiguration enumerations written as `(?i)` patterns by Calico). Empty is allowed.
pub(crate) fn check_one_of_ci(errs: &mut Errors, field: &str, value: &str, allowed: &[&str]) {
    if !value.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
        errs.add(
            field,
            value,
            format!("is not one of {} (case-insensitive)", allowed.join(", ")),
        );
    }
}

/// `value` must lie in `lo..=hi`.
pub(crate) fn check_range(errs: &mut Errors, field: &str, value: i64, lo: i64, hi: i64) {
    if value < lo || value > hi {
        errs.add(
            field,
            value.to_string(),
            format!("is out of range; expected {lo}-{hi}"),
        );
    }
}
