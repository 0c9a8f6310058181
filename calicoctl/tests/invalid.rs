//! Bad input changes nothing: invalid documents, as a new user writes them, go through
//! `calicoctl apply` (and `create`/`replace` where that is the mistake); each is refused with
//! an error naming the file, the document, the resource and the field, and the whole store
//! (every key, value and revision, and the store revision) is unchanged afterwards.
#![allow(clippy::unwrap_used)]

mod common;

use common::Ctl;

const H: &str = "apiVersion: projectcalico.org/v3\n";

/// A store with a pool, a tier, a policy in it and a node, so that conflicts have something
/// to conflict with.
fn seeded() -> Ctl {
    let ctl = Ctl::sqlite();
    let seed = format!(
        "{H}kind: IPPool\nmetadata: {{name: pool-a}}\nspec: {{cidr: 10.20.0.0/16, blockSize: 26}}\n---\n\
         {H}kind: Tier\nmetadata: {{name: security}}\nspec: {{order: 100}}\n---\n\
         {H}kind: GlobalNetworkPolicy\nmetadata: {{name: security.base}}\nspec: {{tier: security, selector: all()}}\n---\n\
         {H}kind: Node\nmetadata: {{name: node-1}}\nspec: {{bgp: {{ipv4Address: 10.0.0.1/24}}}}\n"
    );
    let path = ctl.file("seed.yaml", &seed);
    ctl.run(&["apply", "-f", &path]).ok();
    ctl
}

/// One invalid input: what it is, the command, the text, and what the error must contain
/// (the document location and the field).
struct Case {
    what: &'static str,
    command: &'static str,
    text: String,
    /// e.g. `document 1 (IPPool/p): spec.cidr: `
    expect: &'static str,
}

fn case(what: &'static str, text: String, expect: &'static str) -> Case {
    Case {
        what,
        command: "apply",
        text,
        expect,
    }
}

