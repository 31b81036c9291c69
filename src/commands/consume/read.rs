//! The reading loop: the chosen partitions assigned at their start offsets, records handed
//! to the output in the order each partition holds them, until every partition has reached
//! the end it had at start (or for ever with --follow), --count records, or Ctrl+C. With a
//! group, what was read is committed as it goes and at the end.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use super::batch::{Batches, Taken};
use super::context::Reader;
use super::output::Output;
use super::LOG;
use crate::numbers::count;
use crate::signals::{self, Stop};

/// One partition to read: from `start`, and (without --follow) up to `end`, the end offset
/// it had when reading began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub start: i64,
    pub end: i64,
}

/// What the loop needs besides the consumer and the output.
pub struct Reading<'a> {
    pub topic: &'a str,
    pub brokers: &'a str,
    pub parts: &'a BTreeMap<i32, Part>,
    pub follow: bool,
    pub count: Option<u64>,
    pub key: Option<&'a [u8]>,
    /// Commit what was read (a consumer group was named).
    pub commit: bool,
    /// How long a read short of its end may see nothing before it is given up, and the
    /// longest the last commit may take.
    pub timeout: Duration,
}

/// How often a group's offsets are committed while reading.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// How long one wait for a record lasts: a stop is heard within about this.
const WAIT: Duration = Duration::from_millis(100);

/// Records taken per call from librdkafka.
const BATCH: usize = 4096;

