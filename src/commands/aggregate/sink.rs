//! Everything `aggregate` writes — bars and dead letters — through one producer, and the
//! commit that makes them visible together with the input offsets. With exactly-once this
//! is a transaction, and this module owns its error handling: a retriable commit is retried,
//! an abortable one aborted, a fatal producer replaced; a fenced one (another instance
//! took this --instance-id) stops the job. The caller rebuilds from the broker's committed
//! state whenever a transaction did not commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext, PurgeConfig,
};
use rdkafka::TopicPartitionList;

use super::fetch::Input;
use super::{Guarantee, Settings, LOG};
use crate::aggregate::Bar;
use crate::kafka::{CreateClient as _, Observer};
use crate::signals::Stop;

/// Counts failed deliveries (at-least-once checks them before it commits input offsets;
/// a transaction fails its commit by itself).
#[derive(Default)]
pub struct Deliveries {
    observer: Observer,
    failed: AtomicU64,
    last_failure: Mutex<Option<String>>,
}

crate::kafka::observed_context!(Deliveries);

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        if let Err((err, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = self.last_failure.lock() {
                *last = Some(err.to_string());
            }
        }
    }
}

/// Pause between attempts while the broker cannot be reached.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

pub struct Sink {
    producer: BaseProducer<Deliveries>,
    config: ClientConfig,
    output_topic: String,
    dlq_topic: String,
    source_topic: String,
    transactional: bool,
    in_transaction: bool,
    /// A send failed: this transaction cannot commit and must be redone.
    broken: bool,
    timeout: Duration,
    stop: Stop,
    /// When a producer of this job was last fenced.
    last_fenced: Option<Instant>,
}

impl Sink {
    pub fn new(config: ClientConfig, settings: &Settings, stop: Stop) -> anyhow::Result<Self> {
        let transactional = settings.guarantee == Guarantee::ExactlyOnce;
        let producer = start(&config, transactional, settings.timeout, &stop)?;
        Ok(Sink {
            producer,
            config,
            output_topic: settings.output_topic.clone(),
            dlq_topic: settings.dlq_topic.clone(),
            source_topic: settings.topic.clone(),
            transactional,
            in_transaction: false,
            broken: false,
            timeout: settings.timeout,
            stop,
            last_fenced: None,
        })
    }

    /// Whether output was sent that is not committed yet.
    pub fn pending(&self) -> bool {
        self.in_transaction
    }

