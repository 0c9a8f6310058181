//! Helpers the resource commands share: namespace rules (`-n`, `-A`, the `default`
//! namespace), calicoctl's wording of datastore errors, and the kind summary in messages.

use fabric_api::document::DocumentError;
use fabric_api::{AnyResource, Kind};
use fabric_datastore::ClientError;

use crate::input::Located;

/// The namespace calicoctl uses when none is given.
pub(crate) const DEFAULT_NAMESPACE: &str = "default";

/// The namespace to use for `kind` given `-n` and `-A` on the command line: `Some(ns)` for
/// one namespace, `None` for every namespace (only with `-A`) or for a cluster-scoped kind.
pub(crate) fn namespace_for_kind(
    kind: Kind,
    namespace: Option<&str>,
    all_namespaces: bool,
) -> anyhow::Result<Option<String>> {
    if kind.is_namespaced() {
        match (namespace, all_namespaces) {
            (Some(_), true) => {
                anyhow::bail!(
                    "cannot use both --namespace and --all-namespaces flags at the same time"
                )
            }
            (Some(""), false) => anyhow::bail!("--namespace must not be empty"),
            (Some(ns), false) => Ok(Some(ns.to_string())),
            (None, true) => Ok(None),
            (None, false) => Ok(Some(DEFAULT_NAMESPACE.to_string())),
        }
    } else if let Some(ns) = namespace {
        anyhow::bail!(
            "{kind} is not namespaced: remove --namespace {ns:?} ({kind} resources are cluster-wide)"
        )
    } else if all_namespaces {
        anyhow::bail!(
            "{kind} is not namespaced: remove --all-namespaces ({kind} resources are cluster-wide)"
        )
    } else {
        Ok(None)
    }
}

/// Fills in or checks the namespace of a resource read from a file, as calicoctl does: a
/// namespaced resource without one gets `-n NS` or `default`; one that names a different
/// namespace than `-n` is an error; `-n` with a cluster-scoped resource is an error.
/// Returns the error, if any.
pub(crate) fn resolve_namespace(
    located: &mut Located,
    namespace: Option<&str>,
) -> Option<DocumentError> {
    let kind = located.resource.kind();
    let own = located
        .resource
        .namespace()
        .filter(|ns| !ns.is_empty())
        .map(str::to_string);
    if kind.is_namespaced() {
        match (own, namespace) {
            (None, cli) => {
                let ns = cli.unwrap_or(DEFAULT_NAMESPACE).to_string();
                located.resource.metadata_mut().namespace = Some(ns);
                None
            }
            (Some(own), Some(cli)) if own != cli => Some(located.error(
                "metadata.namespace",
                format!("{own:?} does not match --namespace {cli:?}"),
            )),
            (Some(_), _) => None,
        }
    } else {
        namespace.map(|cli| {
            located.error(
                "metadata.namespace",
                format!(
                    "--namespace {cli:?} given, but {kind} is not namespaced (it is cluster-wide)"
                ),
            )
        })
    }
}

/// `IPPool(name)` or `NetworkPolicy(ns/name)`, as calicoctl names a resource in errors.
pub(crate) fn identifier(kind: Kind, namespace: Option<&str>, name: &str) -> String {
    match namespace.filter(|ns| !ns.is_empty() && kind.is_namespaced()) {
        Some(ns) => format!("{kind}({ns}/{name})"),
        None => format!("{kind}({name})"),
    }
}

/// One line for a datastore error, in calicoctl's words where it has them.
pub(crate) fn describe(e: &ClientError) -> String {
    match e {
        ClientError::NotFound { kind, name } => {
            format!("resource does not exist: {kind}({name})")
        }
        ClientError::AlreadyExists { kind, name } => {
            format!("resource already exists: {kind}({name})")
        }
        ClientError::Conflict {
            kind,
            name,
            expected,
        } => format!(
            "update conflict: {kind}({name}): resource version '{expected}' is out of date; \
             get the resource again and redo the change"
        ),
        ClientError::Invalid { errors, .. } => errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        other => chain(other),
    }
}

pub(crate) use fabric_api::error_chain as chain;

/// The manifest errors of one resource's failed datastore operation, or `None` when the
/// failure is not about the resource (the datastore is down): then the command stops.
pub(crate) fn document_errors(located: &Located, e: &ClientError) -> Option<Vec<DocumentError>> {
    let one = |field: &str, message: String| Some(vec![located.error(field, message)]);
    match e {
        ClientError::Invalid { errors, .. } => Some(
            errors
                .iter()
                .map(|fe| located.error(&fe.field, fe.message()))
                .collect(),
        ),
        ClientError::AlreadyExists { .. } => one(
            "metadata.name",
            format!("{}; use apply or replace to change it", describe(e)),
        ),
        ClientError::NotFound { .. } => one(
            "metadata.name",
            format!("{}; use create or apply to make it", describe(e)),
        ),
        ClientError::Conflict { .. } => one("metadata.resourceVersion", describe(e)),
        ClientError::Corrupt { .. } | ClientError::Backend(_) => None,
    }
}

/// The one kind every resource has, if they all have the same.
pub(crate) fn single_kind<'r>(
    resources: impl IntoIterator<Item = &'r AnyResource>,
) -> Option<Kind> {
    let mut kinds = resources.into_iter().map(AnyResource::kind);
    let first = kinds.next()?;
    kinds.all(|k| k == first).then_some(first)
}

/// Writes every manifest error on its own line after `header`.
pub(crate) fn error_report(header: &str, errors: &[DocumentError]) -> String {
    let mut text = format!("{header}:");
    for e in errors {
        text.push('\n');
        text.push_str(&e.to_string());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespaced_kind_defaults_to_the_default_namespace() {
        assert_eq!(
            namespace_for_kind(Kind::NetworkPolicy, None, false).unwrap(),
            Some("default".into())
        );
        assert_eq!(
            namespace_for_kind(Kind::NetworkPolicy, None, true).unwrap(),
            None
        );
        assert!(namespace_for_kind(Kind::NetworkPolicy, Some("a"), true).is_err());
    }

    #[test]
    fn a_namespace_flag_on_a_cluster_scoped_kind_is_refused_naming_it() {
        let e = namespace_for_kind(Kind::IPPool, Some("prod"), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "IPPool is not namespaced: remove --namespace \"prod\" (IPPool resources are cluster-wide)"
        );
        assert!(namespace_for_kind(Kind::IPPool, None, true).is_err());
        assert_eq!(namespace_for_kind(Kind::IPPool, None, false).unwrap(), None);
    }

    #[test]
    fn identifiers_name_the_namespace_of_namespaced_kinds() {
        assert_eq!(identifier(Kind::IPPool, None, "a"), "IPPool(a)");
        assert_eq!(
            identifier(Kind::NetworkPolicy, Some("prod"), "a"),
            "NetworkPolicy(prod/a)"
        );
    }
}
