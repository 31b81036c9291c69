//! `topic delete`: never by accident. On a terminal it asks; in a script it needs --yes and
//! refuses without it. A missing topic is its own exit code unless --if-exists.

use anyhow::{bail, Context as _};
use serde_json::json;

use super::create::LOG;
use super::Common;
use crate::admin::Admin;
use crate::exit::Failure;
use crate::global::Global;
use crate::kafka::Kafka;
use crate::numbers::count;
use crate::topic_name::TopicName;

const EXAMPLES: &str = "\
Examples:
  stockstream topic delete ticks               # asks first on a terminal
  stockstream topic delete ticks --yes --if-exists   # in scripts: a missing topic is fine";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Name of the topic.
    name: TopicName,

    /// Delete without asking.
    #[arg(short, long)]
    yes: bool,

    /// Succeed (exit 0) when the topic does not exist.
    #[arg(long)]
    if_exists: bool,

    #[command(flatten)]
    common: Common,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let kafka = Kafka::new(&global.connection)?;
    let name = args.name.as_str();
    // Refuse before touching the network: a script without --yes is a mistake either way.
    let interactive = global.terminal.can_ask();
    if !args.yes && !interactive {
        bail!(
            "refusing to delete topic `{name}` without confirmation: not on a terminal, so I cannot ask.\n  \
             hint: pass --yes to delete it from a script"
        );
    }
    let admin = Admin::connect(&kafka, args.common.timeout)?;
    let deleted = match admin.topic(name)? {
        None => false,
        Some(topic) => {
            if !args.yes && !confirm(name, topic.partitions.len())? {
                return Err(Failure::Declined {
                    topic: name.to_string(),
                }
                .into());
            }
            admin
                .delete(name)
                .with_context(|| format!("deleting topic `{name}` on {}", kafka.brokers()))?
        }
    };
    if !deleted && !args.if_exists {
        return Err(Failure::TopicMissing {
            topic: name.to_string(),
            brokers: kafka.brokers().to_string(),
            hint: "pass --if-exists to accept a missing topic".into(),
        }
        .into());
    }
    if args.common.json() {
        crate::stdout::json(&json!({ "name": name, "deleted": deleted }))?;
    } else if deleted {
        tracing::info!(target: LOG, "🗑️ Deleted topic `{name}`");
    } else {
        tracing::info!(target: LOG, "👍 Topic `{name}` does not exist; nothing to do");
    }
    Ok(())
}

fn confirm(name: &str, partitions: usize) -> anyhow::Result<bool> {
    crate::terminal::ask_yes(&format!(
        "Delete topic `{name}` ({}) and all its records? [y/N] ",
        count(partitions as u64, "partition", "partitions")
    ))
}
