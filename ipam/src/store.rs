//! Reading and compare-and-swap writing of the IPAM objects: typed decode, the bounded
//! read-modify-write loop every IPAM write goes through, and the per-process cache of blocks
//! (a guess that saves a read; every decision that matters is checked by the CAS).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_datastore::ipam_model::{AllocationBlock, BlockAffinity, IpamHandle};
use fabric_datastore::{Backend, BackendError, CasOutcome, KeyValue, Revision, TxnOp, TxnOutcome};
use ipnet::IpNet;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::IpamError;

/// Attempts of one read-modify-write before giving up (Calico's `datastoreRetries`).
pub const RETRIES: usize = 100;

/// A decoded value with the revision it was stored at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    /// The value.
    pub value: T,
    /// The key's `mod_revision`: the token for the next compare-and-swap.
    pub revision: Revision,
}

/// What an IPAM object is called in errors, and whether it is soft-deleted.
pub trait IpamObject: Serialize + DeserializeOwned + Clone {
    /// E.g. "allocation block".
    const WHAT: &'static str;
    /// Whether the object carries Calico's soft-delete marker (readers treat it as absent).
    fn is_deleted(&self) -> bool;
}

impl IpamObject for AllocationBlock {
    const WHAT: &'static str = "allocation block";
    fn is_deleted(&self) -> bool {
        self.deleted
    }
}

impl IpamObject for BlockAffinity {
    const WHAT: &'static str = "block affinity";
    fn is_deleted(&self) -> bool {
        self.deleted
    }
}

impl IpamObject for IpamHandle {
    const WHAT: &'static str = "IPAM handle";
    fn is_deleted(&self) -> bool {
        self.deleted
    }
}

/// Decodes a stored key.
pub fn decode<T: IpamObject>(kv: &KeyValue) -> Result<Stored<T>, IpamError> {
    let value = serde_json::from_str(&kv.value).map_err(|source| IpamError::Corrupt {
        key: kv.key.clone(),
        what: T::WHAT,
        source,
    })?;
    Ok(Stored {
        value,
        revision: kv.mod_revision,
    })
}

/// The live (not soft-deleted) value of a stored object.
pub fn live<T: IpamObject>(stored: Option<&Stored<T>>) -> Option<&T> {
    stored.map(|s| &s.value).filter(|v| !v.is_deleted())
}

