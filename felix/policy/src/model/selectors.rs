//! Building the selectors Calico derives from a policy: the endpoints a policy applies to, and
//! each rule side's combined selector (its own selector, scoped to the policy's namespace or
//! to the namespaces its `namespaceSelector` picks, and its service accounts).

use fabric_api::rule::{EntityRule, ServiceAccountMatch};
use fabric_api::selector::{Expr, Selector};

use crate::error::PolicyError;
use crate::model::entity::{LABEL_NAMESPACE, LABEL_SERVICE_ACCOUNT};

/// Prefix of namespace labels on endpoints (from the `kns.<ns>` profile).
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
/// Prefix of service-account labels on endpoints (from the `ksa.<ns>.<sa>` profile).
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";

/// Parses `text` found at `field`.
pub fn parse(field: &str, text: &str) -> Result<Selector, PolicyError> {
    Selector::parse(text)
        .map_err(|e| PolicyError::new(field, text, format!("is not a valid selector: {e}")))
}

fn from_expr(field: &str, text: &str, expr: Expr) -> Result<Selector, PolicyError> {
    Selector::from_expr(expr)
        .map_err(|e| PolicyError::new(field, text, format!("cannot be combined: {e}")))
}

/// `a && b`.
pub fn and(field: &str, a: Selector, b: Selector) -> Result<Selector, PolicyError> {
    let text = format!("({a}) && ({b})");
    from_expr(field, &text, Expr::And(vec![a.into_expr(), b.into_expr()]))
}

/// `label == "value"`.
pub fn label_equals(label: &str, value: &str) -> Result<Selector, PolicyError> {
    from_expr(
        label,
        value,
        Expr::Eq {
            label: label.to_string(),
            value: value.to_string(),
        },
    )
}

fn has(label: &str) -> Expr {
    Expr::Has(label.to_string())
}

/// Every `all()` in `s` replaced by `has(label)` (`global()` kept, or replaced by
/// `!has(label)` when `global_too`).
fn scope_all(
    field: &str,
    s: &Selector,
    label: &str,
    global_too: bool,
) -> Result<Selector, PolicyError> {
    let global = if global_too {
        Expr::Not(Box::new(has(label)))
    } else {
        Expr::Global
    };
    s.replace_scope_operators(&has(label), &global)
        .map_err(|e| PolicyError::new(field, s.to_string(), format!("cannot be scoped: {e}")))
}

fn prefixed(field: &str, text: &str, prefix: &str) -> Result<Selector, PolicyError> {
    parse(field, text)?.with_label_prefix(prefix).map_err(|e| {
        PolicyError::new(
            field,
            text,
            format!("cannot be prefixed with {prefix}: {e}"),
        )
    })
}

/// A rule's or a policy's `namespaceSelector` as an endpoint selector: labels prefixed with
/// `pcns.`, `all()` meaning "any namespaced entity", `global()` "any non-namespaced entity".
pub fn namespace_selector(field: &str, text: &str) -> Result<Selector, PolicyError> {
    let p = prefixed(field, text, NAMESPACE_LABEL_PREFIX)?;
    scope_all(field, &p, LABEL_NAMESPACE, true)
}

/// A `serviceAccounts` match as an endpoint selector: the `pcsa.`-prefixed selector and/or
/// `projectcalico.org/serviceaccount in {names}`; `None` when both are empty.
pub fn service_account_selector(
    field: &str,
    sa: &ServiceAccountMatch,
) -> Result<Option<Selector>, PolicyError> {
    let sel = if sa.selector.is_empty() {
        None
    } else {
        Some(prefixed(
            &format!("{field}.selector"),
            &sa.selector,
            SERVICE_ACCOUNT_LABEL_PREFIX,
        )?)
    };
    if sa.names.is_empty() {
        return Ok(sel);
    }
    let mut names = sa.names.clone();
    names.sort();
    names.dedup();
    let in_names = from_expr(
        &format!("{field}.names"),
        &names.join(","),
        Expr::In {
            label: LABEL_SERVICE_ACCOUNT.to_string(),
            values: names,
        },
    )?;
    Ok(Some(match sel {
        Some(s) => and(field, s, in_names)?,
        None => in_names,
    }))
}

/// The combined selector of one side of a rule (Calico's `GetEntityRuleSelector`): the
/// service-account and endpoint selectors, scoped by the `namespaceSelector` or, in a
/// namespaced policy, to the policy's namespace as soon as any selector field is used.
/// `None` means "no selector match" (any address).
pub fn entity_selector(
    field: &str,
    er: &EntityRule,
    namespace: Option<&str>,
) -> Result<Option<Selector>, PolicyError> {
    let ns_sel = if !er.namespace_selector.is_empty() {
        Some(namespace_selector(
            &format!("{field}.namespaceSelector"),
            &er.namespace_selector,
        )?)
    } else if let Some(ns) = namespace {
        Some(label_equals(LABEL_NAMESPACE, ns)?)
    } else {
        None
    };
    let mut parts = Vec::new();
    if let Some(sa) = &er.service_accounts
        && let Some(s) = service_account_selector(&format!("{field}.serviceAccounts"), sa)?
    {
        parts.push(s);
    }
    if !er.selector.is_empty() {
        parts.push(parse(&format!("{field}.selector"), &er.selector)?);
    }
    let sel = match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => {
            let b = parts.pop();
            let a = parts.pop();
            match (a, b) {
                (Some(a), Some(b)) => Some(and(field, a, b)?),
                _ => None,
            }
        }
    };
    let scoped = ns_sel.filter(|_| {
        sel.is_some() || !er.not_selector.is_empty() || !er.namespace_selector.is_empty()
    });
    Ok(match (scoped, sel) {
        (Some(ns), Some(s)) => Some(and(field, ns, s)?),
        (Some(ns), None) => Some(ns),
        (None, s) => s,
    })
}

