//! Backfills: generated ticks dated from a chosen start time at a chosen event-time rate,
//! whatever the sending pace, so that history (hours of event time) loads as fast as the
//! broker takes it. Pure: the caller passes the wall clock in.

use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::aggregate::bar::rfc3339;
use crate::numbers::{self, rate};
use crate::record::event_millis;

/// `--start`: an RFC 3339 time, kept as Unix seconds (the wire format's event time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Start(f64);

impl FromStr for Start {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|e| {
            format!("expected an RFC 3339 time such as 2026-11-01T09:30:00Z; got `{s}` ({e})")
        })?;
        let seconds = t.unix_timestamp() as f64 + f64::from(t.nanosecond()) / 1e9;
        if seconds <= 0.0 {
            return Err(format!(
                "must be after 1970-01-01T00:00:00Z (event times are positive Unix seconds); got `{s}`"
            ));
        }
        Ok(Start(seconds))
    }
}

/// `--event-rate`: ticks per second of event time, `500/s` or plain `500`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventRate(f64);

impl FromStr for EventRate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = s.trim().strip_suffix("/s").unwrap_or(s.trim());
        match number.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 && n <= 1e9 => Ok(EventRate(n)),
            _ => Err(format!(
                "expected ticks per second of event time above 0, such as 500/s; got `{s}`"
            )),
        }
    }
}

/// When each generated tick happened: tick `k` (0, 1, 2, … over all symbols) at
/// `start + k / rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backfill {
    start: f64,
    rate: f64,
}

impl Backfill {
    pub fn new(start: Start, rate: EventRate) -> Self {
        Backfill {
            start: start.0,
            rate: rate.0,
        }
    }

    /// The event time of tick `k`, Unix seconds. Computed from the start each time, so that
    /// no rounding error builds up over millions of ticks.
    pub fn at(&self, k: u64) -> f64 {
        self.start + k as f64 / self.rate
    }

    /// How a backfill is described at start: "event time from … at 500 ticks/s".
    pub fn describe(&self) -> String {
        format!(
            "event time from {} at {}",
            rfc3339(event_millis(self.start)),
            rate(self.rate, "tick/s", "ticks/s")
        )
    }

    /// Why tick `k` must not be sent at `now_ms`, if it must not: it would be dated after the
    /// wall clock. A backfill loads history; a tick dated ahead of its send time (its Kafka
    /// timestamp) is one that `aggregate` dead-letters as `future` past a minute.
    pub fn in_the_future(&self, k: u64, now_ms: i64) -> Option<String> {
        let at_ms = event_millis(self.at(k));
        (at_ms > now_ms).then(|| {
            format!(
                "would be dated {}, {} after the wall clock (a backfill loads history: no tick is \
                 dated after the moment it is sent)",
                rfc3339(at_ms),
                span(at_ms - now_ms),
            )
        })
    }

