//! GTSM / TTL security (RFC 5082) with BIRD 2 (root, namespaces): with `ttl-security` on both
//! sides the session comes up; against a neighbour that sends TTL 1 it never does.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Bgpd, POLL, SESSION, two_namespaces};
use fabric_testkit::{Bird, require_root, wait_until};

const BGPD: &str = r#"router-id = "192.0.2.1"
asn = 65001
listen = ["192.0.2.1:179"]
hold-time = 9
connect-retry = 1
error-wait = [1, 5]

[[neighbor]]
address = "192.0.2.2"
remote-asn = 65002
ttl-security = 1
"#;

fn bird(ttl_security: &str) -> String {
    format!(
        r#"router id 192.0.2.2;
protocol device {{ scan time 2; }}
protocol bgp peer4 {{
  local 192.0.2.2 as 65002;
  neighbor 192.0.2.1 as 65001;
  ttl security {ttl_security};
  hold time 9; connect delay time 1; connect retry time 2; error wait time 1,5;
  ipv4 {{ import all; export none; }};
}}
"#
    )
}

#[test]
fn ttl_security_on_both_sides_brings_the_session_up() {
    require_root();
    let (a, b) = two_namespaces("gtsm");
    let bgpd = Bgpd::start(&a, BGPD);
    let bird = Bird::start(&b, &bird("on")).unwrap();
    bird.wait_established("peer4", SESSION).unwrap();
    bgpd.wait_established("192.0.2.2");
}

#[test]
fn ttl_security_refuses_a_neighbour_that_sends_ttl_1() {
    require_root();
    let (a, b) = two_namespaces("gtsmx");
    let bgpd = Bgpd::start(&a, BGPD);
    let bird = Bird::start(&b, &bird("off")).unwrap();
    let up = wait_until(Duration::from_secs(8), POLL, || {
        bgpd.neighbor("192.0.2.2")
            .is_some_and(|n| n.state == "Established")
            || bird.protocol_state("peer4").as_deref() == Some("Established")
    });
    assert!(
        !up,
        "a session came up with a neighbour outside the GTSM radius: {:?}\n{}\n{}",
        bgpd.neighbor("192.0.2.2"),
        bgpd.log(),
        std::fs::read_to_string(bird.log_path()).unwrap_or_default()
    );
    // BIRD's connections (TTL 1) are refused at accept and say so.
    let refused = wait_until(Duration::from_secs(10), POLL, || {
        bgpd.log().contains("GTSM: the connection from 192.0.2.2")
    });
    assert!(refused, "{}", bgpd.log());
}
