//! Route reflection with BIRD 2 (root, namespaces): bgpd reflecting between two BIRD clients,
//! and bgpd as a client of a BIRD route reflector.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Bgpd, POLL, ROUTES, SESSION, link};
use fabric_testkit::routers::BirdRoute;
use fabric_testkit::{Bird, Netns, require_root, wait_until};

/// A BIRD iBGP speaker in AS 64512 with one session and a static /26 (next hop self), plus a
/// static route towards `other_net` so recursive next hops through the reflector resolve.
fn bird_client(
    id: &str,
    local: &str,
    rr: &str,
    prefix: &str,
    other_net: &str,
    extra: &str,
) -> String {
    format!(
        r#"router id {id};
protocol device {{ scan time 2; }}
protocol direct {{ ipv4; interface "*"; }}
protocol static pods {{ ipv4; route {prefix} blackhole; }}
protocol static reach {{ ipv4; route {other_net} via {rr}; }}
protocol bgp upstream {{
  local {local} as 64512;
  neighbor {rr} as 64512;
  hold time 9; connect delay time 1; connect retry time 2; error wait time 1,5;
  {extra}
  ipv4 {{ import all; export where proto = "pods"; next hop self; }};
}}
"#
    )
}

fn find(bird: &Bird, prefix: &str) -> Option<BirdRoute> {
    bird.routes("master4")
        .into_iter()
        .find(|r| r.prefix.to_string() == prefix && r.protocol == "upstream")
}

fn wait_find(bird: &Bird, prefix: &str) -> BirdRoute {
    let ok = wait_until(ROUTES, POLL, || find(bird, prefix).is_some());
    assert!(
        ok,
        "BIRD has no {prefix}:\n{}",
        bird.birdc("show route all")
    );
    find(bird, prefix).unwrap()
}

#[test]
fn bgpd_reflects_routes_between_two_bird_clients_with_originator_id_and_cluster_list() {
    require_root();
    let r = Netns::new("rr");
    let c1 = Netns::new("rr");
    let c2 = Netns::new("rr");
    link(&r, "r1", "10.0.1.1/30", &c1, "c1", "10.0.1.2/30");
    link(&r, "r2", "10.0.2.1/30", &c2, "c2", "10.0.2.2/30");
    let bgpd = Bgpd::start(
        &r,
        r#"router-id = "10.0.0.100"
asn = 64512
listen = ["10.0.1.1:179", "10.0.2.1:179"]
hold-time = 9
connect-retry = 1
error-wait = [1, 5]

[[neighbor]]
address = "10.0.1.2"
remote-asn = 64512
route-reflector-client = true
cluster-id = "10.255.255.1"

[[neighbor]]
address = "10.0.2.2"
remote-asn = 64512
route-reflector-client = true
cluster-id = "10.255.255.1"
"#,
    );
    let b1 = Bird::start(
        &c1,
        &bird_client(
            "10.0.1.2",
            "10.0.1.2",
            "10.0.1.1",
            "10.244.1.0/26",
            "10.0.2.0/30",
            "",
        ),
    )
    .unwrap();
    let b2 = Bird::start(
        &c2,
        &bird_client(
            "10.0.2.2",
            "10.0.2.2",
            "10.0.2.1",
            "10.244.2.0/26",
            "10.0.1.0/30",
            "",
        ),
    )
    .unwrap();
    b1.wait_established("upstream", SESSION).unwrap();
    b2.wait_established("upstream", SESSION).unwrap();
    bgpd.wait_established("10.0.1.2");
    bgpd.wait_established("10.0.2.2");

    let at2 = wait_find(&b2, "10.244.1.0/26");
    assert_eq!(
        at2.originator_id,
        Some("10.0.1.2".parse().unwrap()),
        "{at2:?}"
    );
    assert_eq!(
        at2.cluster_list,
        vec!["10.255.255.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(
        at2.bgp_next_hop,
        Some("10.0.1.2".parse().unwrap()),
        "reflection keeps the next hop"
    );
    assert!(at2.as_path.is_empty());
    let at1 = wait_find(&b1, "10.244.2.0/26");
    assert_eq!(
        at1.originator_id,
        Some("10.0.2.2".parse().unwrap()),
        "{at1:?}"
    );
    assert_eq!(
        at1.cluster_list,
        vec!["10.255.255.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    // The clients' own routes are not reflected back to them.
    assert!(find(&b1, "10.244.1.0/26").is_none());
}

#[test]
fn bgpd_as_a_client_of_a_bird_route_reflector_learns_and_is_reflected() {
    require_root();
    let r = Netns::new("rc");
    let me = Netns::new("rc");
    let c2 = Netns::new("rc");
    link(&r, "r1", "10.0.1.1/30", &me, "m1", "10.0.1.2/30");
    link(&r, "r2", "10.0.2.1/30", &c2, "c2", "10.0.2.2/30");
    let rr = Bird::start(
        &r,
        r#"router id 10.0.0.1;
protocol device { scan time 2; }
protocol direct { ipv4; interface "*"; }
template bgp rrc {
  local as 64512;
  hold time 9; connect delay time 1; connect retry time 2; error wait time 1,5;
  rr client; rr cluster id 10.255.0.9;
  ipv4 { import all; export all; };
}
protocol bgp bgpd from rrc { neighbor 10.0.1.2 as 64512; }
protocol bgp peer2 from rrc { neighbor 10.0.2.2 as 64512; }
"#,
    )
    .unwrap();
    let b2 = Bird::start(
        &c2,
        &bird_client(
            "10.0.2.2",
            "10.0.2.2",
            "10.0.2.1",
            "10.244.2.0/26",
            "10.0.1.0/30",
            "",
        ),
    )
    .unwrap();
    let bgpd = Bgpd::start(
        &me,
        r#"router-id = "10.0.1.2"
asn = 64512
listen = ["10.0.1.2:179"]
hold-time = 9
connect-retry = 1
error-wait = [1, 5]

[[neighbor]]
address = "10.0.1.1"
remote-asn = 64512

[[originate]]
prefix = "10.244.3.0/26"
"#,
    );
    rr.wait_established("bgpd", SESSION).unwrap();
    rr.wait_established("peer2", SESSION).unwrap();
    bgpd.wait_established("10.0.1.1");

    // Our route, reflected to the other client.
    let at2 = wait_find(&b2, "10.244.3.0/26");
    assert_eq!(
        at2.originator_id,
        Some("10.0.1.2".parse().unwrap()),
        "{at2:?}"
    );
    assert_eq!(
        at2.cluster_list,
        vec!["10.255.0.9".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(at2.bgp_next_hop, Some("10.0.1.2".parse().unwrap()));

    // The other client's route, reflected to us.
    bgpd.wait_route("10.244.2.0/26", "10.0.1.1", true);
    let route = bgpd.route("10.244.2.0/26").unwrap();
    let p = &route.paths[0];
    assert_eq!(p.originator_id, Some("10.0.2.2".parse().unwrap()));
    assert_eq!(
        p.cluster_list,
        vec!["10.255.0.9".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(p.next_hop.to_string(), "10.0.2.2");
}
