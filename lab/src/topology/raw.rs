//! Node definitions as written (`defaults`, `kinds.<kind>`, `groups.<group>`, `nodes.<node>`),
//! type-checked but not yet merged.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::{Invalid, describe, join, keys, scalar_string};
use crate::model::Ignored;

/// One node definition level as written, with its place in the file.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeDef {
    /// Where it is: `topology.nodes.r1`, `topology.kinds.linux`, `topology.defaults`.
    pub at: String,
    /// The keys present (after Docker-only keys were dropped).
    pub keys: Vec<String>,
    pub kind: Option<String>,
    pub group: Option<String>,
    pub node_type: Option<String>,
    pub image: Option<String>,
    pub startup_config: Option<String>,
    pub startup_delay: Option<u64>,
    pub enforce_startup_config: Option<bool>,
    pub suppress_startup_config: Option<bool>,
    pub hostname: Option<String>,
    pub entrypoint: Option<String>,
    pub cmd: Option<String>,
    pub mgmt_ipv4: Option<String>,
    pub mgmt_ipv6: Option<String>,
    pub network_mode: Option<String>,
    pub exec: Option<Vec<String>>,
    pub binds: Option<Vec<String>>,
    pub env_files: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub tmpfs: Option<BTreeMap<String, String>>,
}

impl NodeDef {
    /// Checks the keys of `value` (found at `at`) and reads their values.
    pub fn parse(value: Value, at: &str, ignored: &mut Vec<Ignored>) -> Result<NodeDef, Invalid> {
        let mut map = keys::mapping(value, at)?;
        keys::check(&mut map, at, keys::NODE, ignored)?;
        let mut d = NodeDef {
            at: at.to_string(),
            keys: map
                .keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect(),
            ..NodeDef::default()
        };
        let f = Fields { map: &map, at };
        d.kind = f.string("kind")?;
        d.group = f.string("group")?;
        d.node_type = f.string("type")?;
        d.image = f.string("image")?;
        d.startup_config = f.string("startup-config")?;
        d.startup_delay = f.unsigned("startup-delay")?;
        d.enforce_startup_config = f.boolean("enforce-startup-config")?;
        d.suppress_startup_config = f.boolean("suppress-startup-config")?;
        d.hostname = f.string("hostname")?;
        d.entrypoint = f.string("entrypoint")?;
        d.cmd = f.string("cmd")?;
        d.mgmt_ipv4 = f.string("mgmt-ipv4")?;
        d.mgmt_ipv6 = f.string("mgmt-ipv6")?;
        d.network_mode = f.string("network-mode")?;
        d.exec = f.strings("exec")?;
        d.binds = f.strings("binds")?;
        d.env_files = f.strings("env-files")?;
        d.env = f.string_map("env")?;
        d.labels = f.string_map("labels")?;
        d.sysctls = f.string_map("sysctls")?;
        d.tmpfs = f.string_map("tmpfs")?;
        Ok(d)
    }
}

struct Fields<'a> {
    map: &'a Mapping,
    at: &'a str,
}

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, Invalid> {
        self.get(key)
            .map(|v| scalar_string(v, &join(self.at, key)))
            .transpose()
    }

    fn unsigned(&self, key: &str) -> Result<Option<u64>, Invalid> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(other) => Err(Invalid::new(
                join(self.at, key),
                format!(
                    "expected a whole number of seconds, got {}",
                    describe(other)
                ),
            )),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, Invalid> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(Invalid::new(
                join(self.at, key),
                format!("expected true or false, got {}", describe(other)),
            )),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, Invalid> {
        let at = join(self.at, key);
        match self.get(key) {
            None => Ok(None),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(Invalid::new(
                        format!("{at}[{i}]"),
                        format!("expected a string, got {}", describe(other)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(Invalid::new(
                at,
                format!("expected a list of strings, got {}", describe(other)),
            )),
        }
    }

    fn string_map(&self, key: &str) -> Result<Option<BTreeMap<String, String>>, Invalid> {
        let at = join(self.at, key);
        match self.get(key) {
            None => Ok(None),
            Some(Value::Mapping(m)) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let k = match k {
                        Value::String(s) => s.clone(),
                        other => {
                            return Err(Invalid::new(
                                at,
                                format!("key {} is not a string", describe(other)),
                            ));
                        }
                    };
                    let v = scalar_string(v, &join(&at, &k))?;
                    out.insert(k, v);
                }
                Ok(Some(out))
            }
            Some(other) => Err(Invalid::new(
                at,
                format!("expected a map of names to values, got {}", describe(other)),
            )),
        }
    }
}

/// All node definition levels of a topology.
#[derive(Debug, Clone, Default)]
pub(crate) struct Definitions {
    pub defaults: NodeDef,
    pub kinds: BTreeMap<String, NodeDef>,
    pub groups: BTreeMap<String, NodeDef>,
    pub nodes: BTreeMap<String, NodeDef>,
}

impl Definitions {
    /// Takes `defaults`, `kinds`, `groups` and `nodes` out of the `topology` map.
    pub fn parse(
        topology: &mut Mapping,
        ignored: &mut Vec<Ignored>,
    ) -> Result<Definitions, Invalid> {
        let defaults = NodeDef::parse(
            topology.remove("defaults").unwrap_or(Value::Null),
            "topology.defaults",
            ignored,
        )?;
        let kinds = named_defs(topology.remove("kinds"), "topology.kinds", ignored)?;
        let groups = named_defs(topology.remove("groups"), "topology.groups", ignored)?;
        let nodes = named_defs(topology.remove("nodes"), "topology.nodes", ignored)?;
        if nodes.is_empty() {
            return Err(Invalid::new(
                "topology.nodes",
                "the topology defines no nodes",
            ));
        }
        Ok(Definitions {
            defaults,
            kinds,
            groups,
            nodes,
        })
    }
}

fn named_defs(
    value: Option<Value>,
    at: &str,
    ignored: &mut Vec<Ignored>,
) -> Result<BTreeMap<String, NodeDef>, Invalid> {
    let map = keys::mapping(value.unwrap_or(Value::Null), at)?;
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let name = match k {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            other => {
                return Err(Invalid::new(
                    at,
                    format!("name {} is not a string", describe(&other)),
                ));
            }
        };
        let def = NodeDef::parse(v, &format!("{at}.{name}"), ignored)?;
        out.insert(name, def);
    }
    Ok(out)
}
