//! A workload's endpoint chains: `cali-tw-<if>` (traffic to it: ingress policy) and
//! `cali-fw-<if>` (traffic from it: egress policy). Established flows are accepted and invalid
//! ones dropped first; then each tier jumps to its policies' chains in order (a policy that
//! accepts returns at once, one that passes skips the rest of its tier, and a tier nobody
//! passed ends in a drop unless its default action is Pass); then the profiles; then a drop.

use crate::config::RenderConfig;
use crate::model::tier::TierEnd;
use crate::render::rules::{clear_mark, comment, mark_clear, mark_set};

/// One tier's policies for one direction of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierChains {
    /// The tier's name.
    pub tier: String,
    /// What happens when no policy of the tier decided.
    pub end: TierEnd,
    /// The policies' chains, in order.
    pub policy_chains: Vec<String>,
}

/// The rules of one endpoint chain.
pub fn endpoint_rules(
    config: &RenderConfig,
    tiers: &[TierChains],
    profile_chains: &[String],
) -> Vec<String> {
    let accept = config.mark_accept;
    let pass = config.mark_pass;
    let mut rules = vec![
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".to_string(),
        "-m conntrack --ctstate INVALID -j DROP".to_string(),
        clear_mark(accept | pass),
    ];
    for t in tiers.iter().filter(|t| !t.policy_chains.is_empty()) {
        rules.push(format!(
            "{} {}",
            comment(&format!("Start of tier {}", t.tier)),
            clear_mark(pass)
        ));
        for chain in &t.policy_chains {
            rules.push(format!("{} -j {chain}", mark_clear(pass)));
            rules.push(format!(
                "{} {} -j RETURN",
                mark_set(accept),
                comment("Return if policy accepted")
            ));
        }
        if t.end == TierEnd::Deny {
            rules.push(format!(
                "{} {} -j DROP",
                mark_clear(pass),
                comment("Drop if no policies passed packet")
            ));
        }
    }
    for chain in profile_chains {
        rules.push(format!("-j {chain}"));
        rules.push(format!(
            "{} {} -j RETURN",
            mark_set(accept),
            comment("Return if profile accepted")
        ));
    }
    rules.push(format!(
        "{} -j DROP",
        comment("Drop if no profiles matched")
    ));
    rules
}
