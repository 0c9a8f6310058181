//! `create`, `apply`, `replace`, `validate` and `delete`.
//!
//! The writing commands check the whole input before they write anything: every document is
//! parsed and validated, then checked against a private copy of the datastore's resources
//! (an in-memory store) in file order, each one written into that copy, so conflicts between
//! documents of the same input (two overlapping pools, a policy before its tier is created)
//! are found as well as conflicts with what is stored. Only when every document passes are
//! the resources written, in order. A write that still fails (another writer got there
//! first) is reported for that resource; `create` and `apply` go on with the others, as
//! calicoctl does, `replace` stops.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use fabric_api::document::DocumentError;
use fabric_datastore::client::resource_key;
use fabric_datastore::keys::RESOURCES_PREFIX;
use fabric_datastore::{Client, ClientError, MemBackend, Revision};

use super::common::{
    describe, document_errors, error_report, identifier, namespace_for_kind, resolve_namespace,
    single_kind,
};
use crate::cli::{DeleteArgs, FileArgs, WriteArgs};
use crate::context::Ctx;
use crate::input::{self, InputError, Located};
use crate::kinds;

/// Which writing command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// `create` (`--skip-exists`: resources that exist count as done).
    Create {
        /// Skip resources that already exist.
        skip_exists: bool,
    },
    /// `apply`.
    Apply,
    /// `replace`.
    Replace,
    /// `validate`: every check, against an empty store, and no write.
    Validate,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Apply => "apply",
            Action::Replace => "replace",
            Action::Validate => "validate",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Action::Create { .. } => "created",
            Action::Apply => "applied",
            Action::Replace => "replaced",
            Action::Validate => "validated",
        }
    }
}

/// How a list of resources is described in messages: `'IPPool' resource(s)` when they are all
/// of one kind.
fn kind_phrase(resources: &[Located]) -> Option<String> {
    single_kind(resources.iter().map(|l| &l.resource)).map(|k| format!("'{k}'"))
}

/// The first line of a failure that wrote nothing.
fn failure_header(action: Action, resources: &[Located]) -> String {
    let verb = action.verb();
    let tail = if action == Action::Validate {
        ""
    } else {
        "; nothing was written"
    };
    match (resources.len(), kind_phrase(resources)) {
        (1, Some(kind)) => format!("failed to {verb} {kind} resource{tail}"),
        (_, Some(kind)) => format!("failed to {verb} any {kind} resources{tail}"),
        _ => format!("failed to {verb} any resources{tail}"),
    }
}

/// Reads `-f`, or explains that it is needed.
pub(crate) fn load_input(
    ctx: &mut Ctx<'_>,
    file: &FileArgs,
    action: &str,
) -> anyhow::Result<Vec<Located>> {
    let filename = file.filename.as_deref().with_context(|| {
        format!("{action} needs -f FILENAME (a file, a directory, or - for stdin)")
    })?;
    match input::load(filename, file.recursive, file.skip_empty, ctx.stdin) {
        Ok(located) => Ok(located),
        Err(InputError::Read(e)) => Err(e.context("failed to execute command")),
        Err(InputError::Empty(message)) => anyhow::bail!("{message}"),
        Err(InputError::Invalid(errors)) => {
            let tail = if action == "validate" {
                ""
            } else {
                "; nothing was written"
            };
            anyhow::bail!(error_report(
                &format!("failed to execute command: invalid input{tail}"),
                &errors
            ))
        }
    }
}

/// `create`, `apply`, `replace` or `validate` `-f ...`.
pub(crate) async fn write(
    ctx: &mut Ctx<'_>,
    args: &WriteArgs,
    action: Action,
) -> anyhow::Result<()> {
    let mut located = load_input(ctx, &args.file, action.verb())?;
    if located.is_empty() {
        writeln!(ctx.out, "No resources specified")?;
        return Ok(());
    }
    let mut errors: Vec<DocumentError> = Vec::new();
    for l in &mut located {
        if let Some(e) = resolve_namespace(l, args.namespace.as_deref()) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        anyhow::bail!(error_report(&failure_header(action, &located), &errors));
    }
    let client = if action == Action::Validate {
        None
    } else {
        Some(ctx.client().await?)
    };
    let errors = precheck(&located, client.as_ref(), action).await?;
    if !errors.is_empty() {
        anyhow::bail!(error_report(&failure_header(action, &located), &errors));
    }
    let Some(client) = client else {
        return report(ctx.out, action, &located, located.len(), &[]);
    };
    let (done, failures) = write_all(&client, &located, action).await?;
    report(ctx.out, action, &located, done, &failures)
}

