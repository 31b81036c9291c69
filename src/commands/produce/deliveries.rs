//! Delivery reports: every record sent is counted here exactly once, as delivered or as
//! failed. Each record carries its number in the run (1, 2, 3, …) as its delivery opaque, so
//! the failed ones can be named exactly: the first few in full, all of them as number ranges
//! at the end, split into "not delivered" and "possibly delivered" (sent, but the broker's
//! answer was lost, so it may be in the topic). At a human pace each delivery gets the
//! original project's line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rdkafka::bindings as rdsys;
use rdkafka::message::Message as _;
use rdkafka::producer::{DeliveryResult, ProducerContext};

use crate::kafka::Observer;
use crate::numbers::thousands;
use crate::record;

/// The log target of every produce line, the original logger's name.
pub const LOG: &str = "StockProducer";

/// How many delivered records between two stats lines at a human pace.
const STATS_EVERY: u64 = 10;

/// How many failed records are logged in full; the rest are named in the final report.
const LOG_FAILED_IN_FULL: u64 = 10;

pub struct Deliveries {
    pub observer: Observer,
    delivered: AtomicU64,
    failed: AtomicU64,
    log_each: bool,
    failures: Mutex<Failures>,
    /// With --metrics-addr: the latency of the deliveries timed (see `TIMED_EVERY`).
    latency: Option<metrics::Histogram>,
}

/// At a high rate, one delivery in this many is timed (the record numbers divisible by it):
/// a clock read and a histogram sample for each would cost the hot path more than the
/// counting it does. At a human pace every delivery is timed.
pub const TIMED_EVERY: usize = 64;

/// The numbers of the records that failed, by what is known of them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Failures {
    /// Never written: the broker did not get them (or refused them).
    pub not_delivered: Vec<u64>,
    /// Sent, but no answer came back: they may be in the topic.
    pub possibly_delivered: Vec<u64>,
}

impl Deliveries {
    pub fn new(log_each: bool, measured: bool) -> Self {
        Deliveries {
            latency: measured.then(|| metrics::histogram!(super::metrics::DELIVERY_LATENCY)),
            observer: Observer::default(),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            log_each,
            failures: Mutex::new(Failures::default()),
        }
    }

    /// The failed records so far, each list sorted.
    pub fn failures(&self) -> Failures {
        let mut f = self
            .failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        for list in [&mut f.not_delivered, &mut f.possibly_delivered] {
            list.sort_unstable();
            list.dedup();
        }
        f
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

crate::kafka::observed_context!(Deliveries);

impl ProducerContext for Deliveries {
    /// The record's number in this run.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, number: usize) {
        match result {
            Ok(msg) => {
                let n = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(latency) = &self.latency {
                    if self.log_each || number % TIMED_EVERY == 0 {
                        if let Some(created) = msg.timestamp().to_millis() {
                            let ms = (record::now_millis() - created).max(0);
                            latency.record(ms as f64 / 1000.0);
                        }
                    }
                }
                if self.log_each {
                    log_delivery(msg.payload(), msg.partition(), msg.offset());
                    if n % STATS_EVERY == 0 {
                        tracing::info!(
                            target: LOG,
                            "📊 Stats: {} delivered, {} failed",
                            thousands(n),
                            thousands(self.failed())
                        );
                    }
                }
            }
            Err((err, msg)) => {
                let n = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
                super::metrics::failed(err);
                let number = number as u64;
                // SAFETY: the message is valid for the duration of the callback.
                let status = unsafe { rdsys::rd_kafka_message_status(msg.ptr()) };
                let possibly =
                    status != rdsys::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
                if let Ok(mut f) = self.failures.lock() {
                    if possibly {
                        f.possibly_delivered.push(number);
                    } else {
                        f.not_delivered.push(number);
                    }
                }
                if n <= LOG_FAILED_IN_FULL {
                    let payload = msg
                        .payload()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    let what = if possibly {
                        "unconfirmed (sent, but no answer: it may be in the topic)"
                    } else {
                        "not delivered"
                    };
                    tracing::error!(target: LOG, "❌ record #{number} {what}: {err}: {payload}");
                    if n == LOG_FAILED_IN_FULL {
                        tracing::error!(target: LOG, "❌ more records failing; the summary names them all");
                    }
                }
            }
        }
    }
}

fn log_delivery(payload: Option<&[u8]>, partition: i32, offset: i64) {
    match payload.map(record::decode) {
        Some(Ok(r)) => tracing::info!(
            target: LOG,
            "✅ {:<6} | ${:.2} | Vol: {:>6} | 📍 Partition: {partition} | 📌 Offset: {offset}",
            r.symbol,
            r.price,
            thousands(r.volume)
        ),
        // Only stockstream's own records pass through here; say so if that ever changes.
        _ => {
            tracing::warn!(target: LOG, "delivered an unreadable record to partition {partition} at offset {offset}")
        }
    }
}

/// Sorted, distinct numbers as runs: `[1, 2, 3, 7]` → `[(1, 3), (7, 7)]`.
pub fn runs(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &n in sorted {
        match out.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(n) => *end = n,
            _ => out.push((n, n)),
        }
    }
    out
}

/// Runs as text: `[(1, 3), (7, 7)]` → `1-3,7`.
pub fn ranges(runs: &[(u64, u64)]) -> String {
    let mut out = String::new();
    for (i, &(start, end)) in runs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{ranges, runs};

    #[test]
    fn ranges_join_runs_of_numbers() {
        assert_eq!(ranges(&runs(&[])), "");
        assert_eq!(ranges(&runs(&[4])), "4");
        assert_eq!(ranges(&runs(&[1, 2, 3, 7, 9, 10])), "1-3,7,9-10");
        assert_eq!(
            runs(&[u64::MAX - 1, u64::MAX]),
            vec![(u64::MAX - 1, u64::MAX)]
        );
    }
}
