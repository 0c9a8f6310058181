//! Resolving a kind typed on the command line (`ippool`, `IPPools`, `gnp`, ...) and suggesting
//! the nearest spelling when it is unknown.

use fabric_api::Kind;

/// The kind `text` names, or an error that lists the nearest spelling.
pub(crate) fn resolve(text: &str) -> anyhow::Result<Kind> {
    if let Some(kind) = Kind::from_user(text) {
        return Ok(kind);
    }
    let lower = text.trim().to_ascii_lowercase();
    let nearest = Kind::ALL
        .iter()
        .flat_map(|k| k.user_spellings().iter().copied())
        .map(|s| (edit_distance(&lower, s), s))
        .min();
    let hint = match nearest {
        Some((d, s)) if d <= 3.max(lower.len() / 3) => format!("; did you mean '{s}'?"),
        _ => format!(
            "; known kinds: {}",
            Kind::ALL
                .iter()
                .map(|k| k.user_spellings()[0])
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    anyhow::bail!("resource type '{text}' is not supported{hint}")
}

/// Levenshtein distance over bytes (kind names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calicoctl_spellings_resolve() {
        assert_eq!(resolve("IPPools").unwrap(), Kind::IPPool);
        assert_eq!(resolve("gnp").unwrap(), Kind::GlobalNetworkPolicy);
    }

    #[test]
    fn a_misspelled_kind_gets_the_nearest_spelling() {
        let e = resolve("ippol").unwrap_err().to_string();
        assert_eq!(
            e,
            "resource type 'ippol' is not supported; did you mean 'ippool'?"
        );
        let e = resolve("bgppeeer").unwrap_err().to_string();
        assert!(e.contains("did you mean 'bgppeer'"), "{e}");
        let e = resolve("networkpolicys").unwrap_err().to_string();
        assert!(e.contains("did you mean 'networkpolicy"), "{e}");
    }

    #[test]
    fn a_kind_far_from_every_spelling_lists_the_known_kinds() {
        let e = resolve("kubernetesservice").unwrap_err().to_string();
        assert!(e.contains("known kinds: ippool, "), "{e}");
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("ippol", "ippool"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }
}
