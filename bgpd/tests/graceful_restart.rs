//! Graceful restart as the restarting speaker (root, namespaces): bgpd is SIGKILLed while BIRD
//! holds its route; BIRD keeps it stale and in its kernel table, bgpd comes back (R and F bits
//! from the state file), re-advertises and sends End-of-RIB, and a router downstream of BIRD
//! never sees a withdrawal.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bgp_wire::Prefix;
use bgpd::status::protocol::Request;
use common::{Bgpd, POLL, ROUTES, SESSION, link, two_namespaces};
use fabric_testkit::bgp_peer::{BgpPeer, PeerConfig};
use fabric_testkit::{Bird, Netns, require_root, wait_until};

const BIRD: &str = r#"router id 192.0.2.2;
protocol device { scan time 2; }
protocol kernel {
  ipv4 { import none; export all; };
  graceful restart;
}
protocol bgp toward_a {
  local 192.0.2.2 as 65002;
  neighbor 192.0.2.1 as 65001;
  graceful restart on;
  hold time 9; connect delay time 1; connect retry time 2; error wait time 1,5;
  debug { states, events, packets };
  ipv4 { import all; export none; };
}
protocol bgp toward_c {
  local 198.51.100.1 as 65002;
  neighbor 198.51.100.2 as 65003;
  passive on;
  hold time 90;
  ipv4 { import none; export all; };
}
"#;

const BGPD: &str = r#"router-id = "192.0.2.1"
asn = 65001
listen = ["192.0.2.1:179"]
hold-time = 9
connect-retry = 1
error-wait = [1, 5]

[graceful-restart]
restart-time = 120
selection-deferral = 30

[[neighbor]]
address = "192.0.2.2"
remote-asn = 65002

[[originate]]
prefix = "10.244.1.0/26"
"#;

fn kernel_has(ns: &Netns, prefix: &str) -> bool {
    ns.sh(&format!("ip route show {prefix}")).contains(prefix)
}

fn bird_log(bird: &Bird) -> String {
    std::fs::read_to_string(bird.log_path()).unwrap_or_default()
}

fn restarting(bgpd: &Bgpd) -> bool {
    bgpd.try_query(&Request::Status)
        .unwrap()
        .status
        .unwrap()
        .restarting
}

#[test]
fn a_killed_bgpd_restarts_gracefully_and_downstream_never_sees_a_withdrawal() {
    require_root();
    let (a, b) = two_namespaces("gr");
    let c = Netns::new("gr");
    link(&b, "bc", "198.51.100.1/30", &c, "cb", "198.51.100.2/30");
    let mut bgpd = Bgpd::start(&a, BGPD);
    let bird = Bird::start(&b, BIRD).unwrap();
    bird.wait_established("toward_a", SESSION).unwrap();
    bgpd.wait_established("192.0.2.2");
    assert!(!restarting(&bgpd));
    let downstream = BgpPeer::connect_in(
        &c,
        "198.51.100.1:179".parse::<SocketAddr>().unwrap(),
        PeerConfig::new(65003, "198.51.100.2".parse().unwrap()),
    )
    .unwrap();
    let prefix: Prefix = "10.244.1.0/26".parse().unwrap();
    downstream
        .wait_for_named("the route at the downstream router", ROUTES, |s| {
            s.has_prefix(prefix)
        })
        .unwrap();
    assert!(wait_until(ROUTES, POLL, || kernel_has(&b, "10.244.1.0/26")));

    bgpd.kill();
    assert!(bgpd.state_file().exists(), "SIGKILL leaves the state file");
    // BIRD notices the closed connection and keeps the route stale, in its kernel table too.
    let noticed = wait_until(SESSION, POLL, || {
        bird_log(&bird).contains("Neighbor graceful restart detected")
    });
    assert!(
        noticed,
        "BIRD did not notice the restart:\n{}",
        bird_log(&bird)
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        kernel_has(&b, "10.244.1.0/26"),
        "BIRD removed the kernel route"
    );
    assert!(
        bird.routes("master4").iter().any(|r| r.prefix == prefix),
        "BIRD dropped the route: {}",
        bird.birdc("show route all")
    );

    bgpd.restart();
    assert!(
        restarting(&bgpd),
        "the state file makes the new process a restarting speaker"
    );
    bird.wait_established("toward_a", SESSION).unwrap();
    bgpd.wait_established("192.0.2.2");
    // BIRD ends its helper mode when our End-of-RIB arrives.
    let done = wait_until(ROUTES, POLL, || {
        bird_log(&bird).contains("Neighbor graceful restart done")
    });
    assert!(
        done,
        "BIRD did not finish the graceful restart:\n{}",
        bird_log(&bird)
    );
    assert!(
        bird_log(&bird).to_lowercase().contains("end-of-rib"),
        "no End-of-RIB in BIRD's packet trace:\n{}",
        bird_log(&bird)
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(kernel_has(&b, "10.244.1.0/26"));
    downstream.with_state(|s| {
        assert!(s.has_prefix(prefix), "downstream lost the route");
        assert!(
            s.withdrawn.is_empty(),
            "downstream saw withdrawals: {:?}",
            s.withdrawn
        );
        assert!(s.notifications.is_empty());
    });

    // A clean stop removes the state file: the next start is a fresh one.
    let status = bgpd.terminate();
    assert!(status.success(), "bgpd exit status {status}");
    assert!(!bgpd.state_file().exists());
    let cease = wait_until(SESSION, POLL, || {
        bird_log(&bird).contains("Received: Administrative shutdown")
    });
    assert!(cease, "BIRD got no Cease on SIGTERM:\n{}", bird_log(&bird));
}
