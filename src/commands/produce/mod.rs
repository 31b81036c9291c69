//! `stockstream produce`: realistic, validated ticks to a topic, keyed by symbol, at any pace
//! from one a second to the broker's limit, and never a record lost without a word.

mod deliveries;
mod pace;
mod status;

use std::fmt::Write as _;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, PurgeConfig};

use crate::cli::GlobalArgs;
use crate::exit::Failure;
use crate::kafka::{self, CreateClient as _, Kafka, ProducerProfile};
use crate::market::{unix_now, Market};
use crate::record::event_millis;
use crate::record::Symbol;
use crate::signals;
use crate::topic_name::TopicName;
use deliveries::{ranges, runs, thousands, Deliveries, LOG};

/// The header that carries a record's number in its run, with `--sequence`.
pub const SEQUENCE_HEADER: &str = "stockstream.seq";
use pace::{Pace, Pacer};
use status::Status;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Topic to write to. It must exist: stockstream never relies on broker auto-creation.
    #[arg(long, default_value = "stock_prices")]
    topic: TopicName,

    /// Time between two records, e.g. 1s or 250ms.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "rate", default_value = "1s")]
    interval: Duration,

    /// Records per second, or `max` for as many as the broker takes (instead of --interval).
    #[arg(long, value_name = "N|max")]
    rate: Option<Rate>,

    /// Stop after this many records.
    #[arg(long)]
    count: Option<u64>,

    /// Stop after this long, e.g. 30s or 5m.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,

    /// Only these symbols, comma-separated (default: all seven).
    #[arg(long, value_delimiter = ',', ignore_case = true)]
    symbols: Vec<Symbol>,

    /// Seed for the price and volume generator, for a reproducible sequence.
    #[arg(long)]
    seed: Option<u64>,

    /// How long to wait for the broker to answer at start.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    timeout: Duration,

    /// How long to retry a record before it counts as failed (librdkafka's message.timeout.ms).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2m")]
    delivery_timeout: Duration,

    /// On stop, how long to wait for records still in flight before giving them up as failed.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    flush_timeout: Duration,

    /// Put each record's number in this run (1, 2, 3, …) in a `stockstream.seq` header, so a
    /// consumer can check that none is missing or doubled. Failure reports use the same
    /// numbers.
    #[arg(long)]
    sequence: bool,
}

/// `--rate`: a number of records per second, or `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rate {
    PerSecond(f64),
    Max,
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        match s.parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 && n <= 1e9 => Ok(Rate::PerSecond(n)),
            _ => Err(format!(
                "expected a number of records per second above 0, or `max`; got `{s}`"
            )),
        }
    }
}

/// The validated settings of one run.
pub struct Settings {
    topic: TopicName,
    pace: Pace,
    count: Option<u64>,
    duration: Option<Duration>,
    symbols: Vec<Symbol>,
    seed: Option<u64>,
    timeout: Duration,
    delivery_timeout: Duration,
    flush_timeout: Duration,
    sequence: bool,
}

impl Settings {
    pub fn from_args(args: Args) -> anyhow::Result<Self> {
        let pace = match args.rate {
            Some(Rate::Max) => Pace::Max,
            Some(Rate::PerSecond(n)) => Pace::Every(Duration::from_secs_f64(1.0 / n)),
            None if args.interval.is_zero() => {
                bail!("--interval must be above 0 (use --rate max for no pause)")
            }
            None => Pace::Every(args.interval),
        };
        if args.count == Some(0) {
            bail!("--count must be at least 1");
        }
        Ok(Settings {
            topic: args.topic,
            pace,
            count: args.count,
            duration: args.duration,
            symbols: args.symbols,
            seed: args.seed,
            timeout: args.timeout,
            delivery_timeout: args.delivery_timeout,
            flush_timeout: args.flush_timeout,
            sequence: args.sequence,
        })
    }
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(args)?;
    let kafka = Kafka::new(global)?;
    let stop = signals::install()?;
    run_on(&kafka, &settings, &stop).map(|_| ())
}

/// What one run sent, for a caller that reports on it (the demo).
pub struct Sent {
    pub generated: u64,
    pub delivered: u64,
}

