//! Text tables for `bgpd show neighbors` and `bgpd show routes`.

use std::fmt::Write;

use super::{NeighborStatus, RouteStatus};

/// `2026-11-29 17:40:02` (UTC) for Unix milliseconds.
pub fn utc_time(unix_ms: u64) -> String {
    let (date, time) = fabric_api::time::date_and_time(unix_ms / 1000);
    format!("{date} {time}")
}

/// Lays out rows under a header with columns padded to their widest cell.
fn layout(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// The neighbours table: address, AS, state, since, prefixes received/accepted/advertised,
/// last error.
pub fn neighbors(list: &[NeighborStatus]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|n| {
            vec![
                n.address.to_string(),
                n.remote_asn.to_string(),
                n.description.clone().unwrap_or_else(|| n.peer_type.clone()),
                n.state.clone(),
                utc_time(n.since_unix_ms),
                format!("{}/{}/{}", n.received(), n.accepted(), n.advertised()),
                n.flaps.to_string(),
                n.last_error
                    .as_ref()
                    .map(|e| format!("{} ({})", e.message, utc_time(e.at_unix_ms)))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    layout(
        &[
            "NEIGHBOR",
            "AS",
            "TYPE",
            "STATE",
            "SINCE (UTC)",
            "RCVD/ACPT/ADV",
            "FLAPS",
            "LAST ERROR",
        ],
        &rows,
    )
}

/// The routes table: one line per path; `*` marks the best path, `=` the other ECMP paths, `s`
/// stale ones; the decision reason is on the best path's line.
pub fn routes(list: &[RouteStatus]) -> String {
    let mut rows = Vec::new();
    for r in list {
        for (i, p) in r.paths.iter().enumerate() {
            let mark = format!(
                "{}{}",
                if p.best {
                    "*"
                } else if p.ecmp {
                    "="
                } else {
                    " "
                },
                if p.stale { "s" } else { "" }
            );
            let mut attrs = Vec::new();
            if let Some(med) = p.med {
                attrs.push(format!("med {med}"));
            }
            if !p.communities.is_empty() {
                attrs.push(format!("comm {}", p.communities.join(" ")));
            }
            if !p.large_communities.is_empty() {
                attrs.push(format!("lcomm {}", p.large_communities.join(" ")));
            }
            if let Some(o) = p.originator_id {
                attrs.push(format!("originator {o}"));
            }
            if !p.cluster_list.is_empty() {
                let ids: Vec<String> = p.cluster_list.iter().map(|c| c.to_string()).collect();
                attrs.push(format!("cluster-list {}", ids.join(" ")));
            }
            rows.push(vec![
                mark,
                if i == 0 {
                    r.prefix.to_string()
                } else {
                    String::new()
                },
                if p.next_hop.is_unspecified() {
                    "self".to_string()
                } else {
                    p.next_hop.to_string()
                },
                p.from
                    .map_or_else(|| "local".to_string(), |a| a.to_string()),
                format!("{} {}", p.as_path, p.origin).trim().to_string(),
                p.local_pref.to_string(),
                attrs.join(", "),
                if p.best {
                    r.reason.clone()
                } else {
                    String::new()
                },
            ]);
        }
    }
    layout(
        &[
            "",
            "PREFIX",
            "NEXT HOP",
            "FROM",
            "AS PATH",
            "LOCPRF",
            "ATTRIBUTES",
            "REASON",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_are_printed_as_utc_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc_time(1_796_000_000_000), "2026-11-30 00:53:20");
    }
}
