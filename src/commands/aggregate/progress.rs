//! Progress every --progress-interval: input and processed records/s, consumer lag, each
//! partition's watermark, open windows, emitted bars, late and bad records. The JSON form
//! uses the names of Spark's StreamingQueryProgress where they mean the same thing.

use std::io::Write as _;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::Offset;
use serde_json::json;

use super::context::JobContext;
use super::pipeline::{Counters, Snapshot};
use super::{Settings, LOG};
use crate::aggregate::bar::rfc3339;
use crate::numbers::thousands;

pub struct Progress {
    every: Duration,
    json: bool,
    topic: String,
    next: Instant,
    last: Instant,
    last_counters: Counters,
}

impl Progress {
    pub fn new(settings: &Settings, now: Instant) -> Self {
        Progress {
            every: settings.progress_interval,
            json: settings.progress_json,
            topic: settings.topic.clone(),
            next: now + settings.progress_interval,
            last: now,
            last_counters: Counters::default(),
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    pub fn report(&mut self, consumer: &BaseConsumer<JobContext>, s: &Snapshot, now: Instant) {
        let secs = now.duration_since(self.last).as_secs_f64().max(1e-9);
        let c = s.counters;
        let input_rate = (c.input - self.last_counters.input) as f64 / secs;
        let processed_rate = (c.processed + c.late + c.bad
            - self.last_counters.processed
            - self.last_counters.late
            - self.last_counters.bad) as f64
            / secs;
        let lag = self.lag(consumer);
        let watermarks: serde_json::Map<String, serde_json::Value> = s
            .watermarks
            .iter()
            .map(|(p, w)| {
                (
                    p.to_string(),
                    w.map_or(serde_json::Value::Null, |w| rfc3339(w).into()),
                )
            })
            .collect();
        if self.json {
            let doc = json!({
                "timestamp": rfc3339(i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(0)),
                "numInputRows": c.input - self.last_counters.input,
                "inputRowsPerSecond": input_rate.round(),
                "processedRowsPerSecond": processed_rate.round(),
                "eventTime": { "watermark": watermarks },
                "stateOperators": [{ "numRowsTotal": s.open_windows, "numRowsDroppedByWatermark": c.late }],
                "sources": [{ "description": format!("kafka:{}", self.topic), "metrics": { "offsetsBehindLatest": lag } }],
                "sink": { "numOutputRows": c.bars },
                "numBadRows": c.bad,
            });
            // A closed stdout must not stop the job; the log line below still reports.
            let _ = writeln!(std::io::stdout().lock(), "{doc}");
        }
        let now_ms = crate::record::now_millis();
        let marks: Vec<String> = s
            .watermarks
            .iter()
            .map(|(p, w)| {
                format!(
                    "p{p}={}",
                    w.map_or("-".to_string(), |w| watermark_text(w, now_ms))
                )
            })
            .collect();
        tracing::info!(
            target: LOG,
            "📈 in {}/s | processed {}/s | lag {} | watermarks {} | open windows {} | bars {} | late {} | bad {}",
            thousands(input_rate.round() as u64),
            thousands(processed_rate.round() as u64),
            lag.map_or("?".to_string(), |l| thousands(u64::try_from(l).unwrap_or(0))),
            if marks.is_empty() { "-".to_string() } else { marks.join(" ") },
            thousands(s.open_windows as u64),
            thousands(c.bars),
            thousands(c.late),
            thousands(c.bad)
        );
        self.last = now;
        self.last_counters = c;
        self.next = now + self.every;
    }

    /// Records between the consumer's position and the end of each owned partition; `None`
    /// when the brokers do not tell within a second, all partitions together (the job waits
    /// meanwhile, and a Ctrl+C with it).
    fn lag(&self, consumer: &BaseConsumer<JobContext>) -> Option<i64> {
        let positions = consumer.position().ok()?;
        let deadline = Instant::now() + LAG_LIMIT;
        let mut total = 0;
        for e in positions.elements() {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (_, high) = consumer
                .fetch_watermarks(e.topic(), e.partition(), left)
                .ok()?;
            let at = match e.offset() {
                Offset::Offset(o) => o,
                _ => continue,
            };
            total += (high - at).max(0);
        }
        Some(total)
    }
}

/// The longest the lag of all partitions may take to learn.
const LAG_LIMIT: Duration = Duration::from_secs(1);

const DAY_MS: i64 = 86_400_000;

/// The time of day of a watermark; when it is not today (UTC), also how many days from
/// today, or its date when that is a week or more away: a watermark a day ahead or a year
/// behind must show at a glance.
fn watermark_text(watermark_ms: i64, now_ms: i64) -> String {
    let text = rfc3339(watermark_ms);
    let time = text.get(11..19).unwrap_or("");
    let days = watermark_ms.div_euclid(DAY_MS) - now_ms.div_euclid(DAY_MS);
    match days {
        0 => time.to_string(),
        -6..=6 => format!("{time} ({days:+}d)"),
        _ => format!("{} {time}", text.get(..10).unwrap_or("")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_268_800_000; // 2026-01-01T12:00:00Z

    #[test]
    fn a_watermark_of_today_shows_its_time_alone() {
        assert_eq!(watermark_text(NOW - 3_600_000, NOW), "11:00:00");
    }

    #[test]
    fn a_watermark_of_another_day_shows_how_far_it_is() {
        assert_eq!(watermark_text(NOW + DAY_MS, NOW), "12:00:00 (+1d)");
        assert_eq!(watermark_text(NOW - 13 * 3_600_000, NOW), "23:00:00 (-1d)");
        assert_eq!(
            watermark_text(NOW - 400 * DAY_MS, NOW),
            "2024-11-27 12:00:00"
        );
    }
}
