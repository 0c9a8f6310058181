//! The selector syntax tree (`Expr`): evaluation against labels and Calico's canonical text form.

use std::fmt::{self, Write as _};

use crate::labels::Labels;

/// A node of a parsed selector.
///
/// The parser produces trees in a normal form that [`crate::Selector`] relies on:
/// `And`/`Or` have at least two operands, `In`/`NotIn` value lists are sorted (byte order)
/// without duplicates, label names follow the label-name rule ([`crate::is_valid_label`]) and no
/// value contains both `'` and `"`. A run of `!` tokens collapses by parity (`!!!x` is `!x`), but
/// `!(!x)` stays a double negation, as in Calico.
/// Build a `Selector` from a hand-made tree with [`crate::Selector::from_expr`], which restores
/// that form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expr {
    /// `all()`: matches everything.
    All,
    /// `global()`: matches everything, like `all()`, when evaluated. Its scope meaning ("only
    /// non-namespaced resources") is applied by the caller, as Calico does: in a rule's
    /// `namespaceSelector` it stands for `!has(projectcalico.org/namespace)`
    /// (see [`crate::Selector::replace_scope_operators`]).
    Global,
    /// `has(label)`: the label is present (with any value, including the empty one).
    Has(String),
    /// `label == "value"`: present with exactly this value.
    Eq {
        /// Label name.
        label: String,
        /// Value compared against.
        value: String,
    },
    /// `label != "value"`: absent, or present with another value.
    Ne {
        /// Label name.
        label: String,
        /// Value compared against.
        value: String,
    },
    /// `label in {"a", "b"}`: present with one of the values. `in {}` never matches.
    In {
        /// Label name.
        label: String,
        /// The set, sorted and without duplicates.
        values: Vec<String>,
    },
    /// `label not in {"a", "b"}`: absent, or present with a value outside the set.
    NotIn {
        /// Label name.
        label: String,
        /// The set, sorted and without duplicates.
        values: Vec<String>,
    },
    /// `label contains "s"`: present and the value contains the substring.
    Contains {
        /// Label name.
        label: String,
        /// Substring looked for.
        value: String,
    },
    /// `label starts with "s"`: present and the value starts with the prefix.
    StartsWith {
        /// Label name.
        label: String,
        /// Prefix looked for.
        value: String,
    },
    /// `label ends with "s"`: present and the value ends with the suffix.
    EndsWith {
        /// Label name.
        label: String,
        /// Suffix looked for.
        value: String,
    },
    /// `!expr`.
    Not(Box<Expr>),
    /// `a && b && ...` (two or more operands).
    And(Vec<Expr>),
    /// `a || b || ...` (two or more operands).
    Or(Vec<Expr>),
}

impl Expr {
    /// Whether `labels` satisfy this expression. Does not allocate.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Expr::All | Expr::Global => true,
            Expr::Has(label) => labels.get(label).is_some(),
            Expr::Eq { label, value } => labels.get(label) == Some(value.as_str()),
            Expr::Ne { label, value } => labels.get(label) != Some(value.as_str()),
            Expr::In { label, values } => {
                labels.get(label).is_some_and(|v| set_contains(values, v))
            }
            Expr::NotIn { label, values } => {
                labels.get(label).is_none_or(|v| !set_contains(values, v))
            }
            Expr::Contains { label, value } => {
                labels.get(label).is_some_and(|v| v.contains(&**value))
            }
            Expr::StartsWith { label, value } => {
                labels.get(label).is_some_and(|v| v.starts_with(&**value))
            }
            Expr::EndsWith { label, value } => {
                labels.get(label).is_some_and(|v| v.ends_with(&**value))
            }
            Expr::Not(inner) => !inner.matches(labels),
            Expr::And(operands) => operands.iter().all(|e| e.matches(labels)),
            Expr::Or(operands) => operands.iter().any(|e| e.matches(labels)),
        }
    }

    /// The label name this node tests, for the label-testing nodes (`has`, `==`, `in`, ...).
    pub fn label(&self) -> Option<&str> {
        match self {
            Expr::Has(label)
            | Expr::Eq { label, .. }
            | Expr::Ne { label, .. }
            | Expr::In { label, .. }
            | Expr::NotIn { label, .. }
            | Expr::Contains { label, .. }
            | Expr::StartsWith { label, .. }
            | Expr::EndsWith { label, .. } => Some(label),
            Expr::All | Expr::Global | Expr::Not(_) | Expr::And(_) | Expr::Or(_) => None,
        }
    }

    /// Mutable access to the label name of a label-testing node.
    pub(crate) fn label_mut(&mut self) -> Option<&mut String> {
        match self {
            Expr::Has(label)
            | Expr::Eq { label, .. }
            | Expr::Ne { label, .. }
            | Expr::In { label, .. }
            | Expr::NotIn { label, .. }
            | Expr::Contains { label, .. }
            | Expr::StartsWith { label, .. }
            | Expr::EndsWith { label, .. } => Some(label),
            Expr::All | Expr::Global | Expr::Not(_) | Expr::And(_) | Expr::Or(_) => None,
        }
    }

    /// The direct sub-expressions of `!`, `&&` and `||` nodes (empty for the others).
    pub fn children(&self) -> &[Expr] {
        match self {
            Expr::Not(inner) => std::slice::from_ref(&**inner),
            Expr::And(operands) | Expr::Or(operands) => operands,
            _ => &[],
        }
    }
}

