//! The CNI exec protocol (spec 1.0.0) from the runtime's side: picking a node's network
//! configuration, deriving each plugin's configuration, `CNI_ARGS`, results and errors.
//!
//! Pod labels reach the plugin in the network configuration as `args.cni.labels`, a list of
//! `{"key": ..., "value": ...}` objects (the CNI conventions' "args in network config"); the
//! pod's name and namespace travel in `CNI_ARGS` as Kubernetes runtimes send them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value, json};

/// The CNI specification version the lab speaks when it writes a configuration itself.
pub const CNI_VERSION: &str = "1.0.0";

/// Where a node's CNI configuration files are looked up (inside the node's view).
pub const CONF_DIR: &str = "/etc/cni/net.d";

/// Why a CNI configuration or answer is unusable.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// A configuration file is not JSON or misses a required field.
    #[error("CNI configuration {file}: {message}")]
    Config {
        /// The file name.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The plugin answered with a CNI error object.
    #[error("CNI plugin {plugin} failed with code {code}: {msg}{}", if details.is_empty() { String::new() } else { format!(" ({details})") })]
    Plugin {
        /// The plugin type.
        plugin: String,
        /// The CNI error code.
        code: u64,
        /// The error message.
        msg: String,
        /// Details, possibly empty.
        details: String,
    },
    /// The plugin's output is not a CNI result.
    #[error("CNI plugin {plugin} printed something that is not a CNI result: {output}")]
    BadResult {
        /// The plugin type.
        plugin: String,
        /// The output (shortened).
        output: String,
    },
}

/// A network configuration list (`.conflist`), or a single `.conf` treated as a list of one.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    /// The file it came from (or `built-in`).
    pub source: String,
    /// `cniVersion`.
    pub cni_version: String,
    /// `name`.
    pub name: String,
    /// The plugin configurations, in order.
    pub plugins: Vec<Map<String, Value>>,
}

