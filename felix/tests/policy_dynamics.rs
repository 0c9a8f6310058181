//! Policy over time, with real traffic: a pod's label change changes its access quickly
//! (measured), rewriting a policy's chains and sets never opens a window for a denied flow nor
//! closes one for an allowed flow, chains and sets flushed by hand are repaired within the
//! refresh interval while foreign rules survive (nft and legacy), and the legacy iptables
//! backend is selectable (root only).

#![allow(clippy::unwrap_used)]

mod policy_support;
mod support;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use policy_support::{Lab, LabPod, Proto, assert_flows, no, ok, reaches, reaches_once, serve};
use support::eventually;

/// Polls `from -> to:80` every 50 ms until it is `allowed`; returns how long that took.
fn time_until(from: &LabPod, to: &LabPod, allowed: bool, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if reaches(from, to.ip(), Proto::Tcp(80), Duration::from_millis(100)) == allowed {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn a_label_change_changes_a_pods_access_within_about_a_second() {
    let mut lab = Lab::new(None);
    lab.namespace("prod", &[]);
    let mut web = lab.pod(0, 5, "prod", "web", &[("app", "web")]);
    let client = lab.pod(1, 5, "prod", "client", &[("app", "client")]);
    let other = lab.pod(0, 6, "prod", "other", &[("app", "other")]);
    serve(&mut web, &[80], &[]);
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: web-trusted-only}
spec:
  selector: app == 'web'
  ingress: [{action: Allow, protocol: TCP, source: {selector: role == 'trusted'}, destination: {ports: [80]}}]
",
    );
    lab.start(&[]);
    assert_flows(
        &lab,
        "untrusted",
        30,
        &[
            no(&client, &web, Proto::Tcp(80)),
            no(&other, &web, Proto::Tcp(80)),
        ],
    );
    let mut gained = Vec::new();
    let mut lost = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        lab.set_labels(&client, &[("app", "client"), ("role", "trusted")]);
        let took = time_until(&client, &web, true, Duration::from_secs(20));
        assert!(
            took.is_some(),
            "no access after the label was added\n{}",
            lab.logs()
        );
        gained.push(t.elapsed());
        let t = Instant::now();
        lab.set_labels(&client, &[("app", "client")]);
        let took = time_until(&client, &web, false, Duration::from_secs(20));
        assert!(
            took.is_some(),
            "access kept after the label was removed\n{}",
            lab.logs()
        );
        lost.push(t.elapsed());
    }
    // Measured, not asserted: the write, the syncer, the calc graph, one ipset change.
    eprintln!("label added -> access: {gained:?}; label removed -> no access: {lost:?}");
    assert!(!reaches(
        &other,
        web.ip(),
        Proto::Tcp(80),
        Duration::from_millis(500)
    ));
}

/// The policy of the rewrite test, edition `i`: web accepts TCP 80 from api, plus a UDP port
/// that changes with every edition (so its chain is rewritten) from pods labelled `tier == x`.
fn web_policy(i: u32) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: web}}
spec:
  selector: app == 'web'
  ingress:
  - {{action: Allow, protocol: TCP, source: {{selector: app == 'api'}}, destination: {{ports: [80]}}}}
  - {{action: Allow, protocol: UDP, source: {{selector: tier == 'x'}}, destination: {{ports: [{}]}}}}
",
        9000 + i
    )
}

