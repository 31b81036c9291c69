//! The job between Kafka and the engine: decode each record, route bad and late ones to the
//! dead-letter topic, send bars, and commit output and input offsets together — in one
//! transaction per commit interval with exactly-once, or flush-then-commit with
//! at-least-once. Each committed offset carries its partition's checkpoint, so a restart
//! replays exactly what the open windows need.
//!
//! A commit never holds the reading up. It starts from a checkpoint taken when it starts
//! (every output of the records before it already sent), runs in the background, and the
//! records read meanwhile go to the next commit. The next starts once the commit interval
//! has passed and the previous one has ended, so under a backlog commits follow each other
//! as fast as the broker answers them.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use super::context::JobContext;
use super::fetch::Input;
use super::output::Console;
use super::sink::{Outcome as Committed, Sink};
use super::{EmitMode, Guarantee, LatePolicy, Settings, LOG};
use crate::aggregate::{ByPartition, Checkpoint, Engine, Outcome};
use crate::numbers::{count, thousands};
use crate::record::{self, Limits, Tick};
use crate::signals::Stop;
use crate::timing::CommitTimes;

/// Running totals for progress reports and the final summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub input: u64,
    pub processed: u64,
    pub late: u64,
    pub bad: u64,
    pub bars: u64,
    pub replayed: u64,
    /// Records handed out again by the consumer after it went back: skipped.
    pub again: u64,
    /// Rebalances: partitions assigned to this instance, and taken away (or lost).
    pub assigned: u64,
    pub revoked: u64,
}

/// A copy of what progress reports show.
pub struct Snapshot {
    pub counters: Counters,
    pub watermarks: Vec<(i32, Option<i64>)>,
    pub open_windows: usize,
    /// Dead letters sent, by reason.
    pub dead_letters: Vec<(&'static str, u64)>,
    /// Transactions committed and aborted (exactly-once).
    pub transactions_committed: u64,
    pub transactions_aborted: u64,
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
    limits: Limits,
    dirty: bool,
    counters: Counters,
    started: Instant,
    /// The Unix time of `started`, ms.
    started_unix_ms: i64,
    /// When the first and the latest new record were read: the processing rate's span.
    first_record: Option<Instant>,
    last_record: Option<Instant>,
    stop: Stop,
    /// Set when state could not be rebuilt: nothing may be committed any more.
    unusable: Option<String>,
    output_topic: String,
    /// The output topic's retention.ms, until a bar older than it was reported.
    retention_unwarned: Option<i64>,
    confirmed_end: EndCheck,
    /// A commit failed for good: the job ends with this error.
    failure: Option<String>,
    /// The commit under way, and when it began.
    committing: Option<Committing>,
    commit_began: Instant,
    commit_times: CommitTimes,
    /// The same durations for /metrics (a no-op without --metrics-addr).
    commit_seconds: metrics::Histogram,
    /// With `--emit update`: how often changed windows send a revision, and when they last did.
    update_interval: Duration,
    last_updates: Instant,
}

/// A commit under way.
enum Committing {
    /// A transaction, on the sink's transaction thread.
    Transaction,
    /// At-least-once: input offsets to commit once every output record up to `sent` is
    /// acknowledged.
    Offsets {
        offsets: TopicPartitionList,
        sent: u64,
    },
}

/// Asks the broker whether a silent partition really has nothing waiting: its end offset
/// is the consumer's position. Silence alone cannot tell an idle producer from a broker
/// that cannot be reached, or records the consumer has not fetched yet.
#[derive(Default)]
struct EndCheck {
    /// When each partition was last confirmed at its end.
    confirmed: ByPartition<Instant>,
    /// When the broker last failed to answer: no question before a pause.
    failed: Option<Instant>,
}

impl EndCheck {
    /// A confirmation holds this long, so an idle partition costs one request a second.
    const VALID: Duration = Duration::from_secs(1);

