//! A topic name checked against Kafka's own rules before any broker is contacted, so a typo
//! is a usage error, not a round trip and a broker error.

use std::fmt;
use std::str::FromStr;

/// 1 to 249 characters of `[a-zA-Z0-9._-]`, and neither `.` nor `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicName(String);

impl TopicName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TopicName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("a topic name cannot be empty".into());
        }
        if s == "." || s == ".." {
            return Err(format!("`{s}` is not a valid topic name"));
        }
        if s.len() > 249 {
            return Err(format!(
                "a topic name has at most 249 characters; this one has {}",
                s.len()
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!(
                "`{s}` contains {bad:?}; topic names may only use letters, digits, `.`, `_` and `-`"
            ));
        }
        Ok(TopicName(s.to_string()))
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kafkas_alphabet() {
        for ok in [
            "stock_prices",
            "a",
            "A.b-c_9",
            &"x".repeat(249),
            "stock_prices.dlq",
        ] {
            assert!(ok.parse::<TopicName>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_kafka_rejects() {
        for bad in [
            "",
            ".",
            "..",
            "has space",
            "slash/y",
            "ümlaut",
            &"x".repeat(250),
        ] {
            assert!(bad.parse::<TopicName>().is_err(), "{bad}");
        }
    }
}
