//! The job between Kafka and the engine: decode each record, route bad and late ones to the
//! dead-letter topic, send bars, and commit output and input offsets together — in one
//! transaction per commit interval with exactly-once, or flush-then-commit with
//! at-least-once. Each committed offset carries its partition's checkpoint, so a restart
//! replays exactly what the open windows need.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message as _, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::context::JobContext;
use super::output::Console;
use super::{EmitMode, Guarantee, LatePolicy, Settings, LOG};
use crate::aggregate::window::{event_millis, MAX_EVENT_MILLIS};
use crate::aggregate::{Bar, Checkpoint, Engine, Outcome};
use crate::kafka::Observer;
use crate::record::{self, StockRecord};

/// A payload longer than this is not a tick: dead-lettered as `too_large`.
const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Counts failed deliveries of the output producer (at-least-once checks them before it
/// commits input offsets; transactions fail their commit by themselves).
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

/// Everything the job writes, through one producer.
pub struct Sink {
    producer: BaseProducer<Deliveries>,
    output_topic: String,
    dlq_topic: String,
    source_topic: String,
    transactional: bool,
    in_transaction: bool,
}

impl Sink {
    pub fn new(producer: BaseProducer<Deliveries>, settings: &Settings) -> Self {
        Sink {
            producer,
            output_topic: settings.output_topic.clone(),
            dlq_topic: settings.dlq_topic.clone(),
            source_topic: settings.topic.clone(),
            transactional: settings.guarantee == Guarantee::ExactlyOnce,
            in_transaction: false,
        }
    }

    fn begin(&mut self) -> anyhow::Result<()> {
        if self.transactional && !self.in_transaction {
            self.producer
                .begin_transaction()
                .context("beginning a transaction")?;
            self.in_transaction = true;
        }
        Ok(())
    }

    fn send(&mut self, mut record: BaseRecord<'_, [u8], [u8]>) -> anyhow::Result<()> {
        self.begin()?;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((err, _)) => return Err(err).context("queueing an output record"),
            }
        }
    }

    fn bar(&mut self, bar: &Bar) -> anyhow::Result<()> {
        let payload = bar.to_json();
        let topic = self.output_topic.clone();
        self.send(
            BaseRecord::to(&topic)
                .key(bar.symbol.as_str().as_bytes())
                .payload(&payload[..])
                .timestamp(bar.window_end),
        )
    }

    /// The original key and value, and headers saying why and where from.
    fn dead_letter(
        &mut self,
        msg: &BorrowedMessage<'_>,
        reason: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        let partition = msg.partition().to_string();
        let offset = msg.offset().to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "stockstream.error.reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "stockstream.error.message",
                value: Some(message),
            })
            .insert(Header {
                key: "stockstream.source.topic",
                value: Some(self.source_topic.as_str()),
            })
            .insert(Header {
                key: "stockstream.source.partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "stockstream.source.offset",
                value: Some(offset.as_str()),
            });
        let topic = self.dlq_topic.clone();
        let mut record = BaseRecord::to(&topic)
            .payload(msg.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = msg.key() {
            record = record.key(key);
        }
        if let Some(ts) = msg.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        self.send(record)
    }
}

/// Running totals for progress reports and the final summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub input: u64,
    pub processed: u64,
    pub late: u64,
    pub bad: u64,
    pub bars: u64,
    pub replayed: u64,
}

/// A copy of what progress reports show.
pub struct Snapshot {
    pub counters: Counters,
    pub watermarks: Vec<(i32, Option<i64>)>,
    pub open_windows: usize,
}

pub struct Pipeline {
    engine: Engine,
    sink: Sink,
    console: Console,
    topic: String,
    late: LatePolicy,
    emit: EmitMode,
    guarantee: Guarantee,
    timeout: Duration,
    /// The last committed checkpoint of each owned partition: where an abort rewinds to.
    committed: HashMap<i32, Checkpoint>,
    /// The first offset read of each owned partition without a checkpoint.
    first_read: HashMap<i32, i64>,
    dirty: bool,
    counters: Counters,
    started: Instant,
    /// When the first and the latest new record were read: the processing rate's span.
    first_record: Option<Instant>,
    last_record: Option<Instant>,
}

