//! Configuration files and reloads (root, namespaces): a reload adds a neighbour without
//! touching the existing session, changing one neighbour resets only that one, a bad reload
//! changes nothing, and a bad file stops bgpd from starting.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bgpd::status::protocol::Request;
use common::{Bgpd, POLL, SESSION};
use fabric_testkit::{Bird, Netns, require_root, veth, wait_until};

/// A = 192.0.2.1 and 192.0.2.4 (bgpd; the session to 192.0.2.3 uses the second as its source
/// address); B = 192.0.2.2 and 192.0.2.3 (one BIRD, two sessions).
fn world(tag: &str) -> (Netns, Netns, Bird) {
    require_root();
    let a = Netns::new(tag);
    let b = Netns::new(tag);
    veth(&a, "va", &b, "vb");
    a.ip("addr add 192.0.2.1/29 dev va");
    a.ip("addr add 192.0.2.4/29 dev va");
    b.ip("addr add 192.0.2.2/29 dev vb");
    b.ip("addr add 192.0.2.3/29 dev vb");
    let bird = Bird::start(
        &b,
        r#"router id 192.0.2.2;
protocol device { scan time 2; }
protocol static s4 { ipv4; route 10.245.0.0/26 blackhole; }
template bgp t {
  hold time 30; connect delay time 1; connect retry time 2; error wait time 1,5;
  ipv4 { import all; export where source = RTS_STATIC; };
}
protocol bgp p2 from t { local 192.0.2.2 as 65002; neighbor 192.0.2.1 as 65001; }
protocol bgp p3 from t { local 192.0.2.3 as 65003; neighbor 192.0.2.4 as 65001; }
"#,
    )
    .unwrap();
    (a, b, bird)
}

fn config(neighbors: &[(&str, u32, u16)]) -> String {
    let mut s = String::from(
        r#"router-id = "192.0.2.1"
asn = 65001
listen = ["192.0.2.1:179", "192.0.2.4:179"]
connect-retry = 1
error-wait = [1, 5]
"#,
    );
    for (addr, asn, hold) in neighbors {
        let source = if *addr == "192.0.2.3" {
            "192.0.2.4"
        } else {
            "192.0.2.1"
        };
        s.push_str(&format!(
            "\n[[neighbor]]\naddress = \"{addr}\"\nremote-asn = {asn}\nhold-time = {hold}\nlocal-address = \"{source}\"\n"
        ));
    }
    s
}

#[test]
fn a_reload_adds_a_neighbour_without_resetting_the_existing_session() {
    let (a, _b, bird) = world("rla");
    let mut bgpd = Bgpd::start(&a, &config(&[("192.0.2.2", 65002, 30)]));
    bgpd.wait_established("192.0.2.2");
    bird.wait_established("p2", SESSION).unwrap();
    let before = bgpd.neighbor("192.0.2.2").unwrap();

    bgpd.reload_with_sighup(&config(&[
        ("192.0.2.2", 65002, 30),
        ("192.0.2.3", 65003, 30),
    ]));
    bgpd.wait_established("192.0.2.3");
    bird.wait_established("p3", SESSION).unwrap();
    bgpd.wait_route("10.245.0.0/26", "192.0.2.3", true);
    let after = bgpd.neighbor("192.0.2.2").unwrap();
    assert_eq!(after.state, "Established");
    assert_eq!(
        after.since_unix_ms, before.since_unix_ms,
        "the session was reset"
    );
    assert_eq!(after.established_transitions, 1);
    assert_eq!(after.flaps, 0);
}

