//! `ps`-style tables laid out the way calicoctl's Go `text/tabwriter` does (minimum width 5,
//! padding 3, spaces): every cell, the last one included, is padded to its column's width, so
//! lines keep trailing spaces exactly as calicoctl prints them, and each table is followed by
//! an empty line.

/// The minimum width of a column.
const MIN_WIDTH: usize = 5;
/// Spaces added after the widest cell of a column.
const PADDING: usize = 3;

/// Lays out a header row and data rows. Every row must have as many cells as the header.
pub(crate) fn render(header: &[String], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths = vec![MIN_WIDTH; columns];
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count() + PADDING);
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (w, cell) in widths.iter().zip(row) {
            out.push_str(cell);
            let pad = w.saturating_sub(cell.chars().count());
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn columns_are_padded_like_go_tabwriter() {
        let out = render(
            &s(&["NAME", "CIDR", "SELECTOR"]),
            &[s(&["default-ipv4-ippool", "10.244.0.0/16", "all()"])],
        );
        assert_eq!(
            out,
            "NAME                  CIDR            SELECTOR   \n\
             default-ipv4-ippool   10.244.0.0/16   all()      \n\n"
        );
    }

    #[test]
    fn short_columns_get_the_minimum_width() {
        let out = render(&s(&["A", "B"]), &[s(&["", "x"])]);
        assert_eq!(out, "A    B    \n     x    \n\n");
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(render(&s(&["NAME"]), &[]), "NAME   \n\n");
    }
}