    fn nothing_waits(
        &mut self,
        consumer: &BaseConsumer<JobContext>,
        topic: &str,
        partition: i32,
    ) -> bool {
        let now = Instant::now();
        if self.failed.is_some_and(|at| now - at < Self::VALID) {
            return false;
        }
        if self
            .confirmed
            .get(&partition)
            .is_some_and(|at| now - *at < Self::VALID)
        {
            return true;
        }
        let position = consumer.position().ok().and_then(|tpl| {
            match tpl.find_partition(topic, partition)?.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }
        });
        let end = consumer
            .fetch_watermarks(topic, partition, Duration::from_millis(500))
            .map(|(_, high)| high);
        match (position, end) {
            (Some(at), Ok(end)) if at >= end => {
                self.confirmed.insert(partition, now);
                true
            }
            (_, Err(_)) => {
                self.failed = Some(now);
                false
            }
            _ => false,
        }
    }
}

impl Pipeline {
    pub fn new(
        engine: Engine,
        sink: Sink,
        console: Console,
        settings: &Settings,
        output_retention: Option<i64>,
        stop: Stop,
    ) -> Self {
        Pipeline {
            engine,
            sink,
            console,
            topic: settings.topic.clone(),
            late: settings.late,
            emit: settings.emit,
            guarantee: settings.guarantee,
            timeout: settings.timeout,
            limits: settings.limits,
            dirty: false,
            counters: Counters::default(),
            started: Instant::now(),
            started_unix_ms: record::now_millis(),
            first_record: None,
            last_record: None,
            stop,
            unusable: None,
            output_topic: settings.output_topic.clone(),
            retention_unwarned: output_retention,
            confirmed_end: EndCheck::default(),
            failure: None,
            committing: None,
            commit_began: Instant::now(),
            commit_times: CommitTimes::default(),
            commit_seconds: metrics::histogram!(super::metrics::COMMIT_DURATION),
            update_interval: settings.update_interval,
            last_updates: Instant::now(),
        }
    }

    /// The wall clock in Unix ms.
    fn unix_ms(&self) -> i64 {
        self.started_unix_ms.saturating_add(self.wall_ms())
    }

