//! Manifest parsing: YAML (multi-document) or JSON text holding resources, `<Kind>List`s,
//! Kubernetes `List`s or sequences of resources; strict decoding, Calico's defaults, then
//! validation, reporting every error of every document.

use std::fmt;

use serde_json::{Map, Value};

use crate::API_VERSION;
use crate::kind::Kind;
use crate::meta::ListMeta;
use crate::resource::AnyResource;

/// One problem in one document of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// Where the text came from (a file name, `-` for stdin).
    pub source: String,
    /// The document's position in the text, from 1 (`---` separates YAML documents).
    pub index: usize,
    /// The resource's `kind`, when known.
    pub kind: Option<String>,
    /// The resource's `metadata.name`, when known.
    pub name: Option<String>,
    /// Path of the offending field (`spec.cidr`, `items[2].spec.ports[0]`), or the location of
    /// a syntax error (`line 3 column 5`).
    pub field: String,
    /// What is wrong, with the value where there is one.
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: document {} ({}/{}): {}: {}",
            self.source,
            self.index,
            self.kind.as_deref().unwrap_or("?"),
            self.name.as_deref().unwrap_or("?"),
            self.field,
            self.message
        )
    }
}

impl std::error::Error for DocumentError {}

/// Every problem found in a manifest (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentErrors(pub Vec<DocumentError>);

impl fmt::Display for DocumentErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DocumentErrors {}

/// Parses YAML or JSON text: multi-document YAML (`---`), `<Kind>List` (and Kubernetes
/// `List`) with `items`, and top-level sequences of resources. Decoding is strict: unknown
/// fields, a wrong `apiVersion`, an unknown `kind` and wrong types are errors. Defaults are
/// applied, then every resource is validated. Returns the resources in order, or every error
/// of every document (and no resources) when anything is wrong.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<AnyResource>, DocumentErrors> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (index, doc) in split_documents(text).into_iter().enumerate() {
        let mut ctx = Ctx {
            source,
            index: index + 1,
            errors: &mut errors,
        };
        match doc {
            Err(e) => ctx.push(None, None, e.0, e.1),
            Ok(Value::Null) => {}
            Ok(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    ctx.item(&format!("[{i}]"), item, None, &mut out);
                }
            }
            Ok(v) => ctx.top(v, &mut out),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(DocumentErrors(errors))
    }
}

/// Splits the text into documents as JSON values; a syntax error ends the stream.
fn split_documents(text: &str) -> Vec<Result<Value, (String, String)>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let json: Result<Vec<Value>, _> = serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .collect();
        if let Ok(values) = json {
            return values.into_iter().map(Ok).collect();
        }
        // Not JSON: YAML flow style (`{kind: IPPool, ...}`) is YAML, so fall through.
    }
    let mut docs = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let parsed = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(de)
            .map_err(|e| yaml_error(&e))
            .and_then(|mut v| {
                v.apply_merge().map_err(|e| yaml_error(&e))?;
                yaml_to_json(v, "")
            });
        let failed = parsed.is_err();
        docs.push(parsed);
        if failed {
            break;
        }
    }
    docs
}

fn yaml_error(e: &serde_yaml_ng::Error) -> (String, String) {
    let field = e.location().map_or_else(
        || "yaml".to_string(),
        |l| format!("line {} column {}", l.line(), l.column()),
    );
    let msg = e.to_string();
    // serde_yaml_ng appends " at line L column C"; the location is already in the field.
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    (field, format!("invalid YAML: {msg}"))
}

/// Converts a YAML value to JSON the way Kubernetes tooling does (scalar keys become strings).
fn yaml_to_json(v: serde_yaml_ng::Value, path: &str) -> Result<Value, (String, String)> {
    use serde_yaml_ng::Value as Y;
    let here = || {
        if path.is_empty() {
            "yaml".to_string()
        } else {
            path.to_string()
        }
    };
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| (here(), format!("{f} is not a finite number")))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_string(),
                    _ => return Err((here(), "a mapping key must be a scalar".to_string())),
                };
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let value = yaml_to_json(v, &child)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            return Err((
                here(),
                format!("YAML tags are not supported (found {})", t.tag),
            ));
        }
    })
}

struct Ctx<'a> {
    source: &'a str,
    index: usize,
    errors: &'a mut Vec<DocumentError>,
}

fn str_at<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    obj.get(key).and_then(Value::as_str)
}

fn name_of(obj: &Map<String, Value>) -> Option<String> {
    obj.get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn prefixed(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if field.starts_with('[') => format!("{prefix}{field}"),
        (false, false) => format!("{prefix}.{field}"),
    }
}

