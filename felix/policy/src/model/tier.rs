//! Tiers: ordered groups of policies, with the action for traffic a tier's policies select but
//! do not decide.

use fabric_api::tier::DEFAULT_TIER_ORDER;
use fabric_api::{Action, Tier};

use crate::error::PolicyError;

/// What happens at the end of a tier when a policy of the tier selected the endpoint but no
/// rule allowed, denied or passed the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TierEnd {
    /// Drop (Calico's end-of-tier drop; the default).
    Deny,
    /// Go on with the next tier (or the profiles).
    Pass,
}

/// A tier as the renderer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TierModel {
    /// Its name.
    pub name: String,
    /// Its order (lower first).
    pub order: f64,
    /// Its end-of-tier action.
    pub end: TierEnd,
}

impl TierModel {
    /// A `Tier` resource (order defaults to 1,000,000, the default action to Deny).
    pub fn from_tier(t: &Tier) -> Result<TierModel, PolicyError> {
        let name = t.metadata.name_str().to_string();
        let order = t.spec.order.unwrap_or(DEFAULT_TIER_ORDER);
        if !order.is_finite() {
            return Err(PolicyError::new(
                format!("Tier {name}: spec.order"),
                order.to_string(),
                "is not a finite number",
            ));
        }
        let end = match t.spec.default_action {
            None | Some(Action::Deny) => TierEnd::Deny,
            Some(Action::Pass) => TierEnd::Pass,
            Some(other) => {
                return Err(PolicyError::new(
                    format!("Tier {name}: spec.defaultAction"),
                    format!("{other:?}"),
                    "is not one of Deny, Pass",
                ));
            }
        };
        Ok(TierModel { name, order, end })
    }

    /// The `default` tier as Calico creates it.
    pub fn default_tier() -> TierModel {
        TierModel {
            name: fabric_api::policy::DEFAULT_TIER.to_string(),
            order: DEFAULT_TIER_ORDER,
            end: TierEnd::Deny,
        }
    }
}