/// Reads; returns how many records were written.
pub fn read(
    consumer: &Arc<BaseConsumer<Reader>>,
    reading: &Reading<'_>,
    out: &mut Output,
    stop: &Stop,
) -> anyhow::Result<u64> {
    // Without --follow a partition already at its end has nothing to give.
    let open: BTreeMap<i32, Part> = reading
        .parts
        .iter()
        .filter(|(_, part)| reading.follow || part.start < part.end)
        .map(|(p, part)| (*p, *part))
        .collect();
    if open.is_empty() || reading.count == Some(0) {
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    for (p, part) in &open {
        tpl.add_partition_offset(reading.topic, *p, Offset::Offset(part.start))?;
    }
    let mut batches = Batches::route(
        consumer,
        reading.topic,
        open.keys().copied(),
        BATCH,
        out.wants_headers(),
    )?;
    consumer
        .assign(&tpl)
        .with_context(|| format!("assigning the partitions of `{}`", reading.topic))?;

    let mut state = State {
        reading,
        open,
        next: BTreeMap::new(),
        written: 0,
        done: false,
    };
    let mut committed = BTreeMap::new();
    let mut last_commit = Instant::now();
    let mut last_news = Instant::now();
    let result = loop {
        if stop.requested() || state.done {
            break Ok(());
        }
        // Errors and logs: the consumer's own queue holds nothing else.
        if let Some(Err(e)) = consumer.poll(Duration::ZERO) {
            tracing::warn!(target: LOG, "reading `{}`: {e}", reading.topic);
        }
        if reading.commit && last_commit.elapsed() >= COMMIT_EVERY && state.next != committed {
            // Only what is out: a record committed is a record shown.
            out.flush()?;
            commit(consumer, reading.topic, &state.next, CommitMode::Async);
            committed.clone_from(&state.next);
            last_commit = Instant::now();
        }
        let mut taken = batches.take(Duration::ZERO, |m| state.take(m, out))?;
        if taken == 0 {
            // Nothing waiting: show what was read before waiting for more.
            out.flush()?;
            if !reading.follow && last_news.elapsed() >= reading.timeout {
                break Err(stalled(reading, &state.open));
            }
            taken = batches.take(WAIT, |m| state.take(m, out))?;
        }
        if taken > 0 {
            last_news = Instant::now();
        }
    };
    drop(batches);
    let flushed = out.flush();
    if reading.commit && flushed.is_ok() && state.next != committed {
        commit_last(consumer, reading, &state.next)?;
    }
    result
        .and(flushed.map_err(Into::into))
        .map(|()| state.written)
}

/// Where reading is.
struct State<'r, 'a> {
    reading: &'r Reading<'a>,
    /// The partitions not yet read to their end (all of them with --follow).
    open: BTreeMap<i32, Part>,
    /// Per partition, the offset after the last record handled: what a group commits.
    next: BTreeMap<i32, i64>,
    written: u64,
    /// --count reached, or every partition read to its end.
    done: bool,
}

impl State<'_, '_> {
    /// Handles one message; `true` once reading is done.
    fn take(&mut self, m: Taken<'_>, out: &mut Output) -> anyhow::Result<bool> {
        let follow = self.reading.follow;
        match m {
            Taken::Record(rec) => {
                let Some(part) = self.open.get(&rec.partition) else {
                    return Ok(self.done);
                };
                let (p, offset) = (rec.partition, rec.offset);
                // Records written since the start are past the end of a bounded read.
                if !follow && offset >= part.end {
                    self.open.remove(&p);
                } else {
                    self.next.insert(p, offset + 1);
                    if self.reading.key.is_none_or(|k| rec.key == Some(k)) {
                        out.write(&rec)?;
                        self.written += 1;
                        if self.reading.count.is_some_and(|c| self.written >= c) {
                            self.done = true;
                        }
                    }
                    if !follow && offset + 1 >= part.end {
                        self.open.remove(&p);
                    }
                }
            }
            // The partition's end as the broker knows it, which is at or past its end at
            // start: every record before that has been handed out.
            Taken::End(p) if !follow => {
                self.open.remove(&p);
            }
            Taken::End(_) => {}
            Taken::Error(e) => {
                tracing::warn!(target: LOG, "reading `{}`: {e}", self.reading.topic);
            }
        }
        if self.open.is_empty() {
            self.done = true;
        }
        Ok(self.done)
    }
}

fn stalled(reading: &Reading<'_>, open: &BTreeMap<i32, Part>) -> anyhow::Error {
    let partitions: Vec<String> = open.keys().map(ToString::to_string).collect();
    anyhow!(
        "nothing came from {} for {} while {} of `{}` ({}) had not been read to its end; \
         is the broker still there? (--timeout waits longer)",
        reading.brokers,
        humantime::format_duration(reading.timeout),
        count(open.len() as u64, "partition", "partitions"),
        reading.topic,
        partitions.join(", ")
    )
}

fn offsets(topic: &str, next: &BTreeMap<i32, i64>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in next {
        // The offset is valid for the partition: it came from one of its records.
        let _ = tpl.add_partition_offset(topic, *p, Offset::Offset(*o));
    }
    tpl
}

fn commit(
    consumer: &BaseConsumer<Reader>,
    topic: &str,
    next: &BTreeMap<i32, i64>,
    mode: CommitMode,
) {
    if let Err(e) = consumer.commit(&offsets(topic, next), mode) {
        tracing::warn!(target: LOG, "committing the offsets read: {e}");
    }
}

/// The last commit, waited for: at most --timeout, and at most `signals::PATIENCE` after a
/// Ctrl+C.
fn commit_last(
    consumer: &Arc<BaseConsumer<Reader>>,
    reading: &Reading<'_>,
    next: &BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    let (client, tpl) = (Arc::clone(consumer), offsets(reading.topic, next));
    let (answer, answered) = mpsc::channel();
    std::thread::Builder::new()
        .name("commit".to_string())
        .spawn(move || {
            let _ = answer.send(client.commit(&tpl, CommitMode::Sync));
        })
        .context("starting the commit")?;
    let deadline = Instant::now() + reading.timeout;
    loop {
        match answered.recv_timeout(Duration::from_millis(10)) {
            Ok(done) => {
                return done
                    .with_context(|| format!("committing the offsets read on {}", reading.brokers))
            }
            Err(mpsc::RecvTimeoutError::Timeout)
                if Instant::now() < deadline && !signals::out_of_patience() => {}
            Err(_) => {
                return Err(anyhow!(
                    "the broker at {} did not confirm the commit of the offsets read in time",
                    reading.brokers
                ))
            }
        }
    }
}
