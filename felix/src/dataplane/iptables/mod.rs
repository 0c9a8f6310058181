//! iptables and ipsets, shared by NAT now and by policy later: a [`Table`] owns the `cali-`
//! chains of one (family, table) and the `cali:<hash>`-commented jumps into kernel chains, and
//! writes only the chains that changed through one `iptables-restore --noflush` transaction.
//!
//! Rule identity is a hash: rule *i* of chain *c* carries `-m comment --comment "cali:<h_i>"`
//! with `h_i = sha256(h_{i-1} | spec_i)` truncated (and `h_0` = the chain name), so a chain's hash
//! list changes when any rule, its position or its chain changes. Reading back
//! `iptables-save -t <table>`, only `cali-` chains and our hash comments are parsed; foreign
//! chains and rules are never written. Tampering that keeps a rule's comment but edits its
//! matches is not detected (as in Calico).

mod backend;
mod save;
mod table;

pub mod fake;
pub mod ipsets;

#[cfg(test)]
mod tests;

use sha2::{Digest, Sha256};

pub use backend::{CommandError, IptablesBackend, IptablesCommands};
pub use save::{SavedTable, parse_save};
pub use table::Table;

use super::addr::IpFamily;
use super::status::InvalidInput;

/// The prefix of every chain we own.
pub const CHAIN_PREFIX: &str = "cali-";
/// The prefix of our rule-hash comments.
pub const HASH_PREFIX: &str = "cali:";
/// Hex digits of the rule hash kept in the comment.
const HASH_LEN: usize = 16;
/// The longest chain name iptables accepts.
const MAX_CHAIN_NAME: usize = 28;

/// One rule: matches and target as `iptables` arguments, without the chain and without our
/// comment (`-m set --match-set cali40masq-ipam-pools src -j MASQUERADE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The rule's arguments.
    pub spec: String,
}

impl Rule {
    /// A rule from its arguments.
    pub fn new(spec: impl Into<String>) -> Rule {
        Rule { spec: spec.into() }
    }
}

/// A chain and its rules in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The chain name (`cali-nat-outgoing`; for hooks, the kernel chain: `POSTROUTING`).
    pub name: String,
    /// The rules.
    pub rules: Vec<Rule>,
}

impl Chain {
    /// A chain called `name` with `rules`.
    pub fn new(name: impl Into<String>, rules: Vec<Rule>) -> Chain {
        Chain {
            name: name.into(),
            rules,
        }
    }
}

/// Which table a [`Table`] owns, and its markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    /// `nat`, `filter`, `mangle` or `raw`.
    pub table: String,
    /// IPv4 (iptables) or IPv6 (ip6tables).
    pub family: IpFamily,
    /// Our chain prefix (`cali-`).
    pub chain_prefix: String,
    /// Our comment prefix (`cali:`).
    pub hash_prefix: String,
}

impl TableConfig {
    /// Calico's markers for `table` of `family`.
    pub fn calico(table: &str, family: IpFamily) -> TableConfig {
        TableConfig {
            table: table.to_string(),
            family,
            chain_prefix: CHAIN_PREFIX.to_string(),
            hash_prefix: HASH_PREFIX.to_string(),
        }
    }
}

/// The hash of each rule of `chain` (see the module doc).
pub fn rule_hashes(chain: &str, rules: &[Rule]) -> Vec<String> {
    let mut prev = chain.to_string();
    rules
        .iter()
        .map(|r| {
            let mut h = Sha256::new();
            h.update(prev.as_bytes());
            h.update(b"|");
            h.update(r.spec.as_bytes());
            let mut id = hex::encode(h.finalize());
            id.truncate(HASH_LEN);
            prev.clone_from(&id);
            id
        })
        .collect()
}

/// Checks a chain name: ours (prefixed) or not as `owned` says, at most 28 characters, no
/// whitespace.
fn check_chain_name(path: &str, name: &str, prefix: &str, owned: bool) -> Result<(), InvalidInput> {
    if name.is_empty() || name.len() > MAX_CHAIN_NAME || name.chars().any(char::is_whitespace) {
        return Err(InvalidInput::new(
            path,
            name,
            "a chain name has 1 to 28 characters and no whitespace",
        ));
    }
    if owned != name.starts_with(prefix) {
        let rule = if owned {
            format!("our chains start with {prefix:?}")
        } else {
            format!("a hook goes into a kernel chain, which does not start with {prefix:?}")
        };
        return Err(InvalidInput::new(path, name, rule));
    }
    Ok(())
}

/// Checks a rule: one non-empty line, no chain command, no comment with our prefix.
fn check_rule(path: &str, rule: &Rule, hash_prefix: &str) -> Result<(), InvalidInput> {
    let spec = rule.spec.trim();
    let broken = if spec.is_empty() {
        Some("a rule must not be empty".to_string())
    } else if spec.contains('\n') || spec.contains('\r') {
        Some("a rule is one line".to_string())
    } else if ["-A ", "-I ", "-D ", "-R ", "-N ", "-X ", "-F "]
        .iter()
        .any(|c| spec.starts_with(c))
    {
        Some("a rule has matches and a target, not a chain command".to_string())
    } else if spec.contains(hash_prefix) {
        Some(format!("{hash_prefix:?} comments are added by the table"))
    } else if spec.matches('"').count() % 2 == 1 {
        Some("unbalanced double quote".to_string())
    } else {
        None
    };
    match broken {
        Some(b) => Err(InvalidInput::new(path, &rule.spec, b)),
        None => Ok(()),
    }
}