impl Pipeline {
    pub fn new(engine: Engine, sink: Sink, settings: &Settings) -> Self {
        Pipeline {
            engine,
            sink,
            console: Console::new(settings.console),
            topic: settings.topic.clone(),
            late: settings.late,
            emit: settings.emit,
            guarantee: settings.guarantee,
            timeout: settings.timeout,
            committed: HashMap::new(),
            first_read: HashMap::new(),
            dirty: false,
            counters: Counters::default(),
            started: Instant::now(),
            first_record: None,
            last_record: None,
        }
    }

    fn wall_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Handles one input record; `now` is the time of the batch it came in.
    pub fn on_message(&mut self, msg: &BorrowedMessage<'_>, now: Instant) -> anyhow::Result<()> {
        let (partition, offset) = (msg.partition(), msg.offset());
        let wall = i64::try_from(now.saturating_duration_since(self.started).as_millis())
            .unwrap_or(i64::MAX);
        self.first_read.entry(partition).or_insert(offset);
        let decoded = classify(msg.payload());
        if self.engine.is_replay(partition, offset) {
            self.counters.replayed += 1;
            match decoded {
                Ok((record, t)) => {
                    self.engine.process(partition, offset, t, &record, wall);
                }
                Err(_) => self.engine.skip(partition, offset),
            }
            return Ok(());
        }
        self.counters.input += 1;
        self.dirty = true;
        self.first_record.get_or_insert(now);
        self.last_record = Some(now);
        match decoded {
            Ok((record, t)) => match self.engine.process(partition, offset, t, &record, wall) {
                Outcome::Late => {
                    self.counters.late += 1;
                    if self.late == LatePolicy::DeadLetter {
                        let why = format!(
                            "event time {} is behind the watermark of partition {partition}: every window containing it is final",
                            crate::aggregate::bar::rfc3339(t)
                        );
                        self.sink.dead_letter(msg, "late", &why)?;
                    }
                }
                Outcome::Aggregated | Outcome::Replayed => self.counters.processed += 1,
            },
            Err((reason, why)) => {
                self.counters.bad += 1;
                self.engine.skip(partition, offset);
                self.sink.dead_letter(msg, reason, &why)?;
            }
        }
        self.emit_finals()
    }

    pub fn caught_up(&mut self, partition: i32) {
        self.engine.set_caught_up(partition, true);
    }

    fn emit_finals(&mut self) -> anyhow::Result<()> {
        for bar in self.engine.take_finals() {
            // The checkpoint moved (a window closed), so the next commit must record it.
            self.dirty = true;
            self.sink.bar(&bar)?;
            self.console.show(&bar);
            self.counters.bars += 1;
        }
        Ok(())
    }

    /// Commits output and input offsets (with checkpoints) together.
    pub fn commit(&mut self, consumer: &BaseConsumer<JobContext>) -> anyhow::Result<()> {
        self.engine.tick(self.wall_ms());
        self.emit_finals()?;
        if self.emit == EmitMode::Update {
            for bar in self.engine.take_updates() {
                self.sink.bar(&bar)?;
                self.console.show(&bar);
            }
        }
        if !self.dirty && !self.sink.in_transaction {
            return Ok(());
        }
        let (tpl, checkpoints) = self.offsets()?;
        let done = match self.guarantee {
            Guarantee::ExactlyOnce => self.commit_transaction(consumer, &tpl),
            Guarantee::AtLeastOnce => self.commit_plain(consumer, &tpl),
        }?;
        if done {
            self.committed.extend(checkpoints);
            self.dirty = false;
        }
        Ok(())
    }

    fn offsets(&self) -> anyhow::Result<(TopicPartitionList, Vec<(i32, Checkpoint)>)> {
        let mut tpl = TopicPartitionList::new();
        let mut checkpoints = Vec::new();
        for partition in self.engine.partitions() {
            let Some(c) = self.engine.checkpoint(partition) else {
                continue;
            };
            let mut e = tpl.add_partition(&self.topic, partition);
            e.set_offset(Offset::Offset(c.resume_at))?;
            e.set_metadata(c.encode());
            checkpoints.push((partition, c));
        }
        Ok((tpl, checkpoints))
    }

