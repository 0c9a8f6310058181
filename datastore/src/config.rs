//! Datastore configuration the way calicoctl reads it: a `CalicoAPIConfig` file or environment
//! variables, and `connect()` to the backend it names.
//!
//! Precedence (as calicoctl's `LoadClientConfig`): an explicitly named file must exist and is
//! used alone; otherwise `/etc/calico/calicoctl.cfg` is used alone when it exists; otherwise
//! the environment. A file and the environment are never merged. Each environment variable
//! may also be given with a `CALICO_` prefix, which wins (as calico's envconfig does).
//!
//! Variables: `DATASTORE_TYPE` (`sqlite` | `etcdv3`), `SQLITE_PATH` (default
//! `/var/lib/calico/calico.db`), `ETCD_ENDPOINTS` (comma list), `ETCD_USERNAME`,
//! `ETCD_PASSWORD`. When no type is given the type is `sqlite`, unless etcd endpoints are
//! given: then it is `etcdv3`, Calico's default. Empty variables count as unset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::backend::{Backend, BackendError};
use crate::etcd::{EtcdBackend, EtcdOptions};
use crate::sqlite::SqliteBackend;

/// Where the sqlite file lives unless configured.
pub const DEFAULT_SQLITE_PATH: &str = "/var/lib/calico/calico.db";
/// The config file calicoctl reads when none is named.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/calico/calicoctl.cfg";
/// The `apiVersion` a config file must have.
pub const CONFIG_API_VERSION: &str = "projectcalico.org/v3";
/// The `kind` a config file must have.
pub const CONFIG_KIND: &str = "CalicoAPIConfig";

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatastoreKind {
    /// One sqlite file per host (the default).
    Sqlite,
    /// An etcd v3 cluster.
    Etcdv3,
}

impl DatastoreKind {
    /// The name used in `DATASTORE_TYPE` and `datastoreType`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatastoreKind::Sqlite => "sqlite",
            DatastoreKind::Etcdv3 => "etcdv3",
        }
    }
}

/// Where a configuration came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Environment variables (or defaults).
    Environment,
    /// A `CalicoAPIConfig` file.
    File(PathBuf),
}

/// How to reach the datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatastoreConfig {
    /// The backend.
    pub kind: DatastoreKind,
    /// The sqlite file (used when `kind` is `Sqlite`).
    pub sqlite_path: PathBuf,
    /// etcd client URLs, `http://host:port` (used when `kind` is `Etcdv3`).
    pub etcd_endpoints: Vec<String>,
    /// etcd user name and password, when etcd has authentication on.
    pub etcd_user: Option<(String, String)>,
    /// Where this configuration came from.
    pub source: ConfigSource,
}

impl Default for DatastoreConfig {
    fn default() -> Self {
        DatastoreConfig {
            kind: DatastoreKind::Sqlite,
            sqlite_path: PathBuf::from(DEFAULT_SQLITE_PATH),
            etcd_endpoints: Vec::new(),
            etcd_user: None,
            source: ConfigSource::Environment,
        }
    }
}

/// A configuration that cannot be used; names the setting, the value and the rule.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The datastore type is not one we know.
    #[error("{setting} = {value:?} is not a datastore type; expected one of: sqlite, etcdv3")]
    UnknownDatastoreType {
        /// The variable or file field.
        setting: String,
        /// The value given.
        value: String,
    },
    /// A setting this build recognises but cannot honour.
    #[error("{setting} = {value:?} is not supported: {reason}")]
    Unsupported {
        /// The variable or file field.
        setting: String,
        /// The value given.
        value: String,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// etcdv3 without endpoints.
    #[error(
        "datastore type etcdv3 needs etcd endpoints: set {setting} (comma-separated URLs, e.g. http://127.0.0.1:2379)"
    )]
    MissingEndpoints {
        /// The variable or file field to set.
        setting: String,
    },
    /// An endpoint that is not `http://host[:port]`.
    #[error("{setting}: endpoint {value:?} is invalid: {rule}")]
    InvalidEndpoint {
        /// The variable or file field.
        setting: String,
        /// The endpoint.
        value: String,
        /// The rule it broke.
        rule: &'static str,
    },
    /// An empty sqlite path.
    #[error("{setting} is empty; give the path of the sqlite file")]
    EmptySqlitePath {
        /// The variable or file field.
        setting: String,
    },
    /// The config file cannot be read.
    #[error("reading config file {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid YAML/JSON of the expected shape (unknown field, wrong type).
    #[error("config file {path}: invalid at {field}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The field path where parsing failed (`.` for the document itself).
        field: String,
        /// The parser's complaint.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// `apiVersion` or `kind` is not what a calicoctl config file has.
    #[error("config file {path}: {field} must be {expected:?}, found {found:?}")]
    WrongHeader {
        /// The file.
        path: PathBuf,
        /// `apiVersion` or `kind`.
        field: &'static str,
        /// The required value.
        expected: &'static str,
        /// The value in the file.
        found: String,
    },
}

