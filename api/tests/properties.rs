//! Property tests: values round-trip through their text forms, and no input makes the
//! manifest parser panic.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fabric_api::document::parse_documents;
use fabric_api::validate::cidr::Cidr;
use fabric_api::{AnyResource, Port, Protocol};
use proptest::prelude::*;

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
    ]
}

proptest! {
    #[test]
    fn ports_round_trip_through_json(a in 1u16.., b in 1u16.., named in "[a-z][a-z0-9]{0,10}", pick in 0u8..3) {
        let port = match pick {
            0 => Port::Single(a),
            1 => Port::parse(&format!("{}:{}", a.min(b), a.max(b))).unwrap(),
            _ => Port::Named(named),
        };
        let json = serde_json::to_string(&port).unwrap();
        prop_assert_eq!(serde_json::from_str::<Port>(&json).unwrap(), port);
    }

    #[test]
    fn protocols_round_trip_through_json(n in 1u8..) {
        let p = Protocol::Number(n);
        let json = serde_json::to_string(&p).unwrap();
        prop_assert_eq!(serde_json::from_str::<Protocol>(&json).unwrap(), p);
        let named = Protocol::parse(&Protocol::Tcp.to_string()).unwrap();
        prop_assert_eq!(named, Protocol::Tcp);
    }

    #[test]
    fn masked_cidrs_are_strict_and_reparse_equal(ip in any_ip(), len in 0u8..=128) {
        let len = if ip.is_ipv4() { len % 33 } else { len };
        let c = Cidr { addr: ip, prefix_len: len }.masked();
        prop_assert!(c.is_strictly_masked());
        prop_assert_eq!(Cidr::parse(&c.to_string()).unwrap(), c);
        prop_assert!(c.contains(c.network()));
    }

    #[test]
    fn valid_pools_round_trip_through_yaml(ip in any::<u32>(), len in 8u8..=26, nat: bool, mode in 0usize..3) {
        let cidr = Cidr { addr: IpAddr::V4(Ipv4Addr::from(ip)), prefix_len: len }.masked();
        let link_local = Cidr::parse("169.254.0.0/16").unwrap();
        prop_assume!(!cidr.overlaps(&link_local));
        let modes = ["Never", "Always", "CrossSubnet"];
        let text = format!(
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: p}}\n\
             spec: {{cidr: {cidr}, natOutgoing: {nat}, ipipMode: {}}}\n",
            modes[mode]
        );
        let first = parse_documents(&text, "p.yaml").unwrap();
        let yaml = serde_yaml_ng::to_string(&first[0]).unwrap();
        let again: Vec<AnyResource> = parse_documents(&yaml, "p.yaml").unwrap();
        prop_assert_eq!(again, first);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse_documents(&text, "fuzz.yaml");
    }

    #[test]
    fn resource_shaped_text_never_panics(
        kind in prop::sample::select(vec!["IPPool", "BGPPeer", "GlobalNetworkPolicy", "FelixConfiguration", "Node", "IPPoolList", "List"]),
        key in "[a-zA-Z]{1,12}",
        value in "[ -~]{0,24}",
    ) {
        let text = format!(
            "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {{name: x}}\nspec:\n  {key}: {value}\n"
        );
        let _ = parse_documents(&text, "fuzz.yaml");
    }
}
