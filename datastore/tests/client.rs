//! The typed resource client on every backend (mem, sqlite, a real etcd): create, get, list,
//! replace, apply and delete for every kind; compare-and-swap on resourceVersion; the
//! datastore rules (pools must not overlap and keep their CIDR and block size, a policy's
//! tier must exist, a tier in use or built in cannot be deleted, a namespaced kind needs a
//! namespace); identity kept across replace; an identical apply writes nothing. Every refused
//! operation leaves the store exactly as it was.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use fabric_api::document::parse_documents;
use fabric_api::{AnyResource, GlobalNetworkPolicy, IPPool, Kind, NetworkPolicy, Resource, Tier};
use fabric_datastore::{Backend, Client, ClientError, KeyValue, Write};

/// A client on a fresh store, and what keeps the store alive.
type Fresh = (Box<dyn std::any::Any + Send>, Client);

fn parse(text: &str) -> AnyResource {
    let mut r = parse_documents(text, "test").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.len(), 1);
    r.pop().unwrap()
}

fn typed<R: Resource>(text: &str) -> R {
    parse(text).downcast().unwrap()
}

const H: &str = "apiVersion: projectcalico.org/v3\n";

/// One valid resource of every kind.
fn samples() -> Vec<AnyResource> {
    [
        "kind: IPPool\nmetadata: {name: pool-1}\nspec: {cidr: 10.1.0.0/16}",
        "kind: IPReservation\nmetadata: {name: res-1}\nspec: {reservedCIDRs: [10.1.0.0/30]}",
        "kind: IPAMConfiguration\nmetadata: {name: default}\nspec: {strictAffinity: true}",
        "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: 64512}",
        "kind: BGPPeer\nmetadata: {name: peer-1}\nspec: {peerIP: 10.0.0.1, asNumber: 64600}",
        "kind: BGPFilter\nmetadata: {name: filter-1}\nspec: {exportV4: [{action: Reject}]}",
        "kind: Node\nmetadata: {name: node-1}\nspec: {bgp: {ipv4Address: 10.0.0.11/24}}",
        "kind: FelixConfiguration\nmetadata: {name: default}\nspec: {ipipMTU: 1440}",
        "kind: Tier\nmetadata: {name: tier-1}\nspec: {order: 10}",
        "kind: NetworkPolicy\nmetadata: {name: np-1, namespace: prod}\nspec: {selector: all()}",
        "kind: GlobalNetworkPolicy\nmetadata: {name: gnp-1}\nspec: {selector: all()}",
        "kind: StagedNetworkPolicy\nmetadata: {name: snp-1, namespace: prod}\nspec: {selector: all()}",
        "kind: StagedGlobalNetworkPolicy\nmetadata: {name: sgnp-1}\nspec: {selector: all()}",
        "kind: NetworkSet\nmetadata: {name: ns-1, namespace: prod}\nspec: {nets: [192.0.2.0/24]}",
        "kind: GlobalNetworkSet\nmetadata: {name: gns-1}\nspec: {nets: [192.0.2.0/24]}",
        "kind: HostEndpoint\nmetadata: {name: hep-1}\nspec: {node: node-1, interfaceName: eth0}",
        "kind: WorkloadEndpoint\nmetadata: {name: node1-k8s-web-eth0, namespace: prod}\nspec: {node: node1, orchestrator: k8s, endpoint: eth0, pod: web, interfaceName: cali1, ipNetworks: [10.1.0.5/32]}",
        "kind: Profile\nmetadata: {name: kns.prod}\nspec: {labelsToApply: {a: b}}",
    ]
    .iter()
    .map(|body| parse(&format!("{H}{body}\n")))
    .collect()
}

/// Every key with its value and revisions: any write changes it. (The store-wide revision is
/// left out: on the suite's shared etcd, other tests raise it.)
async fn store(client: &Client) -> Vec<KeyValue> {
    client.backend().list("").await.unwrap().items
}

fn without_server_fields(mut r: AnyResource) -> AnyResource {
    let m = r.metadata_mut();
    m.resource_version = None;
    m.uid = None;
    m.creation_timestamp = None;
    r
}

