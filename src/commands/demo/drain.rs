//! The end of a demo: once the producer stops, the aggregate gets the time its last windows
//! need to become final, counted from when it has read the last tick. That is usually at
//! once, but a consumer group's first join waits a few seconds (the broker's initial
//! rebalance delay), so a short demo can stop before the aggregate has read anything.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use super::LOG;
use crate::aggregate::Rules;
use crate::commands::aggregate;
use crate::kafka::{CreateClient as _, Kafka, Observer};

/// Extra time for the last record to be read and for the commit that closes its window.
const MARGIN: Duration = Duration::from_millis(500);

/// How long to wait at most for the aggregate to read the last tick.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);

/// Waits until the aggregate has made the windows of every tick produced final, or until
/// `ended` (the aggregate stopped by itself).
pub fn drain(kafka: &Kafka, settings: &aggregate::Settings, ended: impl Fn() -> bool) {
    let wait = drain_time(&settings.rules);
    tracing::info!(
        target: LOG,
        "⏹️ Producer stopped; the last windows close {:.1}s after the aggregate has read the last tick (a window plus the lateness)",
        wait.as_secs_f64()
    );
    let give_up = Instant::now() + CATCH_UP_LIMIT;
    let lag = Lag::new(kafka, &settings.group, &settings.topic);
    wait_until(|| ended() || Instant::now() >= give_up || lag.as_ref().is_some_and(Lag::none));
    let until = Instant::now() + wait;
    wait_until(|| ended() || Instant::now() >= until);
}

pub fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long after the aggregate has read a partition's last tick that tick's windows are
/// all final. Once the partition has been silent for the idle timeout, its watermark (the
/// last tick's time minus the lateness) moves on by the time it has been silent; it must
/// reach the end of the last window holding the tick, at most a window after the tick.
fn drain_time(rules: &Rules) -> Duration {
    let wait = rules
        .windows
        .size_ms()
        .saturating_add(rules.lateness)
        .max(rules.idle_timeout);
    Duration::from_millis(u64::try_from(wait).unwrap_or(0)) + MARGIN
}

/// The aggregate's consumer lag, as its group's committed offsets show it: a client of
/// its own that never joins the group.
struct Lag {
    consumer: BaseConsumer<Observer>,
    topic: String,
    partitions: Vec<i32>,
}

impl Lag {
    fn new(kafka: &Kafka, group: &str, topic: &str) -> Option<Self> {
        let consumer: BaseConsumer<Observer> = kafka
            .consumer_config(group)
            .create_client(Observer::default())
            .ok()?;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()?;
        let partitions = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        Some(Lag {
            consumer,
            topic: topic.to_string(),
            partitions,
        })
    }

    /// Whether the group has committed every record of the topic (a partition it has never
    /// committed counts as read only while it is empty).
    fn none(&self) -> bool {
        let timeout = Duration::from_secs(1);
        let mut tpl = TopicPartitionList::new();
        for p in &self.partitions {
            tpl.add_partition(&self.topic, *p);
        }
        let Ok(committed) = self.consumer.committed_offsets(tpl, timeout) else {
            return false;
        };
        committed.elements().iter().all(|e| {
            let Ok((_, end)) = self
                .consumer
                .fetch_watermarks(&self.topic, e.partition(), timeout)
            else {
                return false;
            };
            match e.offset() {
                Offset::Offset(at) => at >= end,
                _ => end == 0,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::window::WindowSpec;

    fn rules(window_ms: u64, lateness: i64, idle_timeout: i64) -> Rules {
        Rules {
            windows: WindowSpec::new(Duration::from_millis(window_ms), None).unwrap(),
            lateness,
            idle_timeout,
            updates: false,
        }
    }

    #[test]
    fn the_drain_lasts_a_window_plus_the_lateness_or_the_idle_timeout() {
        // A tick at 10.0s is in [10s, 12s): final once the watermark, 9.5s when the tick
        // was read, has moved on 2.5s.
        assert_eq!(
            drain_time(&rules(2_000, 500, 1_000)),
            Duration::from_millis(2_500) + MARGIN
        );
        // A long idle timeout is what must pass first.
        assert_eq!(
            drain_time(&rules(2_000, 500, 10_000)),
            Duration::from_millis(10_000) + MARGIN
        );
    }
}