impl NetworkConfigList {
    /// Parses a configuration file's text; `file` is its name (its extension tells a list from
    /// a single configuration).
    pub fn parse(file: &str, text: &str) -> Result<NetworkConfigList, CniError> {
        let bad = |message: String| CniError::Config {
            file: file.to_string(),
            message,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Value::Object(obj) = v else {
            return Err(bad("expected a JSON object".into()));
        };
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no `name`".into()))?
            .to_string();
        let cni_version = obj
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or(CNI_VERSION)
            .to_string();
        let plugins = match obj.get("plugins") {
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, p)| match p {
                    Value::Object(m) if m.get("type").and_then(Value::as_str).is_some() => {
                        Ok(m.clone())
                    }
                    _ => Err(bad(format!("plugins[{i}] is not an object with a `type`"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(bad("`plugins` is not a list".into())),
            None => {
                if obj.get("type").and_then(Value::as_str).is_none() {
                    return Err(bad("neither `plugins` nor `type`".into()));
                }
                vec![obj.clone()]
            }
        };
        if plugins.is_empty() {
            return Err(bad("`plugins` is empty".into()));
        }
        Ok(NetworkConfigList {
            source: file.to_string(),
            cni_version,
            name,
            plugins,
        })
    }

    /// The configuration passed to plugin `index` on stdin: the plugin's object plus the list's
    /// `name` and `cniVersion`, `prevResult` when given, and the pod's labels in
    /// `args.cni.labels`.
    pub fn plugin_config(
        &self,
        index: usize,
        prev_result: Option<&Value>,
        labels: &BTreeMap<String, String>,
    ) -> Value {
        let mut conf = self.plugins.get(index).cloned().unwrap_or_default();
        conf.insert("name".into(), Value::String(self.name.clone()));
        conf.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        if let Some(prev) = prev_result {
            conf.insert("prevResult".into(), prev.clone());
        }
        let label_list: Vec<Value> = labels
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let args = conf
            .entry("args")
            .or_insert_with(|| Value::Object(Map::new()));
        if !args.is_object() {
            *args = Value::Object(Map::new());
        }
        if let Value::Object(args) = args {
            let cni = args
                .entry("cni")
                .or_insert_with(|| Value::Object(Map::new()));
            if !cni.is_object() {
                *cni = Value::Object(Map::new());
            }
            if let Value::Object(cni) = cni {
                cni.insert("labels".into(), Value::Array(label_list));
            }
        }
        Value::Object(conf)
    }

    /// The list as a `.conflist` JSON document.
    pub fn to_json(&self) -> Value {
        json!({
            "cniVersion": self.cni_version,
            "name": self.name,
            "plugins": self.plugins,
        })
    }

    /// The `type` of plugin `index`.
    pub fn plugin_type(&self, index: usize) -> &str {
        self.plugins
            .get(index)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// The configuration file libcni would use from a directory listing: the first by name of
/// `*.conflist`, `*.conf` and `*.json`.
pub fn pick_config_file(mut names: Vec<String>) -> Option<String> {
    names.retain(|n| n.ends_with(".conflist") || n.ends_with(".conf") || n.ends_with(".json"));
    names.sort();
    names.into_iter().next()
}

/// What the lab tells the default configuration about the datastore.
#[derive(Debug, Clone, PartialEq)]
pub enum DatastoreRef {
    /// The SQLite file shared by the lab.
    Sqlite(String),
    /// etcd client endpoints (comma-separated URLs).
    Etcd(String),
}

/// The configuration used when a node has none: the project's `calico` plugin with
/// `calico-ipam`, told the datastore (`datastore_type`, `sqlite_path` or `etcd_endpoints`)
/// and the node name.
pub fn default_calico_config(nodename: &str, datastore: &DatastoreRef) -> NetworkConfigList {
    let mut plugin = Map::new();
    plugin.insert("type".into(), json!("calico"));
    plugin.insert("log_level".into(), json!("info"));
    plugin.insert("nodename".into(), json!(nodename));
    match datastore {
        DatastoreRef::Sqlite(path) => {
            plugin.insert("datastore_type".into(), json!("sqlite"));
            plugin.insert("sqlite_path".into(), json!(path));
        }
        DatastoreRef::Etcd(endpoints) => {
            plugin.insert("datastore_type".into(), json!("etcdv3"));
            plugin.insert("etcd_endpoints".into(), json!(endpoints));
        }
    }
    plugin.insert("ipam".into(), json!({"type": "calico-ipam"}));
    NetworkConfigList {
        source: "built-in".into(),
        cni_version: CNI_VERSION.into(),
        name: "k8s-pod-network".into(),
        plugins: vec![plugin],
    }
}

/// A pod as the plugin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// Pod name (`K8S_POD_NAME`).
    pub name: String,
    /// Pod namespace (`K8S_POD_NAMESPACE`).
    pub namespace: String,
}

impl PodIdentity {
    /// `CNI_ARGS` as Kubernetes runtimes pass it (`IgnoreUnknown=1` lets plugins that do not
    /// know the Kubernetes keys accept them).
    pub fn cni_args(&self) -> String {
        format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={}",
            self.namespace, self.name, self.container_id
        )
    }
}

/// A successful ADD result, with the addresses it assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct CniResult {
    /// The result as the plugin printed it (cached for DEL's `prevResult`).
    pub raw: Value,
    /// Assigned addresses with prefix lengths.
    pub ips: Vec<IpNet>,
}

/// Reads a plugin's stdout: a CNI error object (with a non-zero exit) or an ADD result.
pub fn parse_output(
    plugin: &str,
    stdout: &[u8],
    success: bool,
) -> Result<Option<CniResult>, CniError> {
    let text = String::from_utf8_lossy(stdout);
    let trimmed = text.trim();
    let short = || trimmed.chars().take(400).collect::<String>();
    if trimmed.is_empty() {
        if success {
            return Ok(None);
        }
        return Err(CniError::Plugin {
            plugin: plugin.into(),
            code: 999,
            msg: "the plugin failed without printing an error".into(),
            details: String::new(),
        });
    }
    let v: Value = serde_json::from_str(trimmed).map_err(|_| CniError::BadResult {
        plugin: plugin.into(),
        output: short(),
    })?;
    if let Some(code) = v.get("code").and_then(Value::as_u64)
        && (!success || v.get("msg").is_some())
    {
        return Err(CniError::Plugin {
            plugin: plugin.into(),
            code,
            msg: v.get("msg").and_then(Value::as_str).unwrap_or("").into(),
            details: v
                .get("details")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
        });
    }
    if !success {
        return Err(CniError::BadResult {
            plugin: plugin.into(),
            output: short(),
        });
    }
    let mut ips = Vec::new();
    if let Some(list) = v.get("ips").and_then(Value::as_array) {
        for ip in list {
            if let Some(a) = ip
                .get("address")
                .and_then(Value::as_str)
                .and_then(|a| a.parse().ok())
            {
                ips.push(a);
            }
        }
    }
    for legacy in ["ip4", "ip6"] {
        if let Some(a) = v
            .get(legacy)
            .and_then(|o| o.get("ip"))
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
        {
            ips.push(a);
        }
    }
    Ok(Some(CniResult { raw: v, ips }))
}

/// The address part of a result address, for printing.
pub fn addr_of(net: &IpNet) -> IpAddr {
    net.addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_conf_is_a_list_of_one() {
        let l = NetworkConfigList::parse(
            "10-br.conf",
            r#"{"cniVersion":"1.0.0","name":"n","type":"bridge","ipam":{"type":"host-local"}}"#,
        )
        .unwrap();
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(l.plugin_type(0), "bridge");
    }

    #[test]
    fn plugin_config_carries_name_version_prev_result_and_labels() {
        let l = NetworkConfigList::parse(
            "x.conflist",
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","args":{"cni":{"ips":["1.2.3.4"]}}},{"type":"b"}]}"#,
        )
        .unwrap();
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let prev = json!({"ips": []});
        let c = l.plugin_config(0, Some(&prev), &labels);
        assert_eq!(c["name"], "n");
        assert_eq!(c["cniVersion"], "1.0.0");
        assert_eq!(c["prevResult"], prev);
        assert_eq!(c["args"]["cni"]["ips"][0], "1.2.3.4");
        assert_eq!(c["args"]["cni"]["labels"][0]["key"], "app");
        assert_eq!(c["args"]["cni"]["labels"][0]["value"], "web");
    }

    #[test]
    fn results_give_addresses_and_errors_give_the_plugin_message() {
        let r = parse_output(
            "bridge",
            br#"{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.2/24","gateway":"10.1.0.1"}]}"#,
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.ips[0].to_string(), "10.1.0.2/24");
        let e =
            parse_output("bridge", br#"{"code":7,"msg":"bad","details":"d"}"#, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "CNI plugin bridge failed with code 7: bad (d)"
        );
    }

    #[test]
    fn the_first_config_file_by_name_wins() {
        let names = vec!["20-b.conflist".into(), "README".into(), "10-a.conf".into()];
        assert_eq!(pick_config_file(names).unwrap(), "10-a.conf");
    }

    #[test]
    fn cni_args_carry_the_kubernetes_pod_identity() {
        let p = PodIdentity {
            container_id: "c1".into(),
            name: "web".into(),
            namespace: "default".into(),
        };
        assert_eq!(
            p.cni_args(),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=c1"
        );
    }
}
