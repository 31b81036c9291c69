//! When the next record is due: a fixed interval (one per second by default) or as fast as
//! the broker takes them. Pure: the caller passes the clock in.

use std::time::{Duration, Instant};

/// How fast to produce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// One record per interval.
    Every(Duration),
    /// As fast as the broker accepts them.
    Max,
}

impl Pace {
    /// At or below this rate every delivered record gets its own log line.
    const HUMAN_INTERVAL: Duration = Duration::from_millis(50);

    /// Whether each record is worth a log line of its own (at most 20 a second).
    pub fn is_human(self) -> bool {
        matches!(self, Pace::Every(d) if d >= Self::HUMAN_INTERVAL)
    }
}

/// Keeps the long-run rate exact: record `n` is due at `start + n × interval`, so a slow
/// send does not push every later record back.
#[derive(Debug)]
pub struct Pacer {
    pace: Pace,
    start: Instant,
    sent: u64,
}

impl Pacer {
    pub fn new(pace: Pace, start: Instant) -> Self {
        Pacer {
            pace,
            start,
            sent: 0,
        }
    }

    /// `None` when a record is due now, else how long until the next one is. A record due
    /// in less than a millisecond counts as due: waits are served in whole milliseconds
    /// (librdkafka's poll), and waiting for less would spin; the schedule, not the last
    /// send, keeps the long-run rate exact.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        match self.pace {
            Pace::Max => None,
            Pace::Every(interval) => {
                let due = self.start + mul(interval, self.sent);
                due.checked_duration_since(now)
                    .filter(|d| *d >= Duration::from_millis(1))
            }
        }
    }

    /// Notes that one more record went out.
    pub fn sent_one(&mut self) {
        self.sent += 1;
    }
}

fn mul(d: Duration, n: u64) -> Duration {
    // Nanosecond arithmetic in u128 cannot overflow for any realistic run length.
    let nanos = d.as_nanos().saturating_mul(u128::from(n));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_record_is_due_at_once() {
        let t0 = Instant::now();
        let p = Pacer::new(Pace::Every(Duration::from_secs(1)), t0);
        assert_eq!(p.wait(t0), None);
    }

    #[test]
    fn later_records_follow_the_schedule_not_the_last_send() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Pace::Every(Duration::from_millis(100)), t0);
        p.sent_one();
        assert_eq!(p.wait(t0), Some(Duration::from_millis(100)));
        assert_eq!(
            p.wait(t0 + Duration::from_millis(40)),
            Some(Duration::from_millis(60))
        );
        // Running late: due at once, and catches up.
        p.sent_one();
        assert_eq!(p.wait(t0 + Duration::from_millis(250)), None);
    }

    #[test]
    fn high_rates_send_in_bursts_instead_of_spinning() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Pace::Every(Duration::from_micros(50)), t0);
        let mut burst = 0;
        while p.wait(t0).is_none() {
            p.sent_one();
            burst += 1;
        }
        // At 20,000 a second, the 20 records due within the first millisecond go at once.
        assert_eq!(burst, 20);
        assert!(p.wait(t0) >= Some(Duration::from_millis(1)));
    }

    #[test]
    fn max_never_waits() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Pace::Max, t0);
        for _ in 0..10 {
            p.sent_one();
            assert_eq!(p.wait(t0), None);
        }
    }

    #[test]
    fn human_pace_is_twenty_a_second_or_slower() {
        assert!(Pace::Every(Duration::from_secs(1)).is_human());
        assert!(Pace::Every(Duration::from_millis(50)).is_human());
        assert!(!Pace::Every(Duration::from_millis(10)).is_human());
        assert!(!Pace::Max.is_human());
    }
}