fn doc(kind: &str, meta: &str, spec: &str) -> String {
    format!("{H}kind: {kind}\nmetadata: {meta}\nspec: {spec}\n")
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    let pool = |name: &str, spec: &str| doc("IPPool", &format!("{{name: {name}}}"), spec);
    let gnp = |spec: &str| doc("GlobalNetworkPolicy", "{name: g1}", spec);
    let np = |spec: &str| doc("NetworkPolicy", "{name: n1, namespace: prod}", spec);
    let peer = |spec: &str| doc("BGPPeer", "{name: peer-1}", spec);
    let node = |spec: &str| doc("Node", "{name: node-2}", spec);
    let felix = |spec: &str| doc("FelixConfiguration", "{name: default}", spec);
    let hep = |spec: &str| doc("HostEndpoint", "{name: hep-1}", spec);
    let wep = |spec: &str| {
        doc(
            "WorkloadEndpoint",
            "{name: node1-k8s-web-eth0, namespace: prod}",
            spec,
        )
    };
    let mut c = vec![
        case(
            "a typo in a spec field name",
            pool("p", "{cidr: 10.30.0.0/16, ipipMod: Always}"),
            "document 1 (IPPool/p): spec.ipipMod: unknown field",
        ),
        case(
            "a typo in a top-level field name",
            format!("{H}kind: IPPool\nmetdata: {{name: p}}\nspec: {{cidr: 10.30.0.0/16}}\n"),
            "document 1 (IPPool/?): metdata: unknown field",
        ),
        case(
            "a typo in a metadata field name",
            doc("IPPool", "{name: p, lables: {a: b}}", "{cidr: 10.30.0.0/16}"),
            "document 1 (IPPool/p): metadata.lables: unknown field",
        ),
        case(
            "a CIDR with host bits set",
            pool("p", "{cidr: 10.30.0.1/16}"),
            "document 1 (IPPool/p): spec.cidr: \"10.30.0.1/16\" has host bits set",
        ),
        case(
            "a prefix length out of range",
            pool("p", "{cidr: 10.30.0.0/33}"),
            "document 1 (IPPool/p): spec.cidr: \"10.30.0.0/33\"",
        ),
        case(
            "a pool without a CIDR",
            pool("p", "{natOutgoing: true}"),
            "document 1 (IPPool/p): spec.cidr: ",
        ),
        case(
            "a block size larger than the address",
            pool("p", "{cidr: 10.30.0.0/16, blockSize: 33}"),
            "document 1 (IPPool/p): spec.blockSize: ",
        ),
        case(
            "an IPIP mode that does not exist",
            pool("p", "{cidr: 10.30.0.0/16, ipipMode: Sometimes}"),
            "document 1 (IPPool/p): spec.ipipMode: \"Sometimes\" is not one of",
        ),
        case(
            "IPIP and VXLAN both on",
            pool("p", "{cidr: 10.30.0.0/16, ipipMode: Always, vxlanMode: Always}"),
            "document 1 (IPPool/p): spec.",
        ),
        case(
            "a node selector with a missing quote",
            pool("p", "{cidr: 10.30.0.0/16, nodeSelector: \"zone == 'a\"}"),
            "document 1 (IPPool/p): spec.nodeSelector: ",
        ),
        case(
            "a pool overlapping a stored pool",
            pool("p", "{cidr: 10.20.128.0/17}"),
            "document 1 (IPPool/p): spec.cidr: \"10.20.128.0/17\" overlaps IPPool pool-a",
        ),
        case(
            "two overlapping pools in one file",
            format!(
                "{}---\n{}",
                pool("p1", "{cidr: 10.40.0.0/16}"),
                pool("p2", "{cidr: 10.40.1.0/24}")
            ),
            "document 2 (IPPool/p2): spec.cidr: \"10.40.1.0/24\" overlaps IPPool p1",
        ),
        case(
            "a changed CIDR of a stored pool",
            pool("pool-a", "{cidr: 10.21.0.0/16, blockSize: 26}"),
            "document 1 (IPPool/pool-a): spec.cidr: \"10.21.0.0/16\" cannot be changed",
        ),
        case(
            "a changed block size of a stored pool",
            pool("pool-a", "{cidr: 10.20.0.0/16, blockSize: 28}"),
            "document 1 (IPPool/pool-a): spec.blockSize: \"28\" cannot be changed",
        ),
        case(
            "a multi-document file where only the 3rd document is bad",
            format!(
                "{}---\n{}---\n{}",
                pool("ok-1", "{cidr: 10.50.0.0/16}"),
                doc("Tier", "{name: ok-2}", "{order: 10}"),
                pool("bad-3", "{cidr: 10.51.0.0/16, natOutgoin: true}")
            ),
            "document 3 (IPPool/bad-3): spec.natOutgoin: unknown field",
        ),
        case(
            "a selector with a missing quote",
            gnp("{selector: \"app == 'web\"}"),
            "document 1 (GlobalNetworkPolicy/g1): spec.selector: \"app == 'web\" is not a valid selector: at position 7",
        ),
        case(
            "a policy in a tier that does not exist",
            gnp("{tier: platform, selector: all()}"),
            "document 1 (GlobalNetworkPolicy/g1): spec.tier: \"platform\" names a Tier that does not exist",
        ),
        case(
            "a rule action that does not exist",
            gnp("{ingress: [{action: Permit}]}"),
            "document 1 (GlobalNetworkPolicy/g1): spec.ingress[0].action: ",
        ),
        case(
            "a port above 65535",
            gnp("{ingress: [{action: Allow, protocol: TCP, destination: {ports: [70000]}}]}"),
            "document 1 (GlobalNetworkPolicy/g1): spec.ingress[0].destination.ports[0]",
        ),
        case(
            "ports without a protocol",
            gnp("{ingress: [{action: Allow, destination: {ports: [80]}}]}"),
            "document 1 (GlobalNetworkPolicy/g1): spec.ingress[0]",
        ),
        case(
            "a protocol that does not exist",
            gnp("{egress: [{action: Allow, protocol: TCPX}]}"),
            "document 1 (GlobalNetworkPolicy/g1): spec.egress[0].protocol",
        ),
        case(
            "a source net that is not a CIDR",
            gnp("{ingress: [{action: Deny, source: {nets: [10.0.0.0/40]}}]}"),
            "document 1 (GlobalNetworkPolicy/g1): spec.ingress[0].source.nets[0]",
        ),
        case(
            "a namespace on a cluster-wide policy",
            doc("GlobalNetworkPolicy", "{name: g1, namespace: prod}", "{selector: all()}"),
            "document 1 (GlobalNetworkPolicy/g1): metadata.namespace: \"prod\" is not allowed",
        ),
        case(
            "a namespaced policy with a bad selector",
            np("{selector: \"role in {'a'\"}"),
            "document 1 (NetworkPolicy/n1): spec.selector: ",
        ),
        case(
            "a policy type that does not exist",
            np("{types: [Inbound]}"),
            "document 1 (NetworkPolicy/n1): spec.types[0]",
        ),
        case(
            "a BGP peer IP that is not an address",
            peer("{peerIP: 10.0.0.300, asNumber: 64512}"),
            "document 1 (BGPPeer/peer-1): spec.peerIP: \"10.0.0.300\"",
        ),
        case(
            "an AS number that is not a number",
            peer("{peerIP: 10.0.0.1, asNumber: sixty-four}"),
            "document 1 (BGPPeer/peer-1): spec.asNumber: ",
        ),
        case(
            "a peer with both node and nodeSelector",
            peer("{node: node-1, nodeSelector: all(), peerIP: 10.0.0.1, asNumber: 64512}"),
            "document 1 (BGPPeer/peer-1): spec.",
        ),
        case(
            "a keepalive time that is not a duration",
            peer("{peerIP: 10.0.0.1, asNumber: 64512, keepaliveTime: 10 seconds}"),
            "document 1 (BGPPeer/peer-1): spec.keepaliveTime: ",
        ),
        case(
            "a log severity that does not exist",
            doc("BGPConfiguration", "{name: default}", "{logSeverityScreen: Loud}"),
            "document 1 (BGPConfiguration/default): spec.logSeverityScreen: ",
        ),
        case(
            "a node address that is not a CIDR",
            node("{bgp: {ipv4Address: 10.0.0.300/24}}"),
            "document 1 (Node/node-2): spec.bgp.ipv4Address: ",
        ),
        case(
            "a route reflector cluster ID that is not an IPv4 address",
            node("{bgp: {ipv4Address: 10.0.0.2/24, routeReflectorClusterID: rr-one}}"),
            "document 1 (Node/node-2): spec.bgp.routeReflectorClusterID: ",
        ),
        case(
            "a Felix MTU that is not a number",
            felix("{ipipMTU: big}"),
            "document 1 (FelixConfiguration/default): spec.ipipMTU: ",
        ),
        case(
            "a misspelled Felix setting",
            felix("{iptablesRefreshIntervall: 90s}"),
            "document 1 (FelixConfiguration/default): spec.iptablesRefreshIntervall: unknown field",
        ),
        case(
            "a host endpoint without interface or expected IPs",
            hep("{node: node-1}"),
            "document 1 (HostEndpoint/hep-1): spec",
        ),
        case(
            "a host endpoint IP that is not an address",
            hep("{node: node-1, interfaceName: eth0, expectedIPs: [not-an-ip]}"),
            "document 1 (HostEndpoint/hep-1): spec.expectedIPs[0]: ",
        ),
        case(
            "a workload network that is not a CIDR",
            wep("{node: node1, orchestrator: k8s, endpoint: eth0, pod: web, interfaceName: cali0, ipNetworks: [10.1.2.3/99]}"),
            "document 1 (WorkloadEndpoint/node1-k8s-web-eth0): spec.ipNetworks[0]: ",
        ),
        case(
            "a workload MAC that is not a MAC",
            wep("{node: node1, orchestrator: k8s, endpoint: eth0, pod: web, interfaceName: cali0, mac: zz:zz}"),
            "document 1 (WorkloadEndpoint/node1-k8s-web-eth0): spec.mac: ",
        ),
        case(
            "an IPAM configuration not named default",
            doc("IPAMConfiguration", "{name: ipam}", "{strictAffinity: true}"),
            "document 1 (IPAMConfiguration/ipam): metadata.name: \"ipam\" is not allowed",
        ),
        case(
            "a negative block count",
            doc("IPAMConfiguration", "{name: default}", "{maxBlocksPerHost: -1}"),
            "document 1 (IPAMConfiguration/default): spec.maxBlocksPerHost: ",
        ),
        case(
            "a reserved CIDR that is not a CIDR",
            doc("IPReservation", "{name: r1}", "{reservedCIDRs: [10.0.0.0/8, bogus]}"),
            "document 1 (IPReservation/r1): spec.reservedCIDRs[1]: ",
        ),
        case(
            "a global network set entry that is not a CIDR",
            doc("GlobalNetworkSet", "{name: s1}", "{nets: [192.0.2.0/24, 300.0.0.0/8]}"),
            "document 1 (GlobalNetworkSet/s1): spec.nets[1]: ",
        ),
        case(
            "a tier order that is not a number",
            doc("Tier", "{name: t2}", "{order: first}"),
            "document 1 (Tier/t2): spec.order: ",
        ),
        case(
            "a profile label key that is not a label",
            doc("Profile", "{name: pr}", "{labelsToApply: {'bad key!': x}}"),
            "document 1 (Profile/pr): spec.labelsToApply",
        ),
        case(
            "a BGP filter action that does not exist",
            doc("BGPFilter", "{name: f1}", "{exportV4: [{action: Allow, matchOperator: In, cidr: 10.0.0.0/8}]}"),
            "document 1 (BGPFilter/f1): spec.exportV4[0].action: ",
        ),
        case(
            "a label value that is too long",
            doc("Tier", &format!("{{name: t3, labels: {{a: {}}}}}", "x".repeat(70)), "{order: 1}"),
            "document 1 (Tier/t3): metadata.labels",
        ),
        case(
            "an upper-case resource name",
            pool("Pool_A", "{cidr: 10.60.0.0/16}"),
            "document 1 (IPPool/Pool_A): metadata.name: \"Pool_A\"",
        ),
        case(
            "a resource without a name",
            doc("IPPool", "{labels: {a: b}}", "{cidr: 10.60.0.0/16}"),
            "document 1 (IPPool/?): metadata.name: is required",
        ),
        case(
            "an old apiVersion",
            "apiVersion: projectcalico.org/v1\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.60.0.0/16}\n".to_string(),
            "document 1 (IPPool/p): apiVersion: \"projectcalico.org/v1\" is not supported",
        ),
        case(
            "a misspelled kind",
            doc("IPPol", "{name: p}", "{cidr: 10.60.0.0/16}"),
            "document 1 (IPPol/p): kind: ",
        ),
        case(
            "a list item of another kind",
            format!("{H}kind: IPPoolList\nitems:\n- {{apiVersion: projectcalico.org/v3, kind: Tier, metadata: {{name: t}}}}\n"),
            "document 1 (Tier/t): items[0].kind: ",
        ),
        case(
            "a YAML indentation error",
            format!("{H}kind: IPPool\nmetadata:\n  name: p\n spec:\n  cidr: 10.60.0.0/16\n"),
            "document 1 (?/?): line ",
        ),
        case(
            "a JSON document with an unknown field",
            r#"{"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "t"}, "spec": {"ordr": 5}}"#.to_string(),
            "document 1 (Tier/t): spec.ordr: unknown field",
        ),
    ];
    c.push(Case {
        what: "create of a pool that exists",
        command: "create",
        text: pool("pool-a", "{cidr: 10.20.0.0/16}"),
        expect: "document 1 (IPPool/pool-a): metadata.name: resource already exists: IPPool(pool-a)",
    });
    c.push(Case {
        what: "replace of a pool that does not exist",
        command: "replace",
        text: pool("pool-z", "{cidr: 10.70.0.0/16}"),
        expect: "document 1 (IPPool/pool-z): metadata.name: resource does not exist: IPPool(pool-z)",
    });
    c.push(Case {
        what: "replace with a stale resourceVersion",
        command: "replace",
        text: doc("IPPool", "{name: pool-a, resourceVersion: '1'}", "{cidr: 10.20.0.0/16, natOutgoing: true}"),
        expect: "document 1 (IPPool/pool-a): metadata.resourceVersion: update conflict: IPPool(pool-a): resource version '1' is out of date",
    });
    c.push(Case {
        what: "apply with a stale resourceVersion",
        command: "apply",
        text: doc(
            "Node",
            "{name: node-1, resourceVersion: '1'}",
            "{bgp: {ipv4Address: 10.0.0.9/24}}",
        ),
        expect: "document 1 (Node/node-1): metadata.resourceVersion: update conflict: Node(node-1)",
    });
    c.push(Case {
        what: "a policy whose tier is created later in the same file",
        command: "apply",
        text: format!(
            "{}---\n{}",
            gnp("{tier: late, selector: all()}"),
            doc("Tier", "{name: late}", "{order: 50}")
        ),
        expect: "document 1 (GlobalNetworkPolicy/g1): spec.tier: \"late\" names a Tier that does not exist",
    });
    c
}

