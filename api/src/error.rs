//! Field-level validation errors: which field broke which rule with which value.

use std::fmt;

/// One broken rule: the field path (`spec.ingress[0].destination.ports[1]`), the offending
/// value as the user wrote it (empty when the value is absent or not a scalar) and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub struct FieldError {
    /// Path of the field, dotted, with `[i]` for list items: `spec.cidr`, `metadata.name`.
    pub field: String,
    /// The offending value (empty when the field is missing or the value is not a scalar).
    pub value: String,
    /// The rule that was broken, phrased to follow the value: `has host bits set; ...`.
    pub rule: String,
}

impl FieldError {
    /// A new error for `field` holding `value`, which broke `rule`.
    pub fn new(
        field: impl Into<String>,
        value: impl Into<String>,
        rule: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            value: value.into(),
            rule: rule.into(),
        }
    }

    /// The message without the field path: `"10.0.0.1/16" has host bits set; ...`, or just
    /// the rule when there is no value.
    pub fn message(&self) -> String {
        if self.value.is_empty() {
            self.rule.clone()
        } else {
            format!("{:?} {}", self.value, self.rule)
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// Collects every broken rule of a resource (validation never stops at the first).
#[derive(Debug, Default)]
pub(crate) struct Errors {
    list: Vec<FieldError>,
}

impl Errors {
    /// Records that `field` holding `value` broke `rule`.
    pub(crate) fn add(
        &mut self,
        field: impl Into<String>,
        value: impl Into<String>,
        rule: impl Into<String>,
    ) {
        self.list.push(FieldError::new(field, value, rule));
    }

    /// Records a broken rule that has no single value to show (a missing field, a combination).
    pub(crate) fn rule(&mut self, field: impl Into<String>, rule: impl Into<String>) {
        self.list.push(FieldError::new(field, String::new(), rule));
    }

    /// `Ok` when nothing was recorded, otherwise every recorded error.
    pub(crate) fn into_result(self) -> Result<(), Vec<FieldError>> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(self.list)
        }
    }
}

/// Joins a parent path and a child segment: `join("spec", "cidr")` is `spec.cidr`.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// Appends a list index: `index("spec.nets", 2)` is `spec.nets[2]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// An error and its sources on one line, joined with `": "`: `outer: inner: innermost`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_error_shows_field_value_and_rule() {
        let e = FieldError::new("spec.cidr", "10.0.0.1/16", "has host bits set");
        assert_eq!(
            e.to_string(),
            r#"spec.cidr: "10.0.0.1/16" has host bits set"#
        );
    }

    #[test]
    fn a_field_error_without_value_shows_only_the_rule() {
        let e = FieldError::new("spec.cidr", "", "is required");
        assert_eq!(e.to_string(), "spec.cidr: is required");
    }
}
