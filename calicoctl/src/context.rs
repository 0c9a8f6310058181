//! What a command runs with: the environment (a snapshot, so tests can run calicoctl
//! in-process side by side), the datastore connection and the output streams.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use fabric_datastore::config::DEFAULT_CONFIG_FILE;
use fabric_datastore::{Backend, Client, DatastoreConfig, DatastoreKind, EtcdBackend, EtcdOptions};

/// Test isolation only: when set, an etcdv3 datastore keeps every key under this prefix (e.g.
/// `/test-42`), so tests can share one etcd server. Other programs of the project do not read
/// it; never set it in production.
pub const ETCD_KEY_PREFIX_ENV: &str = "FABRIC_ETCD_KEY_PREFIX";

/// The environment calicoctl reads: variables (`DATASTORE_TYPE`, `SQLITE_PATH`,
/// `ETCD_ENDPOINTS`, ...) and where the default config file is.
#[derive(Debug, Clone)]
pub struct Env {
    vars: BTreeMap<String, String>,
    default_config_file: PathBuf,
}

impl Env {
    /// The process environment and `/etc/calico/calicoctl.cfg`.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().collect(),
            default_config_file: PathBuf::from(DEFAULT_CONFIG_FILE),
        }
    }

    /// No variables, and `/etc/calico/calicoctl.cfg` as the default config file.
    pub fn empty() -> Env {
        Env {
            vars: BTreeMap::new(),
            default_config_file: PathBuf::from(DEFAULT_CONFIG_FILE),
        }
    }

    /// This environment with `name` set to `value`.
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Env {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// This environment with another default config file (used when `-c` is not given and
    /// the file exists).
    pub fn with_default_config_file(mut self, path: impl Into<PathBuf>) -> Env {
        self.default_config_file = path.into();
        self
    }

    /// The value of a variable.
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
}

/// The state of one command run.
pub(crate) struct Ctx<'a> {
    pub(crate) env: &'a Env,
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) stdin: &'a mut dyn Read,
    pub(crate) out: &'a mut dyn Write,
    connected: Option<(Client, DatastoreConfig)>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        env: &'a Env,
        config_file: Option<PathBuf>,
        stdin: &'a mut dyn Read,
        out: &'a mut dyn Write,
    ) -> Ctx<'a> {
        Ctx {
            env,
            config_file,
            stdin,
            out,
            connected: None,
        }
    }

    /// The datastore configuration (`-c FILE`, else the default file if it exists, else the
    /// environment).
    pub(crate) fn config(&self) -> anyhow::Result<DatastoreConfig> {
        let explicit = self.config_file.as_deref();
        DatastoreConfig::load_with(explicit, &self.env.default_config_file, |name| {
            self.env.var(name)
        })
        .context("failed to load the datastore configuration")
    }

    /// The typed client, connecting on first use.
    pub(crate) async fn client(&mut self) -> anyhow::Result<Client> {
        if let Some((client, _)) = &self.connected {
            return Ok(client.clone());
        }
        let config = self.config()?;
        let backend = connect(&config, self.env.var(ETCD_KEY_PREFIX_ENV))
            .await
            .with_context(|| {
                format!(
                    "failed to create Calico API client ({})",
                    describe_datastore(&config)
                )
            })?;
        let client = Client::new(backend);
        self.connected = Some((client.clone(), config));
        Ok(client)
    }
}

async fn connect(
    config: &DatastoreConfig,
    etcd_prefix: Option<String>,
) -> Result<Arc<dyn Backend>, fabric_datastore::BackendError> {
    match (config.kind, etcd_prefix.filter(|p| !p.is_empty())) {
        (DatastoreKind::Etcdv3, Some(prefix)) => {
            let options = EtcdOptions {
                key_prefix: prefix,
                user: config.etcd_user.clone(),
            };
            let backend = EtcdBackend::connect_with(&config.etcd_endpoints, options).await?;
            Ok(Arc::new(backend))
        }
        _ => config.connect().await,
    }
}

/// `sqlite /var/lib/calico/calico.db` or `etcdv3 http://...`.
pub(crate) fn describe_datastore(config: &DatastoreConfig) -> String {
    match config.kind {
        DatastoreKind::Sqlite => format!("sqlite {}", display_path(&config.sqlite_path)),
        DatastoreKind::Etcdv3 => format!("etcdv3 {}", config.etcd_endpoints.join(",")),
    }
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
}
