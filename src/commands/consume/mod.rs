//! `stockstream consume`: read a topic to stdout, for people (ticks, bars and dead letters
//! shown as what they are) and for scripts (JSON lines with stable fields, or raw values).
//! Without --follow it reads what the topic held when it started and stops; no consumer
//! group unless one is named.

mod batch;
mod context;
mod from;
mod json;
mod output;
mod pretty;
mod read;
mod record;
mod stamp;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::Offset;

use crate::admin::{Admin, Offsets, TopicInfo};
use crate::exit::Failure;
use crate::global::Global;
use crate::kafka::{CreateClient as _, Kafka};
use crate::numbers::count;
use crate::record::now_millis;
use crate::signals;
use crate::topic_name::TopicName;
use context::Reader;
use from::{Clamped, Position};
use output::{Format, Output};
use read::{Part, Reading};

/// The log target of every consume line.
const LOG: &str = "StockConsumer";

const EXAMPLES: &str = "\
Examples:
  stockstream consume                               # all of stock_prices, then stop
  stockstream consume --follow --from latest        # new ticks as they come, until Ctrl+C
  stockstream consume stock_aggregates --from -10m  # the bars of the last ten minutes
  stockstream consume stock_prices.dlq              # dead letters: why, and where from
  stockstream consume -o json --key AAPL | jq .value.price
  stockstream consume -p 0 --from 1200 --count 10 -o raw
  stockstream consume --group audit --follow        # commits; the next run goes on from there";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Topic to read.
    #[arg(default_value = "stock_prices")]
    topic: TopicName,

    /// Where to start in each partition: `earliest`, `latest`, an offset (1200), the last N
    /// records (-100), an RFC 3339 time (2026-11-01T09:30:00Z) or a time ago (-10m): the
    /// first record at or after it. An offset outside a partition starts at its nearest
    /// end, with a warning. Default: earliest; with --group, where the group stopped.
    #[arg(long, value_name = "WHERE", allow_hyphen_values = true)]
    from: Option<Position>,

    /// Read only this partition (repeatable). Default: every partition.
    #[arg(short, long = "partition", value_name = "N")]
    partitions: Vec<i32>,

    /// Stop after this many records (those --key lets through).
    #[arg(short, long, value_name = "N")]
    count: Option<u64>,

    /// Keep reading at the end, showing records as they are written, until Ctrl+C (or
    /// --count). Without it, reading stops at the end each partition had at start.
    #[arg(short, long)]
    follow: bool,

    /// Only records with this key (e.g. a symbol: AAPL).
    #[arg(long)]
    key: Option<String>,

    /// `read_committed`: records of aborted or still open transactions are not shown.
    /// `read_uncommitted`: everything written is.
    #[arg(long, value_enum, default_value_t = Isolation::ReadCommitted)]
    isolation: Isolation,

    /// Commit the offsets read under this consumer group (as it goes and at the end), and
    /// start where it stopped unless --from says otherwise. Partitions are assigned, not
    /// shared: two runs with one group both read everything.
    #[arg(short, long, value_name = "GROUP")]
    group: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    output: Format,

    /// The longest any request may take, connecting included; without --follow, also the
    /// longest nothing may come while partitions are short of their end.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Isolation {
    #[value(name = "read_committed")]
    ReadCommitted,
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
}

