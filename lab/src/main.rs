//! `calico-lab`: deploys containerlab topology files onto network namespaces of one Linux host.
//!
//! ```text
//! calico-lab deploy  -t lab.clab.yml [--datastore sqlite|etcdv3] [--reconfigure]
//! calico-lab inspect -t lab.clab.yml [--json]
//! calico-lab exec    -t lab.clab.yml NODE -- CMD...
//! calico-lab pod add -t lab.clab.yml --node NODE [--namespace NS] [--label K=V]... NAME
//! calico-lab pod exec -t lab.clab.yml NAME -- CMD...
//! calico-lab pod del -t lab.clab.yml NAME
//! calico-lab destroy -t lab.clab.yml [--cleanup]
//! ```

mod app;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};

use app::datastore::DatastoreKind;
use app::state::{Deployed, StateDir};
use calico_lab::role::{RoleMap, RoleRule};
use calico_lab::topology::{self, LoadOptions};

#[derive(Debug, Parser)]
#[command(
    name = "calico-lab",
    version,
    about = "Deploys containerlab topologies onto network namespaces of one Linux host"
)]
struct Cli {
    /// The topology file (`*.clab.yml`).
    #[arg(short = 't', long = "topo", global = true, env = "CLAB_TOPO")]
    topo: Option<PathBuf>,
    /// Overrides the lab name from the file (as containerlab's --name).
    #[arg(short = 'n', long, global = true)]
    name: Option<String>,
    /// Extra image -> role rule PATTERN=ROLE, tried before the built-in ones (repeatable; also
    /// CALICO_LAB_ROLE_MAP, comma-separated). Roles: frr, bird, gobgp, calico-node, plain.
    #[arg(long = "role-map", global = true, value_name = "PATTERN=ROLE")]
    role_map: Vec<RoleRule>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Creates the lab's namespaces, links and processes, then runs each node's exec.
    Deploy {
        /// The datastore the lab's nodes share.
        #[arg(long, value_enum, default_value = "sqlite")]
        datastore: DatastoreKind,
        /// Destroys an existing deployment of the same lab first.
        #[arg(long)]
        reconfigure: bool,
        /// Seconds each node process may take to become ready (at most a day).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(..=86_400))]
        ready_timeout: u64,
    },
    /// Kills the lab's processes and deletes its namespaces and state (idempotent).
    Destroy {
        /// Also removes containerlab's lab directory (clab-<lab> next to the file).
        #[arg(long)]
        cleanup: bool,
    },
    /// Shows nodes, roles, addresses, processes, links, pods and the datastore.
    Inspect {
        /// Prints JSON.
        #[arg(long)]
        json: bool,
    },
    /// Runs a command inside a node, with the node's and the datastore's environment.
    Exec {
        /// The node.
        node: String,
        /// The command and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Pods: network namespaces wired by a node's CNI plugin.
    Pod {
        #[command(subcommand)]
        verb: PodVerb,
    },
    /// Internal: holds a node's namespaces (started by deploy).
    #[command(hide = true)]
    NodeHolder {
        /// The holder spec written by deploy.
        spec: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PodVerb {
    /// Creates a pod and runs CNI ADD from the node; prints its addresses.
    Add {
        /// The node whose CNI plugin wires the pod.
        #[arg(long)]
        node: String,
        /// Kubernetes namespace of the pod.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// A pod label K=V (repeatable), passed to the plugin in args.cni.labels.
        #[arg(long = "label", value_name = "K=V")]
        labels: Vec<String>,
        /// The pod name.
        #[arg(value_name = "NAME")]
        pod: String,
    },
    /// Runs a command inside a pod's network namespace.
    Exec {
        /// The pod name.
        #[arg(value_name = "NAME")]
        pod: String,
        /// The command and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Runs CNI DEL and removes the pod.
    Del {
        /// The pod name.
        #[arg(value_name = "NAME")]
        pod: String,
    },
}

fn main() {
    let cli = Cli::parse();
    let quiet = !matches!(cli.verb, Verb::Deploy { .. } | Verb::Destroy { .. });
    init_logging(if quiet { "warn" } else { "info" });
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("calico-lab: {e:#}");
            std::process::exit(1);
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load_options(cli: &Cli) -> Result<LoadOptions> {
    let mut rules = cli.role_map.clone();
    if let Ok(env_rules) = std::env::var("CALICO_LAB_ROLE_MAP") {
        for r in env_rules
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            rules.push(
                r.parse()
                    .map_err(|e: String| anyhow!("CALICO_LAB_ROLE_MAP: {e}"))?,
            );
        }
    }
    let mut opts = LoadOptions::from_process_env();
    opts.name_override = cli.name.clone();
    opts.role_map = RoleMap::with_overrides(rules);
    Ok(opts)
}

fn topo(cli: &Cli) -> Result<&Path> {
    cli.topo
        .as_deref()
        .ok_or_else(|| anyhow!("give the topology file with -t/--topo FILE"))
}

/// The state of the lab named by `-t`/`--name`, which must be deployed.
fn deployed_lab(cli: &Cli) -> Result<(StateDir, Deployed)> {
    let state = state_of(cli)?;
    let deployed = state.read_deployed()?.ok_or_else(|| {
        anyhow!(
            "lab is not deployed (no state in {})",
            state.root().display()
        )
    })?;
    Ok((state, deployed))
}

fn state_of(cli: &Cli) -> Result<StateDir> {
    let opts = load_options(cli)?;
    let name = match &cli.name {
        Some(n) => n.clone(),
        None => topology::lab_name(topo(cli)?, &opts)?,
    };
    Ok(StateDir::for_lab(&name))
}

fn run(cli: Cli) -> Result<i32> {
    match &cli.verb {
        Verb::NodeHolder { spec } => {
            app::holder::run(spec)?;
            Ok(0)
        }
        Verb::Deploy {
            datastore,
            reconfigure,
            ready_timeout,
        } => {
            let opts = load_options(&cli)?;
            let lab = topology::load(topo(&cli)?, &opts)?;
            app::deploy::deploy(
                &lab,
                &app::deploy::DeployOptions {
                    datastore: *datastore,
                    reconfigure: *reconfigure,
                    ready_timeout: Duration::from_secs(*ready_timeout),
                },
            )?;
            let (state, deployed) = deployed_lab(&cli)?;
            print!(
                "{}",
                app::inspect::render(&app::inspect::report(&state, &deployed)?)
            );
            Ok(0)
        }
        Verb::Destroy { cleanup } => {
            let state = state_of(&cli)?;
            if state.exists() {
                app::destroy::destroy(&state, *cleanup)?;
                tracing::info!(state = %state.root().display(), "lab destroyed");
            } else {
                tracing::info!(state = %state.root().display(), "lab is not deployed; nothing to do");
            }
            Ok(0)
        }
        Verb::Inspect { json } => {
            let (state, deployed) = deployed_lab(&cli)?;
            let report = app::inspect::report(&state, &deployed)?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).context("serializing the report")?
                );
            } else {
                print!("{}", app::inspect::render(&report));
            }
            Ok(0)
        }
        Verb::Exec { node, cmd } => {
            let (state, deployed) = deployed_lab(&cli)?;
            app::exec::run(&state, &deployed, node, cmd)
        }
        Verb::Pod { verb } => {
            let (state, deployed) = deployed_lab(&cli)?;
            match verb {
                PodVerb::Add {
                    node,
                    namespace,
                    labels,
                    pod: name,
                } => {
                    let labels = parse_labels(labels)?;
                    let pod = app::pod::add(
                        &state,
                        &deployed,
                        &app::pod::PodRequest {
                            name: name.clone(),
                            namespace: namespace.clone(),
                            node: node.clone(),
                            labels,
                        },
                    )?;
                    println!("{}", pod.addresses.join(" "));
                    Ok(0)
                }
                PodVerb::Exec { pod: name, cmd } => {
                    let pod = state
                        .read_pod(name)?
                        .ok_or_else(|| anyhow!("lab {} has no pod {name:?}", deployed.lab.name))?;
                    app::pod::exec(&pod, cmd)
                }
                PodVerb::Del { pod: name } => {
                    let pod = state
                        .read_pod(name)?
                        .ok_or_else(|| anyhow!("lab {} has no pod {name:?}", deployed.lab.name))?;
                    app::pod::delete(&state, &deployed, &pod, false)?;
                    Ok(0)
                }
            }
        }
    }
}

fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in labels {
        let Some((k, v)) = l.split_once('=') else {
            bail!("--label {l:?}: expected K=V");
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}
