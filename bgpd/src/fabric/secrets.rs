//! BGP passwords: Calico names a Kubernetes secret key (`secretKeyRef{name, key}`). There is no
//! Kubernetes API here, so a secret is a directory of files: the password of `{name, key}` is
//! the file `<dir>/<name>/<key>` (the layout of a mounted Kubernetes secret), with `<dir>` from
//! `CALICO_SECRETS_DIR`, default `/etc/calico/secrets`. One trailing newline is stripped.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use fabric_api::bgp::SecretKeySelector;

/// The variable naming the secrets directory.
pub const SECRETS_DIR_ENV: &str = "CALICO_SECRETS_DIR";
/// The secrets directory when the variable is unset.
pub const DEFAULT_SECRETS_DIR: &str = "/etc/calico/secrets";

/// A secret key: `{name, key}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretRef {
    /// The secret's name.
    pub name: String,
    /// The key inside it.
    pub key: String,
}

impl From<&SecretKeySelector> for SecretRef {
    fn from(s: &SecretKeySelector) -> SecretRef {
        SecretRef {
            name: s.name.clone(),
            key: s.key.clone(),
        }
    }
}

impl SecretRef {
    /// The file holding this secret under `dir`; `None` when a part would leave the directory.
    pub fn path_in(&self, dir: &Path) -> Option<PathBuf> {
        let safe = |p: &str| {
            !p.is_empty()
                && Path::new(p)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
                && !p.contains('/')
        };
        (safe(&self.name) && safe(&self.key)).then(|| dir.join(&self.name).join(&self.key))
    }
}

/// The secret values known to one computation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: BTreeMap<SecretRef, String>,
}

impl Secrets {
    /// Records a value.
    pub fn insert(&mut self, r: SecretRef, value: impl Into<String>) {
        self.values.insert(r, value.into());
    }

    /// The value of a secret key, if known.
    pub fn get(&self, r: &SecretRef) -> Option<&str> {
        self.values.get(r).map(String::as_str)
    }

    /// Reads `refs` from `dir` (missing or unreadable files are left out and logged).
    pub fn read(dir: &Path, refs: &[SecretRef]) -> Secrets {
        let mut secrets = Secrets::default();
        for r in refs {
            let Some(path) = r.path_in(dir) else {
                tracing::warn!(secret = %r.name, key = %r.key,
                    "secret name or key is not a plain file name; not read");
                continue;
            };
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    secrets.insert(r.clone(), text);
                }
                Err(e) => tracing::debug!(path = %path.display(), error = %e,
                    "secret file not readable"),
            }
        }
        secrets
    }

    /// The directory from `CALICO_SECRETS_DIR`, or the default.
    pub fn dir_from_env() -> PathBuf {
        std::env::var_os(SECRETS_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SECRETS_DIR), PathBuf::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_the_file_named_by_secret_and_key_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bgp")).unwrap();
        std::fs::write(dir.path().join("bgp/mesh"), "s3cret\n").unwrap();
        let r = SecretRef {
            name: "bgp".into(),
            key: "mesh".into(),
        };
        let missing = SecretRef {
            name: "bgp".into(),
            key: "other".into(),
        };
        let s = Secrets::read(dir.path(), &[r.clone(), missing.clone()]);
        assert_eq!(s.get(&r), Some("s3cret"));
        assert_eq!(s.get(&missing), None);
    }

    #[test]
    fn a_secret_reference_cannot_leave_the_directory() {
        let r = SecretRef {
            name: "..".into(),
            key: "passwd".into(),
        };
        assert_eq!(r.path_in(Path::new("/etc/calico/secrets")), None);
    }
}