async fn every_kind_goes_through_create_get_list_replace_apply_delete(client: Client) {
    let samples = samples();
    assert_eq!(samples.len(), Kind::ALL.len());
    for sample in samples {
        let kind = sample.kind();
        let ns = sample.namespace().map(str::to_string);
        let name = sample.name().to_string();
        let created = client.create_any(sample.clone()).await.unwrap();
        let rv1 = created.metadata().resource_version.clone().unwrap();
        assert!(
            created.metadata().uid.is_some() && created.metadata().creation_timestamp.is_some()
        );
        let got = client.get_any(kind, ns.as_deref(), &name).await.unwrap();
        assert_eq!(got, created, "{kind}: get returns what create stored");
        assert_eq!(
            without_server_fields(got),
            sample,
            "{kind}: nothing but identity was added"
        );
        let listed = client.list_any(kind, None).await.unwrap();
        assert_eq!(listed, vec![created.clone()], "{kind}");
        if let Some(ns) = &ns {
            assert_eq!(client.list_any(kind, Some(ns)).await.unwrap().len(), 1);
            assert!(
                client
                    .list_any(kind, Some("other"))
                    .await
                    .unwrap()
                    .is_empty()
            );
        }

        let mut changed = created.clone();
        changed
            .metadata_mut()
            .labels
            .insert("changed".into(), "yes".into());
        let replaced = client.replace_any(changed).await.unwrap();
        let rv2 = replaced.metadata().resource_version.clone().unwrap();
        assert_ne!(rv1, rv2, "{kind}: replace gives a new resourceVersion");
        assert_eq!(
            replaced.metadata().uid,
            created.metadata().uid,
            "{kind}: uid kept"
        );
        assert_eq!(
            replaced.metadata().creation_timestamp,
            created.metadata().creation_timestamp,
            "{kind}: creationTimestamp kept"
        );

        // Applying what is stored writes nothing.
        let before = store(&client).await;
        let same = client.apply_any(replaced.clone()).await.unwrap();
        assert_eq!(
            same.metadata().resource_version.as_deref(),
            Some(rv2.as_str()),
            "{kind}"
        );
        let mut without_identity = without_server_fields(replaced.clone());
        without_identity.metadata_mut().uid = None;
        client.apply_any(without_identity).await.unwrap();
        assert_eq!(
            store(&client).await,
            before,
            "{kind}: an identical apply wrote"
        );

        // A real change through apply is written.
        let mut applied = without_server_fields(replaced.clone());
        applied
            .metadata_mut()
            .labels
            .insert("applied".into(), "yes".into());
        let applied = client.apply_any(applied).await.unwrap();
        assert_ne!(
            applied.metadata().resource_version.as_deref(),
            Some(rv2.as_str())
        );
        assert_eq!(applied.metadata().uid, created.metadata().uid);

        let deleted = client
            .delete_any(kind, ns.as_deref(), &name, None)
            .await
            .unwrap();
        assert_eq!(deleted, applied, "{kind}: delete returns what was stored");
        assert!(matches!(
            client.get_any(kind, ns.as_deref(), &name).await,
            Err(ClientError::NotFound { .. })
        ));
        assert!(client.list_any(kind, None).await.unwrap().is_empty());
        assert!(matches!(
            client.delete_any(kind, ns.as_deref(), &name, None).await,
            Err(ClientError::NotFound { .. })
        ));
    }
    assert!(store(&client).await.is_empty());
}

async fn a_stale_resource_version_is_a_conflict_and_changes_nothing(client: Client) {
    let pool: IPPool = typed(&format!(
        "{H}kind: IPPool\nmetadata: {{name: p}}\nspec: {{cidr: 10.2.0.0/16}}\n"
    ));
    let v1 = client.create(pool).await.unwrap();
    let mut v2 = v1.clone();
    v2.spec.nat_outgoing = true;
    let v2 = client.replace(v2).await.unwrap();
    let before = store(&client).await;
    let mut stale = v1.clone();
    stale.spec.disabled = true;
    for result in [
        client.replace(stale.clone()).await.map(|_| ()),
        client
            .apply_any_at_version(stale.clone().into_any())
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(ClientError::Conflict {
                kind,
                name,
                expected,
            }) => {
                assert_eq!((kind, name.as_str()), (Kind::IPPool, "p"));
                assert_eq!(Some(expected), v1.metadata.resource_version);
            }
            other => panic!("stale write gave {other:?}"),
        }
    }
    assert!(matches!(
        client
            .delete_any(
                Kind::IPPool,
                None,
                "p",
                v1.metadata.resource_version.as_deref()
            )
            .await,
        Err(ClientError::Conflict { .. })
    ));
    assert_eq!(store(&client).await, before);
    // The current version works.
    let mut current = v2.clone();
    current.spec.disabled = true;
    let v3 = client.replace(current).await.unwrap();
    // Plain apply ignores the resourceVersion: the last writer wins.
    let mut last = v1.clone();
    last.spec.nat_outgoing = false;
    let v4 = client.apply(last).await.unwrap();
    assert_ne!(v4.metadata.resource_version, v3.metadata.resource_version);
    assert!(!v4.spec.nat_outgoing);
    client
        .delete_any(Kind::IPPool, None, "p", None)
        .await
        .unwrap();
}

