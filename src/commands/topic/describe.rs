//! `topic describe`: per partition its leader, replicas, ISR, earliest and latest offsets
//! and message count; the totals; and the settings that differ from the broker defaults.

use nu_ansi_term::Style;
use serde_json::json;

use super::health::Health;
use super::Common;
use crate::admin::{Admin, Offsets};
use crate::cli::GlobalArgs;
use crate::exit::Failure;
use crate::kafka::Kafka;
use crate::table::Table;
use crate::topic_name::TopicName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name of the topic.
    #[arg(default_value = "stock_prices")]
    name: TopicName,

    #[command(flatten)]
    common: Common,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<()> {
    let kafka = Kafka::new(global)?;
    let admin = Admin::connect(&kafka, args.common.timeout)?;
    let name = args.name.as_str();
    let Some(topic) = admin.topic(name)? else {
        return Err(Failure::TopicMissing {
            topic: name.to_string(),
            brokers: kafka.brokers().to_string(),
            hint: "`stockstream topic list` shows the topics there are".into(),
        }
        .into());
    };
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

    let color = super::color_stdout(global);
    let bold = |s: String| {
        if color {
            Style::new().bold().paint(s).to_string()
        } else {
            s
        }
    };
    let mut text = format!(
        "{}  {} partitions, replication factor {}, {} messages\n",
        bold(format!("Topic {}", topic.name)),
        topic.partitions.len(),
        topic.replication_factor(),
        total
    );
    let mut table = Table::new(vec![
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "EARLIEST",
        "LATEST",
        "MESSAGES",
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
            o.messages().to_string(),
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
