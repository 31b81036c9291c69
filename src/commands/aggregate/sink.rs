//! Everything `aggregate` writes — bars and dead letters — through one producer, and the
//! commit that makes them visible together with the input offsets. With exactly-once this
//! is a transaction, and this module owns its error handling: a retriable commit is retried,
//! an abortable one aborted, a fatal producer replaced; a fenced one (another instance
//! took this --instance-id) stops the job. The caller rebuilds from the broker's committed
//! state whenever a transaction did not commit.
//!
//! A record the brokers refuse for good (too large for its topic, not authorised, an
//! invalid timestamp) is never retried: sending it again would fail the same way, forever.
//! The job stops naming the record and the cause, with nothing committed past it. A dead
//! letter is cut to fit its topic's `max.message.bytes` before it is sent, so the bad
//! record that caused it can never be the one that stops the job.
//!
//! A commit does not hold the job up: it runs on the transaction thread while the job reads
//! on. What the job sends meanwhile belongs to the next transaction (the open one is being
//! committed and cannot take more), so it waits here, in order, until the commit is
//! answered; a commit that fails drops it with everything else past the last commit.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext, PurgeConfig,
};
use rdkafka::TopicPartitionList;

use super::fetch::Input;
use super::txn::{Reply, Stuck, Txn};
use super::{Guarantee, Settings, LOG};
use crate::aggregate::bar::rfc3339;
use crate::aggregate::Bar;
use crate::dead_letter::{DeadLetter, Source};
use crate::exit::Failure;
use crate::kafka::{self, CreateClient as _, Observer};
use crate::record::Symbol;
use crate::signals::{Stop, PATIENCE};
use crate::timing::CommitTimes;

/// What an output record is, to name it when it cannot be delivered.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    Bar {
        symbol: Symbol,
        window_start: i64,
        window_end: i64,
    },
    /// The dead letter of the input record at (partition, offset).
    DeadLetter { partition: i32, offset: i64 },
}

impl Origin {
    fn describe(self, sink: &Sink) -> String {
        match self {
            Origin::Bar {
                symbol,
                window_start,
                window_end,
            } => format!(
                "the {symbol} bar of window {} – {} (to `{}`)",
                rfc3339(window_start),
                rfc3339(window_end),
                sink.output_topic
            ),
            Origin::DeadLetter { partition, offset } => format!(
                "the dead letter of `{}` partition {partition} offset {offset} (to `{}`)",
                sink.source_topic, sink.dlq_topic
            ),
        }
    }
}

/// An output record on its way: its number in this job's output, and what it is.
pub struct Sent {
    seq: u64,
    origin: Origin,
}

/// Counts failed deliveries (at-least-once checks them before it commits input offsets;
/// a transaction fails its commit by itself), keeps the first that failed for good, and
/// which records are not acknowledged yet.
#[derive(Default)]
pub struct Deliveries {
    observer: Observer,
    failed: AtomicU64,
    last_failure: Mutex<Option<String>>,
    refused: Mutex<Option<(Origin, String)>>,
    unanswered: Mutex<BTreeSet<u64>>,
}

crate::kafka::observed_context!(Deliveries);

impl Deliveries {
    fn unanswered(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.unanswered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Sent>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Sent>) {
        self.unanswered().remove(&sent.seq);
        let origin = sent.origin;
        if let Err((err, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = self.last_failure.lock() {
                *last = Some(err.to_string());
            }
            if refused_for_good(err) {
                if let Ok(mut refused) = self.refused.lock() {
                    refused.get_or_insert_with(|| (origin, err.to_string()));
                }
            }
        }
    }
}

/// Whether the brokers (or librdkafka, before sending) refuse this record whatever happens:
/// retrying it can only fail again.
fn refused_for_good(err: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        err.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::MessageBatchTooLarge
                | C::InvalidMessageSize
                | C::InvalidMessage
                | C::InvalidRecord
                | C::InvalidTimestamp
                | C::InvalidTopic
                | C::TopicAuthorizationFailed
                | C::PolicyViolation
                | C::UnsupportedForMessageFormat
                | C::UnknownPartition
                | C::UnknownTopic
        )
    )
}

/// Pause between attempts while the broker cannot be reached.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// How long a transaction call may take beyond its own timeout before the producer is
/// taken for stuck (see txn.rs).
const STUCK_AFTER: Duration = Duration::from_secs(15);

