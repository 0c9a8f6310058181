//! Pure operations on one allocation block: create it, hand out ordinals from the head of the
//! free list (skipping reserved addresses), assign a given address, release (refusing stale
//! sequence numbers), drop a handle's addresses, and count usage. No I/O: every operation takes
//! a block and returns a changed copy with `sequenceNumber` raised by one, or nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use fabric_api::IPReservation;
use fabric_api::validate::cidr::Cidr;
use fabric_datastore::ipam_model::{AllocationAttribute, AllocationBlock, HOST_AFFINITY_PREFIX};
use ipnet::IpNet;

use crate::error::IpamError;

/// Addresses IPAM must not hand out automatically (every IPReservation's CIDRs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservations {
    nets: Vec<IpNet>,
}

impl Reservations {
    /// The reserved CIDRs of the given resources (unparsable entries are skipped: the client
    /// validated them on write).
    pub fn from_resources(resources: &[IPReservation]) -> Reservations {
        let nets = resources
            .iter()
            .flat_map(|r| r.spec.reserved_cidrs.iter())
            .filter_map(|c| Cidr::parse_or_ip(c).ok())
            .filter_map(|c| IpNet::new(c.addr, c.prefix_len).ok())
            .map(|n| n.trunc())
            .collect();
        Reservations::from_nets(nets)
    }

    /// Reservations of the given networks.
    pub fn from_nets(nets: Vec<IpNet>) -> Reservations {
        Reservations {
            nets: IpNet::aggregate(&nets),
        }
    }

    /// Whether `ip` is reserved.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether any reservation overlaps `net`.
    pub fn overlaps(&self, net: &IpNet) -> bool {
        self.nets.iter().any(|n| n.contains(net) || net.contains(n))
    }

    /// How many reserved addresses lie inside `net` (the reservations are disjoint).
    pub fn count_within(&self, net: &IpNet) -> u128 {
        self.nets
            .iter()
            .map(|n| {
                if net.contains(n) {
                    net_size(n)
                } else if n.contains(net) {
                    net_size(net)
                } else {
                    0
                }
            })
            .fold(0u128, u128::saturating_add)
    }

    /// The reserved networks, aggregated.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

/// How many addresses `net` spans (saturating at `u128::MAX` for ::/0).
pub fn net_size(net: &IpNet) -> u128 {
    let bits = u32::from(net.max_prefix_len() - net.prefix_len());
    1u128.checked_shl(bits).unwrap_or(u128::MAX)
}

/// One address handed out by [`allocate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocated {
    /// The ordinal in the block.
    pub ordinal: usize,
    /// The address.
    pub ip: IpAddr,
    /// The allocation's sequence number (the block's sequence number when it was made).
    pub sequence: u64,
}

/// The result of [`release`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// The released addresses with the handle each was held by.
    pub released: Vec<(IpAddr, Option<String>)>,
    /// Addresses of the request that were not allocated.
    pub not_allocated: Vec<IpAddr>,
}

/// One address to release from a block, with the checks the caller wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRelease {
    /// The address.
    pub ip: IpAddr,
    /// Release only if the allocation's sequence number is this one.
    pub sequence: Option<u64>,
    /// Release only if the allocation belongs to this handle.
    pub handle: Option<String>,
}

/// `host:<node>`.
pub fn host_affinity(node: &str) -> String {
    format!("{HOST_AFFINITY_PREFIX}{node}")
}

/// A new block: every ordinal free, in address order.
pub fn new_block(
    cidr: IpNet,
    node: Option<&str>,
    claim_time: Option<String>,
    sequence: u64,
) -> AllocationBlock {
    let cidr = cidr.trunc();
    let size = usize::try_from(net_size(&cidr)).unwrap_or(usize::MAX);
    AllocationBlock {
        cidr,
        affinity: node.map(host_affinity),
        affinity_claim_time: claim_time,
        strict_affinity: false,
        allocations: vec![None; size],
        unallocated: (0..size).collect(),
        attributes: Vec::new(),
        sequence_number: sequence,
        sequence_number_for_allocation: BTreeMap::new(),
        deleted: false,
    }
}

/// The sequence number recorded for the allocation at `ordinal` (0 when none was recorded).
pub fn sequence_of(block: &AllocationBlock, ordinal: usize) -> u64 {
    block
        .sequence_number_for_allocation
        .get(&ordinal.to_string())
        .copied()
        .unwrap_or(0)
}

