//! Table-driven evaluation cases: selector text, labels, expected match.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use fabric_selector::Selector;

type Case = (&'static str, &'static [(&'static str, &'static str)], bool);

const NONE: &[(&str, &str)] = &[];

const CASES: &[Case] = &[
    // ==
    ("app == 'web'", &[("app", "web")], true),
    ("app == 'web'", &[("app", "db")], false),
    ("app == 'web'", NONE, false),
    ("app == 'web'", &[("other", "web")], false),
    ("app == \"web\"", &[("app", "web")], true),
    ("app == ''", &[("app", "")], true),
    ("app == ''", NONE, false),
    ("app=='web'", &[("app", "web")], true),
    ("app == 'Web'", &[("app", "web")], false),
    ("app == 'web '", &[("app", "web")], false),
    ("app == 'a b'", &[("app", "a b")], true),
    ("app == \"it's\"", &[("app", "it's")], true),
    ("app == 'say \"hi\"'", &[("app", "say \"hi\"")], true),
    ("app == 'ünï'", &[("app", "ünï")], true),
    ("app == 'line\nbreak'", &[("app", "line\nbreak")], true),
    ("app == '\t'", &[("app", "\t")], true),
    ("App == 'x'", &[("app", "x")], false),
    // != matches when the label is absent
    ("app != 'web'", &[("app", "web")], false),
    ("app != 'web'", &[("app", "db")], true),
    ("app != 'web'", NONE, true),
    ("app != 'web'", &[("other", "x")], true),
    ("app != ''", &[("app", "")], false),
    ("app != ''", NONE, true),
    ("app!='web'", &[("app", "web")], false),
    // in
    ("tier in {'a','b'}", &[("tier", "a")], true),
    ("tier in {'a','b'}", &[("tier", "b")], true),
    ("tier in {'a','b'}", &[("tier", "c")], false),
    ("tier in {'a','b'}", NONE, false),
    ("tier in {}", &[("tier", "a")], false),
    ("tier in {}", NONE, false),
    ("tier in {''}", &[("tier", "")], true),
    ("tier in {'a','a'}", &[("tier", "a")], true),
    ("tier in {\"a\", 'b\"'}", &[("tier", "b\"")], true),
    ("tier in {'a',}", &[("tier", "a")], true),
    ("tier in{'a'}", &[("tier", "a")], true),
    ("tier in { 'a' , 'b' }", &[("tier", "b")], true),
    (
        "tier in {'z', 'y', 'x', 'w', 'v', 'u'}",
        &[("tier", "w")],
        true,
    ),
    (
        "tier in {'z', 'y', 'x', 'w', 'v', 'u'}",
        &[("tier", "t")],
        false,
    ),
    // not in matches when the label is absent
    ("tier not in {'a','b'}", &[("tier", "a")], false),
    ("tier not in {'a','b'}", &[("tier", "c")], true),
    ("tier not in {'a','b'}", NONE, true),
    ("tier not in {}", &[("tier", "x")], true),
    ("tier not in {}", NONE, true),
    ("tier notin {'a'}", &[("tier", "a")], false),
    ("tier not  in {'a'}", &[("tier", "b")], true),
    ("tier not\tin {'a'}", NONE, true),
    // contains
    ("name contains 'eb'", &[("name", "web")], true),
    ("name contains 'eb'", &[("name", "db")], false),
    ("name contains 'eb'", NONE, false),
    ("name contains ''", &[("name", "x")], true),
    ("name contains ''", NONE, false),
    ("name contains 'web'", &[("name", "web")], true),
    ("name contains\"w\"", &[("name", "w")], true),
    ("name contains 'é'", &[("name", "café")], true),
    // starts with
    ("name starts with 'we'", &[("name", "web")], true),
    ("name starts with 'we'", &[("name", "dweb")], false),
    ("name starts with 'we'", NONE, false),
    ("name startswith 'we'", &[("name", "web")], true),
    ("name starts   with 'w'", &[("name", "web")], true),
    ("name starts with ''", &[("name", "")], true),
    ("name starts with ''", NONE, false),
    ("name starts with 'c'", &[("name", "café")], true),
    // ends with
    ("name ends with 'eb'", &[("name", "web")], true),
    ("name ends with 'eb'", &[("name", "webs")], false),
    ("name ends with 'eb'", NONE, false),
    ("name endswith 'b'", &[("name", "web")], true),
    ("name ends with ''", &[("name", "x")], true),
    ("name ends with 'é'", &[("name", "café")], true),
    // has
    ("has(app)", &[("app", "x")], true),
    ("has(app)", &[("app", "")], true),
    ("has(app)", NONE, false),
    ("has(app)", &[("apps", "x")], false),
    ("has( app )", &[("app", "x")], true),
    ("has(\tapp\t)", &[("app", "x")], true),
    ("!has(app)", NONE, true),
    ("!has(app)", &[("app", "")], false),
    ("! has(app)", NONE, true),
    // all(), global(), blank
    ("all()", NONE, true),
    ("all()", &[("a", "b")], true),
    ("all( )", NONE, true),
    ("global()", NONE, true),
    ("global()", &[("a", "b")], true),
    ("global(\t)", &[("projectcalico.org/namespace", "x")], true),
    ("!all()", NONE, false),
    ("!global()", &[("a", "b")], false),
    ("", NONE, true),
    ("   ", &[("a", "b")], true),
    ("\t", NONE, true),
    ("(all())", NONE, true),
    // label names
    (
        "projectcalico.org/namespace == 'default'",
        &[("projectcalico.org/namespace", "default")],
        true,
    ),
    ("k8s-app == 'kube-dns'", &[("k8s-app", "kube-dns")], true),
    ("a.b/c-d_e == 'x'", &[("a.b/c-d_e", "x")], true),
    (
        "calico/k8s_ns/role == 'x'",
        &[("calico/k8s_ns/role", "x")],
        true,
    ),
    ("123 == '4'", &[("123", "4")], true),
    ("-- == 'x'", &[("--", "x")], true),
    ("all == 'x'", &[("all", "x")], true),
    ("has == 'x'", &[("has", "x")], true),
    ("global == 'x'", &[("global", "x")], true),
    ("in in {'x'}", &[("in", "x")], true),
    ("not not in {'x'}", &[("not", "y")], true),
    ("contains contains 'x'", &[("contains", "axb")], true),
    ("starts starts with 'x'", &[("starts", "xy")], true),
    ("ends ends with 'x'", &[("ends", "yx")], true),
    ("notin notin {'x'}", NONE, true),
    ("has(all)", &[("all", "")], true),
    ("has(has)", &[("has", "1")], true),
    (
        "has(projectcalico.org/orchestrator)",
        &[("projectcalico.org/orchestrator", "k8s")],
        true,
    ),
    // !
    ("!app == 'web'", &[("app", "web")], false),
    ("!app == 'web'", NONE, true),
    ("!!app == 'web'", &[("app", "web")], true),
    ("!!!app == 'web'", &[("app", "web")], false),
    ("! ! app == 'web'", &[("app", "web")], true),
    ("!app != 'web'", NONE, false),
    ("!app in {'a'}", NONE, true),
    ("!app not in {'a'}", NONE, false),
    ("!(app == 'web')", &[("app", "web")], false),
    ("!!(has(a))", &[("a", "1")], true),
    // &&
    ("a == '1' && b == '2'", &[("a", "1"), ("b", "2")], true),
    ("a == '1' && b == '2'", &[("a", "1")], false),
    ("a == '1' && b == '2'", &[("b", "2")], false),
    ("a == '1'&&b == '2'", &[("a", "1"), ("b", "2")], true),
    ("a == '1' && b != '2'", &[("a", "1")], true),
    (
        "has(a) && has(b) && has(c)",
        &[("a", ""), ("b", ""), ("c", "")],
        true,
    ),
    ("has(a) && has(b) && has(c)", &[("a", ""), ("b", "")], false),
    // ||
    ("a == '1' || b == '2'", &[("b", "2")], true),
    ("a == '1' || b == '2'", NONE, false),
    ("a == '1' || b == '2'", &[("a", "1")], true),
    ("a == '1'||b == '2'", &[("b", "2")], true),
    ("has(a) || has(b) || has(c)", &[("c", "")], true),
    ("has(a) || has(b) || has(c)", &[("d", "")], false),
    // precedence: ! over && over ||
    ("a == '1' || b == '2' && c == '3'", &[("a", "1")], true),
    ("a == '1' || b == '2' && c == '3'", &[("b", "2")], false),
    (
        "a == '1' || b == '2' && c == '3'",
        &[("b", "2"), ("c", "3")],
        true,
    ),
    ("(a == '1' || b == '2') && c == '3'", &[("a", "1")], false),
    (
        "(a == '1' || b == '2') && c == '3'",
        &[("a", "1"), ("c", "3")],
        true,
    ),
    ("!has(a) || has(b)", NONE, true),
    ("!has(a) || has(b)", &[("a", "")], false),
    ("!(has(a) || has(b))", &[("b", "")], false),
    ("!(has(a) || has(b))", NONE, true),
    ("!has(a) && has(b)", &[("b", "")], true),
    ("!(has(a) && has(b))", &[("a", "")], true),
    ("a == '1' && b == '2' || c == '3'", &[("c", "3")], true),
    ("a == '1' && (b == '2' || c == '3')", &[("c", "3")], false),
    (
        "a == '1' && (b == '2' || c == '3')",
        &[("a", "1"), ("c", "3")],
        true,
    ),
    ("((((has(a)))))", &[("a", "")], true),
    ("!(a == '1' && b == '2')", &[("a", "1")], true),
    ("!a == '1' && b == '2'", &[("b", "2")], true),
    ("!a == '1' || b == '2'", &[("a", "1")], false),
    (
        "!has(x) || x starts with 'prod' && role in {'fe','be'}",
        NONE,
        true,
    ),
    (
        "!has(x) || x starts with 'prod' && role in {'fe','be'}",
        &[("x", "prod-1"), ("role", "fe")],
        true,
    ),
    (
        "!has(x) || x starts with 'prod' && role in {'fe','be'}",
        &[("x", "prod-1"), ("role", "db")],
        false,
    ),
    (
        "!has(x) || x starts with 'prod' && role in {'fe','be'}",
        &[("x", "dev"), ("role", "fe")],
        false,
    ),
    // absent-label logic in combination
    ("a != 'x' && a != 'y'", NONE, true),
    ("a != 'x' || a == 'x'", NONE, true),
    ("a == 'x' || a != 'x'", &[("a", "z")], true),
    ("has(a) && a not in {'x'}", NONE, false),
    ("has(a) && a not in {'x'}", &[("a", "y")], true),
    ("has(a) || !has(a)", NONE, true),
    ("has(a) && !has(a)", &[("a", "")], false),
    // blanks around and between tokens
    ("  app == 'web'  ", &[("app", "web")], true),
    ("\tapp\t==\t'web'\t", &[("app", "web")], true),
    ("app ==   'web'", &[("app", "web")], true),
    // quotes
    ("app == \"'\"", &[("app", "'")], true),
    ("app in {\"'\", '\"'}", &[("app", "\"")], true),
    ("app in {\"'\", '\"'}", &[("app", "x")], false),
    // long conjunction of every operator
    (
        "a in {'1','2','3'} && b not in {'x'} && c contains 'q' && d starts with 'p' && e ends with 's' && f != 'n' && has(g) && h == 'y'",
        &[
            ("a", "2"),
            ("c", "aqa"),
            ("d", "pp"),
            ("e", "ss"),
            ("g", ""),
            ("h", "y"),
        ],
        true,
    ),
    (
        "a in {'1','2','3'} && b not in {'x'} && c contains 'q' && d starts with 'p' && e ends with 's' && f != 'n' && has(g) && h == 'y'",
        &[
            ("a", "2"),
            ("b", "x"),
            ("c", "aqa"),
            ("d", "pp"),
            ("e", "ss"),
            ("g", ""),
            ("h", "y"),
        ],
        false,
    ),
];

#[test]
fn every_evaluation_case_gives_the_expected_result() {
    let mut failures = Vec::new();
    for (i, (text, labels, expected)) in CASES.iter().enumerate() {
        let selector = match Selector::parse(text) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("#{i} {text:?}: unexpected parse error: {e}"));
                continue;
            }
        };
        let btree: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let hash: HashMap<String, String> = btree.clone().into_iter().collect();
        let results = [
            selector.matches(*labels),
            selector.matches(&btree),
            selector.matches(&hash),
        ];
        if results != [*expected; 3] {
            failures.push(format!(
                "#{i} {text:?} on {labels:?}: got {results:?}, want {expected}"
            ));
        }
        let reparsed = Selector::parse(&selector.canonical()).unwrap();
        if reparsed.matches(*labels) != *expected {
            failures.push(format!(
                "#{i} {text:?}: canonical {:?} evaluates differently",
                selector.canonical()
            ));
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
fn the_evaluation_table_is_large_enough() {
    assert!(CASES.len() >= 150, "only {} cases", CASES.len());
}
