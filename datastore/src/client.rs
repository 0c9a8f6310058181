//! The typed resource client: Calico v3 resources stored through a [`Backend`], with Calico's
//! defaults and validation, and the checks only the datastore can make (pool overlap, fields
//! that cannot change, tier existence, namespaces).
//!
//! Stored values are the resource's JSON without `metadata.resourceVersion`; the version a
//! reader sees is the key's `mod_revision`, so a `replace` carrying it is a compare-and-swap.

use std::fmt;
use std::sync::Arc;

use fabric_api::validate::cidr::Cidr;
use fabric_api::{AnyResource, FieldError, IPPool, Kind, Resource};

use crate::backend::{Backend, BackendError, KeyValue, Revision};
use crate::keys;

/// How many times `apply` re-reads and retries when another writer changed the resource.
const APPLY_RETRIES: usize = 10;

/// Tiers Calico creates itself and never lets anyone delete.
const PROTECTED_TIERS: [&str; 3] = ["default", "kube-admin", "kube-baseline"];

/// A failed resource operation.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The resource breaks a rule; nothing was written.
    #[error("{kind}/{name}: {}", join_field_errors(.errors))]
    Invalid {
        /// Its kind.
        kind: Kind,
        /// Its name (`namespace/name` for namespaced kinds).
        name: String,
        /// Every rule it breaks.
        errors: Vec<FieldError>,
    },
    /// `create` of a resource that exists.
    #[error("{kind}/{name} already exists")]
    AlreadyExists {
        /// Its kind.
        kind: Kind,
        /// Its name (`namespace/name` for namespaced kinds).
        name: String,
    },
    /// The resource does not exist.
    #[error("{kind}/{name} does not exist")]
    NotFound {
        /// Its kind.
        kind: Kind,
        /// Its name (`namespace/name` for namespaced kinds).
        name: String,
    },
    /// Another writer changed the resource after the revision the caller holds.
    #[error(
        "{kind}/{name} was changed by someone else (resourceVersion {expected} is stale); \
         get it again and retry"
    )]
    Conflict {
        /// Its kind.
        kind: Kind,
        /// Its name (`namespace/name` for namespaced kinds).
        name: String,
        /// The resourceVersion the caller held.
        expected: String,
    },
    /// A stored value that does not decode as the resource its key names.
    #[error("the value stored at {key} is not a valid {kind}")]
    Corrupt {
        /// The key.
        key: String,
        /// The kind its key names.
        kind: Kind,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

fn join_field_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(FieldError::message)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Which write a check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Create; the resource must not exist.
    Create,
    /// Replace; the resource must exist.
    Replace,
    /// Create or replace.
    Apply,
}

/// Typed access to v3 resources.
#[derive(Debug, Clone)]
pub struct Client {
    backend: Arc<dyn Backend>,
}

struct Display<'a>(Option<&'a str>, &'a str);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ns) => write!(f, "{ns}/{}", self.1),
            None => f.write_str(self.1),
        }
    }
}

fn full_name(ns: Option<&str>, name: &str) -> String {
    Display(ns, name).to_string()
}

/// The key of a resource of `kind`.
pub fn resource_key(kind: Kind, namespace: Option<&str>, name: &str) -> String {
    let ns = if kind.is_namespaced() {
        namespace
    } else {
        None
    };
    keys::resource_key(kind.plural(), ns, name)
}

/// The prefix under which every resource of `kind` (in `namespace`, if given) is stored.
pub fn kind_prefix(kind: Kind, namespace: Option<&str>) -> String {
    keys::resource_prefix(kind.plural(), namespace.filter(|_| kind.is_namespaced()))
}

/// The kind, namespace and name a resource key names, if it is one.
pub fn parse_key(key: &str) -> Option<(Kind, Option<String>, String)> {
    let namespaced = |plural: &str| {
        Kind::ALL
            .iter()
            .any(|k| k.plural() == plural && k.is_namespaced())
    };
    let (plural, ns, name) = keys::parse_resource_key(key, namespaced)?;
    let kind = Kind::ALL.into_iter().find(|k| k.plural() == plural)?;
    Some((kind, ns, name))
}

/// Decodes a stored value into the resource its key names, with `resourceVersion` set to the
/// key's revision. `None` when the key is not a v3 resource key.
pub fn decode(kv: &KeyValue) -> Option<Result<AnyResource, ClientError>> {
    let (kind, _, _) = parse_key(&kv.key)?;
    Some(decode_as(kind, kv))
}

