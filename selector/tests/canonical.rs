//! Table-driven canonical-form cases (Calico's `String()` spelling) and the public API around it.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use fabric_selector::{Expr, ExprError, Selector};

/// (input, canonical text)
const CASES: &[(&str, &str)] = &[
    ("", "all()"),
    ("  ", "all()"),
    ("\t \t", "all()"),
    ("( all() )", "all()"),
    ("((has(a)))", "has(a)"),
    ("global()", "global()"),
    ("global( )", "global()"),
    ("!all()", "!all()"),
    ("app=='web'", "app == \"web\""),
    ("app == 'web'", "app == \"web\""),
    ("app == '\"quoted\"'", "app == '\"quoted\"'"),
    ("app != \"it's\"", "app != \"it's\""),
    ("app == ''", "app == \"\""),
    ("has( a ) && ! has(b)", "(has(a) && !has(b))"),
    (
        "a == '1' || b == '2' && c == '3'",
        "(a == \"1\" || (b == \"2\" && c == \"3\"))",
    ),
    (
        "(a == '1' || b == '2') && c == '3'",
        "((a == \"1\" || b == \"2\") && c == \"3\")",
    ),
    ("!!has(a)", "has(a)"),
    ("!!!has(a)", "!has(a)"),
    ("! ! ! ! has(a)", "has(a)"),
    ("!(a == 'x')", "!a == \"x\""),
    ("!(a == 'x' && b == 'y')", "!(a == \"x\" && b == \"y\")"),
    // Calico prints `!!has(a)` here, which would re-parse as `has(a)`; we keep the parentheses.
    ("!(!(has(a)))", "!(!has(a))"),
    ("!(!has(a) && !(!has(b)))", "!(!has(a) && !(!has(b)))"),
    ("k in {'z','a','m','a'}", "k in {\"a\", \"m\", \"z\"}"),
    ("k not in {}", "k not in {}"),
    ("k in { }", "k in {}"),
    ("k in {'x',}", "k in {\"x\"}"),
    ("k notin{'b',\"a\"}", "k not in {\"a\", \"b\"}"),
    ("k in {'\"', \"'\"}", "k in {'\"', \"'\"}"),
    ("k in {'B','a','_'}", "k in {\"B\", \"_\", \"a\"}"),
    ("k in {'b', 'a', 'b', 'a'}", "k in {\"a\", \"b\"}"),
    ("k startswith 'p'", "k starts with \"p\""),
    ("k ends   with 'p'", "k ends with \"p\""),
    ("k contains\"p\"", "k contains \"p\""),
    (
        "a == 'x' && b == 'y' && c == 'z'",
        "(a == \"x\" && b == \"y\" && c == \"z\")",
    ),
    (
        "(a == 'x' && b == 'y') && c == 'z'",
        "((a == \"x\" && b == \"y\") && c == \"z\")",
    ),
    (
        "a == 'x' && (b == 'y' && c == 'z')",
        "(a == \"x\" && (b == \"y\" && c == \"z\"))",
    ),
    ("has(a) || has(b) || has(c)", "(has(a) || has(b) || has(c))"),
    ("all() && global()", "(all() && global())"),
    (
        "!has(x) || x starts with 'p' && r in {'f','b'}",
        "(!has(x) || (x starts with \"p\" && r in {\"b\", \"f\"}))",
    ),
    (
        "projectcalico.org/namespace == 'kube-system'",
        "projectcalico.org/namespace == \"kube-system\"",
    ),
    ("in in {'x'}", "in in {\"x\"}"),
    (
        "contains contains 'contains'",
        "contains contains \"contains\"",
    ),
];

