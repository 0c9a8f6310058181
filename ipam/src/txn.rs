//! The write every allocation and release goes through: one block and the handles whose
//! addresses it changes, in one datastore transaction with a compare-and-swap on every key.
//! A handle therefore never disagrees with the blocks, not even after a crash.
//!
//! The loop: decide on the block as known (a cached guess, or read), read the handles the
//! decision touches if they are not known yet, send one transaction; when a comparison fails,
//! the transaction's answer carries every key's current value, so the next attempt needs no
//! read. At most [`RETRIES`] attempts. `decide` is pure: nothing is changed in memory until the
//! transaction is stored, and the block cache only ever learns stored values.

use std::sync::Arc;

use fabric_datastore::ipam_model::{AllocationBlock, IpamHandle};
use fabric_datastore::keys::{ipam_block_key, ipam_handle_key};
use fabric_datastore::{KeyValue, TxnOp, TxnOutcome};
use ipnet::IpNet;

use crate::Ipam;
use crate::error::IpamError;
use crate::store::{self, RETRIES, SharedBlock, Stored, live};

/// What to do with the block.
#[derive(Debug)]
pub(crate) enum BlockChange {
    /// Store this block.
    Put(AllocationBlock),
    /// Delete the block.
    Delete,
    /// Leave it (when handles change, the transaction still requires the block unchanged).
    Keep,
}

/// What to do with a handle's count for the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandleChange {
    /// The block holds `n` more of the handle's addresses (the handle is created if absent).
    Add(usize),
    /// The block holds `n` fewer (the block's entry goes at 0, the handle with its last entry).
    Remove(usize),
    /// The block holds none of the handle's addresses any more: drop its entry, whatever the
    /// count said.
    Forget,
}

/// A decision on one block: its change, the handle changes that go with it, and the result
/// the caller gets once it is stored.
#[derive(Debug)]
pub(crate) struct Plan<R> {
    /// The block's change.
    pub block: BlockChange,
    /// Each handle's change (a handle at most once).
    pub handles: Vec<(String, HandleChange)>,
    /// What the caller gets.
    pub result: R,
}

impl<R> Plan<R> {
    /// Change nothing.
    pub(crate) fn keep(result: R) -> Plan<R> {
        Plan {
            block: BlockChange::Keep,
            handles: Vec::new(),
            result,
        }
    }
}

/// What the caller knows of a key before the write.
#[derive(Debug, Clone)]
pub(crate) enum Known<T> {
    /// Nothing: read it first.
    Read,
    /// A guess (a cached value, or `None` for "probably absent"). A write based on it is
    /// checked by the transaction; a decision to write nothing, or an error, is believed only
    /// after a fresh read.
    Guess(Option<T>),
    /// What the key held a moment ago, as read or written.
    Fresh(Option<T>),
    /// Must be absent (a new handle): guessed absent, and when the transaction shows it
    /// holds addresses, the write fails with [`IpamError::HandleInUse`] and nothing is
    /// written. Saves the read a caller would otherwise make to find a retried request.
    New,
}

/// What a stored decision returns.
#[derive(Debug)]
pub(crate) struct Written<R> {
    /// The decision's result.
    pub result: R,
    /// What each handle the loop knew holds afterwards (`None`: absent).
    pub handles: Vec<(String, Option<Stored<IpamHandle>>)>,
}

impl<R> Written<R> {
    /// What `handle` holds afterwards, if the loop knew it.
    pub(crate) fn handle(&self, handle: &str) -> Option<Option<Stored<IpamHandle>>> {
        self.handles
            .iter()
            .find(|(id, _)| id == handle)
            .map(|(_, h)| h.clone())
    }
}

/// One handle the loop knows.
#[derive(Debug)]
struct HandleSlot {
    id: String,
    key: String,
    current: Option<Stored<IpamHandle>>,
    verified: bool,
    /// From [`Known::New`]: holding addresses already is an error.
    must_be_new: bool,
}

