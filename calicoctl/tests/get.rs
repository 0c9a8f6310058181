//! `get` prints calicoctl's tables (golden text: column sets per kind, Go tabwriter padding
//! with trailing spaces, `(64512)` for an inherited AS number, `<nil>` and `1e+06` as Go
//! prints them), YAML/JSON in calicoctl's shapes, filters by `-l` selector and honours
//! `-n`/`-A`.
#![allow(clippy::unwrap_used)]

mod common;

use common::Ctl;

/// Golden text is written with a `|` at the end of each line, so trailing spaces are visible
/// and survive editors; this drops the markers.
fn golden(text: &str) -> String {
    text.lines()
        .map(|l| format!("{}\n", l.strip_suffix('|').unwrap_or(l)))
        .collect()
}

fn cluster() -> Ctl {
    let ctl = Ctl::sqlite();
    let path = format!("{}/tests/fixture.yaml", env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        ctl.run(&["apply", "-f", &path]).ok(),
        "Successfully applied 22 resource(s)\n"
    );
    ctl
}

#[test]
fn tables_match_calicoctl_column_sets_and_layout() {
    let ctl = cluster();
    let cases: &[(&[&str], &str)] = &[
        (
            &["get", "ippool"],
            "NAME      CIDR               SELECTOR   |
pool-v4   10.244.0.0/16      all()      |
pool-v6   fd00:10:244::/56   all()      |
|",
        ),
        (
            &["get", "ippools", "-o", "wide"],
            "NAME      CIDR               NAT     IPIPMODE      VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR   ASSIGNMENTMODE   |
pool-v4   10.244.0.0/16      true    CrossSubnet   Never       false      false              all()      Automatic        |
pool-v6   fd00:10:244::/56   false   Never         Always      true       false              all()      Automatic        |
|",
        ),
        (
            &["get", "bgppeers"],
            "NAME       PEERIP      NODE       ASN     |
everyone   192.0.2.1   (global)   65010   |
to-rr                  !has(rr)   0       |
tor-1      10.0.0.1    node-1     64600   |
|",
        ),
        (
            &["get", "nodes"],
            "NAME     |
node-1   |
node-2   |
node-3   |
|",
        ),
        (
            &["get", "nodes", "-o", "wide"],
            "NAME     ASN       IPV4           IPV6          |
node-1   (64512)   10.0.0.11/24   fd00::11/64   |
node-2   64513     10.0.0.12/24                 |
node-3                                          |
|",
        ),
        (
            &["get", "tiers"],
            "NAME       ORDER   |
security   100     |
platform   150.5   |
|",
        ),
        (
            &["get", "gnp", "-o", "wide"],
            "NAME             TIER       ORDER   SELECTOR       |
allow-dns        default    <nil>   app == 'dns'   |
security.block   security   10      all()          |
|",
        ),
        (
            &["get", "networkpolicy"],
            "NAME   TIER      |
web    default   |
|",
        ),
        (
            &["get", "networkpolicies", "-A", "-o", "wide"],
            "NAMESPACE   NAME   TIER      ORDER   SELECTOR       |
default     web    default   <nil>   app == 'web'   |
dev         web    default   <nil>   app == 'web'   |
prod        db     default   200     app == 'db'    |
|",
        ),
        (
            &["get", "wep", "-n", "dev"],
            "NAMESPACE   WORKLOAD   NODE    NETWORKS        INTERFACE   |
dev         api        node2   10.244.2.7/32   cali2       |
|",
        ),
        (
            &["get", "weps", "--all-namespaces", "-o", "wide"],
            "NAMESPACE   NAME                    WORKLOAD   NODE    NETWORKS        INTERFACE   PROFILES                    NATS                      |
dev         node2-k8s-api-eth0      api        node2   10.244.2.7/32   cali2                                                             |
prod        node1-k8s-web--1-eth0   web-1      node1   10.244.1.5/32   cali1       kns.prod,ksa.prod.default   {10.244.1.5 192.0.2.50}   |
|",
        ),
        (
            &["get", "hostendpoints", "-o", "wide"],
            "NAME          NODE     INTERFACE   IPS                  PROFILES   |
node-1-eth0   node-1   eth0        10.0.0.11,fd00::11   worker     |
|",
        ),
        (
            &["get", "profiles", "-o", "wide"],
            "NAME       LABELS                          |
kns.prod   env=production,pcns.name=prod   |
|",
        ),
        (
            &["get", "globalnetworksets", "-o", "wide"],
            "NAME        NETS                                                                               |
blocklist   198.51.100.0/24,203.0.113.0/24,192.0.2.0/28,192.0.2.16/28,192.0.2.32/28,192.0...   |
|",
        ),
        (
            &["get", "ipamconfig", "-o", "wide"],
            "NAME      STRICTAFFINITY   AUTOALLOCATEBLOCKS   MAXBLOCKSPERHOST   |
default   true             true                 0                  |
|",
        ),
        (
            &["get", "bgpfilters"],
            "NAME   NUMEXPORTV4   NUMIMPORTV4   NUMEXPORTV6   NUMIMPORTV6   |
tor    2             0             0             1             |
|",
        ),
        (
            &["get", "ippool", "-o", "custom-columns=NAME,nat,IPIPMODE"],
            "NAME      NAT     IPIPMODE      |
pool-v4   true    CrossSubnet   |
pool-v6   false   Never         |
|",
        ),
        // Named resources print one table each, as calicoctl does.
        (
            &["get", "node", "node-1", "node-3", "-o", "wide"],
            "NAME     ASN       IPV4           IPV6          |
node-1   (64512)   10.0.0.11/24   fd00::11/64   |
|
NAME     ASN   IPV4   IPV6   |
node-3                       |
|",
        ),
        (
            &["get", "felixconfigurations"],
            "NAME   |
|",
        ),
    ];
    for (args, want) in cases {
        let out = ctl.run(args);
        assert_eq!(out.ok(), golden(want), "calicoctl {}", args.join(" "));
    }
}

