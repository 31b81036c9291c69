//! `store`'s Prometheus metrics (`--metrics-addr`). The writer keeps its totals for the
//! progress lines and the summary (`Counts`); every `PUBLISH_EVERY` the read loop copies them
//! here, and once more after the last write, so a bar costs nothing more than it did. A
//! transaction's duration goes into its histogram as the transaction settles.

use std::time::{Duration, Instant};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, histogram, Unit};
use rdkafka::consumer::{BaseConsumer, ConsumerContext};

use super::counts::Counts;
use crate::metrics::{Buckets, Lag, PUBLISH_EVERY};

pub const RECORDS_READ: &str = "stockstream_store_records_read_total";
pub const BARS_WRITTEN: &str = "stockstream_store_bars_written_total";
pub const FINAL_BARS_WRITTEN: &str = "stockstream_store_final_bars_written_total";
pub const DEAD_LETTERS: &str = "stockstream_store_dead_letters_total";
pub const TRANSACTIONS: &str = "stockstream_store_transactions_total";
pub const TRANSACTION_DURATION: &str = "stockstream_store_transaction_duration_seconds";
pub const TAKEOVERS: &str = "stockstream_store_takeovers_total";
pub const CONSUMER_LAG: &str = "stockstream_store_consumer_lag_records";

/// A transaction takes from a millisecond on a quiet local database to the
/// --postgres-patience (60 s by default) while PostgreSQL is away.
pub const HISTOGRAMS: &[Buckets] = &[Buckets {
    name: TRANSACTION_DURATION,
    bounds: &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ],
}];

/// Publishes the job's totals at most every `PUBLISH_EVERY`.
pub struct Publisher {
    next: Instant,
    lag: Lag,
}

impl Publisher {
    pub fn new(topic: &str) -> Self {
        describe();
        // There from the start: a takeover is rare, and a series that appears at 1 hides its
        // first increase from `increase()`.
        counter!(TAKEOVERS).absolute(0);
        Publisher {
            next: Instant::now(),
            lag: Lag::new(CONSUMER_LAG, topic),
        }
    }

    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// The totals, and the lag of the partitions `consumer` owns.
    pub fn publish<C: ConsumerContext>(&mut self, counts: &Counts, consumer: &BaseConsumer<C>) {
        self.publish_counts(counts);
        self.lag.publish(consumer);
    }

    /// The totals alone (after the last write, the consumer gone).
    pub fn publish_counts(&mut self, counts: &Counts) {
        self.next = Instant::now() + PUBLISH_EVERY;
        counter!(RECORDS_READ).absolute(counts.read);
        counter!(BARS_WRITTEN).absolute(counts.bars_written);
        counter!(FINAL_BARS_WRITTEN).absolute(counts.finals_written);
        counter!(TRANSACTIONS).absolute(counts.transactions);
        counter!(TAKEOVERS).absolute(counts.takeovers);
        for (reason, n) in &counts.dead_letters_by_reason {
            counter!(DEAD_LETTERS, "reason" => *reason).absolute(*n);
        }
    }
}

/// Records how long a transaction took (a few a second at most: not the per-bar path).
pub fn transaction_took(took: Duration) {
    histogram!(TRANSACTION_DURATION).record(took.as_secs_f64());
}

/// Help text and units, shown on /metrics.
fn describe() {
    let counters = [
        (RECORDS_READ, "Records read from the bars topic, bars and not"),
        (BARS_WRITTEN, "Bars written to PostgreSQL (a revision replaced by a later one in the same batch is not counted)"),
        (FINAL_BARS_WRITTEN, "Final bars written to PostgreSQL"),
        (DEAD_LETTERS, "Records that are not bars, sent to the dead-letter topic, by reason"),
        (TRANSACTIONS, "PostgreSQL transactions committed, each a batch of bars with the offsets they were read up to"),
        (TAKEOVERS, "Writes refused because another instance had moved the stored offsets (it took the partitions over): nothing of the batch was written, and reading went on from the database"),
    ];
    for (name, help) in counters {
        describe_counter!(name, Unit::Count, help);
    }
    describe_gauge!(CONSUMER_LAG, Unit::Count, "Records in each partition not read yet (its end as of the last fetch, minus the job's position)");
    describe_histogram!(
        TRANSACTION_DURATION,
        Unit::Seconds,
        "How long a write took: one transaction, from its start to its commit, waits for PostgreSQL to come back included"
    );
}
