//! Calico's selector unique ID: `s:` plus the unpadded base64url SHA-224 of `s:<canonical>`.
//!
//! Felix names selector IP sets after this ID (`cali40s:<id>`, truncated), so equal selectors
//! share a set, and a set's name is stable across restarts and across Calico and this project.

use sha2::{Digest, Sha224};

/// The unique ID Calico derives from a canonical selector text.
pub(crate) fn unique_id(canonical: &str) -> String {
    let mut hasher = Sha224::new();
    hasher.update(b"s:");
    hasher.update(canonical.as_bytes());
    let digest = hasher.finalize();
    let mut id = String::with_capacity(2 + digest.len().div_ceil(3) * 4);
    id.push_str("s:");
    base64url_unpadded(&digest, &mut id);
    id
}

/// Appends the URL-safe base64 encoding of `bytes` (RFC 4648 §5) without `=` padding.
fn base64url_unpadded(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        let mut s = String::new();
        base64url_unpadded(bytes, &mut s);
        s
    }

    #[test]
    fn base64url_matches_the_rfc_4648_test_vectors_without_padding() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg");
        assert_eq!(b64(b"fo"), "Zm8");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"foob"), "Zm9vYg");
        assert_eq!(b64(b"fooba"), "Zm9vYmE");
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn the_id_of_all_is_the_one_calico_computes() {
        // SHA-224("s:all()"), computed independently with Python's hashlib.
        assert_eq!(
            unique_id("all()"),
            "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"
        );
    }
}
