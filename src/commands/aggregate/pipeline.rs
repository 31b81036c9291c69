//! The job between Kafka and the engine: decode each record, route bad and late ones to the
//! dead-letter topic, send bars, and commit output and input offsets together — in one
//! transaction per commit interval with exactly-once, or flush-then-commit with
//! at-least-once. Each committed offset carries its partition's checkpoint, so a restart
//! replays exactly what the open windows need.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use super::context::JobContext;
use super::fetch::Input;
use super::output::Console;
use super::sink::Sink;
use super::{EmitMode, Guarantee, LatePolicy, Settings, LOG};
use crate::aggregate::window::{event_millis, MAX_EVENT_MILLIS};
use crate::aggregate::{ByPartition, Checkpoint, Engine, Outcome};
use crate::record::{self, StockRecord};
use crate::signals::Stop;

/// A payload longer than this is not a tick: dead-lettered as `too_large`.
const MAX_RECORD_BYTES: usize = 64 * 1024;

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
    dirty: bool,
    counters: Counters,
    started: Instant,
    /// When the first and the latest new record were read: the processing rate's span.
    first_record: Option<Instant>,
    last_record: Option<Instant>,
    stop: Stop,
    /// Set when state could not be rebuilt: nothing may be committed any more.
    unusable: Option<String>,
}

impl Pipeline {
    pub fn new(engine: Engine, sink: Sink, settings: &Settings, stop: Stop) -> Self {
        Pipeline {
            engine,
            sink,
            console: Console::new(settings.console),
            topic: settings.topic.clone(),
            late: settings.late,
            emit: settings.emit,
            guarantee: settings.guarantee,
            timeout: settings.timeout,
            dirty: false,
            counters: Counters::default(),
            started: Instant::now(),
            first_record: None,
            last_record: None,
            stop,
            unusable: None,
        }
    }

    fn wall_ms(&self) -> i64 {
        self.wall_ms_at(Instant::now())
    }

    /// Milliseconds since the job started: the engine's wall clock.
    fn wall_ms_at(&self, at: Instant) -> i64 {
        i64::try_from(at.saturating_duration_since(self.started).as_millis()).unwrap_or(i64::MAX)
    }

