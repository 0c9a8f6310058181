//! The policy model: Calico resources turned into what the renderer needs (entities with
//! labels and addresses, policies with combined selectors and compiled rules, profiles,
//! tiers).

pub mod entity;
pub mod policy;
pub mod profile;
pub mod rule;
pub mod selectors;
pub mod tier;
