//! Revisioned key-value Backend (sqlite, etcd v3, in-memory), the typed resource client and the syncer.