/// Reads one key, retrying while the datastore is briefly unavailable.
pub async fn get<T: IpamObject>(
    backend: &dyn Backend,
    key: &str,
) -> Result<Option<Stored<T>>, IpamError> {
    get_raw(backend, key)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Reads one key undecoded, retrying while the datastore is briefly unavailable.
pub async fn get_raw(backend: &dyn Backend, key: &str) -> Result<Option<KeyValue>, IpamError> {
    let mut attempt = 0;
    loop {
        match backend.get(key).await {
            Ok(kv) => return Ok(kv),
            Err(e) if e.is_unavailable() && attempt < RETRIES => {
                attempt += 1;
                unavailable_pause(attempt).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Lists every key under `prefix` (one consistent snapshot), retrying while unavailable.
pub async fn list(backend: &dyn Backend, prefix: &str) -> Result<Vec<KeyValue>, IpamError> {
    let mut attempt = 0;
    loop {
        match backend.list(prefix).await {
            Ok(listing) => return Ok(listing.items),
            Err(e) if e.is_unavailable() && attempt < RETRIES => {
                attempt += 1;
                unavailable_pause(attempt).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits a little before retrying an operation the datastore could not take (5 ms per attempt,
/// up to 200 ms).
pub async fn unavailable_pause(attempt: usize) {
    let ms = 5u64.saturating_mul(u64::try_from(attempt).unwrap_or(u64::MAX).min(40));
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// What a read-modify-write step decides, given the current value.
#[derive(Debug)]
pub enum Decision<T, R> {
    /// Store this value (compare-and-swap on the revision the decision saw).
    Put(T, R),
    /// Delete the key (compare-and-swap likewise).
    Delete(R),
    /// Write nothing.
    Keep(R),
}

/// Where a read-modify-write starts.
#[derive(Debug)]
pub enum Start<T> {
    /// Read the key first.
    Read,
    /// Start from a guess (a cached value, or `None` for "probably absent"). A write based on
    /// it is checked by the CAS; a decision to write nothing (or an error) is re-checked
    /// against a fresh read before it is believed.
    Guess(Option<Stored<T>>),
}

/// Reads, decides, writes with compare-and-swap; on conflict takes the current value the CAS
/// returned and decides again, at most [`RETRIES`] times. `decide` must not change anything
/// outside: it may be called several times, only the last call's result counts, and only once
/// the write is stored. Returns the decision's result and what the key holds afterwards.
pub async fn modify<T, R, F>(
    backend: &dyn Backend,
    key: &str,
    start: Start<T>,
    mut decide: F,
) -> Result<(R, Option<Stored<T>>), IpamError>
where
    T: IpamObject,
    F: FnMut(Option<&Stored<T>>) -> Result<Decision<T, R>, IpamError>,
{
    let (mut current, mut verified) = match start {
        Start::Read => (get::<T>(backend, key).await?, true),
        Start::Guess(guess) => (guess, false),
    };
    for _ in 0..RETRIES {
        let decision = decide(current.as_ref());
        let decision = match decision {
            Ok(Decision::Put(value, r)) => (value, r),
            Ok(Decision::Delete(r)) => {
                let Some(stored) = &current else {
                    if verified {
                        return Ok((r, None));
                    }
                    current = get(backend, key).await?;
                    verified = true;
                    continue;
                };
                match backend.delete(key, Some(stored.revision)).await {
                    Ok(_) => return Ok((r, None)),
                    Err(BackendError::Conflict { .. } | BackendError::NotFound { .. }) => {}
                    Err(e) if e.is_unavailable() => unavailable_pause(1).await,
                    Err(e) => return Err(e.into()),
                }
                current = get(backend, key).await?;
                verified = true;
                continue;
            }
            Ok(Decision::Keep(r)) if verified => return Ok((r, current)),
            Err(e) if verified => return Err(e),
            Ok(Decision::Keep(_)) | Err(_) => {
                current = get(backend, key).await?;
                verified = true;
                continue;
            }
        };
        let (value, r) = decision;
        let text = encode(key, &value)?;
        let expected = current.as_ref().map_or(0, |s| s.revision);
        match backend.compare_and_swap(key, &text, expected).await {
            Ok(CasOutcome::Swapped(revision)) => {
                return Ok((r, Some(Stored { value, revision })));
            }
            Ok(CasOutcome::Current(kv)) => {
                current = kv.as_ref().map(decode).transpose()?;
                verified = true;
            }
            Err(e) if e.is_unavailable() => {
                unavailable_pause(1).await;
                current = get(backend, key).await?;
                verified = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(IpamError::TooManyConflicts {
        key: key.to_string(),
        attempts: RETRIES,
    })
}

/// Like [`modify`], but every write also requires a second key, the guard, to be unchanged
/// since `decide` saw it: one transaction checks the guard's revision and writes the key. On
/// a conflict on either, both are taken as they are now and `decide` runs again. Used where
/// one object's change is only right while another stays as it was (a block given back to a
/// node only while its claim stands; a pending claim dropped only while the block is not
/// the node's). Always starts from a read of both: these paths are rare races.
pub async fn modify_guarded<T, G, R, F>(
    backend: &dyn Backend,
    key: &str,
    guard_key: &str,
    mut decide: F,
) -> Result<(R, Option<Stored<T>>), IpamError>
where
    T: IpamObject,
    G: IpamObject,
    F: FnMut(Option<&Stored<T>>, Option<&Stored<G>>) -> Result<Decision<T, R>, IpamError>,
{
    let mut current = get::<T>(backend, key).await?;
    let mut guard = get::<G>(backend, guard_key).await?;
    for attempt in 1..=RETRIES {
        let (write, r) = match decide(current.as_ref(), guard.as_ref())? {
            Decision::Keep(r) => return Ok((r, current)),
            Decision::Delete(r) if current.is_none() => return Ok((r, None)),
            Decision::Delete(r) => (None, r),
            Decision::Put(value, r) => (Some(value), r),
        };
        let expected = current.as_ref().map_or(0, |s| s.revision);
        let op = match &write {
            Some(value) => TxnOp::Put {
                key: key.to_string(),
                value: encode(key, value)?,
                expected,
            },
            None => TxnOp::Delete {
                key: key.to_string(),
                expected,
            },
        };
        let check = TxnOp::Check {
            key: guard_key.to_string(),
            expected: guard.as_ref().map_or(0, |s| s.revision),
        };
        match backend.transaction(&[op, check]).await {
            Ok(TxnOutcome::Committed(revision)) => {
                return Ok((r, write.map(|value| Stored { value, revision })));
            }
            Ok(TxnOutcome::Current(now)) => {
                current = now
                    .first()
                    .and_then(Option::as_ref)
                    .map(decode)
                    .transpose()?;
                guard = now
                    .get(1)
                    .and_then(Option::as_ref)
                    .map(decode)
                    .transpose()?;
            }
            Err(e) if e.is_unavailable() => {
                unavailable_pause(attempt).await;
                current = get::<T>(backend, key).await?;
                guard = get::<G>(backend, guard_key).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(IpamError::TooManyConflicts {
        key: key.to_string(),
        attempts: RETRIES,
    })
}

/// Encodes an IPAM object as the JSON text stored under `key`.
pub fn encode<T: IpamObject>(key: &str, value: &T) -> Result<String, IpamError> {
    serde_json::to_string(value).map_err(|source| IpamError::Corrupt {
        key: key.to_string(),
        what: T::WHAT,
        source,
    })
}

/// A block as stored, shared between the cache and the writes that start from it (a block is
/// up to a few KB; sharing saves a copy per allocation).
pub type SharedBlock = Arc<Stored<AllocationBlock>>;

/// Blocks this process has read or written, with their revisions, and each node's confirmed
/// blocks as last listed. Only ever a starting guess for [`modify`] and the block transactions.
#[derive(Debug, Default)]
pub struct Cache {
    blocks: HashMap<IpNet, SharedBlock>,
    affine: HashMap<(String, u8), (Vec<IpNet>, Instant)>,
}

/// How long a node's affinity listing is trusted before the next full refresh (affinities
/// and blocks re-read, interrupted claims recovered) when its cached blocks are full. Only a
/// hint: a stale answer can make a node borrow or claim a little early, never hand out an
/// address twice.
pub const AFFINE_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

fn version_of(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 6,
    }
}

impl Cache {
    /// The cached block.
    pub fn block(&self, cidr: &IpNet) -> Option<&SharedBlock> {
        self.blocks.get(cidr)
    }

    /// Records what a key holds now (`None`: absent). An older revision than the cached one
    /// is ignored, so concurrent tasks cannot roll the cache back.
    pub fn put_block(&mut self, cidr: IpNet, stored: Option<SharedBlock>) {
        match stored {
            Some(s) => {
                let newer = self
                    .blocks
                    .get(&cidr)
                    .is_none_or(|old| old.revision <= s.revision);
                if newer {
                    self.blocks.insert(cidr, s);
                }
            }
            None => {
                self.blocks.remove(&cidr);
            }
        }
    }

    /// The cached block containing `ip`.
    pub fn block_containing(&self, ip: std::net::IpAddr) -> Option<IpNet> {
        self.blocks.keys().find(|c| c.contains(&ip)).copied()
    }

    /// The node's confirmed blocks of IP version `version` as last listed.
    pub fn affine(&self, node: &str, version: u8) -> Option<&[IpNet]> {
        self.affine
            .get(&(node.to_string(), version))
            .map(|(list, _)| list.as_slice())
    }

    /// The node's confirmed blocks, if they were listed less than
    /// [`AFFINE_REFRESH_INTERVAL`] ago.
    pub fn recent_affine(&self, node: &str, version: u8) -> Option<Vec<IpNet>> {
        self.affine
            .get(&(node.to_string(), version))
            .filter(|(_, at)| at.elapsed() < AFFINE_REFRESH_INTERVAL)
            .map(|(list, _)| list.clone())
    }

    /// Replaces the node's confirmed blocks of one IP version (just listed).
    pub fn set_affine(&mut self, node: &str, version: u8, blocks: Vec<IpNet>) {
        self.affine
            .insert((node.to_string(), version), (blocks, Instant::now()));
    }

    /// Cached blocks of the family inside `within` that are not affine to `node` and have
    /// free addresses by the cache (borrowing candidates worth a compare-and-swap).
    pub fn borrowable(
        &self,
        node: &str,
        within: &IpNet,
        free: impl Fn(&AllocationBlock) -> bool,
    ) -> Vec<IpNet> {
        self.blocks
            .iter()
            .filter(|(cidr, b)| {
                within.contains(*cidr) && b.value.host() != Some(node) && free(&b.value)
            })
            .map(|(cidr, _)| *cidr)
            .collect()
    }

    /// Adds one confirmed block of the node (only once its list has been read).
    pub fn add_affine(&mut self, node: &str, block: IpNet) {
        if let Some((list, _)) = self.affine.get_mut(&(node.to_string(), version_of(&block)))
            && !list.contains(&block)
        {
            list.push(block);
        }
    }

    /// Forgets one block of the node.
    pub fn remove_affine(&mut self, node: &str, block: &IpNet) {
        if let Some((list, _)) = self.affine.get_mut(&(node.to_string(), version_of(block))) {
            list.retain(|b| b != block);
        }
    }
}