/// Endpoints in a file: Calico writes a comma-separated string; a YAML list is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum EndpointsField {
    Text(String),
    List(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigFile {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    spec: SpecFile,
}

/// The `spec` of a calicoctl config file: every field calicoctl knows, plus `sqlitePath`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SpecFile {
    datastore_type: Option<String>,
    sqlite_path: Option<PathBuf>,
    etcd_endpoints: Option<EndpointsField>,
    etcd_discovery_srv: Option<String>,
    etcd_username: Option<String>,
    etcd_password: Option<String>,
    etcd_key_file: Option<String>,
    etcd_cert_file: Option<String>,
    #[serde(rename = "etcdCACertFile")]
    etcd_ca_cert_file: Option<String>,
    etcd_key: Option<String>,
    etcd_cert: Option<String>,
    #[serde(rename = "etcdCACert")]
    etcd_ca_cert: Option<String>,
    // Kubernetes settings: accepted (a calicoctl file may carry them) and unused.
    #[serde(rename = "kubeconfig")]
    _kubeconfig: Option<String>,
    #[serde(rename = "kubeconfigInline")]
    _kubeconfig_inline: Option<String>,
    #[serde(rename = "k8sAPIEndpoint")]
    _k8s_api_endpoint: Option<String>,
    #[serde(rename = "k8sKeyFile")]
    _k8s_key_file: Option<String>,
    #[serde(rename = "k8sCertFile")]
    _k8s_cert_file: Option<String>,
    #[serde(rename = "k8sCAFile")]
    _k8s_ca_file: Option<String>,
    #[serde(rename = "k8sAPIToken")]
    _k8s_api_token: Option<String>,
    #[serde(rename = "k8sInsecureSkipTLSVerify")]
    _k8s_insecure_skip_tls_verify: Option<bool>,
    #[serde(rename = "k8sDisableNodePoll")]
    _k8s_disable_node_poll: Option<bool>,
    #[serde(rename = "k8sClientQPS")]
    _k8s_client_qps: Option<f64>,
    #[serde(rename = "usePodCIDR")]
    _use_pod_cidr: Option<bool>,
}

/// The raw settings, from a file or the environment, before validation.
struct Raw {
    /// How settings are named in messages: the file's `spec.` fields or the variables.
    names: Names,
    datastore_type: Option<String>,
    sqlite_path: Option<PathBuf>,
    etcd_endpoints: Option<Vec<String>>,
    etcd_username: Option<String>,
    etcd_password: Option<String>,
    /// Set etcd settings we cannot honour: (setting name, value, reason).
    unsupported_etcd: Vec<(String, String, &'static str)>,
    source: ConfigSource,
}

#[derive(Clone, Copy)]
enum Names {
    File,
    Env,
}

impl Names {
    fn name(self, file: &str, env: &str) -> String {
        match self {
            Names::File => format!("spec.{file}"),
            Names::Env => env.to_string(),
        }
    }
}

const TLS_REASON: &str = "etcd TLS is not supported by this build yet; use a plain http:// endpoint on a trusted network";
const DISCOVERY_REASON: &str = "DNS SRV discovery is not supported; list the endpoints";

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl DatastoreConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<DatastoreConfig, ConfigError> {
        DatastoreConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from variables given by `lookup` (the environment in
    /// [`DatastoreConfig::from_env`]; a map in tests). `CALICO_<NAME>` wins over `<NAME>`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<DatastoreConfig, ConfigError> {
        let var = |name: &str| {
            non_empty(lookup(&format!("CALICO_{name}"))).or_else(|| non_empty(lookup(name)))
        };
        let mut unsupported_etcd = Vec::new();
        for name in ["ETCD_KEY_FILE", "ETCD_CERT_FILE", "ETCD_CA_CERT_FILE"] {
            if let Some(value) = var(name) {
                unsupported_etcd.push((name.to_string(), value, TLS_REASON));
            }
        }
        if let Some(value) = var("ETCD_DISCOVERY_SRV") {
            unsupported_etcd.push(("ETCD_DISCOVERY_SRV".into(), value, DISCOVERY_REASON));
        }
        Raw {
            names: Names::Env,
            datastore_type: var("DATASTORE_TYPE"),
            sqlite_path: lookup("CALICO_SQLITE_PATH")
                .or_else(|| lookup("SQLITE_PATH"))
                .map(PathBuf::from),
            etcd_endpoints: var("ETCD_ENDPOINTS").map(|s| split_endpoints(&s)),
            etcd_username: var("ETCD_USERNAME"),
            etcd_password: var("ETCD_PASSWORD"),
            unsupported_etcd,
            source: ConfigSource::Environment,
        }
        .validate()
    }

    /// Reads a calicoctl-style file (YAML or JSON): `apiVersion: projectcalico.org/v3`,
    /// `kind: CalicoAPIConfig`, `spec: {datastoreType, etcdEndpoints, sqlitePath, ...}`.
    /// Unknown fields are errors.
    pub fn from_file(path: impl AsRef<Path>) -> Result<DatastoreConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        DatastoreConfig::from_file_text(path, &text)
    }

