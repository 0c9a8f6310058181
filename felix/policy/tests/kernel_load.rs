//! Every golden case, IPv4 and IPv6, loads into real iptables (nft and legacy backends) and
//! ipset in a private network namespace: the renderer's syntax is what the kernel accepts
//! (root only).

#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::Stdio;

use common::{CASES, case_state};
use fabric_testkit::Netns;
use felix_policy::{FamilyRender, IpFamily};

fn feed(ns: &Netns, program: &str, args: &[&str], input: &str) {
    let mut child = ns
        .cmd(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\ninput:\n{input}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ipset_script(r: &FamilyRender) -> String {
    let family = match r.family {
        IpFamily::V4 => "inet",
        IpFamily::V6 => "inet6",
    };
    let mut s = String::new();
    for set in &r.ipsets {
        let _ = writeln!(
            s,
            "create {} {} family {family}",
            set.name(),
            set.kind.as_str()
        );
        for m in &set.members {
            let _ = writeln!(s, "add {} {m}", set.name());
        }
    }
    s
}

fn restore_script(r: &FamilyRender) -> String {
    let mut s = String::from("*filter\n");
    for c in &r.chains {
        let _ = writeln!(s, ":{} - [0:0]", c.name);
    }
    for c in r.chains.iter().chain(&r.hooks) {
        for rule in &c.rules {
            let _ = writeln!(s, "-A {} {rule}", c.name);
        }
    }
    s.push_str("COMMIT\n");
    s
}

fn load_all(backend: &str) {
    for (name, _) in CASES {
        let ns = Netns::new("polsyn");
        let mut state = case_state(name, true);
        for r in state.full() {
            feed(&ns, "ipset", &["restore"], &ipset_script(&r));
            let program = match r.family {
                IpFamily::V4 => format!("iptables-{backend}-restore"),
                IpFamily::V6 => format!("ip6tables-{backend}-restore"),
            };
            feed(&ns, &program, &[], &restore_script(&r));
            let save = match r.family {
                IpFamily::V4 => format!("iptables-{backend}-save"),
                IpFamily::V6 => format!("ip6tables-{backend}-save"),
            };
            let text = ns.sh(&format!("{save} -t filter"));
            let loaded = text.lines().filter(|l| l.starts_with("-A ")).count();
            let want: usize = r.chains.iter().chain(&r.hooks).map(|c| c.rules.len()).sum();
            assert_eq!(loaded, want, "{name} {}: {text}", r.family);
        }
    }
}

#[test]
fn every_golden_case_loads_into_iptables_nft() {
    load_all("nft");
}

#[test]
fn every_golden_case_loads_into_iptables_legacy() {
    load_all("legacy");
}
