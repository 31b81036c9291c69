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
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::{count, thousands};

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
    }
}
