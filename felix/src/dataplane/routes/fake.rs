//! A fake route kernel for unit tests: an in-memory FIB with the kernel's create/replace/delete
//! semantics, injectable errors and tampering.

use std::collections::{HashMap, VecDeque};

use ipnet::IpNet;

use super::kernel::{KernelRoute, KernelTarget, RouteKernel, RouteWrite};
use crate::dataplane::netlink::{KernelErrno, NetlinkError};

/// An in-memory kernel: routes of every table and protocol, and an interface table.
///
/// Like the kernel, a route is identified by (table, destination, metric): a create of an
/// existing key fails with `EEXIST` whatever its protocol, a replace overwrites whatever is
/// there, and a delete only matches a route with the given protocol (else `ESRCH`). Routes via
/// an unknown interface index fail with `ENODEV`.
#[derive(Debug, Default)]
pub struct FakeRouteKernel {
    /// Every route "in the kernel".
    pub routes: Vec<KernelRoute>,
    /// Interface name to index.
    pub links: HashMap<String, u32>,
    /// Sizes of the batches written, in order.
    pub batches: Vec<usize>,
    /// How many dumps were taken.
    pub dumps: usize,
    errors: HashMap<IpNet, VecDeque<i32>>,
    fail_batches: VecDeque<NetlinkError>,
    fail_dumps: VecDeque<NetlinkError>,
}

impl FakeRouteKernel {
    /// An empty kernel.
    pub fn new() -> FakeRouteKernel {
        FakeRouteKernel::default()
    }

    /// Adds an interface.
    pub fn add_link(&mut self, name: &str, index: u32) {
        self.links.insert(name.to_string(), index);
    }

    /// Removes an interface and, like the kernel, every route through it.
    pub fn remove_link(&mut self, name: &str) {
        if let Some(index) = self.links.remove(name) {
            self.routes.retain(|r| !r.oifs().contains(&index));
        }
    }

    /// Makes the next write to `dst` fail with `errno` (once per call).
    pub fn fail_write(&mut self, dst: IpNet, errno: i32) {
        self.errors.entry(dst).or_default().push_back(errno);
    }

    /// Makes the next batch fail as a whole.
    pub fn fail_next_batch(&mut self, error: NetlinkError) {
        self.fail_batches.push_back(error);
    }

    /// Makes the next dump fail.
    pub fn fail_next_dump(&mut self, error: NetlinkError) {
        self.fail_dumps.push_back(error);
    }

    /// Tampering: removes every route to `dst` (like `ip route del`).
    pub fn tamper_delete(&mut self, dst: IpNet) {
        self.routes.retain(|r| r.dst != dst);
    }

    /// Routes with `protocol`.
    pub fn routes_with_protocol(&self, protocol: u8) -> Vec<&KernelRoute> {
        self.routes
            .iter()
            .filter(|r| r.protocol == protocol)
            .collect()
    }

    /// The route at `dst` in `table`, if exactly one.
    pub fn route(&self, table: u32, dst: IpNet) -> Option<&KernelRoute> {
        let mut it = self
            .routes
            .iter()
            .filter(|r| r.table == table && r.dst == dst);
        let first = it.next();
        if it.next().is_some() { None } else { first }
    }

    fn position(&self, r: &KernelRoute) -> Option<usize> {
        self.routes
            .iter()
            .position(|x| x.table == r.table && x.dst == r.dst && x.metric == r.metric)
    }

    fn check_links(&self, r: &KernelRoute) -> Result<(), KernelErrno> {
        let known: Vec<u32> = self.links.values().copied().collect();
        if r.oifs().iter().any(|i| !known.contains(i)) {
            return Err(KernelErrno::new(libc::ENODEV));
        }
        if let KernelTarget::Other { .. } = r.target {
            return Err(KernelErrno::new(libc::EINVAL));
        }
        Ok(())
    }

    fn write_one(&mut self, w: &RouteWrite) -> Result<(), KernelErrno> {
        let r = w.route();
        if let Some(errno) = self.errors.get_mut(&r.dst).and_then(VecDeque::pop_front) {
            return Err(KernelErrno::new(errno));
        }
        match w {
            RouteWrite::Create(r) => {
                self.check_links(r)?;
                if self.position(r).is_some() {
                    return Err(KernelErrno::new(libc::EEXIST));
                }
                self.routes.push(r.clone());
            }
            RouteWrite::Replace(r) => {
                self.check_links(r)?;
                match self.position(r) {
                    Some(i) => self.routes[i] = r.clone(),
                    None => self.routes.push(r.clone()),
                }
            }
            RouteWrite::Delete(r) => {
                let at = self.routes.iter().position(|x| {
                    x.table == r.table
                        && x.dst == r.dst
                        && x.metric == r.metric
                        && x.protocol == r.protocol
                });
                match at {
                    Some(i) => {
                        self.routes.remove(i);
                    }
                    None => return Err(KernelErrno::new(libc::ESRCH)),
                }
            }
        }
        Ok(())
    }
}

impl RouteKernel for FakeRouteKernel {
    fn dump_routes(&mut self, table: u32) -> Result<Vec<KernelRoute>, NetlinkError> {
        if let Some(e) = self.fail_dumps.pop_front() {
            return Err(e);
        }
        self.dumps += 1;
        Ok(self
            .routes
            .iter()
            .filter(|r| r.table == table)
            .cloned()
            .collect())
    }

    fn interfaces(&mut self) -> Result<HashMap<String, u32>, NetlinkError> {
        Ok(self.links.clone())
    }

    fn write_routes(
        &mut self,
        writes: &[RouteWrite],
    ) -> Result<Vec<Result<(), KernelErrno>>, NetlinkError> {
        if let Some(e) = self.fail_batches.pop_front() {
            return Err(e);
        }
        self.batches.push(writes.len());
        Ok(writes.iter().map(|w| self.write_one(w)).collect())
    }
}
