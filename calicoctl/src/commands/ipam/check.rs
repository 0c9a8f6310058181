//! `ipam check` (the report, `-o FILE` as JSON, exit code 1 when a problem is found) and
//! `ipam release` (`--ip=ADDR`, or `--from-report=FILE...`, refusing a stale report or one
//! from another version unless `--force`, as calicoctl does).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use fabric_ipam::{CheckReport, Ipam, ReleaseRequest};

use super::{CheckArgs, ReleaseArgs, ipam, parse_ip};
use crate::context::Ctx;

/// The version written into reports and required of the reports `release` reads.
const REPORT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `ipam check`.
pub(super) async fn check(ctx: &mut Ctx<'_>, args: &CheckArgs) -> anyhow::Result<()> {
    let ipam = ipam(ctx).await?;
    let mut report = ipam.check().await.context("failed to check IPAM")?;
    report.version = REPORT_VERSION.to_string();
    let mut text = report.render(args.show_problem_ips);
    if args.show_all_ips {
        text.push_str(&all_ips(&report));
    }
    if let Some(path) = &args.output {
        let json = serde_json::to_string_pretty(&report).context("failed to encode the report")?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("failed to write the report to {path}"))?;
        text.push_str(&format!("Report written to {path}\n"));
    }
    ctx.out.write_all(text.as_bytes())?;
    if !report.is_clean() {
        anyhow::bail!(
            "ipam check found {} problem(s); see the report above",
            report.problems.len()
        );
    }
    Ok(())
}

/// One line per allocation checked (`--show-all-ips`).
fn all_ips(report: &CheckReport) -> String {
    let mut out = String::from("\nAllocations checked:\n");
    for a in report.allocations.values().flatten() {
        let state = if a.in_use {
            format!("in use by {}", a.owners.join(", "))
        } else {
            "not in use".to_string()
        };
        out.push_str(&format!(
            "  {} block {} handle {} sequence {}: {state}\n",
            a.ip,
            a.block,
            a.handle.as_deref().unwrap_or("<none>"),
            a.sequence_number
        ));
    }
    out
}

/// `ipam release`.
pub(super) async fn release(ctx: &mut Ctx<'_>, args: &ReleaseArgs) -> anyhow::Result<()> {
    if let Some(text) = &args.ip {
        let ip = parse_ip("--ip", text)?;
        let ipam = ipam(ctx).await?;
        let done = ipam
            .release_ips(&[ReleaseRequest::ip(ip)])
            .await
            .with_context(|| format!("failed to release {ip}"))?;
        if !done.not_allocated.is_empty() {
            anyhow::bail!("IP address {ip} is not assigned");
        }
        writeln!(ctx.out, "Successfully released IP address {ip}")?;
        return Ok(());
    }
    if args.from_report.is_empty() {
        anyhow::bail!(
            "specify the address to release with --ip=<IP>, or a report with --from-report=<REPORT>"
        );
    }
    // Read and check every report before connecting: a bad report changes nothing.
    let mut reports = Vec::new();
    for path in &args.from_report {
        reports.push((path.as_str(), read_report(Path::new(path))?));
    }
    let ipam = ipam(ctx).await?;
    let mut warnings = String::new();
    for (path, r) in &reports {
        if r.version != REPORT_VERSION {
            if !args.force {
                anyhow::bail!(
                    "the provided report ({path}) was produced using a different version ({}) of calicoctl (this is {REPORT_VERSION}). Refusing to release; re-run with --force to release anyway",
                    r.version
                );
            }
            warnings.push_str(&format!(
                "WARNING: Report {path} was produced using a different version of calicoctl. Ignoring due to --force option\n"
            ));
        }
    }
    let mut stale = Vec::new();
    for (path, r) in &reports {
        match ipam
            .changed_since(r.datastore_revision)
            .await
            .context("failed to read the datastore")?
        {
            None => {
                stale.clear();
                break;
            }
            Some((key, revision)) => stale.push(format!(
                "{path} was made at revision {}, and {key} changed at revision {revision}",
                r.datastore_revision
            )),
        }
    }
    if !stale.is_empty() {
        if !args.force {
            anyhow::bail!(
                "the provided reports are all stale - at least one should be up-to-date ({}). Generate a new report with `calicoctl ipam check -o <FILE>` while nothing allocates and try again, or re-run with --force (each address is still released only if its allocation is the one the report saw)",
                stale.join("; ")
            );
        }
        warnings.push_str(
            "WARNING: The provided reports are all stale. Ignoring due to --force option\n",
        );
    }
    ctx.out.write_all(warnings.as_bytes())?;
    let merged = merge(reports.into_iter().map(|(_, r)| r).collect());
    let text = release_merged(&ipam, &merged).await?;
    ctx.out.write_all(text.as_bytes())?;
    Ok(())
}

