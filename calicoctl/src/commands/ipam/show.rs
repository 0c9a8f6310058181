//! `ipam show`: the usage table (pools, and blocks with `--show-blocks`), one address
//! (`--ip`), the borrowed addresses (`--show-borrowed`) and the configuration
//! (`--show-configuration`), shaped like calicoctl's output.

use anyhow::Context as _;
use fabric_ipam::{BlockUsage, Ipam};

use super::table::{Align, boxed, go_g5, with_percentage};
use super::{ShowArgs, ipam, parse_ip};
use crate::context::Ctx;

/// `ipam show`.
pub(super) async fn show(ctx: &mut Ctx<'_>, args: &ShowArgs) -> anyhow::Result<()> {
    // Check the input before connecting: bad input changes nothing and needs no datastore.
    let ip = args
        .ip
        .as_deref()
        .map(|text| parse_ip("--ip", text))
        .transpose()?;
    let ipam = ipam(ctx).await?;
    let text = if let Some(ip) = ip {
        show_ip(&ipam, ip).await?
    } else if args.show_borrowed {
        show_borrowed(&ipam).await?
    } else if args.show_configuration {
        show_configuration(&ipam).await?
    } else {
        show_usage(&ipam, args.show_blocks).await?
    };
    ctx.out.write_all(text.as_bytes())?;
    Ok(())
}

const USAGE_HEADER: [&str; 6] = [
    "GROUPING",
    "CIDR",
    "IPS TOTAL",
    "IPS IN USE",
    "IPS RESERVED",
    "IPS FREE",
];
const USAGE_ALIGN: [Align; 6] = [
    Align::Left,
    Align::Left,
    Align::Right,
    Align::Right,
    Align::Right,
    Align::Right,
];

fn usage_row(
    grouping: &str,
    cidr: String,
    total: u128,
    in_use: u128,
    reserved: u128,
    free: u128,
) -> Vec<String> {
    vec![
        grouping.to_string(),
        cidr,
        go_g5(total as f64),
        with_percentage(in_use, total),
        with_percentage(reserved, total),
        with_percentage(free, total),
    ]
}

fn block_row(b: &BlockUsage) -> Vec<String> {
    usage_row(
        "Block",
        b.cidr.to_string(),
        b.total,
        b.in_use,
        b.reserved,
        b.free,
    )
}

async fn show_usage(ipam: &Ipam, show_blocks: bool) -> anyhow::Result<String> {
    let pools = ipam
        .usage()
        .await
        .context("failed to read the IP pools and IPAM blocks")?;
    let mut rows = Vec::new();
    for pool in &pools {
        rows.push(usage_row(
            "IP Pool",
            pool.cidr.to_string(),
            pool.total,
            pool.in_use,
            pool.reserved,
            pool.free,
        ));
        if show_blocks {
            rows.extend(pool.blocks.iter().map(block_row));
        }
    }
    if show_blocks {
        // Blocks whose pool is gone have no pool row, as in calicoctl.
        let orphans = ipam
            .usage_outside_pools()
            .await
            .context("failed to read the IPAM blocks")?;
        rows.extend(orphans.iter().map(block_row));
    }
    Ok(boxed(&USAGE_HEADER, &USAGE_ALIGN, &rows))
}

async fn show_ip(ipam: &Ipam, ip: std::net::IpAddr) -> anyhow::Result<String> {
    let info = ipam
        .get_assignment_attributes(ip)
        .await
        .with_context(|| format!("failed to look up {ip}"))?;
    let Some(info) = info else {
        return Ok(format!("IP {ip} is not currently assigned\n"));
    };
    let mut out = format!("IP {ip} is in use\n");
    match &info.handle {
        Some(h) => out.push_str(&format!("Handle ID: {h}\n")),
        None => out.push_str("Handle ID: <none>\n"),
    }
    if info.attrs.is_empty() {
        out.push_str("No Active Owner attributes defined\n");
    } else {
        out.push_str("Active Owner Attributes:\n");
        for (k, v) in &info.attrs {
            out.push_str(&format!("  {k}: {v}\n"));
        }
    }
    out.push_str(&format!(
        "Block: {} (affine to {})\nSequence number: {}\n",
        info.block,
        info.block_owner.as_deref().unwrap_or("no node"),
        info.sequence
    ));
    Ok(out)
}

async fn show_borrowed(ipam: &Ipam) -> anyhow::Result<String> {
    let borrowed = ipam
        .borrowed()
        .await
        .context("failed to read the IPAM blocks")?;
    let rows: Vec<Vec<String>> = borrowed
        .iter()
        .map(|b| {
            vec![
                b.ip.to_string(),
                b.borrowing_node.clone(),
                b.block.to_string(),
                b.block_owner.clone().unwrap_or_default(),
                b.kind.clone(),
                b.allocated_to.clone(),
            ]
        })
        .collect();
    Ok(boxed(
        &[
            "IP",
            "BORROWING-NODE",
            "BLOCK",
            "BLOCK OWNER",
            "TYPE",
            "ALLOCATED-TO",
        ],
        &[],
        &rows,
    ))
}

async fn show_configuration(ipam: &Ipam) -> anyhow::Result<String> {
    let c = ipam
        .config()
        .await
        .context("failed to read the IPAM configuration")?;
    let rows = vec![
        vec!["StrictAffinity".into(), c.strict_affinity.to_string()],
        vec![
            "AutoAllocateBlocks".into(),
            c.auto_allocate_blocks.to_string(),
        ],
        vec!["MaxBlocksPerHost".into(), c.max_blocks_per_host.to_string()],
        vec![
            "IPCooldownSeconds".into(),
            c.ip_cooldown_seconds.to_string(),
        ],
    ];
    Ok(boxed(&["PROPERTY", "VALUE"], &[], &rows))
}
