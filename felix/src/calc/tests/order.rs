//! Order independence: any interleaving of the same per-object histories, flushed at any
//! points, ends in the same desired dataplane as feeding them one object after another.

use fabric_api::felix::FelixConfigurationSpec;
use fabric_api::ippool::{IPIPMode as I, VXLANMode as V};
use fabric_datastore::ipam_model::AffinityState;
use proptest::prelude::*;

use super::*;

/// Per object: its histories (earlier values, then the final one). Variant 0 is the plain
/// final value; the others add transient values or end in a deletion.
fn histories() -> Vec<Vec<Vec<CalcInput>>> {
    vec![
        // Pools: a VXLAN pool that was IPIP first, a no-encap pool, a CrossSubnet IPIP pool
        // that is deleted in one variant.
        vec![
            vec![pool("vx", "10.65.0.0/16", I::Never, V::Always)],
            vec![
                pool("vx", "10.65.0.0/16", I::Always, V::Never),
                pool("vx", "10.65.0.0/16", I::Never, V::Always),
            ],
        ],
        vec![vec![pool("plain", "10.66.0.0/16", I::Never, V::Never)]],
        vec![
            vec![pool("ipip", "10.67.0.0/16", I::CrossSubnet, V::Never)],
            vec![
                pool("ipip", "10.67.0.0/16", I::CrossSubnet, V::Never),
                pool_deleted("ipip"),
            ],
        ],
        // Nodes: us (a), b in our subnet, c beyond it, d deleted in one variant.
        vec![
            vec![node("a", "172.16.0.1/24", 1)],
            vec![node("a", "172.16.9.1/24", 1), node("a", "172.16.0.1/24", 1)],
        ],
        vec![vec![node("b", "172.16.0.2/24", 2)]],
        vec![
            vec![node("c", "172.16.1.3/24", 3)],
            vec![
                node("c", "172.16.0.3/24", 30),
                node("c", "172.16.1.3/24", 3),
            ],
        ],
        vec![
            vec![node("d", "172.16.1.4/24", 4)],
            vec![node("d", "172.16.1.4/24", 4), node_deleted("d")],
        ],
        // Affinities: one per block; one moves from b to c.
        vec![vec![confirmed("a", "10.65.0.0/26")]],
        vec![vec![confirmed("b", "10.65.1.0/26")]],
        vec![
            vec![confirmed("c", "10.65.2.0/26")],
            vec![
                affinity("c", "10.65.2.0/26", Some(AffinityState::Pending)),
                confirmed("c", "10.65.2.0/26"),
            ],
        ],
        vec![vec![confirmed("d", "10.65.3.0/26")]],
        vec![vec![confirmed("a", "10.66.0.0/26")]],
        vec![vec![confirmed("b", "10.66.1.0/26")]],
        vec![vec![confirmed("a", "10.67.0.0/26")]],
        vec![vec![confirmed("c", "10.67.2.0/26")]],
        vec![vec![confirmed("b", "10.67.3.0/26")]],
        vec![
            vec![affinity("b", "10.67.1.0/26", None)],
            vec![
                confirmed("b", "10.67.1.0/26"),
                affinity("b", "10.67.1.0/26", None),
            ],
        ],
        // Blocks with borrowed addresses.
        vec![
            vec![block("10.65.0.0/26", &[(1, "a"), (2, "b"), (3, "c")])],
            vec![
                block("10.65.0.0/26", &[(1, "a"), (2, "d")]),
                block("10.65.0.0/26", &[(1, "a"), (2, "b"), (3, "c")]),
            ],
        ],
        vec![vec![block("10.65.1.0/26", &[(4, "a"), (5, "b")])]],
        vec![vec![block("10.66.1.0/26", &[(6, "a")])]],
        // Local and remote endpoints.
        vec![vec![wep("a", "p1", "cali1", "10.65.0.1")]],
        vec![
            vec![wep("a", "p2", "cali2", "10.65.1.4")],
            vec![
                wep("a", "p2", "cali9", "10.65.0.9"),
                wep("a", "p2", "cali2", "10.65.1.4"),
            ],
        ],
        vec![vec![wep("b", "p3", "cali3", "10.65.1.5")]],
        vec![
            vec![wep("a", "p4", "cali4", "10.66.0.4")],
            vec![wep("a", "p4", "cali4", "10.66.0.4"), wep_deleted("a", "p4")],
        ],
        // Learned routes.
        vec![vec![learned("10.66.1.0/26", &["172.16.0.2"])]],
        vec![vec![learned("10.66.0.0/26", &["172.16.0.2"])]],
        vec![
            vec![learned("0.0.0.0/0", &["172.16.0.254"])],
            vec![
                learned("0.0.0.0/0", &["172.16.0.253"]),
                learned("0.0.0.0/0", &["172.16.0.254"]),
            ],
        ],
        vec![
            vec![learned("10.65.2.0/26", &["172.16.1.3"])],
            vec![
                learned("10.65.2.0/26", &["172.16.1.3"]),
                learned("10.65.2.0/26", &[]),
            ],
        ],
        vec![vec![learned(
            "198.51.100.0/24",
            &["172.16.0.2", "172.16.0.3"],
        )]],
        // Settings and the underlay.
        vec![vec![felix_config(
            "default",
            FelixConfigurationSpec {
                vxlan_mtu: Some(1400),
                ..FelixConfigurationSpec::default()
            },
        )]],
        vec![
            vec![host("eth0", 1500)],
            vec![host("ens3", 9000), host("eth0", 1500)],
        ],
    ]
}

