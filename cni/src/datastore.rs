//! The datastore a plugin uses: the configuration's `datastore_type` / `sqlite_path` /
//! `etcd_endpoints` (and `etcd_key_prefix`), each falling back to the environment variables
//! every other binary reads (`DATASTORE_TYPE`, `SQLITE_PATH`, `ETCD_ENDPOINTS`, ...).

use std::sync::Arc;

use fabric_datastore::{Backend, DatastoreConfig, DatastoreKind, EtcdBackend, EtcdOptions};

use crate::config::DatastoreConf;
use crate::spec::{CniError, ErrorCode, error_chain};

/// The datastore settings in effect: the configuration's keys over `lookup` (the environment).
pub fn settings(
    conf: &DatastoreConf,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<DatastoreConfig, CniError> {
    let from_conf = |name: &str| -> Option<String> {
        let base = name.strip_prefix("CALICO_").unwrap_or(name);
        match base {
            "DATASTORE_TYPE" => conf.datastore_type.clone(),
            "SQLITE_PATH" => conf.sqlite_path.clone(),
            "ETCD_ENDPOINTS" => conf.etcd_endpoints.clone(),
            _ => None,
        }
    };
    DatastoreConfig::from_lookup(|name| {
        let base = name.strip_prefix("CALICO_").unwrap_or(name);
        if from_conf(base).is_some() {
            // The configuration wins over both spellings of the variable.
            return if name == base { from_conf(base) } else { None };
        }
        lookup(name)
    })
    .map_err(|e| {
        CniError::new(
            ErrorCode::InvalidNetworkConfig,
            "invalid datastore settings",
            error_chain(&e),
        )
    })
}

/// Opens the datastore (`etcd_key_prefix` or `ETCD_KEY_PREFIX` puts every key under a prefix).
pub async fn connect(
    conf: &DatastoreConf,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Backend>, CniError> {
    let prefix = conf
        .etcd_key_prefix
        .clone()
        .or_else(|| lookup("ETCD_KEY_PREFIX").filter(|s| !s.is_empty()));
    let settings = settings(conf, lookup)?;
    let unavailable = |e: &dyn std::error::Error| {
        CniError::new(
            ErrorCode::TryAgainLater,
            format!("cannot reach the {} datastore", settings.kind.as_str()),
            error_chain(e),
        )
    };
    match (settings.kind, prefix) {
        (DatastoreKind::Etcdv3, Some(key_prefix)) => {
            let options = EtcdOptions {
                key_prefix,
                user: settings.etcd_user.clone(),
            };
            let backend = EtcdBackend::connect_with(&settings.etcd_endpoints, options)
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(Arc::new(backend))
        }
        _ => settings.connect().await.map_err(|e| unavailable(&e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_config_wins_over_the_environment() {
        let conf = DatastoreConf {
            datastore_type: Some("sqlite".into()),
            sqlite_path: Some("/tmp/conf.db".into()),
            ..DatastoreConf::default()
        };
        let s = settings(&conf, |n| match n {
            "CALICO_DATASTORE_TYPE" => Some("etcdv3".into()),
            "ETCD_ENDPOINTS" => Some("http://127.0.0.1:2379".into()),
            "SQLITE_PATH" => Some("/tmp/env.db".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.kind, DatastoreKind::Sqlite);
        assert_eq!(s.sqlite_path, PathBuf::from("/tmp/conf.db"));
    }

    #[test]
    fn the_environment_fills_what_the_config_leaves_out() {
        let s = settings(&DatastoreConf::default(), |n| match n {
            "DATASTORE_TYPE" => Some("etcdv3".into()),
            "ETCD_ENDPOINTS" => Some("http://127.0.0.1:2379".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.kind, DatastoreKind::Etcdv3);
    }
}
