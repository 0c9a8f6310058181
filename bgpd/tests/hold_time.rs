//! Hold time (root, namespaces): when the link to BIRD goes down, the session is torn down by the
//! hold timer.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Bgpd, POLL, SESSION, two_namespaces};
use fabric_testkit::{Bird, require_root, wait_until};

#[test]
fn cutting_the_link_tears_the_session_down_by_the_hold_timer() {
    require_root();
    let (a, b) = two_namespaces("hold");
    let bgpd = Bgpd::start(
        &a,
        r#"router-id = "192.0.2.1"
asn = 65001
listen = ["192.0.2.1:179"]
hold-time = 3
connect-retry = 1
error-wait = [1, 5]

[[neighbor]]
address = "192.0.2.2"
remote-asn = 65002
"#,
    );
    let bird = Bird::start(
        &b,
        r#"router id 192.0.2.2;
protocol device { scan time 2; }
protocol bgp peer4 {
  local 192.0.2.2 as 65002;
  neighbor 192.0.2.1 as 65001;
  hold time 3; connect delay time 1; connect retry time 2;
  ipv4 { import all; export none; };
}
"#,
    )
    .unwrap();
    bird.wait_established("peer4", SESSION).unwrap();
    bgpd.wait_established("192.0.2.2");
    let n = bgpd.neighbor("192.0.2.2").unwrap();
    assert_eq!(n.session.as_ref().unwrap().hold_time, 3);

    b.ip("link set vb down");
    let cut = Instant::now();
    let down = wait_until(Duration::from_secs(15), POLL, || {
        bgpd.neighbor("192.0.2.2")
            .is_some_and(|n| n.state != "Established")
    });
    let took = cut.elapsed();
    assert!(down, "the session stayed up:\n{}", bgpd.log());
    let n = bgpd.neighbor("192.0.2.2").unwrap();
    let err = n.last_error.unwrap().message;
    assert!(err.contains("4/0"), "torn down by the hold timer: {err}");
    assert!(err.contains("Hold Timer Expired"), "{err}");
    eprintln!("session down {took:?} after the cut (hold time 3 s)");
}
