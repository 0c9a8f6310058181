//! Root tests: BGP topologies deployed from containerlab files onto namespaces, with real
//! BIRD, FRR and GoBGP: sessions establish, routes are exchanged, traffic crosses, `inspect`
//! reports the nodes and addresses, and `destroy` leaves nothing behind.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Lab, node};

const SESSION_TIMEOUT: Duration = Duration::from_secs(90);

fn established_in_birdc(out: &str, protocol: &str) -> bool {
    out.lines()
        .any(|l| l.split_whitespace().next() == Some(protocol) && l.contains("Established"))
}

fn frr_peer_established(json: &str, peer: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return false;
    };
    v["ipv4Unicast"]["peers"][peer]["state"] == "Established"
}

#[test]
fn two_bird_routers_peer_over_a_link_and_route_a_host_behind_a_bridge() {
    let lab = Lab::deploy("bird-ebgp/bird-ebgp.clab.yml", &[]);
    lab.wait_exec(
        "r1",
        &["birdc", "show", "protocols"],
        SESSION_TIMEOUT,
        |o| established_in_birdc(o, "r2"),
    );
    lab.wait_exec(
        "r2",
        &["birdc", "show", "protocols"],
        SESSION_TIMEOUT,
        |o| established_in_birdc(o, "r1"),
    );
    lab.wait_exec(
        "r2",
        &["birdc", "show", "route", "10.0.1.0/24"],
        SESSION_TIMEOUT,
        |o| o.contains("10.0.1.0/24") && o.contains("192.0.2.1"),
    );
    lab.wait_exec(
        "r1",
        &["ip", "route", "show", "10.0.2.0/24"],
        SESSION_TIMEOUT,
        |o| o.contains("via 192.0.2.2"),
    );
    lab.wait_exec(
        "h1",
        &["ping", "-c", "1", "-W", "1", "10.0.2.1"],
        SESSION_TIMEOUT,
        |_| true,
    );

    let report = lab.inspect();
    let names: Vec<&str> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["h1", "r1", "r2", "sw"]);
    let r1 = node(&report, "r1");
    assert_eq!(r1["role"], "bird");
    assert_eq!(r1["kind"], "linux");
    assert_eq!(r1["namespace"], format!("clab-{}-r1", lab.name));
    assert!(r1["mgmt_ipv4"].as_str().unwrap().starts_with("172.20.20."));
    assert_eq!(r1["interfaces"]["eth1"][0], "192.0.2.1/30");
    assert_eq!(node(&report, "sw")["kind"], "bridge");
    assert_eq!(node(&report, "h1")["role"], "plain");
    let link = &report["links"][0];
    assert_eq!(link["a"], "r1:eth1");
    assert_eq!(link["b_addresses"][0], "192.0.2.2/30");
    assert_eq!(link["mtu"], 9500);
    assert_eq!(report["datastore"]["type"], "sqlite");
    assert!(
        r1["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "bird" && p["running"] == true)
    );
    lab.destroy_and_check();
}

#[test]
fn two_frr_routers_peer_with_binds_and_with_startup_config() {
    let lab = Lab::deploy("frr-ebgp/frr-ebgp.clab.yml", &[]);
    let summary = ["vtysh", "-c", "show bgp summary json"];
    lab.wait_exec("r1", &summary, SESSION_TIMEOUT, |o| {
        frr_peer_established(o, "192.0.2.6")
    });
    lab.wait_exec("r2", &summary, SESSION_TIMEOUT, |o| {
        frr_peer_established(o, "192.0.2.5")
    });
    lab.wait_exec(
        "r2",
        &["ip", "route", "show", "10.1.1.0/24"],
        SESSION_TIMEOUT,
        |o| o.contains("via 192.0.2.5"),
    );
    lab.wait_exec(
        "h1",
        &["ping", "-c", "1", "-W", "1", "10.1.2.1"],
        SESSION_TIMEOUT,
        |_| true,
    );
    let hostname = lab.exec_ok("r2", &["hostname"]);
    assert_eq!(hostname.trim(), "r2");
    let report = lab.inspect();
    let procs: Vec<&str> = node(&report, "r1")["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(procs, ["holder", "zebra", "staticd", "bgpd"]);
    lab.destroy_and_check();
}

#[test]
fn two_gobgp_speakers_exchange_a_route_originated_through_the_api() {
    let lab = Lab::deploy("gobgp-ebgp/gobgp-ebgp.clab.yml", &[]);
    lab.wait_exec("r2", &["gobgp", "neighbor"], SESSION_TIMEOUT, |o| {
        o.lines()
            .any(|l| l.starts_with("192.0.2.9") && l.contains("Establ"))
    });
    let rib = lab.wait_exec(
        "r2",
        &["gobgp", "-j", "global", "rib", "-a", "ipv4"],
        SESSION_TIMEOUT,
        |o| o.contains("10.2.1.0/24"),
    );
    assert!(rib.contains("192.0.2.9"), "next hop is r1:\n{rib}");
    lab.exec_ok("r2", &["ping", "-c", "1", "-W", "2", "192.0.2.9"]);
    assert_eq!(node(&lab.inspect(), "r2")["role"], "gobgp");
    lab.destroy_and_check();
}

#[test]
fn frr_and_bird_peer_and_carry_traffic_between_their_networks() {
    let lab = Lab::deploy("frr-bird/frr-bird.clab.yml", &[]);
    lab.wait_exec(
        "r1",
        &["vtysh", "-c", "show bgp summary json"],
        SESSION_TIMEOUT,
        |o| frr_peer_established(o, "192.0.2.14"),
    );
    lab.wait_exec(
        "r2",
        &["birdc", "show", "protocols"],
        SESSION_TIMEOUT,
        |o| established_in_birdc(o, "r1"),
    );
    lab.wait_exec(
        "r2",
        &["birdc", "show", "route", "10.4.1.0/24"],
        SESSION_TIMEOUT,
        |o| o.contains("10.4.1.0/24"),
    );
    lab.wait_exec(
        "h1",
        &["ping", "-c", "1", "-W", "1", "10.4.2.1"],
        SESSION_TIMEOUT,
        |_| true,
    );
    lab.destroy_and_check();
}
