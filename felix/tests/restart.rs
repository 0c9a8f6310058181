//! Restarting felix under a continuous ping loses no packet: a restarted felix finds its
//! routes, devices and neighbours in place and deletes nothing before it is in sync (root only).

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use fabric_api::ippool::{IPIPMode, VXLANMode};
use fabric_testkit::ChildGuard;
use support::{Cluster, eventually, http_get};

/// `(transmitted, received)` from ping's summary line.
fn ping_summary(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut numbers = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().ok());
    Some((numbers.next()??, numbers.next()??))
}

#[test]
fn restarting_felix_under_a_continuous_ping_loses_no_packet() {
    let c = Cluster::new(2, IPIPMode::Never, VXLANMode::Always);
    let pods = [c.add_pod(0, 5), c.add_pod(1, 5)];
    let mut felixes = [c.start_felix(0, &[]), c.start_felix(1, &[])];
    for (n, felix) in felixes.iter().enumerate() {
        let ns = &c.nodes[n].ns;
        assert!(
            eventually(30, || http_get(ns, 9099, "/readiness").0 == 200),
            "node {n} not ready: {:?}\n{}",
            http_get(ns, 9099, "/readiness"),
            felix.log()
        );
    }
    assert!(eventually(20, || pods[0].pings(&pods[1].ip)));
    assert!(
        felixes[0].log().contains("dataplane applied"),
        "{}",
        felixes[0].log()
    );

    let mut ping = ChildGuard(
        pods[0]
            .ns
            .cmd("ping")
            .args(["-i", "0.05", "-W", "1", &pods[1].ip])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    for (n, felix) in felixes.iter_mut().enumerate() {
        felix.terminate();
        std::thread::sleep(Duration::from_millis(300));
        *felix = c.start_felix(n, &[]);
        let ns = &c.nodes[n].ns;
        assert!(
            eventually(30, || http_get(ns, 9099, "/readiness").0 == 200),
            "node {n} not ready after the restart: {:?}\n{}",
            http_get(ns, 9099, "/readiness"),
            felix.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A SIGKILL mid-flight is a restart too.
    felixes[0].child.kill();
    felixes[0] = c.start_felix(0, &[]);
    assert!(eventually(30, || http_get(
        &c.nodes[0].ns,
        9099,
        "/readiness"
    )
    .0 == 200));
    std::thread::sleep(Duration::from_millis(500));

    let pid = nix::unistd::Pid::from_raw(ping.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let _ = ping.0.wait();
    let mut out = String::new();
    ping.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let (sent, received) = ping_summary(&out).unwrap_or_else(|| panic!("no summary:\n{out}"));
    assert!(sent >= 20, "too few probes: {out}");
    assert_eq!(sent, received, "packets lost across felix restarts:\n{out}");
    // The restarted felixes found everything in place and wrote nothing.
    for f in &felixes {
        let log = f.log();
        assert!(log.contains("in sync with the datastore"), "{log}");
        assert!(
            !log.contains("dataplane applied"),
            "a restarted felix rewrote state:\n{log}"
        );
    }
}