impl Isolation {
    fn as_str(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let stop = signals::install()?;
    let kafka = Kafka::new(&global.connection)?;
    let admin = Admin::connect(&kafka, args.timeout)?;
    let name = args.topic.as_str();
    let Some(topic) = admin.topic(name)? else {
        return Err(Failure::TopicMissing {
            topic: name.to_string(),
            brokers: kafka.brokers().to_string(),
            hint: "`stockstream topic list` shows the topics there are".into(),
        }
        .into());
    };
    let chosen = partitions(&topic, &args.partitions)?;
    let consumer: Arc<BaseConsumer<Reader>> = Arc::new(
        kafka
            .reader_config(args.group.as_deref(), args.isolation.as_str())
            .create_client(Reader::default())
            .context("creating the Kafka consumer")?,
    );
    let parts = plan(&admin, &consumer, &args, &chosen)?;
    // Done with: its clients shut down (a round of goodbyes to the brokers) while reading.
    let _ = std::thread::Builder::new()
        .name("admin-close".to_string())
        .spawn(move || drop(admin));
    consumer.context().observer.connected();

    let total: i64 = parts.values().map(|p| (p.end - p.start).max(0)).sum();
    let what = if args.follow {
        "following it".to_string()
    } else {
        format!(
            "up to its end at start ({} at most)",
            count(u64::try_from(total).unwrap_or(0), "record", "records")
        )
    };
    tracing::info!(
        target: LOG,
        "📥 Reading `{name}` on {} ({}), {what}",
        kafka.brokers(),
        count(parts.len() as u64, "partition", "partitions")
    );
    let reading = Reading {
        topic: name,
        brokers: kafka.brokers(),
        parts: &parts,
        follow: args.follow,
        count: args.count,
        key: args.key.as_deref().map(str::as_bytes),
        commit: args.group.is_some(),
        timeout: args.timeout,
    };
    let mut out = Output::new(args.output, name, global.terminal.stdout_color);
    let written = read::read(&consumer, &reading, &mut out, &stop)?;
    tracing::info!(
        target: LOG,
        "📋 {} from `{name}`{}",
        count(written, "record", "records"),
        if stop.requested() { " (stopped)" } else { "" }
    );
    Ok(())
}

/// The partitions to read: those asked for, each checked, or all.
fn partitions(topic: &TopicInfo, asked: &[i32]) -> anyhow::Result<Vec<i32>> {
    let all: Vec<i32> = topic.partitions.iter().map(|p| p.id).collect();
    if asked.is_empty() {
        return Ok(all);
    }
    let mut chosen = Vec::new();
    for p in asked {
        if !all.contains(p) {
            bail!(
                "topic `{}` has no partition {p}: it has {} (0 to {})",
                topic.name,
                count(all.len() as u64, "partition", "partitions"),
                all.len().saturating_sub(1)
            );
        }
        if !chosen.contains(p) {
            chosen.push(*p);
        }
    }
    Ok(chosen)
}

/// Where each partition starts and ends, from the broker's offsets (as this consumer's
/// isolation level sees them), --from, and the group's committed offsets.
fn plan(
    admin: &Admin,
    consumer: &Arc<BaseConsumer<Reader>>,
    args: &Args,
    chosen: &[i32],
) -> anyhow::Result<BTreeMap<i32, Part>> {
    let topic = args.topic.as_str();
    let earliest = admin.offsets_seen_by(consumer, topic, chosen, Offset::Beginning)?;
    let latest = admin.offsets_seen_by(consumer, topic, chosen, Offset::End)?;
    let from = args.from.unwrap_or(Position::Earliest);
    let by_time = match from.time(now_millis()) {
        Some(ms) => admin.offsets_seen_by(consumer, topic, chosen, Offset::Offset(ms))?,
        None => BTreeMap::new(),
    };
    let committed = match (&args.group, args.from) {
        (Some(_), None) => admin.committed_by(consumer, topic, chosen)?,
        _ => BTreeMap::new(),
    };
    let mut parts = BTreeMap::new();
    for &p in chosen {
        let offsets = Offsets {
            earliest: earliest.get(&p).copied().flatten().unwrap_or(0),
            latest: latest.get(&p).copied().flatten().unwrap_or(0),
        };
        let position = committed
            .get(&p)
            .copied()
            .flatten()
            .map_or(from, Position::Offset);
        let start = from::resolve(position, offsets, by_time.get(&p).copied().flatten());
        match start.clamped {
            Some(Clamped::BeforeStart) => tracing::warn!(
                target: LOG,
                "partition {p} starts at offset {} (earlier records are gone or never were): reading from there",
                offsets.earliest
            ),
            Some(Clamped::BeyondEnd) => tracing::warn!(
                target: LOG,
                "partition {p} ends at offset {}: {position} is beyond it, so reading starts at the end",
                offsets.latest
            ),
            None => {}
        }
        parts.insert(
            p,
            Part {
                start: start.offset,
                end: offsets.latest,
            },
        );
    }
    Ok(parts)
}