#[test]
fn every_canonical_case_prints_calicos_spelling_and_is_stable() {
    let mut failures = Vec::new();
    for (i, (input, want)) in CASES.iter().enumerate() {
        let selector = match Selector::parse(input) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("#{i} {input:?}: {e}"));
                continue;
            }
        };
        let canonical = selector.canonical();
        if canonical != *want {
            failures.push(format!("#{i} {input:?}: got {canonical:?}, want {want:?}"));
        }
        if selector.to_string() != canonical {
            failures.push(format!("#{i} {input:?}: Display differs from canonical()"));
        }
        match Selector::parse(&canonical) {
            Ok(again) if again == selector && again.canonical() == canonical => {}
            Ok(again) => failures.push(format!("#{i} {input:?}: re-parse gives {again}")),
            Err(e) => failures.push(format!("#{i} {input:?}: canonical does not parse: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn unique_ids_match_calicos_sha224_scheme() {
    // Expected values computed independently: base64url(SHA-224("s:" + canonical)), unpadded.
    let cases = [
        ("", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"),
        (
            "has(a)&&!has(b)",
            "s:J__Xr31OMgaC9tvg3sy1_77s-ADabEeaG_64eQ",
        ),
        ("app == 'web'", "s:oy593DLyi5BRwxLRqXScOfE9YMyW5S4KAhmzFg"),
        (
            "k in {'b', 'a', 'b'}",
            "s:kdax1DVe5jGOYMa8YvuGydlPnKtVXYye8Ltcrg",
        ),
    ];
    for (input, id) in cases {
        assert_eq!(Selector::parse(input).unwrap().unique_id(), id, "{input:?}");
    }
}

#[test]
fn equal_trees_are_equal_selectors_whatever_the_spelling() {
    let a = Selector::parse("k in {'y','x'} && has(z)").unwrap();
    let b = Selector::parse("(k in {\"x\", \"y\", \"x\"})&&has( z )").unwrap();
    assert_eq!(a, b);
    let set: HashSet<Selector> = [a.clone(), b.clone()].into_iter().collect();
    assert_eq!(set.len(), 1);
    assert_eq!(a.unique_id(), b.unique_id());
    assert_ne!(a.text(), b.text());
}

#[test]
fn is_all_is_true_only_for_all() {
    for text in ["", " ", "all()", "(all())", "!!all()"] {
        assert!(Selector::parse(text).unwrap().is_all(), "{text:?}");
    }
    for text in ["global()", "!all()", "all() && all()", "has(a)"] {
        assert!(!Selector::parse(text).unwrap().is_all(), "{text:?}");
    }
    assert!(Selector::all().is_all());
    assert!(Selector::default().is_all());
}

#[test]
fn uses_global_looks_at_the_tree_not_the_text() {
    assert!(Selector::parse("global()").unwrap().uses_global());
    assert!(
        Selector::parse("has(a) || !(global() && has(b))")
            .unwrap()
            .uses_global()
    );
    assert!(!Selector::parse("name == 'global()'").unwrap().uses_global());
    assert!(!Selector::parse("global == 'x'").unwrap().uses_global());
    assert!(!Selector::all().uses_global());
}

#[test]
fn from_str_and_parse_agree() {
    let a: Selector = "has(a) || b == 'c'".parse().unwrap();
    assert_eq!(a, Selector::parse("has(a) || b == 'c'").unwrap());
    assert!("b == c".parse::<Selector>().is_err());
}

#[test]
fn expr_exposes_the_tree() {
    let s = Selector::parse("!has(a) && b in {'2','1'}").unwrap();
    let want = Expr::And(vec![
        Expr::Not(Box::new(Expr::Has("a".into()))),
        Expr::In {
            label: "b".into(),
            values: vec!["1".into(), "2".into()],
        },
    ]);
    assert_eq!(s.expr(), &want);
    assert_eq!(s.expr().children().len(), 2);
    assert_eq!(s.into_expr(), want);
}

#[test]
fn from_expr_normalises_and_validates_hand_built_trees() {
    let tree = Expr::Or(vec![Expr::NotIn {
        label: "k".into(),
        values: vec!["b".into(), "a".into(), "b".into()],
    }]);
    let s = Selector::from_expr(tree).unwrap();
    assert_eq!(s.canonical(), "k not in {\"a\", \"b\"}");
    assert_eq!(s, Selector::parse(&s.canonical()).unwrap());
    assert_eq!(s.text(), "k not in {\"a\", \"b\"}");

    let bad = Expr::Has("no spaces".into());
    let err = Selector::from_expr(bad).unwrap_err();
    assert!(matches!(err, ExprError::InvalidLabel { .. }));
    assert!(err.to_string().contains("\"no spaces\""), "{err}");
}

#[test]
fn with_label_prefix_prefixes_every_label_like_calicos_prefix_visitor() {
    let s = Selector::parse("!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))").unwrap();
    let p = s.with_label_prefix("pcns.").unwrap();
    assert_eq!(
        p.canonical(),
        "!(!((pcns.k == \"v\" && has(pcns.t)) || all()) && pcns.a in {\"b\", \"c\"})"
    );
    let long = Selector::parse(&format!("has({})", "x".repeat(510))).unwrap();
    assert!(long.with_label_prefix("pcns.").is_err());
}

#[test]
fn scope_operators_can_be_rewritten_for_namespace_selectors() {
    let ns = "projectcalico.org/namespace";
    let all_with = Expr::Has(ns.into());
    let global_with = Expr::Not(Box::new(Expr::Has(ns.into())));
    let s = Selector::parse("!global() || all() && name == 'all()'").unwrap();
    let r = s.replace_scope_operators(&all_with, &global_with).unwrap();
    // `!global()` becomes a double negation; the string value is untouched.
    assert_eq!(
        r.canonical(),
        "(!(!has(projectcalico.org/namespace)) || (has(projectcalico.org/namespace) && name == \"all()\"))"
    );
    assert!(r.matches(&[(ns, "default")]));
    assert!(!r.matches(&[("name", "all()")]));
}

#[test]
fn the_canonical_table_is_large_enough() {
    assert!(CASES.len() >= 40, "only {} cases", CASES.len());
}