    /// `Ok(false)` when the transaction had to be aborted (the job then rewinds and redoes it).
    fn commit_transaction(
        &mut self,
        consumer: &BaseConsumer<JobContext>,
        tpl: &TopicPartitionList,
    ) -> anyhow::Result<bool> {
        self.sink.begin()?;
        let producer = &self.sink.producer;
        let meta = consumer
            .group_metadata()
            .ok_or_else(|| anyhow!("the consumer has no group metadata to commit offsets with"))?;
        let result = if tpl.count() > 0 {
            producer.send_offsets_to_transaction(tpl, &meta, self.timeout)
        } else {
            Ok(())
        }
        .and_then(|()| producer.commit_transaction(self.timeout));
        match result {
            Ok(()) => {
                self.sink.in_transaction = false;
                Ok(true)
            }
            Err(KafkaError::Transaction(e)) if e.txn_requires_abort() || e.is_retriable() => {
                tracing::warn!(target: LOG, "transaction aborted ({e}); rewinding to the last commit and redoing it");
                self.sink
                    .producer
                    .abort_transaction(self.timeout)
                    .context("aborting the transaction")?;
                self.sink.in_transaction = false;
                self.rewind(consumer);
                Ok(false)
            }
            Err(e) => Err(anyhow!(
                "committing the transaction failed and cannot be retried: {e}\n  \
                 hint: another instance with the same --instance-id may have taken over (each instance needs its own)"
            )),
        }
    }