async fn pools_must_not_overlap_on_create_or_update(client: Client) {
    let pool = |name: &str, cidr: &str| -> IPPool {
        typed(&format!(
            "{H}kind: IPPool\nmetadata: {{name: {name}}}\nspec: {{cidr: {cidr}}}\n"
        ))
    };
    client.create(pool("a", "10.3.0.0/16")).await.unwrap();
    let b = client.create(pool("b", "10.4.0.0/16")).await.unwrap();
    let before = store(&client).await;
    for result in [
        client.create(pool("c", "10.3.128.0/17")).await,
        client.apply(pool("c", "10.0.0.0/8")).await,
    ] {
        match result {
            Err(ClientError::Invalid { errors, .. }) => {
                assert_eq!(errors[0].field, "spec.cidr");
                assert!(
                    errors[0].rule.contains("overlaps IPPool a (10.3.0.0/16)"),
                    "{errors:?}"
                );
            }
            other => panic!("overlapping pool gave {other:?}"),
        }
    }
    // An update may not move a pool onto another (the CIDR is immutable anyway, so both
    // rules name the field).
    let mut moved = b.clone();
    moved.spec.cidr = "10.3.0.0/24".into();
    match client.replace(moved).await {
        Err(ClientError::Invalid { errors, .. }) => {
            assert!(errors.iter().all(|e| e.field == "spec.cidr"), "{errors:?}");
            assert!(
                errors.iter().any(|e| e.rule.contains("overlaps IPPool a")),
                "{errors:?}"
            );
        }
        other => panic!("moving a pool gave {other:?}"),
    }
    assert_eq!(store(&client).await, before);
    // Updating a pool in place does not overlap with itself.
    let mut same = b.clone();
    same.spec.nat_outgoing = true;
    client.replace(same).await.unwrap();
}

async fn a_pools_cidr_and_block_size_cannot_change(client: Client) {
    let pool: IPPool = typed(&format!(
        "{H}kind: IPPool\nmetadata: {{name: p}}\nspec: {{cidr: 10.5.0.0/16, blockSize: 26}}\n"
    ));
    let stored = client.create(pool).await.unwrap();
    let before = store(&client).await;
    let mut cidr = stored.clone();
    cidr.spec.cidr = "10.6.0.0/16".into();
    let mut block = stored.clone();
    block.spec.block_size = Some(28);
    for (changed, field) in [(cidr, "spec.cidr"), (block, "spec.blockSize")] {
        for result in [
            client.replace(changed.clone()).await,
            client.apply(changed.clone()).await,
        ] {
            match result {
                Err(ClientError::Invalid { errors, .. }) => {
                    assert_eq!(errors.len(), 1, "{errors:?}");
                    assert_eq!(errors[0].field, field);
                    assert!(
                        errors[0].rule.starts_with("cannot be changed"),
                        "{errors:?}"
                    );
                }
                other => panic!("changing {field} gave {other:?}"),
            }
        }
    }
    assert_eq!(store(&client).await, before);
}

async fn a_policy_needs_its_tier_and_a_tier_in_use_stays(client: Client) {
    let gnp: GlobalNetworkPolicy = typed(&format!(
        "{H}kind: GlobalNetworkPolicy\nmetadata: {{name: security.p}}\nspec: {{tier: security, selector: all()}}\n"
    ));
    let np: NetworkPolicy = typed(&format!(
        "{H}kind: NetworkPolicy\nmetadata: {{name: security.q, namespace: prod}}\nspec: {{tier: security}}\n"
    ));
    let before = store(&client).await;
    for result in [
        client.create(gnp.clone()).await.map(|_| ()),
        client.apply(np.clone()).await.map(|_| ()),
        client
            .check(gnp.clone().into_any(), Write::Apply)
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(ClientError::Invalid { errors, .. }) => {
                assert_eq!(errors[0].field, "spec.tier");
                assert!(errors[0].rule.contains("does not exist"), "{errors:?}");
            }
            other => panic!("policy in a missing tier gave {other:?}"),
        }
    }
    assert_eq!(store(&client).await, before);

    let tier: Tier = typed(&format!(
        "{H}kind: Tier\nmetadata: {{name: security}}\nspec: {{order: 10}}\n"
    ));
    client.create(tier).await.unwrap();
    client.create(gnp).await.unwrap();
    client.create(np).await.unwrap();
    let before = store(&client).await;
    match client.delete_any(Kind::Tier, None, "security", None).await {
        Err(ClientError::Invalid { errors, .. }) => {
            assert!(errors[0].rule.contains("is still used by"), "{errors:?}");
        }
        other => panic!("deleting a tier in use gave {other:?}"),
    }
    assert_eq!(store(&client).await, before);
    client
        .delete::<GlobalNetworkPolicy>(None, "security.p")
        .await
        .unwrap();
    assert!(
        client
            .delete_any(Kind::Tier, None, "security", None)
            .await
            .is_err()
    );
    client
        .delete::<NetworkPolicy>(Some("prod"), "security.q")
        .await
        .unwrap();
    client.delete::<Tier>(None, "security").await.unwrap();

    // The built-in tiers are never deleted.
    let default: Tier = typed(&format!(
        "{H}kind: Tier\nmetadata: {{name: default}}\nspec: {{}}\n"
    ));
    client.create(default).await.unwrap();
    let before = store(&client).await;
    match client.delete_any(Kind::Tier, None, "default", None).await {
        Err(ClientError::Invalid { errors, .. }) => {
            assert!(errors[0].rule.contains("built-in tier"), "{errors:?}");
        }
        other => panic!("deleting the default tier gave {other:?}"),
    }
    assert_eq!(store(&client).await, before);
}