impl Ctx<'_> {
    fn push(&mut self, kind: Option<String>, name: Option<String>, field: String, message: String) {
        self.errors.push(DocumentError {
            source: self.source.to_string(),
            index: self.index,
            kind,
            name,
            field,
            message,
        });
    }

    /// A top-level document: a resource, a `<Kind>List` or a Kubernetes `List`.
    fn top(&mut self, v: Value, out: &mut Vec<AnyResource>) {
        let Value::Object(obj) = v else {
            self.push(None, None, "(document)".into(), not_a_resource(&v));
            return;
        };
        let kind = str_at(&obj, "kind").map(str::to_string);
        let api = str_at(&obj, "apiVersion").map(str::to_string);
        let item_kind = kind.as_deref().and_then(Kind::from_list_field);
        let k8s_list = kind.as_deref() == Some("List") && api.as_deref() == Some("v1");
        if item_kind.is_none() && !k8s_list {
            self.item("", Value::Object(obj), None, out);
            return;
        }
        if !k8s_list && !self.check_api_version(&obj, kind.clone(), None, "") {
            return;
        }
        let mut obj = obj;
        for key in obj.keys() {
            if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "items") {
                self.push(
                    kind.clone(),
                    None,
                    key.clone(),
                    "unknown field; expected one of apiVersion, kind, metadata, items".into(),
                );
            }
        }
        if let Some(meta) = obj.remove("metadata")
            && !meta.is_null()
            && let Err(e) = serde_path_to_error::deserialize::<_, ListMeta>(meta)
        {
            let (field, msg) = decode_message(&e);
            self.push(kind.clone(), None, prefixed("metadata", &field), msg);
        }
        match obj.remove("items") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    self.item(&format!("items[{i}]"), item, item_kind, out);
                }
            }
            Some(_) => self.push(
                kind,
                None,
                "items".into(),
                "must be a list of resources".into(),
            ),
        }
    }

    fn check_api_version(
        &mut self,
        obj: &Map<String, Value>,
        kind: Option<String>,
        name: Option<String>,
        prefix: &str,
    ) -> bool {
        let field = prefixed(prefix, "apiVersion");
        match obj.get("apiVersion") {
            Some(Value::String(a)) if a == API_VERSION => true,
            None => {
                self.push(
                    kind,
                    name,
                    field,
                    format!("is required; expected {API_VERSION}"),
                );
                false
            }
            Some(Value::String(a)) => {
                let hint = if a.starts_with("crd.projectcalico.org") {
                    " (crd.projectcalico.org is Calico's internal storage format; export with \
                     calicoctl to get projectcalico.org/v3)"
                } else {
                    ""
                };
                self.push(
                    kind,
                    name,
                    field,
                    format!("{a:?} is not supported; expected {API_VERSION}{hint}"),
                );
                false
            }
            Some(other) => {
                self.push(
                    kind,
                    name,
                    field,
                    format!("must be a string, found {other}"),
                );
                false
            }
        }
    }

    /// One resource at `prefix`; `list_kind` is the kind of the enclosing `<Kind>List`.
    fn item(
        &mut self,
        prefix: &str,
        v: Value,
        list_kind: Option<Kind>,
        out: &mut Vec<AnyResource>,
    ) {
        let Value::Object(mut obj) = v else {
            self.push(None, None, prefixed(prefix, ""), not_a_resource(&v));
            return;
        };
        if let Some(k) = list_kind {
            obj.entry("apiVersion")
                .or_insert_with(|| Value::String(API_VERSION.into()));
            obj.entry("kind")
                .or_insert_with(|| Value::String(k.name().into()));
        }
        let kind_text = str_at(&obj, "kind").map(str::to_string);
        let name = name_of(&obj);
        let kind = match (
            obj.get("kind"),
            kind_text.as_deref().and_then(Kind::from_kind_field),
        ) {
            (_, Some(k)) => k,
            (None, _) => {
                self.push(None, name, prefixed(prefix, "kind"), "is required".into());
                return;
            }
            (Some(Value::String(k)), None) => {
                self.push(
                    kind_text.clone(),
                    name,
                    prefixed(prefix, "kind"),
                    unknown_kind(k),
                );
                return;
            }
            (Some(other), None) => {
                let msg = format!("must be a string, found {other}");
                self.push(None, name, prefixed(prefix, "kind"), msg);
                return;
            }
        };
        if let Some(lk) = list_kind
            && lk != kind
        {
            let msg = format!("{:?} does not match the list's item kind {lk}", kind.name());
            self.push(kind_text, name, prefixed(prefix, "kind"), msg);
            return;
        }
        if !self.check_api_version(&obj, kind_text.clone(), name.clone(), prefix) {
            return;
        }
        let mut value = Value::Object(obj);
        strip_nulls(&mut value);
        let mut resource = match AnyResource::decode_tracked(kind, value) {
            Ok(r) => r,
            Err(e) => {
                let (field, msg) = decode_message(&e);
                self.push(kind_text, name, prefixed(prefix, &field), msg);
                return;
            }
        };
        resource.set_defaults();
        match resource.validate() {
            Ok(()) => out.push(resource),
            Err(field_errors) => {
                let name = Some(resource.name().to_string()).filter(|n| !n.is_empty());
                for e in field_errors {
                    self.push(
                        kind_text.clone(),
                        name.clone(),
                        prefixed(prefix, &e.field),
                        e.message(),
                    );
                }
            }
        }
    }
}

