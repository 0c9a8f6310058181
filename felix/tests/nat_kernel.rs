//! natOutgoing against real iptables and ipset in namespaces: chains, sets, repair, foreign
//! rules, and an actual MASQUERADE of pod traffic (root only).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fabric_testkit::{Netns, veth, wait_until};
use felix::dataplane::{
    IpFamily, IpsetCommand, IptablesCommands, NatConfig, NatPool, NatReconciler,
    NetlinkRouteKernel, ProcSys, Reconciler, Route, RouteConfig, RouteReconciler, SysctlReconciler,
    SysctlSet,
};

fn pools(nat: bool) -> Vec<NatPool> {
    vec![
        NatPool {
            cidr: "10.65.0.0/16".parse().unwrap(),
            nat_outgoing: nat,
        },
        NatPool {
            cidr: "10.66.0.0/16".parse().unwrap(),
            nat_outgoing: false,
        },
    ]
}

fn nat(commands: IptablesCommands) -> NatReconciler<IptablesCommands, IpsetCommand> {
    NatReconciler::new(
        commands,
        IpsetCommand::default(),
        NatConfig::masquerade(IpFamily::V4),
    )
    .unwrap()
}

/// Chains, sets, repair of a flushed chain and a removed hook; foreign chain and rule survive.
fn chains_sets_and_repair(backend: &str, commands: IptablesCommands) {
    let ns = Netns::new("nat");
    let ipt = format!("iptables-{backend}");
    ns.sh(&format!(
        "{ipt} -t nat -N FOREIGN && {ipt} -t nat -A POSTROUTING -s 1.2.3.4/32 -j FOREIGN"
    ));
    ns.sh("ipset create KUBE-FOREIGN hash:ip");
    ns.sh("ipset create cali40stale hash:net");
    let save = || ns.sh(&format!("{ipt}-save -t nat"));
    ns.run_in(|| {
        let mut r = nat(commands.clone());
        r.set_desired(&pools(true)).unwrap();
        let report = r.apply();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert_eq!(report.deferred_deletes, 1, "the stale set waits for in-sync");

        let text = save();
        assert!(text.contains(":cali-POSTROUTING - [0:0]") && text.contains(":cali-nat-outgoing - [0:0]"), "{text}");
        let hook = text
            .lines()
            .find(|l| l.ends_with("-j cali-POSTROUTING"))
            .unwrap()
            .to_string();
        assert!(hook.starts_with("-A POSTROUTING -m comment --comment \"cali:"), "{hook}");
        assert!(text.contains("--match-set cali40masq-ipam-pools src -m set ! --match-set cali40all-ipam-pools dst"), "{text}");
        let masq = ns.sh("ipset list cali40masq-ipam-pools");
        assert!(masq.contains("10.65.0.0/16") && !masq.contains("10.66.0.0/16"), "{masq}");
        assert!(ns.sh("ipset list cali40all-ipam-pools").contains("10.66.0.0/16"));

        // Tampering: flush our chain, remove our hook.
        ns.sh(&format!("{ipt} -t nat -F cali-nat-outgoing"));
        ns.sh(&format!("{ipt} -t nat -D POSTROUTING 1"));
        assert!(!save().contains("-j cali-POSTROUTING"));
        let report = r.resync();
        assert!(report.is_ok(), "{:?}", report.errors);
        let text = save();
        assert_eq!(text.matches("-j cali-POSTROUTING").count(), 1, "one hook: {text}");
        assert!(text.contains("-A cali-nat-outgoing -m comment"), "{text}");
        assert!(r.resync().is_noop(), "converged");

        r.set_in_sync(true);
        let report = r.apply();
        assert_eq!(report.deleted, 1, "{report:?}");
    });
    let text = save();
    assert!(text.contains(":FOREIGN - [0:0]"), "{text}");
    assert!(
        text.contains("-A POSTROUTING -s 1.2.3.4/32 -j FOREIGN"),
        "{text}"
    );
    let first_rule = text
        .lines()
        .find(|l| l.starts_with("-A POSTROUTING"))
        .unwrap();
    assert!(
        first_rule.ends_with("-j cali-POSTROUTING"),
        "our hook is on top: {text}"
    );
    let sets = ns.sh("ipset list -n");
    assert!(
        sets.contains("KUBE-FOREIGN") && !sets.contains("cali40stale"),
        "{sets}"
    );
}

