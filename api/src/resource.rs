//! The `Resource` trait, the macro that gives every kind its envelope (`apiVersion`, `kind`,
//! `metadata`, `spec`[, `status`]), typed lists, and `AnyResource`, a resource of any kind.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::API_VERSION;
use crate::error::{Errors, FieldError};
use crate::kind::Kind;
use crate::meta::{ListMeta, ObjectMeta};

/// A `projectcalico.org/v3` resource of one kind.
pub trait Resource:
    Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The kind of this resource.
    const KIND: Kind;

    /// The object metadata.
    fn metadata(&self) -> &ObjectMeta;

    /// The object metadata, mutably.
    fn metadata_mut(&mut self) -> &mut ObjectMeta;

    /// Applies Calico's defaults. Idempotent.
    fn set_defaults(&mut self);

    /// Checks every rule (call after [`Resource::set_defaults`]); returns all broken rules.
    fn validate(&self) -> Result<(), Vec<FieldError>>;

    /// Wraps this resource in an [`AnyResource`].
    fn into_any(self) -> AnyResource;

    /// Unwraps an [`AnyResource`] of this kind, or gives it back.
    #[allow(clippy::result_large_err)] // The error is the caller's value, handed back.
    fn from_any(any: AnyResource) -> Result<Self, AnyResource>;

    /// The name, or `""` when unset.
    fn name(&self) -> &str {
        self.metadata().name_str()
    }

    /// The namespace (namespaced kinds).
    fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }
}

/// Kind-specific defaulting and validation, implemented by each resource module.
pub(crate) trait Rules {
    /// Applies Calico's defaults to the spec (and metadata where Calico does).
    fn defaults(&mut self);
    /// Records every broken rule of the name and spec (common metadata rules are checked by
    /// the caller).
    fn check(&self, errs: &mut Errors);
}

/// Runs the common and kind-specific checks.
pub(crate) fn validate_resource<R: Resource + Rules>(r: &R) -> Result<(), Vec<FieldError>> {
    let mut errs = Errors::default();
    crate::meta::check_common(&mut errs, R::KIND, r.metadata());
    r.check(&mut errs);
    errs.into_result()
}

/// Checks the `apiVersion` and `kind` of a resource envelope.
pub(crate) fn check_envelope<E: serde::de::Error>(
    api_version: &str,
    kind: &str,
    expected: Kind,
) -> Result<(), E> {
    if api_version != API_VERSION {
        return Err(E::custom(format!(
            "apiVersion {api_version:?} is not supported; expected {API_VERSION}"
        )));
    }
    if kind != expected.name() {
        return Err(E::custom(format!(
            "kind {kind:?} does not match; expected {}",
            expected.name()
        )));
    }
    Ok(())
}

/// Defines a resource struct with its serde envelope and its `Resource` impl.
macro_rules! resource {
    ($(#[$doc:meta])* $name:ident, $spec:ty $(, status: $status:ty)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            /// Object metadata.
            pub metadata: $crate::meta::ObjectMeta,
            /// The specification.
            pub spec: $spec,
            $(
            /// Status, as written by Calico components (kept, never validated).
            pub status: Option<$status>,
            )?
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let mut st = s.serialize_struct(stringify!($name), 5)?;
                st.serialize_field("apiVersion", $crate::API_VERSION)?;
                st.serialize_field("kind", stringify!($name))?;
                st.serialize_field("metadata", &self.metadata)?;
                st.serialize_field("spec", &self.spec)?;
                $(
                let status: &Option<$status> = &self.status;
                if let Some(status) = status {
                    st.serialize_field("status", status)?;
                }
                )?
                st.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(serde::Deserialize)]
                #[serde(rename_all = "camelCase", deny_unknown_fields)]
                struct Envelope {
                    api_version: String,
                    kind: String,
                    #[serde(default)]
                    metadata: $crate::meta::ObjectMeta,
                    #[serde(default)]
                    spec: $spec,
                    $(
                    #[serde(default)]
                    status: Option<$status>,
                    )?
                }
                let e = Envelope::deserialize(d)?;
                $crate::resource::check_envelope::<D::Error>(
                    &e.api_version,
                    &e.kind,
                    $crate::kind::Kind::$name,
                )?;
                Ok($name {
                    metadata: e.metadata,
                    spec: e.spec,
                    $(
                    status: {
                        let status: Option<$status> = e.status;
                        status
                    },
                    )?
                })
            }
        }

        impl $crate::resource::Resource for $name {
            const KIND: $crate::kind::Kind = $crate::kind::Kind::$name;
            fn metadata(&self) -> &$crate::meta::ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut $crate::meta::ObjectMeta {
                &mut self.metadata
            }
            fn set_defaults(&mut self) {
                $crate::resource::Rules::defaults(self);
            }
            fn validate(&self) -> Result<(), Vec<$crate::error::FieldError>> {
                $crate::resource::validate_resource(self)
            }
            fn into_any(self) -> $crate::resource::AnyResource {
                $crate::resource::AnyResource::$name(self.into())
            }
            fn from_any(
                any: $crate::resource::AnyResource,
            ) -> Result<Self, $crate::resource::AnyResource> {
                match any {
                    $crate::resource::AnyResource::$name(r) => Ok(r.into()),
                    other => Err(other),
                }
            }
        }

        impl From<$name> for $crate::resource::AnyResource {
            fn from(r: $name) -> Self {
                $crate::resource::AnyResource::$name(r.into())
            }
        }
    };
}
pub(crate) use resource;

