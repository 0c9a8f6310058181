//! What runs inside a node, chosen from its image: FRR, BIRD, GoBGP, the project's calico-node,
//! or nothing but the node's own `cmd`/`exec`.
//!
//! The mapping is a list of rules "image name contains PATTERN -> role", tried in order; the
//! built-in rules are [`NODE_IMAGE`] -> `calico-node`, `frr` -> `frr`, `bird` -> `bird`,
//! `gobgp` -> `gobgp`. Rules given on the command line (`--role-map PATTERN=ROLE`) or in
//! `CALICO_LAB_ROLE_MAP` (comma-separated) come first, and a node label
//! `calico-lab.role: ROLE` overrides everything for that node (Docker ignores the label).

use serde::{Deserialize, Serialize};

/// The project's node image (the Dockerfile lives in `deploy/`): nodes using it run calico-node.
pub const NODE_IMAGE: &str = "ghcr.io/calico-rs/node";

/// Node label that forces a role regardless of the image.
pub const ROLE_LABEL: &str = "calico-lab.role";

/// What runs inside a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// FRR from Debian's `frr`: zebra, staticd and the daemons enabled in `/etc/frr/daemons`
    /// (bgpd when no daemons file is bound), configured from `/etc/frr/frr.conf` by `vtysh -b`.
    Frr,
    /// BIRD 2 with `/etc/bird/bird.conf`, control socket `/run/bird/bird.ctl`.
    Bird,
    /// gobgpd with `/etc/gobgp/gobgp.{toml,yaml,yml,json}` (if present), API on 127.0.0.1:50051.
    Gobgp,
    /// The project's `calico-node` (program + args + env; see the README).
    CalicoNode,
    /// Nothing but `cmd`/`entrypoint` (if set) and `exec`.
    Plain,
    /// A `kind: bridge` node: a Linux bridge, no processes.
    Bridge,
}

impl Role {
    /// All roles a rule or label may name.
    pub const NAMED: [Role; 5] = [
        Role::Frr,
        Role::Bird,
        Role::Gobgp,
        Role::CalicoNode,
        Role::Plain,
    ];