    /// Says once that the broker deletes bars as old as `bar` at once, and what to do.
    fn warn_if_expired(&mut self, window_end: i64) {
        let Some(retention) = self.retention_unwarned else {
            return;
        };
        if window_end >= self.unix_ms().saturating_sub(retention) {
            return;
        }
        self.retention_unwarned = None;
        tracing::warn!(
            target: LOG,
            "⚠️  bars of windows ending before {} are older than `{}`'s retention ({}): the broker deletes them within minutes (a bar's timestamp is its window end). To keep them, write to an output topic with retention.ms=-1, e.g. a new --output-topic with `--output-retention forever`",
            crate::aggregate::bar::rfc3339(self.unix_ms().saturating_sub(retention)),
            self.output_topic,
            super::retention_text(retention)
        );
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
        if self.engine.already_read(partition, offset) {
            if self.counters.again == 0 {
                tracing::warn!(
                    target: LOG,
                    "partition {partition}: the consumer handed out offset {offset} again, already read (its position was reset); records read before are skipped, not counted twice"
                );
            }
            self.counters.again += 1;
            return Ok(());
        }
        let wall = self.wall_ms_at(now);
        let decoded = Tick::check(
            msg.key,
            msg.payload,
            self.started_unix_ms.saturating_add(wall),
            msg.timestamp,
            &self.limits,
        );
        if self.engine.is_replay(partition, offset) {
            self.counters.replayed += 1;
            match decoded {
                Ok(tick) => {
                    self.engine.process(partition, offset, &tick, wall);
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
            Ok(tick) => match self.engine.process(partition, offset, &tick, wall) {
                Outcome::Late => {
                    self.counters.late += 1;
                    if self.late == LatePolicy::DeadLetter {
                        let why = format!(
                            "event time {} is behind the watermark of partition {partition}: every window containing it is final",
                            crate::aggregate::bar::rfc3339(tick.event_ms())
                        );
                        self.sink.dead_letter(msg, "late", &why);
                    }
                }
                Outcome::Aggregated | Outcome::Replayed => self.counters.processed += 1,
            },
            Err(e) => {
                self.counters.bad += 1;
                self.engine.skip(partition, offset);
                self.sink.dead_letter(msg, e.reason(), &e.to_string());
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
            self.warn_if_expired(bar.window_end);
            self.sink.bar(&bar);
            self.console.show(&bar);
            self.counters.bars += 1;
        }
    }

    /// With `--emit update`, sends a revision of every window that changed, once
    /// `--update-interval` has passed since the last.
    pub fn send_updates(&mut self, now: Instant) {
        if self.emit != EmitMode::Update || now < self.last_updates + self.update_interval {
            return;
        }
        self.last_updates = now;
        for bar in self.engine.take_updates() {
            self.sink.bar(&bar);
            self.console.show(&bar);
        }
    }

    /// Whether a commit is under way.
    pub fn committing(&self) -> bool {
        self.committing.is_some()
    }

    /// Whether the job must wait for the commit under way before it reads on: too much
    /// output is waiting for the next transaction.
    pub fn must_wait(&self) -> bool {
        self.sink.full()
    }

    /// Commits output and input offsets (with checkpoints) together, and waits until that is
    /// done. An error ends the job: it is kept (`failure`), and nothing is committed after it.
    pub fn commit(&mut self, consumer: &BaseConsumer<JobContext>) -> anyhow::Result<()> {
        self.keeping_failure(|p| {
            p.finish(consumer, true)?;
            p.begin(consumer, true)?;
            p.finish(consumer, true)
        })
    }

    /// Starts a commit unless one is under way; `poll_commit` and `commit` see it end.
    pub fn start_commit(&mut self, consumer: &BaseConsumer<JobContext>) -> anyhow::Result<()> {
        if self.committing.is_some() {
            return Ok(());
        }
        self.keeping_failure(|p| p.begin(consumer, false))
    }

    /// Deals with the end of the commit under way, if it has ended.
    pub fn poll_commit(&mut self, consumer: &BaseConsumer<JobContext>) -> anyhow::Result<()> {
        if self.committing.is_none() {
            return Ok(());
        }
        self.keeping_failure(|p| p.finish(consumer, false))
    }

    /// Waits for the commit under way, if any, to end.
    pub fn finish_commit(&mut self, consumer: &BaseConsumer<JobContext>) -> anyhow::Result<()> {
        self.keeping_failure(|p| p.finish(consumer, true))
    }

    fn keeping_failure(
        &mut self,
        f: impl FnOnce(&mut Self) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if self.failure.is_some() {
            return Ok(());
        }
        let result = f(self);
        if let Err(e) = &result {
            self.failure = Some(format!("{e:#}"));
        }
        result
    }

    /// Why the job must stop, when a commit failed for good (e.g. during a rebalance).
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Takes a checkpoint of every owned partition and starts committing it with the output
    /// sent so far. `wait`: the caller will wait for it (a rebalance, the end), so the
    /// at-least-once offsets are committed synchronously.
    fn begin(&mut self, consumer: &BaseConsumer<JobContext>, wait: bool) -> anyhow::Result<()> {
        if let Some(why) = &self.unusable {
            return Err(anyhow!(
                "{why}; stopping without committing, so a restart redoes the work"
            ));
        }
        let wall = self.wall_ms();
        let (topic, confirmed) = (&self.topic, &mut self.confirmed_end);
        self.engine
            .tick(wall, |p| confirmed.nothing_waits(consumer, topic, p));
        self.emit_finals();
        // Revisions go out with the commit at the latest.
        self.last_updates = self.started;
        self.send_updates(Instant::now());
        if !self.dirty && !self.sink.pending() {
            return Ok(());
        }
        let offsets = self.offsets()?;
        self.dirty = false;
        self.commit_began = Instant::now();
        match self.guarantee {
            Guarantee::ExactlyOnce => {
                let group = consumer.group_metadata().ok_or_else(|| {
                    anyhow!("the consumer has no group metadata to commit offsets with")
                })?;
                match self.sink.start_commit(offsets, group)? {
                    None => self.committing = Some(Committing::Transaction),
                    Some(_) => self.reload(consumer),
                }
            }
            Guarantee::AtLeastOnce => {
                self.committing = Some(Committing::Offsets {
                    offsets,
                    sent: self.sink.last_sent(),
                });
                if wait {
                    self.sink.flush()?;
                }
            }
        }
        Ok(())
    }

    /// Ends the commit under way if it is done (or, with `wait`, once it is).
    fn finish(&mut self, consumer: &BaseConsumer<JobContext>, wait: bool) -> anyhow::Result<()> {
        let Some(committing) = self.committing.take() else {
            return Ok(());
        };
        self.end(consumer, committing, wait)?;
        if self.committing.is_none() {
            let took = self.commit_began.elapsed();
            self.commit_times.record(took);
            self.commit_seconds.record(took.as_secs_f64());
        }
        Ok(())
    }

    /// `finish` of the commit `committing`: put back while it is under way.
    fn end(
        &mut self,
        consumer: &BaseConsumer<JobContext>,
        committing: Committing,
        wait: bool,
    ) -> anyhow::Result<()> {
        match committing {
            Committing::Transaction => {
                let outcome = if wait {
                    self.sink.finish_commit()?
                } else {
                    self.sink.poll_commit()?
                };
                match outcome {
                    None if self.sink.committing() => {
                        self.committing = Some(Committing::Transaction);
                    }
                    None | Some(Committed::Committed) => {}
                    Some(Committed::NotCommitted) => self.reload(consumer),
                }
            }
            Committing::Offsets { offsets, sent } => {
                if wait {
                    self.sink.flush()?;
                } else if !self.sink.delivered_through(sent)? {
                    self.committing = Some(Committing::Offsets { offsets, sent });
                    return Ok(());
                }
                if offsets.count() > 0 {
                    // After a stop, the consumer's close waits for an async commit at most
                    // as long as the brokers are given: a sync one has no bound.
                    let mode = if wait && !self.stop.requested() {
                        CommitMode::Sync
                    } else {
                        CommitMode::Async
                    };
                    consumer
                        .commit(&offsets, mode)
                        .context("committing input offsets")?;
                }
            }
        }
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
        self.counters.assigned += 1;
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
            self.committing = None;
        } else {
            // A failure is kept, and ends the job once the rebalance is over.
            let _ = self.commit(consumer);
        }
        let mut gone = Vec::new();
        for e in tpl.elements() {
            self.engine.revoke(e.partition());
            gone.push(e.partition().to_string());
        }
        if !gone.is_empty() {
            self.counters.revoked += 1;
            tracing::info!(target: LOG, "📤 Partitions revoked: {}", gone.join(", "));
        }
    }

    /// Forgets every partition and aborts what is open, for a consumer that is gone.
    pub fn abandon(&mut self) {
        self.sink.close();
        self.committing = None;
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
        if c.again > 0 {
            tracing::warn!(target: LOG, "{} handed out again by the consumer and skipped", count(c.again, "record was", "records were"));
        }
        tracing::info!(
            target: LOG,
            "📋 Summary: {} read, {} aggregated, {} late, {} bad, {} emitted, {} re-read to rebuild open windows; {:.2}s from first to last record ({}); {}",
            count(c.input, "record", "records"), thousands(c.processed), thousands(c.late), thousands(c.bad), count(c.bars, "bar", "bars"), thousands(c.replayed), span, count(rate.round() as u64, "record/s", "records/s"), self.commit_times.describe()
        );
        if self.guarantee == Guarantee::ExactlyOnce && self.sink.commit_times.count() > 0 {
            tracing::info!(
                target: LOG,
                "⏱️  Transactions: sending the offsets and the output took a median {} ms (p99 {} ms), committing {} ms (p99 {} ms)",
                self.sink.offsets_times.quantile(0.5),
                self.sink.offsets_times.quantile(0.99),
                self.sink.commit_times.quantile(0.5),
                self.sink.commit_times.quantile(0.99)
            );
        }
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
            dead_letters: self.sink.dead_letters(),
            transactions_committed: self.sink.commit_times.count(),
            transactions_aborted: self.sink.aborted(),
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
