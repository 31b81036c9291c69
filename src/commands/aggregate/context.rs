//! The consumer's context: where rebalances meet the pipeline. Before partitions leave, the
//! work done on them is committed; when partitions arrive, each is restored from the
//! checkpoint in its commit metadata and started at its replay offset.

use std::sync::{Mutex, MutexGuard};

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;

use super::pipeline::Pipeline;
use super::LOG;
use crate::kafka::Observer;

pub struct JobContext {
    observer: Observer,
    pipeline: Mutex<Pipeline>,
}

impl JobContext {
    pub fn new(pipeline: Pipeline) -> Self {
        JobContext {
            observer: Observer::default(),
            pipeline: Mutex::new(pipeline),
        }
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

impl ConsumerContext for JobContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.lock().assign(consumer, tpl);
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(target: LOG, "taking partitions on: {e}");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                self.lock().revoke(consumer, tpl, lost);
                if let Err(e) = consumer.unassign() {
                    tracing::error!(target: LOG, "letting partitions go: {e}");
                }
            }
            other => {
                tracing::error!(target: LOG, "rebalance failed: {other:?}");
                self.lock().revoke(consumer, tpl, true);
                let _ = consumer.unassign();
            }
        }
    }
}