#[test]
fn nat_chains_and_ipsets_are_created_repaired_and_foreign_rules_survive_with_iptables_nft() {
    chains_sets_and_repair("nft", IptablesCommands::nft(IpFamily::V4));
}

#[test]
fn nat_chains_and_ipsets_are_created_repaired_and_foreign_rules_survive_with_iptables_legacy() {
    chains_sets_and_repair("legacy", IptablesCommands::legacy(IpFamily::V4));
}

/// pod (10.65.0.2) --cali1/eth0-- node (felix) --ethn/ethf-- far (192.168.50.2, no route back).
#[test]
fn pod_traffic_to_outside_the_pools_is_masqueraded() {
    let node = Netns::new("node");
    let pod = Netns::new("pod");
    let far = Netns::new("far");
    veth(&node, "cali1", &pod, "eth0");
    veth(&node, "ethn", &far, "ethf");
    pod.ip("addr add 10.65.0.2/32 dev eth0");
    pod.ip("route add 169.254.1.1 dev eth0 scope link");
    pod.ip("route add default via 169.254.1.1 dev eth0");
    node.ip("addr add 192.168.50.1/24 dev ethn");
    node.ip("route add default via 192.168.50.2 dev ethn");
    far.ip("addr add 192.168.50.2/24 dev ethf");
    node.sh("echo 0 > /proc/sys/net/ipv4/ip_forward");

    let ping = || pod.try_sh("ping -c 1 -W 1 192.168.50.2").is_ok();
    node.run_in(|| {
        let mut sysctls = SysctlReconciler::new(ProcSys::default());
        let mut set = SysctlSet::node(true, false);
        set.add_workload_interface("cali1", true, false).unwrap();
        sysctls.set_desired(set);
        let report = sysctls.apply();
        assert!(report.is_ok(), "{:?}", report.errors);

        let mut routes =
            RouteReconciler::new(NetlinkRouteKernel::open().unwrap(), RouteConfig::default())
                .unwrap();
        routes
            .set_desired([Route::workload("10.65.0.2/32".parse().unwrap(), "cali1")])
            .unwrap();
        assert!(routes.apply().is_ok());

        // A pool without natOutgoing: the far side cannot answer the pod.
        let mut r = nat(IptablesCommands::detect(IpFamily::V4));
        r.set_desired(&pools(false)).unwrap();
        assert!(r.apply().is_ok());
        assert!(!ping(), "without NAT the reply has no route back");

        r.set_desired(&pools(true)).unwrap();
        let report = r.apply();
        assert!(report.is_ok(), "{:?}", report.errors);
    });
    assert_eq!(node.sh("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    assert_eq!(
        node.sh("cat /proc/sys/net/ipv4/conf/cali1/proxy_arp")
            .trim(),
        "1"
    );
    assert_eq!(
        node.sh("cat /proc/sys/net/ipv4/neigh/cali1/proxy_delay")
            .trim(),
        "0"
    );

    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(200), ping),
        "the pod's ping is masqueraded and answered"
    );
    // The node's conntrack shows the reply tuple addressed to the node, not the pod.
    let conntrack = node.sh("cat /proc/net/nf_conntrack");
    let flow = conntrack
        .lines()
        .find(|l| l.contains("icmp") && l.contains("src=10.65.0.2 dst=192.168.50.2"))
        .unwrap_or_else(|| panic!("no conntrack entry: {conntrack}"));
    assert!(flow.contains("src=192.168.50.2 dst=192.168.50.1"), "{flow}");
    let counters = node.sh("iptables -t nat -L cali-nat-outgoing -n -v -x");
    let packets: u64 = counters
        .lines()
        .find(|l| l.contains("MASQUERADE"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(packets >= 1, "{counters}");
}
