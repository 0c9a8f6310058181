//! Reading containerlab topology files (`*.clab.yml`): variable expansion, schema checks,
//! `defaults`/`kinds`/`groups` inheritance, validation, naming and management addresses.
//!
//! Everything is checked before anything is created: a bad file gets one error that names the
//! place in the file (`topology.nodes.r1.binds[0]`), the value and the rule it breaks.

mod envsubst;
mod keys;
mod links;
mod mgmt;
mod node;
mod raw;
pub mod shlex;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

pub use envsubst::expand as expand_variables;

use crate::model::{Ignored, Lab};
use crate::role::RoleMap;

/// Why a topology could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("reading topology file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file breaks a rule; `at` is the place in the file.
    #[error("{}: {}: {message}", file.display(), if at.is_empty() { "top level" } else { at })]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Where in the file (`topology.nodes.r1.exec[0]`, or empty for the top level).
        at: String,
        /// What is wrong, with the offending value and the rule.
        message: String,
    },
}

/// A rule broken at a place in the file (before the file name is attached).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    pub at: String,
    pub message: String,
}

impl Invalid {
    pub(crate) fn new(at: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            at: at.into(),
            message: message.into(),
        }
    }
}

/// Settings that come from outside the file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--name`: overrides the file's `name`, as containerlab's global `--name` flag.
    pub name_override: Option<String>,
    /// Image -> role rules.
    pub role_map: RoleMap,
    /// The environment used for `${VAR}` expansion, `~`, `CLAB_LABDIR_BASE` and `__IMPORT_ENVS`.
    pub env: BTreeMap<String, String>,
}

impl LoadOptions {
    /// Options with this process's environment and the built-in role rules.
    pub fn from_process_env() -> LoadOptions {
        LoadOptions {
            env: std::env::vars().collect(),
            ..LoadOptions::default()
        }
    }
}

/// Reads, checks and resolves the topology file at `path`.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Lab, TopologyError> {
    let (file, text) = read(path)?;
    load_str(&text, &file, opts)
}

/// Only the lab name of the file at `path` (after variables and `--name`), for verbs that
/// work from a deployed lab's state even when the file has changed or broken since.
pub fn lab_name(path: &Path, opts: &LoadOptions) -> Result<String, TopologyError> {
    if let Some(name) = &opts.name_override {
        return Ok(name.clone());
    }
    let (file, text) = read(path)?;
    let invalid = |e: Invalid| TopologyError::Invalid {
        file: file.clone(),
        at: e.at,
        message: e.message,
    };
    let doc = parse_yaml(&text, opts).map_err(invalid)?;
    let top = keys::mapping(doc, "").map_err(invalid)?;
    let name = name_of(&top, None).map_err(invalid)?;
    Ok(name)
}

fn read(path: &Path) -> Result<(PathBuf, String), TopologyError> {
    let file = std::path::absolute(path).map_err(|source| TopologyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = std::fs::read_to_string(&file).map_err(|source| TopologyError::Read {
        path: file.clone(),
        source,
    })?;
    Ok((file, text))
}

/// Checks and resolves a topology given as text; `file` (absolute) anchors relative paths.
pub fn load_str(text: &str, file: &Path, opts: &LoadOptions) -> Result<Lab, TopologyError> {
    resolve(text, file, opts).map_err(|e| TopologyError::Invalid {
        file: file.to_path_buf(),
        at: e.at,
        message: e.message,
    })
}

fn parse_yaml(text: &str, opts: &LoadOptions) -> Result<Value, Invalid> {
    let expanded = envsubst::expand(text, &|k| opts.env.get(k).cloned());
    serde_yaml_ng::from_str(&expanded).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("line {} column {}", l.line(), l.column()))
            .unwrap_or_default();
        Invalid::new(at, format!("not valid YAML: {e}"))
    })
}

fn name_of(top: &serde_yaml_ng::Mapping, name_override: Option<&str>) -> Result<String, Invalid> {
    let name = match name_override {
        Some(n) => n.to_string(),
        None => match top.get("name") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(Invalid::new(
                    "name",
                    format!("expected the lab name as a string, got {}", describe(other)),
                ));
            }
            None => {
                return Err(Invalid::new(
                    "",
                    "the lab has no `name` (required; it names every namespace: clab-<name>-<node>)",
                ));
            }
        },
    };
    check_object_name("name", &name, "lab name")?;
    Ok(name)
}