impl HandleSlot {
    /// The error when the handle had to be new and turns out to hold addresses.
    fn in_use(&self) -> Option<IpamError> {
        let held = live(self.current.as_ref()).is_some_and(|h| !h.block.is_empty());
        (self.must_be_new && held).then(|| IpamError::HandleInUse {
            handle: self.id.clone(),
        })
    }
}

/// A handle's next value: `Some(None)` deletes it, `None` leaves it.
type HandleWrite = Option<Option<IpamHandle>>;

/// Applies `changes` to what the handle holds for `label`.
fn next_handle(
    id: &str,
    current: Option<&Stored<IpamHandle>>,
    label: &str,
    changes: &[HandleChange],
) -> HandleWrite {
    let mut h = live(current).cloned();
    let mut changed = false;
    for change in changes {
        match *change {
            HandleChange::Add(0) => {}
            HandleChange::Add(n) => {
                let handle = h.get_or_insert_with(|| IpamHandle {
                    handle_id: id.to_string(),
                    ..IpamHandle::default()
                });
                handle.deleted = false;
                *handle.block.entry(label.to_string()).or_insert(0) += n;
                changed = true;
            }
            HandleChange::Remove(n) => {
                if let Some(count) = h.as_mut().and_then(|h| h.block.get_mut(label)) {
                    *count = count.saturating_sub(n);
                    if *count == 0
                        && let Some(h) = h.as_mut()
                    {
                        h.block.remove(label);
                    }
                    changed = true;
                }
            }
            HandleChange::Forget => {
                if h.as_mut().and_then(|h| h.block.remove(label)).is_some() {
                    changed = true;
                }
            }
        }
    }
    if !changed {
        return None;
    }
    Some(h.filter(|h| !h.block.is_empty()))
}

/// The revision a compare-and-swap expects of a key as known (0: absent).
fn revision_of<T>(stored: Option<&Stored<T>>) -> i64 {
    stored.map_or(0, |s| s.revision)
}

fn decode_block(kv: Option<&KeyValue>) -> Result<Option<SharedBlock>, IpamError> {
    Ok(kv
        .map(store::decode::<AllocationBlock>)
        .transpose()?
        .map(Arc::new))
}

/// Reads the block key (soft-deleted blocks included: their revision is what a write expects).
async fn read_block_at(
    backend: &dyn fabric_datastore::Backend,
    key: &str,
) -> Result<Option<SharedBlock>, IpamError> {
    decode_block(store::get_raw(backend, key).await?.as_ref())
}

