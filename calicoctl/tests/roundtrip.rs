//! Every kind round-trips through calicoctl on sqlite and on etcd: `apply -f` a realistic
//! manifest, `get -o yaml`, `apply` that output again (nothing changes: same
//! resourceVersions, same store revision), `delete` (then `get` fails with the not-found
//! message).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Ctl, manifest};
use fabric_api::document::parse_documents;
use fabric_api::{AnyResource, Kind};

/// Each kind with the manifest that holds it; `tier.yaml` first, since the policies of
/// `security` need their tier.
const MANIFESTS: [(Kind, &str); 18] = [
    (Kind::Tier, "tier.yaml"),
    (Kind::IPPool, "ippool.yaml"),
    (Kind::IPReservation, "ipreservation.yaml"),
    (Kind::IPAMConfiguration, "ipamconfiguration.yaml"),
    (Kind::BGPConfiguration, "bgpconfiguration.yaml"),
    (Kind::BGPPeer, "bgppeer.yaml"),
    (Kind::BGPFilter, "bgpfilter.yaml"),
    (Kind::Node, "node.yaml"),
    (Kind::FelixConfiguration, "felixconfiguration.yaml"),
    (Kind::NetworkPolicy, "networkpolicy.yaml"),
    (Kind::GlobalNetworkPolicy, "globalnetworkpolicy.yaml"),
    (Kind::StagedNetworkPolicy, "stagednetworkpolicy.yaml"),
    (
        Kind::StagedGlobalNetworkPolicy,
        "stagedglobalnetworkpolicy.yaml",
    ),
    (Kind::NetworkSet, "networkset.yaml"),
    (Kind::GlobalNetworkSet, "globalnetworkset.yaml"),
    (Kind::HostEndpoint, "hostendpoint.yaml"),
    (Kind::WorkloadEndpoint, "workloadendpoint.yaml"),
    (Kind::Profile, "profile.yaml"),
];

fn names_in(text: &str) -> Vec<(Option<String>, String)> {
    parse_documents(text, "out")
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .iter()
        .map(|r| (r.namespace().map(str::to_string), r.name().to_string()))
        .collect()
}

fn versions(text: &str) -> Vec<(String, Option<String>)> {
    parse_documents(text, "out")
        .unwrap()
        .iter()
        .map(|r: &AnyResource| (r.name().to_string(), r.metadata().resource_version.clone()))
        .collect()
}

fn every_kind_round_trips(ctl: &Ctl) {
    for (kind, file) in MANIFESTS {
        let path = manifest(file);
        let wanted = names_in(&std::fs::read_to_string(&path).unwrap());
        let applied = ctl.run(&["apply", "-f", &path]);
        assert_eq!(
            applied.ok(),
            format!(
                "Successfully applied {} '{kind}' resource(s)\n",
                wanted.len()
            )
        );
        let all_ns: &[&str] = if kind.is_namespaced() { &["-A"] } else { &[] };
        let kind_arg = kind.name().to_ascii_lowercase();
        let mut get = vec!["get", kind_arg.as_str(), "-o", "yaml"];
        get.extend_from_slice(all_ns);
        let yaml = ctl.run(&get).ok().to_string();
        assert!(
            yaml.contains(&format!("kind: {}List", kind.name())),
            "{yaml}"
        );
        let mut got = names_in(&yaml);
        got.sort();
        let mut expected = wanted.clone();
        expected.sort();
        assert_eq!(got, expected, "{kind}: get lists what was applied");

        // Applying what get printed changes nothing: no write, same versions.
        let before = ctl.snapshot();
        let out = ctl.file(&format!("{kind_arg}-out.yaml"), &yaml);
        ctl.run(&["apply", "-f", &out]).ok();
        assert_eq!(
            ctl.snapshot(),
            before,
            "{kind}: re-applying get output wrote something"
        );
        let again = ctl.run(&get).ok().to_string();
        assert_eq!(versions(&again), versions(&yaml), "{kind}");

        // The JSON shape round-trips as well.
        let mut get_json = vec!["get", kind_arg.as_str(), "-o", "json"];
        get_json.extend_from_slice(all_ns);
        let json = ctl.run(&get_json).ok().to_string();
        ctl.run_stdin(&["apply", "-f", "-"], &json).ok();
        assert_eq!(
            ctl.snapshot(),
            before,
            "{kind}: re-applying JSON output wrote something"
        );
    }

    // Delete in reverse order (policies before their tier); the built-in default tier stays.
    for (kind, file) in MANIFESTS.iter().rev() {
        let path = manifest(file);
        let kind_arg = kind.name().to_ascii_lowercase();
        for (namespace, name) in names_in(&std::fs::read_to_string(&path).unwrap()) {
            let mut args = vec!["delete", kind_arg.as_str(), name.as_str()];
            if let Some(ns) = &namespace {
                args.extend(["-n", ns.as_str()]);
            }
            if *kind == Kind::Tier && name == "default" {
                let e = ctl.run(&args).failed().to_string();
                assert!(e.contains("built-in tier and cannot be deleted"), "{e}");
                continue;
            }
            assert_eq!(
                ctl.run(&args).ok(),
                format!("Successfully deleted 1 '{kind}' resource(s)\n")
            );
            let mut get = vec!["get", kind_arg.as_str(), name.as_str()];
            if let Some(ns) = &namespace {
                get.extend(["-n", ns.as_str()]);
            }
            let e = ctl.run(&get).failed().to_string();
            let id = match &namespace {
                Some(ns) => format!("{kind}({ns}/{name})"),
                None => format!("{kind}({name})"),
            };
            assert_eq!(e, format!("resource does not exist: {id}\n"));
        }
    }
    let left: Vec<String> = ctl.keys();
    assert_eq!(
        left,
        ["/calico/resources/v3/projectcalico.org/tiers/default"],
        "only the built-in tier is left"
    );
}

#[test]
fn every_kind_round_trips_on_sqlite() {
    every_kind_round_trips(&Ctl::sqlite());
}

#[test]
fn every_kind_round_trips_on_etcd() {
    every_kind_round_trips(&Ctl::etcd());
}

#[test]
fn the_binary_round_trips_through_stdin_and_a_directory() {
    let ctl = Ctl::sqlite();
    let pools = std::fs::read_to_string(manifest("ippool.yaml")).unwrap();
    let out = ctl.binary(&["apply", "-f", "-"], &pools);
    assert_eq!(out.ok(), "Successfully applied 2 'IPPool' resource(s)\n");
    let yaml = ctl.binary(&["get", "ippools", "-o", "yaml"], "");
    let before = ctl.snapshot();
    ctl.file("dir/a-pools.yaml", yaml.ok());
    ctl.file("dir/b-tiers.json", r#"{"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "t1"}, "spec": {"order": 5}}"#);
    ctl.file("dir/ignored.txt", "not a manifest");
    let dir = ctl.dir.path().join("dir").display().to_string();
    let out = ctl.binary(&["apply", "-f", &dir], "");
    assert_eq!(out.ok(), "Successfully applied 3 resource(s)\n");
    assert_eq!(
        ctl.snapshot().len(),
        before.len() + 1,
        "only the tier was written"
    );
    let out = ctl.binary(&["delete", "-f", &dir], "");
    assert_eq!(out.ok(), "Successfully deleted 3 resource(s)\n");
    assert!(ctl.keys().is_empty());
}
