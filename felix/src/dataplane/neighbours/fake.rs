//! A fake neighbour kernel for unit tests: neighbour and FDB tables in memory, injectable errors.

use std::collections::{HashMap, VecDeque};

use super::kernel::{KernelFdb, KernelNeighbour, NeighbourKernel, NeighbourWrite};
use crate::dataplane::addr::IpFamily;
use crate::dataplane::netlink::{KernelErrno, NetlinkError};

/// An in-memory kernel with links, neighbours and FDB entries.
#[derive(Debug, Default)]
pub struct FakeNeighbourKernel {
    /// Interface name to index.
    pub links: HashMap<String, u32>,
    /// Every neighbour entry.
    pub neighbours: Vec<KernelNeighbour>,
    /// Every FDB entry.
    pub fdb: Vec<KernelFdb>,
    /// Sizes of the batches written.
    pub batches: Vec<usize>,
    failures: VecDeque<i32>,
}

impl FakeNeighbourKernel {
    /// An empty kernel.
    pub fn new() -> FakeNeighbourKernel {
        FakeNeighbourKernel::default()
    }

    /// Makes the next write fail with `errno`.
    pub fn fail_next_write(&mut self, errno: i32) {
        self.failures.push_back(errno);
    }

    fn write(&mut self, w: &NeighbourWrite) -> Result<(), KernelErrno> {
        if let Some(errno) = self.failures.pop_front() {
            return Err(KernelErrno::new(errno));
        }
        match w {
            NeighbourWrite::SetNeighbour {
                ifindex,
                address,
                mac,
            } => {
                self.neighbours
                    .retain(|n| !(n.ifindex == *ifindex && n.address == *address));
                self.neighbours.push(KernelNeighbour {
                    ifindex: *ifindex,
                    address: *address,
                    mac: Some(*mac),
                    permanent: true,
                });
            }
            NeighbourWrite::DeleteNeighbour { ifindex, address } => {
                let before = self.neighbours.len();
                self.neighbours
                    .retain(|n| !(n.ifindex == *ifindex && n.address == *address));
                if self.neighbours.len() == before {
                    return Err(KernelErrno::new(libc::ENOENT));
                }
            }
            NeighbourWrite::SetFdb { ifindex, mac, dst } => {
                // Replace moves the first remote of the MAC, like vxlan_fdb_replace.
                match self
                    .fdb
                    .iter_mut()
                    .find(|e| e.ifindex == *ifindex && e.mac == *mac && e.own_table)
                {
                    Some(e) => e.dst = Some(*dst),
                    None => self.fdb.push(entry(*ifindex, *mac, *dst)),
                }
            }
            NeighbourWrite::DeleteFdb { ifindex, mac, dst } => {
                let before = self.fdb.len();
                self.fdb
                    .retain(|e| !(e.ifindex == *ifindex && e.mac == *mac && e.dst == Some(*dst)));
                if self.fdb.len() == before {
                    return Err(KernelErrno::new(libc::ENOENT));
                }
            }
        }
        Ok(())
    }
}

fn entry(ifindex: u32, mac: crate::dataplane::MacAddr, dst: std::net::IpAddr) -> KernelFdb {
    KernelFdb {
        ifindex,
        mac,
        dst: Some(dst),
        permanent: true,
        own_table: true,
    }
}

impl NeighbourKernel for FakeNeighbourKernel {
    fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        Ok(self.links.get(name).copied())
    }

    fn neighbours(
        &mut self,
        ifindex: u32,
        family: IpFamily,
    ) -> Result<Vec<KernelNeighbour>, NetlinkError> {
        Ok(self
            .neighbours
            .iter()
            .filter(|n| n.ifindex == ifindex && IpFamily::of(n.address) == family)
            .cloned()
            .collect())
    }

    fn fdb(&mut self, ifindex: u32) -> Result<Vec<KernelFdb>, NetlinkError> {
        Ok(self
            .fdb
            .iter()
            .filter(|e| e.ifindex == ifindex)
            .cloned()
            .collect())
    }

    fn write_neighbours(
        &mut self,
        writes: &[NeighbourWrite],
    ) -> Result<Vec<Result<(), KernelErrno>>, NetlinkError> {
        self.batches.push(writes.len());
        Ok(writes.iter().map(|w| self.write(w)).collect())
    }
}
