//! ipsets against the fake `ipset`.

use super::fake::FakeIpset;
use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn pools(members: &[&str]) -> IpSetSpec {
    IpSetSpec::new(
        "all-ipam-pools",
        IpFamily::V4,
        IpSetType::HashNet,
        members.iter().map(|m| net(m)),
    )
}

fn hosts(n: u32) -> IpSetSpec {
    IpSetSpec::new(
        "this-host",
        IpFamily::V4,
        IpSetType::HashIp,
        (0..n).map(|i| {
            IpNet::new(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)), 32).unwrap()
        }),
    )
}

#[test]
fn names_follow_calicos_scheme() {
    assert_eq!(pools(&[]).name(), "cali40all-ipam-pools");
    assert_eq!(pools(&[]).temp_name(), "cali4tall-ipam-pools");
    let v6 = IpSetSpec::new("all-ipam-pools", IpFamily::V6, IpSetType::HashNet, []);
    assert_eq!(v6.name(), "cali60all-ipam-pools");
}

#[test]
fn a_new_set_is_created_with_its_members() {
    let mut s = IpSets::new(FakeIpset::new());
    s.set_desired(vec![pools(&["10.65.0.0/16", "10.66.0.1/32"])])
        .unwrap();
    let report = s.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.created, 1);
    let set = &s.backend_mut().sets["cali40all-ipam-pools"];
    assert_eq!(set.kind, "hash:net");
    assert!(set.members.contains("10.65.0.0/16") && set.members.contains("10.66.0.1"));
    assert_eq!(s.apply().batches, 0);
    assert_eq!(s.resync().batches, 0, "a re-read finds it equal");
}

#[test]
fn a_small_change_is_written_as_add_and_del_lines() {
    let mut s = IpSets::new(FakeIpset::new());
    s.set_desired(vec![pools(&["10.65.0.0/16", "10.66.0.0/16"])])
        .unwrap();
    s.apply();
    s.set_desired(vec![pools(&["10.65.0.0/16", "10.67.0.0/16"])])
        .unwrap();
    let report = s.apply();
    assert_eq!(report.updated, 1);
    let last = s.backend_mut().restores.last().unwrap().clone();
    assert_eq!(
        last,
        "del cali40all-ipam-pools 10.66.0.0/16\nadd cali40all-ipam-pools 10.67.0.0/16\n"
    );
}

#[test]
fn a_big_change_is_written_through_a_temporary_set_and_swapped_in() {
    let mut s = IpSets::new(FakeIpset::new());
    s.set_desired(vec![hosts(10)]).unwrap();
    s.apply();
    s.set_desired(vec![hosts(1000)]).unwrap();
    let report = s.apply();
    assert!(report.is_ok(), "{:?}", report.errors);
    let last = s.backend_mut().restores.last().unwrap().clone();
    assert!(last.starts_with("create cali4tthis-host hash:ip"));
    assert!(last.ends_with("swap cali4tthis-host cali40this-host\ndestroy cali4tthis-host\n"));
    let b = s.backend_mut();
    assert_eq!(b.sets["cali40this-host"].members.len(), 1000);
    assert!(!b.sets.contains_key("cali4tthis-host"));
}

#[test]
fn a_tampered_member_is_repaired_by_resync() {
    let mut s = IpSets::new(FakeIpset::new());
    s.set_desired(vec![pools(&["10.65.0.0/16"])]).unwrap();
    s.apply();
    s.backend_mut()
        .line("del cali40all-ipam-pools 10.65.0.0/16")
        .unwrap();
    s.backend_mut()
        .line("add cali40all-ipam-pools 10.99.0.0/16")
        .unwrap();
    let report = s.resync();
    assert_eq!(report.updated, 1);
    let members = &s.backend_mut().sets["cali40all-ipam-pools"].members;
    assert_eq!(members.iter().collect::<Vec<_>>(), vec!["10.65.0.0/16"]);
}

#[test]
fn stale_own_sets_go_only_after_in_sync_and_foreign_sets_stay() {
    let mut b = FakeIpset::new();
    b.line("create KUBE-SET hash:ip family inet").unwrap();
    b.line("create cali40old hash:net family inet").unwrap();
    b.line("create cali4tall-ipam-pools hash:net family inet")
        .unwrap(); // leftover temp
    let mut s = IpSets::new(b);
    s.set_desired(vec![pools(&["10.65.0.0/16"])]).unwrap();
    let report = s.apply();
    assert_eq!((report.created, report.deferred_deletes), (1, 2));
    s.set_in_sync(true);
    let report = s.apply();
    assert_eq!(report.deleted, 2, "{report:?}");
    let names: Vec<String> = s.backend_mut().sets.keys().cloned().collect();
    assert_eq!(
        names,
        vec!["KUBE-SET".to_string(), "cali40all-ipam-pools".to_string()]
    );
}

#[test]
fn a_set_in_use_is_not_destroyed_and_the_failure_is_reported() {
    let mut b = FakeIpset::new();
    b.line("create cali40old hash:net family inet").unwrap();
    b.in_use.insert("cali40old".to_string());
    let mut s = IpSets::new(b);
    s.set_in_sync(true);
    let report = s.apply();
    assert_eq!(report.errors.len(), 1);
    assert!(!s.health().is_healthy());
    s.backend_mut().in_use.clear();
    assert_eq!(s.apply().deleted, 1);
    assert!(s.health().is_healthy());
}

