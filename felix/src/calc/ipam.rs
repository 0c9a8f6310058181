//! The IPAM index: who owns each block (its confirmed affinity), which addresses are borrowed
//! (allocated to a node other than the block's owner), and the reverse indexes that let one
//! changed node, block or affinity touch only its own routes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use fabric_datastore::ipam_model::{AllocationBlock, BlockAffinity};
use ipnet::IpNet;

/// The attribute that names the node an allocation is used on.
const NODE_ATTRIBUTE: &str = "node";

/// Ownership and borrowing, kept incrementally.
#[derive(Debug, Default, Clone)]
pub(crate) struct IpamIndex {
    /// Block -> node -> confirmed, for every affinity record.
    affinities: HashMap<IpNet, BTreeMap<String, bool>>,
    /// The owner of each owned block: the first node (by name) with a confirmed affinity.
    owners: HashMap<IpNet, String>,
    /// Node -> the blocks it owns.
    owned: HashMap<String, BTreeSet<IpNet>>,
    /// Block -> its allocations that name a node: address -> node.
    allocations: HashMap<IpNet, BTreeMap<IpAddr, String>>,
    /// Borrowed address (as a /32 or /128) -> (the node using it, its block).
    borrowed: HashMap<IpNet, (String, IpNet)>,
    /// Block -> its borrowed addresses.
    block_borrowed: HashMap<IpNet, BTreeSet<IpNet>>,
    /// Node -> the borrowed addresses used on it.
    borrowers: HashMap<String, BTreeSet<IpNet>>,
}

impl IpamIndex {
    /// Records an affinity (or its deletion); returns the prefixes whose routes may change.
    pub(crate) fn set_affinity(
        &mut self,
        node: &str,
        cidr: IpNet,
        affinity: Option<&BlockAffinity>,
    ) -> Vec<IpNet> {
        let entry = self.affinities.entry(cidr).or_default();
        match affinity {
            Some(a) => {
                entry.insert(node.to_string(), a.is_confirmed());
            }
            None => {
                entry.remove(node);
            }
        }
        if entry.is_empty() {
            self.affinities.remove(&cidr);
        }
        self.refresh_owner(cidr)
    }

