//! Serialisation of selectors as strings: the user's text is kept, bad text is rejected clearly.
#![allow(clippy::unwrap_used)]

use fabric_selector::Selector;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Pool {
    #[serde(rename = "nodeSelector", default)]
    node_selector: Selector,
}

#[test]
fn a_selector_deserialises_from_a_string_and_serialises_back_to_the_same_text() {
    let json = r#"{"nodeSelector":"rack=='r1'&&!has(edge)"}"#;
    let pool: Pool = serde_json::from_str(json).unwrap();
    assert!(pool.node_selector.matches(&[("rack", "r1")]));
    assert!(!pool.node_selector.matches(&[("rack", "r1"), ("edge", "")]));
    assert_eq!(serde_json::to_string(&pool).unwrap(), json);
}

#[test]
fn a_built_selector_serialises_as_its_canonical_text() {
    let pool = Pool {
        node_selector: Selector::all(),
    };
    assert_eq!(
        serde_json::to_string(&pool).unwrap(),
        r#"{"nodeSelector":"all()"}"#
    );
}

#[test]
fn a_missing_selector_defaults_to_all() {
    let pool: Pool = serde_json::from_str("{}").unwrap();
    assert!(pool.node_selector.is_all());
}

#[test]
fn an_invalid_selector_is_rejected_with_its_text_and_the_position() {
    let err = serde_json::from_str::<Pool>(r#"{"nodeSelector":"rack == r1"}"#).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("invalid selector \"rack == r1\""),
        "{message}"
    );
    assert!(
        message.contains("at position 8: expected a quoted string"),
        "{message}"
    );
}

#[test]
fn a_non_string_selector_is_rejected() {
    let err = serde_json::from_str::<Pool>(r#"{"nodeSelector":42}"#).unwrap_err();
    assert!(
        err.to_string().contains("a Calico label selector string"),
        "{err}"
    );
}
