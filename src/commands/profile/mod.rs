//! `stockstream profile list|show`: the named clusters of the profiles file, for people and
//! scripts. Nothing secret is ever shown: a secret setting is a reference (`env:VAR`,
//! `file:PATH`) in the file, and that reference is all `show` prints of it.

mod list;
mod show;

use clap::{Args, Subcommand, ValueEnum};

use crate::global::Global;
use crate::kafka::profile::{config_path, ConfigFile};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the profiles with their brokers.
    List(list::Args),
    /// Show one profile: brokers and settings (secrets as their references).
    Show(show::Args),
}

pub fn run(command: Command, global: &Global) -> anyhow::Result<()> {
    let path = config_path(global.connection.profiles_file.as_deref())?;
    let file = ConfigFile::load(&path)?;
    match command {
        Command::List(args) => list::run(&args, &file, &path, global.terminal),
        Command::Show(args) => show::run(&args, &file, &path, global),
    }
}

/// Flags both commands have.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Output format: an aligned table, or JSON alone on stdout for scripts.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}
