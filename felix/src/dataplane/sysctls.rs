//! Sysctls: forwarding for the node and per-`cali*`-interface settings (proxy ARP, proxy delay,
//! forwarding, route_localnet; proxy NDP for IPv6), written idempotently through `/proc/sys`.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use super::Reconciler;
use super::addr::check_interface_name;
use super::status::{ApplyReport, DataplaneError, Health, InvalidInput, error_chain};

/// One desired sysctl value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    value: String,
    /// The interface the key belongs to: a missing key then means "interface not there yet".
    interface: Option<String>,
}

/// Desired sysctl values, keyed by their path below `/proc/sys` (`net/ipv4/ip_forward`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysctlSet {
    values: BTreeMap<String, Wanted>,
}

impl SysctlSet {
    /// An empty set.
    pub fn new() -> SysctlSet {
        SysctlSet::default()
    }

    /// The node-wide settings: IPv4 forwarding, and IPv6 forwarding when IPv6 is used.
    pub fn node(ipv4: bool, ipv6: bool) -> SysctlSet {
        let mut s = SysctlSet::new();
        if ipv4 {
            s.insert("net/ipv4/ip_forward", "1", None);
        }
        if ipv6 {
            s.insert("net/ipv6/conf/all/forwarding", "1", None);
        }
        s
    }

    /// Adds the settings of a workload (`cali*`) interface: for IPv4 `proxy_arp=1`,
    /// `neigh/<if>/proxy_delay=0`, `forwarding=1`, `route_localnet=1`; for IPv6 `proxy_ndp=1`,
    /// `forwarding=1`, `accept_ra=0`.
    pub fn add_workload_interface(
        &mut self,
        name: &str,
        ipv4: bool,
        ipv6: bool,
    ) -> Result<(), InvalidInput> {
        check_interface_name("sysctls.interface", name)?;
        let i = Some(name.to_string());
        if ipv4 {
            self.insert(&format!("net/ipv4/conf/{name}/proxy_arp"), "1", i.clone());
            self.insert(
                &format!("net/ipv4/neigh/{name}/proxy_delay"),
                "0",
                i.clone(),
            );
            self.insert(&format!("net/ipv4/conf/{name}/forwarding"), "1", i.clone());
            self.insert(
                &format!("net/ipv4/conf/{name}/route_localnet"),
                "1",
                i.clone(),
            );
        }
        if ipv6 {
            self.insert(&format!("net/ipv6/conf/{name}/proxy_ndp"), "1", i.clone());
            self.insert(&format!("net/ipv6/conf/{name}/forwarding"), "1", i.clone());
            self.insert(&format!("net/ipv6/conf/{name}/accept_ra"), "0", i);
        }
        Ok(())
    }

    /// Adds any key. `path` is relative to `/proc/sys`, `/`-separated; `interface` names the
    /// interface the key belongs to, if any.
    pub fn set(
        &mut self,
        path: &str,
        value: &str,
        interface: Option<&str>,
    ) -> Result<(), InvalidInput> {
        let bad_component = path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.chars().any(char::is_whitespace));
        if bad_component {
            return Err(InvalidInput::new(
                "sysctls.path",
                path,
                "a sysctl path is relative to /proc/sys, with non-empty components and no '.', '..' or whitespace",
            ));
        }
        if value.is_empty() || value.contains('\n') {
            return Err(InvalidInput::new(
                format!("sysctls[{path}]"),
                value,
                "a sysctl value is one non-empty line",
            ));
        }
        if let Some(i) = interface {
            check_interface_name(&format!("sysctls[{path}].interface"), i)?;
        }
        self.insert(path, value, interface.map(str::to_string));
        Ok(())
    }

    fn insert(&mut self, path: &str, value: &str, interface: Option<String>) {
        self.values.insert(
            path.to_string(),
            Wanted {
                value: value.to_string(),
                interface,
            },
        );
    }

    /// Adds every key of `other` (its values win).
    pub fn merge(&mut self, other: SysctlSet) {
        self.values.extend(other.values);
    }

    /// The keys and values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(k, w)| (k.as_str(), w.value.as_str()))
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Reading and writing sysctls.
pub trait SysctlKernel {
    /// The current value (trimmed).
    fn read(&mut self, path: &str) -> io::Result<String>;
    /// Writes a value.
    fn write(&mut self, path: &str, value: &str) -> io::Result<()>;
}

/// [`SysctlKernel`] through `/proc/sys`, which shows the network namespace of the calling thread.
#[derive(Debug, Clone)]
pub struct ProcSys {
    root: PathBuf,
}

