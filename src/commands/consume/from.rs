//! `--from`: where reading starts in each partition, as typed (a position, an offset, the
//! last N records, or a time) and, once the partition's offsets are known, as the offset to
//! start at. Pure: the wall clock and the broker's answers are passed in.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::admin::Offsets;
use crate::aggregate::bar::rfc3339;

/// Where to start, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The first record still there.
    Earliest,
    /// The end: only records written from now on (with --follow).
    Latest,
    /// This offset, in every partition read.
    Offset(i64),
    /// The last N records of each partition (`-N`).
    Last(i64),
    /// The first record at or after this time (Unix ms), per partition.
    At(i64),
    /// The first record at or after this long ago (`-10m`).
    Ago(Duration),
}

const FORMS: &str = "earliest, latest, an offset (1234), the last N records (-100), an \
    RFC 3339 time (2026-11-01T09:30:00Z) or a time ago (-10m, -2h)";

impl FromStr for Position {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        match s {
            "earliest" | "beginning" => return Ok(Position::Earliest),
            "latest" | "end" => return Ok(Position::Latest),
            _ => {}
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Position::Offset)
                .map_err(|_| format!("the offset `{s}` is too large"));
        }
        if let Some(back) = s.strip_prefix('-') {
            let back = back.trim();
            if !back.is_empty() && back.bytes().all(|b| b.is_ascii_digit()) {
                return match back.parse() {
                    Ok(n) if n > 0 => Ok(Position::Last(n)),
                    _ => Err(format!("`{s}`: the last N records needs N from 1 up")),
                };
            }
            return match humantime::parse_duration(back) {
                Ok(ago) => Ok(Position::Ago(ago)),
                Err(e) => Err(format!("`{s}` is not a time ago ({e}); expected {FORMS}")),
            };
        }
        match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => {
                let ms = t.unix_timestamp_nanos() / 1_000_000;
                i64::try_from(ms)
                    .ok()
                    .filter(|ms| *ms >= 0)
                    .map(Position::At)
                    .ok_or_else(|| format!("`{s}` is before 1970"))
            }
            Err(_) => Err(format!("`{s}` is not one of: {FORMS}")),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Earliest => f.write_str("the earliest offset"),
            Position::Latest => f.write_str("the end"),
            Position::Offset(o) => write!(f, "offset {o}"),
            Position::Last(n) => write!(f, "the last {n} records of each partition"),
            Position::At(ms) => write!(f, "{}", rfc3339(*ms)),
            Position::Ago(d) => write!(f, "{} ago", humantime::format_duration(*d)),
        }
    }
}

impl Position {
    /// The time to ask the broker about (Unix ms), for the forms that are times.
    pub fn time(self, now_ms: i64) -> Option<i64> {
        match self {
            Position::At(ms) => Some(ms),
            Position::Ago(d) => {
                let back = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                Some(now_ms.saturating_sub(back).max(0))
            }
            _ => None,
        }
    }
}

/// Where a partition starts, and what the user should hear about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub offset: i64,
    pub clamped: Option<Clamped>,
}

/// An offset asked for that the partition does not hold, and where reading starts instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clamped {
    /// Before the earliest record still there (deleted, or never written): the earliest.
    BeforeStart,
    /// Beyond the end: the end (nothing to read without --follow).
    BeyondEnd,
}

