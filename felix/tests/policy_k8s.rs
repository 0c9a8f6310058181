//! The Kubernetes NetworkPolicy examples of the Kubernetes documentation, translated as
//! Calico's Kubernetes datastore translates them, enforced on real traffic between pods on two
//! nodes (root only).

#![allow(clippy::unwrap_used)]

mod policy_support;
mod support;

use Proto::{Icmp, Tcp, Udp};
use policy_support::{Lab, Proto, assert_flows, no, ok, serve};

#[test]
fn the_kubernetes_documentation_examples_behave_as_documented() {
    let mut lab = Lab::new(None);
    lab.namespace("prod", &[("team", "a")]);
    lab.namespace("dev", &[("team", "b")]);
    // prod: web (80, 6000) and db (5432, UDP 53) on node 1, api (named port http = 80) on
    // node 2; dev: client on node 1 (10.65.1.7), tool on node 2.
    let mut web = lab.pod(0, 5, "prod", "web", &[("app", "web")]);
    let mut db = lab.pod(0, 6, "prod", "db", &[("app", "db")]);
    let mut client = lab.pod(0, 7, "dev", "client", &[("app", "client")]);
    let mut api = lab.pod(1, 5, "prod", "api", &[("app", "api")]);
    let tool = lab.pod(1, 6, "dev", "tool", &[("app", "tool")]);
    lab.set_endpoint(&api, &[("app", "api")], &[("http", 80)]);
    serve(&mut web, &[80, 6000], &[]);
    serve(&mut db, &[5432], &[53]);
    serve(&mut api, &[80, 81], &[]);
    serve(&mut client, &[80], &[]);
    lab.start(&[]);
    assert_flows(
        &lab,
        "no policy",
        30,
        &[ok(&tool, &db, Tcp(5432)), ok(&web, &api, Tcp(80))],
    );

    // "Default deny all ingress traffic" in prod: nothing reaches a prod pod; dev is open.
    lab.apply_k8s(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress]
",
    );
    assert_flows(
        &lab,
        "default deny ingress",
        30,
        &[
            no(&client, &db, Tcp(5432)),
            no(&web, &db, Tcp(5432)),
            no(&tool, &web, Icmp),
            no(&web, &api, Tcp(80)),
            ok(&web, &client, Tcp(80)),
            ok(&db, &client, Icmp),
        ],
    );

    // Allow db from one namespace (by the name label Kubernetes gives every namespace) on
    // TCP 5432 and UDP 53.
    lab.apply_k8s(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-dev, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dev}}}]
    ports: [{protocol: TCP, port: 5432}, {protocol: UDP, port: 53}]
",
    );
    // Allow a port from the same namespace: web's TCP 80 to every prod pod.
    lab.apply_k8s(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-80, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {}}]
    ports: [{port: 80}]
",
    );
    // An ipBlock with an exception, to api's named port: node 1's pod range but not the
    // client.
    lab.apply_k8s(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-node1, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{ipBlock: {cidr: 10.65.1.0/24, except: [10.65.1.7/32]}}]
    ports: [{port: http}]
",
    );
    assert_flows(
        &lab,
        "allow rules",
        30,
        &[
            ok(&client, &db, Tcp(5432)),
            ok(&tool, &db, Tcp(5432)),
            ok(&client, &db, Udp(53)),
            no(&web, &db, Tcp(5432)),
            no(&client, &db, Icmp),
            ok(&db, &web, Tcp(80)),
            ok(&api, &web, Tcp(80)),
            no(&db, &web, Tcp(6000)),
            no(&client, &web, Tcp(80)),
            ok(&web, &api, Tcp(80)),
            ok(&db, &api, Tcp(80)),
            no(&web, &api, Tcp(81)),
            no(&client, &api, Tcp(80)),
            no(&tool, &api, Tcp(80)),
        ],
    );

    // "Default deny all egress traffic" in dev, then an egress range (endPort) to prod's
    // node-1 pods.
    lab.apply_k8s(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-egress, namespace: dev}
spec:
  podSelector: {}
  policyTypes: [Egress]
",
    );
    lab.apply_k8s(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-egress-range, namespace: dev}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.65.1.0/24}}]
    ports: [{protocol: TCP, port: 5000, endPort: 6000}]
",
    );
    assert_flows(
        &lab,
        "egress",
        30,
        &[
            ok(&client, &db, Tcp(5432)),
            no(&client, &db, Udp(53)),
            no(&tool, &db, Tcp(5432)),
            no(&client, &api, Tcp(80)),
            // Ingress to dev is still open.
            ok(&web, &client, Tcp(80)),
        ],
    );
}
