//! Interop with GoBGP (root, namespaces): eBGP and iBGP sessions over IPv4 and IPv6, routes and
//! withdrawals both ways.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Bgpd, POLL, ROUTES, SESSION, two_namespaces};
use fabric_testkit::{GoBgp, require_root, wait_until};

fn gobgp_config(local_as: u32, remote_as: u32) -> String {
    let neighbor = |addr: &str, family: &str| {
        format!(
            r#"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{addr}"
    peer-as = {remote_as}
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 2
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "{family}"
"#
        )
    };
    format!(
        r#"[global.config]
  as = {local_as}
  router-id = "192.0.2.2"
  local-address-list = ["192.0.2.2", "2001:db8::2"]
{}{}"#,
        neighbor("192.0.2.1", "ipv4-unicast"),
        neighbor("2001:db8::1", "ipv6-unicast")
    )
}

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

fn wait_gobgp(g: &GoBgp, family: &str, prefix: &str, present: bool) {
    let ok = wait_until(ROUTES, POLL, || {
        g.rib_prefixes(family).iter().any(|p| p == prefix) == present
    });
    assert!(
        ok,
        "GoBGP {family}: {prefix} present={present} not reached: {}",
        g.rib(family)
    );
}

fn rib(g: &GoBgp, op: &str, family: &str, prefix: &str, next_hop: &str) {
    let mut args = vec!["global", "rib", op, "-a", family, prefix];
    if op == "add" {
        args.extend(["nexthop", next_hop]);
    }
    g.gobgp_text(&args).unwrap();
}

fn exchange_routes_with_gobgp(tag: &str, asn: u32, gobgp_as: u32) {
    require_root();
    let (a, b) = two_namespaces(tag);
    let originate = [
        "10.244.1.0/26",
        "10.244.1.64/26",
        "2001:db8:244::/64",
        "2001:db8:247::/64",
    ];
    let mut bgpd = Bgpd::start(&a, &bgpd_config(asn, gobgp_as, &originate));
    let gobgp = GoBgp::start(&b, &gobgp_config(gobgp_as, asn)).unwrap();
    gobgp.wait_established("192.0.2.1", SESSION).unwrap();
    gobgp.wait_established("2001:db8::1", SESSION).unwrap();
    bgpd.wait_established("192.0.2.2");
    bgpd.wait_established("2001:db8::2");

    for p in ["10.244.1.0/26", "10.244.1.64/26"] {
        wait_gobgp(&gobgp, "ipv4", p, true);
    }
    for p in ["2001:db8:244::/64", "2001:db8:247::/64"] {
        wait_gobgp(&gobgp, "ipv6", p, true);
    }
    let path = &gobgp.rib("ipv4")["10.244.1.0/26"][0];
    let attrs = path["attrs"].to_string();
    assert!(attrs.contains("192.0.2.1"), "next hop: {path}");

    rib(&gobgp, "add", "ipv4", "10.245.0.0/26", "192.0.2.2");
    rib(&gobgp, "add", "ipv4", "10.245.0.64/26", "192.0.2.2");
    rib(&gobgp, "add", "ipv6", "2001:db8:245::/64", "2001:db8::2");
    rib(&gobgp, "add", "ipv6", "2001:db8:246::/64", "2001:db8::2");
    bgpd.wait_route("10.245.0.0/26", "192.0.2.2", true);
    bgpd.wait_route("10.245.0.64/26", "192.0.2.2", true);
    bgpd.wait_route("2001:db8:245::/64", "2001:db8::2", true);
    bgpd.wait_route("2001:db8:246::/64", "2001:db8::2", true);
    let r = bgpd.route("2001:db8:245::/64").unwrap();
    assert_eq!(r.paths[0].next_hop.to_string(), "2001:db8::2");
    let expected_path = if asn == gobgp_as {
        String::new()
    } else {
        gobgp_as.to_string()
    };
    assert_eq!(r.paths[0].as_path, expected_path);

    rib(&gobgp, "del", "ipv4", "10.245.0.64/26", "");
    rib(&gobgp, "del", "ipv6", "2001:db8:246::/64", "");
    bgpd.wait_route("10.245.0.64/26", "192.0.2.2", false);
    bgpd.wait_route("2001:db8:246::/64", "2001:db8::2", false);
    bgpd.wait_route("10.245.0.0/26", "192.0.2.2", true);

    bgpd.reload(&bgpd_config(
        asn,
        gobgp_as,
        &["10.244.1.0/26", "2001:db8:244::/64"],
    ))
    .unwrap();
    wait_gobgp(&gobgp, "ipv4", "10.244.1.64/26", false);
    wait_gobgp(&gobgp, "ipv6", "2001:db8:247::/64", false);
    wait_gobgp(&gobgp, "ipv4", "10.244.1.0/26", true);
    wait_gobgp(&gobgp, "ipv6", "2001:db8:244::/64", true);
}

#[test]
fn ebgp_with_gobgp_carries_ipv4_and_ipv6_routes_and_withdrawals_both_ways() {
    exchange_routes_with_gobgp("gbe", 65001, 65002);
}

#[test]
fn ibgp_with_gobgp_carries_ipv4_and_ipv6_routes_and_withdrawals_both_ways() {
    exchange_routes_with_gobgp("gbi", 64512, 64512);
}
