//! Tests of the TOML configuration: parsing, defaults and the errors bad input gets.

use std::net::IpAddr;

use super::*;

/// A file that sets every key.
pub(crate) const EVERY_KEY: &str = r#"
router-id = "192.0.2.1"
asn = 65001
listen = ["192.0.2.1:179", "[2001:db8::1]:1179"]
status-socket = "/run/bgpd/bgpd.sock"
metrics-address = "127.0.0.1:9179"
log-level = "bgpd=debug,info"
state-file = "/run/bgpd/bgpd.state"
cluster-id = "192.0.2.100"
hold-time = 90
keepalive = 30
connect-retry = 7
connect-delay = 2
error-wait = [5, 30]
extended-message = false
max-paths = 4
always-compare-med = true
multipath-relax = true
output-queue-limit = 2097152

[graceful-restart]
enabled = true
restart-time = 300
stale-routes-time = 400
selection-deferral = 200
forwarding-preserved = false

[policy.calico-export]
default = "reject"

[[policy.calico-export.rule]]
prefix = "10.244.0.0/16"
prefix-op = "in"
prefix-length = [26, 32]
family = "ipv4"
community = ["65000:1"]
large-community = ["65000:1:2"]
as-path-prefix = [65002]
peer-type = "ebgp"
source = "local"
action = "accept"
set-local-pref = 200
set-med = 10
add-community = ["65000:100"]
add-large-community = ["65000:0:100"]
prepend = 2
prepend-asn = 65001

[[policy.calico-export.rule]]
prefix = "10.0.0.0/8"
prefix-op = "not-equal"
action = "reject"

[[neighbor]]
address = "192.0.2.2"
remote-asn = 65002
port = 1179
description = "global"
local-asn = 65010
local-address = "192.0.2.1"
password = "s3cret"
passive = true
hold-time = 30
keepalive = 10
ttl-security = 2
next-hop-self = true
next-hop-v4 = "192.0.2.1"
graceful-restart = false
families = ["ipv4", "ipv6"]
require-all-families = true
allow-local-as = 1
enforce-first-as = false
max-prefix = { ipv4 = 1000, ipv6 = 500, restart-after = 60 }
import-policy = "calico-export"
export-policy = "calico-export"

[[neighbor]]
address = "2001:db8::2"
remote-asn = 65001
route-reflector-client = true
cluster-id = "192.0.2.100"
multihop = 3
next-hop-keep = true
next-hop-v6 = "2001:db8::1"
link-local-next-hop = "fe80::1"

[[originate]]
prefix = "10.244.1.0/26"
communities = ["65000:1"]
large-communities = ["65000:1:1"]
local-pref = 150
med = 5
next-hop = "192.0.2.10"
"#;

fn err(text: &str) -> String {
    Config::from_toml(text).unwrap_err().to_string()
}

const MIN: &str = "router-id = \"192.0.2.1\"\nasn = 65001\n";

#[test]
fn every_key_parses() {
    let c = Config::from_toml(EVERY_KEY).unwrap();
    assert_eq!(c.listen.len(), 2);
    assert_eq!(c.metrics_address, Some("127.0.0.1:9179".parse().unwrap()));
    assert_eq!(c.graceful_restart.restart_time, 300);
    assert_eq!(c.policy["calico-export"].rules.len(), 2);
    let n = &c.neighbors[0];
    assert_eq!(n.ttl_security, Some(2));
    assert_eq!(n.max_prefix.as_ref().unwrap().restart_after, Some(60));
    assert_eq!(n.families, Some(vec![FamilyName::Ipv4, FamilyName::Ipv6]));
    assert!(c.neighbors[1].route_reflector_client);
    assert_eq!(c.originate[0].communities.len(), 1);
    let s = c.speaker_config(true);
    assert_eq!(s.cluster_id, Some("192.0.2.100".parse().unwrap()));
    assert!(s.graceful_restart.restarting);
    let p = c.peer_config(n);
    assert_eq!(p.import_policy.rules.len(), 2);
    assert_eq!(p.next_hop_mode, bgpd_core::NextHopMode::SelfAddress);
    let t = c.transport(&c.neighbors[1]);
    assert_eq!(t.ttl, Some(3));
}

#[test]
fn defaults_match_bird_and_calico() {
    let c = Config::from_toml(MIN).unwrap();
    assert_eq!(c.listen.len(), 2);
    assert_eq!(c.hold_time, 240);
    assert_eq!(c.connect_retry, 5);
    assert!(c.graceful_restart.enabled);
    let n = NeighborConfig::new("192.0.2.2".parse().unwrap(), 65002);
    assert_eq!(
        c.transport(&n).ttl,
        Some(1),
        "eBGP is one hop unless multihop"
    );
    let n = NeighborConfig::new("192.0.2.2".parse().unwrap(), 65001);
    assert_eq!(c.transport(&n).ttl, None, "iBGP uses the system TTL");
}

#[test]
fn an_unknown_key_is_named_with_its_path() {
    let e = err(&format!(
        "{MIN}[[neighbor]]\naddress = \"192.0.2.2\"\nremote-asn = 1\npasword = \"x\"\n"
    ));
    assert!(e.contains("neighbor[0]"), "{e}");
    assert!(e.contains("pasword"), "{e}");
    assert!(e.contains("line 6"), "{e}");
}

