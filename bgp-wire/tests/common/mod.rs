//! Helpers shared by the integration tests: hex parsing and message builders.
#![allow(dead_code)]

/// Parses whitespace-separated hex (`"ff 00 1a"`, or runs like `"ff001a"`).
pub fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex digits in {s:?}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// A complete message: marker, length, type, body.
pub fn message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(msg_type);
    m.extend_from_slice(body);
    m
}

/// An UPDATE with the length fields computed.
pub fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    message(2, &b)
}

/// ORIGIN IGP, AS_PATH [65001] (4-octet), NEXT_HOP 192.0.2.1.
pub const BASE_ATTRS_4: &str = "40 01 01 00  40 02 06 02 01 00 00 fd e9  40 03 04 c0 00 02 01";
