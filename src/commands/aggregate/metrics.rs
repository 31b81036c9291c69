//! `aggregate`'s Prometheus metrics (`--metrics-addr`). The pipeline keeps its totals for the
//! summary and progress lines already; every `PUBLISH_EVERY` the job loop copies them here,
//! so a record costs nothing more than it did. Only a commit's duration is recorded as it
//! happens (a few a second at most).

use std::time::Instant;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use rdkafka::consumer::BaseConsumer;

use super::context::JobContext;
use super::pipeline::Snapshot;
use crate::metrics::{Buckets, Lag, PUBLISH_EVERY};

pub const RECORDS_READ: &str = "stockstream_aggregate_records_read_total";
pub const RECORDS_AGGREGATED: &str = "stockstream_aggregate_records_aggregated_total";
pub const RECORDS_LATE: &str = "stockstream_aggregate_records_late_total";
pub const RECORDS_REPLAYED: &str = "stockstream_aggregate_records_replayed_total";
pub const DEAD_LETTERS: &str = "stockstream_aggregate_dead_letters_total";
pub const BARS_EMITTED: &str = "stockstream_aggregate_bars_emitted_total";
pub const OPEN_WINDOWS: &str = "stockstream_aggregate_open_windows";
pub const WATERMARK: &str = "stockstream_aggregate_watermark_seconds";
pub const WATERMARK_DELAY: &str = "stockstream_aggregate_watermark_delay_seconds";
pub const CONSUMER_LAG: &str = "stockstream_aggregate_consumer_lag_records";
pub const COMMIT_DURATION: &str = "stockstream_aggregate_commit_duration_seconds";
pub const TRANSACTIONS: &str = "stockstream_aggregate_transactions_total";
pub const REBALANCES: &str = "stockstream_aggregate_rebalances_total";

/// A commit takes a round trip or more: from a millisecond on a quiet local broker to the
/// --timeout (30 s by default) on a troubled one.
pub const HISTOGRAMS: &[Buckets] = &[Buckets {
    name: COMMIT_DURATION,
    bounds: &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ],
}];

/// Publishes the job's totals at most every `PUBLISH_EVERY`.
pub struct Publisher {
    next: Instant,
    lag: Lag,
}

impl Publisher {
    pub fn new(topic: &str, now: Instant) -> Self {
        describe();
        Publisher {
            next: now,
            lag: Lag::new(CONSUMER_LAG, topic),
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    pub fn publish(&mut self, consumer: &BaseConsumer<JobContext>, s: &Snapshot, now: Instant) {
        self.next = now + PUBLISH_EVERY;
        let c = &s.counters;
        counter!(RECORDS_READ).absolute(c.input);
        counter!(RECORDS_AGGREGATED).absolute(c.processed);
        counter!(RECORDS_LATE).absolute(c.late);
        counter!(RECORDS_REPLAYED).absolute(c.replayed);
        counter!(BARS_EMITTED).absolute(c.bars);
        for (reason, n) in &s.dead_letters {
            counter!(DEAD_LETTERS, "reason" => *reason).absolute(*n);
        }
        counter!(TRANSACTIONS, "outcome" => "committed").absolute(s.transactions_committed);
        counter!(TRANSACTIONS, "outcome" => "aborted").absolute(s.transactions_aborted);
        counter!(REBALANCES, "event" => "assigned").absolute(c.assigned);
        counter!(REBALANCES, "event" => "revoked").absolute(c.revoked);
        gauge!(OPEN_WINDOWS).set(s.open_windows as f64);
        let wall = crate::record::now_millis();
        for (partition, watermark) in &s.watermarks {
            let Some(w) = watermark else { continue };
            let p = partition.to_string();
            gauge!(WATERMARK, "partition" => p.clone()).set(*w as f64 / 1000.0);
            gauge!(WATERMARK_DELAY, "partition" => p).set((wall - w) as f64 / 1000.0);
        }
        self.lag.publish(consumer);
    }
}

/// Help text and units, shown on /metrics.
fn describe() {
    let counters = [
        (RECORDS_READ, "Input records read (not counting those re-read to rebuild open windows)"),
        (RECORDS_AGGREGATED, "Valid ticks added to their windows"),
        (RECORDS_LATE, "Valid ticks whose windows were all final already (dead-lettered as `late` unless --late drop)"),
        (RECORDS_REPLAYED, "Records re-read after a start or a rebalance to rebuild open windows, not emitted again"),
        (DEAD_LETTERS, "Records written to the dead-letter topic, by reason"),
        (BARS_EMITTED, "Final bars sent to the output topic"),
        (TRANSACTIONS, "Transactions ended (exactly-once), by outcome: committed or aborted"),
        (REBALANCES, "Consumer group rebalances seen by this instance: partitions assigned or revoked"),
    ];
    for (name, help) in counters {
        describe_counter!(name, Unit::Count, help);
    }
    describe_gauge!(
        OPEN_WINDOWS,
        Unit::Count,
        "Windows open in memory, all partitions"
    );
    describe_gauge!(
        WATERMARK,
        Unit::Seconds,
        "Each partition's watermark, as Unix time"
    );
    describe_gauge!(
        WATERMARK_DELAY,
        Unit::Seconds,
        "How far each partition's watermark is behind the wall clock"
    );
    describe_gauge!(CONSUMER_LAG, Unit::Count, "Records in each partition not read yet (its end as of the last fetch, minus the job's position)");
    describe_histogram!(COMMIT_DURATION, Unit::Seconds, "How long a commit took (a transaction, or a flush and an offset commit), from its start to its end");
}
