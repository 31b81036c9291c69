//! The consumer's context: rebalances meet the writer. Arriving partitions start at the
//! offsets stored in PostgreSQL (not Kafka's committed ones); leaving partitions are
//! written first.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::writer::Writer;
use super::LOG;
use crate::kafka::Observer;

pub struct StoreContext {
    pub observer: Observer,
    writer: Arc<Mutex<Writer>>,
}

impl StoreContext {
    pub fn new(writer: Arc<Mutex<Writer>>) -> Self {
        StoreContext {
            observer: Observer::default(),
            writer,
        }
    }

    /// The writer. Never called from inside a rebalance (which holds it).
    pub fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl rdkafka::client::ClientContext for StoreContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.observer.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            rdkafka::client::ClientContext::error(&self.observer, error, reason);
        }
    }
}

impl ConsumerContext for StoreContext {
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::debug!(target: LOG, "committing offsets to Kafka (for lag monitoring only): {e}");
        }
    }

    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        let topic = tpl
            .elements()
            .first()
            .map(|e| e.topic().to_string())
            .unwrap_or_default();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut writer = self.writer();
                match writer.assign(consumer, &partitions) {
                    Ok(stored) => {
                        let mut notes = Vec::new();
                        for (p, at) in &stored {
                            let offset = at.map_or(Offset::Beginning, Offset::Offset);
                            let _ = tpl.set_partition_offset(&topic, *p, offset);
                            notes.push(at.map_or(format!("{p}@start"), |o| format!("{p}@{o}")));
                        }
                        tracing::info!(target: LOG, "📥 Partitions assigned (offsets from PostgreSQL): {}", notes.join(", "));
                        if let Err(e) = consumer.assign(tpl) {
                            tracing::error!(target: LOG, "taking partitions on: {e}");
                        }
                    }
                    Err(e) => {
                        // Reading from anywhere but the stored offsets could lose or repeat
                        // bars: take nothing, and stop.
                        writer.failed =
                            Some(e.context("reading where the partitions stand in PostgreSQL"));
                        let _ = consumer.assign(&TopicPartitionList::new());
                    }
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.writer().revoke(consumer, &partitions);
                tracing::info!(target: LOG, "📤 Partitions revoked: {}", partitions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
                let _ = consumer.unassign();
            }
            other => {
                tracing::error!(target: LOG, "rebalance failed: {other:?}");
                self.writer().abandon();
                let _ = consumer.unassign();
            }
        }
    }
}