/// A `<Kind>List`: `apiVersion`, `kind: <Kind>List`, list `metadata` and `items`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceList<R> {
    /// List metadata (revision of the listing).
    pub metadata: ListMeta,
    /// The resources.
    pub items: Vec<R>,
}

impl<R> Default for ResourceList<R> {
    fn default() -> Self {
        Self {
            metadata: ListMeta::default(),
            items: Vec::new(),
        }
    }
}

impl<R: Resource> Serialize for ResourceList<R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("List", 4)?;
        st.serialize_field("apiVersion", API_VERSION)?;
        st.serialize_field("kind", &R::KIND.list_name())?;
        if self.metadata != ListMeta::default() {
            st.serialize_field("metadata", &self.metadata)?;
        }
        st.serialize_field("items", &self.items)?;
        st.end()
    }
}

impl<'de, R: Resource> Deserialize<'de> for ResourceList<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Envelope<R> {
            api_version: String,
            kind: String,
            #[serde(default)]
            metadata: ListMeta,
            #[serde(default = "Vec::new")]
            items: Vec<R>,
        }
        let e: Envelope<R> = Envelope::deserialize(d)?;
        if e.api_version != API_VERSION {
            return Err(D::Error::custom(format!(
                "apiVersion {:?} is not supported; expected {API_VERSION}",
                e.api_version
            )));
        }
        if e.kind != R::KIND.list_name() {
            return Err(D::Error::custom(format!(
                "kind {:?} does not match; expected {}",
                e.kind,
                R::KIND.list_name()
            )));
        }
        Ok(ResourceList {
            metadata: e.metadata,
            items: e.items,
        })
    }
}

/// Defines `AnyResource` over every kind.
macro_rules! any_resource {
    ($($name:ident: $ty:ty),* $(,)?) => {
        /// A resource of any kind (what a manifest or a datastore listing yields).
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum AnyResource {
            $(
            #[doc = concat!("A `", stringify!($name), "`.")]
            $name($ty),
            )*
        }

        impl AnyResource {
            /// The kind.
            pub fn kind(&self) -> Kind {
                match self {
                    $(AnyResource::$name(_) => Kind::$name,)*
                }
            }

            /// The object metadata.
            pub fn metadata(&self) -> &ObjectMeta {
                match self {
                    $(AnyResource::$name(r) => &r.metadata,)*
                }
            }

            /// The object metadata, mutably.
            pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self {
                    $(AnyResource::$name(r) => &mut r.metadata,)*
                }
            }

            /// Applies Calico's defaults. Idempotent.
            pub fn set_defaults(&mut self) {
                match self {
                    $(AnyResource::$name(r) => r.set_defaults(),)*
                }
            }

            /// Checks every rule; returns all broken rules.
            pub fn validate(&self) -> Result<(), Vec<FieldError>> {
                match self {
                    $(AnyResource::$name(r) => r.validate(),)*
                }
            }

            /// Decodes a resource of `kind`, tracking the path of any error.
            pub(crate) fn decode_tracked(
                kind: Kind,
                v: serde_json::Value,
            ) -> Result<AnyResource, serde_path_to_error::Error<serde_json::Error>> {
                match kind {
                    $(Kind::$name => serde_path_to_error::deserialize::<_, crate::$name>(v)
                        .map(|r| AnyResource::$name(r.into())),)*
                }
            }

            /// Decodes a resource from a JSON value, dispatching on its `kind`.
            pub fn from_value(v: serde_json::Value) -> Result<AnyResource, serde_json::Error> {
                use serde::de::Error;
                let kind = v
                    .get("kind")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| serde_json::Error::custom("missing field `kind`"))?;
                match Kind::from_kind_field(kind) {
                    $(Some(Kind::$name) => {
                        crate::$name::deserialize(v).map(|r| AnyResource::$name(r.into()))
                    })*
                    None => Err(serde_json::Error::custom(format!(
                        "kind {kind:?} is not a supported projectcalico.org/v3 kind"
                    ))),
                }
            }
        }

        impl Serialize for AnyResource {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(AnyResource::$name(r) => r.serialize(s),)*
                }
            }
        }
    };
}

any_resource!(
    IPPool: crate::IPPool,
    IPReservation: crate::IPReservation,
    IPAMConfiguration: crate::IPAMConfiguration,
    BGPConfiguration: crate::BGPConfiguration,
    BGPPeer: crate::BGPPeer,
    BGPFilter: crate::BGPFilter,
    Node: crate::Node,
    FelixConfiguration: Box<crate::FelixConfiguration>,
    Tier: crate::Tier,
    NetworkPolicy: crate::NetworkPolicy,
    GlobalNetworkPolicy: crate::GlobalNetworkPolicy,
    StagedNetworkPolicy: crate::StagedNetworkPolicy,
    StagedGlobalNetworkPolicy: crate::StagedGlobalNetworkPolicy,
    NetworkSet: crate::NetworkSet,
    GlobalNetworkSet: crate::GlobalNetworkSet,
    HostEndpoint: crate::HostEndpoint,
    WorkloadEndpoint: crate::WorkloadEndpoint,
    Profile: crate::Profile,
);

impl AnyResource {
    /// The name, or `""` when unset.
    pub fn name(&self) -> &str {
        self.metadata().name_str()
    }

    /// The namespace (namespaced kinds).
    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    /// Unwraps a resource of kind `R`, or gives it back.
    #[allow(clippy::result_large_err)] // The error is the caller's value, handed back.
    pub fn downcast<R: Resource>(self) -> Result<R, AnyResource> {
        R::from_any(self)
    }
}

impl<'de> Deserialize<'de> for AnyResource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        AnyResource::from_value(v).map_err(D::Error::custom)
    }
}
