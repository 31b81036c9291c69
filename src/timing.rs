//! How long commits take, for the summary lines of the jobs that commit (aggregate's
//! transactions, store's database transactions), in a fixed amount of memory however long
//! the job runs: under exactly-once the commit is what a bar waits for before anyone can
//! read it, so its duration is the job's latency floor.

use std::time::Duration;

use crate::numbers::count;

/// Commit durations in 1 ms steps up to ten seconds, and the longest.
#[derive(Clone)]
pub struct CommitTimes {
    /// `buckets[i]`: commits that took i ms (the last: ten seconds or more).
    buckets: Vec<u64>,
    count: u64,
    longest: Duration,
}

impl Default for CommitTimes {
    fn default() -> Self {
        CommitTimes {
            buckets: vec![0; 10_001],
            count: 0,
            longest: Duration::ZERO,
        }
    }
}

impl std::fmt::Debug for CommitTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl CommitTimes {
    pub fn record(&mut self, took: Duration) {
        let ms = usize::try_from(took.as_millis()).unwrap_or(usize::MAX);
        let last = self.buckets.len() - 1;
        self.buckets[ms.min(last)] += 1;
        self.count += 1;
        self.longest = self.longest.max(took);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The duration (whole ms; ten seconds at most) that a fraction `q` of commits took at
    /// most.
    pub fn quantile(&self, q: f64) -> u64 {
        // The rank of the commit at quantile q, 1-based: ceil(q × count).
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return ms as u64;
            }
        }
        (self.buckets.len() - 1) as u64
    }

    /// "412 commits, median 23 ms, p99 61 ms, longest 80 ms", or "no commits".
    pub fn describe(&self) -> String {
        if self.count == 0 {
            return "no commits".to_string();
        }
        format!(
            "{}, median {} ms, p99 {} ms, longest {} ms",
            count(self.count, "commit", "commits"),
            self.quantile(0.5),
            self.quantile(0.99),
            self.longest.as_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_recorded_durations() {
        let mut t = CommitTimes::default();
        assert_eq!(t.describe(), "no commits");
        for ms in 1..=100 {
            t.record(Duration::from_millis(ms));
        }
        t.record(Duration::from_secs(3));
        assert_eq!(t.quantile(0.5), 51);
        assert_eq!(t.quantile(0.99), 100);
        assert_eq!(
            t.describe(),
            "101 commits, median 51 ms, p99 100 ms, longest 3000 ms"
        );
    }
}