/// Prints the outcome of the writes: calicoctl's success line, or "Partial success" and an
/// error with one line per failed resource.
fn report(
    out: &mut dyn std::io::Write,
    action: Action,
    located: &[Located],
    done: usize,
    failures: &[DocumentError],
) -> anyhow::Result<()> {
    let kind = kind_phrase(located);
    if failures.is_empty() {
        match &kind {
            Some(k) => writeln!(out, "Successfully {} {done} {k} resource(s)", action.past())?,
            None => writeln!(out, "Successfully {} {done} resource(s)", action.past())?,
        }
        return Ok(());
    }
    if done > 0 {
        let total = located.len();
        let what = match &kind {
            Some(k) => format!("{k} resources"),
            None => "resources".into(),
        };
        let first = if action == Action::Replace {
            "the first "
        } else {
            ""
        };
        writeln!(
            out,
            "Partial success: {} {first}{done} out of {total} {what}:",
            action.past()
        )?;
    }
    anyhow::bail!(error_report("hit error", failures))
}

/// Checks every resource, in order, against a private copy of the stored resources (an
/// empty store for `validate`); returns every problem.
async fn precheck(
    located: &[Located],
    store: Option<&Client>,
    action: Action,
) -> anyhow::Result<Vec<DocumentError>> {
    let mem = Arc::new(MemBackend::new());
    let mut stored_revisions: HashMap<String, Revision> = HashMap::new();
    if let Some(client) = store {
        let listing = client
            .backend()
            .list(RESOURCES_PREFIX)
            .await
            .context("failed to read the stored resources")?;
        for kv in listing.items {
            use fabric_datastore::Backend as _;
            mem.create(&kv.key, &kv.value)
                .await
                .context("failed to copy the stored resources")?;
            stored_revisions.insert(kv.key, kv.mod_revision);
        }
    }
    let overlay = Client::new(mem);
    let mut errors = Vec::new();
    for l in located {
        let res = &l.resource;
        let rv = res
            .metadata()
            .resource_version
            .clone()
            .filter(|v| !v.is_empty());
        if let (Some(rv), Action::Apply | Action::Replace) = (&rv, action) {
            let key = resource_key(res.kind(), res.namespace(), res.name());
            if let Some(current) = stored_revisions.get(&key)
                && current.to_string() != *rv
            {
                let id = identifier(res.kind(), res.namespace(), res.name());
                errors.push(l.error(
                    "metadata.resourceVersion",
                    format!(
                        "update conflict: {id}: resource version '{rv}' is out of date \
                         (latest: {current}); get the resource again and redo the change"
                    ),
                ));
                continue;
            }
        }
        let mut candidate = res.clone();
        candidate.metadata_mut().resource_version = None;
        let result = match action {
            Action::Create { .. } => overlay.create_any(candidate).await,
            Action::Apply | Action::Validate => overlay.apply_any(candidate).await,
            Action::Replace => overlay.replace_any(candidate).await,
        };
        match result {
            Ok(_) => {}
            Err(ClientError::AlreadyExists { .. })
                if action == (Action::Create { skip_exists: true }) => {}
            Err(e) => match document_errors(l, &e) {
                Some(lines) => errors.extend(lines),
                None => {
                    return Err(anyhow::anyhow!(describe(&e)).context("failed to check the input"));
                }
            },
        }
    }
    Ok(errors)
}

/// Writes every resource in order; returns how many were written and the failures.
async fn write_all(
    client: &Client,
    located: &[Located],
    action: Action,
) -> anyhow::Result<(usize, Vec<DocumentError>)> {
    let mut done = 0;
    let mut failures = Vec::new();
    for l in located {
        let res = l.resource.clone();
        let result = match action {
            Action::Create { .. } => client.create_any(res).await,
            Action::Apply => client.apply_any_at_version(res).await,
            Action::Replace => client.replace_any(res).await,
            Action::Validate => Ok(res),
        };
        match result {
            Ok(_) => done += 1,
            Err(ClientError::AlreadyExists { .. })
                if action == (Action::Create { skip_exists: true }) =>
            {
                done += 1;
            }
            Err(e) => {
                tracing::info!(resource = %identifier(l.resource.kind(), l.resource.namespace(), l.resource.name()), error = %e, "write failed");
                let lines =
                    document_errors(l, &e).unwrap_or_else(|| vec![l.error("", describe(&e))]);
                failures.extend(lines);
                if action == Action::Replace {
                    break;
                }
            }
        }
    }
    Ok((done, failures))
}

/// One resource `delete` works on.
struct Target {
    kind: fabric_api::Kind,
    namespace: Option<String>,
    name: String,
    resource_version: Option<String>,
}