    /// Records a block's allocations (or its deletion); returns the prefixes whose routes may
    /// change.
    pub(crate) fn set_block(&mut self, cidr: IpNet, block: Option<&AllocationBlock>) -> Vec<IpNet> {
        let allocations: BTreeMap<IpAddr, String> = block
            .map(|b| {
                b.in_use()
                    .filter_map(|(_, ip, attr)| {
                        let node = attr?.active_owner_attrs.get(NODE_ATTRIBUTE)?;
                        (!node.is_empty()).then(|| (ip, node.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if allocations.is_empty() {
            self.allocations.remove(&cidr);
        } else {
            self.allocations.insert(cidr, allocations);
        }
        self.refresh_borrowed(cidr)
    }

    fn refresh_owner(&mut self, cidr: IpNet) -> Vec<IpNet> {
        let new = self
            .affinities
            .get(&cidr)
            .and_then(|m| m.iter().find(|(_, confirmed)| **confirmed))
            .map(|(n, _)| n.clone());
        let old = self.owners.get(&cidr).cloned();
        if new == old {
            return Vec::new();
        }
        if let Some(o) = &old {
            if let Some(set) = self.owned.get_mut(o) {
                set.remove(&cidr);
                if set.is_empty() {
                    self.owned.remove(o);
                }
            }
            self.owners.remove(&cidr);
        }
        if let Some(n) = &new {
            self.owned.entry(n.clone()).or_default().insert(cidr);
            self.owners.insert(cidr, n.clone());
        }
        let mut touched = vec![cidr];
        touched.extend(self.refresh_borrowed(cidr));
        touched
    }

    /// Recomputes the borrowed addresses of one block (allocation node != block owner).
    fn refresh_borrowed(&mut self, cidr: IpNet) -> Vec<IpNet> {
        let owner = self.owners.get(&cidr);
        let new: BTreeMap<IpNet, String> = self
            .allocations
            .get(&cidr)
            .map(|allocs| {
                allocs
                    .iter()
                    .filter(|(_, node)| Some(*node) != owner)
                    .map(|(ip, node)| (IpNet::from(*ip), node.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let old = self.block_borrowed.remove(&cidr).unwrap_or_default();
        let mut touched = Vec::new();
        for prefix in &old {
            let unchanged = self
                .borrowed
                .get(prefix)
                .is_some_and(|(n, _)| new.get(prefix) == Some(n));
            if unchanged {
                continue;
            }
            touched.push(*prefix);
            if let Some((node, _)) = self.borrowed.remove(prefix)
                && let Some(set) = self.borrowers.get_mut(&node)
            {
                set.remove(prefix);
                if set.is_empty() {
                    self.borrowers.remove(&node);
                }
            }
        }
        for (prefix, node) in &new {
            if self.borrowed.get(prefix).is_some_and(|(n, _)| n == node) {
                continue;
            }
            touched.push(*prefix);
            self.borrowed.insert(*prefix, (node.clone(), cidr));
            self.borrowers
                .entry(node.clone())
                .or_default()
                .insert(*prefix);
        }
        if !new.is_empty() {
            self.block_borrowed.insert(cidr, new.into_keys().collect());
        }
        touched
    }

    /// The owner of `block`, if it is a block with a confirmed affinity.
    pub(crate) fn owner(&self, block: &IpNet) -> Option<&str> {
        self.owners.get(block).map(String::as_str)
    }

    /// The node using the borrowed address `prefix`, and its block.
    pub(crate) fn borrowed(&self, prefix: &IpNet) -> Option<&(String, IpNet)> {
        self.borrowed.get(prefix)
    }

    /// The blocks `node` owns.
    pub(crate) fn owned_by(&self, node: &str) -> impl Iterator<Item = IpNet> + '_ {
        self.owned.get(node).into_iter().flatten().copied()
    }

    /// The borrowed addresses used on `node`.
    pub(crate) fn borrowed_by(&self, node: &str) -> impl Iterator<Item = IpNet> + '_ {
        self.borrowers.get(node).into_iter().flatten().copied()
    }

    /// Every owned block.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.owners.keys().copied()
    }

    /// Every borrowed address.
    pub(crate) fn borrowed_prefixes(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.borrowed.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_datastore::ipam_model::{AffinityState, AllocationAttribute};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn confirmed() -> BlockAffinity {
        BlockAffinity {
            state: AffinityState::Confirmed,
            deleted: false,
        }
    }

    /// A /30 block with ordinals used on the given nodes.
    fn block(cidr: &str, used_on: &[Option<&str>]) -> AllocationBlock {
        let mut attributes = Vec::new();
        let mut allocations = Vec::new();
        for node in used_on {
            match node {
                Some(n) => {
                    allocations.push(Some(attributes.len()));
                    let mut a = AllocationAttribute::default();
                    a.active_owner_attrs.insert("node".into(), n.to_string());
                    attributes.push(a);
                }
                None => allocations.push(None),
            }
        }
        AllocationBlock {
            cidr: net(cidr),
            affinity: None,
            affinity_claim_time: None,
            strict_affinity: false,
            allocations,
            unallocated: Vec::new(),
            attributes,
            sequence_number: 0,
            sequence_number_for_allocation: BTreeMap::new(),
            deleted: false,
        }
    }

    #[test]
    fn only_a_confirmed_affinity_makes_an_owner() {
        let mut ix = IpamIndex::default();
        let pending = BlockAffinity {
            state: AffinityState::Pending,
            deleted: false,
        };
        assert!(
            ix.set_affinity("a", net("10.0.0.0/30"), Some(&pending))
                .is_empty()
        );
        assert_eq!(ix.owner(&net("10.0.0.0/30")), None);
        assert_eq!(
            ix.set_affinity("a", net("10.0.0.0/30"), Some(&confirmed())),
            vec![net("10.0.0.0/30")]
        );
        assert_eq!(ix.owner(&net("10.0.0.0/30")), Some("a"));
        assert_eq!(
            ix.owned_by("a").collect::<Vec<_>>(),
            vec![net("10.0.0.0/30")]
        );
    }

    #[test]
    fn addresses_used_on_another_node_than_the_owner_are_borrowed() {
        let mut ix = IpamIndex::default();
        ix.set_affinity("a", net("10.0.0.0/30"), Some(&confirmed()));
        let touched = ix.set_block(
            net("10.0.0.0/30"),
            Some(&block(
                "10.0.0.0/30",
                &[Some("a"), Some("b"), None, Some("c")],
            )),
        );
        assert_eq!(touched, vec![net("10.0.0.1/32"), net("10.0.0.3/32")]);
        assert_eq!(ix.borrowed(&net("10.0.0.1/32")).unwrap().0, "b");
        assert_eq!(
            ix.borrowed_by("c").collect::<Vec<_>>(),
            vec![net("10.0.0.3/32")]
        );
        // The affinity moves to b: .1 is no longer borrowed, .0 (on a) now is.
        let mut touched = ix.set_affinity("a", net("10.0.0.0/30"), None);
        touched.extend(ix.set_affinity("b", net("10.0.0.0/30"), Some(&confirmed())));
        touched.sort();
        touched.dedup();
        assert_eq!(
            touched,
            vec![net("10.0.0.0/30"), net("10.0.0.0/32"), net("10.0.0.1/32")]
        );
        assert!(ix.borrowed(&net("10.0.0.1/32")).is_none());
        assert_eq!(ix.borrowed(&net("10.0.0.0/32")).unwrap().0, "a");
    }

    #[test]
    fn deleting_a_block_forgets_its_borrowed_addresses() {
        let mut ix = IpamIndex::default();
        ix.set_block(
            net("10.0.0.0/30"),
            Some(&block("10.0.0.0/30", &[Some("b")])),
        );
        assert_eq!(ix.borrowed_prefixes().count(), 1);
        assert_eq!(
            ix.set_block(net("10.0.0.0/30"), None),
            vec![net("10.0.0.0/32")]
        );
        assert_eq!(ix.borrowed_prefixes().count(), 0);
        assert_eq!(ix.borrowed_by("b").count(), 0);
    }
}