/// Reads a report from `ipam check -o`; the error names the file and what is wrong with it.
fn read_report(path: &Path) -> anyhow::Result<CheckReport> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the report {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a report of `calicoctl ipam check -o` (invalid JSON or fields)",
            path.display()
        )
    })
}

/// What every report lists as leaked: the allocations not in use (same address, sequence
/// number and handle in each) and the handles without addresses (same revision in each).
fn merge(reports: Vec<CheckReport>) -> CheckReport {
    let mut iter = reports.into_iter();
    let Some(mut merged) = iter.next() else {
        return CheckReport::default();
    };
    merged.allocations = merged
        .allocations
        .into_iter()
        .map(|(ip, list)| (ip, list.into_iter().filter(|a| !a.in_use).collect()))
        .collect::<BTreeMap<String, Vec<_>>>();
    for other in iter {
        let leaked: BTreeSet<(std::net::IpAddr, u64, Option<String>)> = other
            .allocations
            .values()
            .flatten()
            .filter(|a| !a.in_use)
            .map(|a| (a.ip, a.sequence_number, a.handle.clone()))
            .collect();
        for list in merged.allocations.values_mut() {
            list.retain(|a| leaked.contains(&(a.ip, a.sequence_number, a.handle.clone())));
        }
        let handles: BTreeSet<(String, String)> = other
            .leaked_handles
            .iter()
            .map(|h| (h.id.clone(), h.revision.clone()))
            .collect();
        merged
            .leaked_handles
            .retain(|h| handles.contains(&(h.id.clone(), h.revision.clone())));
    }
    merged.allocations.retain(|_, list| !list.is_empty());
    merged
}

/// Releases what the merged report lists; the lines calicoctl prints.
async fn release_merged(ipam: &Ipam, report: &CheckReport) -> anyhow::Result<String> {
    let mut out = String::new();
    let ips = report.release_requests().len();
    let handles = report.leaked_handles.len();
    if ips > 0 {
        out.push_str(&format!("Releasing {ips} old IPs...\n"));
    }
    if handles > 0 {
        out.push_str(&format!("Deleting {handles} handles...\n"));
    }
    let done = ipam
        .release_from_report(report)
        .await
        .context("failed to release from the report")?;
    if ips == 0 {
        out.push_str("Report didn't contain any leaked IPs to clean up.\n");
    } else {
        out.push_str(&format!(
            "Released {} IPs successfully\n",
            done.released.len()
        ));
        if !done.skipped.is_empty() {
            out.push_str(&format!(
                "{} addresses marked as leaked in the report had already been cleaned up or reused:\n",
                done.skipped.len()
            ));
            for (ip, why) in &done.skipped {
                out.push_str(&format!("  {ip}: {why}\n"));
            }
        }
    }
    if handles == 0 {
        out.push_str("Report didn't contain any handles to clean up.\n");
    } else {
        out.push_str(&format!(
            "Released {} handles; {} skipped; 0 errors.\n",
            done.handles_deleted.len(),
            done.handles_skipped.len()
        ));
    }
    Ok(out)
}