impl Default for ProcSys {
    fn default() -> Self {
        ProcSys {
            root: PathBuf::from("/proc/sys"),
        }
    }
}

impl SysctlKernel for ProcSys {
    fn read(&mut self, path: &str) -> io::Result<String> {
        Ok(std::fs::read_to_string(self.root.join(path))?
            .trim()
            .to_string())
    }

    fn write(&mut self, path: &str, value: &str) -> io::Result<()> {
        std::fs::write(self.root.join(path), value)
    }
}

/// Keeps sysctls at their desired values. Nothing is ever deleted (an interface's keys go with
/// it); keys of an interface that does not exist yet wait for it.
#[derive(Debug)]
pub struct SysctlReconciler<K: SysctlKernel> {
    kernel: K,
    desired: SysctlSet,
    /// Keys known to hold their desired value.
    confirmed: BTreeMap<String, String>,
    in_sync: bool,
    health: Health,
}

impl<K: SysctlKernel> SysctlReconciler<K> {
    /// A reconciler over `kernel`.
    pub fn new(kernel: K) -> SysctlReconciler<K> {
        SysctlReconciler {
            kernel,
            desired: SysctlSet::new(),
            confirmed: BTreeMap::new(),
            in_sync: false,
            health: Health::healthy(),
        }
    }

    /// Sets the desired values (validated when the set was built). No I/O.
    pub fn set_desired(&mut self, desired: SysctlSet) {
        self.confirmed
            .retain(|k, v| desired.values.get(k).is_some_and(|w| w.value == *v));
        self.desired = desired;
    }

    /// Whether the datastore is in sync (sysctls are never deleted, so this only records it).
    pub fn in_sync(&self) -> bool {
        self.in_sync
    }

    /// The kernel access (tests use it to tamper with a fake kernel).
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }
}

impl<K: SysctlKernel> Reconciler for SysctlReconciler<K> {
    fn name(&self) -> &'static str {
        "sysctls"
    }

    fn apply(&mut self) -> ApplyReport {
        let mut report = ApplyReport::default();
        for (path, want) in &self.desired.values {
            if self.confirmed.get(path) == Some(&want.value) {
                continue;
            }
            let current = match self.kernel.read(path) {
                Ok(v) => v,
                Err(e) if e.kind() == io::ErrorKind::NotFound && want.interface.is_some() => {
                    report.waiting += 1;
                    continue;
                }
                Err(source) => {
                    report.errors.push(DataplaneError::Sysctl {
                        path: path.clone(),
                        source,
                    });
                    continue;
                }
            };
            if current != want.value {
                if let Err(source) = self.kernel.write(path, &want.value) {
                    tracing::warn!(path = %path, value = %want.value, error = %source, "sysctl write failed");
                    report.errors.push(DataplaneError::Sysctl {
                        path: path.clone(),
                        source,
                    });
                    continue;
                }
                report.updated += 1;
            }
            self.confirmed.insert(path.clone(), want.value.clone());
        }
        self.health = Health::from_reasons(report.errors.iter().map(|e| error_chain(e)).collect());
        report
    }

    fn resync(&mut self) -> ApplyReport {
        self.confirmed.clear();
        let mut report = self.apply();
        report.resynced = true;
        report
    }

    fn set_in_sync(&mut self, in_sync: bool) {
        self.in_sync = in_sync;
    }

    fn health(&self) -> Health {
        self.health.clone()
    }
}

/// A fake sysctl tree for unit tests.
pub mod fake {
    use std::collections::{BTreeMap, HashMap};
    use std::io;

    use super::SysctlKernel;

    /// Sysctls in memory; a key that is absent does not exist. Writes can be made to fail.
    #[derive(Debug, Default)]
    pub struct FakeSysctls {
        /// Every key and value.
        pub values: BTreeMap<String, String>,
        /// Every write, in order.
        pub writes: Vec<(String, String)>,
        failures: HashMap<String, i32>,
    }

    impl FakeSysctls {
        /// An empty tree.
        pub fn new() -> FakeSysctls {
            FakeSysctls::default()
        }

        /// Adds a key (as if its interface appeared).
        pub fn add(&mut self, path: &str, value: &str) {
            self.values.insert(path.to_string(), value.to_string());
        }

        /// Makes the next write of `path` fail with `errno`.
        pub fn fail_write(&mut self, path: &str, errno: i32) {
            self.failures.insert(path.to_string(), errno);
        }
    }

