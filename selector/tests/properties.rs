//! Property tests: canonical round-trips, noisy spellings, evaluation against a reference, and a
//! parser that never panics.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use fabric_selector::{Expr, Selector};
use proptest::prelude::*;

const LABEL_POOL: &[&str] = &["a", "b", "c", "all", "in", "not", "contains", "x.y/z-w_1"];
const VALUE_POOL: &[&str] = &["", "x", "y", "xy", "yx", "'", "\"", " x", "é"];

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(LABEL_POOL).prop_map(str::to_string),
        1 => "[a-zA-Z0-9_./-]{1,12}",
    ]
}

/// Any value a selector string can hold: never both quote characters.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(VALUE_POOL).prop_map(str::to_string),
        1 => "[a-z'\" \t\né{}(),!&|=]{0,8}".prop_map(|v| {
            if v.contains('"') && v.contains('\'') { v.replace('\'', "") } else { v }
        }),
    ]
}

fn set() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(value(), 0..4).prop_map(|mut v| {
        v.sort();
        v.dedup();
        v
    })
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        Just(Expr::All),
        Just(Expr::Global),
        label().prop_map(Expr::Has),
        (label(), value()).prop_map(|(label, value)| Expr::Eq { label, value }),
        (label(), value()).prop_map(|(label, value)| Expr::Ne { label, value }),
        (label(), value()).prop_map(|(label, value)| Expr::Contains { label, value }),
        (label(), value()).prop_map(|(label, value)| Expr::StartsWith { label, value }),
        (label(), value()).prop_map(|(label, value)| Expr::EndsWith { label, value }),
        (label(), set()).prop_map(|(label, values)| Expr::In { label, values }),
        (label(), set()).prop_map(|(label, values)| Expr::NotIn { label, values }),
    ]
}

/// Trees in the parser's normal form.
fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(LABEL_POOL).prop_map(str::to_string),
        value(),
        0..5,
    )
}

/// A straightforward restatement of Calico's semantics, independent of the crate's evaluator.
fn reference(e: &Expr, l: &BTreeMap<String, String>) -> bool {
    let get = |k: &String| l.get(k).map(String::as_str);
    match e {
        Expr::All | Expr::Global => true,
        Expr::Has(k) => l.contains_key(k),
        Expr::Eq { label, value } => get(label) == Some(value),
        Expr::Ne { label, value } => get(label) != Some(value),
        Expr::Contains { label, value } => get(label).is_some_and(|v| v.contains(value.as_str())),
        Expr::StartsWith { label, value } => {
            get(label).is_some_and(|v| v.starts_with(value.as_str()))
        }
        Expr::EndsWith { label, value } => get(label).is_some_and(|v| v.ends_with(value.as_str())),
        Expr::In { label, values } => get(label).is_some_and(|v| values.iter().any(|s| s == v)),
        Expr::NotIn { label, values } => get(label).is_none_or(|v| values.iter().all(|s| s != v)),
        Expr::Not(x) => !reference(x, l),
        Expr::And(xs) => xs.iter().all(|x| reference(x, l)),
        Expr::Or(xs) => xs.iter().any(|x| reference(x, l)),
    }
}

/// Choices that drive the noisy printer, consumed round-robin.
#[derive(Debug, Clone)]
struct Noise(Vec<u8>);

impl Noise {
    fn take(&mut self) -> u8 {
        let b = self.0.pop().unwrap_or(0);
        self.0.insert(0, b.wrapping_mul(31).wrapping_add(7));
        b
    }

    fn one_in(&mut self, n: u8) -> bool {
        self.take().is_multiple_of(n)
    }

    fn blanks(&mut self, out: &mut String, at_least_one: bool) {
        let n = self.take() % 3;
        let n = if at_least_one { n.max(1) } else { n };
        for _ in 0..n {
            out.push(if self.one_in(4) { '\t' } else { ' ' });
        }
    }
}

fn quote(noise: &mut Noise, v: &str, out: &mut String) {
    let q = if v.contains('"') {
        '\''
    } else if v.contains('\'') || noise.one_in(2) {
        '"'
    } else {
        '\''
    };
    out.push(q);
    out.push_str(v);
    out.push(q);
}