    /// Parses the text of a config file; `path` is for messages.
    pub fn from_file_text(path: &Path, text: &str) -> Result<DatastoreConfig, ConfigError> {
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let file: ConfigFile =
            serde_path_to_error::deserialize(deserializer).map_err(|e| ConfigError::ParseFile {
                path: path.to_path_buf(),
                field: e.path().to_string(),
                source: e.into_inner(),
            })?;
        let header = |field, expected, found: String| ConfigError::WrongHeader {
            path: path.to_path_buf(),
            field,
            expected,
            found,
        };
        if file.api_version != CONFIG_API_VERSION {
            return Err(header("apiVersion", CONFIG_API_VERSION, file.api_version));
        }
        if file.kind != CONFIG_KIND {
            return Err(header("kind", CONFIG_KIND, file.kind));
        }
        let _ = file.metadata;
        let spec = file.spec;
        let mut unsupported_etcd = Vec::new();
        for (name, value) in [
            ("etcdKeyFile", spec.etcd_key_file),
            ("etcdCertFile", spec.etcd_cert_file),
            ("etcdCACertFile", spec.etcd_ca_cert_file),
            ("etcdKey", spec.etcd_key),
            ("etcdCert", spec.etcd_cert),
            ("etcdCACert", spec.etcd_ca_cert),
        ] {
            if let Some(value) = non_empty(value) {
                unsupported_etcd.push((format!("spec.{name}"), value, TLS_REASON));
            }
        }
        if let Some(value) = non_empty(spec.etcd_discovery_srv) {
            unsupported_etcd.push(("spec.etcdDiscoverySrv".into(), value, DISCOVERY_REASON));
        }
        Raw {
            names: Names::File,
            datastore_type: non_empty(spec.datastore_type),
            sqlite_path: spec.sqlite_path,
            etcd_endpoints: spec.etcd_endpoints.map(|e| match e {
                EndpointsField::Text(s) => split_endpoints(&s),
                EndpointsField::List(l) => l.iter().map(|s| s.trim().to_string()).collect(),
            }),
            etcd_username: non_empty(spec.etcd_username),
            etcd_password: non_empty(spec.etcd_password),
            unsupported_etcd,
            source: ConfigSource::File(path.to_path_buf()),
        }
        .validate()
    }

    /// calicoctl's precedence: `explicit_file` (must exist) alone; else
    /// `/etc/calico/calicoctl.cfg` alone if it exists; else the environment.
    pub fn load(explicit_file: Option<&Path>) -> Result<DatastoreConfig, ConfigError> {
        DatastoreConfig::load_with(explicit_file, Path::new(DEFAULT_CONFIG_FILE), |name| {
            std::env::var(name).ok()
        })
    }

