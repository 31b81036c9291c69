//! `stockstream produce`: realistic, validated ticks to a topic, keyed by symbol, at any pace
//! from one a second to the broker's limit, and never a record lost without a word.

mod args;
mod backfill;
mod deliveries;
mod input;
mod metrics;
mod pace;
mod report;
mod source;
mod status;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, PurgeConfig};

use crate::exit::Failure;
use crate::global::Global;
use crate::kafka::{self, CreateClient as _, Kafka, ProducerProfile};
use crate::market::unix_now;
use crate::numbers::{count, rate, thousands};
use crate::record::event_millis;
use crate::signals;
use crate::terminal::Terminal;
pub use args::{Args, Settings};
use deliveries::{Deliveries, LOG};
use source::Source;

/// The header that carries a record's number in its run, with `--sequence`.
pub const SEQUENCE_HEADER: &str = "stockstream.seq";
use pace::{Pace, Pacer};
use status::Status;

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let settings = Settings::from_args(args)?;
    // Before Kafka is contacted: an address in use stops the run at once.
    if let Some(address) = &settings.metrics {
        crate::metrics::serve(address, metrics::HISTOGRAMS)?;
        tracing::info!(target: LOG, "📊 Metrics at {}", address.url());
    }
    let kafka = Kafka::new(&global.connection)?;
    let stop = signals::install()?;
    run_on(&kafka, &settings, global.terminal, &stop).map(|_| ())
}

/// What one run sent, for a caller that reports on it (the demo).
pub struct Sent {
    pub generated: u64,
    pub delivered: u64,
}

