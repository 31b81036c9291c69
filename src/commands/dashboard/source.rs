//! One topic as a feed sees it: whether Kafka answers, whether the topic is there, its
//! partitions' offsets, and a consumer assigned to it by hand. Every call is bounded, so a
//! feed thread notices a stop within about a second, broker or no broker.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::board::{Feed, FeedState};
use crate::kafka::{CreateClient as _, Kafka, Observer};
use crate::signals::Stop;

/// The longest one request to Kafka may take.
const ASK: Duration = Duration::from_secs(1);

/// What the cluster says of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Partitions(Vec<i32>),
    Missing,
    /// No answer, with librdkafka's last word on why.
    Unreachable(String),
}

/// One partition's earliest and end offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

pub struct Topic {
    pub consumer: BaseConsumer<Observer>,
    pub name: String,
    brokers: String,
}

impl Topic {
    /// A consumer of `name` that never joins `group` (see `Kafka::looking_consumer_config`).
    pub fn new(
        kafka: &Kafka,
        name: &str,
        group: &str,
        committed_only: bool,
    ) -> anyhow::Result<Self> {
        let consumer = kafka
            .looking_consumer_config(group, committed_only)
            .create_client(Observer::default())
            .with_context(|| format!("creating a Kafka consumer for `{name}`"))?;
        Ok(Topic {
            consumer,
            name: name.to_string(),
            brokers: kafka.brokers().to_string(),
        })
    }

    /// librdkafka's last word on a failure, else the failure's own. Its error events come
    /// with a poll: served first (a record polled meanwhile is read again, as every feed
    /// starts over after a failure).
    fn cause(&self, err: &impl std::fmt::Display) -> String {
        for _ in 0..5 {
            let _ = self.consumer.poll(Duration::from_millis(10));
        }
        self.consumer
            .context()
            .last_error()
            .unwrap_or_else(|| err.to_string())
    }

    pub fn look(&self) -> Seen {
        match self.consumer.fetch_metadata(Some(&self.name), ASK) {
            Err(e) => Seen::Unreachable(self.cause(&e)),
            Ok(metadata) => {
                self.consumer.context().connected();
                match metadata.topics().first() {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                        ids.sort_unstable();
                        Seen::Partitions(ids)
                    }
                    _ => Seen::Missing,
                }
            }
        }
    }

    /// Each partition's offsets; the error says why not.
    pub fn ends(&self, partitions: &[i32]) -> Result<Vec<Ends>, String> {
        partitions
            .iter()
            .map(|&p| {
                self.consumer
                    .fetch_watermarks(&self.name, p, ASK)
                    .map(|(low, high)| Ends {
                        partition: p,
                        low,
                        high,
                    })
                    .map_err(|e| self.cause(&e))
            })
            .collect()
    }

    /// Reads each partition from the offset given.
    pub fn assign(&self, starts: impl IntoIterator<Item = (i32, i64)>) -> Result<(), String> {
        let mut tpl = TopicPartitionList::new();
        for (p, offset) in starts {
            tpl.add_partition_offset(&self.name, p, Offset::Offset(offset))
                .map_err(|e| e.to_string())?;
        }
        self.consumer.assign(&tpl).map_err(|e| e.to_string())
    }

    /// The feed's state for what was seen of the topic; `missing` says what makes it.
    pub fn feed(&self, seen: &Seen, missing: &str) -> Feed {
        match seen {
            Seen::Partitions(p) => Feed::new(
                FeedState::Ok,
                format!("`{}`: {} partitions", self.name, p.len()),
            ),
            Seen::Missing => Feed::new(
                FeedState::Missing,
                format!(
                    "topic `{}` does not exist yet on {}: {missing}",
                    self.name, self.brokers
                ),
            ),
            Seen::Unreachable(cause) => self.unreachable(cause),
        }
    }

    pub fn unreachable(&self, cause: &str) -> Feed {
        Feed::new(
            FeedState::Unreachable,
            format!("Kafka at {} does not answer: {cause}", self.brokers),
        )
    }

    /// The group's committed offsets of `partitions` of this topic (`None`: none there),
    /// asked without joining it.
    pub fn committed(&self, partitions: &[i32]) -> Result<Vec<(i32, Option<i64>)>, String> {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition(&self.name, p);
        }
        let answer = self
            .consumer
            .committed_offsets(tpl, ASK)
            .map_err(|e| self.cause(&e))?;
        Ok(answer
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset().to_raw().filter(|o| *o >= 0)))
            .collect())
    }

    /// Whether an error polled is only the topic not being there (yet, or any more).
    pub fn gone(err: &rdkafka::error::KafkaError) -> bool {
        matches!(
            err.rdkafka_error_code(),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        )
    }
}

/// Sleeps `d`, or less once `stop` is asked for.
pub fn pause(stop: &Stop, d: Duration) {
    let until = Instant::now() + d;
    while !stop.requested() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}