/// Output waiting for a commit to finish, at most: past this the job waits for the commit
/// before it reads on, so a slow broker cannot make it hold unbounded memory.
const WAITING_RECORDS: usize = 100_000;
const WAITING_BYTES: usize = 16 << 20;

/// The steps of a commit, to name the one that failed.
const SENDING_OFFSETS: &str = "sending the input offsets to the transaction";
const COMMITTING: &str = "committing the transaction";

/// Which topic an output record goes to.
#[derive(Debug, Clone, Copy)]
enum To {
    Output,
    DeadLetters,
}

/// An output record, owned, so it can wait for the next transaction.
struct Outgoing {
    to: To,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
    timestamp: Option<i64>,
    origin: Origin,
}

impl Outgoing {
    fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.payload.as_ref().map_or(0, Vec::len)
    }
}

/// A step of a commit that failed, and how.
type Failed = (&'static str, KafkaError);

/// How a commit's call on the transaction thread went, and how long its two steps took
/// (sending the offsets, committing).
type Answer = (Result<(), Failed>, Duration, Duration);

/// A transaction commit under way.
enum InFlight {
    /// On the transaction thread.
    Asked(Reply<Answer>),
    /// The outcome was not known yet: ask again at this time.
    AskAgainAt(Instant),
}

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// Nothing past the last commit stands: the caller rebuilds from the broker's state.
    NotCommitted,
}

/// Whether a fencing is a rival's doing rather than the coordinator's: a transaction open
/// for at least the transaction timeout (counted from before the coordinator heard of it)
/// may have been aborted for its age, which fences its producer too.
fn by_rival(open_for: Option<Duration>, transaction_timeout: Duration) -> bool {
    open_for.is_none_or(|open| open < transaction_timeout)
}

pub struct Sink {
    /// The producer, with the thread that makes its transaction calls.
    txn: Txn<Deliveries>,
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
    /// When a producer of this job was last fenced by what looked like a rival.
    last_fenced: Option<Instant>,
    /// When the open transaction began.
    opened_at: Instant,
    /// How long the coordinator lets a transaction stay open before it aborts it and
    /// fences the producer (`transaction.timeout.ms`).
    transaction_timeout: Duration,
    /// The largest record the dead-letter topic (and the producer) accepts, in bytes.
    dlq_max_bytes: usize,
    /// A record refused for good: the job must stop.
    refused: Option<String>,
    /// The brokers did not answer within `PATIENCE` of a stop: nothing more is asked of
    /// them, and what was not committed stays so.
    given_up: bool,
    /// The transaction commit under way.
    in_flight: Option<InFlight>,
    /// Output for the next transaction, while one commits.
    waiting: Vec<Outgoing>,
    waiting_bytes: usize,
    /// Output records sent so far.
    sent: u64,
    /// How long the steps of successful commits took: sending the offsets and the output,
    /// committing.
    pub offsets_times: CommitTimes,
    pub commit_times: CommitTimes,
    /// Dead letters sent, by reason, in the order the reasons first came.
    dead_letters: Vec<(&'static str, u64)>,
    /// Transactions aborted, by the job or (a producer replaced) by the coordinator.
    aborted: u64,
}

impl Sink {
    pub fn new(
        config: ClientConfig,
        settings: &Settings,
        dlq_max_bytes: usize,
        stop: Stop,
    ) -> anyhow::Result<Self> {
        let transactional = settings.guarantee == Guarantee::ExactlyOnce;
        let producer_max = config
            .get("message.max.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let txn = start(&config, transactional, settings.timeout, &stop)?;
        let transaction_timeout = kafka::transaction_timeout(&config);
        Ok(Sink {
            txn,
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
            opened_at: Instant::now(),
            transaction_timeout,
            dlq_max_bytes: dlq_max_bytes.min(producer_max),
            refused: None,
            given_up: false,
            in_flight: None,
            waiting: Vec::new(),
            waiting_bytes: 0,
            sent: 0,
            offsets_times: CommitTimes::default(),
            commit_times: CommitTimes::default(),
            dead_letters: Vec::new(),
            aborted: 0,
        })
    }

    /// Whether output was sent, or waits to be, that is not committed yet.
    pub fn pending(&self) -> bool {
        self.in_transaction || !self.waiting.is_empty()
    }

    /// Whether a transaction commit is under way.
    pub fn committing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether so much output waits for the commit under way that the job must wait too.
    pub fn full(&self) -> bool {
        self.waiting.len() >= WAITING_RECORDS || self.waiting_bytes >= WAITING_BYTES
    }

    fn send(&mut self, out: Outgoing) {
        if self.broken || self.refused.is_some() {
            return;
        }
        if self.in_flight.is_some() {
            self.waiting_bytes += out.size();
            self.waiting.push(out);
            return;
        }
        self.produce(out);
    }

    /// Sends what waited for the commit that just ended, into the next transaction.
    fn release(&mut self) {
        self.waiting_bytes = 0;
        for out in std::mem::take(&mut self.waiting) {
            self.send(out);
        }
    }

    /// Forgets what waited for the next transaction: it was past the last commit.
    fn drop_waiting(&mut self) {
        self.waiting.clear();
        self.waiting_bytes = 0;
    }

    fn produce(&mut self, out: Outgoing) {
        if self.transactional && !self.in_transaction {
            if let Err(e) = self.txn.producer().begin_transaction() {
                tracing::warn!(target: LOG, "beginning a transaction: {e}");
                self.broken = true;
                return;
            }
            self.in_transaction = true;
            self.opened_at = Instant::now();
        }
        self.sent += 1;
        let seq = self.sent;
        let topic = match out.to {
            To::Output => &self.output_topic,
            To::DeadLetters => &self.dlq_topic,
        };
        let mut record = BaseRecord::with_opaque_to(
            topic,
            Box::new(Sent {
                seq,
                origin: out.origin,
            }),
        );
        if let Some(key) = &out.key {
            record = record.key(&key[..]);
        }
        if let Some(payload) = &out.payload {
            record = record.payload(&payload[..]);
        }
        if let Some(headers) = out.headers {
            record = record.headers(headers);
        }
        if let Some(ts) = out.timestamp {
            record = record.timestamp(ts);
        }
        let deliveries = self.txn.producer().context();
        deliveries.unanswered().insert(seq);
        let failed = loop {
            match self.txn.producer().send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.txn.producer().poll(Duration::from_millis(5));
                }
                Err((err, back)) => break (err, back.delivery_opaque.origin),
            }
        };
        self.txn.producer().context().unanswered().remove(&seq);
        let (err, origin) = failed;
        if refused_for_good(&err) {
            self.refused = Some(format!("{}: {err}", origin.describe(self)));
        } else {
            tracing::warn!(target: LOG, "queueing {}: {err}", origin.describe(self));
        }
        self.broken = true;
    }

