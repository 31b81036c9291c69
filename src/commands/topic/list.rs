//! `topic list`: every topic with its partitions, replication factor and message count;
//! Kafka's internal topics only when asked for.

use serde_json::json;

use super::Common;
use crate::admin::Admin;
use crate::global::Global;
use crate::kafka::Kafka;
use crate::numbers::thousands;
use crate::table::Table;

const EXAMPLES: &str = "\
Examples:
  stockstream topic list
  stockstream topic list --internal -o json    # Kafka's own topics too, for a script";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Include Kafka's internal topics (__consumer_offsets, __transaction_state, …).
    #[arg(long)]
    internal: bool,

    #[command(flatten)]
    common: Common,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let kafka = Kafka::new(&global.connection)?;
    let admin = Admin::connect(&kafka, args.common.timeout)?;
    let topics: Vec<_> = admin
        .topics()?
        .into_iter()
        .filter(|t| args.internal || !t.is_internal())
        .collect();
    let refs: Vec<_> = topics.iter().collect();
    let offsets = admin.offsets(&refs)?;
    let messages = |name: &str, partitions: &[crate::admin::PartitionInfo]| -> i64 {
        partitions
            .iter()
            .filter_map(|p| offsets.get(&(name.to_string(), p.id)))
            .map(|o| o.messages())
            .sum()
    };

    if args.common.json() {
        let list: Vec<_> = topics
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "partitions": t.partitions.len(),
                    "replication_factor": t.replication_factor(),
                    "messages": messages(&t.name, &t.partitions),
                })
            })
            .collect();
        return crate::stdout::json(&list);
    }
    let mut table = Table::new(vec!["NAME", "PARTITIONS", "REPLICATION", "MESSAGES"]);
    for t in &topics {
        table.row(vec![
            t.name.clone(),
            t.partitions.len().to_string(),
            t.replication_factor().to_string(),
            thousands(u64::try_from(messages(&t.name, &t.partitions)).unwrap_or(0)),
        ]);
    }
    Ok(crate::stdout::write(
        table.render(global.terminal.stdout_color),
    )?)
}
