//! Errors: `ParseError` for selector text, `ExprError` for hand-built syntax trees.

/// A selector text that is not valid Calico selector syntax.
///
/// `position` is the 0-based byte offset in the text where the problem was found (for an
/// unterminated string, the offset of its opening quote; at the end of the text, the text's
/// length). `message` says what was found and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct ParseError {
    /// 0-based byte offset of the problem in the selector text.
    pub position: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        ParseError {
            position,
            message: message.into(),
        }
    }
}

/// A syntax tree that no selector text can express (see [`crate::Selector::from_expr`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// A label name that breaks the label-name rule.
    #[error("label name {label:?} is invalid: {rule}")]
    InvalidLabel {
        /// The offending label name.
        label: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A value with both quote characters: selector strings have no escapes, so it cannot be
    /// written down.
    #[error("value {value:?} contains both ' and \" and cannot be written as a selector string")]
    UnquotableValue {
        /// The offending value.
        value: String,
    },
    /// A tree nested deeper than the parser accepts.
    #[error("expression nests deeper than {limit} levels")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
}
