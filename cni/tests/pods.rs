//! The `calico` and `calico-ipam` binaries in real network namespaces (root): pods wired and
//! reachable through the host, DEL, rollback, version negotiation, CHECK, Debian's bridge
//! plugin over calico-ipam, the etcd datastore, and the host-wide IPAM lock.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Harness, Pod};
use fabric_api::WorkloadEndpoint;
use fabric_testkit::{Netns, wait_until};
use serde_json::json;

fn pings(from: &Pod, to: &Pod) -> bool {
    let cmd = format!("ping -c1 -W1 {}", to.ip());
    wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        from.netns.try_sh(&cmd).is_ok()
    })
}

fn wep_name(h: &Harness, pod: &str) -> String {
    format!(
        "{}-k8s-{}-eth0",
        h.node.replace('-', "--"),
        pod.replace('-', "--")
    )
}

fn wep(h: &Harness, pod: &str) -> Option<WorkloadEndpoint> {
    h.rt.block_on(
        h.client()
            .try_get::<WorkloadEndpoint>(Some("test-ns"), &wep_name(h, pod)),
    )
    .unwrap()
}

#[test]
fn twenty_pods_on_one_host_get_a_working_eth0_and_reach_each_other_through_the_host() {
    let h = Harness::sqlite("cni20", "10.71.0.0/16");
    let mut conf = h.conf("1.0.0", "calico-ipam");
    conf["args"] = json!({"cni": {"labels": [{"key": "app", "value": "web"}]}});
    let pods: Vec<Pod> = (0..20)
        .map(|i| h.add_pod(&format!("web-{i}"), &conf))
        .collect();

    // Each pod: eth0 with its /32, the link route to 169.254.1.1 and the default route via it.
    for p in &pods {
        let ip = p.ip();
        let addr = p.netns.ip("-4 -o addr show dev eth0");
        assert!(addr.contains(&format!("{ip}/32")), "{addr}");
        let routes = p.netns.ip("-4 route show");
        assert!(
            routes.contains("default via 169.254.1.1 dev eth0"),
            "{routes}"
        );
        assert!(routes.contains("169.254.1.1 dev eth0"), "{routes}");
        let mtu = p.netns.ip("-o link show dev eth0");
        assert!(mtu.contains("mtu 1450"), "{mtu}");
        // The host: the veth with Calico's MAC and sysctls, and the /32 route.
        let veth = p.result["interfaces"][0]["name"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(veth.starts_with("cali") && veth.len() == 15, "{veth}");
        let host_route = h.host.ip(&format!("-4 route show {ip}"));
        assert!(
            host_route.contains(&format!("dev {veth} scope link")),
            "{host_route}"
        );
        let link = h.host.ip(&format!("-o link show dev {veth}"));
        assert!(link.contains("ee:ee:ee:ee:ee:ee"), "{link}");
        for (key, want) in [("proxy_arp", "1"), ("forwarding", "1")] {
            let v = h
                .host
                .sh(&format!("cat /proc/sys/net/ipv4/conf/{veth}/{key}"));
            assert_eq!(v.trim(), want, "{veth} {key}");
        }
        // The address is held by the pod's handle.
        assert_eq!(h.held_by(&p.container_id), vec![ip]);
    }
    assert_eq!(h.allocated(), 20);

    // The endpoint as Calico names and labels it.
    let w = wep(&h, "web-0").expect("endpoint of web-0");
    assert_eq!(w.metadata.labels["app"], "web");
    assert_eq!(w.metadata.labels["projectcalico.org/namespace"], "test-ns");
    assert_eq!(w.metadata.labels["projectcalico.org/orchestrator"], "k8s");
    assert_eq!(w.spec.profiles, vec!["kns.test-ns".to_string()]);
    assert_eq!(w.spec.node, h.node);
    assert_eq!(w.spec.container_id, pods[0].container_id);
    assert_eq!(w.spec.ip_networks, vec![format!("{}/32", pods[0].ip())]);
    assert_eq!(
        w.spec.interface_name,
        pods[0].result["interfaces"][0]["name"].as_str().unwrap()
    );

    // Every pod reaches the next one (a ring covers every veth in both directions).
    for i in 0..pods.len() {
        let next = &pods[(i + 1) % pods.len()];
        assert!(
            pings(&pods[i], next),
            "{} cannot reach {}",
            pods[i].name,
            next.name
        );
    }

    // DEL removes veth, route, address and endpoint; a second DEL succeeds.
    for p in &pods {
        let r = h.del_pod(p, &conf);
        assert!(r.ok, "DEL {}: {} {}", p.name, r.stdout, r.stderr);
        assert!(h.held_by(&p.container_id).is_empty());
        assert!(wep(&h, &p.name).is_none());
        let again = h.del_pod(p, &conf);
        assert!(
            again.ok,
            "second DEL {}: {} {}",
            p.name, again.stdout, again.stderr
        );
        let eth0 = p.netns.try_ip("link show dev eth0");
        assert!(eth0.is_err(), "eth0 still in {}", p.name);
    }
    assert!(h.cali_links().is_empty(), "{:?}", h.cali_links());
    assert_eq!(h.allocated(), 0);
    let leftover = h.host.ip("-4 route show");
    assert!(!leftover.contains("10.71."), "{leftover}");
}

#[test]
fn del_succeeds_when_the_pod_namespace_is_already_gone() {
    let h = Harness::sqlite("cnigone", "10.72.0.0/16");
    let conf = h.conf("1.0.0", "calico-ipam");
    let pod = h.add_pod("gone-1", &conf);
    let path = pod.netns_path();
    let container_id = pod.container_id.clone();
    let result = pod.result.clone();
    drop(pod.netns); // deletes the namespace and with it the veth pair
    let mut c = conf.clone();
    c["prevResult"] = result;
    let r = h.run("calico", "DEL", &c, &container_id, &path, "gone-1");
    assert!(r.ok, "{} {}", r.stdout, r.stderr);
    assert!(h.held_by(&container_id).is_empty());
    assert!(wep(&h, "gone-1").is_none());
    assert!(h.cali_links().is_empty());
    let r = h.run("calico", "DEL", &c, &container_id, "", "gone-1");
    assert!(r.ok, "DEL without CNI_NETNS: {} {}", r.stdout, r.stderr);
}

#[test]
fn a_bad_config_returns_a_cni_error_and_leaves_no_veth_and_no_allocation() {
    let h = Harness::sqlite("cnibad", "10.73.0.0/16");
    let netns = Netns::new("pod");
    let path = format!("/run/netns/{}", netns.name());
    let cases = [
        ("mtu", json!("big"), 7, "mtu"),
        ("mtu", json!(20), 7, "mtu = 20"),
        ("datastore_type", json!("kubernetes"), 7, "datastore_type"),
        ("cniVersion", json!("0.2.0"), 1, "0.2.0"),
    ];
    for (field, value, code, needle) in cases {
        let mut conf = h.conf("1.0.0", "calico-ipam");
        conf[field] = value.clone();
        let r = h.run("calico", "ADD", &conf, "ctr-bad", &path, "bad-1");
        assert!(!r.ok, "{field}={value} was accepted");
        assert_eq!(r.stdout["code"], code, "{field}: {}", r.stdout);
        let msg = r.stdout["msg"].as_str().unwrap();
        assert!(msg.contains(needle), "{field}: {msg}");
    }
    let mut conf = h.conf("1.0.0", "calico-ipam");
    conf["ipam"]["ipv4_pools"] = json!(["fd00::/64"]);
    let r = h.run("calico", "ADD", &conf, "ctr-bad", &path, "bad-1");
    assert_eq!(r.stdout["code"], 7, "{}", r.stdout);
    assert!(
        r.stdout["msg"]
            .as_str()
            .unwrap()
            .contains("ipam.ipv4_pools[0]")
    );
    let mut conf = h.conf("1.0.0", "no-such-ipam");
    conf["ipam"]["type"] = json!("no-such-ipam");
    let r = h.run("calico", "ADD", &conf, "ctr-bad", &path, "bad-1");
    assert_eq!(r.stdout["code"], 7, "{}", r.stdout);
    assert!(h.cali_links().is_empty());
    assert_eq!(h.allocated(), 0);
    assert!(netns.try_ip("link show dev eth0").is_err());
}

#[test]
fn a_failure_in_the_middle_of_add_rolls_back_veth_allocation_and_endpoint() {
    let h = Harness::sqlite("cniroll", "10.74.0.0/16");
    // 1. A label the API rejects is caught before anything is created.
    let netns = Netns::new("pod");
    let path = format!("/run/netns/{}", netns.name());
    let mut conf = h.conf("1.0.0", "calico-ipam");
    conf["args"] = json!({"cni": {"labels": [{"key": "bad key!", "value": "x"}]}});
    let r = h.run("calico", "ADD", &conf, "ctr-roll1", &path, "roll-1");
    assert!(!r.ok);
    assert_eq!(r.stdout["code"], 7, "{}", r.stdout);
    let msg = r.stdout["msg"].as_str().unwrap();
    assert!(
        msg.contains("metadata.labels") && msg.contains("bad key!"),
        "{msg}"
    );
    assert!(h.cali_links().is_empty(), "{:?}", h.cali_links());
    assert!(netns.try_ip("link show dev eth0").is_err());
    assert_eq!(h.allocated(), 0);
    assert!(h.held_by("ctr-roll1").is_empty());
    assert!(wep(&h, "roll-1").is_none());

    // 2. The veth cannot be created (CNI_IFNAME exists in the pod) after IPAM assigned.
    let netns2 = Netns::new("pod");
    netns2.ip("link add eth0 type veth peer name other0");
    let path2 = format!("/run/netns/{}", netns2.name());
    let conf = h.conf("1.0.0", "calico-ipam");
    let r = h.run("calico", "ADD", &conf, "ctr-roll2", &path2, "roll-2");
    assert!(!r.ok);
    assert_eq!(r.stdout["code"], 100, "{}", r.stdout);
    assert!(h.cali_links().is_empty(), "{:?}", h.cali_links());
    assert_eq!(h.allocated(), 0);
    assert!(wep(&h, "roll-2").is_none());

    // 3. The pod's routes cannot be added (169.254.1.1 is taken in the pod) after the veth
    //    exists and the address is assigned: the veth goes and the address is released.
    let netns3 = Netns::new("pod");
    netns3.ip("link add x0 type veth peer name x1");
    netns3.ip("link set x0 up");
    netns3.ip("route add 169.254.1.1/32 dev x0");
    let path3 = format!("/run/netns/{}", netns3.name());
    let r = h.run("calico", "ADD", &conf, "ctr-roll3", &path3, "roll-3");
    assert!(!r.ok);
    assert!(
        r.stdout["details"]
            .as_str()
            .unwrap()
            .contains("169.254.1.1"),
        "{}",
        r.stdout
    );
    assert!(h.cali_links().is_empty(), "{:?}", h.cali_links());
    assert!(netns3.try_ip("link show dev eth0").is_err());
    assert_eq!(h.allocated(), 0);
    assert!(h.held_by("ctr-roll3").is_empty());
    assert!(wep(&h, "roll-3").is_none());
}

#[test]
fn results_follow_the_configs_version_and_version_lists_what_is_supported() {
    let h = Harness::sqlite("cnivers", "10.75.0.0/16");
    for (i, version) in ["0.3.1", "0.4.0", "1.0.0"].into_iter().enumerate() {
        let conf = h.conf(version, "calico-ipam");
        let pod = h.add_pod(&format!("v-{i}"), &conf);
        assert_eq!(pod.result["cniVersion"], version);
        let ip = &pod.result["ips"][0];
        if version == "1.0.0" {
            assert!(ip.get("version").is_none(), "{}", pod.result);
        } else {
            assert_eq!(ip["version"], "4", "{}", pod.result);
        }
        assert_eq!(ip["interface"], 1);
        assert_eq!(pod.result["interfaces"][1]["name"], "eth0");
        assert!(pings_host_route(&h, &pod));
        let r = h.del_pod(&pod, &conf);
        assert!(r.ok, "{version}: {}", r.stderr);
        // calico-ipam on its own answers in the same version.
        let r = h.run("calico-ipam", "ADD", &conf, "ctr-ipam", "/nonexistent", "x");
        assert!(r.ok, "{}", r.stderr);
        assert_eq!(r.stdout["cniVersion"], version);
        assert!(
            r.stdout["ips"][0]["address"]
                .as_str()
                .unwrap()
                .ends_with("/32")
        );
        let r = h.run("calico-ipam", "DEL", &conf, "ctr-ipam", "", "x");
        assert!(r.ok, "{}", r.stderr);
    }
    for plugin in ["calico", "calico-ipam"] {
        let r = h.run(
            plugin,
            "VERSION",
            &json!({"cniVersion": "1.0.0"}),
            "",
            "",
            "",
        );
        assert!(r.ok);
        assert_eq!(r.stdout["cniVersion"], "1.0.0");
        assert_eq!(
            r.stdout["supportedVersions"],
            json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0"])
        );
    }
    assert_eq!(h.allocated(), 0);
}

fn pings_host_route(h: &Harness, pod: &Pod) -> bool {
    h.host
        .ip(&format!("-4 route show {}", pod.ip()))
        .contains("scope link")
}

#[test]
fn check_passes_after_add_and_reports_a_missing_route_or_endpoint() {
    let h = Harness::sqlite("cnichk", "10.76.0.0/16");
    let conf = h.conf("1.0.0", "calico-ipam");
    let pod = h.add_pod("chk-1", &conf);
    let mut c = conf.clone();
    c["prevResult"] = pod.result.clone();
    let path = pod.netns_path();
    let r = h.run("calico", "CHECK", &c, &pod.container_id, &path, "chk-1");
    assert!(r.ok, "{} {}", r.stdout, r.stderr);

    // CHECK is not defined before 0.4.0.
    let mut old = c.clone();
    old["cniVersion"] = json!("0.3.1");
    let r = h.run("calico", "CHECK", &old, &pod.container_id, &path, "chk-1");
    assert_eq!(r.stdout["code"], 1, "{}", r.stdout);

    // A missing default route in the pod.
    pod.netns.ip("route del default");
    let r = h.run("calico", "CHECK", &c, &pod.container_id, &path, "chk-1");
    assert!(!r.ok);
    assert!(
        r.stdout["details"]
            .as_str()
            .unwrap()
            .contains("default route"),
        "{}",
        r.stdout
    );
    pod.netns.ip("route add default via 169.254.1.1 dev eth0");
    let r = h.run("calico", "CHECK", &c, &pod.container_id, &path, "chk-1");
    assert!(r.ok, "{} {}", r.stdout, r.stderr);

    // A missing host route.
    h.host.ip(&format!("route del {}/32", pod.ip()));
    let r = h.run("calico", "CHECK", &c, &pod.container_id, &path, "chk-1");
    assert!(!r.ok);
    assert!(
        r.stdout["details"].as_str().unwrap().contains("host route"),
        "{}",
        r.stdout
    );

    let r = h.del_pod(&pod, &conf);
    assert!(r.ok, "{}", r.stderr);
    let r = h.run("calico", "CHECK", &c, &pod.container_id, &path, "chk-1");
    assert!(!r.ok, "CHECK after DEL passed");
}

#[test]
fn debians_bridge_plugin_gets_its_address_from_calico_ipam() {
    let h = Harness::sqlite("cnibr", "10.77.0.0/16");
    let mut conf = json!({
        "cniVersion": "1.0.0",
        "name": "bridge-net",
        "type": "bridge",
        "bridge": "cnibr0",
        "nodename": h.node,
        "ipam": {"type": "calico-ipam", "ipv4_pools": [h.pool]},
    });
    h.add_datastore(&mut conf);
    let netns = Netns::new("pod");
    let path = format!("/run/netns/{}", netns.name());
    let r = h.run("/usr/lib/cni/bridge", "ADD", &conf, "ctr-br", &path, "br-1");
    assert!(r.ok, "{} {}", r.stdout, r.stderr);
    let addr = r.stdout["ips"][0]["address"].as_str().unwrap().to_string();
    assert!(addr.starts_with("10.77."), "{addr}");
    let ip: std::net::IpAddr = addr.split('/').next().unwrap().parse().unwrap();
    assert_eq!(h.held_by("ctr-br"), vec![ip]);
    let shown = netns.ip("-4 -o addr show dev eth0");
    assert!(shown.contains(&addr), "{shown}");
    let mut c = conf.clone();
    c["prevResult"] = r.stdout.clone();
    let r = h.run("/usr/lib/cni/bridge", "DEL", &c, "ctr-br", &path, "br-1");
    assert!(r.ok, "{} {}", r.stdout, r.stderr);
    assert!(h.held_by("ctr-br").is_empty());
    assert_eq!(h.allocated(), 0);
}

#[test]
fn debians_host_local_works_as_the_calico_plugins_ipam() {
    let h = Harness::sqlite("cnihl", "10.78.0.0/16");
    let mut conf = h.conf("1.0.0", "host-local");
    conf["ipam"] = json!({
        "type": "host-local",
        "ranges": [[{"subnet": "10.78.9.0/24"}]],
        "dataDir": h.dir.path().join("host-local").display().to_string(),
    });
    let a = h.add_pod("hl-1", &conf);
    let b = h.add_pod("hl-2", &conf);
    assert!(a.ip().to_string().starts_with("10.78.9."));
    assert!(pings(&a, &b), "host-local pods cannot reach each other");
    for p in [&a, &b] {
        let r = h.del_pod(p, &conf);
        assert!(r.ok, "{}", r.stderr);
    }
    assert!(h.cali_links().is_empty());
}

#[test]
fn the_etcd_datastore_serves_the_plugins_too() {
    let h = Harness::etcd("cnietcd", "10.79.0.0/16");
    let conf = h.conf("1.0.0", "calico-ipam");
    let a = h.add_pod("etcd-1", &conf);
    let b = h.add_pod("etcd-2", &conf);
    assert!(pings(&a, &b));
    assert_eq!(h.allocated(), 2);
    assert!(wep(&h, "etcd-1").is_some());
    for p in [&a, &b] {
        let r = h.del_pod(p, &conf);
        assert!(r.ok, "{}", r.stderr);
        let r = h.del_pod(p, &conf);
        assert!(r.ok, "second DEL: {}", r.stderr);
    }
    assert_eq!(h.allocated(), 0);
    assert!(wep(&h, "etcd-1").is_none());
    assert!(h.cali_links().is_empty());
}

#[test]
fn a_dual_stack_pod_gets_a_128_and_reaches_another_over_ipv6() {
    let h = Harness::sqlite("cniv6", "10.80.0.0/16");
    let client = h.client();
    let v6_pool = fabric_testkit::unique_name("pool6-");
    h.rt.block_on(client.create(fabric_api::IPPool {
        metadata: fabric_api::ObjectMeta::named(v6_pool.clone()),
        spec: fabric_api::ippool::IPPoolSpec {
            cidr: "fd00:80::/64".into(),
            block_size: Some(122),
            ..Default::default()
        },
        status: None,
    }))
    .unwrap();
    // What calico-node does on a node: IPv6 forwarding on.
    h.host.sh("sysctl -qw net.ipv6.conf.all.forwarding=1");
    let mut conf = h.conf("1.0.0", "calico-ipam");
    conf["ipam"]["assign_ipv6"] = json!("true");
    conf["ipam"]["ipv6_pools"] = json!([v6_pool]);
    let a = h.add_pod("v6-1", &conf);
    let b = h.add_pod("v6-2", &conf);
    let v6 = |p: &Pod| -> String {
        p.result["ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["address"].as_str().unwrap().to_string())
            .find(|a| a.contains(':'))
            .unwrap()
    };
    let (a6, b6) = (v6(&a), v6(&b));
    assert!(a6.starts_with("fd00:80::") && a6.ends_with("/128"), "{a6}");
    let shown = a.netns.ip("-6 -o addr show dev eth0");
    assert!(shown.contains(&a6), "{shown}");
    let routes = a.netns.ip("-6 route show default");
    assert!(
        routes.contains("via fe80::ecee:eeff:feee:eeee dev eth0"),
        "{routes}"
    );
    let b_addr = b6.split('/').next().unwrap().to_string();
    let reached = wait_until(Duration::from_secs(15), Duration::from_millis(200), || {
        a.netns.try_sh(&format!("ping -6 -c1 -W1 {b_addr}")).is_ok()
    });
    assert!(reached, "{a6} cannot reach {b6}");
    assert!(pings(&a, &b), "IPv4 between dual-stack pods");
    let mut c = conf.clone();
    c["prevResult"] = a.result.clone();
    let r = h.run(
        "calico",
        "CHECK",
        &c,
        &a.container_id,
        &a.netns_path(),
        "v6-1",
    );
    assert!(r.ok, "{} {}", r.stdout, r.stderr);
    for p in [&a, &b] {
        let r = h.del_pod(p, &conf);
        assert!(r.ok, "{}", r.stderr);
    }
    assert!(h.cali_links().is_empty());
    let usage = h.rt.block_on(h.ipam().usage()).unwrap();
    assert_eq!(usage.iter().map(|p| p.in_use).sum::<u128>(), 0);
}

#[test]
fn calico_ipam_waits_for_the_host_wide_ipam_lock_before_it_writes() {
    let h = Harness::sqlite("cnilock", "10.76.0.0/16");
    let dir = tempfile::tempdir().unwrap();
    let lock_file = dir.path().join("ipam.lock");
    let held = std::fs::File::create(&lock_file).unwrap();
    held.lock().unwrap();
    let mut conf = h.conf("1.0.0", "calico-ipam");
    conf["ipam_lock_file"] = json!(lock_file.display().to_string());
    let netns = Netns::new("pod");
    let path = format!("/run/netns/{}", netns.name());
    std::thread::scope(|s| {
        let add = s.spawn(|| h.run("calico-ipam", "ADD", &conf, "ctr-lock", &path, "lock-1"));
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !add.is_finished(),
            "the ADD went ahead while another process held the lock"
        );
        drop(held);
        let r = add.join().unwrap();
        assert!(r.ok, "{}", r.stderr);
    });
    assert_eq!(h.held_by("ctr-lock").len(), 1);
    // DEL takes the lock too, and the lock file is reused.
    let r = h.run("calico-ipam", "DEL", &conf, "ctr-lock", &path, "lock-1");
    assert!(r.ok, "{}", r.stderr);
    assert!(h.held_by("ctr-lock").is_empty());
}
