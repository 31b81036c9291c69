//! `stockstream store`: every bar of the bars topic kept in PostgreSQL, exactly once. Bars
//! are read read_committed and upserted in batches, each batch in one database transaction
//! with the offsets it was read up to; the offsets are read back from the database when
//! partitions are assigned, so a crash at any moment neither loses nor repeats a bar.
//! Records that are not bars go to a dead-letter topic.

mod context;
mod counts;
mod metrics;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;

use crate::admin::Admin;
use crate::aggregate::bar::Wire;
use crate::aggregate::Bar;
use crate::dead_letter::Source;
use crate::exit::Failure;
use crate::global::Global;
use crate::kafka::{CreateClient as _, Kafka, Observer, ProducerProfile};
use crate::numbers::{count, thousands};
use crate::signals::{self, Stop};
use crate::topic_name::TopicName;
use context::StoreContext;
use counts::Counts;
use writer::{Setup, Writer};

/// The log target of every store line.
const LOG: &str = "StockStore";

const EXAMPLES: &str = "\
Examples:
  stockstream store --postgres postgres://stockstream:secret@127.0.0.1:5432/stockstream
  stockstream store --postgres postgres://db.example.com/bars?sslmode=verify-full --topic bars-10s
  stockstream store --postgres postgres://127.0.0.1/bars --group store-b   # a second, separate copy
  stockstream store --postgres postgres://127.0.0.1/bars --metrics-addr 127.0.0.1:9467
  (or set STOCKSTREAM_POSTGRES_URL once and leave --postgres out)";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    postgres: crate::postgres::Flag,

    /// The bars topic to read (what `aggregate` writes).
    #[arg(long, default_value = "stock_aggregates")]
    topic: TopicName,

    /// Consumer group: instances of one group share the partitions. Where each partition
    /// stands is kept in PostgreSQL under this name (Kafka's commits are for monitoring).
    #[arg(short, long, default_value = "stockstream-store")]
    group: String,

    /// Where records that are not bars go. Default: the topic's name with `.dlq`.
    #[arg(long, value_name = "TOPIC")]
    dlq_topic: Option<TopicName>,

    /// Write once this many bars are waiting…
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    batch_size: usize,

    /// …or once the oldest has waited this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "200ms", value_name = "DURATION")]
    batch_wait: Duration,

    /// How long PostgreSQL may be unreachable (a restart, a failover) before the job stops;
    /// meanwhile nothing is read. A server that keeps the connection open but does not answer
    /// (a frozen machine, a network that drops everything) counts as away once a write has
    /// waited this long (10 s at least).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s", value_name = "DURATION")]
    postgres_patience: Duration,

    /// Stop (after a last write) once every assigned partition has been read to its end,
    /// e.g. to store a backlog. Default: run until Ctrl+C.
    #[arg(long)]
    stop_at_end: bool,

    /// How often a progress line is logged.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s", value_name = "DURATION")]
    progress_interval: Duration,

    /// The longest connecting to Kafka or PostgreSQL may take.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    timeout: Duration,

    #[command(flatten)]
    metrics: crate::metrics::Flag,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let stop = signals::install()?;
    let pg = args.postgres.postgres(args.timeout)?;
    // Before Kafka and PostgreSQL are contacted: an address in use stops the job at once.
    let mut published = match &args.metrics.metrics_addr {
        Some(address) => {
            crate::metrics::serve(address, metrics::HISTOGRAMS)?;
            tracing::info!(target: LOG, "📊 Metrics at {}", address.url());
            Some(metrics::Publisher::new(args.topic.as_str()))
        }
        None => None,
    };
    let kafka = Kafka::new(&global.connection)?;
    let topic = args.topic.as_str().to_string();
    let dlq_topic = args
        .dlq_topic
        .as_ref()
        .map_or_else(|| format!("{topic}.dlq"), |t| t.as_str().to_string());
    let dlq_max_bytes = prepare_topics(&kafka, &topic, &dlq_topic, args.timeout)?;
    let dlq: rdkafka::producer::BaseProducer<Observer> = kafka
        .producer_config(
            ProducerProfile::Latency,
            args.timeout.max(Duration::from_secs(30)),
        )
        .create_client(Observer::default())
        .context("creating the dead-letter producer")?;
    let writer = Writer::new(Setup {
        pg: pg.clone(),
        group: args.group.clone(),
        topic: topic.clone(),
        patience: args.postgres_patience,
        stop: stop.clone(),
        dlq,
        dlq_topic: dlq_topic.clone(),
        dlq_max_bytes,
    })?;
    let writer = Arc::new(Mutex::new(writer));
    tracing::info!(
        target: LOG,
        "🚀 Storing `{topic}` from {} into PostgreSQL at {} (group `{}`, records that are not bars to `{dlq_topic}`)",
        kafka.brokers(),
        pg.shown,
        args.group
    );
    let began = Instant::now();
    let result = loop {
        let consumer: BaseConsumer<StoreContext> = kafka
            .reader_config(Some(&args.group), "read_committed")
            .create_client(StoreContext::new(Arc::clone(&writer)))
            .context("creating the Kafka consumer")?;
        consumer
            .subscribe(&[&topic])
            .with_context(|| format!("subscribing to `{topic}`"))?;
        let ended = read(&consumer, &args, &topic, &stop, &mut published);
        let restart = consumer.context().writer().restart;
        if ended.is_ok() && restart && !stop.requested() {
            consumer.context().writer().restart = false;
            drop(consumer);
            continue;
        }
        let closing = if ended.is_ok() {
            let mut w = consumer.context().writer();
            w.write_all(&consumer).and_then(|()| w.finish())
        } else {
            // Failed: nothing more is written (not even while the partitions are let go);
            // the next run reads on from the stored offsets.
            consumer.context().writer().abandon();
            Ok(())
        };
        consumer.unsubscribe();
        drop(consumer);
        break ended.and(closing);
    };
    let counts = writer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .counts
        .clone();
    if let Some(p) = published.as_mut() {
        p.publish_counts(&counts);
    }
    summary(&counts, began.elapsed());
    result
}

