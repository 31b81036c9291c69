//! `stockstream topic create|describe|list|delete`: topic administration that is safe for
//! scripts (stable JSON alone on stdout, distinct exit codes, bounded waits) and pleasant
//! for people (aligned, colored tables).

mod create;
mod delete;
mod describe;
mod health;
mod list;

pub use create::DEFAULT_PARTITIONS;

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

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
}

pub fn run(command: Command, global: &Global) -> anyhow::Result<()> {
    match command {
        Command::Create(args) => create::run(args, global),
        Command::Describe(args) => describe::run(args, global),
        Command::List(args) => list::run(args, global),
        Command::Delete(args) => delete::run(args, global),
    }
}

/// Flags every topic command has (and every group command: `commands::group` shares them).
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Output format: an aligned table, or JSON alone on stdout for scripts.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub(crate) output: Output,

    /// The longest any request may take, connecting included.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub(crate) timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

impl Common {
    pub(crate) fn json(&self) -> bool {
        self.output == Output::Json
    }
}