impl Ipam {
    /// Changes block `cidr` and the handles that go with it in one transaction, deciding with
    /// `decide` on the live block (`None`: absent or soft-deleted). Returns the result of the
    /// decision that was stored (or of a verified decision to change nothing) and what the
    /// handles hold afterwards. `handles` are the handles the caller knows; others a decision
    /// names are read. The block cache learns the stored block.
    pub(crate) async fn write_block<R, F>(
        &self,
        cidr: IpNet,
        block: Known<SharedBlock>,
        handles: Vec<(String, Known<Stored<IpamHandle>>)>,
        mut decide: F,
    ) -> Result<Written<R>, IpamError>
    where
        F: FnMut(Option<&AllocationBlock>) -> Result<Plan<R>, IpamError>,
    {
        let backend = self.backend.as_ref();
        let block_key = ipam_block_key(&cidr);
        let label = cidr.to_string();
        let (mut current, mut verified) = match block {
            Known::Read => (read_block_at(backend, &block_key).await?, true),
            Known::Guess(guess) => (guess, false),
            Known::Fresh(known) => (known, true),
            Known::New => (None, false),
        };
        let mut slots = Vec::with_capacity(handles.len());
        for (id, known) in handles {
            let key = ipam_handle_key(&id);
            let must_be_new = matches!(known, Known::New);
            let (current, verified) = match known {
                Known::Read => (store::get::<IpamHandle>(backend, &key).await?, true),
                Known::Guess(guess) => (guess, false),
                Known::Fresh(known) => (known, true),
                Known::New => (None, false),
            };
            slots.push(HandleSlot {
                id,
                key,
                current,
                verified,
                must_be_new,
            });
        }
        let mut attempts = 0;
        while attempts < RETRIES {
            attempts += 1;
            let live_block = current.as_deref().map(|s| &s.value).filter(|b| !b.deleted);
            let plan = match decide(live_block) {
                Ok(plan) => plan,
                Err(e) if verified => return Err(e),
                Err(_) => {
                    current = read_block_at(backend, &block_key).await?;
                    verified = true;
                    continue;
                }
            };
            // Handles the decision names that the loop does not know yet: read them.
            for (id, _) in &plan.handles {
                if !slots.iter().any(|s| s.id == *id) {
                    let key = ipam_handle_key(id);
                    let current = store::get::<IpamHandle>(backend, &key).await?;
                    slots.push(HandleSlot {
                        id: id.clone(),
                        key,
                        current,
                        verified: true,
                        must_be_new: false,
                    });
                }
            }
            // The handle writes; a decision to leave a guessed handle alone is re-checked.
            let mut handle_writes: Vec<(usize, Option<IpamHandle>)> = Vec::new();
            let mut unverified_keep = None;
            for (i, slot) in slots.iter().enumerate() {
                let changes: Vec<HandleChange> = plan
                    .handles
                    .iter()
                    .filter(|(id, _)| *id == slot.id)
                    .map(|(_, c)| *c)
                    .collect();
                if changes.is_empty() {
                    continue;
                }
                match next_handle(&slot.id, slot.current.as_ref(), &label, &changes) {
                    Some(next) => handle_writes.push((i, next)),
                    None if !slot.verified => unverified_keep = Some(i),
                    None => {}
                }
            }
            if let Some(i) = unverified_keep {
                let slot = &mut slots[i];
                slot.current = store::get::<IpamHandle>(backend, &slot.key).await?;
                slot.verified = true;
                attempts -= 1;
                continue;
            }
            let mut ops = Vec::with_capacity(1 + handle_writes.len());
            let expected = revision_of(current.as_deref());
            let mut planned_block = None;
            match plan.block {
                BlockChange::Put(next) => {
                    ops.push(TxnOp::Put {
                        key: block_key.clone(),
                        value: store::encode(&block_key, &next)?,
                        expected,
                    });
                    planned_block = Some(next);
                }
                BlockChange::Delete if current.is_some() => ops.push(TxnOp::Delete {
                    key: block_key.clone(),
                    expected,
                }),
                BlockChange::Delete | BlockChange::Keep => {
                    if handle_writes.is_empty() {
                        if verified {
                            self.cache_shared(cidr, current);
                            return Ok(written(plan.result, slots));
                        }
                        current = read_block_at(backend, &block_key).await?;
                        verified = true;
                        continue;
                    }
                    ops.push(TxnOp::Check {
                        key: block_key.clone(),
                        expected,
                    });
                }
            }
            for (i, next) in &handle_writes {
                let slot = &slots[*i];
                let expected = revision_of(slot.current.as_ref());
                ops.push(match next {
                    Some(h) => TxnOp::Put {
                        key: slot.key.clone(),
                        value: store::encode(&slot.key, h)?,
                        expected,
                    },
                    None if expected == 0 => TxnOp::Check {
                        key: slot.key.clone(),
                        expected,
                    },
                    None => TxnOp::Delete {
                        key: slot.key.clone(),
                        expected,
                    },
                });
            }
            match backend.transaction(&ops).await {
                Ok(TxnOutcome::Committed(revision)) => {
                    let block_after = match (&ops[0], planned_block) {
                        (TxnOp::Put { .. }, Some(value)) => {
                            Some(Arc::new(Stored { value, revision }))
                        }
                        (TxnOp::Delete { .. }, _) => None,
                        _ => current,
                    };
                    self.cache_shared(cidr, block_after);
                    for (i, next) in handle_writes {
                        slots[i].current = next.map(|value| Stored { value, revision });
                    }
                    return Ok(written(plan.result, slots));
                }
                Ok(TxnOutcome::Current(now)) => {
                    current = decode_block(now.first().and_then(Option::as_ref))?;
                    verified = true;
                    for ((i, _), kv) in handle_writes.iter().zip(now.iter().skip(1)) {
                        let slot = &mut slots[*i];
                        slot.current = kv.as_ref().map(store::decode).transpose()?;
                        slot.verified = true;
                        if let Some(e) = slot.in_use() {
                            return Err(e);
                        }
                    }
                }
                Err(e) if e.is_unavailable() => {
                    // The transaction may or may not have been applied: read everything again.
                    store::unavailable_pause(attempts).await;
                    current = read_block_at(backend, &block_key).await?;
                    verified = true;
                    for (i, _) in &handle_writes {
                        let slot = &mut slots[*i];
                        slot.current = store::get::<IpamHandle>(backend, &slot.key).await?;
                        slot.verified = true;
                    }
                    if let (Some(planned), Some(now)) = (&planned_block, &current)
                        && now.value == *planned
                    {
                        // It was: the block holds exactly what this attempt wrote (its
                        // sequence number included), and the handles went with it.
                        self.cache_shared(cidr, current);
                        return Ok(written(plan.result, slots));
                    }
                    if let Some(e) = slots.iter().find_map(HandleSlot::in_use) {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(IpamError::TooManyConflicts {
            key: block_key,
            attempts: RETRIES,
        })
    }
}

fn written<R>(result: R, slots: Vec<HandleSlot>) -> Written<R> {
    Written {
        result,
        handles: slots.into_iter().map(|s| (s.id, s.current)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(blocks: &[(&str, usize)]) -> Stored<IpamHandle> {
        Stored {
            value: IpamHandle {
                handle_id: "h".into(),
                block: blocks.iter().map(|(b, n)| (b.to_string(), *n)).collect(),
                deleted: false,
            },
            revision: 7,
        }
    }

    #[test]
    fn adding_to_an_absent_handle_creates_it_with_the_count() {
        let next = next_handle("h", None, "10.0.0.0/26", &[HandleChange::Add(2)]);
        let h = next.unwrap().unwrap();
        assert_eq!(h.handle_id, "h");
        assert_eq!(h.block.get("10.0.0.0/26"), Some(&2));
    }

    #[test]
    fn removing_the_last_address_deletes_the_handle_and_others_keep_it() {
        let one = stored(&[("10.0.0.0/26", 1)]);
        assert_eq!(
            next_handle("h", Some(&one), "10.0.0.0/26", &[HandleChange::Remove(1)]),
            Some(None)
        );
        let two = stored(&[("10.0.0.0/26", 1), ("10.0.1.0/26", 3)]);
        let next = next_handle("h", Some(&two), "10.0.1.0/26", &[HandleChange::Remove(1)]);
        assert_eq!(next.unwrap().unwrap().block.get("10.0.1.0/26"), Some(&2));
        let next = next_handle("h", Some(&two), "10.0.1.0/26", &[HandleChange::Forget]);
        let kept = next.unwrap().unwrap();
        assert_eq!(kept.block.len(), 1);
        assert_eq!(kept.block.get("10.0.0.0/26"), Some(&1));
    }

    #[test]
    fn a_change_to_a_block_the_handle_does_not_list_writes_nothing() {
        let h = stored(&[("10.0.0.0/26", 1)]);
        assert_eq!(
            next_handle("h", Some(&h), "10.0.1.0/26", &[HandleChange::Remove(1)]),
            None
        );
        assert_eq!(
            next_handle("h", None, "10.0.1.0/26", &[HandleChange::Forget]),
            None
        );
        assert_eq!(
            next_handle("h", None, "10.0.1.0/26", &[HandleChange::Add(0)]),
            None
        );
    }
}
