//! Rendering: rules, the fixed chains and hooks, the dispatch trees and endpoint chains.

pub mod dispatch;
pub mod endpoint;
pub mod rules;
pub mod static_chains;