#[test]
fn at_least_forty_invalid_documents_are_refused_naming_the_field_and_change_nothing() {
    let ctl = seeded();
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let before = ctl.snapshot();
    let mut problems = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let path = ctl.file(&format!("case-{i}.yaml"), &c.text);
        let out = ctl.run(&[c.command, "-f", &path]);
        let expect = format!("{path}: {}", c.expect);
        if out.code == 0 || !out.stderr.contains(&expect) {
            problems.push(format!(
                "{}: exit {}\nwanted: {expect}\nstderr: {}stdout: {}",
                c.what, out.code, out.stderr, out.stdout
            ));
        }
        if !out.stderr.starts_with("failed to ") {
            problems.push(format!(
                "{}: stderr does not start with the summary: {}",
                c.what, out.stderr
            ));
        }
        if ctl.snapshot() != before {
            problems.push(format!("{}: the store changed", c.what));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn every_error_of_a_file_is_reported_at_once() {
    let ctl = seeded();
    let text = format!(
        "{}---\n{}---\n{}",
        doc("IPPool", "{name: a}", "{cidr: 10.80.0.1/16}"),
        doc("Tier", "{name: ok}", "{order: 1}"),
        doc("BGPPeer", "{name: b}", "{peerIP: nope, asNumber: 0}")
    );
    let path = ctl.file("many.yaml", &text);
    let before = ctl.snapshot();
    let e = ctl.run(&["apply", "-f", &path]).failed().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines[0],
        "failed to execute command: invalid input; nothing was written:"
    );
    assert!(
        lines[1].starts_with(&format!("{path}: document 1 (IPPool/a): spec.cidr: ")),
        "{e}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{path}: document 3 (BGPPeer/b): spec.peerIP: "))),
        "{e}"
    );
    assert_eq!(ctl.snapshot(), before);
}

#[test]
fn a_namespace_flag_that_contradicts_the_document_is_refused() {
    let ctl = seeded();
    let text = doc(
        "NetworkPolicy",
        "{name: n1, namespace: prod}",
        "{selector: all()}",
    );
    let path = ctl.file("np.yaml", &text);
    let before = ctl.snapshot();
    let e = ctl
        .run(&["apply", "-f", &path, "-n", "dev"])
        .failed()
        .to_string();
    assert!(
        e.contains(&format!("{path}: document 1 (NetworkPolicy/n1): metadata.namespace: \"prod\" does not match --namespace \"dev\"")),
        "{e}"
    );
    let pool = ctl.file(
        "pool.yaml",
        &doc("IPPool", "{name: p9}", "{cidr: 10.90.0.0/16}"),
    );
    let e = ctl
        .run(&["apply", "-f", &pool, "-n", "dev"])
        .failed()
        .to_string();
    assert!(
        e.contains("metadata.namespace: --namespace \"dev\" given, but IPPool is not namespaced"),
        "{e}"
    );
    assert_eq!(ctl.snapshot(), before);
}