/// `delete KIND NAME...` or `delete -f ...`.
pub(crate) async fn delete(ctx: &mut Ctx<'_>, args: &DeleteArgs) -> anyhow::Result<()> {
    let targets = if args.file.filename.is_some() {
        if args.kind.is_some() {
            anyhow::bail!("give either KIND NAME... or -f FILENAME, not both");
        }
        let mut located = load_input(ctx, &args.file, "delete")?;
        if located.is_empty() {
            writeln!(ctx.out, "No resources specified")?;
            return Ok(());
        }
        let mut errors = Vec::new();
        for l in &mut located {
            if let Some(e) = resolve_namespace(l, args.namespace.as_deref()) {
                errors.push(e);
            }
        }
        if !errors.is_empty() {
            anyhow::bail!(error_report(
                "failed to delete any resources; nothing was deleted",
                &errors
            ));
        }
        located
            .into_iter()
            .map(|l| Target {
                kind: l.resource.kind(),
                namespace: l.resource.namespace().map(str::to_string),
                name: l.resource.name().to_string(),
                resource_version: l.resource.metadata().resource_version.clone(),
            })
            .collect::<Vec<_>>()
    } else {
        let kind_text = args.kind.as_deref().context(
            "delete needs a KIND and NAME... (e.g. calicoctl delete ippool my-pool) or -f FILENAME",
        )?;
        let kind = kinds::resolve(kind_text)?;
        if args.names.is_empty() {
            anyhow::bail!(
                "delete needs the name of the {kind} to delete: calicoctl delete {kind_text} NAME..."
            );
        }
        if args.names.iter().any(String::is_empty) {
            anyhow::bail!("resource name may not be empty");
        }
        let namespace = namespace_for_kind(kind, args.namespace.as_deref(), false)?;
        args.names
            .iter()
            .map(|name| Target {
                kind,
                namespace: namespace.clone(),
                name: name.clone(),
                resource_version: None,
            })
            .collect()
    };
    let client = ctx.client().await?;
    let mut done = 0;
    let mut failures = Vec::new();
    let kinds: Vec<_> = targets.iter().map(|t| t.kind).collect();
    let single = kinds
        .first()
        .filter(|k| kinds.iter().all(|o| o == *k))
        .copied();
    for t in &targets {
        let result = client
            .delete_any(
                t.kind,
                t.namespace.as_deref(),
                &t.name,
                t.resource_version.as_deref().filter(|v| !v.is_empty()),
            )
            .await;
        match result {
            Ok(_) => done += 1,
            Err(ClientError::NotFound { .. }) if args.skip_not_exists => done += 1,
            Err(e) => failures.push(match single {
                Some(kind) => format!("Failed to delete '{kind}' resource: {}", describe(&e)),
                None => format!("Failed to delete resource: {}", describe(&e)),
            }),
        }
    }
    if done > 0 {
        match single {
            Some(kind) => writeln!(ctx.out, "Successfully deleted {done} '{kind}' resource(s)")?,
            None => writeln!(ctx.out, "Successfully deleted {done} resource(s)")?,
        }
    }
    if !failures.is_empty() {
        anyhow::bail!(failures.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_api::Kind;
    use fabric_api::document::parse_documents;

    fn located(text: &str) -> Vec<Located> {
        parse_documents(text, "pools.yaml")
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, resource)| Located {
                resource,
                source: "pools.yaml".into(),
                index: i + 1,
                prefix: String::new(),
            })
            .collect()
    }

    const POOLS: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.1.0.0/16}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: b}\nspec: {cidr: 10.2.0.0/16}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: c}\nspec: {cidr: 10.3.0.0/16}\n";

    #[tokio::test]
    async fn a_write_lost_to_a_concurrent_writer_is_reported_for_that_resource() {
        let client = Client::new(Arc::new(MemBackend::new()));
        let input = located(POOLS);
        let action = Action::Create { skip_exists: false };
        assert!(
            precheck(&input, Some(&client), action)
                .await
                .unwrap()
                .is_empty()
        );
        // Another writer creates pool b between the check and the writes.
        client.create_any(input[1].resource.clone()).await.unwrap();
        let (done, failures) = write_all(&client, &input, action).await.unwrap();
        assert_eq!(done, 2);
        assert_eq!(failures.len(), 1);
        let mut out = Vec::new();
        let e = report(&mut out, action, &input, done, &failures).unwrap_err();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Partial success: created 2 out of 3 'IPPool' resources:\n"
        );
        assert_eq!(
            e.to_string(),
            "hit error:\npools.yaml: document 2 (IPPool/b): metadata.name: resource already \
             exists: IPPool(b); use apply or replace to change it"
        );
    }

    #[tokio::test]
    async fn replace_stops_at_the_first_failed_write() {
        let client = Client::new(Arc::new(MemBackend::new()));
        let input = located(POOLS);
        for l in &input {
            client.create_any(l.resource.clone()).await.unwrap();
        }
        assert!(
            precheck(&input, Some(&client), Action::Replace)
                .await
                .unwrap()
                .is_empty()
        );
        client
            .delete_any(Kind::IPPool, None, "b", None)
            .await
            .unwrap();
        let (done, failures) = write_all(&client, &input, Action::Replace).await.unwrap();
        assert_eq!((done, failures.len()), (1, 1));
        let mut out = Vec::new();
        report(&mut out, Action::Replace, &input, done, &failures).unwrap_err();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Partial success: replaced the first 1 out of 3 'IPPool' resources:\n"
        );
    }
}
