//! The Markdown result: one row per (DUT, variant) with medians over the rounds, and the
//! section of `bench/BENCHMARKS.md` it replaces.

use std::fmt::Write as _;
use std::time::Duration;

use crate::dut::DutKind;
use crate::run::Measurement;

/// The heading of this benchmark's section in BENCHMARKS.md.
pub const SECTION: &str = "## BGP: 1,000,000 prefixes through the speaker";

/// All rounds of one (DUT, variant), or why it could not run.
#[derive(Debug, Clone)]
pub struct Row {
    /// The DUT.
    pub dut: DutKind,
    /// Attribute sets in the feed.
    pub attr_sets: u32,
    /// One measurement per round.
    pub runs: Vec<Measurement>,
    /// Set when the DUT was skipped or a run failed.
    pub note: Option<String>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// `1,000,000`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn variant(attr_sets: u32) -> String {
    if attr_sets == 1 {
        "1 attribute set".into()
    } else {
        format!("{} attribute sets", thousands(u64::from(attr_sets)))
    }
}

/// The results table.
pub fn table(rows: &[Row], prefixes: u32) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| DUT | variant | prefixes | time to all at receiver, median (min–max) | routes/s | time to all in DUT RIB | DUT peak RSS | DUT RSS at end | bytes/route |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|");
    let n = f64::from(prefixes);
    for row in rows {
        let label = format!(
            "| {} | {} | {} |",
            row.dut,
            variant(row.attr_sets),
            thousands(u64::from(prefixes))
        );
        if row.runs.is_empty() {
            let note = row.note.as_deref().unwrap_or("not run");
            let _ = writeln!(t, "{label} {note} | | | | | |");
            continue;
        }
        let times: Vec<f64> = row.runs.iter().map(|r| secs(r.to_receiver)).collect();
        let med = median(times.clone()).unwrap_or(f64::NAN);
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let max = times.iter().copied().fold(0.0, f64::max);
        let rib_seen = row.runs.iter().filter(|r| r.to_dut_rib.is_some()).count();
        let rib = median(
            row.runs
                .iter()
                .filter_map(|r| r.to_dut_rib.map(secs))
                .collect(),
        );
        let peak = median(
            row.runs
                .iter()
                .filter_map(|r| r.peak_rss.map(|b| b as f64))
                .collect(),
        );
        let end = median(
            row.runs
                .iter()
                .filter_map(|r| r.end_rss.map(|b| b as f64))
                .collect(),
        );
        let per_route = median(
            row.runs
                .iter()
                .filter_map(|r| Some((r.peak_rss? as f64 - r.idle_rss? as f64) / n))
                .collect(),
        );
        let dash = || "—".to_string();
        let _ = writeln!(
            t,
            "{label} {med:.3} s ({min:.3}–{max:.3}) | {:.0}k | {} | {} | {} | {} |",
            n / med / 1000.0,
            rib.map_or_else(dash, |s| format!(
                "{s:.3} s ({rib_seen} of {} runs)",
                row.runs.len()
            )),
            peak.map_or_else(dash, mib),
            end.map_or_else(dash, mib),
            per_route.map_or_else(dash, |b| format!("{b:.0}")),
        );
        if let Some(note) = &row.note {
            let _ = writeln!(t, "| | | | {note} | | | | | |");
        }
    }
    t
}

/// The feeder's own write rate in the direct runs (how fast it hands the feed to the kernel).
pub fn feeder_write_rate(rows: &[Row], prefixes: u32) -> Option<f64> {
    median(
        rows.iter()
            .filter(|r| r.dut == DutKind::Direct)
            .flat_map(|r| r.runs.iter())
            .map(|m| f64::from(prefixes) / secs(m.feed_written))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_numbers_get_thousands_separators() {
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
    }
}