#[test]
fn rewriting_policy_chains_and_sets_never_lets_a_denied_flow_through_nor_blocks_an_allowed_one() {
    let mut lab = Lab::new(None);
    lab.namespace("prod", &[]);
    let mut web = lab.pod(0, 5, "prod", "web", &[("app", "web")]);
    let api = lab.pod(0, 6, "prod", "api", &[("app", "api")]);
    let client = lab.pod(1, 5, "prod", "client", &[("app", "client")]);
    serve(&mut web, &[80], &[]);
    lab.apply(&web_policy(0));
    lab.start(&[]);
    assert_flows(
        &lab,
        "before the rewrites",
        30,
        &[
            ok(&api, &web, Proto::Tcp(80)),
            no(&client, &web, Proto::Tcp(80)),
        ],
    );

    // Probes run back to back while the policy is edited (its chain rewritten) and the client
    // moves in and out of the `tier == x` set (set members changed).
    let stop = AtomicBool::new(false);
    let denied_through = AtomicU32::new(0);
    let allowed_blocked = AtomicU32::new(0);
    let probes = AtomicU32::new(0);
    let edits = 12;
    let ns = lab.c.nodes[0].ns.clone();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if reaches_once(
                    &client,
                    web.ip(),
                    Proto::Tcp(80),
                    Duration::from_millis(300),
                ) {
                    denied_through.fetch_add(1, Ordering::Relaxed);
                }
                probes.fetch_add(1, Ordering::Relaxed);
            }
        });
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                // A lost SYN is retried by the kernel within the 3 s; a block is not.
                if !reaches_once(&api, web.ip(), Proto::Tcp(80), Duration::from_secs(3)) {
                    allowed_blocked.fetch_add(1, Ordering::Relaxed);
                }
                probes.fetch_add(1, Ordering::Relaxed);
            }
        });
        let not_applied = (1..=edits).find(|i| {
            lab.apply(&web_policy(*i));
            if i % 2 == 0 {
                lab.set_labels(&client, &[("app", "client")]);
            } else {
                lab.set_labels(&client, &[("app", "client"), ("tier", "x")]);
            }
            let port = format!("--dports {} ", 9000 + i);
            !eventually(20, || ns.sh("iptables-nft-save -t filter").contains(&port))
        });
        stop.store(true, Ordering::Relaxed);
        assert!(
            not_applied.is_none(),
            "edit {not_applied:?} not applied:\n{}\n{}",
            ns.sh("iptables-nft-save -t filter"),
            lab.logs()
        );
    });
    eprintln!(
        "{edits} policy edits and label changes, {} probes",
        probes.load(Ordering::Relaxed)
    );
    assert_eq!(
        denied_through.load(Ordering::Relaxed),
        0,
        "a denied connection got through during a rewrite"
    );
    assert_eq!(
        allowed_blocked.load(Ordering::Relaxed),
        0,
        "an allowed connection was blocked during a rewrite"
    );
}

/// Flushes every `cali-` chain and `cali40` set of node 1 and deletes our `FORWARD` hook while
/// felix is frozen, checks the deny is gone, lets felix run and measures how long the repair
/// takes (refresh interval 2 s); a foreign chain and a foreign `FORWARD` rule survive.
fn flushed_chains_and_sets_are_repaired(backend: &str) {
    let mut lab = Lab::new(Some("2s"));
    lab.namespace("prod", &[]);
    let mut web = lab.pod(0, 5, "prod", "web", &[("app", "web")]);
    let client = lab.pod(0, 6, "prod", "client", &[("app", "client")]);
    serve(&mut web, &[80], &[]);
    let ns = lab.c.nodes[0].ns.clone();
    // Foreign objects: a chain of its own and a rule in FORWARD.
    ns.sh(&format!(
        "iptables-{backend} -N FOREIGN && iptables-{backend} -A FOREIGN -j RETURN"
    ));
    ns.sh(&format!(
        "iptables-{backend} -A FORWARD -s 192.0.2.0/24 -j FOREIGN"
    ));
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-client}
spec:
  selector: app == 'web'
  ingress: [{action: Deny, source: {selector: app == 'client'}}, {action: Allow}]