#[test]
fn a_failed_restore_is_reported_and_retried() {
    let mut s = IpSets::new(FakeIpset::new());
    s.set_desired(vec![pools(&["10.65.0.0/16"])]).unwrap();
    s.backend_mut()
        .fail_next_restore("Kernel error received: Resource busy");
    let report = s.apply();
    assert_eq!((report.created, report.errors.len()), (0, 1));
    assert!(!s.health().is_healthy());
    let report = s.apply();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.created, 1);
    assert!(s.health().is_healthy());
}

#[test]
fn invalid_sets_are_rejected_and_change_nothing() {
    let mut s = IpSets::new(FakeIpset::new());
    let long = IpSetSpec::new(
        "x".repeat(30).as_str(),
        IpFamily::V4,
        IpSetType::HashNet,
        [],
    );
    let v6_member = IpSetSpec::new("p", IpFamily::V4, IpSetType::HashNet, [net("fd00::/64")]);
    let host_bits = IpSetSpec::new("p", IpFamily::V4, IpSetType::HashNet, [net("10.0.0.1/16")]);
    let not_host = IpSetSpec::new("p", IpFamily::V4, IpSetType::HashIp, [net("10.0.0.0/16")]);
    for (spec, rule) in [
        (long, "25 characters"),
        (v6_member, "must be IPv4"),
        (host_bits, "host bits"),
        (not_host, "host addresses only"),
    ] {
        let err = s.set_desired(vec![spec]).unwrap_err();
        assert!(
            err.to_string().contains(rule),
            "{err} should mention {rule}"
        );
    }
    assert!(s.set_desired(vec![pools(&[]), pools(&[])]).is_err());
    assert_eq!(s.apply().batches, 0);
}

fn port(addr: &str, p: u16) -> IpPort {
    IpPort {
        addr: addr.parse().unwrap(),
        protocol: PortProtocol::Tcp,
        port: p,
    }
}

#[test]
fn a_named_port_set_holds_address_protocol_port_members_and_converges() {
    let mut s = IpSets::new(FakeIpset::new());
    let set = IpSetSpec::ip_port(
        "n:web",
        IpFamily::V4,
        [port("10.65.0.10", 8080), port("10.65.0.11", 80)],
    );
    s.set_desired(vec![set]).unwrap();
    assert!(s.apply().is_ok());
    let fake = &s.backend_mut().sets["cali40n:web"];
    assert_eq!(fake.kind, "hash:ip,port");
    assert!(fake.members.contains("10.65.0.10,tcp:8080"), "{fake:?}");
    assert_eq!(s.resync().batches, 0, "a re-read parses the members back");
    s.update_set(IpSetSpec::ip_port(
        "n:web",
        IpFamily::V4,
        [port("10.65.0.10", 8080)],
    ))
    .unwrap();
    let report = s.apply();
    assert_eq!(report.updated, 1);
    assert!(
        s.backend_mut()
            .restores
            .last()
            .unwrap()
            .contains("del cali40n:web 10.65.0.11,tcp:80")
    );
    let mixed = IpSetSpec {
        members: [net("10.0.0.0/8")].into(),
        ..IpSetSpec::ip_port("n:x", IpFamily::V4, [])
    };
    assert!(s.update_set(mixed).is_err());
    let wrong_family = IpSetSpec::ip_port("n:y", IpFamily::V6, [port("10.0.0.1", 1)]);
    assert!(s.update_set(wrong_family).is_err());
}

#[test]
fn scoped_reconcilers_share_a_namespace_without_touching_each_others_sets() {
    let mut kernel = FakeIpset::new();
    kernel
        .line("create cali40s:policy hash:net family inet")
        .unwrap();
    kernel
        .line("create cali40stale hash:net family inet")
        .unwrap();
    let mut nat = IpSets::with_scope(kernel, IpSetScope::except(&["s:", "n:", "c:"]));
    nat.set_desired(vec![pools(&["10.65.0.0/16"])]).unwrap();
    nat.set_in_sync(true);
    let report = nat.apply();
    assert_eq!(report.deleted, 1, "only cali40stale: {report:?}");
    let sets = &nat.backend_mut().sets;
    assert!(sets.contains_key("cali40s:policy") && !sets.contains_key("cali40stale"));
    let outside = IpSetSpec::new("s:mine", IpFamily::V4, IpSetType::HashNet, []);
    assert!(
        nat.update_set(outside).is_err(),
        "a set outside the scope is refused"
    );

    let mut policy = IpSets::with_scope(FakeIpset::new(), IpSetScope::only(&["s:"]));
    policy
        .backend_mut()
        .line("create cali40all-ipam-pools hash:net family inet")
        .unwrap();
    policy
        .backend_mut()
        .line("create cali40s:old hash:net family inet")
        .unwrap();
    policy.set_in_sync(true);
    let report = policy.apply();
    assert_eq!(report.deleted, 1);
    assert!(
        policy
            .backend_mut()
            .sets
            .contains_key("cali40all-ipam-pools")
    );
    policy
        .update_set(IpSetSpec::new(
            "s:new",
            IpFamily::V4,
            IpSetType::HashNet,
            [],
        ))
        .unwrap();
    policy.apply();
    policy.remove_set("cali40s:new");
    let report = policy.apply();
    assert_eq!(report.deleted, 1);
    assert!(!policy.backend_mut().sets.contains_key("cali40s:new"));
}