/// Drops `key: null` entries, which Go's decoder (and so Calico) treats as absent: `spec:` with
/// nothing under it, `labels: null`, `creationTimestamp: null`.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, child| !child.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn not_a_resource(v: &Value) -> String {
    let found = match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    };
    format!(
        "expected a resource (a mapping with apiVersion, kind, metadata and spec), found {found}"
    )
}

fn unknown_kind(k: &str) -> String {
    let hint = Kind::from_user(k)
        .map(|known| format!(" (kinds are case-sensitive: did you mean {known}?)"))
        .unwrap_or_default();
    let all: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    format!(
        "{k:?} is not a supported projectcalico.org/v3 kind{hint}; expected one of {}",
        all.join(", ")
    )
}

/// Turns a path-tracked serde error into (field path, message) in this crate's style.
fn decode_message(e: &serde_path_to_error::Error<serde_json::Error>) -> (String, String) {
    let mut field = e.path().to_string();
    if field == "." {
        field.clear();
    }
    let raw = e.inner().to_string();
    // serde lists alternatives as "`a`", "`a` or `b`" or "one of `a`, `b`, `c`".
    let strip_ticks = |s: &str| s.replace("` or `", "`, `").replace('`', "");
    if let Some(rest) = raw.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        return (prefixed(&field, name), "is required".into());
    }
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        if field != name && !field.ends_with(&format!(".{name}")) {
            field = prefixed(&field, name);
        }
        let expected = tail
            .trim_start_matches(',')
            .trim()
            .strip_prefix("expected one of ")
            .or_else(|| {
                tail.trim_start_matches(',')
                    .trim()
                    .strip_prefix("expected ")
            })
            .map(strip_ticks);
        let msg = match expected {
            Some(list) => format!("unknown field; expected one of {list}"),
            None => "unknown field; this object has no fields".to_string(),
        };
        return (field, msg);
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        let (value, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = tail
            .trim_start_matches(',')
            .trim()
            .trim_start_matches("expected one of ")
            .trim_start_matches("expected ");
        return (
            field,
            format!("{value:?} is not one of {}", strip_ticks(expected)),
        );
    }
    if let Some(rest) = raw.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        return (
            field,
            format!(
                "has the wrong type: found {}, expected {}",
                strip_ticks(found),
                describe_expected(expected)
            ),
        );
    }
    if let Some(rest) = raw.strip_prefix("invalid value: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        return (
            field,
            format!(
                "is out of range: found {}, expected {}",
                strip_ticks(found),
                describe_expected(expected)
            ),
        );
    }
    (field, raw)
}

fn describe_expected(e: &str) -> String {
    match e {
        "u8" => "an integer 0-255".into(),
        "u16" => "an integer 0-65535".into(),
        "u32" => "an integer 0-4294967295".into(),
        "i32" => "a 32-bit integer".into(),
        "i64" | "u64" => "an integer".into(),
        "f64" => "a number".into(),
        other if other.starts_with("struct ") => "a mapping".into(),
        other if other.starts_with("enum ") => "one of the listed values".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_text_has_no_resources() {
        assert_eq!(parse_documents("", "x").unwrap(), vec![]);
        assert_eq!(
            parse_documents("---\n# nothing\n---\n", "x").unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_yaml_syntax_error_names_its_line() {
        let e = parse_documents("kind: IPPool\n  bad: [\n", "f.yaml").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(e.0[0].field.starts_with("line "), "{}", e);
        assert!(e.0[0].message.starts_with("invalid YAML"), "{}", e);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nkind: IPPool\n";
        let e = parse_documents(text, "f.yaml").unwrap_err();
        assert!(e.to_string().contains("duplicate"), "{e}");
    }

    #[test]
    fn null_values_count_as_absent_like_in_go() {
        let text = "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: p\n  \
                    labels: null\n  creationTimestamp: null\nspec:\n";
        let r = parse_documents(text, "f").unwrap();
        assert_eq!(r[0].name(), "p");
    }

    #[test]
    fn an_unknown_field_is_named_once() {
        let text =
            "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {ec: 1}\n";
        let e = parse_documents(text, "f").unwrap_err();
        assert_eq!(e.0[0].field, "spec.ec");
        let text =
            "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nstatuss: {}\n";
        let e = parse_documents(text, "f").unwrap_err();
        assert_eq!(e.0[0].field, "statuss");
    }

    #[test]
    fn yaml_tags_are_refused() {
        let text = "apiVersion: !custom abc\n";
        assert!(parse_documents(text, "f").is_err());
    }
}
