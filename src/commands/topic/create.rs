//! `topic create`: name and numbers checked before the broker is contacted; an existing
//! topic is its own exit code unless --if-not-exists.

use anyhow::Context as _;
use serde_json::json;

use super::Common;
use crate::admin::{Admin, TopicInfo};
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

    /// Number of replicas of each partition [default: 3, or the number of brokers when the
    /// cluster has fewer]. With 3 or more replicas the topic also gets min.insync.replicas=2
    /// (unless --config sets it): a write with acks=all, as stockstream's, is then on two
    /// brokers before it counts, and one broker may be down without stopping writes.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=32_767))]
    replication_factor: Option<i32>,

    /// A topic setting, e.g. --config retention.ms=3600000 (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = crate::flags::parse_key_value)]
    configs: Vec<(String, String)>,

    /// Succeed (exit 0) when the topic already exists.
    #[arg(long)]
    if_not_exists: bool,

    #[command(flatten)]
    common: Common,
}

/// The replication a topic gets: the factor asked for or min(3, brokers), and the settings
/// to create it with (min.insync.replicas=2 added when it has 3 or more replicas and the
/// user did not set it).
fn replication(
    asked: Option<i32>,
    brokers: usize,
    configs: &[(String, String)],
) -> (i32, Vec<(String, String)>) {
    let factor = asked.unwrap_or_else(|| i32::try_from(brokers.clamp(1, 3)).unwrap_or(1));
    let mut configs = configs.to_vec();
    if factor >= 3 && !configs.iter().any(|(k, _)| k == MIN_ISR) {
        configs.push((MIN_ISR.to_string(), "2".to_string()));
    }
    (factor, configs)
}

const MIN_ISR: &str = "min.insync.replicas";

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let kafka = Kafka::new(&global.connection)?;
    let admin = Admin::connect(&kafka, args.common.timeout)?;
    let name = args.name.as_str();
    let (factor, configs) =
        replication(args.replication_factor, admin.broker_count(), &args.configs);
    let created = if admin.topic(name)?.is_some() {
        false
    } else {
        admin
            .create(name, args.partitions, factor, &configs)
            .with_context(|| format!("creating topic `{name}` on {}", kafka.brokers()))?
    };
    if !created && !args.if_not_exists {
        return Err(Failure::TopicExists {
            topic: name.to_string(),
            brokers: kafka.brokers().to_string(),
        }
        .into());
    }
    let topic = admin.topic(name)?;
    let partitions = topic.as_ref().map_or(0, |t| t.partitions.len());
    let replicas = topic.as_ref().map_or(0, TopicInfo::replication_factor);
    if args.common.json() {
        crate::stdout::json(&json!({
            "name": name,
            "created": created,
            "partitions": partitions,
            "replication_factor": replicas,
        }))?;
    } else if created {
        let min_isr = configs
            .iter()
            .find(|(k, _)| k == MIN_ISR)
            .map_or(String::new(), |(_, v)| format!(", {MIN_ISR} {v}"));
        let why = match args.replication_factor {
            None if factor < 3 => format!(
                "; the cluster has {}",
                count(admin.broker_count() as u64, "broker", "brokers")
            ),
            _ => String::new(),
        };
        tracing::info!(
            target: LOG,
            "✅ Created topic `{name}` with {} (replication factor {factor}{min_isr}{why})",
            count(partitions as u64, "partition", "partitions"),
        );
    } else {
        tracing::info!(target: LOG, "👍 Topic `{name}` already exists ({}); nothing to do", count(partitions as u64, "partition", "partitions"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn three_replicas_and_min_isr_two_where_three_brokers_or_more_run() {
        for brokers in [3, 5] {
            assert_eq!(
                replication(None, brokers, &[]),
                (3, settings(&[(MIN_ISR, "2")]))
            );
        }
    }

    #[test]
    fn as_many_replicas_as_brokers_below_three_and_no_min_isr() {
        assert_eq!(replication(None, 1, &[]), (1, Vec::new()));
        assert_eq!(replication(None, 2, &[]), (2, Vec::new()));
        // A metadata answer without brokers still asks for one replica, not zero.
        assert_eq!(replication(None, 0, &[]), (1, Vec::new()));
    }

    #[test]
    fn the_flags_win() {
        let retention = settings(&[("retention.ms", "1000")]);
        assert_eq!(replication(Some(1), 3, &retention), (1, retention.clone()));
        assert_eq!(replication(Some(2), 5, &[]), (2, Vec::new()));
        let own = settings(&[(MIN_ISR, "3")]);
        assert_eq!(replication(None, 3, &own), (3, own.clone()));
        let mut with_isr = retention.clone();
        with_isr.extend(settings(&[(MIN_ISR, "2")]));
        assert_eq!(replication(Some(4), 5, &retention), (4, with_isr));
    }
}
