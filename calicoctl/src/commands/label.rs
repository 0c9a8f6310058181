//! `label KIND NAME key=value [--overwrite]` and `label KIND NAME key --remove`, with
//! calicoctl's messages; the change is written with compare-and-swap and validated like any
//! other write (label names and values follow the Kubernetes rules).

use super::common::{describe, namespace_for_kind};
use crate::cli::LabelArgs;
use crate::context::Ctx;
use crate::kinds;

/// `label`.
pub(crate) async fn label(ctx: &mut Ctx<'_>, args: &LabelArgs) -> anyhow::Result<()> {
    let kind = kinds::resolve(&args.kind)?;
    let namespace = namespace_for_kind(kind, args.namespace.as_deref(), false)?;
    let (key, value) = if args.remove {
        (args.label.clone(), String::new())
    } else {
        match args.label.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => anyhow::bail!(
                "invalid label {}: expected key=value (or key with --remove)",
                args.label
            ),
        }
    };
    if key.is_empty() {
        anyhow::bail!("invalid label {}: the key is empty", args.label);
    }
    let (kind_text, name) = (&args.kind, &args.name);
    let client = ctx.client().await?;
    let mut res = client
        .get_any(kind, namespace.as_deref(), name)
        .await
        .map_err(|e| anyhow::anyhow!("failed to get {kind_text} {name}, error {}", describe(&e)))?;
    let labels = &mut res.metadata_mut().labels;
    let mut overwritten = false;
    if args.remove {
        if labels.remove(&key).is_none() {
            anyhow::bail!("cannot remove label of {kind_text} {name}, key {key} does not exist");
        }
    } else {
        match labels.get(&key) {
            Some(old) if *old != value && !args.overwrite => anyhow::bail!(
                "failed to update label of {kind_text} {name}, key {key} is already present. \
                 please use '--overwrite' to set a new value"
            ),
            Some(_) => overwritten = true,
            None => {}
        }
        labels.insert(key.clone(), value);
    }
    client.replace_any(res).await.map_err(|e| {
        anyhow::anyhow!(
            "failed to update {kind_text} {name}, label not changed: {}",
            describe(&e)
        )
    })?;
    if args.remove {
        writeln!(
            ctx.out,
            "Successfully removed label {key} from {kind_text} {name}"
        )?;
    } else if overwritten {
        writeln!(
            ctx.out,
            "Successfully updated label {key} on {kind_text} {name}"
        )?;
    } else {
        writeln!(
            ctx.out,
            "Successfully set label {key} on {kind_text} {name}"
        )?;
    }
    Ok(())
}