/// How many free ordinals are not reserved.
pub fn free_count(block: &AllocationBlock, reserved: &Reservations) -> usize {
    if !reserved.overlaps(&block.cidr) {
        return block.unallocated.len();
    }
    block
        .unallocated
        .iter()
        .filter(|&&ord| block.address(ord).is_some_and(|ip| !reserved.contains(ip)))
        .count()
}

/// Whether no address is in use.
pub fn is_empty(block: &AllocationBlock) -> bool {
    block.allocations.iter().all(Option::is_none)
}

/// The block as the next write stores it: `sequenceNumber` raised by one.
fn next_version(block: &AllocationBlock) -> AllocationBlock {
    let mut next = block.clone();
    next.sequence_number = block.sequence_number.wrapping_add(1);
    next
}

/// Hands out up to `max` addresses from the head of the free list, skipping reserved ones
/// (which keep their place), all held by `attr`. `None` when nothing is free.
pub fn allocate(
    block: &AllocationBlock,
    max: usize,
    attr: AllocationAttribute,
    reserved: &Reservations,
) -> Option<(AllocationBlock, Vec<Allocated>)> {
    if max == 0 {
        return None;
    }
    let check_reserved = reserved.overlaps(&block.cidr);
    let mut taken = Vec::new();
    let mut kept = Vec::with_capacity(block.unallocated.len());
    for &ord in &block.unallocated {
        let usable = taken.len() < max
            && ord < block.allocations.len()
            && block.allocations[ord].is_none()
            && !(check_reserved && block.address(ord).is_some_and(|ip| reserved.contains(ip)));
        if usable {
            taken.push(ord);
        } else {
            kept.push(ord);
        }
    }
    if taken.is_empty() {
        return None;
    }
    let mut next = next_version(block);
    let index = next.attributes.len();
    next.attributes.push(attr);
    next.unallocated = kept;
    let sequence = block.sequence_number;
    let mut out = Vec::with_capacity(taken.len());
    for ord in taken {
        next.allocations[ord] = Some(index);
        next.sequence_number_for_allocation
            .insert(ord.to_string(), sequence);
        if let Some(ip) = block.address(ord) {
            out.push(Allocated {
                ordinal: ord,
                ip,
                sequence,
            });
        }
    }
    Some((next, out))
}

/// Assigns the given address (reservations do not apply: the caller asked for it).
pub fn assign(
    block: &AllocationBlock,
    ip: IpAddr,
    attr: AllocationAttribute,
) -> Result<(AllocationBlock, Allocated), IpamError> {
    let ord = block.ordinal(ip).ok_or_else(|| {
        IpamError::invalid(
            "ip",
            ip.to_string(),
            format!("is not in block {}", block.cidr),
        )
    })?;
    if let Some(idx) = block.allocations[ord] {
        return Err(IpamError::AlreadyAllocated {
            ip,
            handle: handle_name(block.attributes.get(idx)),
        });
    }
    let mut next = next_version(block);
    let index = next.attributes.len();
    next.attributes.push(attr);
    next.allocations[ord] = Some(index);
    next.unallocated.retain(|&o| o != ord);
    next.sequence_number_for_allocation
        .insert(ord.to_string(), block.sequence_number);
    Ok((
        next,
        Allocated {
            ordinal: ord,
            ip,
            sequence: block.sequence_number,
        },
    ))
}

fn handle_name(attr: Option<&AllocationAttribute>) -> String {
    attr.and_then(|a| a.handle_id.clone())
        .unwrap_or_else(|| "<none>".to_string())
}

/// Releases the requested addresses: all or nothing. A request whose sequence number or
/// handle does not match the allocation fails the whole call and changes nothing. Freed
/// ordinals go to the tail of the free list. `None` as the block when nothing was released.
pub fn release(
    block: &AllocationBlock,
    requests: &[BlockRelease],
) -> Result<(Option<AllocationBlock>, Released), IpamError> {
    let mut out = Released::default();
    let mut ordinals = Vec::new();
    for req in requests {
        let Some(ord) = block.ordinal(req.ip) else {
            out.not_allocated.push(req.ip);
            continue;
        };
        let Some(idx) = block.allocations[ord] else {
            out.not_allocated.push(req.ip);
            continue;
        };
        if ordinals.contains(&ord) {
            continue;
        }
        let attr = block.attributes.get(idx);
        let holder = attr.and_then(|a| a.handle_id.clone());
        if let Some(given) = &req.handle
            && holder.as_ref() != Some(given)
        {
            return Err(IpamError::HandleMismatch {
                ip: req.ip,
                given: given.clone(),
                actual: handle_name(attr),
            });
        }
        let current = sequence_of(block, ord);
        if let Some(given) = req.sequence
            && given != current
        {
            return Err(IpamError::StaleSequence {
                ip: req.ip,
                given,
                current,
            });
        }
        ordinals.push(ord);
        out.released.push((req.ip, holder));
    }
    if ordinals.is_empty() {
        return Ok((None, out));
    }
    Ok((Some(free_ordinals(block, &ordinals)), out))
}

