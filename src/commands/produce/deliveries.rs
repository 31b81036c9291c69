//! Delivery reports: every record sent is counted here exactly once, as delivered or as
//! failed, and a failed one is logged with its full payload so the user knows which it was.
//! At a human pace each delivery gets the original project's line.

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::message::Message as _;
use rdkafka::producer::{DeliveryResult, ProducerContext};

use crate::kafka::Observer;
use crate::record;

/// The log target of every produce line, the original logger's name.
pub const LOG: &str = "StockProducer";

/// How many delivered records between two stats lines at a human pace.
const STATS_EVERY: u64 = 10;

pub struct Deliveries {
    pub observer: Observer,
    delivered: AtomicU64,
    failed: AtomicU64,
    log_each: bool,
}

impl Deliveries {
    pub fn new(log_each: bool) -> Self {
        Deliveries {
            observer: Observer::default(),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            log_each,
        }
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
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        match result {
            Ok(msg) => {
                let n = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
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
                self.failed.fetch_add(1, Ordering::Relaxed);
                let payload = msg
                    .payload()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                tracing::error!(target: LOG, "failed to deliver {payload}: {err}");
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

/// `5234` → `5,234`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(5234), "5,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
