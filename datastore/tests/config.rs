//! Datastore configuration: environment variables and calicoctl-style files, with clear errors.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fabric_datastore::config::{ConfigSource, DEFAULT_SQLITE_PATH};
use fabric_datastore::{ConfigError, DatastoreConfig, DatastoreKind};

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn file(text: &str) -> Result<DatastoreConfig, ConfigError> {
    DatastoreConfig::from_file_text(Path::new("/etc/calico/calicoctl.cfg"), text)
}

#[test]
fn an_empty_environment_means_sqlite_at_the_default_path() {
    let c = DatastoreConfig::from_lookup(env(&[])).unwrap();
    assert_eq!(c.kind, DatastoreKind::Sqlite);
    assert_eq!(c.sqlite_path, PathBuf::from(DEFAULT_SQLITE_PATH));
    assert_eq!(c.source, ConfigSource::Environment);
}

#[test]
fn etcdv3_from_the_environment_takes_the_comma_separated_endpoints() {
    let c = DatastoreConfig::from_lookup(env(&[
        ("DATASTORE_TYPE", "etcdv3"),
        ("ETCD_ENDPOINTS", "http://10.0.0.1:2379, 10.0.0.2:2379"),
    ]))
    .unwrap();
    assert_eq!(c.kind, DatastoreKind::Etcdv3);
    assert_eq!(
        c.etcd_endpoints,
        vec!["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
    );
}

#[test]
fn calico_prefixed_variables_win_over_plain_ones() {
    let c = DatastoreConfig::from_lookup(env(&[
        ("DATASTORE_TYPE", "etcdv3"),
        ("CALICO_DATASTORE_TYPE", "sqlite"),
        ("SQLITE_PATH", "/plain.db"),
        ("CALICO_SQLITE_PATH", "/prefixed.db"),
    ]))
    .unwrap();
    assert_eq!(c.kind, DatastoreKind::Sqlite);
    assert_eq!(c.sqlite_path, PathBuf::from("/prefixed.db"));
}

#[test]
fn endpoints_without_a_type_mean_etcdv3_as_in_calico() {
    let c =
        DatastoreConfig::from_lookup(env(&[("ETCD_ENDPOINTS", "http://127.0.0.1:2379")])).unwrap();
    assert_eq!(c.kind, DatastoreKind::Etcdv3);
}

#[test]
fn an_unknown_datastore_type_is_rejected_naming_the_variable_and_the_choices() {
    let err = DatastoreConfig::from_lookup(env(&[("DATASTORE_TYPE", "etcd")])).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownDatastoreType { .. }));
    assert_eq!(
        err.to_string(),
        r#"DATASTORE_TYPE = "etcd" is not a datastore type; expected one of: sqlite, etcdv3"#
    );
}

#[test]
fn the_kubernetes_datastore_is_reported_as_not_supported_yet() {
    let err = DatastoreConfig::from_lookup(env(&[("DATASTORE_TYPE", "kubernetes")])).unwrap_err();
    assert!(matches!(err, ConfigError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("not supported yet"), "{err}");
}

#[test]
fn etcdv3_without_endpoints_is_rejected_naming_what_to_set() {
    let err = DatastoreConfig::from_lookup(env(&[("DATASTORE_TYPE", "etcdv3")])).unwrap_err();
    assert!(matches!(err, ConfigError::MissingEndpoints { .. }));
    assert!(err.to_string().contains("set ETCD_ENDPOINTS"), "{err}");
    let err = file(
        "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreType: etcdv3\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("set spec.etcdEndpoints"), "{err}");
}

#[test]
fn malformed_endpoints_are_rejected_with_the_rule() {
    for (value, rule) in [
        ("http://a:2379,,http://b:2379", "must not be empty"),
        ("ftp://a:2379", "scheme must be http://"),
        ("http://a:notaport", "port must be a number"),
        ("http://a:2379/v3/path", "no path"),
    ] {
        let err = DatastoreConfig::from_lookup(env(&[
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_ENDPOINTS", value),
        ]))
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidEndpoint { .. }),
            "{value}: {err}"
        );
        assert!(err.to_string().contains(rule), "{value}: {err}");
    }
}

