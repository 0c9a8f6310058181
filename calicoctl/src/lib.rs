//! calicoctl: the operator's command line tool for Calico resources (apply, create, replace,
//! delete, get, patch, label, validate, version), with Calico's flags, table columns, output
//! formats and messages.
//!
//! The binary is a thin wrapper around [`run`]; tests call [`run_with_env`] in-process with
//! their own environment, stdin, stdout and stderr. Every command exits 0 on success and 1 on
//! any error (as calicoctl does); errors go to stderr.
//!
//! Layout: [`cli`] defines the command line (clap); `commands/` holds one module per command
//! family; `output/` renders tables (Go tabwriter style), YAML and JSON; `input` reads
//! manifests from files, directories and stdin. New command families (`ipam`, `node`) plug in
//! as a variant of [`cli::Command`], a module in `commands/` and one arm in `commands::dispatch`.

pub mod cli;
mod commands;
mod context;
mod input;
mod kinds;
mod output;

use std::ffi::OsString;
use std::io::{Read, Write};

pub use context::{ETCD_KEY_PREFIX_ENV, Env};

/// Runs calicoctl with `args` (the first is the program name) and the process environment.
/// Returns the exit code.
pub fn run<I, T>(
    args: I,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with_env(args, &Env::from_process(), stdin, stdout, stderr)
}

/// Runs calicoctl with `args` (the first is the program name) and the environment `env`.
/// Returns the exit code: 0 on success, 1 on any error.
pub fn run_with_env<I, T>(
    args: I,
    env: &Env,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    commands::main(args, env, stdin, stdout, stderr)
}