/// The endpoints a `NetworkPolicy` in `namespace` applies to: `(selector) &&
/// projectcalico.org/namespace == "<ns>"`, and its `serviceAccountSelector` (`pcsa.`).
pub fn namespaced_policy_selector(
    field: &str,
    selector: &str,
    namespace: &str,
    service_account_selector: &str,
) -> Result<Selector, PolicyError> {
    let ns = label_equals(LABEL_NAMESPACE, namespace)?;
    let mut sel = if selector.trim().is_empty() {
        ns
    } else {
        and(field, parse(&format!("{field}.selector"), selector)?, ns)?
    };
    if !service_account_selector.is_empty() {
        let f = format!("{field}.serviceAccountSelector");
        sel = and(
            field,
            sel,
            prefixed(&f, service_account_selector, SERVICE_ACCOUNT_LABEL_PREFIX)?,
        )?;
    }
    Ok(sel)
}

/// The endpoints a `GlobalNetworkPolicy` applies to: its selector, its `namespaceSelector`
/// (`pcns.`, `all()` = any namespaced endpoint) and its `serviceAccountSelector` (`pcsa.`,
/// `all()` = any endpoint with a service account), as Calico combines them.
pub fn global_policy_selector(
    field: &str,
    selector: &str,
    namespace_selector: &str,
    service_account_selector: &str,
) -> Result<Selector, PolicyError> {
    let mut sel = if selector.trim().is_empty() {
        None
    } else {
        Some(parse(&format!("{field}.selector"), selector)?)
    };
    for (text, prefix, label, name) in [
        (
            namespace_selector,
            NAMESPACE_LABEL_PREFIX,
            LABEL_NAMESPACE,
            "namespaceSelector",
        ),
        (
            service_account_selector,
            SERVICE_ACCOUNT_LABEL_PREFIX,
            LABEL_SERVICE_ACCOUNT,
            "serviceAccountSelector",
        ),
    ] {
        if text.is_empty() {
            continue;
        }
        let f = format!("{field}.{name}");
        let p = prefixed(&f, text, prefix)?;
        let combined = match sel {
            Some(s) => and(field, s, p)?,
            None => p,
        };
        sel = Some(scope_all(&f, &combined, label, false)?);
    }
    Ok(sel.unwrap_or_else(Selector::all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn er(selector: &str, ns_selector: &str) -> EntityRule {
        EntityRule {
            selector: selector.to_string(),
            namespace_selector: ns_selector.to_string(),
            ..EntityRule::default()
        }
    }

    fn text(s: Option<Selector>) -> String {
        s.map(|s| s.to_string()).unwrap_or_default()
    }

    #[test]
    fn a_namespaced_rule_selector_is_scoped_to_the_policy_namespace() {
        let s = entity_selector("f", &er("app == 'web'", ""), Some("prod")).unwrap();
        assert_eq!(
            text(s),
            r#"(projectcalico.org/namespace == "prod" && app == "web")"#
        );
    }

    #[test]
    fn a_namespace_selector_replaces_the_policy_namespace() {
        let s = entity_selector("f", &er("app == 'web'", "team == 'a'"), Some("prod")).unwrap();
        assert_eq!(text(s), r#"(pcns.team == "a" && app == "web")"#);
        let all = entity_selector("f", &er("", "all()"), Some("prod")).unwrap();
        assert_eq!(text(all), "has(projectcalico.org/namespace)");
        let global = entity_selector("f", &er("", "global()"), None).unwrap();
        assert_eq!(text(global), "!has(projectcalico.org/namespace)");
    }

    #[test]
    fn a_rule_side_without_selectors_matches_any_address() {
        assert_eq!(
            entity_selector("f", &er("", ""), Some("prod")).unwrap(),
            None
        );
        assert_eq!(entity_selector("f", &er("", ""), None).unwrap(), None);
    }

    #[test]
    fn service_accounts_become_a_label_match() {
        let e = EntityRule {
            service_accounts: Some(ServiceAccountMatch {
                names: vec!["b".into(), "a".into()],
                selector: "role == 'x'".into(),
            }),
            ..EntityRule::default()
        };
        let s = entity_selector("f", &e, None).unwrap();
        assert_eq!(
            text(s),
            r#"(pcsa.role == "x" && projectcalico.org/serviceaccount in {"a", "b"})"#
        );
    }

    #[test]
    fn policy_selectors_follow_calico() {
        let np = namespaced_policy_selector("f", "", "prod", "").unwrap();
        assert_eq!(np.to_string(), r#"projectcalico.org/namespace == "prod""#);
        let gnp = global_policy_selector("f", "all()", "team == 'a'", "").unwrap();
        assert_eq!(
            gnp.to_string(),
            r#"(has(projectcalico.org/namespace) && pcns.team == "a")"#
        );
        assert!(global_policy_selector("f", "", "", "").unwrap().is_all());
        assert!(global_policy_selector("f", "a ==", "", "").is_err());
    }
}