    /// Dead letters sent so far, by reason.
    pub fn dead_letters(&self) -> Vec<(&'static str, u64)> {
        self.dead_letters.clone()
    }

    /// Transactions aborted so far.
    pub fn aborted(&self) -> u64 {
        self.aborted
    }

    /// The number of the last output record sent.
    pub fn last_sent(&self) -> u64 {
        self.sent
    }

    /// Serves delivery reports, and says whether every output record up to number `seq`
    /// has been acknowledged. A record that failed ends the job (as `flush` says).
    pub fn delivered_through(&mut self, seq: u64) -> anyhow::Result<bool> {
        self.txn.producer().poll(Duration::ZERO);
        self.stop_refused()?;
        self.check_failed()?;
        Ok(self
            .txn
            .producer()
            .context()
            .unanswered()
            .first()
            .is_none_or(|first| *first > seq))
    }

    pub fn bar(&mut self, bar: &Bar) {
        self.send(Outgoing {
            to: To::Output,
            key: Some(bar.symbol.as_str().as_bytes().to_vec()),
            payload: Some(bar.to_json()),
            headers: None,
            timestamp: Some(bar.window_end),
            origin: Origin::Bar {
                symbol: bar.symbol,
                window_start: bar.window_start,
                window_end: bar.window_end,
            },
        });
    }

