//! The CNI runtime's environment: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`,
//! `CNI_ARGS` (with Kubernetes' `K8S_POD_NAME` / `K8S_POD_NAMESPACE`) and `CNI_PATH`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::spec::CniError;

/// The command the runtime asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// ADD.
    Add,
    /// DEL.
    Del,
    /// CHECK.
    Check,
    /// VERSION.
    Version,
}

impl Command {
    /// Parses `CNI_COMMAND`.
    pub fn parse(value: &str) -> Result<Command, CniError> {
        match value {
            "ADD" => Ok(Command::Add),
            "DEL" => Ok(Command::Del),
            "CHECK" => Ok(Command::Check),
            "VERSION" => Ok(Command::Version),
            other => Err(CniError::invalid_env(
                "CNI_COMMAND",
                other,
                "is not a CNI command; expected ADD, DEL, CHECK or VERSION",
            )),
        }
    }

    /// The name as in `CNI_COMMAND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
        }
    }
}

/// The variables of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniEnv {
    /// The command.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS` (may be empty on DEL).
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS` as key/value pairs.
    pub args: BTreeMap<String, String>,
    /// `CNI_PATH`, split on `:`.
    pub path: Vec<PathBuf>,
    /// The raw `CNI_ARGS` (passed on to a delegated plugin).
    pub raw_args: String,
}

impl CniEnv {
    /// Reads the variables through `lookup` (the process environment in the binaries).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<CniEnv, CniError> {
        let get = |name: &str| lookup(name).unwrap_or_default();
        let command_text = get("CNI_COMMAND");
        if command_text.is_empty() {
            return Err(CniError::invalid_env(
                "CNI_COMMAND",
                "",
                "is required (ADD, DEL, CHECK or VERSION)",
            ));
        }
        let command = Command::parse(&command_text)?;
        let raw_args = get("CNI_ARGS");
        let env = CniEnv {
            command,
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
            args: parse_args(&raw_args)?,
            path: std::env::split_paths(&get("CNI_PATH"))
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
            raw_args,
        };
        if command != Command::Version {
            if env.container_id.is_empty() {
                return Err(CniError::invalid_env("CNI_CONTAINERID", "", "is required"));
            }
            if let Some(bad) = env
                .container_id
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c)))
            {
                return Err(CniError::invalid_env(
                    "CNI_CONTAINERID",
                    &env.container_id,
                    &format!(
                        "contains {bad:?}; container IDs are letters, digits, '-', '_' and '.'"
                    ),
                ));
            }
            if env.ifname.is_empty() {
                return Err(CniError::invalid_env("CNI_IFNAME", "", "is required"));
            }
            if env.ifname.len() > 15 || env.ifname.contains(['/', ' ']) {
                return Err(CniError::invalid_env(
                    "CNI_IFNAME",
                    &env.ifname,
                    "is not an interface name (1-15 characters, no '/' or spaces)",
                ));
            }
            if command != Command::Del && env.netns.is_empty() {
                return Err(CniError::invalid_env(
                    "CNI_NETNS",
                    "",
                    "is required for ADD and CHECK",
                ));
            }
        }
        Ok(env)
    }

    /// Reads the process environment.
    pub fn from_process() -> Result<CniEnv, CniError> {
        CniEnv::from_lookup(|n| std::env::var(n).ok())
    }

    /// `K8S_POD_NAME`, if given.
    pub fn pod_name(&self) -> Option<&str> {
        self.args
            .get("K8S_POD_NAME")
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// `K8S_POD_NAMESPACE`, if given.
    pub fn pod_namespace(&self) -> Option<&str> {
        self.args
            .get("K8S_POD_NAMESPACE")
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// Parses `CNI_ARGS`: `K=V;K=V`.
pub fn parse_args(raw: &str) -> Result<BTreeMap<String, String>, CniError> {
    let mut out = BTreeMap::new();
    for pair in raw.split(';').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(CniError::invalid_env(
                "CNI_ARGS",
                raw,
                &format!("has {pair:?}, which is not KEY=VALUE"),
            ));
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<CniEnv, CniError> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CniEnv::from_lookup(|n| map.get(n).cloned())
    }

    #[test]
    fn pod_identity_comes_from_cni_args() {
        let e = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-1",
            ),
        ])
        .unwrap();
        assert_eq!(e.pod_name(), Some("web-1"));
        assert_eq!(e.pod_namespace(), Some("prod"));
    }

    #[test]
    fn a_missing_container_id_is_error_code_4() {
        let e = env(&[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert_eq!(e.code, crate::spec::ErrorCode::InvalidEnvironment);
        assert!(e.msg.contains("CNI_CONTAINERID"), "{e}");
    }

    #[test]
    fn del_needs_no_netns() {
        let e = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap();
        assert!(e.netns.is_empty());
    }

    #[test]
    fn malformed_cni_args_are_rejected() {
        assert!(parse_args("A=1;B").is_err());
        assert_eq!(parse_args("").unwrap().len(), 0);
    }
}