/// The histories chosen by `variants` (index modulo each object's count).
fn chosen(variants: &[usize]) -> Vec<Vec<CalcInput>> {
    histories()
        .into_iter()
        .enumerate()
        .map(|(i, mut options)| {
            let n = variants.get(i).copied().unwrap_or(0) % options.len();
            options.swap_remove(n)
        })
        .collect()
}

/// Interleaves the histories: each event gets a priority, events run in priority order, but
/// each object's own events keep their order (its priorities are sorted before assignment).
fn interleave(histories: Vec<Vec<CalcInput>>, priorities: &[u32]) -> Vec<CalcInput> {
    let mut events: Vec<(u32, CalcInput)> = Vec::new();
    let mut next = priorities.iter().copied().cycle();
    for history in histories {
        let mut ps: Vec<u32> = (0..history.len())
            .map(|_| next.next().unwrap_or(0))
            .collect();
        ps.sort_unstable();
        events.extend(ps.into_iter().zip(history));
    }
    events.sort_by_key(|(p, _)| *p);
    events.into_iter().map(|(_, e)| e).collect()
}

fn run(me: &str, inputs: Vec<CalcInput>, flush_points: &[bool]) -> super::super::DesiredDataplane {
    let mut g = CalcGraph::new(me, ConfigOverrides::default());
    g.update(CalcInput::DatastoreInSync);
    for (i, input) in inputs.into_iter().enumerate() {
        g.update(input);
        if flush_points.get(i).copied().unwrap_or(false) {
            g.flush();
        }
    }
    g.flush();
    g.desired()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_order_of_the_same_inputs_gives_the_same_desired_state(
        variants in prop::collection::vec(0usize..4, 32),
        priorities in prop::collection::vec(any::<u32>(), 64),
        flush_points in prop::collection::vec(any::<bool>(), 64),
        me in prop::sample::select(vec!["a", "b", "c"]),
    ) {
        let sequential: Vec<CalcInput> = chosen(&variants).into_iter().flatten().collect();
        let expected = run(me, sequential, &[]);
        let shuffled = interleave(chosen(&variants), &priorities);
        let got = run(me, shuffled, &flush_points);
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn the_scenario_exercises_every_route_kind() {
    let desired = run("a", chosen(&[]).into_iter().flatten().collect(), &[]);
    let text: Vec<String> = desired.routes.values().map(ToString::to_string).collect();
    let has = |needle: &str| text.iter().any(|r| r.contains(needle));
    assert!(has("scope link"), "{text:#?}");
    assert!(has("blackhole"), "{text:#?}");
    assert!(has("dev vxlan.calico onlink"), "{text:#?}");
    assert!(has("dev eth0"), "{text:#?}");
    assert!(has("dev tunl0 onlink"), "{text:#?}");
    assert!(has("nexthop via"), "{text:#?}");
    assert!(
        desired.routes.contains_key(&net("10.65.0.2/32")),
        "borrowed: {text:#?}"
    );
}