    /// Checks a run of `count` ticks (all of them when the count is known, else the first)
    /// against the wall clock; the error names the flags to change.
    pub fn check(&self, count: Option<u64>, now_ms: i64) -> Result<(), String> {
        if let Some(why) = self.in_the_future(0, now_ms) {
            return Err(format!("the first tick {why}; choose an earlier --start"));
        }
        match count {
            Some(n) => match self.in_the_future(n.saturating_sub(1), now_ms) {
                Some(why) => Err(format!(
                    "the last of the --count {n} {} {why}; choose an earlier --start, a higher \
                     --event-rate or a lower --count",
                    numbers::noun(n, "tick", "ticks")
                )),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }
}

/// "1h 2m 3s": a span in whole seconds, for people.
fn span(ms: i64) -> String {
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_1: f64 = 1_793_525_400.0; // 2026-11-01T09:30:00Z

    fn backfill(start: &str, rate: &str) -> Backfill {
        Backfill::new(start.parse().unwrap(), rate.parse().unwrap())
    }

    #[test]
    fn start_takes_rfc3339_with_any_offset() {
        assert_eq!("2026-11-01T09:30:00Z".parse(), Ok(Start(NOV_1)));
        assert_eq!("2026-11-01T10:30:00+01:00".parse(), Ok(Start(NOV_1)));
        assert_eq!("2026-11-01T09:30:00.250Z".parse(), Ok(Start(NOV_1 + 0.25)));
    }

    #[test]
    fn a_bad_start_shows_an_example() {
        for bad in [
            "2026-11-01",
            "09:30",
            "yesterday",
            "2026-11-01 09:30:00",
            "",
        ] {
            let e = bad.parse::<Start>().unwrap_err();
            assert!(e.contains("such as 2026-11-01T09:30:00Z"), "{bad}: {e}");
        }
        let e = "1969-12-31T23:59:59Z".parse::<Start>().unwrap_err();
        assert!(e.contains("after 1970"), "{e}");
    }

    #[test]
    fn event_rate_takes_per_second_or_a_plain_number() {
        assert_eq!("500/s".parse(), Ok(EventRate(500.0)));
        assert_eq!("500".parse(), Ok(EventRate(500.0)));
        assert_eq!("0.5/s".parse(), Ok(EventRate(0.5)));
        for bad in [
            "0", "0/s", "-5/s", "500/m", "/s", "fast", "inf", "NaN/s", "1e10",
        ] {
            let e = bad.parse::<EventRate>().unwrap_err();
            assert!(e.contains("such as 500/s"), "{bad}: {e}");
        }
    }

    #[test]
    fn ticks_are_spread_from_the_start_at_the_event_rate() {
        let b = backfill("2026-11-01T09:30:00Z", "500/s");
        assert_eq!(b.at(0), NOV_1);
        assert_eq!(event_millis(b.at(1)) - event_millis(b.at(0)), 2);
        // 5,000,000 ticks at 500 a second cover 10,000 s, without drift.
        assert_eq!(
            event_millis(b.at(5_000_000)),
            event_millis(NOV_1 + 10_000.0)
        );
        assert_eq!(
            b.describe(),
            "event time from 2026-11-01T09:30:00Z at 500 ticks/s"
        );
    }

    #[test]
    fn a_run_ending_in_the_past_passes() {
        let b = backfill("2026-11-01T09:30:00Z", "500/s");
        let now_ms = event_millis(NOV_1 + 10_000.0);
        assert_eq!(b.check(Some(5_000_001), now_ms), Ok(()));
        assert_eq!(b.check(None, now_ms), Ok(()));
    }

    #[test]
    fn the_wall_clock_is_the_limit() {
        let b = backfill("2026-11-01T09:30:00Z", "1/s");
        let now_ms = event_millis(NOV_1 + 60.0);
        assert_eq!(b.in_the_future(60, now_ms), None);
        let why = b.in_the_future(61, now_ms).unwrap();
        assert!(
            why.contains("2026-11-01T09:31:01Z, 1s after the wall clock"),
            "{why}"
        );
    }

    #[test]
    fn a_start_in_the_future_is_refused_naming_the_flag() {
        let b = backfill("2026-11-01T09:30:00Z", "500/s");
        let e = b.check(None, event_millis(NOV_1 - 3600.0)).unwrap_err();
        assert!(e.contains("first tick") && e.contains("--start"), "{e}");
        assert!(e.contains("1h after the wall clock"), "{e}");
    }

    #[test]
    fn a_count_reaching_the_future_is_refused_naming_the_flags() {
        let b = backfill("2026-11-01T09:30:00Z", "500/s");
        // Now is 1,000 s after the start: 500,000 ticks reach it, 5,000,000 go far beyond.
        let now_ms = event_millis(NOV_1 + 1_000.0);
        assert_eq!(b.check(Some(500_000), now_ms), Ok(()));
        let e = b.check(Some(5_000_000), now_ms).unwrap_err();
        assert!(e.contains("--count 5000000"), "{e}");
        assert!(e.contains("--event-rate") && e.contains("--start"), "{e}");
    }
}
