//! `topic describe`: per partition its leader, replicas, ISR, earliest and latest offsets,
//! message count and share of the topic's messages (so that key skew shows: partitions
//! that keyed records never reach stay at 0%); the totals; and the settings that differ from
//! the broker defaults.

use nu_ansi_term::Style;
use serde_json::json;

use super::health::Health;
use super::Common;
use crate::admin::Offsets;
use crate::global::Global;
use crate::numbers::{count, thousands};
use crate::table::{share, share_percent, Table};
use crate::topic_name::TopicName;

const EXAMPLES: &str = "\
Examples:
  stockstream topic describe                   # stock_prices
  stockstream topic describe ticks -o json > ticks.json";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Name of the topic.
    #[arg(default_value = "stock_prices")]
    name: TopicName,

    #[command(flatten)]
    common: Common,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let (admin, topic) = super::existing(name, &args.common, global)?;
    let offsets = admin.offsets(&[&topic])?;
    let configs = admin.custom_configs(name)?;
    let health = Health::of(&topic.partitions, admin.min_insync_replicas(name)?);
    let of = |p: i32| {
        offsets
            .get(&(topic.name.clone(), p))
            .copied()
            .unwrap_or(Offsets {
                earliest: 0,
                latest: 0,
            })
    };
    let total: i64 = topic.partitions.iter().map(|p| of(p.id).messages()).sum();

    if args.common.json() {
        let partitions: Vec<_> = topic
            .partitions
            .iter()
            .map(|p| {
                let o = of(p.id);
                json!({
                    "partition": p.id,
                    "leader": p.leader,
                    "replicas": p.replicas,
                    "isr": p.isr,
                    "earliest_offset": o.earliest,
                    "latest_offset": o.latest,
                    "messages": o.messages(),
                    "share_percent": (total > 0).then(|| share_percent(o.messages(), total)),
                })
            })
            .collect();
        return crate::stdout::json(&json!({
            "name": topic.name,
            "replication_factor": topic.replication_factor(),
            "replication": health.json(),
            "messages": total,
            "partitions": partitions,
            "configs": configs,
        }));
    }

    let color = global.terminal.stdout_color;
    let bold = |s: String| {
        if color {
            Style::new().bold().paint(s).to_string()
        } else {
            s
        }
    };
    let mut text = format!(
        "{}  {}, replication factor {}, {}\n",
        bold(format!("Topic {}", topic.name)),
        count(topic.partitions.len() as u64, "partition", "partitions"),
        topic.replication_factor(),
        count(u64::try_from(total).unwrap_or(0), "message", "messages")
    );
    let mut table = Table::new(vec![
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "EARLIEST",
        "LATEST",
        "MESSAGES",
        "SHARE",
    ]);
    for p in &topic.partitions {
        let o = of(p.id);
        table.row(vec![
            p.id.to_string(),
            p.leader.to_string(),
            join(&p.replicas),
            join(&p.isr),
            o.earliest.to_string(),
            o.latest.to_string(),
            thousands(u64::try_from(o.messages()).unwrap_or(0)),
            share(o.messages(), total),
        ]);
    }
    text.push_str(&table.render(color));
    text.push_str(&health.footer());
    if configs.is_empty() {
        text.push_str("Configs: broker defaults\n");
    } else {
        text.push_str("Configs that differ from the broker defaults:\n");
        for (k, v) in &configs {
            text.push_str(&format!("  {k}={v}\n"));
        }
    }
    Ok(crate::stdout::write(text)?)
}

fn join(ids: &[i32]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