fn resolve(text: &str, file: &Path, opts: &LoadOptions) -> Result<Lab, Invalid> {
    let mut ignored: Vec<Ignored> = Vec::new();
    let doc = parse_yaml(text, opts)?;
    let mut top = keys::mapping(doc, "")?;
    keys::check(&mut top, "", keys::TOP, &mut ignored)?;
    let name = name_of(&top, opts.name_override.as_deref())?;

    let prefix = match top.get("prefix") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(Invalid::new(
                "prefix",
                format!("expected a string, got {}", describe(other)),
            ));
        }
    };
    let node_prefix = match prefix.as_deref() {
        None => format!("clab-{name}-"),
        Some("__lab-name") => format!("{name}-"),
        Some("") => String::new(),
        Some(p) => format!("{p}-{name}-"),
    };
    let lab_prefix = if node_prefix.is_empty() {
        format!("{name}-")
    } else {
        node_prefix.clone()
    };

    let topo_dir = file
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let lab_dir = opts
        .env
        .get("CLAB_LABDIR_BASE")
        .filter(|b| !b.is_empty())
        .map_or_else(|| topo_dir.clone(), PathBuf::from)
        .join(format!("clab-{name}"));

    let mgmt_spec = mgmt::parse(
        top.remove("mgmt").unwrap_or(Value::Null),
        &lab_prefix,
        &mut ignored,
    )?;

    let topology = top
        .remove("topology")
        .ok_or_else(|| Invalid::new("", "the file has no `topology` section"))?;
    let mut topology = keys::mapping(topology, "topology")?;
    keys::check(&mut topology, "topology", keys::TOPOLOGY, &mut ignored)?;

    let ctx = node::Context {
        lab_name: &name,
        node_prefix: &node_prefix,
        lab_dir: &lab_dir,
        topo_dir: &topo_dir,
        topology_file: file,
        env: &opts.env,
        role_map: &opts.role_map,
    };
    let defs = raw::Definitions::parse(&mut topology, &mut ignored)?;
    let mut nodes = Vec::new();
    let mut mgmt_requests = BTreeMap::new();
    for node_name in defs.nodes.keys() {
        let (node, request) = node::resolve(&ctx, &defs, node_name, &mut ignored)?;
        mgmt_requests.insert(node_name.clone(), request);
        nodes.push(node);
    }

    let links = links::parse(
        topology.remove("links").unwrap_or(Value::Null),
        &mut nodes,
        &mgmt_requests,
        &mut ignored,
    )?;
    let mgmt = mgmt::assign(&mgmt_spec, &mut nodes, &mgmt_requests)?;

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    seen.insert(mgmt.namespace.clone(), "the management network".to_string());
    for n in &nodes {
        let at = format!("topology.nodes.{}", n.name);
        check_object_name(&at, &n.namespace, "namespace name")?;
        if let Some(owner) = seen.insert(n.namespace.clone(), format!("node {}", n.name)) {
            return Err(Invalid::new(
                at,
                format!(
                    "the node's namespace {} is already used by {owner}; rename the node",
                    n.namespace
                ),
            ));
        }
        if n.namespace.starts_with(&format!("{lab_prefix}pod-")) {
            return Err(Invalid::new(
                at,
                format!(
                    "the node's namespace {} falls among the lab's pod namespaces ({lab_prefix}pod-*); rename the node",
                    n.namespace
                ),
            ));
        }
    }

    Ok(Lab {
        name,
        node_prefix,
        lab_prefix,
        topology_file: file.to_path_buf(),
        lab_dir,
        mgmt,
        nodes,
        links,
        ignored,
    })
}

/// Checks a name that becomes (part of) a namespace name: Docker's container-name rule.
pub(crate) fn check_object_name(at: &str, name: &str, what: &str) -> Result<(), Invalid> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || name.len() > 200 {
        return Err(Invalid::new(
            at,
            format!(
                "{what} {name:?} is not valid: it must start with a letter or digit, use only letters, digits, `_`, `.` and `-`, and have at most 200 characters"
            ),
        ));
    }
    Ok(())
}

/// `at.key`, or just `key` at the top level.
pub(crate) fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// A short description of a YAML value for messages: `a string "x"`, `a list`, ...
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("a boolean {b}"),
        Value::Number(n) => format!("a number {n}"),
        Value::String(s) => format!("a string {s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a map".into(),
        Value::Tagged(t) => format!("a tagged value {}", t.tag),
    }
}

/// A scalar as containerlab reads it into a string map (strings, numbers, booleans; null is "").
pub(crate) fn scalar_string(v: &Value, at: &str) -> Result<String, Invalid> {
    match v {
        Value::Null => Ok(String::new()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s.clone()),
        other => Err(Invalid::new(
            at,
            format!(
                "expected a string, number or boolean, got {}",
                describe(other)
            ),
        )),
    }
}
