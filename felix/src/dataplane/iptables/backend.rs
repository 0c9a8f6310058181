//! Running `iptables-save`/`iptables-restore` (nft or legacy backend, binaries from config) and
//! the error a failed command produces.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::dataplane::addr::IpFamily;

/// A command that could not run or exited with an error.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program could not be started or talked to.
    #[error("running {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The program exited with a failure status.
    #[error("{program} {args} exited with {status}: {stderr}")]
    Failed {
        /// The program.
        program: String,
        /// Its arguments, space-separated.
        args: String,
        /// The exit status, as text.
        status: String,
        /// Its trimmed standard error.
        stderr: String,
    },
}

/// Runs `program args` with `input` on stdin; returns stdout.
pub(crate) fn run(
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, CommandError> {
    let spawn_error = |source| CommandError::Spawn {
        program: program.to_string(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(spawn_error)?;
    }
    let out = child.wait_with_output().map_err(spawn_error)?;
    if !out.status.success() {
        return Err(CommandError::Failed {
            program: program.to_string(),
            args: args.join(" "),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Reading and writing one family's iptables tables.
pub trait IptablesBackend {
    /// `iptables-save -t <table>` output.
    fn save(&mut self, table: &str) -> Result<String, CommandError>;
    /// Feeds `input` to `iptables-restore --noflush` (one atomic transaction per table).
    fn restore(&mut self, input: &str) -> Result<(), CommandError>;
}

/// The real backend: `iptables-nft-save`/`-restore` or the legacy ones, by binary name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptablesCommands {
    /// The save binary (`iptables-nft-save`).
    pub save: String,
    /// The restore binary (`iptables-nft-restore`).
    pub restore: String,
    /// Seconds to wait for the xtables lock.
    pub wait_seconds: u32,
}

impl IptablesCommands {
    /// The nf_tables backend (`iptables-nft-*`, `ip6tables-nft-*`).
    pub fn nft(family: IpFamily) -> IptablesCommands {
        IptablesCommands::named(family, "nft")
    }

    /// The legacy (xtables) backend (`iptables-legacy-*`).
    pub fn legacy(family: IpFamily) -> IptablesCommands {
        IptablesCommands::named(family, "legacy")
    }

    /// nft where its binaries are installed, legacy otherwise.
    pub fn detect(family: IpFamily) -> IptablesCommands {
        let nft = IptablesCommands::nft(family);
        if find_program(&nft.restore) {
            nft
        } else {
            IptablesCommands::legacy(family)
        }
    }

    /// Whether these binaries are installed.
    pub fn installed(&self) -> bool {
        find_program(&self.restore) && find_program(&self.save)
    }

    fn named(family: IpFamily, backend: &str) -> IptablesCommands {
        let base = match family {
            IpFamily::V4 => "iptables",
            IpFamily::V6 => "ip6tables",
        };
        IptablesCommands {
            save: format!("{base}-{backend}-save"),
            restore: format!("{base}-{backend}-restore"),
            wait_seconds: 10,
        }
    }
}

/// True if `program` is on `PATH` (or in the usual sbin directories).
pub(crate) fn find_program(program: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin"])
        .any(|dir| std::path::Path::new(dir).join(program).is_file())
}

impl IptablesBackend for IptablesCommands {
    fn save(&mut self, table: &str) -> Result<String, CommandError> {
        run(&self.save, &["-t", table], None)
    }

    fn restore(&mut self, input: &str) -> Result<(), CommandError> {
        let wait = self.wait_seconds.to_string();
        run(&self.restore, &["--noflush", "-w", &wait], Some(input)).map(|_| ())
    }
}
