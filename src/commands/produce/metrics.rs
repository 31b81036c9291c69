//! `produce`'s Prometheus metrics (`--metrics-addr`). The send loop and the delivery reports
//! count for the status and the summary already; every `PUBLISH_EVERY` the loop copies those
//! totals here. Only a failure (counted by its reason) and, with metrics on, the latency of
//! one delivery in `deliveries::TIMED_EVERY` (each at a human pace) are recorded as they happen.

use std::time::Instant;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use rdkafka::error::KafkaError;

use super::deliveries::Deliveries;
use crate::metrics::{Buckets, PUBLISH_EVERY};

pub const RECORDS_GENERATED: &str = "stockstream_produce_records_generated_total";
pub const RECORDS_DELIVERED: &str = "stockstream_produce_records_delivered_total";
pub const RECORDS_FAILED: &str = "stockstream_produce_records_failed_total";
pub const RECORDS_IN_FLIGHT: &str = "stockstream_produce_records_in_flight";
pub const DELIVERY_LATENCY: &str = "stockstream_produce_delivery_latency_seconds";

/// From a loopback broker's millisecond to --delivery-timeout (2 minutes by default).
pub const HISTOGRAMS: &[Buckets] = &[Buckets {
    name: DELIVERY_LATENCY,
    bounds: &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
    ],
}];

/// Publishes the run's totals at most every `PUBLISH_EVERY`.
pub struct Publisher {
    next: Instant,
}

impl Publisher {
    pub fn new(now: Instant) -> Self {
        describe();
        Publisher { next: now }
    }

    /// Publishes when due; cheap enough to call every few hundred records.
    pub fn update(&mut self, generated: u64, deliveries: &Deliveries) {
        let now = Instant::now();
        if now >= self.next {
            self.next = now + PUBLISH_EVERY;
            publish(generated, deliveries);
        }
    }
}

/// Sets every total now (at the end of a run, too).
pub fn publish(generated: u64, deliveries: &Deliveries) {
    let (delivered, failed) = (deliveries.delivered(), deliveries.failed());
    counter!(RECORDS_GENERATED).absolute(generated);
    counter!(RECORDS_DELIVERED).absolute(delivered);
    gauge!(RECORDS_IN_FLIGHT).set(generated.saturating_sub(delivered + failed) as f64);
}

/// Counts a record that failed, by the cause librdkafka gave: its error code in snake case
/// (`message_timed_out`, `purge_queue`, …), a small fixed set.
pub fn failed(err: &KafkaError) {
    let reason = err.rdkafka_error_code().map_or_else(
        || "other".to_string(),
        |code| snake_case(&format!("{code:?}")),
    );
    counter!(RECORDS_FAILED, "reason" => reason).increment(1);
}

/// `MessageTimedOut` → `message_timed_out`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut after_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && after_lower {
            out.push('_');
        }
        after_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Help text and units, shown on /metrics.
fn describe() {
    describe_counter!(
        RECORDS_GENERATED,
        Unit::Count,
        "Records generated (or read from --input) and handed to the producer"
    );
    describe_counter!(
        RECORDS_DELIVERED,
        Unit::Count,
        "Records the brokers acknowledged"
    );
    describe_counter!(
        RECORDS_FAILED,
        Unit::Count,
        "Records that failed for good, by librdkafka's error code (e.g. message_timed_out)"
    );
    describe_gauge!(
        RECORDS_IN_FLIGHT,
        Unit::Count,
        "Records handed to the producer and not answered yet"
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "From a record's creation (its Kafka timestamp, ms) to its acknowledgement; at high rates one record in 64 is timed"
    );
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn error_codes_become_snake_case_reasons() {
        assert_eq!(snake_case("MessageTimedOut"), "message_timed_out");
        assert_eq!(snake_case("PurgeQueue"), "purge_queue");
        assert_eq!(snake_case("SSL"), "ssl");
        assert_eq!(snake_case("NoOffset"), "no_offset");
    }
}