    fn commit_plain(
        &mut self,
        consumer: &BaseConsumer<JobContext>,
        tpl: &TopicPartitionList,
    ) -> anyhow::Result<bool> {
        self.sink
            .producer
            .flush(self.timeout)
            .context("waiting for output records to be delivered")?;
        let failed = self
            .sink
            .producer
            .context()
            .failed
            .swap(0, Ordering::Relaxed);
        if failed > 0 {
            let why = self
                .sink
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
        if tpl.count() > 0 {
            consumer
                .commit(tpl, CommitMode::Sync)
                .context("committing input offsets")?;
        }
        Ok(true)
    }

    /// After an abort: back to the last committed state of every owned partition.
    fn rewind(&mut self, consumer: &BaseConsumer<JobContext>) {
        let wall = self.wall_ms();
        let owned: Vec<i32> = self.engine.partitions().collect();
        for partition in owned {
            let restore = self.committed.get(&partition).copied();
            let from = restore
                .map(|c| c.replay_from)
                .or_else(|| self.first_read.get(&partition).copied());
            self.engine.assign(partition, restore, wall);
            if let Some(from) = from {
                if let Err(e) =
                    consumer.seek(&self.topic, partition, Offset::Offset(from), self.timeout)
                {
                    tracing::error!(target: LOG, "rewinding partition {partition} to offset {from}: {e}");
                }
            }
        }
        self.engine.take_finals();
    }

    /// Partitions arrive: restore each from its checkpoint and start it at its replay offset.
    pub fn assign(&mut self, consumer: &BaseConsumer<JobContext>, tpl: &mut TopicPartitionList) {
        let wall = self.wall_ms();
        let committed = committed_with_retries(consumer, tpl, self.timeout);
        let mut notes = Vec::new();
        for e in tpl.elements() {
            let partition = e.partition();
            let found = committed.as_ref().and_then(|c| {
                c.find_partition(&self.topic, partition)
                    .and_then(|c| match c.offset() {
                        Offset::Offset(at) => Some((at, c.metadata().to_string())),
                        _ => None,
                    })
            });
            let restore = found
                .as_ref()
                .and_then(|(at, meta)| Checkpoint::decode(meta, *at));
            match (&found, restore) {
                (_, Some(c)) => {
                    notes.push(format!(
                        "{partition}@{} (replay from {})",
                        c.resume_at, c.replay_from
                    ));
                    self.committed.insert(partition, c);
                }
                (Some((at, _)), None) => {
                    notes.push(format!("{partition}@{at} (no checkpoint: fresh windows)"));
                }
                (None, None) => notes.push(format!("{partition}@{}", "start")),
            }
            self.engine.assign(partition, restore, wall);
            self.first_read.remove(&partition);
        }
        for (partition, c) in &self.committed {
            if tpl.find_partition(&self.topic, *partition).is_some() {
                let _ = tpl.set_partition_offset(
                    &self.topic,
                    *partition,
                    Offset::Offset(c.replay_from),
                );
            }
        }
        if committed.is_none() {
            tracing::error!(target: LOG, "could not read the committed offsets of the new partitions; starting them without their checkpoints");
        }
        tracing::info!(target: LOG, "📥 Partitions assigned: {}", notes.join(", "));
    }

    /// Partitions leave: commit the work done on them first (unless they are already lost).
    pub fn revoke(
        &mut self,
        consumer: &BaseConsumer<JobContext>,
        tpl: &TopicPartitionList,
        lost: bool,
    ) {
        if lost {
            if self.sink.in_transaction {
                let _ = self.sink.producer.abort_transaction(self.timeout);
                self.sink.in_transaction = false;
            }
        } else if let Err(e) = self.commit(consumer) {
            tracing::warn!(target: LOG, "committing before a rebalance: {e:#}");
        }
        let mut gone = Vec::new();
        for e in tpl.elements() {
            self.engine.revoke(e.partition());
            self.committed.remove(&e.partition());
            self.first_read.remove(&e.partition());
            gone.push(e.partition().to_string());
        }
        if !gone.is_empty() {
            tracing::info!(target: LOG, "📤 Partitions revoked: {}", gone.join(", "));
        }
    }

    /// A clean stop: commit what is final; open windows stay for the next run to rebuild.
    pub fn shutdown(&mut self, consumer: &BaseConsumer<JobContext>) -> anyhow::Result<()> {
        let result = self.commit(consumer);
        if self.sink.in_transaction {
            let _ = self.sink.producer.abort_transaction(self.timeout);
        }
        let _ = self.sink.producer.flush(self.timeout);
        self.console.finish();
        let c = self.counters;
        let span = match (self.first_record, self.last_record) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let rate = if span > 0.0 {
            c.input as f64 / span
        } else {
            0.0
        };
        tracing::info!(
            target: LOG,
            "📋 Summary: {} records read, {} aggregated, {} late, {} bad, {} bars emitted; {:.2}s from first to last record ({} records/s)",
            c.input, c.processed, c.late, c.bad, c.bars, span, rate.round()
        );
        result
    }

    pub fn all_caught_up(&self) -> bool {
        self.engine.all_caught_up()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counters: self.counters,
            watermarks: self.engine.watermarks(),
            open_windows: self.engine.open_windows(),
        }
    }
}

/// Reads committed offsets; a read_committed consumer may be told to retry while another
/// instance's transaction is still open, so it retries until `timeout`.
fn committed_with_retries(
    consumer: &BaseConsumer<JobContext>,
    tpl: &TopicPartitionList,
    timeout: Duration,
) -> Option<TopicPartitionList> {
    let deadline = Instant::now() + timeout;
    loop {
        match consumer.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
            Ok(c) => return Some(c),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(target: LOG, "reading committed offsets: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                tracing::error!(target: LOG, "reading committed offsets: {e}");
                return None;
            }
        }
    }
}

/// A valid record with its event time in ms, or the dead-letter reason and message.
fn classify(payload: Option<&[u8]>) -> Result<(StockRecord, i64), (&'static str, String)> {
    let bytes = payload.unwrap_or_default();
    if bytes.len() > MAX_RECORD_BYTES {
        return Err((
            "too_large",
            format!(
                "payload of {} bytes is larger than {MAX_RECORD_BYTES}",
                bytes.len()
            ),
        ));
    }
    let record = record::decode(bytes).map_err(|e| (e.reason(), e.to_string()))?;
    let t = event_millis(record.timestamp);
    if t > MAX_EVENT_MILLIS {
        return Err((
            "invalid_record",
            "field `timestamp` is beyond the year 9999".to_string(),
        ));
    }
    Ok((record.into_inner(), t))
}
