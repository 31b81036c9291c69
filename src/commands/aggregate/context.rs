//! The consumer's context: where rebalances meet the pipeline. Before partitions leave, the
//! work done on them is committed; when partitions arrive, each is restored from the
//! checkpoint in its commit metadata and started at its replay offset.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;

use super::fetch::{Event, Fetcher};
use super::pipeline::Pipeline;
use super::LOG;
use crate::kafka::Observer;

pub struct JobContext {
    observer: Observer,
    /// Shared with the next consumer if this one fails for good.
    pipeline: Arc<Mutex<Pipeline>>,
    fetcher: Mutex<Option<Fetcher>>,
}

impl JobContext {
    pub fn new(pipeline: Arc<Mutex<Pipeline>>) -> Self {
        JobContext {
            observer: Observer::default(),
            pipeline,
            fetcher: Mutex::new(None),
        }
    }

    /// Installs the batch reader; before subscribing, so it sees the first assignment.
    pub fn set_fetcher(&self, fetcher: Fetcher) {
        *self.fetcher_lock() = Some(fetcher);
    }

    /// Handles the records waiting (or the first to come within `wait`), as one batch
    /// stamped `now`. The consumer is not polled meanwhile, so no rebalance can interleave.
    pub fn drain(&self, wait: Duration, now: Instant) -> anyhow::Result<usize> {
        let mut fetcher = self.fetcher_lock();
        let Some(fetcher) = fetcher.as_mut() else {
            std::thread::sleep(wait);
            return Ok(0);
        };
        let mut pipeline = self.lock();
        fetcher.drain(wait, |event| match event {
            Event::Record(input) => pipeline.on_message(&input, now),
            Event::End(partition) => {
                pipeline.caught_up(partition);
                Ok(())
            }
            Event::Error(e) => {
                tracing::warn!(target: LOG, "reading input: {e}");
                pipeline.consumer_trouble();
                Ok(())
            }
        })
    }

    /// Removes the batch reader; required before the consumer is dropped.
    pub fn close_fetcher(&self) {
        drop(self.fetcher_lock().take());
    }

    fn fetcher_lock(&self) -> MutexGuard<'_, Option<Fetcher>> {
        self.fetcher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the pipeline. Never called from inside a rebalance (which holds it).
    pub fn with<T>(&self, f: impl FnOnce(&mut Pipeline) -> T) -> T {
        f(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Pipeline> {
        // A panic while holding the lock cannot leave the pipeline half-updated in a way that
        // matters more than stopping: keep going with what is there.
        self.pipeline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

crate::kafka::observed_context!(JobContext);

impl JobContext {
    fn detach(&self, tpl: &TopicPartitionList) {
        if let Some(f) = self.fetcher_lock().as_mut() {
            for e in tpl.elements() {
                f.detach(e.partition());
            }
        }
    }
}

impl ConsumerContext for JobContext {
    /// Input offsets are committed in the background with at-least-once: one that failed is
    /// covered by the next commit (it names later offsets), and a restart before that reads
    /// a little more again, which at-least-once allows.
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(target: LOG, "committing input offsets: {e}; the next commit covers them");
        }
    }

    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.lock().assign(consumer, tpl);
                if let Some(f) = self.fetcher_lock().as_mut() {
                    for e in tpl.elements() {
                        f.attach(consumer, e.partition());
                    }
                }
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(target: LOG, "taking partitions on: {e}");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                self.lock().revoke(consumer, tpl, lost);
                self.detach(tpl);
                if let Err(e) = consumer.unassign() {
                    tracing::error!(target: LOG, "letting partitions go: {e}");
                }
            }
            other => {
                tracing::error!(target: LOG, "rebalance failed: {other:?}");
                self.lock().revoke(consumer, tpl, true);
                self.detach(tpl);
                let _ = consumer.unassign();
            }
        }
    }
}
