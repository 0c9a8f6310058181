//! Helpers for benchmarks that publish into `bench/BENCHMARKS.md`: replacing one `## ` section,
//! describing the machine, and today's date.

use std::process::Command;

/// Replaces the section that starts with the line `heading` (up to the next `## ` heading) with
/// `section` (which should start with `heading`), or appends it; other sections are kept.
pub fn replace_section(document: &str, heading: &str, section: &str) -> String {
    let section = section.trim_end();
    let found = document
        .match_indices(heading)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || document[..i].ends_with('\n'));
    let Some(start) = found else {
        return format!("{}\n\n{section}\n", document.trim_end());
    };
    let body = start + heading.len();
    let end = document[body..]
        .find("\n## ")
        .map_or(document.len(), |i| body + i + 1);
    let rest = document[end..].trim_end();
    if rest.is_empty() {
        format!("{}{section}\n", &document[..start])
    } else {
        format!("{}{section}\n\n{rest}\n", &document[..start])
    }
}

/// Replaces (or appends) the section `heading` of the Markdown file at `path` with `section`;
/// a missing file starts as `# Benchmarks`.
pub fn update_section_file(
    path: &std::path::Path,
    heading: &str,
    section: &str,
) -> std::io::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_string(),
        Err(e) => return Err(e),
    };
    std::fs::write(path, replace_section(&old, heading, section))
}

/// `<cores> cores (<CPU model>), Linux <release>, <memory> GiB RAM`.
pub fn machine_summary() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| (kb + 512 * 1024) / (1024 * 1024));
    format!(
        "{cores} cores ({cpu}), Linux {}, {mem_gib} GiB RAM",
        kernel.trim()
    )
}

/// `(idle, total)` jiffies over all CPUs, from `/proc/stat`.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    Some((fields.get(3)? + fields.get(4)?, fields.iter().sum()))
}

/// Waits until the CPUs were at least `percent` % idle over a 2 s window, or `max` passed;
/// returns whether they were (benchmarks on a shared machine report it).
pub fn wait_for_idle_cpus(max: std::time::Duration, percent: u64) -> bool {
    let deadline = std::time::Instant::now() + max;
    loop {
        let Some((idle1, total1)) = cpu_jiffies() else {
            return false;
        };
        std::thread::sleep(std::time::Duration::from_secs(2));
        let Some((idle2, total2)) = cpu_jiffies() else {
            return false;
        };
        if total2 > total1 && (idle2 - idle1) * 100 >= (total2 - total1) * percent {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`, from `date -u`.
pub fn today_utc() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown date".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "## BGP: x";

    #[test]
    fn the_named_section_is_replaced_and_the_others_are_kept() {
        let old = format!("# Benchmarks\n\n## A\n\na\n\n{H}\n\nold\n\n## B\n\nb\n");
        assert_eq!(
            replace_section(&old, H, &format!("{H}\n\nnew\n")),
            format!("# Benchmarks\n\n## A\n\na\n\n{H}\n\nnew\n\n## B\n\nb\n")
        );
    }

    #[test]
    fn a_missing_section_is_appended_and_a_last_section_replaced() {
        let appended = replace_section("# Benchmarks\n", H, &format!("{H}\n\nx"));
        assert_eq!(appended, format!("# Benchmarks\n\n{H}\n\nx\n"));
        let again = replace_section(&appended, H, &format!("{H}\n\ny"));
        assert_eq!(again, format!("# Benchmarks\n\n{H}\n\ny\n"));
    }

    #[test]
    fn a_heading_mentioned_inside_a_line_is_not_a_section_start() {
        let doc = format!("# B\n\nsee {H} below\n");
        let out = replace_section(&doc, H, &format!("{H}\n\nz"));
        assert_eq!(out, format!("# B\n\nsee {H} below\n\n{H}\n\nz\n"));
    }
}
