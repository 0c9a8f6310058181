//! Chain and ipset names: Calico's fixed chain names and prefixes, and the hashed names that
//! keep policy, profile and endpoint chains within iptables' 28 characters and ipset ids
//! within ipset's 31 (`cali40` + 25).

use sha2::{Digest, Sha256};

/// The longest chain name iptables accepts.
pub const MAX_CHAIN_NAME: usize = 28;
/// The longest ipset id (after the 6-character `cali40` prefix).
pub const MAX_IPSET_ID: usize = 25;

/// Our chain jumped to from `FORWARD`.
pub const CHAIN_FORWARD: &str = "cali-FORWARD";
/// Our chain jumped to from `INPUT`.
pub const CHAIN_INPUT: &str = "cali-INPUT";
/// Our chain jumped to from `OUTPUT`.
pub const CHAIN_OUTPUT: &str = "cali-OUTPUT";
/// Workload-to-host traffic (egress policy, then `DefaultEndpointToHostAction`).
pub const CHAIN_WL_TO_HOST: &str = "cali-wl-to-host";
/// Dispatch of traffic from workloads to their `cali-fw-` chains.
pub const CHAIN_FROM_WL_DISPATCH: &str = "cali-from-wl-dispatch";
/// Dispatch of traffic to workloads to their `cali-tw-` chains.
pub const CHAIN_TO_WL_DISPATCH: &str = "cali-to-wl-dispatch";

/// Prefix of a workload's ingress chain (traffic *to* the workload).
pub const PREFIX_TO_WORKLOAD: &str = "cali-tw-";
/// Prefix of a workload's egress chain (traffic *from* the workload).
pub const PREFIX_FROM_WORKLOAD: &str = "cali-fw-";
/// Prefix of a policy's ingress chain.
pub const PREFIX_POLICY_INBOUND: &str = "cali-pi-";
/// Prefix of a policy's egress chain.
pub const PREFIX_POLICY_OUTBOUND: &str = "cali-po-";
/// Prefix of a profile's ingress chain.
pub const PREFIX_PROFILE_INBOUND: &str = "cali-pri-";
/// Prefix of a profile's egress chain.
pub const PREFIX_PROFILE_OUTBOUND: &str = "cali-pro-";

/// Appends the URL-safe base64 encoding of `bytes` (RFC 4648 §5) without padding.
fn base64url(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
        }
    }
}

/// The first `len` characters of the base64url SHA-256 of `text`.
pub fn hash_id(text: &str, len: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut s = String::with_capacity(44);
    base64url(&digest, &mut s);
    s.truncate(len);
    s
}

/// `prefix + id` when that fits in a chain name, else `prefix + "_" + hash(id)` cut to fit
/// (Calico's length-limited ids).
pub fn limited_chain_name(prefix: &str, id: &str) -> String {
    if prefix.len() + id.len() <= MAX_CHAIN_NAME && !id.starts_with('_') {
        format!("{prefix}{id}")
    } else {
        let room = MAX_CHAIN_NAME.saturating_sub(prefix.len() + 1);
        format!("{prefix}_{}", hash_id(id, room))
    }
}

/// The chain of workload interface `iface` for traffic to it (`cali-tw-<iface>`).
pub fn to_workload_chain(iface: &str) -> String {
    limited_chain_name(PREFIX_TO_WORKLOAD, iface)
}

/// The chain of workload interface `iface` for traffic from it (`cali-fw-<iface>`).
pub fn from_workload_chain(iface: &str) -> String {
    limited_chain_name(PREFIX_FROM_WORKLOAD, iface)
}

/// A policy's chain: `cali-pi-_<hash>` or `cali-po-_<hash>` of its identity (tier, kind,
/// namespace, name), so a renamed or re-tiered policy gets a new chain.
pub fn policy_chain(inbound: bool, identity: &str) -> String {
    let prefix = if inbound {
        PREFIX_POLICY_INBOUND
    } else {
        PREFIX_POLICY_OUTBOUND
    };
    let room = MAX_CHAIN_NAME - prefix.len() - 1;
    format!("{prefix}_{}", hash_id(identity, room))
}

/// A profile's chain: `cali-pri-<name>` / `cali-pro-<name>` (hashed when too long).
pub fn profile_chain(inbound: bool, name: &str) -> String {
    let prefix = if inbound {
        PREFIX_PROFILE_INBOUND
    } else {
        PREFIX_PROFILE_OUTBOUND
    };
    limited_chain_name(prefix, name)
}

/// Prefixes of every ipset id the renderer makes (selector, named-port and CIDR sets): the
/// ipset reconciler of policy owns these, and other reconcilers leave them alone.
pub const IPSET_ID_PREFIXES: [&str; 3] = ["s:", "n:", "c:"];

/// The id of a selector's ipset: its Calico unique id (`s:` + base64url SHA-224) cut to 25
/// characters, as Calico names it (`cali40s:qMt7iLlGDhvLnCjM0l9nzxb`).
pub fn selector_set_id(unique_id: &str) -> String {
    unique_id.chars().take(MAX_IPSET_ID).collect()
}

/// The id of a named-port ipset (`n:` + hash of selector, protocol and port name).
pub fn named_port_set_id(selector_unique_id: &str, protocol: &str, port_name: &str) -> String {
    format!(
        "n:{}",
        hash_id(
            &format!("{selector_unique_id}|{protocol}|{port_name}"),
            MAX_IPSET_ID - 2
        )
    )
}

/// The id of a CIDR-list ipset (`c:` + hash of the sorted CIDRs).
pub fn net_set_id(nets_text: &str) -> String {
    format!("c:{}", hash_id(nets_text, MAX_IPSET_ID - 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors_without_padding() {
        for (input, want) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff], "-_8"),
        ] {
            let mut s = String::new();
            base64url(input, &mut s);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn short_names_are_kept_and_long_ones_hashed_to_28_characters() {
        assert_eq!(
            to_workload_chain("cali12345678901"),
            "cali-tw-cali12345678901"
        );
        assert_eq!(profile_chain(true, "kns.default"), "cali-pri-kns.default");
        let long = profile_chain(false, "ksa.a-very-long-namespace.default");
        assert_eq!(long.len(), MAX_CHAIN_NAME);
        assert!(long.starts_with("cali-pro-_"), "{long}");
        let p = policy_chain(true, "default|gnp||allow-dns");
        assert_eq!(p.len(), MAX_CHAIN_NAME);
        assert!(p.starts_with("cali-pi-_"));
        assert_ne!(p, policy_chain(false, "default|gnp||allow-dns"));
    }

    #[test]
    fn set_ids_fit_the_31_character_ipset_names() {
        let id = selector_set_id("s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug");
        assert_eq!(id, "s:5y5I3VdRZfDU01O--xXAPx2");
        assert_eq!(format!("cali40{id}").len(), 31);
        assert_eq!(named_port_set_id("s:x", "tcp", "http").len(), MAX_IPSET_ID);
        assert_eq!(net_set_id("10.0.0.0/8,11.0.0.0/8").len(), MAX_IPSET_ID);
    }
}
