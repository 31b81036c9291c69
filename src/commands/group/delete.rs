//! `group delete`: never by accident, as `topic delete`. On a terminal it asks; in a script
//! it needs --yes and refuses without it. A group with members is refused, naming them; a
//! missing group is its own exit code.

use anyhow::{bail, Context as _};
use serde_json::json;

use super::{existing, group_name, without_members, Common, LOG};
use crate::admin::Admin;
use crate::exit::Failure;
use crate::global::Global;
use crate::kafka::Kafka;
use crate::numbers::count;

const EXAMPLES: &str = "\
Examples:
  stockstream group delete replay              # asks first on a terminal
  stockstream group delete replay --yes -o json   # in scripts";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Name of the consumer group.
    #[arg(value_parser = group_name)]
    group: String,

    /// Delete without asking.
    #[arg(short, long)]
    yes: bool,

    #[command(flatten)]
    common: Common,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let kafka = Kafka::new(&global.connection)?;
    let name = args.group.as_str();
    // Refuse before touching the network: a script without --yes is a mistake either way.
    if !args.yes && !global.terminal.can_ask() {
        bail!(
            "refusing to delete consumer group `{name}` without confirmation: not on a terminal, so I cannot ask.\n  \
             hint: pass --yes to delete it from a script"
        );
    }
    let admin = Admin::connect(&kafka, args.common.timeout)?;
    let (group, committed) = existing(&admin, name)?;
    without_members(&group, "delete")?;
    if !args.yes {
        let question = format!(
            "Delete consumer group `{name}` and its committed offsets ({})? [y/N] ",
            count(committed.len() as u64, "partition", "partitions")
        );
        if !crate::terminal::ask_yes(&question)? {
            return Err(Failure::GroupDeclined {
                group: name.to_string(),
            }
            .into());
        }
    }
    let deleted = admin
        .delete_group(name)
        .with_context(|| format!("deleting consumer group `{name}` on {}", kafka.brokers()))?;
    if !deleted {
        // Gone between the look and the delete (its offsets expired, or someone else).
        return Err(Failure::GroupMissing {
            group: name.to_string(),
            brokers: kafka.brokers().to_string(),
        }
        .into());
    }
    if args.common.json() {
        crate::stdout::json(&json!({ "name": name, "deleted": true }))?;
    } else {
        tracing::info!(target: LOG, "🗑️ Deleted consumer group `{name}`");
    }
    Ok(())
}