#[test]
fn tls_settings_are_refused_for_etcd_but_ignored_for_sqlite() {
    let err = DatastoreConfig::from_lookup(env(&[
        ("DATASTORE_TYPE", "etcdv3"),
        ("ETCD_ENDPOINTS", "https://10.0.0.1:2379"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("TLS is not supported"), "{err}");
    let err = DatastoreConfig::from_lookup(env(&[
        ("DATASTORE_TYPE", "etcdv3"),
        ("ETCD_ENDPOINTS", "http://10.0.0.1:2379"),
        ("ETCD_CA_CERT_FILE", "/etc/ca.pem"),
    ]))
    .unwrap_err();
    assert!(err.to_string().starts_with("ETCD_CA_CERT_FILE"), "{err}");
    DatastoreConfig::from_lookup(env(&[("ETCD_CA_CERT_FILE", "/etc/ca.pem")])).unwrap();
}

#[test]
fn etcd_credentials_are_taken_from_the_environment() {
    let c = DatastoreConfig::from_lookup(env(&[
        ("ETCD_ENDPOINTS", "http://127.0.0.1:2379"),
        ("ETCD_USERNAME", "calico"),
        ("ETCD_PASSWORD", "secret"),
    ]))
    .unwrap();
    assert_eq!(c.etcd_user, Some(("calico".into(), "secret".into())));
}

#[test]
fn a_calicoctl_file_for_etcd_is_read() {
    let c = file(
        "apiVersion: projectcalico.org/v3
kind: CalicoAPIConfig
metadata: {}
spec:
  datastoreType: etcdv3
  etcdEndpoints: http://10.0.0.1:2379,http://10.0.0.2:2379
",
    )
    .unwrap();
    assert_eq!(c.kind, DatastoreKind::Etcdv3);
    assert_eq!(c.etcd_endpoints.len(), 2);
    assert_eq!(
        c.source,
        ConfigSource::File(PathBuf::from("/etc/calico/calicoctl.cfg"))
    );
}

#[test]
fn a_json_file_with_a_sqlite_path_is_read() {
    let c = file(
        r#"{"apiVersion":"projectcalico.org/v3","kind":"CalicoAPIConfig",
            "spec":{"datastoreType":"sqlite","sqlitePath":"/run/lab/calico.db"}}"#,
    )
    .unwrap();
    assert_eq!(c.kind, DatastoreKind::Sqlite);
    assert_eq!(c.sqlite_path, PathBuf::from("/run/lab/calico.db"));
}

#[test]
fn kubernetes_settings_in_a_sqlite_file_are_accepted_and_unused() {
    file(
        "apiVersion: projectcalico.org/v3
kind: CalicoAPIConfig
spec:
  datastoreType: sqlite
  kubeconfig: /root/.kube/config
  k8sInsecureSkipTLSVerify: false
",
    )
    .unwrap();
}

#[test]
fn an_unknown_field_in_the_file_is_rejected_naming_it_and_its_path() {
    let err = file(
        "apiVersion: projectcalico.org/v3
kind: CalicoAPIConfig
spec:
  datastoreType: etcdv3
  etcdEndpoint: http://10.0.0.1:2379
",
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::ParseFile { .. }), "{err}");
    let message = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(message.contains("invalid at spec"), "{message}");
    assert!(message.contains("etcdEndpoint"), "{message}");
    assert!(message.contains("/etc/calico/calicoctl.cfg"), "{message}");
}

#[test]
fn a_file_with_the_wrong_api_version_or_kind_is_rejected() {
    let err = file("apiVersion: v1\nkind: calicoApiConfig\nspec: {}\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"config file /etc/calico/calicoctl.cfg: apiVersion must be "projectcalico.org/v3", found "v1""#
    );
    let err = file("apiVersion: projectcalico.org/v3\nkind: IPPool\n").unwrap_err();
    assert!(err.to_string().contains("kind must be"), "{err}");
}

#[test]
fn an_unknown_datastore_type_in_a_file_names_the_spec_field() {
    let err = file(
        "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreType: mysql\n",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(r#"spec.datastoreType = "mysql""#),
        "{err}"
    );
}

#[test]
fn a_named_file_that_does_not_exist_is_an_error_not_a_fallback_to_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.cfg");
    let err = DatastoreConfig::load_with(Some(&missing), &dir.path().join("default.cfg"), env(&[]))
        .unwrap_err();
    assert!(matches!(err, ConfigError::ReadFile { .. }), "{err}");
    assert!(err.to_string().contains("nope.cfg"), "{err}");
}

#[test]
fn the_default_file_when_present_is_used_alone_and_the_environment_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let default = dir.path().join("calicoctl.cfg");
    let vars = env(&[
        ("DATASTORE_TYPE", "etcdv3"),
        ("ETCD_ENDPOINTS", "http://1.2.3.4:2379"),
    ]);
    // No default file: the environment.
    let c = DatastoreConfig::load_with(None, &default, &vars).unwrap();
    assert_eq!(c.kind, DatastoreKind::Etcdv3);
    // A default file: only the file.
    std::fs::write(
        &default,
        "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  sqlitePath: /x.db\n",
    )
    .unwrap();
    let c = DatastoreConfig::load_with(None, &default, &vars).unwrap();
    assert_eq!(
        (c.kind, c.sqlite_path),
        (DatastoreKind::Sqlite, PathBuf::from("/x.db"))
    );
}

#[tokio::test]
async fn a_sqlite_config_connects_and_creates_the_file_with_its_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/lib/calico/calico.db");
    let c = DatastoreConfig::from_lookup(env(&[("SQLITE_PATH", path.to_str().unwrap())])).unwrap();
    let b = c.connect().await.unwrap();
    b.create("/k", "{}").await.unwrap();
    assert!(path.exists());
}
