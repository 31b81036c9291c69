//! `group reset`'s plan, worked out with no I/O: where each partition's committed offset
//! goes for the target chosen, kept within what the partition holds, and the times
//! `--to-time` takes. Tested with plain numbers.

use std::time::Duration;

use serde::Serialize;

use crate::admin::Offsets;

/// Where to move the committed offsets (exactly one of the `--to-*` / `--shift-by` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Earliest,
    Latest,
    Offset(i64),
    /// The first record at or after this time (Unix ms).
    Time(i64),
    ShiftBy(i64),
}

/// A time as typed for `--to-time`: a moment, or a span before now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Unix ms.
    At(i64),
    Ago(Duration),
}

impl When {
    /// Unix ms, `now_ms` being the wall clock.
    pub fn resolve(self, now_ms: i64) -> i64 {
        match self {
            When::At(ms) => ms,
            When::Ago(span) => {
                now_ms.saturating_sub(i64::try_from(span.as_millis()).unwrap_or(i64::MAX))
            }
        }
    }
}

/// `--to-time`: RFC 3339 (`2026-01-01T09:30:00Z`, `2026-01-01T09:30:00+01:00`) or a span
/// before now with a minus sign (`-1h`, `-15m`, `-2days`).
pub fn parse_when(text: &str) -> Result<When, String> {
    const EXPECTED: &str =
        "expected an RFC 3339 time (2026-01-01T09:30:00Z) or a span before now (-1h, -30m)";
    let text = text.trim();
    if let Some(span) = text.strip_prefix('-') {
        return humantime::parse_duration(span.trim())
            .map(When::Ago)
            .map_err(|e| format!("`{text}`: {e} ({EXPECTED})"));
    }
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("`{text}`: {e} ({EXPECTED})"))?;
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms)
        .map(When::At)
        .map_err(|_| format!("`{text}`: out of range"))
}

/// One partition's move, as shown and as committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Move {
    pub partition: i32,
    /// The committed offset now; `None` where the group has committed nothing.
    pub from: Option<i64>,
    pub to: i64,
}

/// What is known of one partition when planning.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub partition: i32,
    pub bounds: Offsets,
    pub committed: Option<i64>,
    /// For `Target::Time`: the broker's answer for the time (`None`: no record that
    /// recent, so the end).
    pub at_time: Option<i64>,
}

/// Where each partition goes. Every destination is kept within [earliest, end]: an offset
/// past the end would make a consumer reset by its own rule, one before the earliest record
/// points at deleted data. `--shift-by` needs a committed offset to shift: the partitions
/// without one are named in the error.
pub fn plan(target: Target, partitions: &[Now]) -> Result<Vec<Move>, String> {
    if let Target::ShiftBy(_) = target {
        let without: Vec<String> = partitions
            .iter()
            .filter(|p| p.committed.is_none())
            .map(|p| p.partition.to_string())
            .collect();
        if !without.is_empty() {
            return Err(format!(
                "--shift-by moves a committed offset, and the group has none on partition {}; \
                 use --to-earliest, --to-latest, --to-offset or --to-time there",
                without.join(", ")
            ));
        }
    }
    Ok(partitions
        .iter()
        .map(|p| Move {
            partition: p.partition,
            from: p.committed,
            to: destination(target, p),
        })
        .collect())
}

fn destination(target: Target, p: &Now) -> i64 {
    let Offsets { earliest, latest } = p.bounds;
    let wanted = match target {
        Target::Earliest => earliest,
        Target::Latest => latest,
        Target::Offset(o) => o,
        Target::Time(_) => p.at_time.unwrap_or(latest),
        Target::ShiftBy(n) => p.committed.unwrap_or(earliest).saturating_add(n),
    };
    wanted.clamp(earliest, latest.max(earliest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(partition: i32, earliest: i64, latest: i64, committed: Option<i64>) -> Now {
        Now {
            partition,
            bounds: Offsets { earliest, latest },
            committed,
            at_time: None,
        }
    }

    fn tos(target: Target, partitions: &[Now]) -> Vec<i64> {
        plan(target, partitions)
            .unwrap()
            .iter()
            .map(|m| m.to)
            .collect()
    }

    #[test]
    fn earliest_and_latest_are_the_partition_s_own_ends() {
        let ps = [now(0, 0, 10, Some(5)), now(1, 3, 7, None)];
        assert_eq!(tos(Target::Earliest, &ps), [0, 3]);
        assert_eq!(tos(Target::Latest, &ps), [10, 7]);
        let moves = plan(Target::Latest, &ps).unwrap();
        assert_eq!(
            moves[1],
            Move {
                partition: 1,
                from: None,
                to: 7
            },
            "a partition never read plans from none"
        );
    }

    #[test]
    fn an_offset_or_a_shift_outside_the_partition_is_clamped_to_it() {
        let ps = [now(0, 100, 200, Some(150)), now(1, 0, 50, Some(40))];
        assert_eq!(tos(Target::Offset(120), &ps), [120, 50]);
        assert_eq!(tos(Target::Offset(0), &ps), [100, 0]);
        assert_eq!(tos(Target::ShiftBy(-60), &ps), [100, 0]);
        assert_eq!(tos(Target::ShiftBy(20), &ps), [170, 50]);
        assert_eq!(tos(Target::ShiftBy(i64::MAX), &ps), [200, 50]);
        assert_eq!(tos(Target::ShiftBy(i64::MIN), &ps), [100, 0]);
    }

    #[test]
    fn a_time_past_the_last_record_is_the_end() {
        let mut p = now(0, 0, 10, Some(2));
        assert_eq!(tos(Target::Time(5), &[p]), [10]);
        p.at_time = Some(4);
        assert_eq!(tos(Target::Time(5), &[p]), [4]);
    }

    #[test]
    fn an_empty_partition_stays_where_it_is() {
        let ps = [now(0, 7, 7, Some(7))];
        for t in [
            Target::Earliest,
            Target::Latest,
            Target::Offset(3),
            Target::ShiftBy(-1),
            Target::Time(0),
        ] {
            assert_eq!(tos(t, &ps), [7], "{t:?}");
        }
    }

    #[test]
    fn shifting_needs_a_committed_offset_and_names_the_partitions_without() {
        let ps = [
            now(0, 0, 10, Some(5)),
            now(1, 0, 10, None),
            now(2, 0, 3, None),
        ];
        let err = plan(Target::ShiftBy(1), &ps).unwrap_err();
        assert!(err.contains("partition 1, 2"), "{err}");
    }

    #[test]
    fn times_are_rfc_3339_or_a_span_before_now() {
        assert_eq!(
            parse_when("2026-01-01T00:00:00Z"),
            Ok(When::At(1_767_225_600_000))
        );
        assert_eq!(
            parse_when("2026-01-01T01:00:00.250+01:00"),
            Ok(When::At(1_767_225_600_250))
        );
        assert_eq!(parse_when("-1h"), Ok(When::Ago(Duration::from_secs(3600))));
        assert_eq!(parse_when("-1h").unwrap().resolve(10_000_000), 6_400_000);
        assert_eq!(parse_when("-90s").unwrap().resolve(100_000), 10_000);
        for bad in [
            "yesterday",
            "2026-01-01",
            "1h",
            "-",
            "-soon",
            "2026-13-01T00:00:00Z",
        ] {
            let err = parse_when(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
    }
}