/// Produces to `kafka` until a stop condition or `stop`; fails if a record was lost.
pub fn run_on(kafka: &Kafka, settings: &Settings, stop: &signals::Stop) -> anyhow::Result<Sent> {
    let profile = if settings.pace.is_human() {
        ProducerProfile::Latency
    } else {
        ProducerProfile::Throughput
    };
    let producer: BaseProducer<Deliveries> = kafka
        .producer_config(profile, settings.delivery_timeout)
        .create_client(Deliveries::new(settings.pace.is_human()))
        .context("creating the Kafka producer")?;
    check_topic(kafka, settings)?;
    producer.context().observer.connected();

    let mut market = Market::new(&settings.symbols, settings.seed);
    tracing::info!(
        target: LOG,
        "🚀 Producing {} to `{}` on {} ({})",
        describe_symbols(market.symbols()),
        settings.topic,
        kafka.brokers(),
        describe_pace(settings)
    );
    let started = Instant::now();
    let generated = send_loop(&producer, &mut market, settings, stop);
    finish(&producer, generated, started, settings)
}

fn check_topic(kafka: &Kafka, settings: &Settings) -> anyhow::Result<()> {
    let metadata = kafka::reach(kafka, settings.timeout)?;
    match metadata
        .topics()
        .iter()
        .find(|t| t.name() == settings.topic.as_str())
    {
        Some(t) if !t.partitions().is_empty() => {
            tracing::debug!(target: LOG, "`{}` has {} partitions", settings.topic, t.partitions().len());
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

/// Generates, validates and sends until a stop condition; returns how many were sent.
fn send_loop(
    producer: &BaseProducer<Deliveries>,
    market: &mut Market,
    settings: &Settings,
    stop: &signals::Stop,
) -> u64 {
    let started = Instant::now();
    let mut pacer = Pacer::new(settings.pace, started);
    let mut status = Status::new(settings.pace.is_human(), settings.count);
    let mut payload = Vec::with_capacity(128);
    let mut number = String::with_capacity(20);
    let mut generated: u64 = 0;
    loop {
        if stop.requested()
            || settings.count.is_some_and(|c| generated >= c)
            || settings.duration.is_some_and(|d| started.elapsed() >= d)
        {
            break;
        }
        if let Some(wait) = pacer.wait(Instant::now()) {
            producer.poll(wait.min(Duration::from_millis(100)));
            continue;
        }
        let tick = market.next_tick(unix_now());
        // The generator only makes valid ticks; a failure here is a bug worth stopping for.
        let tick = match tick.validated() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(target: LOG, "generated an invalid tick {tick:?}: {e}");
                break;
            }
        };
        payload.clear();
        tick.encode_into(&mut payload);
        let millis = event_millis(tick.timestamp);
        // The record's number in this run: its delivery report names it by this.
        let seq = generated + 1;
        let mut record = BaseRecord::with_opaque_to(
            settings.topic.as_str(),
            usize::try_from(seq).unwrap_or(usize::MAX),
        )
        .key(tick.symbol.as_str())
        .payload(payload.as_slice())
        .timestamp(millis);
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
        }
        status.update(generated, producer.context());
    }
    status.finish();
    generated
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

/// Flushes, gives up what is still in flight after `--flush-timeout`, and reports.
fn finish(
    producer: &BaseProducer<Deliveries>,
    generated: u64,
    started: Instant,
    settings: &Settings,
) -> anyhow::Result<Sent> {
    let deliveries = producer.context();
    let pending = generated.saturating_sub(deliveries.delivered() + deliveries.failed());
    if pending > 0 {
        tracing::info!(target: LOG, "⏳ Waiting for the last records in flight: {}", thousands(pending));
    }
    if producer.flush(settings.flush_timeout).is_err() {
        tracing::warn!(
            target: LOG,
            "records still in flight after --flush-timeout {}; giving them up",
            humantime::format_duration(settings.flush_timeout)
        );
        // A purged record gets a failed delivery report, so it is counted and logged.
        producer.purge(PurgeConfig::default().queue().inflight());
        let _ = producer.flush(Duration::from_secs(1));
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let (delivered, failed) = (deliveries.delivered(), deliveries.failed());
    let unaccounted = generated.saturating_sub(delivered + failed);
    let per_second = delivered as f64 / elapsed;
    tracing::info!(
        target: LOG,
        "📋 Summary: {} generated, {} delivered, {} failed in {elapsed:.2}s ({} records/s)",
        thousands(generated),
        thousands(delivered),
        thousands(failed + unaccounted),
        thousands(per_second.round() as u64),
    );
    if failed + unaccounted > 0 {
        report_failures(deliveries, settings, unaccounted);
        bail!(
            "{} of {} records to `{}` failed (their numbers are listed above)",
            thousands(failed + unaccounted),
            thousands(generated),
            settings.topic
        );
    }
    Ok(Sent {
        generated,
        delivered,
    })
}

/// At most this many runs of numbers on a log line; the full lists go to a file.
const RUNS_ON_A_LINE: usize = 100;

/// Names every failed record by its number in this run, as ranges (`--sequence` puts the
/// same numbers in the records' headers). Long lists are cut short on the terminal and
/// written in full to a file.
fn report_failures(deliveries: &Deliveries, settings: &Settings, unaccounted: u64) {
    let failures = deliveries.failures();
    let numbering = if settings.sequence {
        format!("numbers as in the `{SEQUENCE_HEADER}` header")
    } else {
        "numbers are positions in this run".to_string()
    };
    let not_delivered = runs(&failures.not_delivered);
    let possibly = runs(&failures.possibly_delivered);
    let full_list = if not_delivered.len().max(possibly.len()) > RUNS_ON_A_LINE {
        write_full_list(settings, &not_delivered, &possibly)
    } else {
        None
    };
    let shown = |runs: &[(u64, u64)]| {
        let head = ranges(&runs[..runs.len().min(RUNS_ON_A_LINE)]);
        match (&full_list, runs.len() > RUNS_ON_A_LINE) {
            (Some(path), true) => format!("{head},… (all of them in {})", path.display()),
            (None, true) => format!("{head},… (the full list could not be written to a file)"),
            (_, false) => head,
        }
    };
    if !not_delivered.is_empty() {
        tracing::error!(
            target: LOG,
            "❌ Not delivered ({}; {numbering}): {}",
            thousands(failures.not_delivered.len() as u64),
            shown(&not_delivered)
        );
    }
    if !possibly.is_empty() {
        tracing::error!(
            target: LOG,
            "❓ Possibly delivered, unconfirmed ({}; sent, but the broker's answer was lost, \
             so they may be in the topic; {numbering}): {}",
            thousands(failures.possibly_delivered.len() as u64),
            shown(&possibly)
        );
    }
    if unaccounted > 0 {
        tracing::error!(
            target: LOG,
            "❓ {} records got no delivery report at all: they may or may not be in the topic",
            thousands(unaccounted)
        );
    }
}

/// Writes both lists of failed records to a file in the temporary folder; returns its path.
fn write_full_list(
    settings: &Settings,
    not_delivered: &[(u64, u64)],
    possibly: &[(u64, u64)],
) -> Option<std::path::PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "stockstream-produce-{}-failed.txt",
        std::process::id()
    ));
    let text = format!(
        "# records of `stockstream produce` to `{}` that failed, by number in the run\n\
         not_delivered: {}\npossibly_delivered: {}\n",
        settings.topic,
        ranges(not_delivered),
        ranges(possibly)
    );
    match std::fs::write(&path, text) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(target: LOG, "could not write the failed records to {}: {e}", path.display());
            None
        }
    }
}

fn describe_symbols(symbols: &[Symbol]) -> String {
    symbols
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe_pace(settings: &Settings) -> String {
    let pace = match settings.pace {
        Pace::Max => "as fast as the broker takes them".to_string(),
        Pace::Every(d) if d >= Duration::from_secs(1) => {
            format!("one every {}", humantime::format_duration(d))
        }
        Pace::Every(d) => format!("{:.0} records/s", 1.0 / d.as_secs_f64()),
    };
    let mut stop = Vec::new();
    if let Some(c) = settings.count {
        stop.push(format!("{} records", thousands(c)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_parses_numbers_and_max() {
        assert_eq!("max".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!("MAX".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!("2000".parse::<Rate>(), Ok(Rate::PerSecond(2000.0)));
        assert_eq!("0.5".parse::<Rate>(), Ok(Rate::PerSecond(0.5)));
        for bad in ["0", "-1", "fast", "inf", "NaN"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }
}
