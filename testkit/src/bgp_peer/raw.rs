//! Hand-built message bytes for malformed-input tests: the framing is right unless the test
//! says otherwise, so each case breaks exactly the rule it means to.

use std::net::Ipv4Addr;

use bgp_wire::header::MARKER;
use bgp_wire::iana::{attr, attr_flags, message_type};

/// A whole message: marker, the length of `body` + 19, `msg_type`, `body`. Lengths above 65535
/// are truncated to 16 bits (a deliberately wrong length is then the test's business).
pub fn raw_message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(19 + body.len());
    m.extend_from_slice(&MARKER);
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(msg_type);
    m.extend_from_slice(body);
    m
}

/// An UPDATE from its three raw parts; the two length fields are computed.
pub fn raw_update(withdrawn: &[u8], attributes: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + withdrawn.len() + attributes.len() + nlri.len());
    body.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    body.extend_from_slice(attributes);
    body.extend_from_slice(nlri);
    raw_message(message_type::UPDATE, &body)
}

/// One path attribute: flags, type, a 1-octet length (2 octets when `flags` has Extended
/// Length), value.
pub fn raw_attribute(flags: u8, type_code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, type_code];
    if flags & attr_flags::EXTENDED_LENGTH != 0 {
        a.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        a.push(value.len() as u8);
    }
    a.extend_from_slice(value);
    a
}

/// ORIGIN `origin` (any octet, legal or not), AS_PATH of one AS_SEQUENCE `as_path` (4-octet
/// AS numbers), NEXT_HOP `next_hop`: the mandatory attributes of an IPv4 announcement on a
/// 4-octet AS session.
pub fn raw_mandatory_attributes(origin: u8, as_path: &[u32], next_hop: Ipv4Addr) -> Vec<u8> {
    let mut path = vec![2u8, as_path.len() as u8];
    for asn in as_path {
        path.extend_from_slice(&asn.to_be_bytes());
    }
    let mut a = raw_attribute(attr_flags::TRANSITIVE, attr::ORIGIN, &[origin]);
    a.extend(raw_attribute(attr_flags::TRANSITIVE, attr::AS_PATH, &path));
    a.extend(raw_attribute(
        attr_flags::TRANSITIVE,
        attr::NEXT_HOP,
        &next_hop.octets(),
    ));
    a
}

/// The NLRI encoding of an IPv4 prefix (length octet, then the significant octets).
pub fn raw_ipv4_nlri(addr: Ipv4Addr, len: u8) -> Vec<u8> {
    let octets = usize::from(len.min(32)).div_ceil(8);
    let mut n = vec![len];
    n.extend_from_slice(&addr.octets()[..octets]);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_wire::{Message, Nlri, SessionContext};

    #[test]
    fn a_well_formed_raw_update_decodes_with_the_codec() {
        let ctx = SessionContext {
            four_octet_as: true,
            ..SessionContext::default()
        };
        let bytes = raw_update(
            &[],
            &raw_mandatory_attributes(0, &[65001], Ipv4Addr::new(192, 0, 2, 1)),
            &raw_ipv4_nlri(Ipv4Addr::new(10, 1, 2, 0), 24),
        );
        let Message::Update(u) = Message::decode(&bytes, &ctx).unwrap() else {
            panic!("not an UPDATE")
        };
        assert_eq!(
            u.nlri,
            vec![Nlri::new(
                "10.1.2.0/24".parse::<bgp_wire::Prefix>().unwrap()
            )]
        );
        assert!(u.errors.is_empty());
    }

    #[test]
    fn a_bad_origin_value_is_treat_as_withdraw_for_the_codec() {
        let ctx = SessionContext {
            four_octet_as: true,
            ..SessionContext::default()
        };
        let bytes = raw_update(
            &[],
            &raw_mandatory_attributes(7, &[65001], Ipv4Addr::new(192, 0, 2, 1)),
            &raw_ipv4_nlri(Ipv4Addr::new(10, 1, 2, 0), 24),
        );
        let Message::Update(u) = Message::decode(&bytes, &ctx).unwrap() else {
            panic!("not an UPDATE")
        };
        assert!(u.treat_as_withdraw());
        assert_eq!((u.errors[0].code, u.errors[0].subcode), (3, 6));
    }
}