    impl SysctlKernel for FakeSysctls {
        fn read(&mut self, path: &str) -> io::Result<String> {
            self.values
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        fn write(&mut self, path: &str, value: &str) -> io::Result<()> {
            if let Some(errno) = self.failures.remove(path) {
                return Err(io::Error::from_raw_os_error(errno));
            }
            let slot = self
                .values
                .get_mut(path)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            *slot = value.to_string();
            self.writes.push((path.to_string(), value.to_string()));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeSysctls;
    use super::*;

    fn kernel_with(interface: &str) -> FakeSysctls {
        let mut k = FakeSysctls::new();
        k.add("net/ipv4/ip_forward", "0");
        for (key, value) in [
            ("proxy_arp", "0"),
            ("forwarding", "0"),
            ("route_localnet", "0"),
        ] {
            k.add(&format!("net/ipv4/conf/{interface}/{key}"), value);
        }
        k.add(&format!("net/ipv4/neigh/{interface}/proxy_delay"), "80");
        k
    }

    fn desired() -> SysctlSet {
        let mut s = SysctlSet::node(true, false);
        s.add_workload_interface("cali1", true, false).unwrap();
        s
    }

    #[test]
    fn only_differing_values_are_written_and_a_second_apply_reads_nothing() {
        let mut k = kernel_with("cali1");
        k.add("net/ipv4/conf/cali1/forwarding", "1");
        let mut r = SysctlReconciler::new(k);
        r.set_desired(desired());
        let report = r.apply();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert_eq!(report.updated, 4, "forwarding was already 1");
        assert_eq!(
            r.kernel_mut().values["net/ipv4/neigh/cali1/proxy_delay"],
            "0"
        );
        assert!(r.apply().is_noop());
    }

    #[test]
    fn a_value_changed_by_hand_is_repaired_by_resync() {
        let mut r = SysctlReconciler::new(kernel_with("cali1"));
        r.set_desired(desired());
        r.apply();
        r.kernel_mut().add("net/ipv4/conf/cali1/proxy_arp", "0");
        let report = r.resync();
        assert_eq!(report.updated, 1);
        assert_eq!(r.kernel_mut().values["net/ipv4/conf/cali1/proxy_arp"], "1");
    }

    #[test]
    fn keys_of_a_missing_interface_wait_for_it() {
        let mut k = kernel_with("cali1");
        k.values.retain(|p, _| !p.contains("cali1"));
        let mut r = SysctlReconciler::new(k);
        r.set_desired(desired());
        let report = r.apply();
        assert!(report.is_ok());
        assert_eq!((report.updated, report.waiting), (1, 4));
        for (p, v) in kernel_with("cali1").values {
            r.kernel_mut().values.entry(p).or_insert(v);
        }
        let report = r.apply();
        assert_eq!((report.updated, report.waiting), (4, 0));
    }

    #[test]
    fn a_missing_node_key_and_a_failed_write_are_errors_and_retried() {
        let mut k = kernel_with("cali1");
        k.fail_write("net/ipv4/conf/cali1/proxy_arp", libc::EBUSY);
        let mut r = SysctlReconciler::new(k);
        let mut s = desired();
        s.set("net/ipv6/conf/all/forwarding", "1", None).unwrap();
        r.set_desired(s);
        let report = r.apply();
        assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
        assert!(!r.health().is_healthy());
        let report = r.apply();
        assert_eq!(report.updated, 1, "the failed write is retried");
    }

    #[test]
    fn foreign_sysctls_are_never_touched() {
        let mut k = kernel_with("cali1");
        k.add("net/ipv4/conf/eth0/proxy_arp", "0");
        let mut r = SysctlReconciler::new(k);
        r.set_desired(desired());
        r.set_in_sync(true);
        r.apply();
        r.set_desired(SysctlSet::new());
        r.apply();
        let k = r.kernel_mut();
        assert_eq!(k.values["net/ipv4/conf/eth0/proxy_arp"], "0");
        assert!(k.writes.iter().all(|(p, _)| !p.contains("eth0")));
    }

    #[test]
    fn invalid_keys_are_rejected() {
        let mut s = SysctlSet::new();
        assert!(s.set("net/../ipv4", "1", None).is_err());
        assert!(s.set("/net/ipv4/ip_forward", "1", None).is_err());
        assert!(s.set("net/ipv4/ip_forward", "", None).is_err());
        assert!(s.add_workload_interface("cali/1", true, false).is_err());
        assert!(s.is_empty());
    }
}