/// Membership in a sorted, de-duplicated value list.
fn set_contains(values: &[String], value: &str) -> bool {
    values.binary_search_by(|v| v.as_str().cmp(value)).is_ok()
}

/// Writes a value in quotes the way Calico does: double quotes, unless the value contains a
/// double quote, then single quotes.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    let quote = if value.contains('"') { '\'' } else { '"' };
    f.write_char(quote)?;
    f.write_str(value)?;
    f.write_char(quote)
}

fn write_set(f: &mut fmt::Formatter<'_>, label: &str, op: &str, values: &[String]) -> fmt::Result {
    write!(f, "{label} {op} {{")?;
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_quoted(f, value)?;
    }
    f.write_char('}')
}

fn write_joined(f: &mut fmt::Formatter<'_>, operands: &[Expr], op: &str) -> fmt::Result {
    f.write_char('(')?;
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            f.write_str(op)?;
        }
        write!(f, "{operand}")?;
    }
    f.write_char(')')
}

/// Calico's canonical text: `a == "b"`, `!has(a)`, `(x && y)`, `(x || y)`,
/// `a in {"a", "b"}`, `all()`, `global()`. Every `&&`/`||` group is parenthesised, including
/// the outermost one, and `!` is written directly before its operand. One deliberate difference:
/// a double negation is written `!(!x)` where Calico writes `!!x` (which would re-parse as `x`).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::All => f.write_str("all()"),
            Expr::Global => f.write_str("global()"),
            Expr::Has(label) => write!(f, "has({label})"),
            Expr::Eq { label, value } => {
                write!(f, "{label} == ")?;
                write_quoted(f, value)
            }
            Expr::Ne { label, value } => {
                write!(f, "{label} != ")?;
                write_quoted(f, value)
            }
            Expr::Contains { label, value } => {
                write!(f, "{label} contains ")?;
                write_quoted(f, value)
            }
            Expr::StartsWith { label, value } => {
                write!(f, "{label} starts with ")?;
                write_quoted(f, value)
            }
            Expr::EndsWith { label, value } => {
                write!(f, "{label} ends with ")?;
                write_quoted(f, value)
            }
            Expr::In { label, values } => write_set(f, label, "in", values),
            Expr::NotIn { label, values } => write_set(f, label, "not in", values),
            // Calico writes `!!x` here, which parses back as `x`; the parentheses keep the
            // canonical text faithful to the tree.
            Expr::Not(inner) if matches!(**inner, Expr::Not(_)) => write!(f, "!({inner})"),
            Expr::Not(inner) => write!(f, "!{inner}"),
            Expr::And(operands) => write_joined(f, operands, " && "),
            Expr::Or(operands) => write_joined(f, operands, " || "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(label: &str, value: &str) -> Expr {
        Expr::Eq {
            label: label.into(),
            value: value.into(),
        }
    }

    #[test]
    fn values_with_a_double_quote_are_written_in_single_quotes() {
        assert_eq!(eq("a", "say \"hi\"").to_string(), "a == 'say \"hi\"'");
        assert_eq!(eq("a", "it's").to_string(), "a == \"it's\"");
    }

    #[test]
    fn groups_are_always_parenthesised() {
        let e = Expr::Or(vec![Expr::And(vec![eq("a", "1"), eq("b", "2")]), Expr::All]);
        assert_eq!(e.to_string(), "((a == \"1\" && b == \"2\") || all())");
        assert_eq!(
            Expr::Not(Box::new(e)).to_string(),
            "!((a == \"1\" && b == \"2\") || all())"
        );
    }

    #[test]
    fn a_double_negation_keeps_its_parentheses() {
        let e = Expr::Not(Box::new(Expr::Not(Box::new(Expr::Has("a".into())))));
        assert_eq!(e.to_string(), "!(!has(a))");
    }

    #[test]
    fn sets_are_written_with_comma_and_space() {
        let e = Expr::NotIn {
            label: "k".into(),
            values: vec!["a".into(), "b\"".into()],
        };
        assert_eq!(e.to_string(), "k not in {\"a\", 'b\"'}");
        let empty = Expr::In {
            label: "k".into(),
            values: vec![],
        };
        assert_eq!(empty.to_string(), "k in {}");
    }

    #[test]
    fn label_reports_the_tested_label_only_for_label_nodes() {
        assert_eq!(eq("x", "1").label(), Some("x"));
        assert_eq!(Expr::All.label(), None);
        assert_eq!(Expr::Not(Box::new(Expr::Has("x".into()))).label(), None);
    }
}
