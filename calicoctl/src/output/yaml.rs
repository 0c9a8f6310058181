//! `-o yaml` and `-o json` in calicoctl's shapes: one resource prints as itself, a listing as
//! a `<Kind>List` (`apiVersion`, `kind`, `metadata.resourceVersion`, `items`), several named
//! resources as a sequence. YAML keys are sorted and sequences are not indented, as Go's
//! YAML-through-JSON marshalling prints them; JSON is indented by two spaces. Every shape
//! parses back with `apply -f`.

use fabric_api::{API_VERSION, AnyResource, Kind};
use serde_json::{Map, Value};

/// What `get` prints.
#[derive(Debug)]
pub(crate) enum Printable {
    /// Resources asked for by name (or from a file): one prints as itself, several as a
    /// sequence.
    Named(Vec<AnyResource>),
    /// A listing of one kind: a `<Kind>List`.
    List {
        /// The kind of the items.
        kind: Kind,
        /// The store revision of the listing.
        revision: Option<String>,
        /// The resources.
        items: Vec<AnyResource>,
    },
}

impl Printable {
    /// The JSON value printed.
    pub(crate) fn to_value(&self) -> anyhow::Result<Value> {
        Ok(match self {
            Printable::Named(items) if items.len() == 1 => serde_json::to_value(&items[0])?,
            Printable::Named(items) => Value::Array(
                items
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?,
            ),
            Printable::List {
                kind,
                revision,
                items,
            } => {
                let mut list = Map::new();
                list.insert("apiVersion".into(), Value::String(API_VERSION.into()));
                list.insert("kind".into(), Value::String(kind.list_name()));
                let mut meta = Map::new();
                if let Some(rev) = revision {
                    meta.insert("resourceVersion".into(), Value::String(rev.clone()));
                }
                list.insert("metadata".into(), Value::Object(meta));
                list.insert(
                    "items".into(),
                    Value::Array(
                        items
                            .iter()
                            .map(serde_json::to_value)
                            .collect::<Result<_, _>>()?,
                    ),
                );
                Value::Object(list)
            }
        })
    }

    /// YAML text (keys sorted), ending with a newline.
    pub(crate) fn to_yaml(&self) -> anyhow::Result<String> {
        let mut value = self.to_value()?;
        sort_keys(&mut value);
        Ok(serde_yaml_ng::to_string(&value)?)
    }

    /// JSON text indented by two spaces, ending with a newline.
    pub(crate) fn to_json(&self) -> anyhow::Result<String> {
        let mut text = serde_json::to_string_pretty(&self.to_value()?)?;
        text.push('\n');
        Ok(text)
    }
}

/// Sorts every object's keys (Go marshals maps in key order).
fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut child) in entries {
                sort_keys(&mut child);
                map.insert(k, child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_api::document::parse_documents;

    fn pools() -> Vec<AnyResource> {
        let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.1.0.0/16}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: b}\nspec: {cidr: 10.2.0.0/16}\n";
        parse_documents(text, "t").unwrap()
    }

    #[test]
    fn a_list_prints_as_a_kind_list_with_sorted_keys() {
        let p = Printable::List {
            kind: Kind::IPPool,
            revision: Some("17".into()),
            items: pools()[..1].to_vec(),
        };
        let yaml = p.to_yaml().unwrap();
        assert_eq!(
            yaml,
            "apiVersion: projectcalico.org/v3\n\
             items:\n\
             - apiVersion: projectcalico.org/v3\n  \
               kind: IPPool\n  \
               metadata:\n    name: a\n  \
               spec:\n    allowedUses:\n    - Workload\n    - Tunnel\n    \
               assignmentMode: Automatic\n    blockSize: 26\n    cidr: 10.1.0.0/16\n    \
               ipipMode: Never\n    nodeSelector: all()\n    vxlanMode: Never\n\
             kind: IPPoolList\n\
             metadata:\n  resourceVersion: '17'\n"
        );
    }

    #[test]
    fn every_shape_parses_back() {
        for p in [
            Printable::Named(pools()[..1].to_vec()),
            Printable::Named(pools()),
            Printable::List {
                kind: Kind::IPPool,
                revision: None,
                items: pools(),
            },
        ] {
            for text in [p.to_yaml().unwrap(), p.to_json().unwrap()] {
                let back = parse_documents(&text, "out").unwrap_or_else(|e| panic!("{e}\n{text}"));
                assert!(!back.is_empty());
            }
        }
    }
}