#[test]
fn changing_one_neighbour_resets_only_that_one() {
    let (a, _b, bird) = world("rlc");
    let mut bgpd = Bgpd::start(
        &a,
        &config(&[("192.0.2.2", 65002, 30), ("192.0.2.3", 65003, 30)]),
    );
    bgpd.wait_established("192.0.2.2");
    bgpd.wait_established("192.0.2.3");
    bird.wait_established("p2", SESSION).unwrap();
    bird.wait_established("p3", SESSION).unwrap();
    let two = bgpd.neighbor("192.0.2.2").unwrap();

    let report = bgpd
        .reload(&config(&[
            ("192.0.2.2", 65002, 30),
            ("192.0.2.3", 65003, 20),
        ]))
        .unwrap()
        .reload
        .unwrap();
    assert_eq!(
        report.neighbors_changed,
        vec!["192.0.2.3".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(report.neighbors_added.is_empty() && report.neighbors_removed.is_empty());
    let reset = wait_until(SESSION, POLL, || {
        bgpd.neighbor("192.0.2.3").is_some_and(|n| {
            n.flaps == 1
                && n.state == "Established"
                && n.session.as_ref().is_some_and(|s| s.hold_time == 20)
        })
    });
    assert!(
        reset,
        "192.0.2.3 was not re-established: {:?}",
        bgpd.neighbor("192.0.2.3")
    );
    assert!(
        bgpd.log()
            .contains("6/6 Cease / Other Configuration Change"),
        "Cease/Other Configuration Change sent:\n{}",
        bgpd.log()
    );
    let after = bgpd.neighbor("192.0.2.2").unwrap();
    assert_eq!(after.since_unix_ms, two.since_unix_ms);
    assert_eq!(after.established_transitions, 1);
    assert_eq!(after.flaps, 0);
}

#[test]
fn a_bad_reload_is_refused_and_changes_nothing() {
    let (a, _b, bird) = world("rlb");
    let good = config(&[("192.0.2.2", 65002, 30)]);
    let mut bgpd = Bgpd::start(&a, &good);
    bgpd.wait_established("192.0.2.2");
    bird.wait_established("p2", SESSION).unwrap();
    let before = bgpd.neighbor("192.0.2.2").unwrap();

    // A valid new neighbour next to an invalid one: neither is applied.
    let bad = format!(
        "{}\n[[neighbor]]\naddress = \"192.0.2.4\"\nremote-asn = 0\n",
        config(&[("192.0.2.2", 65002, 30), ("192.0.2.3", 65003, 30)])
    );
    let err = bgpd.reload(&bad).unwrap_err();
    assert!(err.contains("neighbor[2].remote-asn = 0"), "{err}");
    let err = bgpd
        .reload("router-id = \"192.0.2.1\"\nasn = 65001\nlisten = [\"192.0.2.1:179\"]\nbogus = 1\n")
        .unwrap_err();
    assert!(err.contains("bogus"), "{err}");
    std::thread::sleep(Duration::from_secs(1));
    let neighbors = bgpd.neighbors();
    assert_eq!(neighbors.len(), 1, "{neighbors:?}");
    let after = &neighbors[0];
    assert_eq!(after.since_unix_ms, before.since_unix_ms);
    assert_eq!(after.state, "Established");
    // A SIGHUP with a bad file is refused the same way, and logged.
    bgpd.reload_with_sighup(&bad);
    let logged = wait_until(Duration::from_secs(10), POLL, || {
        bgpd.log().contains("reload refused")
    });
    assert!(logged, "{}", bgpd.log());
    assert_eq!(bgpd.neighbors().len(), 1);
    assert!(bgpd.try_query(&Request::Status).is_ok());
}

#[test]
fn bgpd_refuses_to_start_with_a_bad_file_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bgpd.toml");
    std::fs::write(
        &path,
        "router-id = \"192.0.2.1\"\nasn = 65001\n[[neighbor]]\naddress = \"192.0.2.999\"\nremote-asn = 65002\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .arg("--config")
        .arg(&path)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("neighbor[0].address"), "{stderr}");
    assert!(stderr.contains("192.0.2.999"), "{stderr}");
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .arg("--config")
        .arg(&path)
        .arg("check")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!check.status.success());
}