async fn a_namespaced_kind_without_a_namespace_is_refused(client: Client) {
    let mut np: NetworkPolicy = typed(&format!(
        "{H}kind: NetworkPolicy\nmetadata: {{name: np, namespace: prod}}\nspec: {{}}\n"
    ));
    np.metadata.namespace = None;
    let before = store(&client).await;
    for result in [
        client.create(np.clone()).await,
        client.apply(np.clone()).await,
    ] {
        match result {
            Err(ClientError::Invalid { errors, .. }) => {
                assert_eq!(errors[0].field, "metadata.namespace");
                assert!(errors[0].rule.contains("is required"), "{errors:?}");
            }
            other => panic!("a policy without namespace gave {other:?}"),
        }
    }
    assert_eq!(store(&client).await, before);
}

async fn create_and_replace_check_existence(client: Client) {
    let pool: IPPool = typed(&format!(
        "{H}kind: IPPool\nmetadata: {{name: p}}\nspec: {{cidr: 10.7.0.0/16}}\n"
    ));
    assert!(matches!(
        client.replace(pool.clone()).await,
        Err(ClientError::NotFound { .. })
    ));
    client.create(pool.clone()).await.unwrap();
    let before = store(&client).await;
    assert!(matches!(
        client.create(pool.clone()).await,
        Err(ClientError::AlreadyExists { .. })
    ));
    assert!(matches!(
        client.check(pool.clone().into_any(), Write::Create).await,
        Err(ClientError::AlreadyExists { .. })
    ));
    client.check(pool.into_any(), Write::Replace).await.unwrap();
    assert_eq!(store(&client).await, before);
}

async fn an_invalid_resource_is_refused_with_every_broken_rule(client: Client) {
    let mut pool: IPPool = typed(&format!(
        "{H}kind: IPPool\nmetadata: {{name: p}}\nspec: {{cidr: 10.8.0.0/16}}\n"
    ));
    pool.spec.node_selector = "zone == ".into();
    pool.spec.block_size = Some(40);
    let before = store(&client).await;
    match client.apply(pool).await {
        Err(ClientError::Invalid { kind, name, errors }) => {
            assert_eq!((kind, name.as_str()), (Kind::IPPool, "p"));
            let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
            assert!(
                fields.contains(&"spec.nodeSelector") && fields.contains(&"spec.blockSize"),
                "{errors:?}"
            );
        }
        other => panic!("an invalid pool gave {other:?}"),
    }
    assert_eq!(store(&client).await, before);
}

async fn mem() -> Fresh {
    (Box::new(()), Client::new(Arc::new(common::mem())))
}

async fn sqlite() -> Fresh {
    let (dir, backend) = common::sqlite();
    (Box::new(dir), Client::new(Arc::new(backend)))
}

async fn etcd() -> Fresh {
    let (etcd, backend) = common::etcd().await;
    (
        Box::new(etcd),
        Client::new(Arc::new(backend) as Arc<dyn Backend>),
    )
}

macro_rules! on_every_backend {
    ($($check:ident),* $(,)?) => {
        mod on_mem {
            use super::*;
            $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (_guard, client) = mem().await;
                super::$check(client).await;
            }
            )*
        }
        mod on_sqlite {
            use super::*;
            $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (_guard, client) = sqlite().await;
                super::$check(client).await;
            }
            )*
        }
        mod on_etcd {
            use super::*;
            $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (_guard, client) = etcd().await;
                super::$check(client).await;
            }
            )*
        }
    };
}

on_every_backend!(
    every_kind_goes_through_create_get_list_replace_apply_delete,
    a_stale_resource_version_is_a_conflict_and_changes_nothing,
    pools_must_not_overlap_on_create_or_update,
    a_pools_cidr_and_block_size_cannot_change,
    a_policy_needs_its_tier_and_a_tier_in_use_stays,
    a_namespaced_kind_without_a_namespace_is_refused,
    create_and_replace_check_existence,
    an_invalid_resource_is_refused_with_every_broken_rule,
);