/// Writes `e` in one of the many spellings that parse back to exactly `e`.
fn noisy(e: &Expr, noise: &mut Noise, out: &mut String) {
    if noise.one_in(5) {
        out.push_str("!!");
        noise.blanks(out, false);
    }
    let parens = noise.one_in(6);
    if parens {
        out.push('(');
        noise.blanks(out, false);
    }
    let word = |noise: &mut Noise, out: &mut String, op: &str| {
        noise.blanks(out, true);
        out.push_str(op);
        noise.blanks(out, true);
    };
    match e {
        Expr::All => out.push_str(if noise.one_in(2) { "all()" } else { "all( )" }),
        Expr::Global => out.push_str("global()"),
        Expr::Has(k) => {
            out.push_str("has(");
            noise.blanks(out, false);
            out.push_str(k);
            noise.blanks(out, false);
            out.push(')');
        }
        Expr::Eq { label, value } | Expr::Ne { label, value } => {
            out.push_str(label);
            noise.blanks(out, false);
            out.push_str(if matches!(e, Expr::Eq { .. }) {
                "=="
            } else {
                "!="
            });
            noise.blanks(out, false);
            quote(noise, value, out);
        }
        Expr::Contains { label, value } => {
            out.push_str(label);
            word(noise, out, "contains");
            quote(noise, value, out);
        }
        Expr::StartsWith { label, value } | Expr::EndsWith { label, value } => {
            out.push_str(label);
            let first = if matches!(e, Expr::StartsWith { .. }) {
                "starts"
            } else {
                "ends"
            };
            noise.blanks(out, true);
            out.push_str(first);
            noise.blanks(out, false);
            out.push_str("with");
            noise.blanks(out, true);
            quote(noise, value, out);
        }
        Expr::In { label, values } | Expr::NotIn { label, values } => {
            out.push_str(label);
            if matches!(e, Expr::In { .. }) {
                word(noise, out, "in");
            } else {
                noise.blanks(out, true);
                out.push_str("not");
                noise.blanks(out, false);
                out.push_str("in");
                noise.blanks(out, true);
            }
            out.push('{');
            // Reversed, with a duplicate, and sometimes a trailing comma: all normalised away.
            let mut items: Vec<&String> = values.iter().rev().collect();
            if let Some(first) = values.first() {
                items.push(first);
            }
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    noise.blanks(out, false);
                }
                quote(noise, v, out);
            }
            if !items.is_empty() && noise.one_in(3) {
                out.push(',');
            }
            out.push('}');
        }
        Expr::Not(x) => {
            out.push('!');
            noise.blanks(out, false);
            if matches!(**x, Expr::Not(_) | Expr::And(_) | Expr::Or(_)) {
                out.push('(');
                noisy(x, noise, out);
                out.push(')');
            } else {
                noisy(x, noise, out);
            }
        }
        Expr::And(xs) | Expr::Or(xs) => {
            let op = if matches!(e, Expr::And(_)) {
                "&&"
            } else {
                "||"
            };
            // Operands that are groups themselves need parentheses; the top-level ones do not.
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    noise.blanks(out, false);
                    out.push_str(op);
                    noise.blanks(out, false);
                }
                let group = matches!(x, Expr::And(_) | Expr::Or(_));
                if group {
                    out.push('(');
                }
                noisy(x, noise, out);
                if group {
                    out.push(')');
                }
            }
        }
    }
    if parens {
        noise.blanks(out, false);
        out.push(')');
    }
}

fn noisy_text(e: &Expr, noise: Vec<u8>) -> String {
    let mut out = String::new();
    let mut noise = Noise(noise);
    noise.blanks(&mut out, false);
    noisy(e, &mut noise, &mut out);
    noise.blanks(&mut out, false);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_random_tree_survives_canonical_text_and_parse(e in expr()) {
        let selector = Selector::from_expr(e.clone()).unwrap();
        prop_assert_eq!(selector.expr(), &e);
        let reparsed = Selector::parse(&selector.canonical()).unwrap();
        prop_assert_eq!(reparsed.expr(), &e);
    }

    #[test]
    fn any_noisy_spelling_parses_to_the_same_tree(e in expr(), noise in prop::collection::vec(any::<u8>(), 1..64)) {
        let text = noisy_text(&e, noise);
        let parsed = Selector::parse(&text);
        prop_assert!(parsed.is_ok(), "{:?} failed: {:?}", text, parsed);
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.expr(), &e, "text {:?}", text);
    }

    #[test]
    fn canonicalising_twice_changes_nothing(e in expr(), noise in prop::collection::vec(any::<u8>(), 1..64)) {
        let once = Selector::parse(&noisy_text(&e, noise)).unwrap().canonical();
        let twice = Selector::parse(&once).unwrap().canonical();
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn evaluation_agrees_with_the_reference_before_and_after_reparsing(e in expr(), l in labels()) {
        let selector = Selector::from_expr(e.clone()).unwrap();
        let want = reference(&e, &l);
        prop_assert_eq!(selector.matches(&l), want);
        let reparsed = Selector::parse(&selector.canonical()).unwrap();
        prop_assert_eq!(reparsed.matches(&l), want);
    }

    #[test]
    fn the_parser_never_panics_on_arbitrary_text(text in any::<String>()) {
        if let Ok(s) = Selector::parse(&text) {
            prop_assert_eq!(Selector::parse(&s.canonical()).unwrap(), s);
        }
    }

    #[test]
    fn the_parser_never_panics_on_selector_like_text(text in "[a-c()!&|=' \"{},\t\nhasltinotw-]{0,40}") {
        match Selector::parse(&text) {
            Ok(s) => {
                let again = Selector::parse(&s.canonical()).unwrap();
                prop_assert_eq!(&again, &s);
                prop_assert_eq!(again.canonical(), s.canonical());
            }
            Err(e) => prop_assert!(e.position <= text.len(), "{:?}: {}", text, e),
        }
    }
}
