//! What `store` keeps between polls: the database connection, the partitions this instance
//! owns with the offsets the database has for them, the bars read since the last write, the
//! write in flight, and the dead-letter producer. Rebalances and the reading loop both go
//! through it.
//!
//! A batch's transaction runs on the PostgreSQL runtime's thread while the next batch is
//! read; at most one is in flight, and it is settled (its outcome applied to the offsets
//! owned) before the next one starts, so each write still moves the offsets from exactly
//! where the one before left them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext};
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::counts::Counts;
use super::LOG;
use crate::aggregate::Bar;
use crate::dead_letter::{DeadLetter, Source};
use crate::exit::Failure;
use crate::kafka::{self, Observer};
use crate::postgres::bars::{self, Batch, Offsets, Written};
use crate::postgres::{db, schema, Postgres};
use crate::signals::Stop;

/// Pause between attempts while PostgreSQL cannot be reached.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

pub struct Writer {
    rt: Runtime,
    pg: Postgres,
    client: Option<Client>,
    group: String,
    topic: String,
    /// How long PostgreSQL may be away before the job stops.
    patience: Duration,
    stop: Stop,
    /// The partitions owned, with the offsets the database has for them.
    owned: Offsets,
    batch: Batch,
    /// The write whose transaction is running, if any.
    in_flight: Option<InFlight>,
    /// When the oldest unwritten news (a bar, or a position moved) came.
    pending_since: Option<Instant>,
    dlq: BaseProducer<Observer>,
    dlq_topic: String,
    dlq_max_bytes: usize,
    /// Another writer moved the offsets: the consumer must start again from the database.
    pub restart: bool,
    /// A rebalance could not be served; the job stops with this.
    pub failed: Option<anyhow::Error>,
    pub counts: Counts,
}

/// A write handed to the runtime: its first attempt runs on the connection it took.
struct InFlight {
    attempt: JoinHandle<Attempt>,
    from: Offsets,
    to: BTreeMap<i32, i64>,
    batch: Arc<Batch>,
}

/// A first attempt's end: the connection back, the outcome, and how long it took.
type Attempt = (Client, anyhow::Result<Written>, Duration);

/// A database call on a connection: what `Writer::with_client` runs.
type Query<'c, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<T>> + Send + 'c>>;

/// How long a database call may go unanswered before PostgreSQL counts as away (a server
/// that stopped answering without closing the connection: a frozen machine, a network that
/// drops everything): the patience, and never less than 10 s, for a large batch on a busy
/// server.
fn answer_within(patience: Duration) -> Duration {
    patience.max(Duration::from_secs(10))
}

fn no_answer(server: &str, bound: Duration) -> anyhow::Error {
    anyhow!(
        "PostgreSQL at {server} did not answer within {}",
        humantime::format_duration(bound)
    )
}

pub struct Setup {
    pub pg: Postgres,
    pub group: String,
    pub topic: String,
    pub patience: Duration,
    pub stop: Stop,
    pub dlq: BaseProducer<Observer>,
    pub dlq_topic: String,
    pub dlq_max_bytes: usize,
}

