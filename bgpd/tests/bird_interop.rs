//! Interop with BIRD 2 (root, namespaces): eBGP and iBGP sessions over IPv4 and IPv6, routes and
//! withdrawals both ways.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Bgpd, POLL, ROUTES, SESSION, two_namespaces};
use fabric_testkit::{Bird, require_root, wait_until};

fn bird_config(local_as: u32, remote_as: u32, statics: &str) -> String {
    let ibgp = local_as == remote_as;
    let nh = if ibgp { "next hop self;" } else { "" };
    format!(
        r#"router id 192.0.2.2;
protocol device {{ scan time 2; }}
protocol direct {{ ipv4; ipv6; interface "*"; }}
{statics}
protocol bgp peer4 {{
  local 192.0.2.2 as {local_as};
  neighbor 192.0.2.1 as {remote_as};
  hold time 9; connect delay time 1; connect retry time 2; error wait time 1,5;
  ipv4 {{ import all; export where source = RTS_STATIC; {nh} }};
}}
protocol bgp peer6 {{
  local 2001:db8::2 as {local_as};
  neighbor 2001:db8::1 as {remote_as};
  hold time 9; connect delay time 1; connect retry time 2; error wait time 1,5;
  ipv6 {{ import all; export where source = RTS_STATIC; {nh} }};
}}
"#
    )
}

const BIRD_STATICS: &str = r#"protocol static s4 { ipv4; route 10.245.0.0/26 blackhole; route 10.245.0.64/26 blackhole; }
protocol static s6 { ipv6; route 2001:db8:245::/64 blackhole; route 2001:db8:246::/64 blackhole; }"#;
const BIRD_STATICS_AFTER: &str = r#"protocol static s4 { ipv4; route 10.245.0.0/26 blackhole; }
protocol static s6 { ipv6; route 2001:db8:245::/64 blackhole; }"#;

fn bgpd_config(asn: u32, remote: u32, originate: &[&str]) -> String {
    let mut s = format!(
        r#"router-id = "192.0.2.1"
asn = {asn}
listen = ["192.0.2.1:179", "[2001:db8::1]:179"]
hold-time = 9
connect-retry = 1
error-wait = [1, 5]

[[neighbor]]
address = "192.0.2.2"
remote-asn = {remote}

[[neighbor]]
address = "2001:db8::2"
remote-asn = {remote}
"#
    );
    for p in originate {
        s.push_str(&format!("\n[[originate]]\nprefix = \"{p}\"\n"));
    }
    s
}

fn bird_has(bird: &Bird, table: &str, prefix: &str, protocol: &str) -> bool {
    bird.routes(table)
        .iter()
        .any(|r| r.prefix.to_string() == prefix && r.protocol == protocol)
}

fn wait_bird(bird: &Bird, table: &str, prefix: &str, protocol: &str, present: bool) {
    let ok = wait_until(ROUTES, POLL, || {
        bird_has(bird, table, prefix, protocol) == present
    });
    assert!(
        ok,
        "BIRD {table}: {prefix} via {protocol} present={present} not reached:\n{}",
        bird.birdc(&format!("show route table {table} all"))
    );
}

fn exchange_routes_with_bird(tag: &str, asn: u32, bird_as: u32) {
    require_root();
    let (a, b) = two_namespaces(tag);
    let originate = [
        "10.244.1.0/26",
        "10.244.1.64/26",
        "2001:db8:244::/64",
        "2001:db8:247::/64",
    ];
    let mut bgpd = Bgpd::start(&a, &bgpd_config(asn, bird_as, &originate));
    let bird = Bird::start(&b, &bird_config(bird_as, asn, BIRD_STATICS)).unwrap();
    bird.wait_established("peer4", SESSION).unwrap();
    bird.wait_established("peer6", SESSION).unwrap();
    bgpd.wait_established("192.0.2.2");
    bgpd.wait_established("2001:db8::2");

    // bgpd -> BIRD, both families.
    for p in ["10.244.1.0/26", "10.244.1.64/26"] {
        wait_bird(&bird, "master4", p, "peer4", true);
    }
    for p in ["2001:db8:244::/64", "2001:db8:247::/64"] {
        wait_bird(&bird, "master6", p, "peer6", true);
    }
    let r = bird
        .routes("master4")
        .into_iter()
        .find(|r| r.prefix.to_string() == "10.244.1.0/26")
        .unwrap();
    let expected_path: Vec<u32> = if asn == bird_as { vec![] } else { vec![asn] };
    assert_eq!(r.as_path, expected_path);
    assert_eq!(r.bgp_next_hop, Some("192.0.2.1".parse().unwrap()));

    // BIRD -> bgpd, both families.
    bgpd.wait_route("10.245.0.0/26", "192.0.2.2", true);
    bgpd.wait_route("10.245.0.64/26", "192.0.2.2", true);
    bgpd.wait_route("2001:db8:245::/64", "2001:db8::2", true);
    bgpd.wait_route("2001:db8:246::/64", "2001:db8::2", true);
    let r = bgpd.route("10.245.0.0/26").unwrap();
    assert_eq!(r.paths[0].next_hop.to_string(), "192.0.2.2");
    assert!(r.paths[0].best);
    let expected_path = if asn == bird_as {
        String::new()
    } else {
        bird_as.to_string()
    };
    assert_eq!(r.paths[0].as_path, expected_path);

    // Withdrawals BIRD -> bgpd.
    bird.reconfigure(&bird_config(bird_as, asn, BIRD_STATICS_AFTER))
        .unwrap();
    bgpd.wait_route("10.245.0.64/26", "192.0.2.2", false);
    bgpd.wait_route("2001:db8:246::/64", "2001:db8::2", false);
    bgpd.wait_route("10.245.0.0/26", "192.0.2.2", true);

    // Withdrawals bgpd -> BIRD (reload without two originations).
    let before = bgpd.neighbor("192.0.2.2").unwrap();
    bgpd.reload(&bgpd_config(
        asn,
        bird_as,
        &["10.244.1.0/26", "2001:db8:244::/64"],
    ))
    .unwrap();
    wait_bird(&bird, "master4", "10.244.1.64/26", "peer4", false);
    wait_bird(&bird, "master6", "2001:db8:247::/64", "peer6", false);
    wait_bird(&bird, "master4", "10.244.1.0/26", "peer4", true);
    wait_bird(&bird, "master6", "2001:db8:244::/64", "peer6", true);
    let after = bgpd.neighbor("192.0.2.2").unwrap();
    assert_eq!(
        after.since_unix_ms, before.since_unix_ms,
        "the session was not reset"
    );
    assert_eq!(after.established_transitions, 1);
}

#[test]
fn ebgp_with_bird_carries_ipv4_and_ipv6_routes_and_withdrawals_both_ways() {
    exchange_routes_with_bird("bde", 65001, 65002);
}

#[test]
fn ibgp_with_bird_carries_ipv4_and_ipv6_routes_and_withdrawals_both_ways() {
    exchange_routes_with_bird("bdi", 64512, 64512);
}
