//! What a reconciler reports: apply results, errors, health, and invalid desired state.

use std::fmt;

use ipnet::IpNet;

use super::iptables::CommandError;
use super::netlink::{KernelErrno, NetlinkError};

/// Desired state that breaks a rule; the reconciler rejected it and changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {value:?} is invalid: {rule}")]
pub struct InvalidInput {
    /// Where the bad value is (`routes[10.0.0.0/24].gateway`).
    pub path: String,
    /// The bad value as text.
    pub value: String,
    /// The rule it breaks.
    pub rule: String,
}

impl InvalidInput {
    /// An error for `value` at `path` breaking `rule`.
    pub fn new(path: impl Into<String>, value: impl fmt::Display, rule: impl Into<String>) -> Self {
        InvalidInput {
            path: path.into(),
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}

/// The kind of write that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// Creating an object that did not exist.
    Create,
    /// Replacing or modifying an existing own object.
    Replace,
    /// Deleting a stale own object.
    Delete,
}

impl fmt::Display for WriteOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteOp::Create => "creating",
            WriteOp::Replace => "replacing",
            WriteOp::Delete => "deleting",
        })
    }
}

/// One failure during an apply. The reconciler keeps the object dirty and retries it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataplaneError {
    /// Reading the kernel's state failed; nothing was written.
    #[error("reading {what} from the kernel")]
    Read {
        /// What was being read (`"routes"`, `"links"`).
        what: &'static str,
        /// The netlink failure.
        #[source]
        source: NetlinkError,
    },
    /// The kernel rejected one write.
    #[error("{op} {object}")]
    Write {
        /// Create, replace or delete.
        op: WriteOp,
        /// The object, e.g. `route 10.0.0.0/26`.
        object: String,
        /// The kernel's answer.
        #[source]
        source: KernelErrno,
    },
    /// A whole batch failed at the socket level; its outcome is unknown until the next resync.
    #[error("a netlink batch of {count} {what} writes failed; re-reading the kernel")]
    Batch {
        /// What the batch wrote.
        what: &'static str,
        /// How many messages it held.
        count: usize,
        /// The netlink failure.
        #[source]
        source: NetlinkError,
    },
    /// A foreign route (not our protocol) holds the destination; we leave it alone.
    #[error("route {dst} is held by a foreign route (protocol {protocol}); left untouched")]
    RouteConflict {
        /// The contested destination.
        dst: IpNet,
        /// The foreign route's protocol.
        protocol: u8,
    },
    /// The kernel has no support for a device type (this kernel: ipip).
    #[error("{kind} device {name} cannot be created: {kind} is not supported by this kernel")]
    Unsupported {
        /// The device name (`tunl0`).
        name: String,
        /// The link kind (`ipip`).
        kind: String,
        /// The kernel's answer (`EOPNOTSUPP`, "Unknown device type").
        #[source]
        source: KernelErrno,
    },
    /// A link, address or neighbour request failed.
    #[error("{op} {object}")]
    Request {
        /// Create, replace or delete.
        op: WriteOp,
        /// The object, e.g. `link vxlan.calico`.
        object: String,
        /// The netlink failure.
        #[source]
        source: NetlinkError,
    },
    /// Reading or writing a sysctl failed.
    #[error("sysctl {path}")]
    Sysctl {
        /// The path below `/proc/sys`.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// An `iptables-restore`, `iptables-save`, `ipset` run failed.
    #[error("{what}")]
    Command {
        /// What the command was for.
        what: String,
        /// The command's failure.
        #[source]
        source: CommandError,
    },
}

/// Whether a reconciler converged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// The last apply wrote everything it had to.
    Healthy,
    /// Something failed or is unsupported; `reasons` says what. The rest keeps working.
    Degraded,
}

/// A reconciler's health: its state and the reasons when degraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Healthy or degraded.
    pub state: HealthState,
    /// Human-readable reasons (`"IPIP unsupported by this kernel"`).
    pub reasons: Vec<String>,
}

impl Health {
    /// Healthy, no reasons.
    pub fn healthy() -> Health {
        Health {
            state: HealthState::Healthy,
            reasons: Vec::new(),
        }
    }

    /// Healthy when `reasons` is empty, degraded otherwise.
    pub fn from_reasons(reasons: Vec<String>) -> Health {
        Health {
            state: if reasons.is_empty() {
                HealthState::Healthy
            } else {
                HealthState::Degraded
            },
            reasons,
        }
    }

    /// True when healthy.
    pub fn is_healthy(&self) -> bool {
        self.state == HealthState::Healthy
    }
}

/// What one `apply()` did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Whether the kernel was re-read during this apply.
    pub resynced: bool,
    /// Objects created.
    pub created: usize,
    /// Own objects replaced or modified.
    pub updated: usize,
    /// Stale own objects deleted (including ones already gone).
    pub deleted: usize,
    /// Stale own objects kept because the datastore is not in sync yet.
    pub deferred_deletes: usize,
    /// Desired objects waiting for a dependency (a `cali*` interface, the VXLAN device).
    pub waiting: usize,
    /// Netlink datagrams or restore transactions sent.
    pub batches: usize,
    /// Every failure; the failed objects are retried on the next apply.
    pub errors: Vec<DataplaneError>,
}

impl ApplyReport {
    /// True when nothing failed.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// True when nothing was written.
    pub fn is_noop(&self) -> bool {
        self.created == 0 && self.updated == 0 && self.deleted == 0
    }

    /// Adds another report's counts and errors to this one.
    pub fn merge(&mut self, other: ApplyReport) {
        self.resynced |= other.resynced;
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.deferred_deletes += other.deferred_deletes;
        self.waiting += other.waiting;
        self.batches += other.batches;
        self.errors.extend(other.errors);
    }

    /// One line per error, for health reasons and logs.
    pub fn error_lines(&self) -> Vec<String> {
        self.errors.iter().map(|e| error_chain(e)).collect()
    }
}

pub use fabric_api::error_chain;
