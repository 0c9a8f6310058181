//! The deterministic walk over a pool's block-sized subnets: it starts at a point seeded by the
//! FNV-32 hash of the node name (as Calico seeds its block generator), so retries by one node
//! hit the same candidates in the same order and different nodes start in different places,
//! then steps through every subnet once, wrapping at the end of the pool.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// FNV-1 32-bit hash (Go's `hash/fnv.New32`), the seed Calico derives from the node name.
pub fn fnv32(text: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash = hash.wrapping_mul(0x0100_0193);
        hash ^= u32::from(byte);
    }
    hash
}

/// SplitMix64: a well-mixed 64-bit value from a seed (one step).
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Every `/block_prefix` subnet of a pool, once each, from a node-seeded start.
#[derive(Debug, Clone)]
pub struct BlockWalk {
    base: u128,
    v4: bool,
    block_prefix: u8,
    count: u128,
    start: u128,
    step: u128,
}

impl BlockWalk {
    /// The walk for `node` over `pool` cut into `/block_prefix` subnets. `nonce` is mixed into
    /// the seed (Calico seeds /32-block walks with the time, so one-address blocks spread out);
    /// `None` keeps the walk a pure function of the node name.
    pub fn new(pool: IpNet, block_prefix: u8, node: &str, nonce: Option<u64>) -> BlockWalk {
        let pool = pool.trunc();
        let (base, v4, max) = match pool.network() {
            IpAddr::V4(a) => (u128::from(u32::from(a)), true, 32u8),
            IpAddr::V6(a) => (u128::from(a), false, 128u8),
        };
        let block_prefix = block_prefix.clamp(pool.prefix_len(), max);
        let bits = u32::from(block_prefix - pool.prefix_len());
        let count = if bits >= 128 {
            u128::MAX
        } else {
            1u128 << bits
        };
        let seed = u64::from(fnv32(node)) ^ nonce.unwrap_or(0);
        let hi = splitmix64(seed);
        let lo = splitmix64(hi);
        let start = ((u128::from(hi) << 64) | u128::from(lo)) % count;
        BlockWalk {
            base,
            v4,
            block_prefix,
            count,
            start,
            step: 0,
        }
    }

    /// How many subnets the pool holds (saturating at `u128::MAX`).
    pub fn subnets(&self) -> u128 {
        self.count
    }

    /// The subnet at `index` (0-based from the pool's start).
    fn subnet(&self, index: u128) -> IpNet {
        let max = if self.v4 { 32 } else { 128 };
        let shift = max - u32::from(self.block_prefix);
        let offset = index.checked_shl(shift).unwrap_or(0);
        let addr = self.base.wrapping_add(offset);
        let ip = if self.v4 {
            IpAddr::V4(Ipv4Addr::from(u32::try_from(addr).unwrap_or(u32::MAX)))
        } else {
            IpAddr::V6(Ipv6Addr::from(addr))
        };
        IpNet::new(ip, self.block_prefix).unwrap_or_else(|_| IpNet::from(ip))
    }

    /// The position of `block` in this walk (0 = visited first), if it is one of its subnets.
    /// Sorting existing blocks by it visits them in walk order without stepping through gaps.
    pub fn position(&self, block: &IpNet) -> Option<u128> {
        if block.prefix_len() != self.block_prefix {
            return None;
        }
        let addr = match (block.network(), self.v4) {
            (IpAddr::V4(a), true) => u128::from(u32::from(a)),
            (IpAddr::V6(a), false) => u128::from(a),
            _ => return None,
        };
        let max = if self.v4 { 32 } else { 128 };
        let shift = max - u32::from(self.block_prefix);
        let offset = addr.checked_sub(self.base)?;
        let index = offset.checked_shr(shift).unwrap_or(0);
        if index >= self.count || self.subnet(index) != *block {
            return None;
        }
        Some((index + self.count - self.start) % self.count)
    }
}

impl Iterator for BlockWalk {
    type Item = IpNet;

    fn next(&mut self) -> Option<IpNet> {
        if self.step >= self.count {
            return None;
        }
        let index = (self.start + self.step) % self.count;
        self.step += 1;
        Some(self.subnet(index))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn fnv32_matches_the_published_test_vectors() {
        assert_eq!(fnv32(""), 0x811c_9dc5);
        assert_eq!(fnv32("a"), 0x050c_5d7e);
        assert_eq!(fnv32("foobar"), 0x31f0_b262);
    }

    #[test]
    fn a_walk_visits_every_block_once_and_wraps() {
        let walk = BlockWalk::new(net("10.0.0.0/24"), 26, "node-1", None);
        let blocks: Vec<IpNet> = walk.collect();
        assert_eq!(blocks.len(), 4);
        let set: BTreeSet<_> = blocks.iter().collect();
        assert_eq!(set.len(), 4);
        for b in &blocks {
            assert_eq!(b.prefix_len(), 26);
            assert!(net("10.0.0.0/24").contains(b));
        }
    }

    #[test]
    fn the_same_node_always_starts_at_the_same_block_and_nodes_diverge() {
        let pool = net("10.0.0.0/16");
        let first = |node: &str| BlockWalk::new(pool, 26, node, None).next().unwrap();
        assert_eq!(first("node-a"), first("node-a"));
        let starts: BTreeSet<IpNet> = (0..20).map(|i| first(&format!("node-{i}"))).collect();
        assert!(starts.len() > 15, "starts: {starts:?}");
    }

    #[test]
    fn positions_follow_the_walk_order() {
        let walk = BlockWalk::new(net("fd00::/112"), 122, "n", None);
        for (i, block) in walk.clone().take(50).enumerate() {
            assert_eq!(walk.position(&block), Some(i as u128));
        }
        assert_eq!(walk.position(&net("fd00::1:0/122")), None);
        assert_eq!(walk.position(&net("fd00::/120")), None);
    }

    #[test]
    fn a_huge_ipv6_pool_is_walked_lazily() {
        let mut walk = BlockWalk::new(net("fd00::/48"), 122, "n", None);
        assert_eq!(walk.subnets(), 1u128 << 74);
        let a = walk.next().unwrap();
        let b = walk.next().unwrap();
        assert_ne!(a, b);
    }
}
