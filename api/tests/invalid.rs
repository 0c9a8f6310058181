//! Invalid manifests are refused with an error that names the document, the resource, the
//! field and the broken rule: `file: document N (Kind/name): field: message`.
#![allow(clippy::unwrap_used)]

use fabric_api::document::parse_documents;

/// One invalid document: what it shows, the YAML, the kind and name the error names, the
/// field and a part of the message.
struct Case {
    what: &'static str,
    yaml: &'static str,
    kind: &'static str,
    name: &'static str,
    field: &'static str,
    message: &'static str,
}

const fn case(
    what: &'static str,
    yaml: &'static str,
    kind: &'static str,
    name: &'static str,
    field: &'static str,
    message: &'static str,
) -> Case {
    Case {
        what,
        yaml,
        kind,
        name,
        field,
        message,
    }
}

const V3: &str = "apiVersion: projectcalico.org/v3\n";

const CASES: &[Case] = &[
    // What a new user does.
    case(
        "a typo in a field name",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, ipipMod: Always}",
        "IPPool",
        "p",
        "spec.ipipMod",
        "unknown field; expected one of cidr, vxlanMode, ipipMode,",
    ),
    case(
        "a CIDR with host bits set",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.1/16}",
        "IPPool",
        "p",
        "spec.cidr",
        r#""10.0.0.1/16" has host bits set; a CIDR must be strictly masked (10.0.0.0/16)"#,
    ),
    case(
        "a selector with a missing quote",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: \"app == 'db\"}",
        "GlobalNetworkPolicy",
        "p",
        "spec.selector",
        r#""app == 'db" is not a valid selector: at position 7"#,
    ),
    case(
        "a wrong apiVersion",
        "apiVersion: projectcalico.org/v1\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}",
        "IPPool",
        "p",
        "apiVersion",
        r#""projectcalico.org/v1" is not supported; expected projectcalico.org/v3"#,
    ),
    case(
        "the CRD storage apiVersion",
        "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}",
        "IPPool",
        "p",
        "apiVersion",
        "export with calicoctl",
    ),
    case(
        "an unknown kind",
        "kind: IPPoolz\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}",
        "IPPoolz",
        "p",
        "kind",
        r#""IPPoolz" is not a supported projectcalico.org/v3 kind"#,
    ),
    case(
        "a kind in the wrong case",
        "kind: ippool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}",
        "ippool",
        "p",
        "kind",
        "did you mean IPPool?",
    ),
    case(
        "an IPv4 block size out of range",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, blockSize: 19}",
        "IPPool",
        "p",
        "spec.blockSize",
        r#""19" is out of range for an IPv4 pool; block sizes are 20-32"#,
    ),
    case(
        "an IPv6 block size out of range",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 'fd00::/48', blockSize: 64}",
        "IPPool",
        "p",
        "spec.blockSize",
        "block sizes are 116-128",
    ),
    case(
        "a numeric port with protocol ICMP",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - action: Allow\n    protocol: ICMP\n    destination: {ports: [80]}",
        "GlobalNetworkPolicy",
        "p",
        "spec.ingress[0].destination.ports[0]",
        "rules with ports must set protocol to TCP, UDP or SCTP (protocol is ICMP)",
    ),
    case(
        "IPIP on an IPv6 pool",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 'fd00::/48', ipipMode: Always}",
        "IPPool",
        "p",
        "spec.ipipMode",
        "is not allowed on an IPv6 pool",
    ),
    case(
        "AS 0",
        "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: 0}",
        "BGPConfiguration",
        "default",
        "spec.asNumber",
        "AS 0 is reserved",
    ),
    case(
        "a name that is not DNS-1123",
        "kind: IPPool\nmetadata: {name: My_Pool}\nspec: {cidr: 10.0.0.0/16}",
        "IPPool",
        "My_Pool",
        "metadata.name",
        "is not a valid name",
    ),
    case(
        "a missing apiVersion",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}",
        "IPPool",
        "p",
        "apiVersion",
        "is required; expected projectcalico.org/v3",
    ),
    // IP pools.
    case(
        "IPIP and VXLAN together",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, ipipMode: Always, vxlanMode: CrossSubnet}",
        "IPPool",
        "p",
        "spec.vxlanMode",
        "cannot be combined with ipipMode Always",
    ),
    case(
        "a pool over the link-local range",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 169.254.0.0/20}",
        "IPPool",
        "p",
        "spec.cidr",
        "overlaps the IPv4 link-local range 169.254.0.0/16",
    ),
    case(
        "a pool smaller than a block",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/28}",
        "IPPool",
        "p",
        "spec.cidr",
        "is smaller than one block (/26)",
    ),
    case(
        "a pool without a CIDR",
        "kind: IPPool\nmetadata: {name: p}\nspec: {natOutgoing: true}",
        "IPPool",
        "p",
        "spec.cidr",
        "is required",
    ),
    case(
        "an unknown encapsulation mode",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, ipipMode: always}",
        "IPPool",
        "p",
        "spec.ipipMode",
        r#""always" is not one of Never, Always, CrossSubnet"#,
    ),
    case(
        "a LoadBalancer pool that also serves workloads",
        "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, allowedUses: [LoadBalancer, Workload]}",
        "IPPool",
        "p",
        "spec.allowedUses",
        "LoadBalancer cannot be combined with Workload or Tunnel",
    ),
    case(
        "an IPReservation with a bad CIDR",
        "kind: IPReservation\nmetadata: {name: r}\nspec: {reservedCIDRs: [10.0.0.0/33]}",
        "IPReservation",
        "r",
        "spec.reservedCIDRs[0]",
        "prefix length 33 is longer than 32",
    ),
    case(
        "an IPAMConfiguration not named default",
        "kind: IPAMConfiguration\nmetadata: {name: mine}\nspec: {strictAffinity: true}",
        "IPAMConfiguration",
        "mine",
        "metadata.name",
        "singleton named \"default\"",
    ),
    case(
        "too many blocks per host",
        "kind: IPAMConfiguration\nmetadata: {name: default}\nspec: {maxBlocksPerHost: 2000000}",
        "IPAMConfiguration",
        "default",
        "spec.maxBlocksPerHost",
        "is out of range; expected 0-1000000",
    ),
    // Policy rules.
    case(
        "a numeric port without a protocol",
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: prod}\nspec:\n  egress:\n  - action: Allow\n    destination: {ports: [53]}",
        "NetworkPolicy",
        "p",
        "spec.egress[0].destination.ports[0]",
        "is a numeric port, which needs protocol TCP, UDP or SCTP",
    ),
    case(
        "a port range in the wrong order",
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: prod}\nspec:\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: ['90:80']}",
        "NetworkPolicy",
        "p",
        "spec.ingress[0].destination.ports[0]",
        "the first port (90) is greater than the last (80)",
    ),
    case(
        "port 0",
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: prod}\nspec:\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [0]}",
        "NetworkPolicy",
        "p",
        "spec.ingress[0].destination.ports[0]",
        "is not a valid port; ports are 1-65535",
    ),
    case(
        "a lower-case protocol",
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: prod}\nspec:\n  ingress:\n  - action: Allow\n    protocol: tcp",
        "NetworkPolicy",
        "p",
        "spec.ingress[0].protocol",
        "did you mean TCP?",
    ),
    case(
        "protocol number 256",
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: prod}\nspec:\n  ingress:\n  - action: Allow\n    protocol: 256",
        "NetworkPolicy",
        "p",
        "spec.ingress[0].protocol",
        "protocol numbers are 1-255",
    ),
    case(
        "an unknown action",
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: prod}\nspec:\n  ingress:\n  - action: Accept",
        "NetworkPolicy",
        "p",
        "spec.ingress[0].action",
        r#""Accept" is not one of Allow, Deny, Log, Pass"#,
    ),
    case(
        "a rule without an action",
        "kind: NetworkPolicy\nmetadata: {name: p, namespace: prod}\nspec:\n  ingress:\n  - protocol: TCP",
        "NetworkPolicy",
        "p",
        "spec.ingress[0].action",
        "is required",
    ),
    case(
        "ICMP with ipVersion 6",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - action: Allow\n    protocol: ICMP\n    ipVersion: 6",
        "GlobalNetworkPolicy",
        "p",
        "spec.ingress[0].protocol",
        "(ICMP) requires ipVersion 4; use ICMPv6",
    ),
    case(
        "an ICMP type of 255",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {type: 255}",
        "GlobalNetworkPolicy",
        "p",
        "spec.ingress[0].icmp.type",
        "is out of range; ICMP types are 0-254",
    ),
    case(
        "an ICMP code without a type",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - action: Allow\n    protocol: ICMPv6\n    icmp: {code: 0}",
        "GlobalNetworkPolicy",
        "p",
        "spec.ingress[0].icmp.code",
        "requires an ICMP type",
    ),
    case(
        "ICMP fields on a TCP rule",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - action: Allow\n    protocol: TCP\n    icmp: {type: 8}",
        "GlobalNetworkPolicy",
        "p",
        "spec.ingress[0].icmp",
        "requires protocol ICMP or ICMPv6",
    ),
    case(
        "an unknown policy type",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {types: [Both]}",
        "GlobalNetworkPolicy",
        "p",
        "spec.types[0]",
        r#""Both" is not one of Ingress, Egress"#,
    ),
    case(
        "a policy type given twice",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {types: [Ingress, Ingress]}",
        "GlobalNetworkPolicy",
        "p",
        "spec.types[1]",
        "is listed more than once",
    ),
    case(
        "a rule mixing IPv4 and IPv6 nets",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  egress:\n  - action: Deny\n    destination: {nets: [10.0.0.0/8, 'fd00::/8']}",
        "GlobalNetworkPolicy",
        "p",
        "spec.egress[0].destination.nets",
        "mix IPv4 and IPv6",
    ),
    case(
        "a rule net with host bits",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  egress:\n  - action: Deny\n    destination: {nets: [10.0.0.1/8]}",
        "GlobalNetworkPolicy",
        "p",
        "spec.egress[0].destination.nets[0]",
        "has host bits set; a CIDR must be strictly masked (10.0.0.0/8)",
    ),
    case(
        "global() in an endpoint selector",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: global()}",
        "GlobalNetworkPolicy",
        "p",
        "spec.selector",
        "uses global()",
    ),
    case(
        "an HTTP match on a Deny rule",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - action: Deny\n    http: {methods: [GET]}",
        "GlobalNetworkPolicy",
        "p",
        "spec.ingress[0].http",
        "is only valid on Allow rules",
    ),
    case(
        "a policy name with two dots",
        "kind: GlobalNetworkPolicy\nmetadata: {name: a.b.c}\nspec: {}",
        "GlobalNetworkPolicy",
        "a.b.c",
        "metadata.name",
        "with at most one '.'",
    ),
    case(
        "preDNAT with egress rules",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  preDNAT: true\n  applyOnForward: true\n  egress: [{action: Allow}]",
        "GlobalNetworkPolicy",
        "p",
        "spec.egress",
        "is not allowed in a preDNAT policy",
    ),
    case(
        "doNotTrack without applyOnForward",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {doNotTrack: true}",
        "GlobalNetworkPolicy",
        "p",
        "spec.applyOnForward",
        "must be true when preDNAT or doNotTrack is true",
    ),
    case(
        "a namespace on a cluster-scoped kind",
        "kind: GlobalNetworkPolicy\nmetadata: {name: p, namespace: prod}\nspec: {}",
        "GlobalNetworkPolicy",
        "p",
        "metadata.namespace",
        "GlobalNetworkPolicy is cluster-scoped",
    ),
    case(
        "a staged delete that carries rules",
        "kind: StagedGlobalNetworkPolicy\nmetadata: {name: p}\nspec: {stagedAction: Delete, selector: all()}",
        "StagedGlobalNetworkPolicy",
        "p",
        "spec",
        "must be empty when stagedAction is Delete",
    ),
    case(
        "an invalid label value",
        "kind: GlobalNetworkSet\nmetadata: {name: s, labels: {app: has space}}\nspec: {}",
        "GlobalNetworkSet",
        "s",
        "metadata.labels.app",
        "is not a valid label value",
    ),
    // BGP.
    case(
        "asNumber on a per-node BGPConfiguration",
        "kind: BGPConfiguration\nmetadata: {name: node.worker-1}\nspec: {asNumber: 65001}",
        "BGPConfiguration",
        "node.worker-1",
        "spec.asNumber",
        "can only be set on the BGPConfiguration named \"default\"",
    ),
    case(
        "a mesh password with the mesh disabled",
        "kind: BGPConfiguration\nmetadata: {name: default}\nspec:\n  nodeToNodeMeshEnabled: false\n  nodeMeshPassword: {secretKeyRef: {name: s, key: k}}",
        "BGPConfiguration",
        "default",
        "spec.nodeMeshPassword",
        "cannot be set when nodeToNodeMeshEnabled is false",
    ),
    case(
        "a malformed restart time",
        "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeMeshMaxRestartTime: 2 minutes}",
        "BGPConfiguration",
        "default",
        "spec.nodeMeshMaxRestartTime",
        "is not a duration",
    ),
    case(
        "a standard community out of range",
        "kind: BGPConfiguration\nmetadata: {name: default}\nspec:\n  communities: [{name: c, value: '70000:1'}]\n  prefixAdvertisements: [{cidr: 10.0.0.0/8, communities: [c]}]",
        "BGPConfiguration",
        "default",
        "spec.communities[0].value",
        "both parts of aa:nn must be 0-65535",
    ),
    case(
        "an AS number that is not a number",
        "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: abc}",
        "BGPConfiguration",
        "default",
        "spec.asNumber",
        r#""abc" is not an AS number"#,
    ),
    case(
        "a peer with both node and nodeSelector",
        "kind: BGPPeer\nmetadata: {name: p}\nspec: {node: n1, nodeSelector: all(), peerIP: 10.0.0.1, asNumber: 65001}",
        "BGPPeer",
        "p",
        "spec.nodeSelector",
        "cannot be set together with spec.node",
    ),
    case(
        "a peer IP with port 0",
        "kind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: '10.0.0.1:0', asNumber: 65001}",
        "BGPPeer",
        "p",
        "spec.peerIP",
        "has an invalid port",
    ),
    case(
        "an IPv6 peer IP with a port but no brackets",
        "kind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 'fd00::1]:179', asNumber: 65001}",
        "BGPPeer",
        "p",
        "spec.peerIP",
        "expected <ip>, <ipv4>:<port> or [<ipv6>]:<port>",
    ),
    case(
        "a peer with both peerIP and peerSelector",
        "kind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, peerSelector: rr == 'true'}",
        "BGPPeer",
        "p",
        "spec.peerIP",
        "cannot be set together with spec.peerSelector",
    ),
    case(
        "a TTL security hop count above 255",
        "kind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 65001, ttlSecurity: 300}",
        "BGPPeer",
        "p",
        "spec.ttlSecurity",
        "is out of range: found integer 300, expected an integer 0-255",
    ),
    case(
        "an unknown next-hop mode",
        "kind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 65001, nextHopMode: self}",
        "BGPPeer",
        "p",
        "spec.nextHopMode",
        r#""self" is not one of Auto, Self, Keep"#,
    ),
    case(
        "a password without a secret key",
        "kind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 65001, password: {secretKeyRef: {name: s}}}",
        "BGPPeer",
        "p",
        "spec.password.secretKeyRef.key",
        "is required",
    ),
    case(
        "a zero keepalive time",
        "kind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 65001, keepaliveTime: 0s}",
        "BGPPeer",
        "p",
        "spec.keepaliveTime",
        "must be at least 1s",
    ),
    case(
        "reachableBy in another address family",
        "kind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 65001, reachableBy: 'fd00::1'}",
        "BGPPeer",
        "p",
        "spec.reachableBy",
        "is not in the address family of peerIP",
    ),
    case(
        "a filter CIDR without a match operator",
        "kind: BGPFilter\nmetadata: {name: f}\nspec:\n  exportV4: [{action: Accept, cidr: 10.0.0.0/8}]",
        "BGPFilter",
        "f",
        "spec.exportV4[0].matchOperator",
        "is required when cidr is set",
    ),
    case(
        "an IPv4 prefix length above 32",
        "kind: BGPFilter\nmetadata: {name: f}\nspec:\n  exportV4: [{action: Accept, cidr: 10.0.0.0/8, matchOperator: In, prefixLength: {max: 33}}]",
        "BGPFilter",
        "f",
        "spec.exportV4[0].prefixLength.max",
        "is out of range; expected 0-32",
    ),
    case(
        "an IPv6 CIDR in an IPv4 list",
        "kind: BGPFilter\nmetadata: {name: f}\nspec:\n  importV4: [{action: Reject, cidr: 'fd00::/8', matchOperator: In}]",
        "BGPFilter",
        "f",
        "spec.importV4[0].cidr",
        "is not an IPv4 network",
    ),
    case(
        "operations on a Reject rule",
        "kind: BGPFilter\nmetadata: {name: f}\nspec:\n  importV4: [{action: Reject, operations: [{setPriority: {value: 10}}]}]",
        "BGPFilter",
        "f",
        "spec.importV4[0].operations",
        "may only be used with action Accept",
    ),
    case(
        "a filter interface with a slash",
        "kind: BGPFilter\nmetadata: {name: f}\nspec:\n  exportV6: [{action: Reject, interface: eth0/1}]",
        "BGPFilter",
        "f",
        "spec.exportV6[0].interface",
        "is not a valid interface pattern",
    ),
    case(
        "a peer type in the wrong case",
        "kind: BGPFilter\nmetadata: {name: f}\nspec:\n  exportV6: [{action: Reject, peerType: ebgp}]",
        "BGPFilter",
        "f",
        "spec.exportV6[0].peerType",
        r#""ebgp" is not one of eBGP, iBGP"#,
    ),
    // Nodes and endpoints.
    case(
        "a node address that is not an address",
        "kind: Node\nmetadata: {name: n1}\nspec: {bgp: {ipv4Address: 10.0.0.300/24}}",
        "Node",
        "n1",
        "spec.bgp.ipv4Address",
        "is not an IP address",
    ),
    case(
        "an IPv6 route-reflector cluster ID",
        "kind: Node\nmetadata: {name: n1}\nspec: {bgp: {ipv4Address: 10.0.0.1/24, routeReflectorClusterID: 'fd00::1'}}",
        "Node",
        "n1",
        "spec.bgp.routeReflectorClusterID",
        "is not an IPv4 address",
    ),
    case(
        "a workload network of more than one address",
        "kind: WorkloadEndpoint\nmetadata: {name: n1-k8s-p-eth0, namespace: ns}\nspec: {orchestrator: k8s, node: n1, pod: p, endpoint: eth0, interfaceName: cali1, ipNetworks: [10.0.0.0/24]}",
        "WorkloadEndpoint",
        "n1-k8s-p-eth0",
        "spec.ipNetworks[0]",
        "holds more than one address",
    ),
    case(
        "a workload interface name longer than 15 characters",
        "kind: WorkloadEndpoint\nmetadata: {name: n1-k8s-p-eth0, namespace: ns}\nspec: {orchestrator: k8s, node: n1, pod: p, endpoint: eth0, interfaceName: cali0123456789abcdef}",
        "WorkloadEndpoint",
        "n1-k8s-p-eth0",
        "spec.interfaceName",
        "is not a valid interface name",
    ),
    case(
        "a bad MAC address",
        "kind: WorkloadEndpoint\nmetadata: {name: n1-k8s-p-eth0, namespace: ns}\nspec: {orchestrator: k8s, node: n1, pod: p, endpoint: eth0, interfaceName: cali1, mac: '02:42:0a'}",
        "WorkloadEndpoint",
        "n1-k8s-p-eth0",
        "spec.mac",
        "is not a MAC address",
    ),
    case(
        "a workload name that does not match its spec",
        "kind: WorkloadEndpoint\nmetadata: {name: wrong, namespace: ns}\nspec: {orchestrator: k8s, node: n1, pod: web-1, endpoint: eth0, interfaceName: cali1}",
        "WorkloadEndpoint",
        "wrong",
        "metadata.name",
        "expected n1-k8s-web--1-eth0",
    ),
    case(
        "a host endpoint with neither interface nor addresses",
        "kind: HostEndpoint\nmetadata: {name: h}\nspec: {node: n1}",
        "HostEndpoint",
        "h",
        "spec.interfaceName",
        "is required unless expectedIPs is set",
    ),
    case(
        "a host endpoint without a node",
        "kind: HostEndpoint\nmetadata: {name: h}\nspec: {interfaceName: eth0}",
        "HostEndpoint",
        "h",
        "spec.node",
        "is required",
    ),
    case(
        "a host endpoint port with protocol ICMP",
        "kind: HostEndpoint\nmetadata: {name: h}\nspec: {node: n1, interfaceName: eth0, ports: [{name: ping, port: 1, protocol: ICMP}]}",
        "HostEndpoint",
        "h",
        "spec.ports[0].protocol",
        "does not have ports",
    ),
    case(
        "a network set with a bad CIDR",
        "kind: NetworkSet\nmetadata: {name: s, namespace: prod}\nspec: {nets: [10.0.0.0/33]}",
        "NetworkSet",
        "s",
        "spec.nets[0]",
        "prefix length 33 is longer than 32",
    ),
    case(
        "a network set claiming a namespace label",
        "kind: GlobalNetworkSet\nmetadata: {name: s, labels: {projectcalico.org/namespace: prod}}\nspec: {}",
        "GlobalNetworkSet",
        "s",
        "metadata.labels",
        "is reserved by Calico",
    ),
    // Tiers, profiles and Felix.
    case(
        "a tier name with a dot",
        "kind: Tier\nmetadata: {name: net.sec}\nspec: {order: 10}",
        "Tier",
        "net.sec",
        "metadata.name",
        "DNS-1123 label, no dots",
    ),
    case(
        "a tier default action of Allow",
        "kind: Tier\nmetadata: {name: t}\nspec: {order: 10, defaultAction: Allow}",
        "Tier",
        "t",
        "spec.defaultAction",
        "is not one of Deny, Pass",
    ),
    case(
        "a profile label key with two slashes",
        "kind: Profile\nmetadata: {name: kns.prod}\nspec: {labelsToApply: {a/b/c: x}}",
        "Profile",
        "kns.prod",
        "spec.labelsToApply",
        "has more than one '/'",
    ),
    case(
        "a misspelled Felix field",
        "kind: FelixConfiguration\nmetadata: {name: default}\nspec: {iptablesBackends: NFT}",
        "FelixConfiguration",
        "default",
        "spec.iptablesBackends",
        "unknown field; expected one of nodeSelector,",
    ),
    case(
        "a Felix interval that is not a duration",
        "kind: FelixConfiguration\nmetadata: {name: default}\nspec: {routeRefreshInterval: 90x}",
        "FelixConfiguration",
        "default",
        "spec.routeRefreshInterval",
        "is not a duration",
    ),
    case(
        "a Felix chain insert mode that does not exist",
        "kind: FelixConfiguration\nmetadata: {name: default}\nspec: {chainInsertMode: Prepend}",
        "FelixConfiguration",
        "default",
        "spec.chainInsertMode",
        "is not one of Insert, Append (case-insensitive)",
    ),
    case(
        "a nodeSelector on the default FelixConfiguration",
        "kind: FelixConfiguration\nmetadata: {name: default}\nspec: {nodeSelector: all()}",
        "FelixConfiguration",
        "default",
        "spec.nodeSelector",
        "must not be set on the default",
    ),
    case(
        "a Felix failsafe port with protocol ICMP",
        "kind: FelixConfiguration\nmetadata: {name: default}\nspec: {failsafeInboundHostPorts: [{protocol: ICMP, port: 0}]}",
        "FelixConfiguration",
        "default",
        "spec.failsafeInboundHostPorts[0].protocol",
        "is not one of TCP, UDP, SCTP",
    ),
    case(
        "a Felix route table range spanning all of i64",
        "kind: FelixConfiguration\nmetadata: {name: default}\nspec: {routeTableRanges: [{min: -9223372036854775808, max: 9223372036854775807}]}",
        "FelixConfiguration",
        "default",
        "spec.routeTableRanges[0].min",
        "must be at least 1",
    ),
    case(
        "an item of a list with an unknown field",
        "kind: IPPoolList\nitems:\n- metadata: {name: a}\n  spec: {cidr: 10.0.0.0/16, nat: true}",
        "IPPool",
        "a",
        "items[0].spec.nat",
        "unknown field",
    ),
];