    fn send(&mut self, mut record: BaseRecord<'_, [u8], [u8]>) {
        if self.broken {
            return;
        }
        if self.transactional && !self.in_transaction {
            if let Err(e) = self.producer.begin_transaction() {
                tracing::warn!(target: LOG, "beginning a transaction: {e}");
                self.broken = true;
                return;
            }
            self.in_transaction = true;
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((err, _)) => {
                    tracing::warn!(target: LOG, "queueing an output record: {err}");
                    self.broken = true;
                    return;
                }
            }
        }
    }

    pub fn bar(&mut self, bar: &Bar) {
        let payload = bar.to_json();
        let topic = self.output_topic.clone();
        self.send(
            BaseRecord::to(&topic)
                .key(bar.symbol.as_str().as_bytes())
                .payload(&payload[..])
                .timestamp(bar.window_end),
        );
    }

    /// The original key and value, and headers saying why and where from.
    pub fn dead_letter(&mut self, msg: &Input<'_>, reason: &str, message: &str) {
        let partition = msg.partition.to_string();
        let offset = msg.offset.to_string();
        let header = |key, value| Header {
            key,
            value: Some(value),
        };
        let headers = OwnedHeaders::new()
            .insert(header("stockstream.error.reason", reason))
            .insert(header("stockstream.error.message", message))
            .insert(header(
                "stockstream.source.topic",
                self.source_topic.as_str(),
            ))
            .insert(header("stockstream.source.partition", partition.as_str()))
            .insert(header("stockstream.source.offset", offset.as_str()));
        let topic = self.dlq_topic.clone();
        let mut record = BaseRecord::to(&topic)
            .payload(msg.payload.unwrap_or_default())
            .headers(headers);
        if let Some(key) = msg.key {
            record = record.key(key);
        }
        if let Some(ts) = msg.timestamp {
            record = record.timestamp(ts);
        }
        self.send(record);
    }

    /// Commits the open transaction with the input offsets. `Ok(false)`: it did not commit,
    /// and the caller must rebuild from what the broker has committed.
    pub fn commit_transaction(
        &mut self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> anyhow::Result<bool> {
        if self.broken {
            self.abort()?;
            return Ok(false);
        }
        if !self.in_transaction {
            if let Err(e) = self.producer.begin_transaction() {
                return self.failed(e);
            }
            self.in_transaction = true;
        }
        if offsets.count() > 0 {
            if let Err(e) = self
                .producer
                .send_offsets_to_transaction(offsets, group, self.timeout)
            {
                return self.failed(e);
            }
        }
        loop {
            match self.producer.commit_transaction(self.timeout) {
                Ok(()) => {
                    self.in_transaction = false;
                    return Ok(true);
                }
                // The outcome is not known yet: asking again is the only safe move.
                Err(KafkaError::Transaction(e)) if e.is_retriable() && !self.stop.requested() => {
                    tracing::warn!(target: LOG, "committing the transaction: {e}; retrying");
                    std::thread::sleep(RETRY_PAUSE);
                }
                Err(e) => return self.failed(e),
            }
        }
    }

    /// After a failed step of a transaction: abort it, or replace a producer that cannot.
    fn failed(&mut self, err: KafkaError) -> anyhow::Result<bool> {
        tracing::warn!(target: LOG, "transaction not committed ({err}); redoing it from the last commit");
        match &err {
            KafkaError::Transaction(e) if e.is_fatal() => self.replace(e)?,
            _ => self.abort()?,
        }
        Ok(false)
    }

    /// Aborts the open transaction, dropping what is still queued; retried while the broker
    /// cannot be reached (a Ctrl+C ends the wait).
    fn abort(&mut self) -> anyhow::Result<()> {
        self.broken = false;
        if !self.in_transaction {
            return Ok(());
        }
        self.drop_pending();
        loop {
            match self.producer.abort_transaction(self.timeout) {
                Ok(()) => break,
                Err(KafkaError::Transaction(e)) if e.is_fatal() => {
                    self.replace(&e)?;
                    break;
                }
                Err(e) if !self.stop.requested() => {
                    tracing::warn!(target: LOG, "aborting the transaction: {e}; retrying");
                    std::thread::sleep(RETRY_PAUSE);
                }
                Err(e) => return Err(e).context("aborting the transaction"),
            }
        }
        self.in_transaction = false;
        Ok(())
    }

    /// A producer in a fatal state cannot go on: a new one with the same transactional id
    /// fences the old epoch (its transaction is aborted by the coordinator).
    ///
    /// Being fenced usually means another instance took this id over, but a transaction
    /// coordinator that restarted or timed a transaction out fences too. So one fencing is
    /// answered with a new producer; a second within a minute means a live rival, and the
    /// job stops instead of fencing it back and forth.
    fn replace(&mut self, cause: &RDKafkaError) -> anyhow::Result<()> {
        let fenced = matches!(
            cause.code(),
            RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced
        );
        let recently = self
            .last_fenced
            .is_some_and(|at| at.elapsed() < Duration::from_secs(60));
        if fenced && recently {
            bail!(
                "this instance was fenced: another instance with the same --instance-id took over ({cause})\n  \
                 hint: give every instance of a group its own --instance-id"
            );
        }
        if fenced {
            self.last_fenced = Some(Instant::now());
        }
        tracing::warn!(target: LOG, "the producer failed for good ({cause}); replacing it");
        self.drop_pending();
        self.producer = start(&self.config, self.transactional, self.timeout, &self.stop)?;
        self.in_transaction = false;
        self.broken = false;
        Ok(())
    }

    /// Drops what is queued or in flight and serves the reports the purge produces: the
    /// abort waits for an empty queue, and only polling empties it.
    fn drop_pending(&self) {
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        let _ = self.producer.flush(Duration::from_secs(5));
    }

    /// At-least-once: waits until every output record is acknowledged.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.producer
            .flush(self.timeout)
            .context("waiting for output records to be delivered")?;
        let failed = self.producer.context().failed.swap(0, Ordering::Relaxed);
        if failed > 0 || self.broken {
            let why = self
                .producer
                .context()
                .last_failure
                .lock()
                .ok()
                .and_then(|l| l.clone());
            return Err(anyhow!(
                "{failed} output records were not delivered ({}); stopping without committing, so a restart redoes them",
                why.unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// On the way out: nothing half-done stays open.
    pub fn close(&mut self) {
        if self.in_transaction || self.broken {
            let _ = self.abort();
        }
        let _ = self.producer.flush(self.timeout);
    }
}

/// A producer, with transactions initialised (retried while the broker is unreachable).
fn start(
    config: &ClientConfig,
    transactional: bool,
    timeout: Duration,
    stop: &Stop,
) -> anyhow::Result<BaseProducer<Deliveries>> {
    let producer: BaseProducer<Deliveries> = config
        .create_client(Deliveries::default())
        .context("creating the output producer")?;
    if !transactional {
        return Ok(producer);
    }
    loop {
        match producer.init_transactions(timeout) {
            Ok(()) => return Ok(producer),
            Err(KafkaError::Transaction(e)) if e.is_retriable() && !stop.requested() => {
                tracing::warn!(target: LOG, "starting transactions: {e}; retrying");
                std::thread::sleep(RETRY_PAUSE);
            }
            Err(e) => {
                return Err(e).context(
                    "starting transactions (a broker without transaction support needs --guarantee at-least-once)",
                )
            }
        }
    }
}
