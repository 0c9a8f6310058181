//! The command line: global flags and one subcommand per calicoctl command, with calicoctl's
//! flag names and short forms.
//!
//! Global flags: `-c/--config FILE` (a `CalicoAPIConfig` file; anywhere on the line),
//! `--log-level LEVEL` (anywhere; `-l LEVEL` only before the command, as in calicoctl, because
//! `get -l` is the label selector), `--allow-version-mismatch` and `--context` (accepted; this
//! build has no version check and no Kubernetes contexts).
//!
//! Plug-in points for later command families: add a variant to [`Command`] here
//! (`Ipam(IpamArgs)` with `show | check | release | configure | split` for the IPAM issue;
//! `Node(NodeArgs)` with `status | checksystem` for the fabric issue), a module under
//! `commands/` (`ipam.rs`, `node.rs`) and one arm in `commands::dispatch`. They get the
//! datastore through `Ctx::client()` (its `backend()` for raw IPAM keys) and write through
//! `Ctx::out`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// calicoctl: manage Calico resources in the datastore.
#[derive(Debug, Parser)]
#[command(
    name = "calicoctl",
    about = "Manage Calico network and policy resources in the datastore",
    long_about = "calicoctl manages projectcalico.org/v3 resources (IP pools, BGP peers, \
                  policies, ...) in the datastore: sqlite (default) or etcdv3, configured by \
                  DATASTORE_TYPE, SQLITE_PATH and ETCD_ENDPOINTS or a calicoctl.cfg file.",
    disable_version_flag = true
)]
pub struct Cli {
    /// Log level before the command: panic, fatal, error, warn, info, debug, trace.
    #[arg(short = 'l', value_name = "LEVEL", hide = true)]
    pub log_level_short: Option<String>,
    /// Log level: panic (default: nothing is logged), fatal, error, warn, info, debug, trace.
    /// Before the command, `-l LEVEL` works too.
    #[arg(long = "log-level", value_name = "LEVEL", global = true)]
    pub log_level: Option<String>,
    /// Path to a CalicoAPIConfig file (YAML or JSON). Default: /etc/calico/calicoctl.cfg if it
    /// exists, else the environment.
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Accepted for compatibility; this build does not compare client and cluster versions.
    #[arg(long = "allow-version-mismatch", global = true)]
    pub allow_version_mismatch: bool,
    /// Accepted for compatibility; there are no Kubernetes contexts in this build.
    #[arg(long = "context", value_name = "CONTEXT", global = true, hide = true)]
    pub context: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create resources from a file, a directory or stdin; fails for resources that exist.
    Create(CreateArgs),
    /// Create or update resources from a file, a directory or stdin.
    Apply(WriteArgs),
    /// Replace existing resources from a file, a directory or stdin.
    Replace(WriteArgs),
    /// Delete resources by kind and name, or those described in a file.
    Delete(DeleteArgs),
    /// Show resources as a table, YAML or JSON.
    Get(GetArgs),
    /// Change fields of one resource with a merge patch.
    Patch(PatchArgs),
    /// Set, change or remove a label of one resource.
    Label(LabelArgs),
    /// Check resources in a file, a directory or stdin without writing them.
    Validate(WriteArgs),
    /// Show the client version and the datastore type.
    Version(VersionArgs),
    /// The local calico-node: BGP status, kernel feature check.
    Node(crate::commands::node::NodeArgs),
    /// IP address management: show usage, check, release, configure.
    Ipam(crate::commands::ipam::IpamArgs),
}

/// Where resources are read from: `-f FILE`, `-f DIR` or `-f -`.
#[derive(Debug, Args, Clone)]
pub struct FileArgs {
    /// A YAML or JSON file, a directory of .yaml/.yml/.json files, or - for stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILENAME")]
    pub filename: Option<String>,
    /// Walk the directory given with -f recursively.
    #[arg(short = 'R', long = "recursive")]
    pub recursive: bool,
    /// Do not fail when a file or directory holds no resources.
    #[arg(long = "skip-empty")]
    pub skip_empty: bool,
}

/// Arguments of `apply`, `replace` and `validate`.
#[derive(Debug, Args, Clone)]
pub struct WriteArgs {
    /// The input.
    #[command(flatten)]
    pub file: FileArgs,
    /// Namespace for namespaced resources that do not name one (default: default).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
}

/// Arguments of `create`.
#[derive(Debug, Args, Clone)]
pub struct CreateArgs {
    /// Input and namespace.
    #[command(flatten)]
    pub write: WriteArgs,
    /// Skip resources that already exist instead of failing.
    #[arg(long = "skip-exists")]
    pub skip_exists: bool,
}

