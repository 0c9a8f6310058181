//! What each role starts inside a node, and how the lab knows it is ready.
//!
//! * `frr`: `/usr/lib/frr/{zebra,staticd,<daemons>}` in the foreground (`-A 127.0.0.1
//!   --log stdout`), where `<daemons>` are those set to `yes` in a bound `/etc/frr/daemons`,
//!   or `bgpd` when none is bound; ready when each `/run/frr/<daemon>.vty` exists; then
//!   `vtysh -b` applies `/etc/frr/frr.conf`.
//! * `bird`: `bird -f -c /etc/bird/bird.conf -s /run/bird/bird.ctl -P /run/bird/bird.pid`;
//!   ready when the control socket exists.
//! * `gobgp`: `gobgpd [-f /etc/gobgp/gobgp.<ext> -t <type>] -p -l info --api-hosts
//!   127.0.0.1:50051 --pprof-disable`; ready when the API accepts connections.
//! * `calico-node`: the `calico-node` program with `cmd` as its arguments (the image's
//!   ENTRYPOINT); found in `CALICO_LAB_NODE_BIN`, next to `calico-lab`, or on PATH.
//! * `plain`: `cmd` if set.
//!
//! `entrypoint` (any role) and `cmd` (all roles but calico-node) replace what the role
//! starts, as they replace an image's ENTRYPOINT/CMD under Docker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

use calico_lab::model::Node;
use calico_lab::role::{BIRD_CONF, BIRD_CTL, FRR_DAEMONS, GOBGP_API, GOBGP_CONF_STEM, Role};

/// FRR daemons a daemons file may enable (zebra and staticd always run).
const FRR_OPTIONAL: [&str; 18] = [
    "bgpd", "ospfd", "ospf6d", "ripd", "ripngd", "isisd", "pimd", "pim6d", "ldpd", "nhrpd",
    "eigrpd", "babeld", "sharpd", "pbrd", "bfdd", "fabricd", "vrrpd", "pathd",
];

/// Where Debian installs FRR's daemons.
pub const FRR_LIBDIR: &str = "/usr/lib/frr";

/// A long-running process of a role.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// Its record name (`zebra`, `bird`, `cmd`, ...).
    pub name: String,
    /// Its command line.
    pub argv: Vec<String>,
    /// When it counts as ready.
    pub ready: Ready,
}

/// A readiness condition, checked from outside the node.
#[derive(Debug, Clone)]
pub enum Ready {
    /// As soon as it runs.
    Started,
    /// When this path exists in the node's view.
    Path(PathBuf),
    /// When this address accepts TCP connections inside the node.
    Tcp(SocketAddr),
}

/// What to start in a node, and commands to run once everything is ready.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Processes, in start order.
    pub daemons: Vec<Daemon>,
    /// Commands to run after all daemons are ready (`vtysh -b`).
    pub after: Vec<Vec<String>>,
}

/// Programs a role needs on the host, checked before anything is created.
pub fn required_programs(node: &Node) -> Vec<String> {
    if node.entrypoint.is_some() || (node.cmd.is_some() && node.role != Role::CalicoNode) {
        return Vec::new();
    }
    match node.role {
        Role::Frr => vec![
            format!("{FRR_LIBDIR}/zebra"),
            format!("{FRR_LIBDIR}/staticd"),
            "vtysh".into(),
        ],
        Role::Bird => vec!["bird".into(), "birdc".into()],
        Role::Gobgp => vec!["gobgpd".into(), "gobgp".into()],
        Role::CalicoNode | Role::Plain | Role::Bridge => Vec::new(),
    }
}

