//! Which keys of containerlab's schema the lab honours, accepts without effect, or refuses.
//!
//! Unknown keys (typos, other tools' extensions) are errors that name the key and suggest the
//! closest known one: a silently ignored key would make the lab behave differently from what
//! the file says.

use serde_yaml_ng::{Mapping, Value};

use super::Invalid;
use crate::model::Ignored;

/// How the lab treats a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Treatment {
    /// Honoured.
    Honoured,
    /// Accepted, has no effect here (Docker-only); reported by `inspect`.
    Ignored(&'static str),
    /// Part of containerlab's schema but not supported here: an error with this reason.
    Refused(&'static str),
}

use Treatment::{Honoured, Ignored as Noop, Refused};

/// Top-level keys.
pub(crate) const TOP: &[(&str, Treatment)] = &[
    ("name", Honoured),
    ("prefix", Honoured),
    ("mgmt", Honoured),
    ("topology", Honoured),
    (
        "settings",
        Noop("certificate-authority settings only matter for certificate generation"),
    ),
    ("debug", Noop("debug output is chosen with RUST_LOG")),
];

/// Keys under `mgmt`.
pub(crate) const MGMT: &[(&str, Treatment)] = &[
    ("network", Honoured),
    ("bridge", Honoured),
    ("ipv4-subnet", Honoured),
    ("ipv6-subnet", Honoured),
    ("ipv4_subnet", Honoured),
    ("ipv6_subnet", Honoured),
    ("ipv4-gw", Honoured),
    ("ipv6-gw", Honoured),
    ("ipv4-range", Honoured),
    ("ipv6-range", Honoured),
    ("mtu", Honoured),
    (
        "external-access",
        Noop("the management network lives in its own namespace, unreachable from outside"),
    ),
    (
        "skip-when-unused",
        Noop("the management namespace is always created"),
    ),
    ("driver-opts", Noop("Docker network driver options")),
];

/// Keys under `topology`.
pub(crate) const TOPOLOGY: &[(&str, Treatment)] = &[
    ("nodes", Honoured),
    ("groups", Honoured),
    ("kinds", Honoured),
    ("defaults", Honoured),
    ("links", Honoured),
];

/// Keys of a node definition (also under `defaults`, `kinds.<kind>` and `groups.<group>`).
pub(crate) const NODE: &[(&str, Treatment)] = &[
    ("kind", Honoured),
    ("group", Honoured),
    ("type", Honoured),
    ("image", Honoured),
    ("startup-config", Honoured),
    ("startup-delay", Honoured),
    ("enforce-startup-config", Honoured),
    ("suppress-startup-config", Honoured),
    ("hostname", Honoured),
    ("entrypoint", Honoured),
    ("cmd", Honoured),
    ("exec", Honoured),
    ("binds", Honoured),
    ("env", Honoured),
    ("env-files", Honoured),
    ("labels", Honoured),
    ("mgmt-ipv4", Honoured),
    ("mgmt-ipv6", Honoured),
    ("network-mode", Honoured),
    ("sysctls", Honoured),
    ("tmpfs", Honoured),
    (
        "ports",
        Noop("Docker publishes ports on the host; reach the node at its management address"),
    ),
    (
        "image-pull-policy",
        Noop("no image is pulled: the image name only selects what runs"),
    ),
    ("restart-policy", Noop("processes are not restarted")),
    ("auto-remove", Noop("Docker container removal")),
    ("runtime", Noop("there is no container runtime")),
    ("cpu", Noop("Docker resource limit")),
    ("cpu-set", Noop("Docker resource limit")),
    ("memory", Noop("Docker resource limit")),
    ("shm-size", Noop("Docker resource limit")),
    ("dns", Noop("nodes use the host's resolver settings")),
    ("aliases", Noop("DNS aliases on the Docker network")),
    ("devices", Noop("nodes see the host's devices")),
    (
        "cap-add",
        Noop("node processes run as root with all capabilities"),
    ),
    (
        "privileged",
        Noop("node processes run as root with all capabilities"),
    ),
    ("security-opts", Noop("Docker security options")),
    ("cgroupns-mode", Noop("Docker cgroup setting")),
    ("cgroup-parent", Noop("Docker cgroup setting")),
    ("healthcheck", Noop("Docker health checks are not run")),
    ("license", Noop("licenses apply to network OS kinds")),
    (
        "credentials",
        Noop("login credentials apply to network OS kinds"),
    ),
    (
        "username",
        Noop("login credentials apply to network OS kinds"),
    ),
    (
        "password",
        Noop("login credentials apply to network OS kinds"),
    ),
    (
        "identity-file",
        Noop("login credentials apply to network OS kinds"),
    ),
    ("position", Noop("graph layout only")),
    (
        "user",
        Refused(
            "running node processes as another user is not supported; start them with `setpriv` in cmd/exec",
        ),
    ),
    (
        "volumes",
        Refused("Docker volumes are not supported; use binds"),
    ),
    (
        "pid-mode",
        Refused("nodes always share the host's PID namespace"),
    ),
    (
        "stages",
        Refused(
            "stage dependencies (wait-for, stage exec) are not supported; nodes start in name order and `exec` runs after all of them started",
        ),
    ),
    ("extras", Refused("kind-specific extras are not supported")),
    (
        "config",
        Refused("configuration templating is not supported"),
    ),
    (
        "components",
        Refused("multi-component nodes are not supported"),
    ),
    (
        "certificate",
        Refused("TLS certificate generation is not supported"),
    ),
    (
        "link-apply-mode",
        Refused("link apply modes are not supported"),
    ),
];

/// Keys a `kind: bridge` node may set itself (everything else would have no effect).
pub(crate) const BRIDGE_NODE: &[&str] = &["kind", "group", "type", "labels", "position"];

/// Keys of a brief link (`endpoints: ["a:eth1", "b:eth1"]`).
pub(crate) const LINK_BRIEF: &[(&str, Treatment)] = &[
    ("endpoints", Honoured),
    ("mtu", Honoured),
    ("ipv4", Honoured),
    ("ipv6", Honoured),
    (
        "vars",
        Noop("link variables only feed containerlab's templates"),
    ),
    (
        "labels",
        Noop("link labels only feed containerlab's templates"),
    ),
];

/// Keys of an extended link (`type: veth`).
pub(crate) const LINK_EXTENDED: &[(&str, Treatment)] = &[
    ("type", Honoured),
    ("endpoints", Honoured),
    ("mtu", Honoured),
    ("ipv4", Honoured),
    ("ipv6", Honoured),
    (
        "vars",
        Noop("link variables only feed containerlab's templates"),
    ),
    (
        "labels",
        Noop("link labels only feed containerlab's templates"),
    ),
];

/// Keys of an extended link endpoint.
pub(crate) const ENDPOINT: &[(&str, Treatment)] = &[
    ("node", Honoured),
    ("interface", Honoured),
    ("mac", Honoured),
    ("ipv4", Honoured),
    ("ipv6", Honoured),
    (
        "vars",
        Noop("endpoint variables only feed containerlab's templates"),
    ),
];

/// Checks every key of `map` (found at `at`) against `table`: unknown or refused keys are
/// errors, ignored ones are recorded in `ignored` and removed from the map.
pub(crate) fn check(
    map: &mut Mapping,
    at: &str,
    table: &[(&str, Treatment)],
    ignored: &mut Vec<Ignored>,
) -> Result<(), Invalid> {
    let mut drop = Vec::new();
    for key in map.keys() {
        let Some(name) = key.as_str() else {
            return Err(Invalid::new(
                at,
                format!("key {} is not a string", super::describe(key)),
            ));
        };
        match table.iter().find(|(k, _)| *k == name) {
            Some((_, Honoured)) => {}
            Some((_, Noop(reason))) => {
                ignored.push(Ignored {
                    at: super::join(at, name),
                    reason: (*reason).to_string(),
                });
                drop.push(key.clone());
            }
            Some((_, Refused(reason))) => {
                return Err(Invalid::new(
                    super::join(at, name),
                    format!("`{name}` is not supported by calico-lab: {reason}"),
                ));
            }
            None => {
                let hint = closest(name, table.iter().map(|(k, _)| *k))
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(Invalid::new(
                    at,
                    format!(
                        "unknown key `{name}`{hint}: containerlab's topology schema has no such key here"
                    ),
                ));
            }
        }
    }
    for key in drop {
        map.remove(&key);
    }
    Ok(())
}

/// The candidate nearest to `word` by edit distance, if it is close (at most 2 edits).
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The mapping at `value`, treating YAML `null` (a key with nothing under it) as empty.
pub(crate) fn mapping(value: Value, at: &str) -> Result<Mapping, Invalid> {
    match value {
        Value::Null => Ok(Mapping::new()),
        Value::Mapping(m) => Ok(m),
        other => Err(Invalid::new(
            at,
            format!("expected a map of keys, got {}", super::describe(&other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_gets_a_suggestion() {
        let mut m: Mapping = serde_yaml_ng::from_str("imagee: x").unwrap();
        let e = check(&mut m, "topology.nodes.n1", NODE, &mut Vec::new()).unwrap_err();
        assert!(
            e.message.contains("`imagee`") && e.message.contains("`image`"),
            "{e:?}"
        );
    }

    #[test]
    fn docker_only_keys_are_recorded_and_removed() {
        let mut m: Mapping = serde_yaml_ng::from_str("ports: [80:80]\nimage: x").unwrap();
        let mut ignored = Vec::new();
        check(&mut m, "topology.nodes.n1", NODE, &mut ignored).unwrap();
        assert_eq!(ignored[0].at, "topology.nodes.n1.ports");
        assert!(!m.contains_key("ports"));
    }

    #[test]
    fn refused_keys_say_why() {
        let mut m: Mapping = serde_yaml_ng::from_str("user: alice").unwrap();
        let e = check(&mut m, "topology.nodes.n1", NODE, &mut Vec::new()).unwrap_err();
        assert_eq!(e.at, "topology.nodes.n1.user");
        assert!(e.message.contains("not supported"), "{e:?}");
    }
}
