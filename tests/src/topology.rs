//! Private copies of the product topologies (`topologies/<name>/`) that a test may change
//! before deploying: a node's environment, an extra node, a resource file.
//!
//! The whole directory is copied, so the relative binds of the file keep working; the copy is
//! deleted with the value.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

/// The product topologies' directory (`<workspace>/topologies`).
pub fn topologies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lies in the workspace")
        .join("topologies")
}

/// The product topology files (`topologies/<name>/<name>.clab.yml`), sorted by name.
pub fn product_topologies() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(topologies_dir())
        .expect("reading topologies/")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let file = e.path().join(format!("{name}.clab.yml"));
            (name, file)
        })
        .collect();
    out.sort();
    out
}

/// A copy of one product topology in a temporary directory.
pub struct TopologyCopy {
    _root: tempfile::TempDir,
    dir: PathBuf,
    file: PathBuf,
    doc: Value,
}

impl TopologyCopy {
    /// Copies `topologies/<name>/`.
    pub fn of(name: &str) -> TopologyCopy {
        let source = topologies_dir().join(name);
        assert!(source.is_dir(), "no topology {}", source.display());
        let root = tempfile::Builder::new()
            .prefix("fabric-e2e-")
            .tempdir()
            .expect("creating a temporary directory");
        let dir = root.path().join(name);
        copy_dir(&source, &dir);
        let file = dir.join(format!("{name}.clab.yml"));
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let doc: Value = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", file.display()));
        TopologyCopy {
            _root: root,
            dir,
            file,
            doc,
        }
    }

    /// The copied topology file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The copied topology directory (the file's binds are relative to it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets `topology.kinds.<kind>.env.<key>` (every node of that kind gets it).
    pub fn set_kind_env(&mut self, kind: &str, key: &str, value: &str) {
        let env = self.mapping_at(&["topology", "kinds", kind, "env"]);
        env.insert(key.into(), value.into());
        self.save();
    }

    /// Adds node `name` with the YAML body `body` (a mapping, e.g.
    /// `"kind: linux\nenv: {NODENAME: n4}"`).
    pub fn add_node(&mut self, name: &str, body: &str) {
        let body: Value = serde_yaml_ng::from_str(body)
            .unwrap_or_else(|e| panic!("node {name}: bad YAML body: {e}"));
        let nodes = self.mapping_at(&["topology", "nodes"]);
        assert!(
            nodes.insert(name.into(), body).is_none(),
            "node {name} exists already"
        );
        self.save();
    }

    /// Adds the link `a` — `b` (endpoints `node:interface`).
    pub fn add_link(&mut self, a: &str, b: &str) {
        let topology = self.mapping_at(&["topology"]);
        let links = topology
            .entry("links".into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        let Value::Sequence(links) = links else {
            panic!("topology.links is not a list");
        };
        let mut link = Mapping::new();
        link.insert(
            "endpoints".into(),
            Value::Sequence(vec![a.into(), b.into()]),
        );
        links.push(Value::Mapping(link));
        self.save();
    }

    /// Writes `contents` to `rel` inside the copied directory (for files the topology binds).
    pub fn write_file(&self, rel: &str, contents: &str) {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating a directory in the copy");
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// The mapping at `path`, created (as empty mappings) where missing.
    fn mapping_at(&mut self, path: &[&str]) -> &mut Mapping {
        let mut at = &mut self.doc;
        for key in path {
            let Value::Mapping(m) = at else {
                panic!("{} is not a mapping", path.join("."));
            };
            at = m
                .entry((*key).into())
                .or_insert_with(|| Value::Mapping(Mapping::new()));
        }
        match at {
            Value::Mapping(m) => m,
            other => panic!("{} is not a mapping: {other:?}", path.join(".")),
        }
    }

    fn save(&self) {
        let text = serde_yaml_ng::to_string(&self.doc).expect("serializing the topology");
        std::fs::write(&self.file, text)
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.file.display()));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("creating {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copying {}: {e}", entry.path().display()));
        }
    }
}