    /// The original key and value, and headers saying why and where from. A value (or key)
    /// too large for the dead-letter topic is cut to fit, and the headers say so.
    pub fn dead_letter(&mut self, msg: &Input<'_>, reason: &'static str, message: &str) {
        match self.dead_letters.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.dead_letters.push((reason, 1)),
        }
        let letter = DeadLetter::new(
            Source {
                topic: &self.source_topic,
                partition: msg.partition,
                offset: msg.offset,
                key: msg.key,
                value: msg.payload,
            },
            reason,
            message,
            self.dlq_max_bytes,
        );
        self.send(Outgoing {
            to: To::DeadLetters,
            key: letter.key,
            payload: letter.value,
            headers: Some(letter.headers),
            timestamp: msg.timestamp,
            origin: Origin::DeadLetter {
                partition: msg.partition,
                offset: msg.offset,
            },
        });
    }

    /// The record refused for good, if one was, and why: the job must stop.
    pub fn refused(&self) -> Option<String> {
        if let Some(r) = &self.refused {
            return Some(r.clone());
        }
        let refused = self.txn.producer().context().refused.lock().ok()?;
        let (origin, why) = refused.as_ref()?;
        Some(format!("{}: {why}", origin.describe(self)))
    }

    /// Stops on a record refused for good: aborts what is open (nothing past the last
    /// commit becomes visible) and returns the error that ends the job.
    fn stop_refused(&mut self) -> anyhow::Result<bool> {
        // Delivery reports arrive only when polled: serve those waiting.
        self.txn.producer().poll(Duration::from_millis(10));
        let Some(what) = self.refused() else {
            return Ok(false);
        };
        if self.transactional {
            let _ = self.abort();
        } else {
            self.drop_pending();
        }
        bail!(
            "the brokers refused {what}\n  \
             sending it again would fail the same way, so the job stops with nothing committed past it; \
             fix the topic (e.g. its max.message.bytes) and start again: it carries on from the last commit"
        )
    }

    /// Starts committing the open transaction with the input offsets, on the transaction
    /// thread; `poll_commit` tells how it ended. `Ok(Some(NotCommitted))`: it could not
    /// start, and the caller must rebuild from what the broker has committed.
    pub fn start_commit(
        &mut self,
        offsets: TopicPartitionList,
        group: ConsumerGroupMetadata,
    ) -> anyhow::Result<Option<Outcome>> {
        debug_assert!(self.in_flight.is_none(), "one commit at a time");
        self.stop_refused()?;
        if self.broken {
            self.abort()?;
            return Ok(Some(Outcome::NotCommitted));
        }
        if !self.in_transaction {
            if let Err(e) = self.txn.producer().begin_transaction() {
                return self.failed(e).map(|()| Some(Outcome::NotCommitted));
            }
            self.in_transaction = true;
            self.opened_at = Instant::now();
        }
        let timeout = self.timeout;
        let reply = self.txn.submit(2 * timeout + STUCK_AFTER, move |p| {
            let began = Instant::now();
            // commit_transaction waits for the output still in flight by itself, but slowly:
            // on a stream of 10,000 ticks/s its median was 100 ms with the output in flight
            // and 15 ms all told after a flush of our own. A flush that fails leaves the
            // commit to report it. Flushing first also means the broker has accepted this
            // transaction (its output partitions) before the offsets are added, so adding
            // them is not refused while the previous commit's markers are being written.
            let _ = kafka::flush(p, timeout);
            if offsets.count() > 0 {
                if let Err(e) = p.send_offsets_to_transaction(&offsets, &group, timeout) {
                    return (Err((SENDING_OFFSETS, e)), began.elapsed(), Duration::ZERO);
                }
            }
            let sent = began.elapsed();
            let committed = p.commit_transaction(timeout).map_err(|e| (COMMITTING, e));
            (committed, sent, began.elapsed() - sent)
        });
        self.in_flight = Some(InFlight::Asked(reply));
        Ok(None)
    }

    /// How the commit under way ended, if it has (`None`: still under way, or none is).
    pub fn poll_commit(&mut self) -> anyhow::Result<Option<Outcome>> {
        let answer = match self.in_flight.take() {
            None => return Ok(None),
            Some(InFlight::AskAgainAt(at)) => {
                if Instant::now() < at {
                    self.in_flight = Some(InFlight::AskAgainAt(at));
                } else {
                    let timeout = self.timeout;
                    let reply = self.txn.submit(timeout + STUCK_AFTER, move |p| {
                        let began = Instant::now();
                        let committed = p.commit_transaction(timeout).map_err(|e| (COMMITTING, e));
                        (committed, Duration::ZERO, began.elapsed())
                    });
                    self.in_flight = Some(InFlight::Asked(reply));
                }
                return Ok(None);
            }
            Some(InFlight::Asked(reply)) => match reply.try_take() {
                None => {
                    self.in_flight = Some(InFlight::Asked(reply));
                    return Ok(None);
                }
                Some(answer) => answer,
            },
        };
        match answer {
            // Both paths drop the waiting output: it was past the last commit.
            Err(Stuck) => self.stuck(COMMITTING).map(|()| Some(Outcome::NotCommitted)),
            Ok((Ok(()), offsets, commit)) => {
                self.offsets_times.record(offsets);
                self.commit_times.record(commit);
                self.in_transaction = false;
                self.release();
                Ok(Some(Outcome::Committed))
            }
            // The outcome is not known yet: asking again is the only safe move.
            Ok((Err((COMMITTING, KafkaError::Transaction(e))), _, _))
                if e.is_retriable() && !self.stop.requested() =>
            {
                tracing::warn!(target: LOG, "committing the transaction: {e}; retrying");
                self.in_flight = Some(InFlight::AskAgainAt(Instant::now() + RETRY_PAUSE));
                Ok(None)
            }
            Ok((Err((step, e)), _, _)) => {
                tracing::debug!(target: LOG, "{step} failed");
                self.failed(e).map(|()| Some(Outcome::NotCommitted))
            }
        }
    }

    /// Waits for the commit under way to end, and says how it did (`None`: none was). Once
    /// a stop was asked for, at most `PATIENCE` after it.
    pub fn finish_commit(&mut self) -> anyhow::Result<Option<Outcome>> {
        while self.in_flight.is_some() {
            if let Some(outcome) = self.poll_commit()? {
                return Ok(Some(outcome));
            }
            if self.stop.out_of_patience() {
                return Err(self.give_up());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(None)
    }

    /// After a stop, the brokers did not answer within `PATIENCE`: the job stops without
    /// waiting for them any longer. The open transaction is never committed (the next
    /// producer with this transactional id aborts it), so the next run redoes its work.
    fn give_up(&mut self) -> anyhow::Error {
        self.given_up = true;
        self.in_flight = None;
        gave_up()
    }

    /// After a failed step of a transaction: abort it, or replace a producer that cannot.
    fn failed(&mut self, err: KafkaError) -> anyhow::Result<()> {
        self.stop_refused()?;
        tracing::warn!(target: LOG, "transaction not committed ({err}); redoing it from the last commit");
        match &err {
            KafkaError::Transaction(e) if e.is_fatal() => self.replace(e),
            _ => self.abort(),
        }
    }

    /// Aborts the open transaction, dropping what is still queued; retried while the broker
    /// cannot be reached (a Ctrl+C ends the wait).
    fn abort(&mut self) -> anyhow::Result<()> {
        self.broken = false;
        self.drop_waiting();
        if !self.in_transaction {
            return Ok(());
        }
        self.drop_pending();
        loop {
            let timeout = self.timeout;
            let stop = self.stop.clone();
            let aborted = match self
                .txn
                .submit(timeout + STUCK_AFTER, move |p| p.abort_transaction(timeout))
                .wait_unless(|| stop.out_of_patience())
            {
                Ok(Some(result)) => result,
                Ok(None) => return Err(self.give_up()),
                Err(Stuck) => {
                    self.stuck("aborting the transaction")?;
                    break;
                }
            };
            match aborted {
                Ok(()) => {
                    self.aborted += 1;
                    break;
                }
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
    /// Being fenced means another instance took this id over, or that the coordinator
    /// aborted a transaction left open past `transaction.timeout.ms` (while a broker it
    /// needed was away) and bumped the producer's epoch. The second kind is answered with a
    /// new producer however often it comes. So is one of the first kind; a second within a
    /// minute means a live rival, and the job stops instead of fencing it back and forth.
    fn replace(&mut self, cause: &RDKafkaError) -> anyhow::Result<()> {
        let fenced = matches!(
            cause.code(),
            RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced
        );
        let open_for = self.in_transaction.then(|| self.opened_at.elapsed());
        if fenced && by_rival(open_for, self.transaction_timeout) {
            let recently = self
                .last_fenced
                .is_some_and(|at| at.elapsed() < Duration::from_secs(60));
            if recently {
                return Err(super::twin_fenced(&cause.to_string()));
            }
            self.last_fenced = Some(Instant::now());
        }
        tracing::warn!(target: LOG, "the producer failed for good ({cause}); replacing it");
        self.drop_pending();
        self.renew()
    }

    /// A transaction call librdkafka did not return from within its timeout and a margin:
    /// the producer is left behind (with the thread still waiting on it) and a new one takes
    /// its transactional id, which fences the old one, so nothing it had open can commit any
    /// more. `Ok(false)`: the caller rebuilds from what the broker has committed.
    fn stuck(&mut self, what: &str) -> anyhow::Result<()> {
        tracing::warn!(
            target: LOG,
            "{what}: librdkafka did not answer within {} (its own timeout {}); replacing the producer and redoing the work from the last commit",
            humantime::format_duration(self.timeout + STUCK_AFTER),
            humantime::format_duration(self.timeout)
        );
        self.renew()
    }

    /// A new producer (and transaction thread) in place of the current one.
    fn renew(&mut self) -> anyhow::Result<()> {
        // The coordinator aborts what the old producer had open.
        if self.in_transaction {
            self.aborted += 1;
        }
        self.drop_waiting();
        self.in_flight = None;
        self.txn = start(&self.config, self.transactional, self.timeout, &self.stop)?;
        self.in_transaction = false;
        self.broken = false;
        Ok(())
    }

    /// Drops what is queued or in flight and serves the reports the purge produces: the
    /// abort waits for an empty queue, and only polling empties it.
    fn drop_pending(&self) {
        self.txn
            .producer()
            .purge(PurgeConfig::default().queue().inflight());
        let _ = kafka::flush(self.txn.producer(), Duration::from_secs(5));
    }

    /// At-least-once: waits until every output record is acknowledged.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        let flushed = self.flush_output();
        self.stop_refused()?;
        flushed?;
        self.check_failed()
    }

    /// Waits until every output record is answered, at most `--timeout`, and once a stop
    /// was asked for at most `PATIENCE` after it.
    fn flush_output(&mut self) -> anyhow::Result<()> {
        let stop = &self.stop;
        match kafka::flush_unless(self.txn.producer(), self.timeout, || stop.out_of_patience()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.give_up()),
            Err(e) => Err(e).context("waiting for output records to be delivered"),
        }
    }

    /// An error if an output record was not delivered (or could not be sent).
    fn check_failed(&self) -> anyhow::Result<()> {
        let failed = self
            .txn
            .producer()
            .context()
            .failed
            .swap(0, Ordering::Relaxed);
        if failed > 0 || self.broken {
            let why = self
                .txn
                .producer()
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

    /// On the way out: nothing half-done stays open (unless the brokers no longer answer
    /// after a stop: then the job leaves without them).
    pub fn close(&mut self) {
        // A transaction being committed can be neither aborted nor joined: let it end.
        if let Err(e) = self.finish_commit() {
            tracing::warn!(target: LOG, "{e:#}");
        }
        if (self.in_transaction || self.broken) && !self.given_up {
            let _ = self.abort();
        }
        if !self.given_up {
            let _ = self.flush_output();
        }
    }
}

/// The error of a job that stopped without its last commit: the brokers did not answer
/// within `PATIENCE` of the stop.
fn gave_up() -> anyhow::Error {
    anyhow::Error::new(Failure::Interrupted).context(format!(
        "no last commit (the brokers did not answer within {} of the stop; the next run redoes the work since the previous commit)",
        humantime::format_duration(PATIENCE)
    ))
}

/// A producer, with transactions initialised (retried while the broker is unreachable).
fn start(
    config: &ClientConfig,
    transactional: bool,
    timeout: Duration,
    stop: &Stop,
) -> anyhow::Result<Txn<Deliveries>> {
    let producer: BaseProducer<Deliveries> = config
        .create_client(Deliveries::default())
        .context("creating the output producer")?;
    let txn = Txn::new(producer)?;
    if !transactional {
        return Ok(txn);
    }
    loop {
        let started = txn
            .submit(timeout + STUCK_AFTER, move |p| p.init_transactions(timeout))
            .wait_unless(|| stop.out_of_patience());
        let Ok(started) = started else {
            bail!(
                "starting transactions: librdkafka did not answer within {}; stopping, so a restart carries on from the last commit",
                humantime::format_duration(timeout + STUCK_AFTER)
            );
        };
        let Some(started) = started else {
            return Err(gave_up());
        };
        match started {
            Ok(()) => return Ok(txn),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fencing_counts_as_a_rival_unless_the_transaction_outlived_its_timeout() {
        let timeout = Duration::from_secs(10);
        assert!(by_rival(None, timeout));
        assert!(by_rival(Some(Duration::from_millis(200)), timeout));
        assert!(by_rival(Some(Duration::from_millis(9_999)), timeout));
        assert!(!by_rival(Some(timeout), timeout));
        assert!(!by_rival(Some(Duration::from_secs(16)), timeout));
    }
}
