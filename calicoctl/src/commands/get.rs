//! `get KIND [NAME...]` and `get -f FILE`: tables (`ps`, `wide`, `custom-columns=...`), YAML
//! and JSON; `-n`/`-A` for namespaced kinds; `-l` filters a listing by a Calico selector over
//! the resources' labels.

use anyhow::Context as _;
use fabric_api::selector::Selector;
use fabric_api::{AnyResource, BGPConfiguration, DEFAULT_AS_NUMBER, Kind};
use fabric_datastore::client::{decode, kind_prefix};
use fabric_datastore::{Client, ClientError};

use super::common::{describe, namespace_for_kind, resolve_namespace};
use super::resources::load_input;
use crate::cli::GetArgs;
use crate::context::Ctx;
use crate::kinds;
use crate::output::columns::{CellContext, cell, columns};
use crate::output::table;
use crate::output::yaml::Printable;

/// An `-o` format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    Ps,
    Wide,
    Yaml,
    Json,
    CustomColumns(Vec<String>),
}

impl Format {
    fn parse(text: &str) -> anyhow::Result<Format> {
        Ok(match text {
            "ps" => Format::Ps,
            "wide" => Format::Wide,
            "yaml" | "yml" => Format::Yaml,
            "json" => Format::Json,
            _ => {
                let (key, value) = text.split_once('=').unwrap_or((text, ""));
                match key {
                    "custom-columns" if value.is_empty() => {
                        anyhow::bail!("need to specify at least one column")
                    }
                    "custom-columns" => Format::CustomColumns(
                        value
                            .split(',')
                            .map(|c| c.trim().to_ascii_uppercase())
                            .collect(),
                    ),
                    "go-template" | "go-template-file" => anyhow::bail!(
                        "output format '{key}' is not supported by this calicoctl; use -o yaml, \
                         -o json or -o custom-columns=COLUMN,..."
                    ),
                    _ => anyhow::bail!(
                        "unrecognized output format '{text}'; expected one of: ps, wide, yaml, \
                         json, custom-columns=COLUMN,..."
                    ),
                }
            }
        })
    }
}

/// `get`.
pub(crate) async fn get(ctx: &mut Ctx<'_>, args: &GetArgs) -> anyhow::Result<()> {
    let format = Format::parse(&args.output)?;
    let selector = args
        .selector
        .as_deref()
        .map(|text| {
            Selector::parse(text).map_err(|e| anyhow::anyhow!("invalid selector {text:?}: {e}"))
        })
        .transpose()?;
    let print_namespace = args.all_namespaces || args.namespace.is_some();
    let (printable, errors) = if args.file.filename.is_some() {
        if args.kind.is_some() {
            anyhow::bail!("give either KIND [NAME...] or -f FILENAME, not both");
        }
        if selector.is_some() {
            anyhow::bail!("--selector cannot be combined with -f; it filters listings of a kind");
        }
        let mut located = load_input(ctx, &args.file, "get")?;
        let mut targets = Vec::new();
        for l in &mut located {
            if let Some(e) = resolve_namespace(l, args.namespace.as_deref()) {
                anyhow::bail!("{e}");
            }
            targets.push((
                l.resource.kind(),
                l.resource.namespace().map(str::to_string),
                l.resource.name().to_string(),
            ));
        }
        let client = ctx.client().await?;
        get_named(&client, &targets, args.export).await?
    } else {
        let kind_text = args
            .kind
            .as_deref()
            .context("get needs a KIND (e.g. calicoctl get ippools) or -f FILENAME")?;
        let kind = kinds::resolve(kind_text)?;
        let namespace = namespace_for_kind(kind, args.namespace.as_deref(), args.all_namespaces)?;
        if args.names.is_empty() {
            let client = ctx.client().await?;
            (
                list(&client, kind, namespace.as_deref(), selector.as_ref()).await?,
                Vec::new(),
            )
        } else {
            if args.names.iter().any(String::is_empty) {
                anyhow::bail!("resource name may not be empty");
            }
            if selector.is_some() {
                anyhow::bail!("--selector cannot be combined with names; give one or the other");
            }
            if kind.is_namespaced() && namespace.is_none() {
                anyhow::bail!(
                    "cannot use --all-namespaces to get a {kind} by name; give its namespace with -n"
                );
            }
            let targets: Vec<_> = args
                .names
                .iter()
                .map(|n| (kind, namespace.clone(), n.clone()))
                .collect();
            let client = ctx.client().await?;
            get_named(&client, &targets, args.export).await?
        }
    };
    let text = match &format {
        Format::Yaml => {
            if has_items(&printable) {
                printable.to_yaml()?
            } else {
                String::new()
            }
        }
        Format::Json => {
            if has_items(&printable) {
                printable.to_json()?
            } else {
                String::new()
            }
        }
        Format::Ps | Format::Wide | Format::CustomColumns(_) => {
            let cell_ctx = cell_context(ctx, &printable, &format).await?;
            tables(&printable, &format, print_namespace, &cell_ctx)?
        }
    };
    ctx.out.write_all(text.as_bytes())?;
    if !errors.is_empty() {
        anyhow::bail!(errors.join("\n"));
    }
    Ok(())
}

/// Whether there is anything to print in YAML or JSON (a listing always prints).
fn has_items(p: &Printable) -> bool {
    match p {
        Printable::Named(items) => !items.is_empty(),
        Printable::List { .. } => true,
    }
}