#[test]
fn an_inherited_as_number_follows_the_default_bgp_configuration() {
    let ctl = cluster();
    let cfg = ctl.file(
        "bgp.yaml",
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: 65001, logSeverityScreen: Info}\n",
    );
    ctl.run(&["apply", "-f", &cfg]).ok();
    let out = ctl.run(&["get", "node", "node-1", "-o", "wide"]);
    assert_eq!(
        out.ok(),
        golden(
            "NAME     ASN       IPV4           IPV6          |
node-1   (65001)   10.0.0.11/24   fd00::11/64   |
|"
        )
    );
    assert_eq!(
        ctl.run(&["get", "bgpconfig"]).ok(),
        golden(
            "NAME      LOGSEVERITY   MESHENABLED   ASNUMBER   |
default   Info          -             65001      |
|"
        )
    );
}

#[test]
fn a_selector_filters_a_listing_by_labels() {
    let ctl = cluster();
    let out = ctl.run(&["get", "np", "-A", "-l", "app == 'web' && !has(team)"]);
    assert_eq!(
        out.ok(),
        golden(
            "NAMESPACE   NAME   TIER      |
dev         web    default   |
|"
        )
    );
    let out = ctl.run(&["get", "nodes", "--selector", "rack in {'r1', 'r2'}"]);
    assert_eq!(out.ok(), golden("NAME     |\nnode-1   |\nnode-2   |\n|"));
    let out = ctl.run(&["get", "ippools", "-l", "family == 'v6'", "-o", "yaml"]);
    let yaml = out.ok();
    assert!(
        yaml.contains("kind: IPPoolList") && yaml.contains("name: pool-v6"),
        "{yaml}"
    );
    assert!(!yaml.contains("pool-v4"), "{yaml}");
}

#[test]
fn a_bad_selector_gives_the_parse_error_with_its_position() {
    let ctl = cluster();
    let e = ctl
        .run(&["get", "np", "-l", "app == 'web"])
        .failed()
        .to_string();
    assert_eq!(
        e,
        "invalid selector \"app == 'web\": at position 7: unterminated string (missing closing ')\n"
    );
    let e = ctl
        .run(&["get", "np", "db", "-n", "prod", "-l", "app == 'db'"])
        .failed()
        .to_string();
    assert!(e.contains("cannot be combined with names"), "{e}");
}

