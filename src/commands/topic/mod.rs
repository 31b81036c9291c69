//! `stockstream topic create|describe|list|delete|alter`: topic administration that is safe for
//! scripts (stable JSON alone on stdout, distinct exit codes, bounded waits) and pleasant
//! for people (aligned, colored tables).

mod alter;
mod create;
mod delete;
mod describe;
mod health;
mod list;

pub use create::DEFAULT_PARTITIONS;

use clap::Subcommand;

use crate::admin::{Admin, TopicInfo};
use crate::exit::Failure;
use crate::kafka::Kafka;

pub(crate) use super::common::Common;

use crate::global::Global;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a topic (default `stock_prices`, 5 partitions, 3 replicas with min.insync.replicas=2 where the cluster has 3 brokers or more).
    Create(create::Args),
    /// Show a topic's partitions, leaders, replicas, offsets, message counts and shares, and
    /// custom configs.
    Describe(describe::Args),
    /// List topics with their partitions, replication factor and message count.
    List(list::Args),
    /// Delete a topic (asks first on a terminal; --yes in scripts).
    Delete(delete::Args),
    /// Add partitions (naming the symbols that then move) or change settings, shown before
    /// and after.
    Alter(alter::Args),
}

pub fn run(command: Command, global: &Global) -> anyhow::Result<()> {
    match command {
        Command::Create(args) => create::run(args, global),
        Command::Describe(args) => describe::run(args, global),
        Command::List(args) => list::run(args, global),
        Command::Delete(args) => delete::run(args, global),
        Command::Alter(args) => alter::run(args, global),
    }
}

/// Connects and finds the topic `name`: a missing one is its own exit code, with a hint.
fn existing(name: &str, common: &Common, global: &Global) -> anyhow::Result<(Admin, TopicInfo)> {
    let kafka = Kafka::new(&global.connection)?;
    let admin = Admin::connect(&kafka, common.timeout)?;
    match admin.topic(name)? {
        Some(topic) => Ok((admin, topic)),
        None => Err(Failure::TopicMissing {
            topic: name.to_string(),
            brokers: kafka.brokers().to_string(),
            hint: "`stockstream topic list` shows the topics there are".into(),
        }
        .into()),
    }
}