#[test]
fn a_bad_address_names_the_key_and_the_value() {
    let e = err(&format!(
        "{MIN}[[neighbor]]\naddress = \"192.0.2.300\"\nremote-asn = 1\n"
    ));
    assert!(e.contains("neighbor[0].address"), "{e}");
    assert!(e.contains("192.0.2.300"), "{e}");
    assert!(e.contains("IPv4 or IPv6 address"), "{e}");
}

#[test]
fn as_zero_is_refused() {
    let e = err("router-id = \"192.0.2.1\"\nasn = 0\n");
    assert_eq!(
        e,
        "asn = 0: AS 0 and AS_TRANS (23456) are not usable AS numbers (RFC 7607, RFC 6793)"
    );
    let e = err(&format!(
        "{MIN}[[neighbor]]\naddress = \"192.0.2.2\"\nremote-asn = 0\n"
    ));
    assert!(e.starts_with("neighbor[0].remote-asn = 0"), "{e}");
}

#[test]
fn a_duplicate_neighbour_is_refused() {
    let n = "[[neighbor]]\naddress = \"192.0.2.2\"\nremote-asn = 65002\n";
    let e = err(&format!("{MIN}{n}{n}"));
    assert!(e.starts_with("neighbor[1].address = 192.0.2.2"), "{e}");
    assert!(e.contains("neighbor[0] has the same address"), "{e}");
}

#[test]
fn rule_breaking_values_are_refused_with_the_rule() {
    let cases: &[(&str, &str)] = &[
        ("router-id = \"0.0.0.0\"\nasn = 1\n", "router-id = 0.0.0.0"),
        (&format!("{MIN}hold-time = 2\n"), "hold-time = 2"),
        (&format!("{MIN}keepalive = 300\n"), "keepalive = 300"),
        (&format!("{MIN}listen = [\"192.0.2.1:0\"]\n"), "listen[0]"),
        (&format!("{MIN}error-wait = [30, 5]\n"), "error-wait"),
        (
            &format!("{MIN}[graceful-restart]\nrestart-time = 5000\n"),
            "graceful-restart.restart-time = 5000",
        ),
        (
            &format!("{MIN}[[originate]]\nprefix = \"10.244.1.1/26\"\n"),
            "originate[0].prefix = 10.244.1.1/26: host bits must be clear (write 10.244.1.0/26)",
        ),
        (
            &format!(
                "{MIN}[[neighbor]]\naddress = \"192.0.2.2\"\nremote-asn = 2\nroute-reflector-client = true\n"
            ),
            "neighbor[0].route-reflector-client",
        ),
        (
            &format!(
                "{MIN}[[neighbor]]\naddress = \"192.0.2.2\"\nremote-asn = 2\nimport-policy = \"nope\"\n"
            ),
            "neighbor[0].import-policy = \"nope\"",
        ),
        (
            &format!(
                "{MIN}[[neighbor]]\naddress = \"192.0.2.2\"\nremote-asn = 2\nttl-security = 1\nmultihop = 2\n"
            ),
            "neighbor[0].multihop",
        ),
        (
            &format!(
                "{MIN}[[neighbor]]\naddress = \"192.0.2.2\"\nremote-asn = 2\npassword = \"{}\"\n",
                "x".repeat(81)
            ),
            "neighbor[0].password = (hidden)",
        ),
        (
            &format!(
                "{MIN}[[neighbor]]\naddress = \"192.0.2.2\"\nremote-asn = 2\nlocal-address = \"2001:db8::1\"\n"
            ),
            "neighbor[0].local-address",
        ),
        (
            &format!(
                "{MIN}[policy.p]\n[[policy.p.rule]]\nprefix = \"10.0.0.0/16\"\nprefix-length = [8, 24]\n"
            ),
            "policy.p.rule[0].prefix-length = [8, 24]",
        ),
        (
            &format!("{MIN}[policy.p]\n[[policy.p.rule]]\ncommunity = [\"70000:1\"]\n"),
            "policy.p.rule[0].community",
        ),
        (&format!("{MIN}log-level = \"loud[\"\n"), "log-level"),
    ];
    for (text, expected) in cases {
        let e = err(text);
        assert!(e.contains(expected), "{expected:?} not in {e:?}");
    }
}

#[test]
fn neighbour_cluster_ids_must_agree() {
    let n = |a: &str, id: &str| {
        format!(
            "[[neighbor]]\naddress = \"{a}\"\nremote-asn = 65001\nroute-reflector-client = true\ncluster-id = \"{id}\"\n"
        )
    };
    let e = err(&format!(
        "{MIN}{}{}",
        n("192.0.2.2", "1.1.1.1"),
        n("192.0.2.3", "2.2.2.2")
    ));
    assert!(e.starts_with("neighbor[1].cluster-id = 2.2.2.2"), "{e}");
    assert!(
        Config::from_toml(&format!(
            "{MIN}{}{}",
            n("192.0.2.2", "1.1.1.1"),
            n("192.0.2.3", "1.1.1.1")
        ))
        .is_ok()
    );
}

#[test]
fn neighbours_default_to_their_address_family() {
    let c = Config::from_toml(&format!(
        "{MIN}[[neighbor]]\naddress = \"2001:db8::2\"\nremote-asn = 65002\n"
    ))
    .unwrap();
    let p = c.peer_config(&c.neighbors[0]);
    assert_eq!(p.families, bgpd_core::FamilySet::IPV6);
    assert_eq!(
        c.neighbor("2001:db8::2".parse::<IpAddr>().unwrap())
            .unwrap()
            .port,
        179
    );
}