    /// The spelling used in rules, labels and `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Frr => "frr",
            Role::Bird => "bird",
            Role::Gobgp => "gobgp",
            Role::CalicoNode => "calico-node",
            Role::Plain => "plain",
            Role::Bridge => "bridge",
        }
    }

    /// Parses a role name as written in a rule or label.
    pub fn parse(s: &str) -> Option<Role> {
        Role::NAMED.into_iter().find(|r| r.as_str() == s)
    }

    /// Where a `startup-config` file is mounted for this role, if the role reads one.
    ///
    /// For GoBGP the file name's extension picks the format (`.yaml`, `.yml`, `.json`,
    /// otherwise TOML).
    pub fn startup_config_target(self, source_name: &str) -> Option<String> {
        match self {
            Role::Frr => Some(FRR_CONF.into()),
            Role::Bird => Some(BIRD_CONF.into()),
            Role::Gobgp => {
                let ext = ["yaml", "yml", "json"]
                    .into_iter()
                    .find(|e| source_name.ends_with(&format!(".{e}")))
                    .unwrap_or("toml");
                Some(format!("{GOBGP_CONF_STEM}.{ext}"))
            }
            Role::CalicoNode | Role::Plain | Role::Bridge => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// FRR's integrated configuration inside a node.
pub const FRR_CONF: &str = "/etc/frr/frr.conf";
/// FRR's daemons file inside a node.
pub const FRR_DAEMONS: &str = "/etc/frr/daemons";
/// BIRD's configuration inside a node.
pub const BIRD_CONF: &str = "/etc/bird/bird.conf";
/// BIRD's control socket inside a node (birdc's default).
pub const BIRD_CTL: &str = "/run/bird/bird.ctl";
/// GoBGP's configuration inside a node, without the extension.
pub const GOBGP_CONF_STEM: &str = "/etc/gobgp/gobgp";
/// GoBGP's gRPC API address (per namespace, so instances never clash).
pub const GOBGP_API: &str = "127.0.0.1:50051";

/// One mapping rule: an image whose name contains `pattern` runs `role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRule {
    /// Substring of the image name (compared case-insensitively).
    pub pattern: String,
    /// The role it selects.
    pub role: Role,
}

impl std::str::FromStr for RoleRule {
    type Err = String;

    /// Parses `PATTERN=ROLE`.
    fn from_str(s: &str) -> Result<RoleRule, String> {
        let (pattern, role) = s
            .split_once('=')
            .ok_or_else(|| format!("role rule {s:?}: expected PATTERN=ROLE"))?;
        if pattern.is_empty() {
            return Err(format!("role rule {s:?}: the image pattern is empty"));
        }
        let role = Role::parse(role).ok_or_else(|| {
            format!(
                "role rule {s:?}: unknown role {role:?}; roles are {}",
                role_names()
            )
        })?;
        Ok(RoleRule {
            pattern: pattern.to_string(),
            role,
        })
    }
}

/// The roles a rule may name, comma-separated (for messages).
pub fn role_names() -> String {
    Role::NAMED
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ordered image -> role rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleMap {
    rules: Vec<RoleRule>,
}

impl Default for RoleMap {
    fn default() -> Self {
        RoleMap::with_overrides(Vec::new())
    }
}

impl RoleMap {
    /// The built-in rules preceded by `overrides`.
    pub fn with_overrides(overrides: Vec<RoleRule>) -> RoleMap {
        let mut rules = overrides;
        for (pattern, role) in [
            (NODE_IMAGE, Role::CalicoNode),
            ("frr", Role::Frr),
            ("bird", Role::Bird),
            ("gobgp", Role::Gobgp),
        ] {
            rules.push(RoleRule {
                pattern: pattern.into(),
                role,
            });
        }
        RoleMap { rules }
    }

    /// The rules, in the order they are tried.
    pub fn rules(&self) -> &[RoleRule] {
        &self.rules
    }

    /// The role for a linux node with this image (`Plain` without an image or a match).
    pub fn role_for(&self, image: Option<&str>) -> Role {
        let Some(image) = image else {
            return Role::Plain;
        };
        let image = image.to_ascii_lowercase();
        self.rules
            .iter()
            .find(|r| image.contains(&r.pattern.to_ascii_lowercase()))
            .map_or(Role::Plain, |r| r.role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_map_to_roles_by_name() {
        let m = RoleMap::default();
        assert_eq!(m.role_for(Some("quay.io/frrouting/frr:10.1.0")), Role::Frr);
        assert_eq!(m.role_for(Some("ghcr.io/x/BIRD2")), Role::Bird);
        assert_eq!(m.role_for(Some("jauderho/gobgp:v3")), Role::Gobgp);
        assert_eq!(
            m.role_for(Some("ghcr.io/calico-rs/node:dev")),
            Role::CalicoNode
        );
        assert_eq!(m.role_for(Some("alpine:3")), Role::Plain);
        assert_eq!(m.role_for(None), Role::Plain);
    }

    #[test]
    fn override_rules_come_first() {
        let m = RoleMap::with_overrides(vec!["alpine=bird".parse().unwrap()]);
        assert_eq!(m.role_for(Some("alpine:3")), Role::Bird);
    }

    #[test]
    fn a_rule_with_an_unknown_role_is_rejected_with_the_known_ones() {
        let e = "x=quagga".parse::<RoleRule>().unwrap_err();
        assert!(e.contains("quagga") && e.contains("calico-node"), "{e}");
    }

    #[test]
    fn gobgp_config_format_follows_the_file_extension() {
        assert_eq!(
            Role::Gobgp.startup_config_target("r1.yaml").unwrap(),
            "/etc/gobgp/gobgp.yaml"
        );
        assert_eq!(
            Role::Gobgp.startup_config_target("r1.conf").unwrap(),
            "/etc/gobgp/gobgp.toml"
        );
    }
}
