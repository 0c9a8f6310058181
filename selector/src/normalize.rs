//! Validation and normalisation of hand-built `Expr` trees into the parser's normal form.

use crate::ast::Expr;
use crate::error::ExprError;
use crate::parser::MAX_NESTING_DEPTH;
use crate::token::label_rule_broken;

/// Deepest raw tree accepted before normalisation (a parsed tree is at most about three nodes
/// deep per group level).
const MAX_RAW_DEPTH: usize = 4 * (MAX_NESTING_DEPTH + 1);

/// Checks `expr` and rewrites it into the form the parser produces: `&&`/`||` with fewer than
/// two operands removed (an empty `&&` is `all()`, an empty `||` is
/// `!all()`), sets sorted and de-duplicated.
pub(crate) fn normalize(expr: Expr) -> Result<Expr, ExprError> {
    // Measure depth without recursion first, so a hostile tree cannot overflow the stack here.
    let mut stack = vec![(&expr, 1usize)];
    let mut too_deep = false;
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_RAW_DEPTH {
            too_deep = true;
            break;
        }
        stack.extend(node.children().iter().map(|child| (child, depth + 1)));
    }
    drop(stack);
    if too_deep {
        dismantle(expr);
        return Err(ExprError::TooDeep {
            limit: MAX_NESTING_DEPTH,
        });
    }
    let normal = rewrite(expr)?;
    if canonical_paren_depth(&normal) > MAX_NESTING_DEPTH {
        return Err(ExprError::TooDeep {
            limit: MAX_NESTING_DEPTH,
        });
    }
    Ok(normal)
}

/// Drops a tree of any depth without recursion.
fn dismantle(expr: Expr) {
    let mut stack = vec![expr];
    while let Some(node) = stack.pop() {
        match node {
            Expr::Not(inner) => stack.push(*inner),
            Expr::And(operands) | Expr::Or(operands) => stack.extend(operands),
            _ => {}
        }
    }
}

fn check_label(label: &str) -> Result<(), ExprError> {
    match label_rule_broken(label) {
        Some(rule) => Err(ExprError::InvalidLabel {
            label: label.to_string(),
            rule,
        }),
        None => Ok(()),
    }
}

fn check_value(value: &str) -> Result<(), ExprError> {
    if value.contains('"') && value.contains('\'') {
        return Err(ExprError::UnquotableValue {
            value: value.to_string(),
        });
    }
    Ok(())
}

fn rewrite(expr: Expr) -> Result<Expr, ExprError> {
    Ok(match expr {
        Expr::All | Expr::Global => expr,
        Expr::Has(ref label) => {
            check_label(label)?;
            expr
        }
        Expr::Eq {
            ref label,
            ref value,
        }
        | Expr::Ne {
            ref label,
            ref value,
        }
        | Expr::Contains {
            ref label,
            ref value,
        }
        | Expr::StartsWith {
            ref label,
            ref value,
        }
        | Expr::EndsWith {
            ref label,
            ref value,
        } => {
            check_label(label)?;
            check_value(value)?;
            expr
        }
        Expr::In { label, values } => {
            check_label(&label)?;
            Expr::In {
                label,
                values: normal_set(values)?,
            }
        }
        Expr::NotIn { label, values } => {
            check_label(&label)?;
            Expr::NotIn {
                label,
                values: normal_set(values)?,
            }
        }
        Expr::Not(inner) => Expr::Not(Box::new(rewrite(*inner)?)),
        Expr::And(operands) => group(operands, Expr::And, Expr::All)?,
        Expr::Or(operands) => group(operands, Expr::Or, Expr::Not(Box::new(Expr::All)))?,
    })
}

fn group(
    operands: Vec<Expr>,
    build: fn(Vec<Expr>) -> Expr,
    empty: Expr,
) -> Result<Expr, ExprError> {
    let mut operands = operands
        .into_iter()
        .map(rewrite)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match operands.len() {
        0 => empty,
        1 => operands.remove(0),
        _ => build(operands),
    })
}

fn normal_set(mut values: Vec<String>) -> Result<Vec<String>, ExprError> {
    for value in &values {
        check_value(value)?;
    }
    values.sort_unstable();
    values.dedup();
    Ok(values)
}

/// The parenthesis depth of the canonical text: `&&`/`||` groups and double negations nested on
/// the deepest path.
pub(crate) fn canonical_paren_depth(expr: &Expr) -> usize {
    let inner = expr
        .children()
        .iter()
        .map(canonical_paren_depth)
        .max()
        .unwrap_or(0);
    match expr {
        Expr::And(_) | Expr::Or(_) => inner + 1,
        Expr::Not(operand) if matches!(**operand, Expr::Not(_)) => inner + 1,
        _ => inner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(l: &str) -> Expr {
        Expr::Has(l.into())
    }

    fn not(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }

    #[test]
    fn double_negations_are_kept_as_the_parser_keeps_them() {
        assert_eq!(normalize(not(not(has("a")))).unwrap(), not(not(has("a"))));
    }

    #[test]
    fn short_groups_are_dissolved() {
        assert_eq!(normalize(Expr::And(vec![])).unwrap(), Expr::All);
        assert_eq!(normalize(Expr::Or(vec![])).unwrap(), not(Expr::All));
        assert_eq!(normalize(Expr::Or(vec![has("a")])).unwrap(), has("a"));
        assert_eq!(
            normalize(not(Expr::And(vec![not(has("a"))]))).unwrap(),
            not(not(has("a")))
        );
    }

    #[test]
    fn sets_are_sorted_and_deduplicated() {
        let e = Expr::In {
            label: "k".into(),
            values: vec!["b".into(), "a".into(), "b".into()],
        };
        assert_eq!(
            normalize(e).unwrap(),
            Expr::In {
                label: "k".into(),
                values: vec!["a".into(), "b".into()]
            }
        );
    }

    #[test]
    fn invalid_labels_and_unquotable_values_are_rejected() {
        assert!(matches!(
            normalize(has("a b")),
            Err(ExprError::InvalidLabel { .. })
        ));
        assert!(matches!(
            normalize(has("")),
            Err(ExprError::InvalidLabel { .. })
        ));
        let both = Expr::Eq {
            label: "k".into(),
            value: "'\"".into(),
        };
        assert!(matches!(
            normalize(both),
            Err(ExprError::UnquotableValue { .. })
        ));
    }

    #[test]
    fn a_very_deep_tree_is_rejected_without_recursing() {
        let mut e = has("a");
        for _ in 0..100_000 {
            e = Expr::And(vec![e, has("b")]);
        }
        assert_eq!(
            normalize(e),
            Err(ExprError::TooDeep {
                limit: MAX_NESTING_DEPTH
            })
        );
    }
}
