//! `patch KIND NAME -p PATCH`: a merge patch (RFC 7386; also what `strategic` means for
//! Calico resources, whose lists have no merge keys) or a JSON patch (RFC 6902) applied to
//! the stored resource, which must stay valid and keep its kind, name and namespace; written
//! with compare-and-swap on the revision it was read at.

use fabric_api::document::parse_documents;
use serde_json::{Map, Value};

use super::common::{describe, error_report, namespace_for_kind};
use crate::cli::PatchArgs;
use crate::context::Ctx;
use crate::kinds;

/// `patch`.
pub(crate) async fn patch(ctx: &mut Ctx<'_>, args: &PatchArgs) -> anyhow::Result<()> {
    let kind = kinds::resolve(&args.kind)?;
    if args.name.is_empty() {
        anyhow::bail!("resource name may not be empty");
    }
    let namespace = namespace_for_kind(kind, args.namespace.as_deref(), false)?;
    let patch = parse_patch(&args.patch)?;
    let client = ctx.client().await?;
    let fail = |message: String| anyhow::anyhow!("failed to patch '{kind}' resource: {message}");
    let stored = client
        .get_any(kind, namespace.as_deref(), &args.name)
        .await
        .map_err(|e| fail(describe(&e)))?;
    let original = serde_json::to_value(&stored)?;
    let mut patched = original.clone();
    match args.patch_type.as_str() {
        "strategic" | "merge" => merge_patch(&mut patched, &patch),
        "json" => json_patch(&mut patched, &patch)
            .map_err(|e| fail(format!("invalid JSON patch: {e}")))?,
        other => {
            anyhow::bail!("unknown patch type {other:?}; expected one of: strategic, merge, json")
        }
    }
    for path in [
        &["apiVersion"][..],
        &["kind"],
        &["metadata", "name"],
        &["metadata", "namespace"],
    ] {
        let before = lookup(&original, path);
        let after = lookup(&patched, path);
        if before != after {
            let show = |v: Option<&Value>| v.map_or("nothing".to_string(), Value::to_string);
            return Err(fail(format!(
                "the patch changes {} from {} to {}; a patch cannot rename, move or retype a \
                 resource",
                path.join("."),
                show(before),
                show(after)
            )));
        }
    }
    let text = serde_json::to_string(&patched)?;
    let mut resources = match parse_documents(&text, "--patch") {
        Ok(r) => r,
        Err(e) => anyhow::bail!(error_report(
            &format!("failed to patch '{kind}' resource; nothing was written"),
            &e.0
        )),
    };
    let Some(mut res) = resources.pop() else {
        return Err(fail("the patched resource is empty".into()));
    };
    // Compare-and-swap on the revision read above, whatever the patch did to the field.
    res.metadata_mut().resource_version = stored.metadata().resource_version.clone();
    client
        .replace_any(res)
        .await
        .map_err(|e| fail(describe(&e)))?;
    writeln!(ctx.out, "Successfully patched 1 '{kind}' resource")?;
    Ok(())
}

/// The patch text as JSON: JSON, or YAML (flow or block style).
fn parse_patch(text: &str) -> anyhow::Result<Value> {
    if text.trim().is_empty() {
        anyhow::bail!(
            "--patch is empty; give a JSON or YAML patch, e.g. '{{\"spec\":{{\"disabled\":true}}}}'"
        );
    }
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(json_error) => serde_yaml_ng::from_str::<Value>(text).map_err(|_| {
            anyhow::anyhow!("invalid patch {text:?}: not JSON ({json_error}) and not YAML either")
        }),
    }
}