fn decode_as(kind: Kind, kv: &KeyValue) -> Result<AnyResource, ClientError> {
    let corrupt = |source| ClientError::Corrupt {
        key: kv.key.clone(),
        kind,
        source,
    };
    let value: serde_json::Value = serde_json::from_str(&kv.value).map_err(corrupt)?;
    let mut any = AnyResource::from_value(value).map_err(corrupt)?;
    if any.kind() != kind {
        return Err(corrupt(serde::de::Error::custom(format!(
            "kind is {}",
            any.kind()
        ))));
    }
    any.metadata_mut().resource_version = Some(kv.mod_revision.to_string());
    Ok(any)
}

impl Client {
    /// A client over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Client {
        Client { backend }
    }

    /// The backend underneath.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Applies defaults and validates `res`, then makes the checks that need the store for
    /// the given write, without writing anything. Returns the resource as it would be stored.
    pub async fn check(
        &self,
        mut res: AnyResource,
        write: Write,
    ) -> Result<AnyResource, ClientError> {
        res.set_defaults();
        let kind = res.kind();
        let name = full_name(res.namespace(), res.name());
        let mut errors = match res.validate() {
            Ok(()) => Vec::new(),
            Err(errors) => errors,
        };
        if kind.is_namespaced() && res.namespace().is_none_or(str::is_empty) {
            errors.push(FieldError::new(
                "metadata.namespace",
                "",
                format!("is required for a {kind}"),
            ));
        }
        if !errors.is_empty() {
            return Err(ClientError::Invalid { kind, name, errors });
        }
        let existing = self.get_stored(kind, res.namespace(), res.name()).await?;
        match (write, &existing) {
            (Write::Create, Some(_)) => return Err(ClientError::AlreadyExists { kind, name }),
            (Write::Replace, None) => return Err(ClientError::NotFound { kind, name }),
            _ => {}
        }
        let old = existing.map(|(any, _)| any);
        let errors = self.store_rules(&res, old.as_ref()).await?;
        if !errors.is_empty() {
            return Err(ClientError::Invalid { kind, name, errors });
        }
        Ok(res)
    }

    /// The rules that need the stored state: pools must not overlap and keep their CIDR and
    /// block size; a policy's tier must exist.
    async fn store_rules(
        &self,
        res: &AnyResource,
        old: Option<&AnyResource>,
    ) -> Result<Vec<FieldError>, ClientError> {
        let mut errors = Vec::new();
        match res {
            AnyResource::IPPool(pool) => {
                if let Some(AnyResource::IPPool(old)) = old {
                    immutable_pool_fields(pool, old, &mut errors);
                }
                let others: Vec<IPPool> = self.list(None).await?;
                pool_overlaps(pool, &others, &mut errors);
            }
            AnyResource::NetworkPolicy(_)
            | AnyResource::GlobalNetworkPolicy(_)
            | AnyResource::StagedNetworkPolicy(_)
            | AnyResource::StagedGlobalNetworkPolicy(_) => {
                let tier = policy_tier(res);
                if tier != "default" && self.get_stored(Kind::Tier, None, tier).await?.is_none() {
                    errors.push(FieldError::new(
                        "spec.tier",
                        tier,
                        "names a Tier that does not exist; create the Tier first",
                    ));
                }
            }
            _ => {}
        }
        Ok(errors)
    }

    /// Creates `res`; fails if it exists.
    pub async fn create_any(&self, res: AnyResource) -> Result<AnyResource, ClientError> {
        let mut res = self.check(res, Write::Create).await?;
        let kind = res.kind();
        let name = full_name(res.namespace(), res.name());
        let key = resource_key(kind, res.namespace(), res.name());
        stamp_new(&mut res);
        let rev = match self.backend.create(&key, &encode(&res)).await {
            Err(BackendError::AlreadyExists { .. }) => {
                return Err(ClientError::AlreadyExists { kind, name });
            }
            other => other?,
        };
        res.metadata_mut().resource_version = Some(rev.to_string());
        Ok(res)
    }

    /// Replaces an existing resource. With `metadata.resourceVersion` set, only if the stored
    /// resource still has that version (compare-and-swap); without it, whatever is stored.
    pub async fn replace_any(&self, res: AnyResource) -> Result<AnyResource, ClientError> {
        let expected = res.metadata().resource_version.clone();
        let res = self.check(res, Write::Replace).await?;
        self.replace_checked(res, expected).await
    }

    async fn replace_checked(
        &self,
        mut res: AnyResource,
        expected: Option<String>,
    ) -> Result<AnyResource, ClientError> {
        let kind = res.kind();
        let name = full_name(res.namespace(), res.name());
        let (old, rev) = self
            .get_stored(kind, res.namespace(), res.name())
            .await?
            .ok_or_else(|| ClientError::NotFound {
                kind,
                name: name.clone(),
            })?;
        let expected_rev = match expected.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => text.parse::<Revision>().map_err(|_| ClientError::Invalid {
                kind,
                name: name.clone(),
                errors: vec![FieldError::new(
                    "metadata.resourceVersion",
                    text,
                    "is not a revision this datastore issued",
                )],
            })?,
            None => rev,
        };
        carry_identity(&mut res, &old);
        let key = resource_key(kind, res.namespace(), res.name());
        let new_rev = match self.backend.update(&key, &encode(&res), expected_rev).await {
            Err(BackendError::Conflict { .. }) => {
                return Err(ClientError::Conflict {
                    kind,
                    name,
                    expected: expected_rev.to_string(),
                });
            }
            Err(BackendError::NotFound { .. }) => return Err(ClientError::NotFound { kind, name }),
            other => other?,
        };
        res.metadata_mut().resource_version = Some(new_rev.to_string());
        Ok(res)
    }

    /// Creates `res`, or replaces it if it exists (retrying when another writer races); its
    /// `metadata.resourceVersion` is ignored (the last writer wins).
    ///
    /// A resource identical to the stored one (after defaults, keeping the stored uid and
    /// creation time) is not written again: the stored resource is returned with its
    /// resourceVersion unchanged.
    pub async fn apply_any(&self, mut res: AnyResource) -> Result<AnyResource, ClientError> {
        res.metadata_mut().resource_version = None;
        self.apply_any_at_version(res).await
    }

    /// [`Client::apply_any`] as calicoctl's `apply` does it: with `metadata.resourceVersion`
    /// set and the resource stored, the write is a compare-and-swap against that version (a
    /// stale one is a `Conflict`, not retried); without it, the last writer wins. An
    /// identical resource is not written again.
    pub async fn apply_any_at_version(&self, res: AnyResource) -> Result<AnyResource, ClientError> {
        let kind = res.kind();
        let name = full_name(res.namespace(), res.name());
        let expected = res
            .metadata()
            .resource_version
            .clone()
            .filter(|v| !v.is_empty());
        let mut last = ClientError::Conflict {
            kind,
            name: name.clone(),
            expected: String::new(),
        };
        for _ in 0..APPLY_RETRIES {
            let checked = self.check(res.clone(), Write::Apply).await?;
            let stored = self
                .get_stored(checked.kind(), checked.namespace(), checked.name())
                .await?;
            let result = match stored {
                Some((old, rev)) => {
                    if let Some(text) = &expected
                        && text.parse::<Revision>().ok() != Some(rev)
                    {
                        return Err(ClientError::Conflict {
                            kind,
                            name,
                            expected: text.clone(),
                        });
                    }
                    if unchanged(&checked, &old) {
                        return Ok(old);
                    }
                    self.replace_checked(checked, Some(rev.to_string())).await
                }
                None => self.create_any(checked).await,
            };
            match result {
                Err(e @ ClientError::Conflict { .. }) if expected.is_some() => return Err(e),
                Err(e @ (ClientError::Conflict { .. } | ClientError::AlreadyExists { .. })) => {
                    last = e;
                }
                Err(ClientError::NotFound { .. }) => {}
                other => return other,
            }
        }
        Err(last)
    }

    /// Deletes a resource and returns what was stored. With `expected` set, only if the stored
    /// resource still has that resourceVersion.
    pub async fn delete_any(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
        expected: Option<&str>,
    ) -> Result<AnyResource, ClientError> {
        let full = full_name(namespace, name);
        let (old, rev) = self
            .get_stored(kind, namespace, name)
            .await?
            .ok_or_else(|| ClientError::NotFound {
                kind,
                name: full.clone(),
            })?;
        if kind == Kind::Tier {
            if PROTECTED_TIERS.contains(&name) {
                return Err(ClientError::Invalid {
                    kind,
                    name: full,
                    errors: vec![FieldError::new(
                        "metadata.name",
                        name,
                        "is a built-in tier and cannot be deleted",
                    )],
                });
            }
            self.refuse_tier_in_use(name).await?;
        }
        let expected_rev = match expected {
            Some(text) => text
                .parse::<Revision>()
                .map_err(|_| ClientError::Conflict {
                    kind,
                    name: full.clone(),
                    expected: text.to_string(),
                })?,
            None => rev,
        };
        let key = resource_key(kind, namespace, name);
        match self.backend.delete(&key, Some(expected_rev)).await {
            Err(BackendError::Conflict { .. }) => Err(ClientError::Conflict {
                kind,
                name: full,
                expected: expected_rev.to_string(),
            }),
            Err(BackendError::NotFound { .. }) => Err(ClientError::NotFound { kind, name: full }),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(old),
        }
    }

    async fn refuse_tier_in_use(&self, tier: &str) -> Result<(), ClientError> {
        for kind in [
            Kind::NetworkPolicy,
            Kind::GlobalNetworkPolicy,
            Kind::StagedNetworkPolicy,
            Kind::StagedGlobalNetworkPolicy,
        ] {
            if let Some(p) = self
                .list_any(kind, None)
                .await?
                .into_iter()
                .find(|p| policy_tier(p) == tier)
            {
                return Err(ClientError::Invalid {
                    kind: Kind::Tier,
                    name: tier.to_string(),
                    errors: vec![FieldError::new(
                        "metadata.name",
                        tier,
                        format!(
                            "is still used by {kind}/{}; delete its policies first",
                            full_name(p.namespace(), p.name())
                        ),
                    )],
                });
            }
        }
        Ok(())
    }

    async fn get_stored(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<(AnyResource, Revision)>, ClientError> {
        let key = resource_key(kind, namespace, name);
        match self.backend.get(&key).await? {
            Some(kv) => Ok(Some((decode_as(kind, &kv)?, kv.mod_revision))),
            None => Ok(None),
        }
    }

    /// The resource of `kind` called `name` (in `namespace` for namespaced kinds).
    pub async fn get_any(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<AnyResource, ClientError> {
        self.get_stored(kind, namespace, name)
            .await?
            .map(|(any, _)| any)
            .ok_or_else(|| ClientError::NotFound {
                kind,
                name: full_name(namespace, name),
            })
    }

    /// Every resource of `kind`, sorted by namespace and name; for a namespaced kind,
    /// `namespace: None` lists all namespaces.
    pub async fn list_any(
        &self,
        kind: Kind,
        namespace: Option<&str>,
    ) -> Result<Vec<AnyResource>, ClientError> {
        let listing = self.backend.list(&kind_prefix(kind, namespace)).await?;
        listing
            .items
            .iter()
            .filter(|kv| parse_key(&kv.key).is_some_and(|(k, _, _)| k == kind))
            .map(|kv| decode_as(kind, kv))
            .collect()
    }

    /// Typed [`Client::create_any`].
    pub async fn create<R: Resource>(&self, res: R) -> Result<R, ClientError> {
        downcast(self.create_any(res.into_any()).await?)
    }

    /// Typed [`Client::replace_any`].
    pub async fn replace<R: Resource>(&self, res: R) -> Result<R, ClientError> {
        downcast(self.replace_any(res.into_any()).await?)
    }

    /// Typed [`Client::apply_any`].
    pub async fn apply<R: Resource>(&self, res: R) -> Result<R, ClientError> {
        downcast(self.apply_any(res.into_any()).await?)
    }

    /// Typed [`Client::delete_any`].
    pub async fn delete<R: Resource>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<R, ClientError> {
        downcast(self.delete_any(R::KIND, namespace, name, None).await?)
    }

    /// Typed [`Client::get_any`].
    pub async fn get<R: Resource>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<R, ClientError> {
        downcast(self.get_any(R::KIND, namespace, name).await?)
    }

    /// Typed [`Client::get_any`] that answers `None` for a missing resource.
    pub async fn try_get<R: Resource>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<R>, ClientError> {
        match self.get::<R>(namespace, name).await {
            Err(ClientError::NotFound { .. }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Typed [`Client::list_any`].
    pub async fn list<R: Resource>(&self, namespace: Option<&str>) -> Result<Vec<R>, ClientError> {
        self.list_any(R::KIND, namespace)
            .await?
            .into_iter()
            .map(downcast)
            .collect()
    }
}

fn downcast<R: Resource>(any: AnyResource) -> Result<R, ClientError> {
    let kind = any.kind();
    let name = full_name(any.namespace(), any.name());
    R::from_any(any).map_err(|_| ClientError::NotFound { kind, name })
}

fn encode(res: &AnyResource) -> String {
    let mut value = serde_json::to_value(res).unwrap_or(serde_json::Value::Null);
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("resourceVersion");
    }
    value.to_string()
}

fn policy_tier(res: &AnyResource) -> &str {
    let tier = match res {
        AnyResource::NetworkPolicy(p) => p.spec.tier.as_str(),
        AnyResource::GlobalNetworkPolicy(p) => p.spec.tier.as_str(),
        AnyResource::StagedNetworkPolicy(p) => p.spec.tier.as_str(),
        AnyResource::StagedGlobalNetworkPolicy(p) => p.spec.tier.as_str(),
        _ => "",
    };
    if tier.is_empty() { "default" } else { tier }
}

fn immutable_pool_fields(pool: &IPPool, old: &IPPool, errors: &mut Vec<FieldError>) {
    let same_cidr = match (pool.spec.parsed_cidr(), old.spec.parsed_cidr()) {
        (Some(a), Some(b)) => a.masked() == b.masked(),
        _ => pool.spec.cidr == old.spec.cidr,
    };
    if !same_cidr {
        errors.push(FieldError::new(
            "spec.cidr",
            &pool.spec.cidr,
            format!(
                "cannot be changed after the pool is created (it is {}); create a new pool instead",
                old.spec.cidr
            ),
        ));
    }
    if pool.spec.effective_block_size() != old.spec.effective_block_size() {
        errors.push(FieldError::new(
            "spec.blockSize",
            pool.spec.effective_block_size().to_string(),
            format!(
                "cannot be changed after the pool is created (it is {})",
                old.spec.effective_block_size()
            ),
        ));
    }
}

fn pool_overlaps(pool: &IPPool, others: &[IPPool], errors: &mut Vec<FieldError>) {
    let Some(cidr) = pool.spec.parsed_cidr() else {
        return;
    };
    for other in others.iter().filter(|o| o.name() != pool.name()) {
        if other
            .spec
            .parsed_cidr()
            .is_some_and(|o: Cidr| o.overlaps(&cidr))
        {
            errors.push(FieldError::new(
                "spec.cidr",
                &pool.spec.cidr,
                format!(
                    "overlaps IPPool {} ({}); IP pools must not overlap",
                    other.name(),
                    other.spec.cidr
                ),
            ));
        }
    }
}

/// Sets the identity a new resource gets when it is first stored: a uid and a creation time.
fn stamp_new(res: &mut AnyResource) {
    let meta = res.metadata_mut();
    meta.resource_version = None;
    if meta.uid.as_deref().is_none_or(str::is_empty) {
        meta.uid = Some(new_uid());
    }
    if meta.creation_timestamp.as_deref().is_none_or(str::is_empty) {
        meta.creation_timestamp = Some(rfc3339_now());
    }
}

/// Whether writing `new` over `old` would store exactly what is stored.
fn unchanged(new: &AnyResource, old: &AnyResource) -> bool {
    let mut new = new.clone();
    carry_identity(&mut new, old);
    let mut old = old.clone();
    old.metadata_mut().resource_version = None;
    encode(&new) == encode(&old)
}

/// Keeps the stored identity (uid, creation time) across a replace.
fn carry_identity(res: &mut AnyResource, old: &AnyResource) {
    let (uid, created) = (
        old.metadata().uid.clone(),
        old.metadata().creation_timestamp.clone(),
    );
    let meta = res.metadata_mut();
    meta.resource_version = None;
    meta.uid = uid.or_else(|| Some(new_uid()));
    meta.creation_timestamp = created.or_else(|| Some(rfc3339_now()));
}

/// A random UUID (version 4) in its usual text form.
fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The current UTC time as RFC 3339 with second precision (`2026-11-29T17:04:05Z`).
pub(crate) fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    fabric_api::time::rfc3339_seconds(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_uid_looks_like_a_version_4_uuid() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn resource_keys_round_trip_through_parse_key() {
        let key = resource_key(Kind::NetworkPolicy, Some("prod"), "db");
        assert_eq!(
            key,
            "/calico/resources/v3/projectcalico.org/networkpolicies/prod/db"
        );
        assert_eq!(
            parse_key(&key),
            Some((Kind::NetworkPolicy, Some("prod".into()), "db".into()))
        );
        let key = resource_key(Kind::IPPool, Some("ignored"), "pool-a");
        assert_eq!(key, "/calico/resources/v3/projectcalico.org/ippools/pool-a");
        assert_eq!(parse_key(&key), Some((Kind::IPPool, None, "pool-a".into())));
    }
}