    /// Handles one input record; `now` is the time of the batch it came in.
    pub fn on_message(&mut self, msg: &Input<'_>, now: Instant) -> anyhow::Result<()> {
        let (partition, offset) = (msg.partition, msg.offset);
        if !self.engine.owns(partition) {
            return Ok(()); // fetched before its partition was let go
        }
        let wall = self.wall_ms_at(now);
        let decoded = classify(msg.payload);
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
                        self.sink.dead_letter(msg, "late", &why);
                    }
                }
                Outcome::Aggregated | Outcome::Replayed => self.counters.processed += 1,
            },
            Err((reason, why)) => {
                self.counters.bad += 1;
                self.engine.skip(partition, offset);
                self.sink.dead_letter(msg, reason, &why);
            }
        }
        self.emit_finals();
        Ok(())
    }

    pub fn caught_up(&mut self, partition: i32) {
        self.engine.set_caught_up(partition, true);
    }

    /// The consumer reported an error: the silence of the partitions so far is not idleness
    /// (the broker may have been unreachable, with records waiting for us).
    pub fn consumer_trouble(&mut self) {
        self.engine.restart_silence(self.wall_ms());
    }

    fn emit_finals(&mut self) {
        for bar in self.engine.take_finals() {
            // The checkpoint moved (a window closed), so the next commit must record it.
            self.dirty = true;
            self.sink.bar(&bar);
            self.console.show(&bar);
            self.counters.bars += 1;
        }
    }

    /// Commits output and input offsets (with checkpoints) together.
    pub fn commit(&mut self, consumer: &BaseConsumer<JobContext>) -> anyhow::Result<()> {
        if let Some(why) = &self.unusable {
            return Err(anyhow!(
                "{why}; stopping without committing, so a restart redoes the work"
            ));
        }
        self.engine.tick(self.wall_ms());
        self.emit_finals();
        if self.emit == EmitMode::Update {
            for bar in self.engine.take_updates() {
                self.sink.bar(&bar);
                self.console.show(&bar);
            }
        }
        if !self.dirty && !self.sink.pending() {
            return Ok(());
        }
        let offsets = self.offsets()?;
        match self.guarantee {
            Guarantee::ExactlyOnce => {
                let group = consumer.group_metadata().ok_or_else(|| {
                    anyhow!("the consumer has no group metadata to commit offsets with")
                })?;
                if !self.sink.commit_transaction(&offsets, &group)? {
                    self.reload(consumer);
                    return Ok(());
                }
            }
            Guarantee::AtLeastOnce => {
                self.sink.flush()?;
                if offsets.count() > 0 {
                    consumer
                        .commit(&offsets, CommitMode::Sync)
                        .context("committing input offsets")?;
                }
            }
        }
        self.dirty = false;
        Ok(())
    }

    fn offsets(&self) -> anyhow::Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for partition in self.engine.partitions() {
            let Some(c) = self.engine.checkpoint(partition) else {
                continue;
            };
            let mut e = tpl.add_partition(&self.topic, partition);
            e.set_offset(Offset::Offset(c.resume_at))?;
            e.set_metadata(c.encode());
        }
        Ok(tpl)
    }

    /// After a transaction that did not commit: every owned partition back to what the
    /// broker has committed, and read again from there.
    fn reload(&mut self, consumer: &BaseConsumer<JobContext>) {
        let Ok(mut owned) = consumer.assignment() else {
            return;
        };
        let first_seen: ByPartition<i64> = self
            .engine
            .partitions()
            .filter_map(|p| self.engine.first_seen(p).map(|o| (p, o)))
            .collect();
        self.restore(consumer, &mut owned);
        for e in owned.elements() {
            let from = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => first_seen.get(&e.partition()).copied(),
            };
            if let Some(from) = from {
                if let Err(err) = consumer.seek(
                    &self.topic,
                    e.partition(),
                    Offset::Offset(from),
                    self.timeout,
                ) {
                    tracing::error!(target: LOG, "rewinding partition {} to offset {from}: {err}", e.partition());
                }
            }
        }
        self.dirty = false;
    }

    /// Partitions arrive: restore each from its checkpoint and start it at its replay offset.
    pub fn assign(&mut self, consumer: &BaseConsumer<JobContext>, tpl: &mut TopicPartitionList) {
        let notes = self.restore(consumer, tpl);
        tracing::info!(target: LOG, "📥 Partitions assigned: {}", notes.join(", "));
    }

    /// Sets the engine's state of each partition in `tpl` from the broker's committed
    /// offset and checkpoint, and each element's offset to where reading must start
    /// (left unset where nothing was committed). Returns a note per partition.
    fn restore(
        &mut self,
        consumer: &BaseConsumer<JobContext>,
        tpl: &mut TopicPartitionList,
    ) -> Vec<String> {
        let wall = self.wall_ms();
        let committed = committed_with_retries(consumer, tpl, self.timeout, &self.stop);
        if committed.is_none() {
            // Nothing may be committed from state that was not rebuilt.
            self.unusable =
                Some("the committed offsets of newly assigned partitions could not be read".into());
        }
        let mut notes = Vec::new();
        let mut starts = Vec::new();
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
                    starts.push((partition, c.replay_from));
                }
                (Some((at, _)), None) => {
                    notes.push(format!("{partition}@{at} (no checkpoint: fresh windows)"));
                    starts.push((partition, *at));
                }
                (None, None) => notes.push(format!("{partition}@start")),
            }
            self.engine.assign(partition, restore, wall);
        }
        for (partition, at) in starts {
            let _ = tpl.set_partition_offset(&self.topic, partition, Offset::Offset(at));
        }
        self.engine.take_finals();
        notes
    }

    /// Partitions leave: commit the work done on them first (unless they are already lost).
    pub fn revoke(
        &mut self,
        consumer: &BaseConsumer<JobContext>,
        tpl: &TopicPartitionList,
        lost: bool,
    ) {
        if lost {
            self.sink.close();
        } else if let Err(e) = self.commit(consumer) {
            tracing::warn!(target: LOG, "committing before a rebalance: {e:#}");
        }
        let mut gone = Vec::new();
        for e in tpl.elements() {
            self.engine.revoke(e.partition());
            gone.push(e.partition().to_string());
        }
        if !gone.is_empty() {
            tracing::info!(target: LOG, "📤 Partitions revoked: {}", gone.join(", "));
        }
    }

    /// Forgets every partition and aborts what is open, for a consumer that is gone.
    pub fn abandon(&mut self) {
        self.sink.close();
        let owned: Vec<i32> = self.engine.partitions().collect();
        for partition in owned {
            self.engine.revoke(partition);
        }
        self.dirty = false;
    }

    /// A clean stop: commit what is final; open windows stay for the next run to rebuild.
    pub fn shutdown(&mut self, consumer: &BaseConsumer<JobContext>) -> anyhow::Result<()> {
        let result = self.commit(consumer);
        self.sink.close();
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
            "📋 Summary: {} records read, {} aggregated, {} late, {} bad, {} bars emitted, {} re-read to rebuild open windows; {:.2}s from first to last record ({} records/s)",
            c.input, c.processed, c.late, c.bad, c.bars, c.replayed, span, rate.round()
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
    stop: &Stop,
) -> Option<TopicPartitionList> {
    // Without the checkpoints, open windows cannot be rebuilt: keep asking (a broker may be
    // restarting, or another instance's transaction still open) until it answers or a
    // stop is asked for.
    loop {
        match consumer.committed_offsets(tpl.clone(), timeout.min(Duration::from_secs(5))) {
            Ok(c) => return Some(c),
            Err(e) if !stop.requested() => {
                tracing::warn!(target: LOG, "reading committed offsets: {e}; retrying");
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