/// Arguments of `delete`.
#[derive(Debug, Args, Clone)]
pub struct DeleteArgs {
    /// The kind (ippool, bgppeer, networkpolicy, gnp, ...).
    #[arg(value_name = "KIND")]
    pub kind: Option<String>,
    /// The names of the resources to delete.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// The input, instead of KIND NAME...
    #[command(flatten)]
    pub file: FileArgs,
    /// Namespace of namespaced resources (default: default).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
    /// Skip resources that do not exist instead of failing.
    #[arg(short = 's', long = "skip-not-exists")]
    pub skip_not_exists: bool,
}

/// Arguments of `get`.
#[derive(Debug, Args, Clone)]
pub struct GetArgs {
    /// The kind (ippool, bgppeer, networkpolicy, gnp, ...).
    #[arg(value_name = "KIND")]
    pub kind: Option<String>,
    /// Names to show (default: every resource of the kind).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// The input, instead of KIND NAME...: show the resources a file describes.
    #[command(flatten)]
    pub file: FileArgs,
    /// Output format: ps, wide, yaml, json, custom-columns=COL,COL...
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        default_value = "ps"
    )]
    pub output: String,
    /// Namespace of namespaced resources (default: default).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
    /// List namespaced resources in every namespace.
    #[arg(short = 'A', long = "all-namespaces", short_alias = 'a')]
    pub all_namespaces: bool,
    /// Show only resources whose labels match this Calico selector (e.g. "app == 'web'").
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Strip cluster-specific metadata (uid, resourceVersion, creationTimestamp) from named
    /// resources.
    #[arg(long = "export")]
    pub export: bool,
}

/// Arguments of `patch`.
#[derive(Debug, Args, Clone)]
pub struct PatchArgs {
    /// The kind.
    #[arg(value_name = "KIND")]
    pub kind: String,
    /// The name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The patch: a JSON or YAML merge patch, e.g. '{"spec":{"disabled":true}}'.
    #[arg(short = 'p', long = "patch", value_name = "PATCH")]
    pub patch: String,
    /// Patch type: strategic (default; a merge patch for Calico resources), merge or json
    /// (an RFC 6902 list of operations).
    #[arg(
        short = 't',
        long = "type",
        value_name = "TYPE",
        default_value = "strategic"
    )]
    pub patch_type: String,
    /// Namespace of a namespaced resource (default: default).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
}

/// Arguments of `label`.
#[derive(Debug, Args, Clone)]
pub struct LabelArgs {
    /// The kind.
    #[arg(value_name = "KIND")]
    pub kind: String,
    /// The name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// key=value to set, or key with --remove.
    #[arg(value_name = "LABEL")]
    pub label: String,
    /// Replace the value of a label that is already set.
    #[arg(long = "overwrite")]
    pub overwrite: bool,
    /// Remove the label.
    #[arg(long = "remove")]
    pub remove: bool,
    /// Namespace of a namespaced resource (default: default).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
}

/// Arguments of `version`.
#[derive(Debug, Args, Clone)]
pub struct VersionArgs {
    /// Show only the client version; do not read the datastore configuration.
    #[arg(long = "client")]
    pub client: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dash_l_is_the_log_level_before_the_command_and_the_selector_after_get() {
        let cli = Cli::try_parse_from([
            "calicoctl",
            "-l",
            "debug",
            "get",
            "ippool",
            "-l",
            "a == 'b'",
        ])
        .unwrap();
        assert_eq!(cli.log_level_short.as_deref(), Some("debug"));
        let Command::Get(get) = cli.command else {
            panic!("not get")
        };
        assert_eq!(get.selector.as_deref(), Some("a == 'b'"));
    }

    #[test]
    fn global_flags_are_accepted_after_the_command() {
        let cli = Cli::try_parse_from([
            "calicoctl",
            "apply",
            "-f",
            "x.yaml",
            "-c",
            "/tmp/c.cfg",
            "--log-level",
            "info",
            "--allow-version-mismatch",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("/tmp/c.cfg")));
        assert_eq!(cli.log_level.as_deref(), Some("info"));
        assert!(cli.allow_version_mismatch);
    }

    #[test]
    fn dash_a_is_an_alias_of_all_namespaces() {
        let cli = Cli::try_parse_from(["calicoctl", "get", "wep", "-a"]).unwrap();
        let Command::Get(get) = cli.command else {
            panic!("not get")
        };
        assert!(get.all_namespaces);
    }
}
