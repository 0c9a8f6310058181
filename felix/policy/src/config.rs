//! Renderer settings: the node, the families, the mark bits and the configurable actions
//! (Calico's FelixConfiguration `defaultEndpointToHostAction`, `logPrefix`, `iptablesMarkMask`
//! allocation).

use crate::error::PolicyError;

/// What happens to workload-to-host traffic once the workload's egress policy allowed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointToHostAction {
    /// Accept it (the default of Calico's manifests and of this project's lab).
    Accept,
    /// Drop it (Calico's code default).
    Drop,
    /// Return to `INPUT` for the host's own rules.
    Return,
}

impl EndpointToHostAction {
    /// Parses FelixConfiguration's `defaultEndpointToHostAction` (`Accept`, `Drop`, `Return`,
    /// case-insensitive).
    pub fn parse(text: &str) -> Result<EndpointToHostAction, PolicyError> {
        match text.to_ascii_lowercase().as_str() {
            "accept" => Ok(EndpointToHostAction::Accept),
            "drop" => Ok(EndpointToHostAction::Drop),
            "return" => Ok(EndpointToHostAction::Return),
            _ => Err(PolicyError::new(
                "defaultEndpointToHostAction",
                text,
                "is not one of Accept, Drop, Return",
            )),
        }
    }

    /// The iptables target.
    pub fn target(self) -> &'static str {
        match self {
            EndpointToHostAction::Accept => "ACCEPT",
            EndpointToHostAction::Drop => "DROP",
            EndpointToHostAction::Return => "RETURN",
        }
    }
}

/// How the renderer renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderConfig {
    /// This node's name: workload endpoints with `spec.node` equal to it are local and get
    /// chains; all endpoints count for selector ipsets.
    pub node_name: String,
    /// Render the IPv6 table and sets too.
    pub ipv6: bool,
    /// `defaultEndpointToHostAction`.
    pub endpoint_to_host_action: EndpointToHostAction,
    /// `logPrefix`: Log rules use `--log-prefix "<prefix>: "`.
    pub log_prefix: String,
    /// The mark bit a policy sets to accept (Calico: 0x10000).
    pub mark_accept: u32,
    /// The mark bit a policy sets to pass to the next tier (Calico: 0x20000).
    pub mark_pass: u32,
    /// Interface name prefixes of workloads (`cali`): traffic on them that no known endpoint
    /// claims is dropped.
    pub workload_interface_prefixes: Vec<String>,
}

impl RenderConfig {
    /// Calico's defaults for `node_name`, with IPv6 off and workload-to-host traffic accepted.
    pub fn new(node_name: impl Into<String>) -> RenderConfig {
        RenderConfig {
            node_name: node_name.into(),
            ipv6: false,
            endpoint_to_host_action: EndpointToHostAction::Accept,
            log_prefix: "calico-packet".to_string(),
            mark_accept: 0x10000,
            mark_pass: 0x20000,
            workload_interface_prefixes: vec!["cali".to_string()],
        }
    }

    /// The enabled families.
    pub fn families(&self) -> Vec<crate::IpFamily> {
        if self.ipv6 {
            crate::IpFamily::ALL.to_vec()
        } else {
            vec![crate::IpFamily::V4]
        }
    }

    /// Checks the settings: single distinct mark bits, a log prefix iptables accepts,
    /// non-empty interface prefixes.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (field, bit) in [
            ("mark_accept", self.mark_accept),
            ("mark_pass", self.mark_pass),
        ] {
            if bit.count_ones() != 1 {
                return Err(PolicyError::new(
                    field,
                    format!("{bit:#x}"),
                    "must be a single mark bit",
                ));
            }
        }
        if self.mark_accept == self.mark_pass {
            return Err(PolicyError::new(
                "mark_pass",
                format!("{:#x}", self.mark_pass),
                "must differ from mark_accept",
            ));
        }
        // iptables' LOG prefix holds 29 characters; we append ": ".
        if self.log_prefix.len() > 27
            || self
                .log_prefix
                .chars()
                .any(|c| c == '"' || c == '\\' || c.is_control())
        {
            return Err(PolicyError::new(
                "logPrefix",
                &self.log_prefix,
                "must be at most 27 characters without quotes, backslashes or control characters",
            ));
        }
        for (i, p) in self.workload_interface_prefixes.iter().enumerate() {
            if p.is_empty() || p.len() > 14 || !p.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(PolicyError::new(
                    format!("workload_interface_prefixes[{i}]"),
                    p,
                    "must be 1-14 letters or digits",
                ));
            }
        }
        if self.workload_interface_prefixes.is_empty() {
            return Err(PolicyError::new(
                "workload_interface_prefixes",
                "",
                "must name at least one prefix",
            ));
        }
        Ok(())
    }
}
