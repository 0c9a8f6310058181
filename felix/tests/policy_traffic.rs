//! Network policy with real traffic between pods on two nodes (VXLAN), each node running the
//! `felix` binary: no policy allows everything, a default deny blocks, allow rules by label,
//! namespace, port and protocol let exactly the intended TCP/UDP/ICMP flows through, egress
//! rules, Pass to the profiles, Log rules count, and order decides (root only).

#![allow(clippy::unwrap_used)]

mod policy_support;
mod support;

use Proto::{Icmp, Tcp, Udp};
use fabric_api::Kind;
use policy_support::{Lab, LabPod, Proto, assert_flows, no, ok, serve};

/// prod (team=a): web and db on node 1, api on node 2; dev (team=b): client on node 1, tool on
/// node 2. db serves TCP 5432 and 6000 and UDP 53; web TCP 80 and 6000; api TCP 80.
struct World {
    lab: Lab,
    web: LabPod,
    db: LabPod,
    api: LabPod,
    client: LabPod,
    tool: LabPod,
}

impl World {
    fn new() -> World {
        let mut lab = Lab::new(None);
        lab.namespace("prod", &[("team", "a")]);
        lab.namespace("dev", &[("team", "b")]);
        let mut web = lab.pod(0, 5, "prod", "web", &[("app", "web")]);
        let mut db = lab.pod(0, 6, "prod", "db", &[("app", "db")]);
        let client = lab.pod(0, 7, "dev", "client", &[("app", "client")]);
        let mut api = lab.pod(1, 5, "prod", "api", &[("app", "api")]);
        let tool = lab.pod(1, 6, "dev", "tool", &[("app", "tool")]);
        serve(&mut web, &[80, 6000], &[]);
        serve(&mut db, &[5432, 6000], &[53]);
        serve(&mut api, &[80], &[]);
        lab.start(&[]);
        World {
            lab,
            web,
            db,
            api,
            client,
            tool,
        }
    }
}

#[test]
fn without_policy_everything_flows_and_a_default_deny_blocks_everything() {
    let w = World::new();
    let all = |allowed: bool| {
        let e = if allowed { ok } else { no };
        vec![
            e(&w.web, &w.db, Tcp(5432)),
            e(&w.client, &w.db, Udp(53)),
            e(&w.api, &w.web, Tcp(80)),
            e(&w.tool, &w.api, Tcp(80)),
            e(&w.db, &w.api, Icmp),
            e(&w.client, &w.web, Icmp),
        ]
    };
    assert_flows(&w.lab, "no policy", 30, &all(true));
    w.lab.apply(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: default-deny}
spec:
  selector: has(app)
  types: [Ingress, Egress]
",
    );
    assert_flows(&w.lab, "default deny", 20, &all(false));
    w.lab
        .delete(Kind::GlobalNetworkPolicy, None, "default-deny");
    assert_flows(&w.lab, "default deny removed", 20, &all(true));
}

#[test]
fn allow_rules_by_label_namespace_port_and_protocol_let_exactly_those_flows_through() {
    let w = World::new();
    w.lab.apply(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: default-deny-ingress}
spec:
  selector: has(app)
  types: [Ingress]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db, namespace: prod}
spec:
  selector: app == 'db'
  ingress:
  - {action: Allow, protocol: TCP, source: {selector: app == 'web'}, destination: {ports: [5432]}}
  - {action: Allow, protocol: UDP, source: {namespaceSelector: team == 'b'}, destination: {ports: [53]}}
  - {action: Allow, protocol: ICMP, source: {selector: app == 'api'}}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web, namespace: prod}
spec:
  selector: app == 'web'
  ingress:
  - {action: Allow, protocol: TCP, source: {namespaceSelector: all()}, destination: {ports: [80]}}
",
    );
    assert_flows(
        &w.lab,
        "allow rules",
        30,
        &[
            // db: TCP 5432 from web only (label, same namespace, same node).
            ok(&w.web, &w.db, Tcp(5432)),
            no(&w.api, &w.db, Tcp(5432)),
            no(&w.client, &w.db, Tcp(5432)),
            no(&w.web, &w.db, Tcp(6000)),
            // db: UDP 53 from namespace dev (team=b), on either node.
            ok(&w.client, &w.db, Udp(53)),
            ok(&w.tool, &w.db, Udp(53)),
            no(&w.web, &w.db, Udp(53)),
            // db: ICMP from api only.
            ok(&w.api, &w.db, Icmp),
            no(&w.web, &w.db, Icmp),
            // web: TCP 80 from pods of any namespace, nothing else.
            ok(&w.client, &w.web, Tcp(80)),
            ok(&w.api, &w.web, Tcp(80)),
            ok(&w.db, &w.web, Tcp(80)),
            no(&w.client, &w.web, Tcp(6000)),
            no(&w.tool, &w.web, Icmp),
            // The other direction: api and the dev pods accept nothing.
            no(&w.web, &w.api, Tcp(80)),
            no(&w.db, &w.client, Icmp),
            no(&w.web, &w.tool, Icmp),
        ],
    );
}

