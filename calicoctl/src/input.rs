//! Reading manifests: `-f FILE`, `-f DIR` (its .yaml/.yml/.json files, sorted; `-R` walks
//! subdirectories) or `-f -` (stdin), parsed with `fabric_api::document::parse_documents`,
//! each resource remembering which file and document it came from.

use std::io::Read;
use std::path::Path;

use anyhow::Context as _;
use fabric_api::document::{DocumentError, parse_documents};
use fabric_api::{AnyResource, Kind};
use serde::Deserialize;

/// How stdin is named in messages.
pub(crate) const STDIN_NAME: &str = "<stdin>";

/// The text of one input file (or stdin).
#[derive(Debug)]
pub(crate) struct Source {
    /// The file name as given (`<stdin>` for stdin).
    pub(crate) name: String,
    /// Its text.
    pub(crate) text: String,
}

/// A resource and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    /// The resource (defaults applied, validated).
    pub(crate) resource: AnyResource,
    /// The file name (`<stdin>` for stdin).
    pub(crate) source: String,
    /// The document's position in the file, from 1.
    pub(crate) index: usize,
    /// The resource's path inside its document: `""`, `items[2]` or `[2]`.
    pub(crate) prefix: String,
}

impl Located {
    /// An error about `field` of this resource, in the manifest error format.
    pub(crate) fn error(&self, field: &str, message: impl Into<String>) -> DocumentError {
        let field = match (self.prefix.is_empty(), field.is_empty()) {
            (true, _) => field.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{field}", self.prefix),
        };
        DocumentError {
            source: self.source.clone(),
            index: self.index,
            kind: Some(self.resource.kind().name().to_string()),
            name: Some(self.resource.name().to_string()).filter(|n| !n.is_empty()),
            field,
            message: message.into(),
        }
    }
}

/// Why reading the input failed.
#[derive(Debug)]
pub(crate) enum InputError {
    /// A file, directory or stdin could not be read.
    Read(anyhow::Error),
    /// Documents that do not parse or validate (every one of them).
    Invalid(Vec<DocumentError>),
    /// No resources where some were needed.
    Empty(String),
}

/// Reads the sources `-f filename` names, in order.
pub(crate) fn read_sources(
    filename: &str,
    recursive: bool,
    stdin: &mut dyn Read,
) -> anyhow::Result<Vec<Source>> {
    if filename == "-" {
        let mut bytes = Vec::new();
        stdin
            .read_to_end(&mut bytes)
            .context("failed to read the resources from stdin")?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("stdin is not UTF-8 text; give YAML or JSON"))?;
        return Ok(vec![Source {
            name: STDIN_NAME.into(),
            text,
        }]);
    }
    let path = Path::new(filename);
    let meta = std::fs::metadata(path)
        .with_context(|| format!("failed to read the resources from {filename}"))?;
    if !meta.is_dir() {
        return Ok(vec![read_file(path, filename)?]);
    }
    let mut files = Vec::new();
    walk(path, recursive, &mut files)?;
    files
        .iter()
        .map(|p| read_file(p, &p.display().to_string()))
        .collect()
}

fn read_file(path: &Path, name: &str) -> anyhow::Result<Source> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read the resources from {name}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{name} is not UTF-8 text; give YAML or JSON"))?;
    Ok(Source {
        name: name.to_string(),
        text,
    })
}