fn lookup<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, key| v.get(key))
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (key, value) in patch {
            if value.is_null() {
                t.remove(key);
            } else {
                merge_patch(t.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// RFC 6902 JSON patch: a list of `add`, `remove`, `replace`, `move`, `copy` and `test`
/// operations, applied in order; on any error the target is left unchanged.
pub(crate) fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let ops = patch
        .as_array()
        .ok_or("a JSON patch is a list of operations")?;
    let mut work = target.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_op(&mut work, op).map_err(|e| format!("operation {i}: {e}"))?;
    }
    *target = work;
    Ok(())
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let field = |name: &str| {
        op.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("missing string field {name:?}"))
    };
    let value = || op.get("value").cloned().ok_or("missing field \"value\"");
    let path = pointer(field("path")?)?;
    match field("op")? {
        "add" => add(doc, &path, value()?),
        "remove" => remove(doc, &path).map(|_| ()),
        "replace" => {
            remove(doc, &path)?;
            add(doc, &path, value()?)
        }
        "move" => {
            let from = pointer(field("from")?)?;
            let v = remove(doc, &from)?;
            add(doc, &path, v)
        }
        "copy" => {
            let from = pointer(field("from")?)?;
            let v = get(doc, &from)?.clone();
            add(doc, &path, v)
        }
        "test" => {
            if *get(doc, &path)? == value()? {
                Ok(())
            } else {
                Err(format!("test failed at {}", field("path")?))
            }
        }
        other => Err(format!(
            "unknown op {other:?}; expected add, remove, replace, move, copy or test"
        )),
    }
}

/// Splits an RFC 6901 JSON pointer into unescaped tokens.
fn pointer(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let rest = text
        .strip_prefix('/')
        .ok_or_else(|| format!("path {text:?} must start with /"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    let i: usize = token
        .parse()
        .map_err(|_| format!("{token:?} is not a list index"))?;
    let max = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if i > max || (!allow_end && len == 0) {
        return Err(format!("index {i} is out of range"));
    }
    Ok(i)
}

fn get<'v>(doc: &'v Value, path: &[String]) -> Result<&'v Value, String> {
    path.iter().try_fold(doc, |v, token| match v {
        Value::Object(m) => m.get(token).ok_or_else(|| format!("no field {token:?}")),
        Value::Array(a) => Ok(&a[index(token, a.len(), false)?]),
        _ => Err(format!("cannot look up {token:?} in a scalar")),
    })
}

fn parent<'v>(doc: &'v mut Value, path: &[String]) -> Result<(&'v mut Value, String), String> {
    let (last, init) = path
        .split_last()
        .ok_or("the root cannot be removed or added to")?;
    let mut v = doc;
    for token in init {
        v = match v {
            Value::Object(m) => m
                .get_mut(token)
                .ok_or_else(|| format!("no field {token:?}"))?,
            Value::Array(a) => {
                let i = index(token, a.len(), false)?;
                &mut a[i]
            }
            _ => return Err(format!("cannot look up {token:?} in a scalar")),
        };
    }
    Ok((v, last.clone()))
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (p, last) = parent(doc, path)?;
    match p {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let i = index(&last, a.len(), true)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("cannot add {last:?} to a scalar")),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let (p, last) = parent(doc, path)?;
    match p {
        Value::Object(m) => m.remove(&last).ok_or_else(|| format!("no field {last:?}")),
        Value::Array(a) => {
            let i = index(&last, a.len(), false)?;
            Ok(a.remove(i))
        }
        _ => Err(format!("cannot remove {last:?} from a scalar")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn a_json_patch_follows_rfc_6902() {
        let mut doc = json!({"spec": {"nets": ["a", "b"], "x": 1}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/spec/nets/-", "value": "c"},
                {"op": "remove", "path": "/spec/x"},
                {"op": "replace", "path": "/spec/nets/0", "value": "z"},
                {"op": "test", "path": "/spec/nets/1", "value": "b"},
                {"op": "copy", "from": "/spec/nets/2", "path": "/spec/y"},
            ]),
        )
        .unwrap();
        assert_eq!(doc, json!({"spec": {"nets": ["z", "b", "c"], "y": "c"}}));
    }

    #[test]
    fn a_failing_json_patch_changes_nothing() {
        let mut doc = json!({"a": 1});
        let e = json_patch(
            &mut doc,
            &json!([{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zz"}]),
        )
        .unwrap_err();
        assert_eq!(e, "operation 1: no field \"zz\"");
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn a_patch_may_be_yaml() {
        assert_eq!(
            parse_patch("spec: {disabled: true}").unwrap(),
            json!({"spec": {"disabled": true}})
        );
        assert!(parse_patch("{").is_err());
    }
}