/// Reads until a stop, the end (--stop-at-end), a failure, or another writer moving the offsets.
fn read(
    consumer: &BaseConsumer<StoreContext>,
    args: &Args,
    topic: &str,
    stop: &Stop,
    published: &mut Option<metrics::Publisher>,
) -> anyhow::Result<()> {
    let mut at_end = std::collections::BTreeSet::new();
    let mut progress = Progress::new(args.progress_interval);
    loop {
        if stop.requested() {
            return Ok(());
        }
        // Whether every partition may be at its end now: asked of librdkafka (a round trip to
        // its main thread) only when a partition reports its end or nothing came, never per
        // record.
        let mut check_end = false;
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                let mut w = consumer.context().writer();
                if !w.owns(m.partition()) {
                    continue;
                }
                match parse(m.payload()) {
                    Ok(bar) => w.add(bar),
                    Err((reason, message)) => w.dead_letter(
                        Source {
                            topic,
                            partition: m.partition(),
                            offset: m.offset(),
                            key: m.key(),
                            value: m.payload(),
                        },
                        reason,
                        &message,
                    )?,
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                check_end = true;
            }
            Some(Err(e)) => tracing::warn!(target: LOG, "reading `{topic}`: {e}"),
            None => check_end = true,
        }
        let mut w = consumer.context().writer();
        if let Some(e) = w.failed.take() {
            return Err(e);
        }
        if w.batch_len() >= args.batch_size || w.waited().is_some_and(|d| d >= args.batch_wait) {
            w.write(consumer)?;
        } else {
            w.settle_if_done(consumer)?;
        }
        if w.restart {
            return Ok(());
        }
        if progress.due() {
            progress.log(&w.counts);
        }
        if let Some(p) = published.as_mut().filter(|p| p.due()) {
            p.publish(&w.counts, consumer);
        }
        drop(w);
        if args.stop_at_end && check_end {
            let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
            if assigned > 0 && at_end.len() >= assigned {
                tracing::info!(target: LOG, "🏁 Every partition read to its end: stopping");
                return Ok(());
            }
        }
    }
}

/// A record of the bars topic as a bar, or why it is not one: (reason, message).
fn parse(payload: Option<&[u8]>) -> Result<Bar, (&'static str, String)> {
    let payload = payload.ok_or(("invalid_json", "the record has no value".to_string()))?;
    let wire: Wire<String> = serde_json::from_slice(payload).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ("invalid_bar", format!("not a bar: {e}")),
        _ => ("invalid_json", format!("not JSON: {e}")),
    })?;
    let invalid = |what: String| ("invalid_bar", what);
    let bar = Bar::from_wire(&wire).map_err(invalid)?;
    if bar.window_end <= bar.window_start {
        return Err(invalid(format!(
            "the window ends ({}) before it starts ({})",
            wire.window_end, wire.window_start
        )));
    }
    if i64::try_from(bar.volume).is_err() || i64::try_from(bar.trades).is_err() {
        return Err(invalid(
            "volume or trades beyond what PostgreSQL's bigint holds".into(),
        ));
    }
    Ok(bar)
}

