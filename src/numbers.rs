//! Numbers as people read them: thousands separated, nouns in the singular for one. Data
//! for machines (`-o json`, CSV) keeps plain numbers and does not come here.

/// `5234` → `5,234`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `count(1, "record", "records")` → `1 record`; `count(5234, …)` → `5,234 records`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), noun(n, one, many))
}

/// The noun alone, for a number shown as typed (a flag's value): `noun(1, "tick", "ticks")`.
pub fn noun<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A rate as typed, to the hundredth: `rate(1.5, "record/s", "records/s")` →
/// `1.5 records/s` (not 2), 1000 → `1,000 records/s`, exactly 1 → `1 record/s`.
pub fn rate(per_second: f64, one: &str, many: &str) -> String {
    let text = format!("{:.2}", per_second.max(0.0));
    let text = text.trim_end_matches('0').trim_end_matches('.');
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole = thousands(whole.parse().unwrap_or(u64::MAX));
    if fraction.is_empty() {
        format!("{whole} {}", if whole == "1" { one } else { many })
    } else {
        format!("{whole}.{fraction} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::{count, noun, rate, thousands};
    use std::time::Duration;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(5234), "5,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn count_is_singular_for_one_only() {
        assert_eq!(count(0, "record", "records"), "0 records");
        assert_eq!(count(1, "record", "records"), "1 record");
        assert_eq!(count(2, "partition", "partitions"), "2 partitions");
        assert_eq!(count(1_000_000, "record", "records"), "1,000,000 records");
        assert_eq!(noun(1, "tick", "ticks"), "tick");
        assert_eq!(noun(10_000, "tick", "ticks"), "ticks");
    }

    #[test]
    fn a_fractional_rate_is_shown_as_typed() {
        // --rate 1.5 becomes one record every 666.666666ms.
        let every = Duration::from_secs_f64(1.0 / 1.5);
        let r = |per_second| rate(per_second, "record/s", "records/s");
        assert_eq!(r(1.0 / every.as_secs_f64()), "1.5 records/s");
        assert_eq!(r(1000.0), "1,000 records/s");
        assert_eq!(r(0.25), "0.25 records/s");
        assert_eq!(r(1.0), "1 record/s");
        assert_eq!(r(0.0), "0 records/s");
        assert_eq!(r(12_345.678), "12,345.68 records/s");
    }
}
