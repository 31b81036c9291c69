//! Reading a bounded stretch of each partition, for the replay and the consumer group
//! steps: stop when every partition reaches its end offset, fail when nothing moves for
//! `--timeout`, so the demo never hangs on a quiet or unreachable broker, and end at once
//! when Ctrl+C or SIGTERM asks for a stop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{CreateClient as _, Kafka, Observer};

/// Shared with the thread a blocking request runs on (see `signals::patiently`).
pub type Consumer = Arc<BaseConsumer<Observer>>;

/// A consumer in `group`; it commits only when the demo tells it to.
pub fn consumer(kafka: &Kafka, group: &str) -> anyhow::Result<Consumer> {
    kafka
        .consumer_config(group)
        .create_client(Observer::default())
        .map(Arc::new)
        .context("creating the Kafka consumer")
}

/// Where to start reading a partition, and the offset to stop before.
#[derive(Debug, Clone, Copy)]
pub struct Stretch {
    pub from: Offset,
    pub until: i64,
}

/// Reads each partition of `stretches` from its start until its position reaches its end,
/// handing every record before that end to `each`. Assigns the partitions directly (no
/// group membership, so no rebalance to wait for) and unassigns them at the end.
///
/// Every stretch must have something to read: a partition already at its end never
/// reports a position, so the caller leaves it out.
pub fn read(
    consumer: &Consumer,
    topic: &str,
    stretches: &BTreeMap<i32, Stretch>,
    timeout: Duration,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> anyhow::Result<()> {
    let mut tpl = TopicPartitionList::new();
    for (&partition, stretch) in stretches {
        tpl.add_partition_offset(topic, partition, stretch.from)?;
    }
    consumer
        .assign(&tpl)
        .with_context(|| format!("assigning the partitions of `{topic}`"))?;
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let behind = |next: &BTreeMap<i32, i64>| {
        stretches
            .iter()
            .any(|(p, s)| next.get(p).is_none_or(|n| *n < s.until))
    };
    let mut last_progress = Instant::now();
    while behind(&next) {
        crate::signals::unless_stopped()?;
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if stretches
                    .get(&m.partition())
                    .is_some_and(|s| m.offset() < s.until)
                {
                    each(&m);
                }
                next.insert(m.partition(), m.offset() + 1);
                last_progress = Instant::now();
            }
            Some(Err(e)) => bail!("reading `{topic}`: {e}"),
            None => {
                // Transaction markers take offsets but are never handed out: the position
                // moves past them all the same.
                if advance_to_positions(consumer, &mut next) {
                    last_progress = Instant::now();
                }
                if last_progress.elapsed() >= timeout {
                    return Err(anyhow!(
                        "nothing arrived from `{topic}` for {} while reading up to offsets {:?}",
                        humantime::format_duration(timeout),
                        stretches
                            .iter()
                            .map(|(p, s)| (*p, s.until))
                            .collect::<BTreeMap<_, _>>()
                    ));
                }
            }
        }
    }
    consumer.unassign().context("unassigning the partitions")?;
    Ok(())
}

/// Takes the consumer's positions into `next`; true when any moved forward.
fn advance_to_positions(consumer: &Consumer, next: &mut BTreeMap<i32, i64>) -> bool {
    let Ok(positions) = consumer.position() else {
        return false;
    };
    let mut moved = false;
    for e in positions.elements() {
        if let Offset::Offset(at) = e.offset() {
            let n = next.entry(e.partition()).or_insert(i64::MIN);
            if at > *n {
                *n = at;
                moved = true;
            }
        }
    }
    moved
}