#[test]
fn namespaces_default_to_default_and_are_refused_for_cluster_wide_kinds() {
    let ctl = cluster();
    // No -n: the default namespace, no NAMESPACE column.
    assert_eq!(
        ctl.run(&["get", "np", "web", "-o", "yaml"])
            .ok()
            .matches("namespace: default")
            .count(),
        1
    );
    // A named get in another namespace.
    let out = ctl.run(&["get", "np", "db", "-n", "prod", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(v["metadata"]["namespace"], "prod");
    assert_eq!(v["kind"], "NetworkPolicy");
    // Not found in the default namespace.
    let e = ctl.run(&["get", "np", "db"]).failed().to_string();
    assert_eq!(e, "resource does not exist: NetworkPolicy(default/db)\n");
    // -n and -A on a cluster-wide kind.
    let e = ctl
        .run(&["get", "ippools", "-n", "prod"])
        .failed()
        .to_string();
    assert_eq!(
        e,
        "IPPool is not namespaced: remove --namespace \"prod\" (IPPool resources are cluster-wide)\n"
    );
    let e = ctl.run(&["get", "ippools", "-A"]).failed().to_string();
    assert!(
        e.starts_with("IPPool is not namespaced: remove --all-namespaces"),
        "{e}"
    );
    let e = ctl
        .run(&["get", "np", "-A", "-n", "prod"])
        .failed()
        .to_string();
    assert_eq!(
        e,
        "cannot use both --namespace and --all-namespaces flags at the same time\n"
    );
    let e = ctl.run(&["get", "np", "db", "-A"]).failed().to_string();
    assert!(
        e.contains("cannot use --all-namespaces to get a NetworkPolicy by name"),
        "{e}"
    );
}

#[test]
fn yaml_and_json_shapes_follow_calicoctl() {
    let ctl = cluster();
    // One named resource: the resource itself.
    let one = ctl.run(&["get", "ippool", "pool-v4", "-o", "yaml"]);
    assert!(
        one.ok()
            .starts_with("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n"),
        "{}",
        one.stdout
    );
    // Several named resources: a sequence of resources.
    let two = ctl.run(&["get", "ippool", "pool-v4", "pool-v6", "-o", "yaml"]);
    assert!(
        two.ok()
            .starts_with("- apiVersion: projectcalico.org/v3\n  kind: IPPool\n"),
        "{}",
        two.stdout
    );
    // A listing: a <Kind>List with the listing's revision, keys sorted.
    let list = ctl.run(&["get", "ippool", "-o", "yaml"]);
    let text = list.ok();
    assert!(
        text.starts_with(
            "apiVersion: projectcalico.org/v3\nitems:\n- apiVersion: projectcalico.org/v3\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("\nkind: IPPoolList\nmetadata:\n  resourceVersion: "),
        "{text}"
    );
    let json = ctl.run(&["get", "ippool", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.ok()).unwrap();
    assert_eq!(v["kind"], "IPPoolList");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    // An empty listing is still a list.
    let empty = ctl.run(&["get", "felixconfig", "-o", "yaml"]);
    assert!(empty.ok().contains("items: []"), "{}", empty.stdout);
    // --export strips what the datastore set.
    let exported = ctl.run(&["get", "ippool", "pool-v4", "-o", "yaml", "--export"]);
    let text = exported.ok();
    assert!(
        !text.contains("resourceVersion")
            && !text.contains("uid:")
            && !text.contains("creationTimestamp"),
        "{text}"
    );
}

#[test]
fn names_that_do_not_exist_are_reported_after_the_ones_that_do() {
    let ctl = cluster();
    let out = ctl.run(&["get", "ippool", "pool-v4", "nope", "gone"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout,
        golden("NAME      CIDR            SELECTOR   |\npool-v4   10.244.0.0/16   all()      |\n|")
    );
    assert_eq!(
        out.stderr,
        "resource does not exist: IPPool(nope)\nresource does not exist: IPPool(gone)\n"
    );
}

#[test]
fn get_dash_f_shows_the_resources_a_file_names() {
    let ctl = cluster();
    let path = format!("{}/tests/fixture.yaml", env!("CARGO_MANIFEST_DIR"));
    let out = ctl.run(&["get", "-f", &path, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 22);
}

#[test]
fn unknown_headings_and_formats_are_refused_naming_the_valid_ones() {
    let ctl = cluster();
    let e = ctl
        .run(&["get", "ippool", "-o", "custom-columns=NAME,COLOR"])
        .failed()
        .to_string();
    assert_eq!(
        e,
        "unknown heading COLOR for IPPool; valid headings are: NAME, CIDR, NAT, IPIPMODE, VXLANMODE, DISABLED, DISABLEBGPEXPORT, SELECTOR, ASSIGNMENTMODE\n"
    );
    let e = ctl
        .run(&["get", "ippool", "-o", "go-template={{.Name}}"])
        .failed()
        .to_string();
    assert!(
        e.contains("output format 'go-template' is not supported"),
        "{e}"
    );
    let e = ctl
        .run(&["get", "ippool", "-o", "table"])
        .failed()
        .to_string();
    assert!(e.starts_with("unrecognized output format 'table'"), "{e}");
}