/// Produces to `kafka` until a stop condition or `stop`; fails if a record was lost, or a
/// line of the input was bad.
/// The status is shown as `terminal` allows.
pub fn run_on(
    kafka: &Kafka,
    settings: &Settings,
    terminal: Terminal,
    stop: &signals::Stop,
) -> anyhow::Result<Sent> {
    // Opened first: a missing input file is said before any broker is waited for.
    let mut source = Source::open(&settings.origin)?;
    let profile = if settings.pace.is_human() {
        ProducerProfile::Latency
    } else {
        ProducerProfile::Throughput
    };
    let producer: BaseProducer<Deliveries> = kafka
        .producer_config(profile, settings.delivery_timeout)
        .create_client(Deliveries::new(
            settings.pace.is_human(),
            settings.metrics.is_some(),
        ))
        .context("creating the Kafka producer")?;
    check_topic(kafka, settings)?;
    producer.context().observer.connected();

    tracing::info!(
        target: LOG,
        "🚀 Producing {} to `{}` on {} ({})",
        source.describe(),
        settings.topic,
        kafka.brokers(),
        describe_pace(settings)
    );
    let started = Instant::now();
    let (generated, source_error) = send_loop(&producer, &mut source, settings, terminal, stop);
    let (sent, lost) = finish(&producer, &source, generated, started, settings, stop);
    let mut problems = Vec::new();
    if lost > 0 {
        problems.push(format!(
            "{} of {} to `{}` failed (their numbers are listed above)",
            thousands(lost),
            count(generated, "record", "records"),
            settings.topic
        ));
    }
    if let Some((name, bad)) = source.bad_lines().filter(|(_, bad)| bad.count > 0) {
        report::bad_lines(name, &bad.runs, bad.count);
        problems.push(format!(
            "{} of {name} not sent (their numbers are listed above)",
            count(bad.count, "bad line", "bad lines")
        ));
    }
    // An input that could not be read to its end fails the run, after the report of what
    // was sent.
    if let Some(e) = source_error {
        return Err(e);
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(sent)
}

fn check_topic(kafka: &Kafka, settings: &Settings) -> anyhow::Result<()> {
    let metadata = kafka::reach(kafka, settings.timeout)?;
    match metadata
        .topics()
        .iter()
        .find(|t| t.name() == settings.topic.as_str())
    {
        Some(t) if !t.partitions().is_empty() => {
            tracing::debug!(target: LOG, "`{}` has {}", settings.topic, count(t.partitions().len() as u64, "partition", "partitions"));
            Ok(())
        }
        _ => Err(Failure::TopicMissing {
            topic: settings.topic.to_string(),
            brokers: kafka.brokers().to_string(),
            hint: format!(
                "create it first: `stockstream topic create {}`",
                settings.topic
            ),
        }
        .into()),
    }
}

/// Sends what the source gives until it ends or a stop condition; returns how many were
/// sent, and the error that ended the source if one did.
fn send_loop(
    producer: &BaseProducer<Deliveries>,
    source: &mut Source,
    settings: &Settings,
    terminal: Terminal,
    stop: &signals::Stop,
) -> (u64, Option<anyhow::Error>) {
    let started = Instant::now();
    let mut pacer = Pacer::new(settings.pace, started);
    let mut status = Status::new(settings.pace.is_human(), settings.count, terminal.live);
    let mut published = settings
        .metrics
        .as_ref()
        .map(|_| metrics::Publisher::new(started));
    let mut payload = Vec::with_capacity(128);
    let mut number = String::with_capacity(20);
    let mut generated: u64 = 0;
    let mut error = None;
    loop {
        if stop.requested()
            || settings.count.is_some_and(|c| generated >= c)
            || settings.duration.is_some_and(|d| started.elapsed() >= d)
        {
            break;
        }
        if let Some(wait) = pacer.wait(Instant::now()) {
            producer.poll(wait.min(Duration::from_millis(100)));
            if let Some(p) = published.as_mut() {
                p.update(generated, producer.context());
            }
            continue;
        }
        // The record's Kafka timestamp is its send time, whatever its event time: a
        // backfill's records dated by event time would meet the topic's retention at once.
        let now = unix_now();
        payload.clear();
        let symbol = match source.next(now, &mut payload) {
            Ok(Some(symbol)) => symbol,
            Ok(None) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        // The record's number in this run: its delivery report names it by this.
        let seq = generated + 1;
        let mut record = BaseRecord::with_opaque_to(
            settings.topic.as_str(),
            usize::try_from(seq).unwrap_or(usize::MAX),
        )
        .key(symbol.as_str())
        .payload(payload.as_slice())
        .timestamp(event_millis(now));
        if settings.sequence {
            number.clear();
            let _ = write!(number, "{seq}");
            record = record.headers(OwnedHeaders::new_with_capacity(1).insert(Header {
                key: SEQUENCE_HEADER,
                value: Some(number.as_str()),
            }));
        }
        if !enqueue(producer, record, stop) {
            break;
        }
        generated += 1;
        pacer.sent_one();
        // Serving delivery reports often keeps the queue short; every send is too often.
        if generated % 256 == 0 || settings.pace.is_human() {
            producer.poll(Duration::ZERO);
            if let Some(p) = published.as_mut() {
                p.update(generated, producer.context());
            }
        }
        status.update(generated, producer.context());
    }
    status.finish();
    (generated, error)
}

/// Puts one record on librdkafka's queue, waiting while the queue is full. False when the
/// record could not be queued (a stop was asked for while waiting, or a fatal error).
fn enqueue(
    producer: &BaseProducer<Deliveries>,
    mut record: BaseRecord<'_, str, [u8], usize>,
    stop: &signals::Stop,
) -> bool {
    loop {
        match producer.send(record) {
            Ok(()) => return true,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                if stop.requested() {
                    return false;
                }
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((err, _)) => {
                tracing::error!(target: LOG, "could not queue a record: {err}; stopping");
                return false;
            }
        }
    }
}

/// Flushes, gives up what is still in flight when the flush cannot end, and reports; returns
/// what was sent and how many records were lost (failed, or without a delivery report).
fn finish(
    producer: &BaseProducer<Deliveries>,
    source: &Source,
    generated: u64,
    started: Instant,
    settings: &Settings,
    stop: &signals::Stop,
) -> (Sent, u64) {
    let deliveries = producer.context();
    let pending = generated.saturating_sub(deliveries.delivered() + deliveries.failed());
    if pending > 0 {
        tracing::info!(target: LOG, "⏳ Waiting for the last {} in flight", count(pending, "record", "records"));
    }
    if let Err(why) = flush(producer, settings, stop) {
        tracing::warn!(target: LOG, "{why}; giving up the records still in flight");
        // A purged record gets a failed delivery report, so it is counted and logged.
        producer.purge(PurgeConfig::default().queue().inflight());
        let _ = kafka::flush(producer, Duration::from_secs(1));
    }
    if settings.metrics.is_some() {
        metrics::publish(generated, deliveries);
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let (delivered, failed) = (deliveries.delivered(), deliveries.failed());
    let unaccounted = generated.saturating_sub(delivered + failed);
    let per_second = delivered as f64 / elapsed;
    tracing::info!(
        target: LOG,
        "📋 Summary: {}, {} delivered, {} failed in {elapsed:.2}s ({})",
        source.describe_counts(generated),
        thousands(delivered),
        thousands(failed + unaccounted),
        count(per_second.round() as u64, "record/s", "records/s"),
    );
    if failed + unaccounted > 0 {
        report::failures(
            deliveries,
            settings.topic.as_str(),
            settings.sequence,
            unaccounted,
        );
    }
    let sent = Sent {
        generated,
        delivered,
    };
    (sent, failed + unaccounted)
}

/// Waits for every record in flight to be answered, at most `--flush-timeout`; after Ctrl+C
/// or SIGTERM, only while the brokers answer: once no delivery report has come for
/// `signals::PATIENCE`, they are taken for not answering, so that the stop stays quick.
/// The error says why the wait ended.
fn flush(
    producer: &BaseProducer<Deliveries>,
    settings: &Settings,
    stop: &signals::Stop,
) -> Result<(), String> {
    let deliveries = producer.context();
    let answered = || deliveries.delivered() + deliveries.failed();
    // After a stop, the wait ends once no delivery report has come for PATIENCE.
    let (mut last_count, mut last_report) = (answered(), Instant::now());
    let silent_after_stop = || {
        let now = Instant::now();
        if answered() != last_count {
            (last_count, last_report) = (answered(), now);
            return false;
        }
        stop.requested() && now.duration_since(last_report) >= signals::PATIENCE
    };
    match kafka::flush_unless(producer, settings.flush_timeout, silent_after_stop) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "stopping, and the brokers sent no delivery report for {}",
            humantime::format_duration(signals::PATIENCE)
        )),
        Err(_) => Err(format!(
            "records still in flight after --flush-timeout {}",
            humantime::format_duration(settings.flush_timeout)
        )),
    }
}

fn describe_pace(settings: &Settings) -> String {
    let pace = match settings.pace {
        Pace::Max => "as fast as the broker takes them".to_string(),
        Pace::Every(d) if d >= Duration::from_secs(1) => {
            // To the millisecond: --rate 0.3 is one every 3s 333ms, not …333us 333ns.
            let shown = Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            format!("one every {}", humantime::format_duration(shown))
        }
        Pace::Every(d) => rate(1.0 / d.as_secs_f64(), "record/s", "records/s"),
    };
    let mut stop = Vec::new();
    if let Some(c) = settings.count {
        stop.push(count(c, "record", "records"));
    }
    if let Some(d) = settings.duration {
        stop.push(humantime::format_duration(d).to_string());
    }
    if stop.is_empty() {
        format!("{pace}; Ctrl+C to stop")
    } else {
        format!("{pace}; stops after {}", stop.join(" or "))
    }
}
