//! calicoctl: resource commands, IPAM and node operations.