#[test]
fn there_are_at_least_forty_distinct_invalid_documents() {
    assert!(CASES.len() >= 40, "{}", CASES.len());
    let mut yamls: Vec<&str> = CASES.iter().map(|c| c.yaml).collect();
    yamls.sort_unstable();
    yamls.dedup();
    assert_eq!(yamls.len(), CASES.len(), "duplicate cases");
}

#[test]
fn every_invalid_document_is_refused_naming_the_field() {
    let mut failures = Vec::new();
    for c in CASES {
        let text = if c.yaml.starts_with("apiVersion") || c.what == "a missing apiVersion" {
            c.yaml.to_string()
        } else {
            format!("{V3}{}", c.yaml)
        };
        let errors = match parse_documents(&text, "f.yaml") {
            Ok(r) => {
                failures.push(format!("{}: accepted: {r:?}", c.what));
                continue;
            }
            Err(e) => e,
        };
        let prefix = format!("f.yaml: document 1 ({}/{}): {}: ", c.kind, c.name, c.field);
        let found = errors.0.iter().any(|e| {
            let line = e.to_string();
            line.starts_with(&prefix) && line[prefix.len()..].contains(c.message)
        });
        if !found {
            failures.push(format!(
                "{}: expected `{prefix}...{}...`, got:\n{errors}",
                c.what, c.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_error_carries_the_document_index_kind_and_name() {
    for c in CASES {
        let text = format!("{V3}{}", c.yaml);
        if let Err(errors) = parse_documents(&text, "f.yaml") {
            for e in &errors.0 {
                assert_eq!(e.source, "f.yaml");
                assert_eq!(e.index, 1);
                assert!(!e.field.is_empty(), "{}: {e}", c.what);
                assert!(!e.message.is_empty(), "{}: {e}", c.what);
            }
        }
    }
}

#[test]
fn a_yaml_syntax_error_is_reported_with_its_position() {
    let text = format!("{V3}kind: IPPool\nmetadata: {{name: p\nspec: {{}}\n");
    let errors = parse_documents(&text, "bad.yaml").unwrap_err();
    assert_eq!(errors.0.len(), 1);
    let line = errors.0[0].to_string();
    assert!(
        line.starts_with("bad.yaml: document 1 (?/?): line "),
        "{line}"
    );
    assert!(line.contains("invalid YAML"), "{line}");
}

#[test]
fn a_document_that_is_not_a_mapping_is_refused() {
    let errors = parse_documents("just a string\n", "s.yaml").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "s.yaml: document 1 (?/?): (document): expected a resource (a mapping with apiVersion, \
         kind, metadata and spec), found a string"
    );
}

#[test]
fn all_errors_of_one_resource_are_reported_not_just_the_first() {
    let text = format!(
        "{V3}kind: IPPool\nmetadata: {{name: Bad_Name}}\n\
         spec: {{cidr: 10.0.0.1/16, ipipMode: Always, vxlanMode: Always, nodeSelector: \"a ==\"}}\n"
    );
    let errors = parse_documents(&text, "f.yaml").unwrap_err();
    let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
    for f in [
        "metadata.name",
        "spec.cidr",
        "spec.vxlanMode",
        "spec.nodeSelector",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
}