/// The manifest files of `dir` in name order (files first-level only unless `recursive`).
fn walk(dir: &Path, recursive: bool, out: &mut Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("failed to read the directory {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("failed to read the directory {}", dir.display()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
        if is_dir {
            if recursive {
                walk(&path, recursive, out)?;
            }
            continue;
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if matches!(ext.as_deref(), Some("yaml" | "yml" | "json")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses every source; all errors of all sources, or every resource located.
/// An empty file is an error unless `skip_empty`; no resources at all is an error unless
/// `skip_empty`.
pub(crate) fn parse_sources(
    sources: &[Source],
    filename: &str,
    skip_empty: bool,
) -> Result<Vec<Located>, InputError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for source in sources {
        match parse_documents(&source.text, &source.name) {
            Err(e) => errors.extend(e.0),
            Ok(resources) if resources.is_empty() && !skip_empty => {
                return Err(InputError::Empty(format!(
                    "no resources specified in file {}",
                    source.name
                )));
            }
            Ok(resources) => {
                let places = locate(&source.text, resources.len());
                for (resource, (index, prefix)) in resources.into_iter().zip(places) {
                    out.push(Located {
                        resource,
                        source: source.name.clone(),
                        index,
                        prefix,
                    });
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(InputError::Invalid(errors));
    }
    if out.is_empty() && !skip_empty && sources.is_empty() {
        return Err(InputError::Empty(format!(
            "no resources specified in directory {filename}"
        )));
    }
    Ok(out)
}

/// Reads and parses `-f filename`.
pub(crate) fn load(
    filename: &str,
    recursive: bool,
    skip_empty: bool,
    stdin: &mut dyn Read,
) -> Result<Vec<Located>, InputError> {
    let sources = read_sources(filename, recursive, stdin).map_err(InputError::Read)?;
    parse_sources(&sources, filename, skip_empty)
}

/// For each resource `parse_documents` returned from `text` (there are `count`), its document
/// number and its path in the document. Mirrors how `parse_documents` splits the text; when
/// the counts disagree (they should not), every resource gets document 1.
fn locate(text: &str, count: usize) -> Vec<(usize, String)> {
    let places = documents(text)
        .into_iter()
        .enumerate()
        .flat_map(|(i, doc)| {
            paths_in(&doc)
                .into_iter()
                .map(move |prefix| (i + 1, prefix))
        })
        .collect::<Vec<_>>();
    if places.len() == count {
        places
    } else {
        tracing::warn!(
            found = places.len(),
            parsed = count,
            "could not locate resources in their documents"
        );
        vec![(1, String::new()); count]
    }
}

/// The documents of the text as JSON values (JSON text first, else YAML).
fn documents(text: &str) -> Vec<serde_json::Value> {
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(values) = serde_json::Deserializer::from_str(text)
            .into_iter::<serde_json::Value>()
            .collect::<Result<Vec<_>, _>>()
    {
        return values;
    }
    let mut docs = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let Ok(mut value) = serde_yaml_ng::Value::deserialize(de) else {
            break;
        };
        if value.apply_merge().is_err() {
            break;
        }
        docs.push(serde_json::to_value(&value).unwrap_or(serde_json::Value::Null));
    }
    docs
}

/// The resource paths one document yields: none, one (`""`), or its list items.
fn paths_in(doc: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    match doc {
        Value::Null => Vec::new(),
        Value::Array(items) => (0..items.len()).map(|i| format!("[{i}]")).collect(),
        Value::Object(obj) => {
            let kind = obj.get("kind").and_then(Value::as_str);
            let api = obj.get("apiVersion").and_then(Value::as_str);
            let is_list = kind.and_then(Kind::from_list_field).is_some()
                || (kind == Some("List") && api == Some("v1"));
            if !is_list {
                return vec![String::new()];
            }
            match obj.get("items") {
                Some(Value::Array(items)) => {
                    (0..items.len()).map(|i| format!("items[{i}]")).collect()
                }
                _ => Vec::new(),
            }
        }
        _ => vec![String::new()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p1}\nspec: {cidr: 10.1.0.0/16}\n";

    #[test]
    fn resources_know_their_document_and_list_position() {
        let text = format!(
            "{POOL}---\n# nothing\n---\napiVersion: projectcalico.org/v3\nkind: IPPoolList\nitems:\n- metadata: {{name: p2}}\n  spec: {{cidr: 10.2.0.0/16}}\n- metadata: {{name: p3}}\n  spec: {{cidr: 10.3.0.0/16}}\n"
        );
        let sources = [Source {
            name: "f.yaml".into(),
            text,
        }];
        let located = parse_sources(&sources, "f.yaml", false).unwrap();
        let places: Vec<_> = located
            .iter()
            .map(|l| (l.resource.name().to_string(), l.index, l.prefix.clone()))
            .collect();
        assert_eq!(
            places,
            [
                ("p1".to_string(), 1, String::new()),
                ("p2".to_string(), 3, "items[0]".to_string()),
                ("p3".to_string(), 3, "items[1]".to_string()),
            ]
        );
        let e = located[2].error("spec.cidr", "bad");
        assert_eq!(
            e.to_string(),
            "f.yaml: document 3 (IPPool/p3): items[1].spec.cidr: bad"
        );
    }

    #[test]
    fn a_json_array_locates_its_items() {
        let text = r#"[{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"a"}},
                       {"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"b"}}]"#;
        assert_eq!(locate(text, 2), [(1, "[0]".into()), (1, "[1]".into())]);
    }

    #[test]
    fn an_empty_file_is_an_error_unless_skipped() {
        let sources = [Source {
            name: "e.yaml".into(),
            text: "# nothing here\n".into(),
        }];
        assert!(matches!(
            parse_sources(&sources, "e.yaml", false),
            Err(InputError::Empty(m)) if m == "no resources specified in file e.yaml"
        ));
        assert!(parse_sources(&sources, "e.yaml", true).unwrap().is_empty());
    }

    #[test]
    fn a_missing_file_names_the_file() {
        let e = read_sources("/nonexistent/pools.yaml", false, &mut std::io::empty()).unwrap_err();
        assert!(
            format!("{e:#}")
                .starts_with("failed to read the resources from /nonexistent/pools.yaml: "),
            "{e:#}"
        );
    }
}
