//! `topic create`: name and numbers checked before the broker is contacted; an existing
//! topic is its own exit code unless --if-not-exists.

use anyhow::Context as _;
use serde_json::json;

use super::Common;
use crate::admin::Admin;
use crate::exit::Failure;
use crate::global::Global;
use crate::kafka::Kafka;
use crate::numbers::count;
use crate::topic_name::TopicName;

/// The log target of the topic commands.
pub const LOG: &str = "TopicAdmin";

const EXAMPLES: &str = "\
Examples:
  stockstream topic create                     # stock_prices, 5 partitions
  stockstream topic create ticks --partitions 12 --config retention.ms=86400000
  stockstream topic create ticks --if-not-exists -o json   # in scripts: an existing one is fine";

/// Partitions of a topic made without --partitions, `stock_prices` among them.
pub const DEFAULT_PARTITIONS: i32 = 5;

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Name of the topic.
    #[arg(default_value = "stock_prices")]
    name: TopicName,

    /// Number of partitions.
    #[arg(long, default_value_t = DEFAULT_PARTITIONS, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    partitions: i32,

    /// Number of replicas of each partition.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=32_767))]
    replication_factor: i32,

    /// A topic setting, e.g. --config retention.ms=3600000 (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = crate::flags::parse_key_value)]
    configs: Vec<(String, String)>,

    /// Succeed (exit 0) when the topic already exists.
    #[arg(long)]
    if_not_exists: bool,

    #[command(flatten)]
    common: Common,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let kafka = Kafka::new(&global.connection)?;
    let admin = Admin::connect(&kafka, args.common.timeout)?;
    let name = args.name.as_str();
    let created = if admin.topic(name)?.is_some() {
        false
    } else {
        admin
            .create(
                name,
                args.partitions,
                args.replication_factor,
                &args.configs,
            )
            .with_context(|| format!("creating topic `{name}` on {}", kafka.brokers()))?
    };
    if !created && !args.if_not_exists {
        return Err(Failure::TopicExists {
            topic: name.to_string(),
            brokers: kafka.brokers().to_string(),
        }
        .into());
    }
    let partitions = admin.topic(name)?.map_or(0, |t| t.partitions.len());
    if args.common.json() {
        crate::stdout::json(&json!({
            "name": name,
            "created": created,
            "partitions": partitions,
        }))?;
    } else if created {
        tracing::info!(
            target: LOG,
            "✅ Created topic `{name}` with {} (replication factor {})",
            count(partitions as u64, "partition", "partitions"),
            args.replication_factor
        );
    } else {
        tracing::info!(target: LOG, "👍 Topic `{name}` already exists ({}); nothing to do", count(partitions as u64, "partition", "partitions"));
    }
    Ok(())
}