/// Checks the bars topic and creates a missing dead-letter topic like it; returns the
/// dead-letter topic's max.message.bytes.
fn prepare_topics(
    kafka: &Kafka,
    topic: &str,
    dlq: &str,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let admin = Admin::connect(kafka, timeout)?;
    let Some(input) = admin.topic(topic)? else {
        return Err(Failure::TopicMissing {
            topic: topic.to_string(),
            brokers: kafka.brokers().to_string(),
            hint: "`stockstream aggregate` writes bars there (--topic names another)".into(),
        }
        .into());
    };
    if admin.topic(dlq)?.is_none() {
        let partitions = i32::try_from(input.partitions.len()).unwrap_or(1);
        let replication = i32::try_from(input.replication_factor())
            .unwrap_or(1)
            .max(1);
        if admin.create(dlq, partitions, replication, &[])? {
            tracing::info!(target: LOG, "📦 Created topic `{dlq}` with {} (replication factor {replication})", count(partitions as u64, "partition", "partitions"));
        }
    }
    let max = admin
        .configs_of(dlq)
        .ok()
        .and_then(|c| c.get("max.message.bytes").and_then(|v| v.parse().ok()))
        .unwrap_or(1_048_588);
    Ok(max)
}

struct Progress {
    every: Duration,
    next: Instant,
    last: Instant,
    last_bars: u64,
}

impl Progress {
    fn new(every: Duration) -> Self {
        let now = Instant::now();
        Progress {
            every,
            next: now + every,
            last: now,
            last_bars: 0,
        }
    }

    fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    fn log(&mut self, counts: &Counts) {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64().max(1e-3);
        let rate = (counts.bars_written - self.last_bars) as f64 / secs;
        tracing::info!(
            target: LOG,
            "💾 {} bars stored ({rate:.0}/s), {} final | {} | {} dead letters",
            thousands(counts.bars_written),
            thousands(counts.finals_written),
            count(counts.transactions, "transaction", "transactions"),
            thousands(counts.dead_letters)
        );
        self.last = now;
        self.last_bars = counts.bars_written;
        self.next = now + self.every;
    }
}

fn summary(counts: &Counts, took: Duration) {
    let pick = |q: f64| counts.write_times.quantile(q);
    tracing::info!(
        target: LOG,
        "📋 Summary: {} read, {} bars written ({} final) in {} (median {} ms, p99 {} ms), {} dead letters; {:.1}s",
        count(counts.read, "record", "records"),
        thousands(counts.bars_written),
        thousands(counts.finals_written),
        count(counts.transactions, "transaction", "transactions"),
        pick(0.5),
        pick(0.99),
        thousands(counts.dead_letters),
        took.as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_bar_is_named_by_its_reason() {
        let bar = br#"{"symbol":"AAPL","window_start":"2026-11-30T00:00:00Z","window_end":"2026-11-30T00:00:10Z","open":1.0,"high":2.0,"low":0.5,"close":1.5,"volume":10,"trades":2,"vwap":1.25,"avg_price":1.25,"final":true}"#;
        let parsed = parse(Some(bar)).unwrap();
        assert_eq!(parsed.window_end - parsed.window_start, 10_000);
        let reason = |v: &[u8]| parse(Some(v)).unwrap_err().0;
        assert_eq!(reason(b"not json"), "invalid_json");
        assert_eq!(reason(b"{\"symbol\":"), "invalid_json");
        assert_eq!(reason(br#"{"symbol":"AAPL"}"#), "invalid_bar");
        assert_eq!(reason(br#"[1,2]"#), "invalid_bar");
        let text = String::from_utf8_lossy(bar);
        assert_eq!(
            reason(text.replace("AAPL", "ZZZ").as_bytes()),
            "invalid_bar"
        );
        assert_eq!(
            reason(text.replace("00:00:10Z", "1999-01-01").as_bytes()),
            "invalid_bar"
        );
        let backwards = text.replace("T00:00:10Z", "T00:00:00Z");
        assert!(parse(Some(backwards.as_bytes()))
            .unwrap_err()
            .1
            .contains("before it starts"));
        assert_eq!(parse(None).unwrap_err().0, "invalid_json");
    }
}