#[test]
fn egress_rules_limit_what_a_pod_may_send() {
    let w = World::new();
    w.lab.apply(&format!(
        "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: client-egress, namespace: dev}}
spec:
  selector: app == 'client'
  types: [Egress]
  egress:
  - {{action: Allow, protocol: TCP, destination: {{selector: app == 'web', namespaceSelector: team == 'a', ports: [80]}}}}
  - {{action: Allow, protocol: UDP, destination: {{nets: [{}/32], ports: [53]}}}}
",
        w.db.ip()
    ));
    assert_flows(
        &w.lab,
        "egress rules",
        30,
        &[
            ok(&w.client, &w.web, Tcp(80)),
            no(&w.client, &w.api, Tcp(80)),
            no(&w.client, &w.web, Tcp(6000)),
            ok(&w.client, &w.db, Udp(53)),
            no(&w.client, &w.db, Tcp(5432)),
            no(&w.client, &w.web, Icmp),
            // Only the client is limited.
            ok(&w.tool, &w.api, Tcp(80)),
            ok(&w.web, &w.db, Tcp(5432)),
            ok(&w.tool, &w.web, Icmp),
        ],
    );
}

#[test]
fn pass_hands_over_to_the_profiles_and_log_rules_count_packets() {
    let w = World::new();
    w.lab.apply(
        "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.gate}
spec:
  tier: security
  selector: app in {'web', 'db'}
  ingress:
  - {action: Log, source: {selector: app == 'client'}}
  - {action: Deny, protocol: TCP, destination: {ports: [6000]}}
  - {action: Pass}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db-strict, namespace: prod}
spec:
  selector: app == 'db'
  ingress: [{action: Deny}]
",
    );
    assert_flows(
        &w.lab,
        "pass and deny",
        30,
        &[
            // web: passed on, no later policy: its namespace profile allows.
            ok(&w.client, &w.web, Tcp(80)),
            ok(&w.api, &w.web, Icmp),
            // 6000 is denied in the security tier before the pass.
            no(&w.client, &w.web, Tcp(6000)),
            no(&w.api, &w.db, Tcp(6000)),
            // db: passed on to the default tier, where db-strict denies.
            no(&w.web, &w.db, Tcp(5432)),
            no(&w.client, &w.db, Udp(53)),
        ],
    );
    // The Log rule has seen the client's packets.
    let table = w.lab.filter(0, "nft");
    let log = table
        .lines()
        .find(|l| l.contains("-j LOG") && l.contains("calico-packet: "))
        .unwrap_or_else(|| panic!("no LOG rule:\n{table}"));
    let packets: u64 = log
        .trim_start_matches('[')
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(packets > 0, "the LOG rule counted nothing: {log}");
}

#[test]
fn order_within_a_tier_and_between_tiers_decides() {
    let w = World::new();
    w.lab.apply(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-client}
spec:
  order: 10
  selector: app == 'web'
  ingress: [{action: Deny, source: {selector: app == 'client'}}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: allow-all}
spec:
  order: 20
  selector: app == 'web'
  ingress: [{action: Allow}]
",
    );
    assert_flows(
        &w.lab,
        "deny first",
        30,
        &[no(&w.client, &w.web, Tcp(80)), ok(&w.api, &w.web, Tcp(80))],
    );
    // The allow moves before the deny.
    w.lab.apply(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: allow-all}
spec:
  order: 5
  selector: app == 'web'
  ingress: [{action: Allow}]
",
    );
    assert_flows(
        &w.lab,
        "allow first",
        20,
        &[ok(&w.client, &w.web, Tcp(80)), ok(&w.api, &w.web, Tcp(80))],
    );
    // An earlier tier denies api whatever the default tier allows; moved after it, it no
    // longer decides.
    w.lab.apply(
        "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: early}
spec: {order: 10}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: early.no-api}
spec:
  tier: early
  selector: app == 'web'
  ingress: [{action: Deny, source: {selector: app == 'api'}}, {action: Pass}]
",
    );
    assert_flows(
        &w.lab,
        "early tier",
        20,
        &[no(&w.api, &w.web, Tcp(80)), ok(&w.client, &w.web, Tcp(80))],
    );
    w.lab.apply(
        "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: early}
spec: {order: 2000000}
",
    );
    assert_flows(
        &w.lab,
        "early tier moved last",
        20,
        &[ok(&w.api, &w.web, Tcp(80)), ok(&w.client, &w.web, Tcp(80))],
    );
}
