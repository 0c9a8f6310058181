//! Table-driven parse-error cases: selector text, expected error position, expected message text.
#![allow(clippy::unwrap_used)]

use fabric_selector::{MAX_NESTING_DEPTH, ParseError, Selector};

/// (selector, 0-based byte position, a fragment the message must contain)
const CASES: &[(&str, usize, &str)] = &[
    // operands of comparisons must be quoted strings
    (
        "app == web",
        7,
        "expected a quoted string after '==', found label \"web\"",
    ),
    ("a != b", 5, "expected a quoted string after '!='"),
    ("b contains b", 11, "after 'contains'"),
    ("b starts with b", 14, "after 'starts with'"),
    ("b ends with b", 12, "after 'ends with'"),
    (
        "a ==",
        4,
        "expected a quoted string after '==', found the end of the selector",
    ),
    ("a contains", 10, "expected a quoted string"),
    ("a starts with", 13, "expected a quoted string"),
    // single-character operators
    ("app = 'web'", 4, "expected '=='"),
    ("a == 'b' &", 9, "expected '&&'"),
    ("a == 'b' |", 9, "expected '||'"),
    ("a ! = 'x'", 4, "expected '=='"),
    ("a !== 'x'", 4, "expected '=='"),
    ("a === 'x'", 4, "expected '=='"),
    // strings
    ("app == 'web", 7, "unterminated string (missing closing ')"),
    (
        "app == \"web",
        7,
        "unterminated string (missing closing \")",
    ),
    ("app == \"web'", 7, "missing closing \""),
    ("app == 'wéb", 7, "unterminated string"),
    ("tier in {'a", 9, "unterminated string (missing closing ')"),
    ("'web' == app", 0, "found string \"web\""),
    // a label must be followed by an operator
    ("app", 3, "expected an operator after label \"app\""),
    ("app ", 4, "expected an operator after label \"app\""),
    ("a\t", 2, "expected an operator"),
    ("a b", 2, "unknown operator \"b\""),
    ("a inside {'x'}", 2, "unknown operator \"inside\""),
    ("a notinx {}", 2, "unknown operator"),
    ("a starts 'x'", 2, "unknown operator \"starts\""),
    ("a ends foo 'x'", 2, "unknown operator \"ends\""),
    ("a equals 'x'", 2, "unknown operator \"equals\""),
    ("a -x 'y'", 2, "unknown operator \"-x\""),
    (
        "a == 'b' && c",
        13,
        "expected an operator after label \"c\"",
    ),
    ("has (a)", 4, "expected an operator after label \"has\""),
    ("all ()", 4, "expected an operator after label \"all\""),
    ("a 'x'", 2, "found string \"x\""),
    ("a }", 2, "found '}'"),
    // missing operands
    ("!", 1, "unexpected end of selector, expected a label name"),
    ("!!!", 3, "unexpected end of selector"),
    ("a == 'b' && ", 12, "unexpected end of selector"),
    ("a == 'b' ||", 11, "unexpected end of selector"),
    ("a == 'x' && !", 13, "unexpected end of selector"),
    ("a == 'x' || || b == 'y'", 12, "found '||'"),
    ("&& a == 'x'", 0, "found '&&'"),
    ("{}", 0, "found '{'"),
    // parentheses
    ("(", 1, "unexpected end of selector"),
    (
        "(a == 'b'",
        9,
        "expected ')' to close the '(' at position 0, found the end",
    ),
    ("((a == 'x')", 11, "to close the '(' at position 0"),
    (
        "a == 'x' && (b == 'y'",
        21,
        "to close the '(' at position 12",
    ),
    (
        "(a == 'x' b == 'y')",
        10,
        "expected ')' to close the '(' at position 0, found label \"b\"",
    ),
    (")", 0, "found ')'"),
    ("()", 1, "found ')'"),
    ("a == 'b')", 8, "unmatched ')'"),
    ("(a == 'x'))", 10, "unmatched ')'"),
    // trailing garbage
    (
        "a == 'b' c == 'd'",
        9,
        "unexpected label \"c\" after a complete expression",
    ),
    ("a == 'x' a", 9, "unexpected label \"a\""),
    ("a in {'x'} b", 11, "unexpected label \"b\""),
    (
        "has(a) == 'x'",
        7,
        "unexpected '==' after a complete expression",
    ),
    ("a == 'x' !", 9, "unexpected '!'"),
    ("a == 'x',", 8, "unexpected ','"),
    ("a in {'x'}}", 10, "unexpected '}'"),
    ("all() all()", 6, "unexpected 'all()'"),
    // sets
    (
        "a in 'x'",
        5,
        "expected '{' to start the set of values after 'in'",
    ),
    (
        "a not in",
        8,
        "expected '{' to start the set of values after 'not in'",
    ),
    ("a in", 4, "expected '{'"),
    ("a in {'x' 'y'}", 10, "expected ',' or '}'"),
    ("a in {,}", 6, "expected a quoted string or '}'"),
    ("a in {'x',,}", 10, "expected a quoted string or '}'"),
    (
        "a in {'x'",
        9,
        "expected ',' or '}' in the set of values opened at position 5",
    ),
    ("a in {x}", 6, "expected a quoted string or '}' in the set"),
    ("a in {'x', y}", 11, "found label \"y\""),
    // has(), all(), global()
    ("has()", 4, "expected a label name inside 'has(...)'"),
    ("has(a", 5, "expected ')' to close the 'has(' at position 0"),
    ("has(a b)", 6, "expected ')' to close the 'has('"),
    ("has('a')", 4, "unexpected character '\\''"),
    ("all(", 4, "expected ')' to close the 'all('"),
    ("all(x)", 4, "unexpected character 'x'"),
    ("global(", 7, "expected ')' to close the 'global('"),
    ("a == 'x' && has(", 16, "expected a label name"),
    // characters outside the language
    ("%", 0, "unexpected character '%'"),
    ("a == 'b' && %", 12, "unexpected character '%'"),
    ("é == 'x'", 0, "unexpected character 'é'"),
    ("app == 'x' && ü", 14, "unexpected character 'ü'"),
    ("a.b:c == 'x'", 3, "unexpected character ':'"),
    ("a@b == 'x'", 1, "unexpected character '@'"),
    ("a == 'b'\n&& c == 'd'", 8, "unexpected line break '\\n'"),
    ("a == 'b'\r\n", 8, "unexpected line break '\\r'"),
    (
        "\napp == 'x'",
        0,
        "only spaces and tabs may separate tokens",
    ),
    ("has(a)\u{a0}", 6, "unexpected character '\\u{a0}'"),
    ("a ==\u{3000}'x'", 4, "unexpected character"),
];

