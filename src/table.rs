//! Aligned text tables for stdout: numbers right-aligned, a bold header when color is on.

use nu_ansi_term::Style;

pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    numeric: Vec<bool>,
}

impl Table {
    pub fn new(header: Vec<&'static str>) -> Self {
        let numeric = vec![false; header.len()];
        Table {
            header,
            rows: Vec::new(),
            numeric,
        }
    }

    /// Right-aligns the columns whose every cell is a number (a percentage included).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&mut self, color: bool) -> String {
        let cols = self.header.len();
        for (c, numeric) in self.numeric.iter_mut().enumerate() {
            *numeric = !self.rows.is_empty()
                && self.rows.iter().all(|r| {
                    r.get(c).is_some_and(|v| {
                        !v.is_empty()
                            && v.chars()
                                .all(|ch| ch.is_ascii_digit() || matches!(ch, '-' | '.' | '%'))
                    })
                });
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (c, cell) in row.iter().enumerate().take(cols) {
                widths[c] = widths[c].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_string()).collect();
        let line = self.line(&header, &widths);
        if color {
            out.push_str(&Style::new().bold().paint(line).to_string());
        } else {
            out.push_str(&line);
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&self.line(row, &widths));
            out.push('\n');
        }
        out
    }

    fn line(&self, cells: &[String], widths: &[usize]) -> String {
        let parts: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(c, w)| {
                let cell = cells.get(c).map_or("", String::as_str);
                if self.numeric[c] {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    }
}

/// `part` as a percentage of `whole`, one decimal (`-` when `whole` is 0): a partition's share
/// of a topic's records.
pub fn share(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "-".to_string();
    }
    format!("{:.1}%", share_percent(part, whole))
}

/// `part` as a percentage of `whole` (`whole` above 0), rounded to one decimal.
pub fn share_percent(part: i64, whole: i64) -> f64 {
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let mut t = Table::new(vec!["NAME", "PARTITIONS"]);
        t.row(vec!["a".into(), "5".into()]);
        t.row(vec!["longer_name".into(), "12".into()]);
        assert_eq!(
            t.render(false),
            "NAME         PARTITIONS\na                     5\nlonger_name          12\n"
        );
    }

    #[test]
    fn shares_are_percentages_aligned_as_numbers() {
        assert_eq!(share(4, 7), "57.1%");
        assert_eq!(share(0, 7), "0.0%");
        assert_eq!(share(0, 0), "-");
        let mut t = Table::new(vec!["P", "SHARE"]);
        t.row(vec!["0".into(), share(1, 3)]);
        t.row(vec!["1".into(), share(3, 3)]);
        assert_eq!(t.render(false), "P   SHARE\n0   33.3%\n1  100.0%\n");
    }

    #[test]
    fn color_only_bolds_the_header() {
        let mut t = Table::new(vec!["A"]);
        t.row(vec!["x".into()]);
        let out = t.render(true);
        assert!(out.starts_with("\x1b[1m"), "{out:?}");
        assert!(out.ends_with("\nx\n"), "{out:?}");
    }
}
