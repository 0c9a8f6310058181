//! Resolving one node: `node -> group -> kind -> defaults` inheritance as containerlab merges
//! it, magic variables, binds, environment, labels and the role.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::raw::{Definitions, NodeDef};
use super::{Invalid, check_object_name, join, keys, shlex};
use crate::model::{Bind, Ignored, Node, NodeCommand, NodeKind, StartupConfig};
use crate::role::{ROLE_LABEL, Role, RoleMap, role_names};

/// Lab-wide facts a node needs.
pub(crate) struct Context<'a> {
    pub lab_name: &'a str,
    pub node_prefix: &'a str,
    pub lab_dir: &'a Path,
    pub topo_dir: &'a Path,
    pub topology_file: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub role_map: &'a RoleMap,
}

/// What a node asked of the management network.
#[derive(Debug, Clone, Default)]
pub(crate) struct MgmtRequest {
    /// False with `network-mode: none` and for bridges.
    pub enabled: bool,
    /// `mgmt-ipv4` and where it was written.
    pub ipv4: Option<(String, String)>,
    /// `mgmt-ipv6` and where it was written.
    pub ipv6: Option<(String, String)>,
}

/// The definition levels of one node, most specific first.
struct Levels<'a>(Vec<&'a NodeDef>);

impl<'a> Levels<'a> {
    /// The first level that sets a value, with the value's place in the file.
    fn first<T: Clone + 'a>(
        &self,
        key: &str,
        get: impl Fn(&'a NodeDef) -> Option<&'a T>,
    ) -> Option<(T, String)> {
        self.0
            .iter()
            .find_map(|d| get(d).map(|v| (v.clone(), join(&d.at, key))))
    }