#[test]
fn every_invalid_selector_is_rejected_at_the_expected_position() {
    let mut failures = Vec::new();
    for (i, (text, position, fragment)) in CASES.iter().enumerate() {
        match Selector::parse(text) {
            Ok(s) => failures.push(format!("#{i} {text:?}: accepted as {s}")),
            Err(e) => {
                if e.position != *position || !e.message.contains(fragment) {
                    failures.push(format!(
                        "#{i} {text:?}: got {e}, want position {position} and {fragment:?}"
                    ));
                }
                if e.to_string() != format!("at position {}: {}", e.position, e.message) {
                    failures.push(format!("#{i} {text:?}: Display is {e}"));
                }
            }
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
fn the_error_table_is_large_enough() {
    assert!(CASES.len() >= 60, "only {} cases", CASES.len());
}

#[test]
fn an_unterminated_string_error_reads_as_documented() {
    let err = Selector::parse("tier in {'a").unwrap_err();
    assert_eq!(
        err.to_string(),
        "at position 9: unterminated string (missing closing ')"
    );
    assert_eq!(
        err,
        ParseError {
            position: 9,
            message: "unterminated string (missing closing ')".into()
        }
    );
}

#[test]
fn label_names_longer_than_512_characters_are_rejected() {
    let ok = "k".repeat(512);
    assert!(Selector::parse(&format!("{ok} == 'x'")).is_ok());
    assert!(Selector::parse(&format!("has({ok})")).is_ok());
    let long = "k".repeat(513);
    let err = Selector::parse(&format!("{long} == 'x'")).unwrap_err();
    assert_eq!(err.position, 0);
    assert!(
        err.message
            .contains("513 characters long; the limit is 512"),
        "{err}"
    );
    let err = Selector::parse(&format!("a == 'x' || has({long})")).unwrap_err();
    assert_eq!(err.position, 16);
}

fn nested_parens(depth: usize) -> String {
    format!("{}has(a){}", "(".repeat(depth), ")".repeat(depth))
}

#[test]
fn parentheses_may_nest_up_to_the_limit() {
    let selector = Selector::parse(&nested_parens(MAX_NESTING_DEPTH)).unwrap();
    assert_eq!(selector.canonical(), "has(a)");
}

#[test]
fn parentheses_nested_beyond_the_limit_are_rejected_at_the_first_excess_paren() {
    let err = Selector::parse(&nested_parens(MAX_NESTING_DEPTH + 1)).unwrap_err();
    assert_eq!(err.position, MAX_NESTING_DEPTH);
    assert!(err.message.contains("nest more than 256 levels"), "{err}");
}

#[test]
fn a_hundred_thousand_open_parens_give_an_error_not_a_stack_overflow() {
    let text = "(".repeat(100_000);
    let err = Selector::parse(&text).unwrap_err();
    assert_eq!(err.position, MAX_NESTING_DEPTH);
    let text = format!("{}a == 'x'{}", "(".repeat(50_000), ")".repeat(50_000));
    assert_eq!(
        Selector::parse(&text).unwrap_err().position,
        MAX_NESTING_DEPTH
    );
    let text = "!(".repeat(50_000);
    assert!(Selector::parse(&text).is_err());
}

#[test]
fn long_flat_selectors_parse_without_recursion_trouble() {
    let text = vec!["a == 'x'"; 20_000].join(" && ");
    let selector = Selector::parse(&text).unwrap();
    assert!(selector.matches(&[("a", "x")]));
    let text = format!("{}has(a)", "!".repeat(100_001));
    let selector = Selector::parse(&text).unwrap();
    assert_eq!(selector.canonical(), "!has(a)");
}

/// `has(a) && (has(a) && (... (inner)))` with `levels` parenthesised levels.
fn nested_groups(levels: usize, inner: &str) -> String {
    let mut text = inner.to_string();
    for _ in 0..levels {
        text = format!("has(a) && ({text})");
    }
    text
}

#[test]
fn groups_at_the_nesting_limit_parse_and_their_canonical_form_reparses() {
    let selector = Selector::parse(&nested_groups(MAX_NESTING_DEPTH, "has(a)")).unwrap();
    let reparsed = Selector::parse(&selector.canonical()).unwrap();
    assert_eq!(reparsed, selector);
}

#[test]
fn groups_nested_beyond_the_limit_are_rejected_even_within_the_paren_limit() {
    // 256 levels of parentheses, but 257 levels of '&&' groups: the canonical form, which
    // parenthesises every group, could not be parsed back, so it is rejected up front.
    let err = Selector::parse(&nested_groups(MAX_NESTING_DEPTH, "has(a) && has(b)")).unwrap_err();
    assert_eq!(err.position, 7);
    assert!(
        err.message.contains("groups nest more than 256 levels"),
        "{err}"
    );
}
