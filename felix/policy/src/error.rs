//! Errors: input the renderer refuses, naming the field, the value and the broken rule.

/// Input the renderer refuses. Nothing is changed when an update returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {value:?} {rule}")]
pub struct PolicyError {
    /// Path of the offending field (`GlobalNetworkPolicy default-deny: spec.selector`).
    pub field: String,
    /// The offending value as given.
    pub value: String,
    /// The rule that was broken.
    pub rule: String,
}

impl PolicyError {
    /// `field` holding `value` broke `rule`.
    pub fn new(
        field: impl Into<String>,
        value: impl Into<String>,
        rule: impl Into<String>,
    ) -> PolicyError {
        PolicyError {
            field: field.into(),
            value: value.into(),
            rule: rule.into(),
        }
    }
}
