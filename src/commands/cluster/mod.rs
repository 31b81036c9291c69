//! `stockstream cluster info`: what a cluster is made of, for people and for scripts.

mod info;

use clap::Subcommand;

use crate::global::Global;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the cluster's id, its brokers (address, rack, partitions led and held) and how
    /// many topics and partitions it has.
    Info(info::Args),
}

pub fn run(command: Command, global: &Global) -> anyhow::Result<()> {
    match command {
        Command::Info(args) => info::run(&args, global),
    }
}