/// Releases every address held by `handle`; `None` when it holds none here.
pub fn release_handle(
    block: &AllocationBlock,
    handle: &str,
) -> Option<(AllocationBlock, Vec<IpAddr>)> {
    let ordinals: Vec<usize> = block
        .allocations
        .iter()
        .enumerate()
        .filter_map(|(ord, a)| {
            let attr = block.attributes.get((*a)?)?;
            (attr.handle_id.as_deref() == Some(handle)).then_some(ord)
        })
        .collect();
    if ordinals.is_empty() {
        return None;
    }
    let ips = ordinals.iter().filter_map(|&o| block.address(o)).collect();
    Some((free_ordinals(block, &ordinals), ips))
}

/// How many addresses of `handle` the block holds.
#[cfg(test)]
pub fn count_for_handle(block: &AllocationBlock, handle: &str) -> usize {
    block
        .allocations
        .iter()
        .filter_map(|a| block.attributes.get((*a)?))
        .filter(|attr| attr.handle_id.as_deref() == Some(handle))
        .count()
}

/// The block with its affinity removed (a node gave it up while addresses were in use).
pub fn without_affinity(block: &AllocationBlock) -> AllocationBlock {
    let mut next = next_version(block);
    next.affinity = None;
    next.affinity_claim_time = None;
    next
}

/// Frees `ordinals` (tail of the free list) and drops attributes nothing refers to any more.
fn free_ordinals(block: &AllocationBlock, ordinals: &[usize]) -> AllocationBlock {
    let mut next = next_version(block);
    for &ord in ordinals {
        next.allocations[ord] = None;
        next.sequence_number_for_allocation.remove(&ord.to_string());
        if !next.unallocated.contains(&ord) {
            next.unallocated.push(ord);
        }
    }
    compact_attributes(&mut next);
    next
}

