//! `calicoctl ipam`: `show` (pool and block usage, one address, borrowed addresses, the
//! configuration), `check` (consistency report, `-o FILE`, exit code 1 on a problem),
//! `release` (`--ip=ADDR`, or `--from-report=FILE` refusing a stale report) and `configure`
//! (`--strictaffinity`, `--max-blocks-per-host`), over [`fabric_ipam::Ipam`].

mod check;
mod show;
mod table;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use fabric_ipam::Ipam;

use crate::context::Ctx;

/// Arguments of `calicoctl ipam`.
#[derive(Debug, Args, Clone)]
pub struct IpamArgs {
    /// The IPAM command.
    #[command(subcommand)]
    pub command: IpamCommand,
}

/// The `ipam` subcommands.
#[derive(Debug, Subcommand, Clone)]
pub enum IpamCommand {
    /// Show pool and block usage, one address, borrowed addresses or the configuration.
    Show(ShowArgs),
    /// Check IPAM for leaked addresses, addresses in use but not allocated, handles without
    /// addresses, addresses outside every pool; exit code 1 when a problem is found.
    Check(CheckArgs),
    /// Release one address, or the leaked addresses and handles of a check report.
    Release(ReleaseArgs),
    /// Change the IPAM configuration.
    Configure(ConfigureArgs),
}

/// Arguments of `ipam show`.
#[derive(Debug, Args, Clone)]
#[group(id = "what", multiple = false)]
pub struct ShowArgs {
    /// Report whether this address is in use, and by whom.
    #[arg(long = "ip", value_name = "IP", group = "what")]
    pub ip: Option<String>,
    /// Show every block of each pool as well as the pools.
    #[arg(long = "show-blocks", group = "what")]
    pub show_blocks: bool,
    /// Show the addresses nodes use from blocks affine to other nodes (or to none).
    #[arg(long = "show-borrowed", group = "what")]
    pub show_borrowed: bool,
    /// Show the IPAM configuration in effect.
    #[arg(long = "show-configuration", group = "what")]
    pub show_configuration: bool,
}

/// Arguments of `ipam check`.
#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    /// Write the report as JSON to this file (the input of `ipam release --from-report`).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<String>,
    /// Print every allocation checked.
    #[arg(long = "show-all-ips")]
    pub show_all_ips: bool,
    /// Print each problem found.
    #[arg(long = "show-problem-ips")]
    pub show_problem_ips: bool,
}

/// Arguments of `ipam release`.
#[derive(Debug, Args, Clone)]
pub struct ReleaseArgs {
    /// The address to release.
    #[arg(long = "ip", value_name = "IP", conflicts_with = "from_report")]
    pub ip: Option<String>,
    /// Release the leaked addresses and handles of a report from `ipam check -o`. Given more
    /// than once, only what every report lists as leaked is released; at least one report
    /// must be current.
    #[arg(long = "from-report", value_name = "REPORT")]
    pub from_report: Vec<String>,
    /// Release from reports although they are stale or from another version (each address
    /// is still released only if its allocation is the one the report saw).
    #[arg(long = "force", requires = "from_report")]
    pub force: bool,
}

/// Arguments of `ipam configure`.
#[derive(Debug, Args, Clone)]
pub struct ConfigureArgs {
    /// true: nodes never borrow addresses from other nodes' blocks.
    #[arg(long = "strictaffinity", value_name = "true/false")]
    pub strict_affinity: Option<String>,
    /// The most blocks one node may own per address family (0: Calico's default, 20).
    #[arg(long = "max-blocks-per-host", value_name = "NUMBER")]
    pub max_blocks_per_host: Option<String>,
}

/// Runs `calicoctl ipam ...`.
pub(crate) async fn run(ctx: &mut Ctx<'_>, args: IpamArgs) -> anyhow::Result<()> {
    match args.command {
        IpamCommand::Show(a) => show::show(ctx, &a).await,
        IpamCommand::Check(a) => check::check(ctx, &a).await,
        IpamCommand::Release(a) => check::release(ctx, &a).await,
        IpamCommand::Configure(a) => configure(ctx, &a).await,
    }
}

/// The IPAM client over the configured datastore (connecting on first use).
async fn ipam(ctx: &mut Ctx<'_>) -> anyhow::Result<Ipam> {
    Ok(Ipam::new(ctx.client().await?))
}

/// An address given to `flag`; the error names the flag, the value and the rule.
fn parse_ip(flag: &str, text: &str) -> anyhow::Result<std::net::IpAddr> {
    text.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "invalid value for {flag}: {text:?} is not an IP address (expected e.g. 10.0.0.1 or fd00::1)"
        )
    })
}

/// A boolean as Go's `strconv.ParseBool` reads it (1, t, T, TRUE, true, True and the false
/// forms), which is what calicoctl accepts.
fn parse_go_bool(flag: &str, text: &str) -> anyhow::Result<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => anyhow::bail!("invalid value for {flag}: {text:?}; use true or false"),
    }
}

/// `ipam configure`: every value is checked before the configuration is written.
async fn configure(ctx: &mut Ctx<'_>, args: &ConfigureArgs) -> anyhow::Result<()> {
    let strict = args
        .strict_affinity
        .as_deref()
        .map(|t| parse_go_bool("--strictaffinity", t))
        .transpose()?;
    let max_blocks = args
        .max_blocks_per_host
        .as_deref()
        .map(|t| {
            t.trim().parse::<u32>().ok().filter(|n| i32::try_from(*n).is_ok()).ok_or_else(|| {
                anyhow::anyhow!(
                    "invalid value for --max-blocks-per-host: {t:?}; use a whole number from 0 to {} (0: the default, 20)",
                    i32::MAX
                )
            })
        })
        .transpose()?;
    if strict.is_none() && max_blocks.is_none() {
        anyhow::bail!(
            "at least one configuration option must be specified: --strictaffinity=<true/false> or --max-blocks-per-host=<number>"
        );
    }
    let ipam = ipam(ctx).await?;
    let mut config = ipam
        .config()
        .await
        .context("failed to read the IPAM configuration")?;
    if let Some(s) = strict {
        config.strict_affinity = s;
    }
    if let Some(n) = max_blocks {
        config.max_blocks_per_host = n;
    }
    ipam.set_config(config)
        .await
        .context("failed to write the IPAM configuration")?;
    if let Some(s) = strict {
        writeln!(ctx.out, "Successfully set StrictAffinity to: {s}")?;
    }
    if let Some(n) = max_blocks {
        writeln!(ctx.out, "Successfully set MaxBlocksPerHost to: {n}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_read_as_go_reads_them() {
        assert!(parse_go_bool("--strictaffinity", "True").unwrap());
        assert!(!parse_go_bool("--strictaffinity", "0").unwrap());
        let err = parse_go_bool("--strictaffinity", "yes").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for --strictaffinity: \"yes\"; use true or false"
        );
    }

    #[test]
    fn a_bad_address_names_the_flag_and_the_value() {
        let err = parse_ip("--ip", "10.0.0.300").unwrap_err();
        assert!(err.to_string().contains("--ip: \"10.0.0.300\""), "{err}");
    }
}