    /// Every level's list concatenated, least specific first, each item with its place.
    fn concat(
        &self,
        key: &str,
        get: impl Fn(&'a NodeDef) -> Option<&'a Vec<String>>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for d in self.0.iter().rev() {
            if let Some(items) = get(d) {
                for (i, item) in items.iter().enumerate() {
                    out.push((item.clone(), format!("{}[{i}]", join(&d.at, key))));
                }
            }
        }
        out
    }

    /// Every level's map merged, the more specific level winning.
    fn merge(
        &self,
        get: impl Fn(&'a NodeDef) -> Option<&'a BTreeMap<String, String>>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for d in self.0.iter().rev() {
            if let Some(m) = get(d) {
                out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        out
    }
}

/// Resolves node `name` into a [`Node`] (interfaces, management addresses and `CLAB_INTFS`
/// are filled in later, from the links and the management network).
pub(crate) fn resolve(
    ctx: &Context<'_>,
    defs: &Definitions,
    name: &str,
    ignored: &mut Vec<Ignored>,
) -> Result<(Node, MgmtRequest), Invalid> {
    let def = &defs.nodes[name];
    let at = def.at.clone();
    check_object_name(&at, name, "node name")?;
    let group_name = def.group.clone().or_else(|| defs.defaults.group.clone());
    let group = group_name.as_ref().and_then(|g| defs.groups.get(g));
    let kind_name = def
        .kind
        .clone()
        .or_else(|| group.and_then(|g| g.kind.clone()))
        .or_else(|| defs.defaults.kind.clone())
        .ok_or_else(|| {
            Invalid::new(
                &at,
                "the node has no kind: set `kind` on the node, its group or in topology.defaults",
            )
        })?;
    let kind = match kind_name.as_str() {
        "linux" => NodeKind::Linux,
        "bridge" => NodeKind::Bridge,
        other => {
            return Err(Invalid::new(
                join(&at, "kind"),
                format!(
                    "kind `{other}` is not supported: calico-lab deploys `linux` nodes (the image selects FRR, BIRD, GoBGP or calico-node) and `bridge` nodes"
                ),
            ));
        }
    };
    let mut levels = vec![def];
    levels.extend(group);
    levels.extend(defs.kinds.get(&kind_name));
    levels.push(&defs.defaults);
    let levels = Levels(levels);
    let namespace = format!("{}{name}", ctx.node_prefix);

    let mut labels = levels.merge(|d| d.labels.as_ref());
    let node_type = levels.first("type", |d| d.node_type.as_ref()).map(|v| v.0);
    let node_lab_dir = ctx.lab_dir.join(name);
    for (k, v) in [
        ("containerlab", ctx.lab_name.to_string()),
        ("clab-node-name", name.to_string()),
        ("clab-node-longname", namespace.clone()),
        ("clab-node-kind", kind_name.clone()),
        ("clab-node-type", node_type.clone().unwrap_or_default()),
        ("clab-node-group", group_name.clone().unwrap_or_default()),
        ("clab-node-lab-dir", node_lab_dir.display().to_string()),
        ("clab-topo-file", ctx.topology_file.display().to_string()),
        ("clab-owner", owner(ctx.env)),
    ] {
        labels.insert(k.to_string(), v);
    }

    if kind == NodeKind::Bridge {
        return resolve_bridge(def, name, namespace, node_type, group_name, labels);
    }

    let image = levels.first("image", |d| d.image.as_ref()).map(|v| v.0);
    let role = match labels.get(ROLE_LABEL) {
        Some(r) => Role::parse(r).ok_or_else(|| {
            Invalid::new(
                join(&at, "labels"),
                format!(
                    "label {ROLE_LABEL}: unknown role {r:?}; roles are {}",
                    role_names()
                ),
            )
        })?,
        None => ctx.role_map.role_for(image.as_deref()),
    };
    let magic = |s: &str| {
        s.replace("__clabNodeName__", name)
            .replace("__clabNodeDir__", &node_lab_dir.display().to_string())
            .replace("__clabDir__", &ctx.lab_dir.display().to_string())
            .replace("__clabLabName__", &format!("clab-{}", ctx.lab_name))
    };

    let env = resolve_env(ctx, &levels, &labels)?;

    let mut exec = Vec::new();
    let mut seen = BTreeSet::new();
    for (text, at) in levels.concat("exec", |d| d.exec.as_ref()) {
        if !seen.insert(text.clone()) {
            continue;
        }
        let text = magic(&text);
        let argv = words(&text, &at)?;
        if argv.is_empty() {
            return Err(Invalid::new(at, "the command is empty"));
        }
        exec.push(NodeCommand { text, argv });
    }

    let mut by_target: BTreeMap<PathBuf, Bind> = BTreeMap::new();
    for (text, at) in levels.concat("binds", |d| d.binds.as_ref()) {
        let bind = parse_bind(ctx, &magic(&text), &at)?;
        by_target.insert(bind.target.clone(), bind);
    }
    let mut binds: Vec<Bind> = by_target.into_values().collect();
    binds.sort_by(|a, b| {
        (a.target.components().count(), &a.target).cmp(&(b.target.components().count(), &b.target))
    });

    let suppress = levels
        .first("suppress-startup-config", |d| {
            d.suppress_startup_config.as_ref()
        })
        .is_some_and(|v| v.0);
    let mut startup_config = None;
    if let Some((text, sc_at)) = levels.first("startup-config", |d| d.startup_config.as_ref()) {
        let text = magic(&text);
        let config = parse_startup_config(ctx, &text, &sc_at)?;
        let name_hint = match &config {
            StartupConfig::File(p) => p.display().to_string(),
            StartupConfig::Embedded(_) => String::new(),
        };
        match role.startup_config_target(&name_hint) {
            _ if suppress => ignored.push(Ignored {
                at: sc_at,
                reason: "suppress-startup-config is set".into(),
            }),
            Some(target) => {
                if binds.iter().any(|b| b.target == Path::new(&target)) {
                    return Err(Invalid::new(
                        sc_at,
                        format!(
                            "both startup-config and a bind provide {target}; keep one of them"
                        ),
                    ));
                }
                startup_config = Some(config);
            }
            None => ignored.push(Ignored {
                at: sc_at,
                reason: format!(
                    "nothing in a `{role}` node reads a startup-config (as with containerlab's linux kind); use binds"
                ),
            }),
        }
    }

    let entrypoint = levels
        .first("entrypoint", |d| d.entrypoint.as_ref())
        .map(|(t, at)| words(&t, &at))
        .transpose()?;
    let cmd = levels
        .first("cmd", |d| d.cmd.as_ref())
        .map(|(t, at)| words(&t, &at))
        .transpose()?;

    let hostname = match levels.first("hostname", |d| d.hostname.as_ref()) {
        Some((h, at)) => {
            check_hostname(&h, &at)?;
            h
        }
        None => {
            check_hostname(name, &at)?;
            name.to_string()
        }
    };

    let mut sysctls = BTreeMap::new();
    for d in levels.0.iter().rev() {
        for (k, v) in d.sysctls.iter().flatten() {
            if !k.starts_with("net.") {
                return Err(Invalid::new(
                    join(&join(&d.at, "sysctls"), k),
                    format!(
                        "only network-namespace sysctls (net.*) can be set per node; {k} would change the host"
                    ),
                ));
            }
            sysctls.insert(k.clone(), v.clone());
        }
    }

    let mut tmpfs = Vec::new();
    for d in levels.0.iter().rev() {
        for (target, options) in d.tmpfs.iter().flatten() {
            let t_at = join(&join(&d.at, "tmpfs"), target);
            let target = check_target(target, &t_at)?;
            tmpfs.retain(|(t, _): &(PathBuf, String)| *t != target);
            tmpfs.push((target, options.clone()));
        }
    }

    let network_mode = levels.first("network-mode", |d| d.network_mode.as_ref());
    let mgmt_enabled = match network_mode {
        None => true,
        Some((m, _)) if m.is_empty() => true,
        Some((m, _)) if m == "none" => false,
        Some((m, at)) if m == "host" => {
            return Err(Invalid::new(
                at,
                format!(
                    "network-mode {m:?} would put the node into the host's network namespace, which calico-lab never touches"
                ),
            ));
        }
        Some((m, at)) => {
            return Err(Invalid::new(
                at,
                format!(
                    "network-mode {m:?} is not supported (calico-lab supports the default management network and `none`)"
                ),
            ));
        }
    };

    let request = MgmtRequest {
        enabled: mgmt_enabled,
        ipv4: levels.first("mgmt-ipv4", |d| d.mgmt_ipv4.as_ref()),
        ipv6: levels.first("mgmt-ipv6", |d| d.mgmt_ipv6.as_ref()),
    };
    let startup_delay_secs = levels
        .first("startup-delay", |d| d.startup_delay.as_ref())
        .map_or(0, |v| v.0);
    let group = group_name;

    Ok((
        Node {
            name: name.to_string(),
            namespace,
            kind,
            image,
            node_type,
            group,
            role,
            hostname,
            env,
            labels,
            exec,
            entrypoint,
            cmd,
            binds,
            tmpfs,
            startup_config,
            sysctls,
            mgmt: None,
            startup_delay_secs,
            interfaces: Vec::new(),
        },
        request,
    ))
}

fn resolve_bridge(
    def: &NodeDef,
    name: &str,
    namespace: String,
    node_type: Option<String>,
    group: Option<String>,
    labels: BTreeMap<String, String>,
) -> Result<(Node, MgmtRequest), Invalid> {
    if let Some(key) = def
        .keys
        .iter()
        .find(|k| !keys::BRIDGE_NODE.contains(&k.as_str()))
    {
        return Err(Invalid::new(
            join(&def.at, key),
            format!("a bridge node runs nothing, so `{key}` has no effect; remove it"),
        ));
    }
    super::links::check_interface_name(name, &def.at).map_err(|e| {
        Invalid::new(
            e.at,
            format!(
                "a bridge node's name is its bridge device's name: {}",
                e.message
            ),
        )
    })?;
    Ok((
        Node {
            name: name.to_string(),
            namespace,
            kind: NodeKind::Bridge,
            image: None,
            node_type,
            group,
            role: Role::Bridge,
            hostname: name.to_string(),
            env: BTreeMap::new(),
            labels,
            exec: Vec::new(),
            entrypoint: None,
            cmd: None,
            binds: Vec::new(),
            tmpfs: Vec::new(),
            startup_config: None,
            sysctls: BTreeMap::new(),
            mgmt: None,
            startup_delay_secs: 0,
            interfaces: Vec::new(),
        },
        MgmtRequest::default(),
    ))
}

/// containerlab's order: env files, then `env` (merged over levels, `__IMPORT_ENVS` pulling in
/// the caller's environment at its level), then `CLAB_LABEL_*` from the labels.
fn resolve_env(
    ctx: &Context<'_>,
    levels: &Levels<'_>,
    labels: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Invalid> {
    let mut env = BTreeMap::new();
    let mut seen_files = BTreeSet::new();
    for (file, at) in levels.concat("env-files", |d| d.env_files.as_ref()) {
        if !seen_files.insert(file.clone()) {
            continue;
        }
        let path = resolve_host_path(ctx, &file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Invalid::new(
                &at,
                format!("env-file {file} (resolved to {}): {e}", path.display()),
            )
        })?;
        env.extend(parse_env_file(&text));
    }
    for d in levels.0.iter().rev() {
        let Some(level) = &d.env else { continue };
        if level
            .get("__IMPORT_ENVS")
            .is_some_and(|v| v == "true" || v == "1")
        {
            env.extend(ctx.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        env.extend(
            level
                .iter()
                .filter(|(k, _)| *k != "__IMPORT_ENVS")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    for (k, v) in labels {
        env.insert(format!("CLAB_LABEL_{}", env_key(k)), v.clone());
    }
    Ok(env)
}

/// containerlab's label-to-variable rule: `-+./` become `_`, other odd characters go, uppercase.
fn env_key(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '-' | '+' | '.' | '/' => Some('_'),
            c if c.is_ascii_alphanumeric() || c == '_' => Some(c.to_ascii_uppercase()),
            _ => None,
        })
        .collect()
}

/// `KEY=VALUE` lines; blank lines and `#` comments skipped, `export ` and quotes removed.
fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

fn owner(env: &BTreeMap<String, String>) -> String {
    env.get("SUDO_USER")
        .or_else(|| env.get("USER"))
        .cloned()
        .unwrap_or_default()
}

fn words(text: &str, at: &str) -> Result<Vec<String>, Invalid> {
    shlex::split(text).map_err(|e| Invalid::new(at, format!("{e} in {text:?}")))
}

/// `~` -> `$HOME`, relative -> next to the topology file.
fn resolve_host_path(ctx: &Context<'_>, p: &str) -> PathBuf {
    if p == "~" || p.starts_with("~/") {
        let home = ctx.env.get("HOME").map_or("/root", String::as_str);
        return PathBuf::from(home).join(p.trim_start_matches('~').trim_start_matches('/'));
    }
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        ctx.topo_dir.join(path)
    }
}

fn parse_bind(ctx: &Context<'_>, text: &str, at: &str) -> Result<Bind, Invalid> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        [_] => {
            return Err(Invalid::new(
                at,
                format!(
                    "{text:?} has no target: binds are SOURCE:TARGET[:ro] (containerlab wants anonymous volumes under `volumes`, which calico-lab does not support)"
                ),
            ));
        }
        _ => {
            return Err(Invalid::new(
                at,
                format!("{text:?} has too many `:`; binds are SOURCE:TARGET[:ro]"),
            ));
        }
    };
    if source.is_empty() {
        return Err(Invalid::new(at, format!("{text:?} has an empty source")));
    }
    let source = resolve_host_path(ctx, source);
    if !source.exists() {
        return Err(Invalid::new(
            at,
            format!(
                "bind source {} does not exist (containerlab requires bind sources to exist)",
                source.display()
            ),
        ));
    }
    let target = check_target(target, at)?;
    let mut read_only = false;
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" | "z" | "Z" => {}
            other => {
                return Err(Invalid::new(
                    at,
                    format!("bind option `{other}` is not supported (supported: ro, rw, z, Z)"),
                ));
            }
        }
    }
    Ok(Bind {
        source,
        target,
        read_only,
    })
}

/// A mount target inside a node: absolute, not `/`, no `..`.
fn check_target(target: &str, at: &str) -> Result<PathBuf, Invalid> {
    let path = Path::new(target);
    let bad = !path.is_absolute()
        || path.components().count() < 2
        || path.components().any(|c| matches!(c, Component::ParentDir));
    if bad {
        return Err(Invalid::new(
            at,
            format!("target {target:?} must be an absolute path below / without `..` components"),
        ));
    }
    Ok(path.components().collect())
}

fn parse_startup_config(ctx: &Context<'_>, text: &str, at: &str) -> Result<StartupConfig, Invalid> {
    if text.contains('\n') {
        return Ok(StartupConfig::Embedded(text.to_string()));
    }
    if ["http://", "https://", "s3://", "ftp://", "sftp://"]
        .iter()
        .any(|p| text.starts_with(p))
    {
        return Err(Invalid::new(
            at,
            format!(
                "startup-config {text:?} is a URL; calico-lab does not download files, give a path or an inline config"
            ),
        ));
    }
    let path = resolve_host_path(ctx, text);
    if !path.is_file() {
        return Err(Invalid::new(
            at,
            format!("startup-config file {} does not exist", path.display()),
        ));
    }
    Ok(StartupConfig::File(path))
}

fn check_hostname(h: &str, at: &str) -> Result<(), Invalid> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            at,
            format!(
                "host name {h:?} is not valid: 1 to 64 letters, digits, `-`, `_` or `.` (set `hostname` to override)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_become_environment_names_as_containerlab_does() {
        assert_eq!(env_key("clab-node-name"), "CLAB_NODE_NAME");
        assert_eq!(env_key("a.b/c+d é"), "A_B_C_D");
    }

    #[test]
    fn env_files_skip_comments_and_strip_quotes() {
        let v = parse_env_file("# c\nexport A=1\nB=\"two words\"\n\nC='x'\n");
        assert_eq!(
            v,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x".into())
            ]
        );
    }
}