    /// [`DatastoreConfig::load`] with the default file and the environment given explicitly.
    pub fn load_with(
        explicit_file: Option<&Path>,
        default_file: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<DatastoreConfig, ConfigError> {
        if let Some(path) = explicit_file {
            return DatastoreConfig::from_file(path);
        }
        if default_file.exists() {
            return DatastoreConfig::from_file(default_file);
        }
        DatastoreConfig::from_lookup(lookup)
    }

    /// Opens the backend this configuration names.
    pub async fn connect(&self) -> Result<Arc<dyn Backend>, BackendError> {
        match self.kind {
            DatastoreKind::Sqlite => {
                let path = self.sqlite_path.clone();
                let datastore = path.display().to_string();
                let backend = tokio::task::spawn_blocking(move || SqliteBackend::open(path))
                    .await
                    .map_err(|_| BackendError::TaskStopped { datastore })??;
                Ok(Arc::new(backend))
            }
            DatastoreKind::Etcdv3 => {
                let options = EtcdOptions {
                    key_prefix: String::new(),
                    user: self.etcd_user.clone(),
                };
                let backend = EtcdBackend::connect_with(&self.etcd_endpoints, options).await?;
                Ok(Arc::new(backend))
            }
        }
    }
}

fn split_endpoints(s: &str) -> Vec<String> {
    s.split(',').map(|e| e.trim().to_string()).collect()
}

/// Checks one endpoint and returns it with a scheme (`host:port` becomes `http://host:port`).
fn check_endpoint(setting: &str, endpoint: &str) -> Result<String, ConfigError> {
    let invalid = |rule| ConfigError::InvalidEndpoint {
        setting: setting.to_string(),
        value: endpoint.to_string(),
        rule,
    };
    if endpoint.is_empty() {
        return Err(invalid(
            "an endpoint must not be empty (check for stray commas)",
        ));
    }
    if endpoint.starts_with("https://") {
        return Err(ConfigError::Unsupported {
            setting: setting.to_string(),
            value: endpoint.to_string(),
            reason: TLS_REASON,
        });
    }
    let authority = match endpoint.split_once("://") {
        Some(("http", rest)) => rest,
        Some(_) => return Err(invalid("the scheme must be http://")),
        None => endpoint,
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.is_empty() || authority.contains('/') {
        return Err(invalid("expected http://host[:port] with no path"));
    }
    let port = if authority.starts_with('[') {
        // [v6]:port
        match authority.rsplit_once("]:") {
            Some((_, port)) => Some(port),
            None if authority.ends_with(']') => None,
            None => return Err(invalid("expected http://[v6-address]:port")),
        }
    } else {
        authority.rsplit_once(':').map(|(_, port)| port)
    };
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(invalid("the port must be a number from 1 to 65535"));
    }
    Ok(if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    })
}

impl Raw {
    fn validate(self) -> Result<DatastoreConfig, ConfigError> {
        let n = self.names;
        let type_setting = n.name("datastoreType", "DATASTORE_TYPE");
        let endpoints_setting = n.name("etcdEndpoints", "ETCD_ENDPOINTS");
        let kind = match self.datastore_type.as_deref().map(str::trim) {
            None if self.etcd_endpoints.is_some() => DatastoreKind::Etcdv3,
            None | Some("sqlite") => DatastoreKind::Sqlite,
            Some("etcdv3") => DatastoreKind::Etcdv3,
            Some(value @ "kubernetes") => {
                return Err(ConfigError::Unsupported {
                    setting: type_setting,
                    value: value.to_string(),
                    reason: "the Kubernetes (CRD) datastore is not supported yet; use sqlite or etcdv3",
                });
            }
            Some(value) => {
                return Err(ConfigError::UnknownDatastoreType {
                    setting: type_setting,
                    value: value.to_string(),
                });
            }
        };
        let sqlite_setting = n.name("sqlitePath", "SQLITE_PATH");
        let sqlite_path = match self.sqlite_path {
            Some(p) if p.as_os_str().is_empty() => {
                return Err(ConfigError::EmptySqlitePath {
                    setting: sqlite_setting,
                });
            }
            Some(p) => p,
            None => PathBuf::from(DEFAULT_SQLITE_PATH),
        };
        let mut etcd_endpoints = Vec::new();
        let mut etcd_user = None;
        if kind == DatastoreKind::Etcdv3 {
            if let Some((setting, value, reason)) = self.unsupported_etcd.into_iter().next() {
                return Err(ConfigError::Unsupported {
                    setting,
                    value,
                    reason,
                });
            }
            let given = self.etcd_endpoints.unwrap_or_default();
            if given.is_empty() || given.iter().all(String::is_empty) {
                return Err(ConfigError::MissingEndpoints {
                    setting: endpoints_setting,
                });
            }
            for endpoint in &given {
                etcd_endpoints.push(check_endpoint(&endpoints_setting, endpoint)?);
            }
            etcd_user = match (self.etcd_username, self.etcd_password) {
                (Some(user), password) => Some((user, password.unwrap_or_default())),
                (None, Some(_)) => {
                    return Err(ConfigError::Unsupported {
                        setting: n.name("etcdPassword", "ETCD_PASSWORD"),
                        value: "<hidden>".into(),
                        reason: "a password needs a user name as well",
                    });
                }
                (None, None) => None,
            };
        }
        Ok(DatastoreConfig {
            kind,
            sqlite_path,
            etcd_endpoints,
            etcd_user,
            source: self.source,
        })
    }
}