/// Removes unreferenced attributes and renumbers the references.
fn compact_attributes(block: &mut AllocationBlock) {
    let used: BTreeSet<usize> = block.allocations.iter().flatten().copied().collect();
    if used.len() == block.attributes.len() {
        return;
    }
    let mut remap = BTreeMap::new();
    let mut kept = Vec::with_capacity(used.len());
    for (old, attr) in block.attributes.iter().enumerate() {
        if used.contains(&old) {
            remap.insert(old, kept.len());
            kept.push(attr.clone());
        }
    }
    for slot in block.allocations.iter_mut() {
        if let Some(old) = *slot {
            *slot = remap.get(&old).copied();
        }
    }
    block.attributes = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn attr(handle: &str) -> AllocationAttribute {
        AllocationAttribute {
            handle_id: Some(handle.to_string()),
            ..AllocationAttribute::default()
        }
    }

    fn block() -> AllocationBlock {
        new_block(net("10.0.0.0/30"), Some("n1"), None, 100)
    }

    #[test]
    fn a_new_block_has_every_ordinal_free_in_order() {
        let b = block();
        assert_eq!(b.unallocated, vec![0, 1, 2, 3]);
        assert_eq!(b.affinity.as_deref(), Some("host:n1"));
        assert!(is_empty(&b));
    }

    #[test]
    fn allocation_takes_the_head_of_the_free_list_and_raises_the_sequence() {
        let (b, got) = allocate(&block(), 2, attr("h"), &Reservations::default()).unwrap();
        assert_eq!(
            got.iter().map(|a| a.ip).collect::<Vec<_>>(),
            vec![ip("10.0.0.0"), ip("10.0.0.1")]
        );
        assert!(got.iter().all(|a| a.sequence == 100));
        assert_eq!(b.sequence_number, 101);
        assert_eq!(b.unallocated, vec![2, 3]);
        assert_eq!(b.attributes.len(), 1);
        assert_eq!(sequence_of(&b, 1), 100);
    }

    #[test]
    fn released_ordinals_go_to_the_tail_so_the_longest_free_is_reused_first() {
        let (b, _) = allocate(&block(), 1, attr("a"), &Reservations::default()).unwrap();
        let req = BlockRelease {
            ip: ip("10.0.0.0"),
            sequence: None,
            handle: None,
        };
        let (b, out) = release(&b, &[req]).unwrap();
        let b = b.unwrap();
        assert_eq!(out.released, vec![(ip("10.0.0.0"), Some("a".to_string()))]);
        assert_eq!(b.unallocated, vec![1, 2, 3, 0]);
        assert!(b.attributes.is_empty());
        assert!(b.sequence_number_for_allocation.is_empty());
    }

    #[test]
    fn reserved_addresses_are_skipped_and_keep_their_place() {
        let reserved = Reservations::from_nets(vec![net("10.0.0.0/31")]);
        assert_eq!(free_count(&block(), &reserved), 2);
        let (b, got) = allocate(&block(), 4, attr("h"), &reserved).unwrap();
        assert_eq!(
            got.iter().map(|a| a.ip).collect::<Vec<_>>(),
            vec![ip("10.0.0.2"), ip("10.0.0.3")]
        );
        assert_eq!(b.unallocated, vec![0, 1]);
        assert!(allocate(&b, 1, attr("x"), &reserved).is_none());
    }

    #[test]
    fn a_stale_sequence_or_wrong_handle_refuses_the_whole_release() {
        let (b, got) = allocate(&block(), 2, attr("h"), &Reservations::default()).unwrap();
        let good = BlockRelease {
            ip: got[0].ip,
            sequence: Some(got[0].sequence),
            handle: Some("h".into()),
        };
        let stale = BlockRelease {
            ip: got[1].ip,
            sequence: Some(got[1].sequence - 1),
            handle: None,
        };
        let err = release(&b, &[good.clone(), stale]).unwrap_err();
        assert!(matches!(err, IpamError::StaleSequence { .. }), "{err}");
        let wrong = BlockRelease {
            handle: Some("other".into()),
            ..good.clone()
        };
        let err = release(&b, &[wrong]).unwrap_err();
        assert!(matches!(err, IpamError::HandleMismatch { .. }), "{err}");
        let (after, out) = release(&b, &[good]).unwrap();
        assert_eq!(out.released.len(), 1);
        assert_eq!(after.unwrap().in_use_count(), 1);
    }

    #[test]
    fn a_reallocated_address_has_a_new_sequence_number() {
        let r = Reservations::default();
        let b = new_block(net("10.0.0.0/32"), Some("n"), None, 7);
        let (b, first) = allocate(&b, 1, attr("a"), &r).unwrap();
        let req = BlockRelease {
            ip: first[0].ip,
            sequence: Some(first[0].sequence),
            handle: None,
        };
        let (b, _) = release(&b, std::slice::from_ref(&req)).unwrap();
        let (b, second) = allocate(&b.unwrap(), 1, attr("b"), &r).unwrap();
        assert_eq!(first[0].ip, second[0].ip);
        assert_ne!(first[0].sequence, second[0].sequence);
        assert!(matches!(
            release(&b, &[req]),
            Err(IpamError::StaleSequence { .. })
        ));
    }

    #[test]
    fn assigning_a_taken_address_names_its_holder() {
        let (b, _) = assign(&block(), ip("10.0.0.2"), attr("x")).unwrap();
        assert_eq!(b.unallocated, vec![0, 1, 3]);
        let err = assign(&b, ip("10.0.0.2"), attr("y")).unwrap_err();
        assert!(err.to_string().contains("handle x"), "{err}");
    }

    #[test]
    fn releasing_a_handle_frees_only_its_addresses_and_compacts_attributes() {
        let r = Reservations::default();
        let (b, _) = allocate(&block(), 1, attr("a"), &r).unwrap();
        let (b, _) = allocate(&b, 2, attr("b"), &r).unwrap();
        assert_eq!(count_for_handle(&b, "b"), 2);
        let (b, ips) = release_handle(&b, "a").unwrap();
        assert_eq!(ips, vec![ip("10.0.0.0")]);
        assert_eq!(b.attributes.len(), 1);
        assert_eq!(b.allocations[1], Some(0));
        assert!(release_handle(&b, "a").is_none());
    }

    #[test]
    fn reservation_counts_merge_overlaps() {
        let r = Reservations::from_nets(vec![net("10.0.0.0/30"), net("10.0.0.1/32")]);
        assert_eq!(r.count_within(&net("10.0.0.0/24")), 4);
        assert_eq!(r.count_within(&net("10.0.0.2/31")), 2);
        assert_eq!(r.count_within(&net("10.0.1.0/24")), 0);
    }
}
