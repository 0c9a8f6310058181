//! A fake link kernel for unit tests: links and addresses in memory, unsupported link kinds,
//! injectable errors and tampering.

use std::collections::VecDeque;

use ipnet::IpNet;

use super::kernel::{KernelLink, LinkChange, LinkKernel, LinkKindSpec, LinkSpec};
use crate::dataplane::addr::MacAddr;
use crate::dataplane::netlink::{KernelErrno, NetlinkError};

/// An in-memory kernel with links and addresses. Like the test machines' kernel, it cannot
/// create `ipip` links ("Unknown device type", `EOPNOTSUPP`) unless told otherwise.
#[derive(Debug)]
pub struct FakeLinkKernel {
    /// Every link.
    pub links: Vec<KernelLink>,
    /// Every address with its interface index.
    pub addresses: Vec<(u32, IpNet)>,
    /// Link kinds the kernel cannot create.
    pub unsupported_kinds: Vec<String>,
    /// Every write, as text (`create vxlan.calico`, `change 5`, ...).
    pub calls: Vec<String>,
    next_index: u32,
    failures: VecDeque<(&'static str, i32)>,
}

impl Default for FakeLinkKernel {
    fn default() -> Self {
        FakeLinkKernel::new()
    }
}

impl FakeLinkKernel {
    /// A kernel with `lo` (1) and without IPIP support.
    pub fn new() -> FakeLinkKernel {
        let mut k = FakeLinkKernel {
            links: Vec::new(),
            addresses: Vec::new(),
            unsupported_kinds: vec!["ipip".to_string()],
            calls: Vec::new(),
            next_index: 1,
            failures: VecDeque::new(),
        };
        k.add_link("lo", None);
        k
    }

    /// Adds a link of `kind`; returns its index.
    pub fn add_link(&mut self, name: &str, kind: Option<&str>) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        self.links.push(KernelLink {
            index,
            name: name.to_string(),
            kind: kind.map(str::to_string),
            mtu: 1500,
            mac: Some(MacAddr([0x02, 0, 0, 0, 0, index as u8])),
            up: true,
            vxlan: None,
        });
        index
    }

    /// The link called `name`.
    pub fn link(&self, name: &str) -> Option<&KernelLink> {
        self.links.iter().find(|l| l.name == name)
    }

    /// The link called `name`, for tampering.
    pub fn link_mut(&mut self, name: &str) -> Option<&mut KernelLink> {
        self.links.iter_mut().find(|l| l.name == name)
    }

    /// Addresses on the link called `name`.
    pub fn addresses_of(&self, name: &str) -> Vec<IpNet> {
        let Some(index) = self.link(name).map(|l| l.index) else {
            return Vec::new();
        };
        self.addresses
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, a)| *a)
            .collect()
    }

    /// Makes the next call of `op` (`create`, `change`, `delete`, `add_address`,
    /// `delete_address`) fail with `errno`.
    pub fn fail_next(&mut self, op: &'static str, errno: i32) {
        self.failures.push_back((op, errno));
    }

    fn injected(&mut self, op: &'static str) -> Result<(), NetlinkError> {
        if let Some(pos) = self.failures.iter().position(|(o, _)| *o == op)
            && let Some((_, errno)) = self.failures.remove(pos)
        {
            return Err(NetlinkError::Kernel(KernelErrno::new(errno)));
        }
        Ok(())
    }

    fn position(&self, index: u32) -> Result<usize, NetlinkError> {
        self.links
            .iter()
            .position(|l| l.index == index)
            .ok_or(NetlinkError::Kernel(KernelErrno::new(libc::ENODEV)))
    }
}

impl LinkKernel for FakeLinkKernel {
    fn links(&mut self) -> Result<Vec<KernelLink>, NetlinkError> {
        Ok(self.links.clone())
    }

    fn addresses(&mut self) -> Result<Vec<(u32, IpNet)>, NetlinkError> {
        Ok(self.addresses.clone())
    }

    fn create_link(&mut self, spec: &LinkSpec) -> Result<(), NetlinkError> {
        self.calls.push(format!("create {}", spec.name));
        self.injected("create")?;
        let kind = match spec.kind {
            LinkKindSpec::Vxlan(_) => "vxlan",
            LinkKindSpec::Ipip => "ipip",
        };
        if self.unsupported_kinds.iter().any(|k| k == kind) {
            return Err(NetlinkError::Kernel(KernelErrno {
                errno: libc::EOPNOTSUPP,
                message: Some("Unknown device type".to_string()),
            }));
        }
        if self.link(&spec.name).is_some() {
            return Err(NetlinkError::Kernel(KernelErrno::new(libc::EEXIST)));
        }
        let index = self.add_link(&spec.name, Some(kind));
        let pos = self.position(index)?;
        let link = &mut self.links[pos];
        if let Some(m) = spec.mtu {
            link.mtu = m;
        }
        if let Some(m) = spec.mac {
            link.mac = Some(m);
        }
        if let LinkKindSpec::Vxlan(p) = &spec.kind {
            link.vxlan = Some(p.clone());
        }
        Ok(())
    }

    fn change_link(&mut self, index: u32, change: &LinkChange) -> Result<(), NetlinkError> {
        self.calls.push(format!("change {index}"));
        self.injected("change")?;
        let pos = self.position(index)?;
        let link = &mut self.links[pos];
        if let Some(m) = change.mtu {
            link.mtu = m;
        }
        if let Some(m) = change.mac {
            link.mac = Some(m);
        }
        link.up |= change.up;
        Ok(())
    }

    fn delete_link(&mut self, index: u32) -> Result<(), NetlinkError> {
        self.calls.push(format!("delete {index}"));
        self.injected("delete")?;
        let pos = self.position(index)?;
        self.links.remove(pos);
        self.addresses.retain(|(i, _)| *i != index);
        Ok(())
    }

    fn add_address(&mut self, index: u32, addr: IpNet) -> Result<(), NetlinkError> {
        self.calls.push(format!("add_address {index} {addr}"));
        self.injected("add_address")?;
        self.position(index)?;
        if self.addresses.contains(&(index, addr)) {
            return Err(NetlinkError::Kernel(KernelErrno::new(libc::EEXIST)));
        }
        self.addresses.push((index, addr));
        Ok(())
    }

    fn delete_address(&mut self, index: u32, addr: IpNet) -> Result<(), NetlinkError> {
        self.calls.push(format!("delete_address {index} {addr}"));
        self.injected("delete_address")?;
        let before = self.addresses.len();
        self.addresses.retain(|x| *x != (index, addr));
        if self.addresses.len() == before {
            return Err(NetlinkError::Kernel(KernelErrno::new(libc::EADDRNOTAVAIL)));
        }
        Ok(())
    }
}