/// The processes of `node`, whose file view is reachable at `view` (`/proc/<holder>/root`).
pub fn launch(node: &Node, view: &Path) -> Result<Launch> {
    if let Some(entry) = &node.entrypoint {
        let mut argv = entry.clone();
        argv.extend(node.cmd.iter().flatten().cloned());
        return Ok(single("entrypoint", argv));
    }
    if let Some(cmd) = &node.cmd
        && node.role != Role::CalicoNode
    {
        return Ok(single("cmd", cmd.clone()));
    }
    match node.role {
        Role::Frr => frr(node, view),
        Role::Bird => {
            if !in_view(view, BIRD_CONF).is_file() {
                bail!(
                    "node {}: BIRD needs {BIRD_CONF}; bind one (binds: [\"<file>:{BIRD_CONF}\"]) or set startup-config",
                    node.name
                );
            }
            Ok(Launch {
                daemons: vec![Daemon {
                    name: "bird".into(),
                    argv: words(&[
                        "bird",
                        "-f",
                        "-c",
                        BIRD_CONF,
                        "-s",
                        BIRD_CTL,
                        "-P",
                        "/run/bird/bird.pid",
                    ]),
                    ready: Ready::Path(BIRD_CTL.into()),
                }],
                after: Vec::new(),
            })
        }
        Role::Gobgp => {
            let mut argv = words(&["gobgpd"]);
            let found = ["toml", "yaml", "yml", "json"]
                .into_iter()
                .map(|ext| (ext, format!("{GOBGP_CONF_STEM}.{ext}")))
                .find(|(_, p)| in_view(view, p).is_file());
            if let Some((ext, path)) = found {
                let kind = if ext == "yml" { "yaml" } else { ext };
                argv.extend(words(&["-f", &path, "-t", kind]));
            }
            argv.extend(words(&[
                "-p",
                "-l",
                "info",
                "--api-hosts",
                GOBGP_API,
                "--pprof-disable",
            ]));
            let api: SocketAddr = GOBGP_API
                .parse()
                .map_err(|e| anyhow!("GoBGP API address {GOBGP_API}: {e}"))?;
            Ok(Launch {
                daemons: vec![Daemon {
                    name: "gobgpd".into(),
                    argv,
                    ready: Ready::Tcp(api),
                }],
                after: Vec::new(),
            })
        }
        Role::CalicoNode => {
            let program = calico_node_program()?;
            let mut argv = vec![program.display().to_string()];
            argv.extend(node.cmd.iter().flatten().cloned());
            Ok(single("calico-node", argv))
        }
        Role::Plain | Role::Bridge => Ok(Launch::default()),
    }
}

fn single(name: &str, argv: Vec<String>) -> Launch {
    Launch {
        daemons: vec![Daemon {
            name: name.into(),
            argv,
            ready: Ready::Started,
        }],
        after: Vec::new(),
    }
}

fn frr(node: &Node, view: &Path) -> Result<Launch> {
    let daemons_file = in_view(view, FRR_DAEMONS);
    let bound = node
        .binds
        .iter()
        .any(|b| Path::new(FRR_DAEMONS).starts_with(&b.target));
    let enabled: Vec<String> = if bound {
        let text = std::fs::read_to_string(&daemons_file)
            .map_err(|e| anyhow!("reading the bound {FRR_DAEMONS}: {e}"))?;
        parse_daemons_file(&text)
    } else {
        vec!["bgpd".into()]
    };
    let mut names = vec!["zebra".to_string(), "staticd".to_string()];
    names.extend(
        enabled
            .into_iter()
            .filter(|d| d != "zebra" && d != "staticd"),
    );
    let mut daemons = Vec::new();
    for name in names {
        let program = format!("{FRR_LIBDIR}/{name}");
        if !Path::new(&program).is_file() {
            bail!("FRR daemon {name} is enabled but {program} is not installed");
        }
        let mut argv = vec![program, "-A".into(), "127.0.0.1".into()];
        if name == "zebra" {
            argv.extend(words(&["-s", "90000000"]));
        }
        argv.extend(words(&["--log", "stdout"]));
        daemons.push(Daemon {
            ready: Ready::Path(format!("/run/frr/{name}.vty").into()),
            name,
            argv,
        });
    }
    Ok(Launch {
        daemons,
        after: vec![words(&["vtysh", "-b"])],
    })
}

/// The daemons set to `yes` in an FRR daemons file.
fn parse_daemons_file(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next()?.trim();
            let (k, v) = l.split_once('=')?;
            let v = v.trim().trim_matches('"');
            (FRR_OPTIONAL.contains(&k.trim()) && v == "yes").then(|| k.trim().to_string())
        })
        .collect()
}

/// `path` inside the node's view.
pub fn in_view(view: &Path, path: &str) -> PathBuf {
    view.join(path.trim_start_matches('/'))
}

/// The calico-node program: `CALICO_LAB_NODE_BIN`, next to calico-lab, or on PATH.
pub fn calico_node_program() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CALICO_LAB_NODE_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("CALICO_LAB_NODE_BIN={} is not a file", p.display());
        }
        return Ok(p);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("calico-node")));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Ok(p);
    }
    which("calico-node").ok_or_else(|| {
        anyhow!(
            "nodes with image {} run calico-node, which is neither next to calico-lab nor on PATH; build it (cargo build -p calico-node) or set CALICO_LAB_NODE_BIN",
            calico_lab::role::NODE_IMAGE
        )
    })
}

/// `program` on PATH (or as given, if it contains a `/`).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program)).filter(|p| p.is_file());
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(super::exec::DEFAULT_PATH.split(':'))
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemons_file_enables_the_daemons_set_to_yes() {
        let text =
            "zebra=yes\nbgpd=yes\nospfd=no\nbfdd=\"yes\" # comment\n#ripd=yes\nvtysh_enable=yes\n";
        assert_eq!(parse_daemons_file(text), vec!["bgpd", "bfdd"]);
    }
}