/// The offset to start a partition at, given its offsets when reading begins. `by_time`:
/// the broker's answer for a time (`None`: no record at or after it, so the end).
pub fn resolve(from: Position, offsets: Offsets, by_time: Option<i64>) -> Start {
    let start = |offset| Start {
        offset,
        clamped: None,
    };
    match from {
        Position::Earliest => start(offsets.earliest),
        Position::Latest => start(offsets.latest),
        Position::Last(n) => start(offsets.latest.saturating_sub(n).max(offsets.earliest)),
        Position::At(_) | Position::Ago(_) => start(
            by_time
                .unwrap_or(offsets.latest)
                .clamp(offsets.earliest, offsets.latest),
        ),
        Position::Offset(o) if o < offsets.earliest => Start {
            offset: offsets.earliest,
            clamped: Some(Clamped::BeforeStart),
        },
        Position::Offset(o) if o > offsets.latest => Start {
            offset: offsets.latest,
            clamped: Some(Clamped::BeyondEnd),
        },
        Position::Offset(o) => start(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Position {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_form_parses() {
        assert_eq!(parse("earliest"), Position::Earliest);
        assert_eq!(parse("beginning"), Position::Earliest);
        assert_eq!(parse("latest"), Position::Latest);
        assert_eq!(parse("end"), Position::Latest);
        assert_eq!(parse("0"), Position::Offset(0));
        assert_eq!(parse("1234"), Position::Offset(1234));
        assert_eq!(parse("-100"), Position::Last(100));
        assert_eq!(parse("-10m"), Position::Ago(Duration::from_secs(600)));
        assert_eq!(parse("-1h30m"), Position::Ago(Duration::from_secs(5400)));
        assert_eq!(
            parse("2026-01-01T00:00:00Z"),
            Position::At(1_767_225_600_000)
        );
        assert_eq!(
            parse("2026-01-01T01:00:00.250+01:00"),
            Position::At(1_767_225_600_250)
        );
    }

    #[test]
    fn anything_else_says_which_forms_there_are() {
        for bad in [
            "",
            "soon",
            "-",
            "-0",
            "-10parsecs",
            "2026-13-01T00:00:00Z",
            "1.5",
        ] {
            let err = bad.parse::<Position>().unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!("soon".parse::<Position>().unwrap_err().contains("RFC 3339"));
        assert!("99999999999999999999"
            .parse::<Position>()
            .unwrap_err()
            .contains("too large"));
        assert!("1969-12-31T23:59:59Z"
            .parse::<Position>()
            .unwrap_err()
            .contains("1970"));
    }

    #[test]
    fn a_time_ago_is_counted_back_from_the_clock_passed_in() {
        assert_eq!(parse("-10m").time(1_000_000), Some(400_000));
        assert_eq!(parse("-10m").time(1_000), Some(0), "not before 1970");
        assert_eq!(
            parse("2026-01-01T00:00:00Z").time(5),
            Some(1_767_225_600_000)
        );
        assert_eq!(parse("earliest").time(5), None);
        assert_eq!(parse("-5").time(5), None, "the last 5 records, not a time");
    }

    const OFFSETS: Offsets = Offsets {
        earliest: 10,
        latest: 50,
    };

    fn at(from: Position, by_time: Option<i64>) -> (i64, Option<Clamped>) {
        let s = resolve(from, OFFSETS, by_time);
        (s.offset, s.clamped)
    }

    #[test]
    fn positions_offsets_and_counts_resolve_within_the_partition() {
        assert_eq!(at(Position::Earliest, None), (10, None));
        assert_eq!(at(Position::Latest, None), (50, None));
        assert_eq!(at(Position::Offset(20), None), (20, None));
        assert_eq!(
            at(Position::Offset(50), None),
            (50, None),
            "the end is no clamp"
        );
        assert_eq!(at(Position::Last(5), None), (45, None));
        assert_eq!(
            at(Position::Last(500), None),
            (10, None),
            "at most all of it"
        );
    }

    #[test]
    fn an_offset_outside_the_partition_is_clamped_and_said() {
        assert_eq!(
            at(Position::Offset(3), None),
            (10, Some(Clamped::BeforeStart))
        );
        assert_eq!(
            at(Position::Offset(70), None),
            (50, Some(Clamped::BeyondEnd))
        );
    }

    #[test]
    fn a_time_starts_at_the_broker_s_answer_or_the_end() {
        assert_eq!(at(Position::At(1), Some(30)), (30, None));
        assert_eq!(
            at(Position::At(1), None),
            (50, None),
            "nothing that late: the end"
        );
        assert_eq!(at(Position::Ago(Duration::ZERO), Some(5)), (10, None));
    }
}
