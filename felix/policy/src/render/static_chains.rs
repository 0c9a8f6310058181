//! The fixed chains and hooks: `FORWARD -> cali-FORWARD` (workload dispatch, then accept what
//! policy accepted), `INPUT -> cali-INPUT` (workload-to-host traffic through
//! `cali-wl-to-host`), `OUTPUT -> cali-OUTPUT`.

use crate::config::RenderConfig;
use crate::names::{
    CHAIN_FORWARD, CHAIN_FROM_WL_DISPATCH, CHAIN_INPUT, CHAIN_OUTPUT, CHAIN_TO_WL_DISPATCH,
    CHAIN_WL_TO_HOST,
};
use crate::render::rules::{clear_mark, comment, mark_set};
use crate::types::{Chain, IpFamily};

/// ICMPv6 types a workload may always send to its host (multicast listener query, report and
/// done, router solicitation, neighbour solicitation and advertisement), as Calico allows.
const ICMPV6_TO_HOST: [u8; 6] = [130, 131, 132, 133, 135, 136];

/// `cali-FORWARD`, `cali-INPUT`, `cali-wl-to-host` and `cali-OUTPUT` for `family`.
pub fn static_chains(config: &RenderConfig, family: IpFamily) -> Vec<Chain> {
    let wildcards: Vec<String> = config
        .workload_interface_prefixes
        .iter()
        .map(|p| format!("{p}+"))
        .collect();
    let accept = config.mark_accept;
    let mut forward = vec![format!(
        "{} {}",
        comment("Start with the policy marks clear"),
        clear_mark(config.mark_accept | config.mark_pass)
    )];
    for w in &wildcards {
        forward.push(format!("-i {w} -j {CHAIN_FROM_WL_DISPATCH}"));
        forward.push(format!("-o {w} -j {CHAIN_TO_WL_DISPATCH}"));
    }
    forward.push(format!(
        "{} {} -j ACCEPT",
        mark_set(accept),
        comment("Policy explicitly accepted packet.")
    ));

    let input: Vec<String> = wildcards
        .iter()
        .map(|w| format!("-i {w} -g {CHAIN_WL_TO_HOST}"))
        .collect();

    let mut to_host = Vec::new();
    if family == IpFamily::V6 {
        for t in ICMPV6_TO_HOST {
            to_host.push(format!("-p icmpv6 -m icmp6 --icmpv6-type {t} -j ACCEPT"));
        }
    }
    to_host.push(format!("-j {CHAIN_FROM_WL_DISPATCH}"));
    to_host.push(format!(
        "{} -j {}",
        comment("Configured DefaultEndpointToHostAction"),
        config.endpoint_to_host_action.target()
    ));

    let output: Vec<String> = wildcards
        .iter()
        .map(|w| {
            format!(
                "-o {w} {} -j RETURN",
                comment("Host to workload traffic is not policed")
            )
        })
        .collect();

    vec![
        Chain::new(CHAIN_FORWARD, forward),
        Chain::new(CHAIN_INPUT, input),
        Chain::new(CHAIN_OUTPUT, output),
        Chain::new(CHAIN_WL_TO_HOST, to_host),
    ]
}

/// The jumps into our chains from the kernel's: `FORWARD`, `INPUT`, `OUTPUT`.
pub fn hooks() -> Vec<Chain> {
    [
        ("FORWARD", CHAIN_FORWARD),
        ("INPUT", CHAIN_INPUT),
        ("OUTPUT", CHAIN_OUTPUT),
    ]
    .into_iter()
    .map(|(k, ours)| Chain::new(k, vec![format!("-j {ours}")]))
    .collect()
}