/// Every resource of `kind` (in `namespace`, or all), sorted by namespace and name (tiers by
/// order), filtered by `selector`.
async fn list(
    client: &Client,
    kind: Kind,
    namespace: Option<&str>,
    selector: Option<&Selector>,
) -> anyhow::Result<Printable> {
    let listing = client
        .backend()
        .list(&kind_prefix(kind, namespace))
        .await
        .with_context(|| format!("failed to get resources: listing {kind}"))?;
    let mut items = Vec::new();
    for kv in &listing.items {
        match decode(kv) {
            Some(Ok(res)) if res.kind() == kind => items.push(res),
            Some(Ok(_)) | None => {}
            Some(Err(e)) => anyhow::bail!("failed to get resources: {}", describe(&e)),
        }
    }
    if let Some(sel) = selector {
        items.retain(|r| sel.matches(&r.metadata().labels));
    }
    if kind == Kind::Tier {
        // calicoctl lists tiers by order, unordered ones last.
        items.sort_by(|a, b| {
            let order = |r: &AnyResource| match r {
                AnyResource::Tier(t) => t.spec.order,
                _ => None,
            };
            match (order(a), order(b)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        });
    }
    Ok(Printable::List {
        kind,
        revision: Some(listing.revision.to_string()),
        items,
    })
}

/// The named resources that exist, and one error line for each that does not.
async fn get_named(
    client: &Client,
    targets: &[(Kind, Option<String>, String)],
    export: bool,
) -> anyhow::Result<(Printable, Vec<String>)> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (kind, namespace, name) in targets {
        match client.get_any(*kind, namespace.as_deref(), name).await {
            Ok(mut res) => {
                if export {
                    let meta = res.metadata_mut();
                    meta.namespace = None;
                    meta.uid = None;
                    meta.resource_version = None;
                    meta.creation_timestamp = None;
                    meta.deletion_timestamp = None;
                    meta.deletion_grace_period_seconds = None;
                }
                found.push(res);
            }
            Err(e @ ClientError::NotFound { .. }) => errors.push(describe(&e)),
            Err(e) => anyhow::bail!("failed to get resources: {}", describe(&e)),
        }
    }
    Ok((Printable::Named(found), errors))
}

/// Reads what the cells need: the cluster AS number when Node ASNs are shown.
async fn cell_context(
    ctx: &mut Ctx<'_>,
    printable: &Printable,
    format: &Format,
) -> anyhow::Result<CellContext> {
    let shows_nodes = match printable {
        Printable::List { kind, .. } => *kind == Kind::Node,
        Printable::Named(items) => items.iter().any(|r| r.kind() == Kind::Node),
    };
    let shows_asn = match format {
        Format::Wide => true,
        Format::CustomColumns(c) => c.iter().any(|h| h == "ASN"),
        _ => false,
    };
    if !(shows_nodes && shows_asn) {
        return Ok(CellContext::default());
    }
    let client = ctx.client().await?;
    let global_as_number = match client.get::<BGPConfiguration>(None, "default").await {
        Ok(cfg) => cfg
            .spec
            .as_number
            .map_or_else(|| DEFAULT_AS_NUMBER.to_string(), |a| a.to_string()),
        Err(ClientError::NotFound { .. }) => DEFAULT_AS_NUMBER.to_string(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the default BGPConfiguration");
            "unknown".into()
        }
    };
    Ok(CellContext { global_as_number })
}

/// The tables: one for a listing, one per resource for named resources (as calicoctl prints).
fn tables(
    printable: &Printable,
    format: &Format,
    print_namespace: bool,
    cell_ctx: &CellContext,
) -> anyhow::Result<String> {
    let table_of = |kind: Kind, items: &[AnyResource]| -> anyhow::Result<String> {
        let cols = columns(kind);
        let mut headings: Vec<String> = match format {
            Format::Wide => cols.wide.iter().map(|h| h.to_string()).collect(),
            Format::CustomColumns(c) => c.clone(),
            _ => cols.ps.iter().map(|h| h.to_string()).collect(),
        };
        if let Some(bad) = headings.iter().find(|h| !cols.all.contains(&h.as_str())) {
            anyhow::bail!(
                "unknown heading {bad} for {kind}; valid headings are: {}",
                cols.all.join(", ")
            );
        }
        let custom = matches!(format, Format::CustomColumns(_));
        if print_namespace && cols.namespace_column && !custom {
            headings.insert(0, "NAMESPACE".into());
        }
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|r| headings.iter().map(|h| cell(r, h, cell_ctx)).collect())
            .collect();
        Ok(table::render(&headings, &rows))
    };
    match printable {
        Printable::List { kind, items, .. } => table_of(*kind, items),
        Printable::Named(items) => {
            let mut out = String::new();
            for r in items {
                out.push_str(&table_of(r.kind(), std::slice::from_ref(r))?);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_formats_parse_like_calicoctl() {
        assert_eq!(Format::parse("ps").unwrap(), Format::Ps);
        assert_eq!(Format::parse("yml").unwrap(), Format::Yaml);
        assert_eq!(
            Format::parse("custom-columns=name,cidr").unwrap(),
            Format::CustomColumns(vec!["NAME".into(), "CIDR".into()])
        );
        assert!(
            Format::parse("go-template={{.Name}}")
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
        assert_eq!(
            Format::parse("xml").unwrap_err().to_string(),
            "unrecognized output format 'xml'; expected one of: ps, wide, yaml, json, \
             custom-columns=COLUMN,..."
        );
        assert!(Format::parse("custom-columns=").is_err());
    }
}