",
    );
    lab.start(&[("FELIX_IPTABLESBACKEND", backend)]);
    assert_flows(
        &lab,
        "deny-client",
        30,
        &[no(&client, &web, Proto::Tcp(80))],
    );

    // Tampering, with felix frozen so that it cannot repair half of it before we look.
    let save = || ns.sh(&format!("iptables-{backend}-save -t filter"));
    lab.pause(0);
    let chains: Vec<String> = save()
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter(|l| l.starts_with("cali-"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert!(chains.len() > 10, "{chains:?}");
    for c in &chains {
        ns.sh(&format!("iptables-{backend} -F {c}"));
    }
    let hook = save()
        .lines()
        .find(|l| l.starts_with("-A FORWARD") && l.contains("-j cali-FORWARD"))
        .map(|l| l.trim_start_matches("-A FORWARD ").to_string());
    if let Some(h) = hook {
        ns.sh(&format!("iptables-{backend} -D FORWARD {h}"));
    }
    let sets: Vec<String> = ns
        .sh("ipset list -n")
        .lines()
        .filter(|s| s.starts_with("cali40"))
        .map(str::to_string)
        .collect();
    let selector_set = sets
        .iter()
        .find(|s| {
            s.starts_with("cali40s:") && ns.sh(&format!("ipset list {s}")).contains(client.ip())
        })
        .unwrap_or_else(|| panic!("no selector set holds the client: {sets:?}"))
        .clone();
    for s in &sets {
        ns.sh(&format!("ipset flush {s}"));
    }
    let after = save();
    assert!(!after.contains("-j cali-FORWARD"), "{after}");
    assert!(
        reaches(
            &client,
            web.ip(),
            Proto::Tcp(80),
            Duration::from_millis(500)
        ),
        "with our rules gone the deny is gone too"
    );

    let t = Instant::now();
    lab.resume(0);
    let members = || ns.sh(&format!("ipset list {selector_set}"));
    let repaired = eventually(20, || {
        let text = save();
        text.contains("-j cali-FORWARD")
            && text.contains("-A cali-tw-")
            && members().contains(client.ip())
    });
    assert!(
        repaired,
        "not repaired:\n{}\n{}\n{}",
        save(),
        members(),
        lab.logs()
    );
    eprintln!(
        "{backend}: repaired {:?} after felix resumed (refresh interval 2 s)",
        t.elapsed()
    );
    assert_flows(&lab, "repaired", 10, &[no(&client, &web, Proto::Tcp(80))]);
    let text = save();
    assert!(text.contains(":FOREIGN"), "{text}");
    assert!(
        text.contains("-A FORWARD -s 192.0.2.0/24 -j FOREIGN"),
        "{text}"
    );
    assert_eq!(text.matches("-j cali-FORWARD").count(), 1, "{text}");
}

#[test]
fn flushed_nft_chains_and_sets_are_repaired_within_the_refresh_interval_and_foreign_rules_survive()
{
    flushed_chains_and_sets_are_repaired("nft");
}

#[test]
fn flushed_legacy_chains_and_sets_are_repaired_within_the_refresh_interval_and_foreign_rules_survive()
 {
    flushed_chains_and_sets_are_repaired("legacy");
}

#[test]
fn the_legacy_backend_is_selectable_and_enforces_the_same_policy() {
    let mut lab = Lab::new(None);
    lab.namespace("prod", &[]);
    let mut web = lab.pod(0, 5, "prod", "web", &[("app", "web")]);
    let client = lab.pod(1, 5, "prod", "client", &[("app", "client")]);
    let api = lab.pod(1, 6, "prod", "api", &[("app", "api")]);
    serve(&mut web, &[80], &[]);
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: web-from-api}
spec:
  selector: app == 'web'
  ingress: [{action: Allow, source: {selector: app == 'api'}}]
",
    );
    lab.start(&[("FELIX_IPTABLESBACKEND", "legacy")]);
    assert_flows(
        &lab,
        "legacy",
        30,
        &[
            ok(&api, &web, Proto::Tcp(80)),
            no(&client, &web, Proto::Tcp(80)),
        ],
    );
    let ns = &lab.c.nodes[0].ns;
    assert!(
        ns.sh("iptables-legacy-save -t filter")
            .contains("-A cali-tw-")
    );
    assert!(!ns.sh("iptables-nft-save -t filter").contains("cali-"));
}