impl Writer {
    /// Connects and brings the schema up to date.
    pub fn new(setup: Setup) -> anyhow::Result<Writer> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the PostgreSQL runtime")?;
        let mut client = rt.block_on(setup.pg.connect())?;
        let (found, now) = rt.block_on(schema::migrate(&mut client, &setup.pg.shown))?;
        if found < now {
            tracing::info!(target: LOG, "🗄️  Schema of {} brought from version {found} to {now}", setup.pg.shown);
        }
        Ok(Writer {
            rt,
            pg: setup.pg,
            client: Some(client),
            group: setup.group,
            topic: setup.topic,
            patience: setup.patience,
            stop: setup.stop,
            owned: Offsets::new(),
            batch: Batch::default(),
            in_flight: None,
            pending_since: None,
            dlq: setup.dlq,
            dlq_topic: setup.dlq_topic,
            dlq_max_bytes: setup.dlq_max_bytes,
            restart: false,
            failed: None,
            counts: Counts::default(),
        })
    }

    /// Partitions arrive: where the database says each one is (`None`: its start).
    pub fn assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        partitions: &[i32],
    ) -> anyhow::Result<Offsets> {
        self.settle(consumer)?;
        let (group, topic) = (self.group.clone(), self.topic.clone());
        let found = self.with_client("reading the stored offsets", |client| {
            let (group, topic, partitions) = (group.clone(), topic.clone(), partitions.to_vec());
            Box::pin(async move { bars::claim(client, &group, &topic, &partitions).await })
        })?;
        self.owned.extend(found.iter().map(|(p, o)| (*p, *o)));
        Ok(found)
    }

    /// Partitions leave: what was read of them is written first (when that fails, the next
    /// owner reads it again from the offsets in the database).
    pub fn revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, partitions: &[i32]) {
        if let Err(e) = self.write_all(consumer) {
            tracing::warn!(target: LOG, "writing before letting partitions go: {e:#}; their next owner reads them again from the stored offsets");
            self.batch.clear();
            self.pending_since = None;
        }
        for p in partitions {
            self.owned.remove(p);
        }
    }

    /// Forgets every partition and what was read of them: the consumer starts again from
    /// the database (where a write still in flight has either landed or not).
    pub fn abandon(&mut self) {
        if let Some(in_flight) = self.in_flight.take() {
            if let Ok((client, _, _)) = self.rt.block_on(in_flight.attempt) {
                self.client = Some(client);
            }
        }
        self.owned.clear();
        self.batch.clear();
        self.pending_since = None;
    }

    pub fn owns(&self, partition: i32) -> bool {
        self.owned.contains_key(&partition)
    }

    pub fn add(&mut self, bar: Bar) {
        self.counts.read += 1;
        self.batch.add(bar);
        self.pending_since.get_or_insert_with(Instant::now);
    }

    /// Sends a record that is not a bar to the dead-letter topic.
    pub fn dead_letter(
        &mut self,
        source: Source<'_>,
        reason: &'static str,
        message: &str,
    ) -> anyhow::Result<()> {
        self.counts.read += 1;
        let letter = DeadLetter::new(source, reason, message, self.dlq_max_bytes);
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.dlq_topic).headers(letter.headers);
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        if let Some(value) = &letter.value {
            record = record.payload(value);
        }
        loop {
            match self.dlq.send(record) {
                Ok(()) => break,
                Err((e, back))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    self.dlq.poll(Duration::from_millis(10));
                    record = back;
                }
                Err((e, _)) => {
                    return Err(e)
                        .with_context(|| format!("sending a dead letter to `{}`", self.dlq_topic))
                }
            }
        }
        self.counts.dead_letters += 1;
        *self
            .counts
            .dead_letters_by_reason
            .entry(reason)
            .or_default() += 1;
        self.pending_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    pub fn batch_len(&self) -> usize {
        self.batch.len()
    }

    /// How long the oldest unwritten news has waited.
    pub fn waited(&self) -> Option<Duration> {
        self.pending_since.map(|t| t.elapsed())
    }

    /// Writes everything read so far and waits until it is in.
    pub fn write_all<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> anyhow::Result<()> {
        self.write(consumer)?;
        self.settle(consumer)
    }

    /// Starts writing the bars read since the last write with the offsets reached, in one
    /// transaction, once the write before it has settled; dead letters read before those
    /// offsets are delivered first.
    pub fn write<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> anyhow::Result<()> {
        self.settle(consumer)?;
        if self.restart {
            return Ok(());
        }
        self.dlq.poll(Duration::ZERO);
        let to = self.positions(consumer);
        if to.is_empty() && self.batch.is_empty() {
            self.pending_since = None;
            return Ok(());
        }
        if self.counts.dead_letters > 0 {
            kafka::flush(&self.dlq, self.pg.timeout.max(Duration::from_secs(10))).map_err(|e| {
                anyhow!(
                    "the dead letters could not be delivered to `{}`: {e}; nothing read since the last write is stored, and the next run reads it again",
                    self.dlq_topic
                )
            })?;
        }
        // A connection first (waiting for PostgreSQL within the patience when it is away).
        if self.client.is_none() {
            self.with_client("writing bars", |_| Box::pin(async { Ok(()) }))?;
        }
        let Some(mut client) = self.client.take() else {
            bail!("no connection to {}", self.pg.shown);
        };
        let batch = Arc::new(std::mem::take(&mut self.batch));
        let from = self.owned.clone();
        let attempt = {
            let (group, topic) = (self.group.clone(), self.topic.clone());
            let (from, to, batch) = (from.clone(), to.clone(), Arc::clone(&batch));
            let (bound, shown) = (answer_within(self.patience), self.pg.shown.clone());
            self.rt.spawn(async move {
                let began = Instant::now();
                let writing = bars::write(&mut client, &group, &topic, &from, &to, &batch);
                let outcome = tokio::time::timeout(bound, writing)
                    .await
                    .unwrap_or_else(|_| Err(no_answer(&shown, bound)));
                (client, outcome, began.elapsed())
            })
        };
        self.in_flight = Some(InFlight {
            attempt,
            from,
            to,
            batch,
        });
        self.pending_since = None;
        Ok(())
    }

    /// Applies the outcome of a write in flight that has ended; does not wait for one that
    /// has not.
    pub fn settle_if_done<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> anyhow::Result<()> {
        if self
            .in_flight
            .as_ref()
            .is_some_and(|f| f.attempt.is_finished())
        {
            self.settle(consumer)?;
        }
        Ok(())
    }

    /// Waits for the write in flight and applies its outcome. A first attempt that lost its
    /// connection is made again here, within the patience.
    fn settle<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> anyhow::Result<()> {
        let Some(InFlight {
            attempt,
            from,
            to,
            batch,
        }) = self.in_flight.take()
        else {
            return Ok(());
        };
        let began = Instant::now();
        let (outcome, took) = match self.rt.block_on(attempt) {
            Ok((client, Ok(outcome), took)) => {
                self.client = Some(client);
                (outcome, took)
            }
            Ok((_, Err(e), _)) if !db::retriable(&e) => {
                return Err(e).with_context(|| format!("writing bars on {}", self.pg.shown));
            }
            // The connection failed (or the task did): the same write again, on a new one.
            // If the first attempt committed after all, the offsets say so (AlreadyThere).
            failed => {
                // The trouble began when the attempt did.
                let since = match &failed {
                    Ok((_, Err(e), took)) => {
                        tracing::warn!(target: LOG, "writing bars: {e:#}; trying again on a new connection");
                        Instant::now().checked_sub(*took).unwrap_or(began)
                    }
                    _ => began,
                };
                let (group, topic) = (self.group.clone(), self.topic.clone());
                let outcome = self.with_client_since("writing bars", since, |client| {
                    let (group, topic, from, to) =
                        (group.clone(), topic.clone(), from.clone(), to.clone());
                    let batch = Arc::clone(&batch);
                    Box::pin(async move {
                        bars::write(client, &group, &topic, &from, &to, &batch).await
                    })
                })?;
                (outcome, began.elapsed())
            }
        };
        match outcome {
            Written::Committed | Written::AlreadyThere => {
                if outcome == Written::Committed {
                    self.counts.transactions += 1;
                    self.counts.bars_written += batch.len() as u64;
                    self.counts.finals_written += batch.finals() as u64;
                    self.counts.write_times.record(took);
                    super::metrics::transaction_took(took);
                }
                for (p, o) in &to {
                    self.owned.insert(*p, Some(*o));
                }
                // For `group describe` and lag monitoring only: the database is the record.
                let mut tpl = TopicPartitionList::new();
                for (p, o) in &to {
                    let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*o));
                }
                if tpl.count() > 0 {
                    let _ = consumer.commit(&tpl, CommitMode::Async);
                }
            }
            Written::Moved(found) => {
                self.counts.takeovers += 1;
                tracing::warn!(
                    target: LOG,
                    "the stored offsets of `{}` moved under this instance (another `store` of group `{}` took its partitions over: {}); nothing of this batch was written, and reading starts again from the database",
                    self.topic,
                    self.group,
                    describe(&found)
                );
                self.abandon();
                self.restart = true;
            }
        }
        Ok(())
    }

    /// The offsets reached in the partitions owned, where they moved since the last write.
    fn positions<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) -> BTreeMap<i32, i64> {
        let Ok(positions) = consumer.position() else {
            return BTreeMap::new();
        };
        positions
            .elements_for_topic(&self.topic)
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .filter(|(p, o)| self.owned.get(p).is_some_and(|stored| *stored != Some(*o)))
            .collect()
    }

    /// Runs a database call, connecting first when needed. While PostgreSQL cannot be
    /// reached it tries again every second, for up to `patience` (or until a stop).
    fn with_client<T>(
        &mut self,
        what: &str,
        call: impl for<'c> Fn(&'c mut Client) -> Query<'c, T>,
    ) -> anyhow::Result<T> {
        self.with_client_since(what, Instant::now(), call)
    }

    /// `with_client`, for trouble that began at `began`.
    fn with_client_since<T>(
        &mut self,
        what: &str,
        began: Instant,
        call: impl for<'c> Fn(&'c mut Client) -> Query<'c, T>,
    ) -> anyhow::Result<T> {
        let mut warned = false;
        loop {
            let attempt = match self.client.as_mut() {
                Some(client) => {
                    let bound = answer_within(self.patience);
                    // (The timer is made inside the runtime, which it needs.)
                    self.rt
                        .block_on(async { tokio::time::timeout(bound, call(client)).await })
                        .unwrap_or_else(|_| Err(no_answer(&self.pg.shown, bound)))
                }
                None => match self.rt.block_on(self.pg.connect()) {
                    Ok(client) => {
                        if warned {
                            tracing::info!(target: LOG, "🔌 PostgreSQL at {} is back", self.pg.shown);
                        }
                        self.client = Some(client);
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            let e = match attempt {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !db::retriable(&e) {
                return Err(e).with_context(|| format!("{what} on {}", self.pg.shown));
            }
            // A connection that failed once is not trusted again.
            self.client = None;
            if began.elapsed() >= self.patience || self.stop.requested() {
                // The connection's own cause, without the hint of a first connection.
                let cause = match e.downcast_ref::<Failure>() {
                    Some(Failure::PostgresUnreachable { cause, .. }) => cause.clone(),
                    _ => format!("{e:#}"),
                };
                return Err(Failure::PostgresUnreachable {
                    what: format!("{what} on {} failed", self.pg.shown),
                    cause,
                    hint: format!(
                        "{}; what was read since the last write is not stored: start `store` \
                         again once PostgreSQL is back, and it goes on from the offsets stored \
                         with the bars",
                        if self.stop.requested() {
                            "stopped while PostgreSQL was away".to_string()
                        } else {
                            format!(
                                "PostgreSQL was away longer than --postgres-patience ({})",
                                humantime::format_duration(self.patience)
                            )
                        }
                    ),
                }
                .into());
            }
            if !warned {
                tracing::warn!(target: LOG, "{what}: {e:#}; trying again for up to {}", humantime::format_duration(self.patience));
                warned = true;
            }
            std::thread::sleep(RETRY_PAUSE);
        }
    }

    /// Waits for the dead letters still in flight.
    pub fn finish(&self) -> anyhow::Result<()> {
        kafka::flush(&self.dlq, self.pg.timeout.max(Duration::from_secs(10)))
            .with_context(|| format!("delivering the dead letters to `{}`", self.dlq_topic))
    }
}

fn describe(offsets: &Offsets) -> String {
    offsets
        .iter()
        .map(|(p, o)| match o {
            Some(o) => format!("{p}@{o}"),
            None => format!("{p}@start"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
