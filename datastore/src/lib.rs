//! Revisioned key-value Backend (sqlite, etcd v3, in-memory), the typed resource client, the
//! syncer and the datastore configuration.
//!
//! Values are JSON text stored under Calico's etcd key layout ([`keys`]). The backends know
//! nothing about resource types; [`client::Client`] adds Calico's v3 resources on top, and
//! [`ipam_model`] says what the IPAM keys hold. Every backend has etcd semantics: one store-wide revision,
//! compare-and-swap on a key's `mod_revision`, atomic multi-key transactions
//! ([`Backend::transaction`]: all writes at one revision, or none), and watches that replay
//! history from a revision and fall back to a full `Resync` when that history is gone.

mod backend;
mod changelog;
pub mod client;
pub mod config;
mod etcd;
pub mod ipam_model;
pub mod keys;
mod mem;
mod sqlite;
pub mod syncer;

pub use backend::{
    Backend, BackendError, BoxError, CasOutcome, KeyValue, Listing, MAX_TXN_OPS, Revision, TxnOp,
    TxnOutcome, WatchEvent, WatchStream,
};
pub use client::{Client, ClientError, Write};
pub use config::{ConfigError, DatastoreConfig, DatastoreKind};
pub use etcd::{EtcdBackend, EtcdOptions};
pub use mem::MemBackend;
pub use sqlite::{SqliteBackend, SqliteOptions};
