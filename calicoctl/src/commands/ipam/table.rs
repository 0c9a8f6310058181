//! Boxed tables as calicoctl's `ipam` commands print them (`+---+` borders, one space of
//! padding, headers left-aligned, chosen columns right-aligned), and Go's `%.5g` number format
//! those tables use.

/// How a column's data cells are aligned (headers are always left-aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// Text at the left.
    Left,
    /// Text at the right (numbers).
    Right,
}

/// Lays out `header` and `rows` in a box; `align` gives each column's alignment (missing
/// entries are left-aligned). Every row must have as many cells as the header.
pub(crate) fn boxed(header: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let rule = {
        let mut line = String::from("+");
        for w in &widths {
            line.push_str(&"-".repeat(w + 2));
            line.push('+');
        }
        line.push('\n');
        line
    };
    let line = |cells: &mut dyn Iterator<Item = (&str, Align)>| {
        let mut out = String::from("|");
        for ((cell, a), w) in cells.zip(&widths) {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            match a {
                Align::Left => out.push_str(&format!(" {cell}{pad} |")),
                Align::Right => out.push_str(&format!(" {pad}{cell} |")),
            }
        }
        out.push('\n');
        out
    };
    let align_of = |i: usize| align.get(i).copied().unwrap_or(Align::Left);
    let mut out = rule.clone();
    out.push_str(&line(&mut header.iter().map(|h| (*h, Align::Left))));
    out.push_str(&rule);
    for row in rows {
        out.push_str(&line(
            &mut row
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), align_of(i))),
        ));
    }
    if !rows.is_empty() {
        out.push_str(&rule);
    }
    out
}

/// A number as Go's `%.5g` prints it: at most five significant digits, no trailing zeros, and
/// the exponent form (`1.6777e+07`) when the exponent is below -4 or at least 5.
pub(crate) fn go_g5(x: f64) -> String {
    const PRECISION: i32 = 5;
    if x == 0.0 {
        return "0".into();
    }
    // Round to five significant digits first: the exponent is the rounded number's.
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..PRECISION).contains(&exp) {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from(PRECISION - 1 - exp).unwrap_or(0);
        trim_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `n (p%)` as calicoctl's usage table prints a count out of `total`.
pub(crate) fn with_percentage(n: u128, total: u128) -> String {
    let share = if total == 0 {
        0.0
    } else {
        100.0 * n as f64 / total as f64
    };
    format!("{} ({share:.0}%)", go_g5(n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_go_percent_point_5g() {
        assert_eq!(go_g5(0.0), "0");
        assert_eq!(go_g5(64.0), "64");
        assert_eq!(go_g5(65536.0), "65536");
        assert_eq!(go_g5(16_777_216.0), "1.6777e+07");
        assert_eq!(go_g5(100_000.0), "1e+05");
        assert_eq!(go_g5(2f64.powi(80)), "1.2089e+24");
        assert_eq!(go_g5(99_999.5), "1e+05");
    }

    #[test]
    fn a_share_is_rounded_to_a_whole_percent() {
        assert_eq!(with_percentage(5, 65536), "5 (0%)");
        assert_eq!(with_percentage(59, 64), "59 (92%)");
        assert_eq!(with_percentage(0, 0), "0 (0%)");
    }

    #[test]
    fn a_table_is_boxed_with_right_aligned_numbers() {
        let out = boxed(
            &["NAME", "COUNT"],
            &[Align::Left, Align::Right],
            &[
                vec!["a".into(), "7".into()],
                vec!["long name".into(), "12345".into()],
            ],
        );
        assert_eq!(
            out,
            "+-----------+-------+\n\
             | NAME      | COUNT |\n\
             +-----------+-------+\n\
             | a         |     7 |\n\
             | long name | 12345 |\n\
             +-----------+-------+\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_boxed_header() {
        assert_eq!(boxed(&["IP"], &[], &[]), "+----+\n| IP |\n+----+\n");
    }
}
