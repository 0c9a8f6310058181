//! TCP MD5 (RFC 2385) with BIRD 2 (root, namespaces): the right password brings the session up
//! (both directions of connection), a wrong one never does and says why.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Bgpd, POLL, SESSION, two_namespaces};
use fabric_testkit::{Bird, require_root, wait_until};

fn bird_config(password: &str) -> String {
    format!(
        r#"router id 192.0.2.2;
protocol device {{ scan time 2; }}
protocol bgp peer4 {{
  local 192.0.2.2 as 65002;
  neighbor 192.0.2.1 as 65001;
  password "{password}";
  hold time 9; connect delay time 1; connect retry time 2; error wait time 1,5;
  ipv4 {{ import all; export none; }};
}}
"#
    )
}

fn bgpd_config(password: &str, passive: bool) -> String {
    format!(
        r#"router-id = "192.0.2.1"
asn = 65001
listen = ["192.0.2.1:179"]
hold-time = 9
connect-retry = 1
error-wait = [1, 5]

[[neighbor]]
address = "192.0.2.2"
remote-asn = 65002
password = "{password}"
passive = {passive}
"#
    )
}

#[test]
fn the_right_md5_password_brings_the_session_up_in_both_directions() {
    require_root();
    for passive in [false, true] {
        let (a, b) = two_namespaces("md5");
        let bgpd = Bgpd::start(&a, &bgpd_config("Calico-s3cret", passive));
        let bird = Bird::start(&b, &bird_config("Calico-s3cret")).unwrap();
        bird.wait_established("peer4", SESSION).unwrap();
        bgpd.wait_established("192.0.2.2");
        assert!(bgpd.neighbor("192.0.2.2").unwrap().md5);
    }
}

#[test]
fn a_wrong_md5_password_never_establishes_and_the_last_error_says_why() {
    require_root();
    let (a, b) = two_namespaces("md5x");
    let bgpd = Bgpd::start(&a, &bgpd_config("right-password", false));
    let bird = Bird::start(&b, &bird_config("wrong-password")).unwrap();
    // Several connection attempts in each direction fail in this time.
    let up = wait_until(Duration::from_secs(8), POLL, || {
        bgpd.neighbor("192.0.2.2")
            .is_some_and(|n| n.state == "Established")
            || bird.protocol_state("peer4").as_deref() == Some("Established")
    });
    assert!(!up, "a session came up with a wrong MD5 password");
    let n = bgpd.neighbor("192.0.2.2").unwrap();
    let err = n.last_error.expect("a last error").message;
    assert!(err.contains("TCP MD5"), "last error: {err}");
    assert!(
        bgpd.log().contains("TCP MD5"),
        "the log names MD5:\n{}",
        bgpd.log()
    );
}
