//! The `Labels` trait: read-only access to a resource's labels for selector evaluation.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// A set of labels a selector can be evaluated against.
///
/// Implemented for the common map types, for slices and arrays of `(&str, &str)` pairs (handy in
/// tests) and for references to any implementor. Felix and other callers can implement it for
/// computed label sets (for example a workload's labels overlaid with its namespace's), so that
/// evaluation never has to build a merged map.
pub trait Labels {
    /// The value of label `key`, or `None` when the label is absent.
    fn get(&self, key: &str) -> Option<&str>;
}

impl<L: Labels + ?Sized> Labels for &L {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

impl Labels for [(&str, &str)] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<const N: usize> Labels for [(&str, &str); N] {
    fn get(&self, key: &str) -> Option<&str> {
        Labels::get(self.as_slice(), key)
    }
}

impl Labels for [(String, String)] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl Labels for Vec<(String, String)> {
    fn get(&self, key: &str) -> Option<&str> {
        Labels::get(self.as_slice(), key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_implementation_finds_present_labels_and_reports_absent_ones() {
        let btree: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let hash: HashMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let pairs = [("a", "1")];
        let owned = vec![("a".to_string(), "1".to_string())];
        assert_eq!(Labels::get(&btree, "a"), Some("1"));
        assert_eq!(Labels::get(&hash, "a"), Some("1"));
        assert_eq!(Labels::get(&pairs, "a"), Some("1"));
        assert_eq!(Labels::get(&pairs[..], "a"), Some("1"));
        assert_eq!(Labels::get(&owned, "a"), Some("1"));
        assert_eq!(Labels::get(&&btree, "a"), Some("1"));
        assert_eq!(Labels::get(&btree, "b"), None);
        assert_eq!(Labels::get(&hash, "b"), None);
        assert_eq!(Labels::get(&pairs, "b"), None);
        assert_eq!(Labels::get(&owned, "b"), None);
    }

    #[test]
    fn an_empty_value_is_present_not_absent() {
        let pairs = [("a", "")];
        assert_eq!(Labels::get(&pairs, "a"), Some(""));
    }
}
