//! The flags of the admin commands (`topic`, `group`, `cluster`): the output format for people or
//! scripts, and the bound on every request.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// Flags every admin command has (`topic`, `group`, `cluster`).
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Output format: an aligned table, or JSON alone on stdout for scripts.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    /// The longest any request may take, connecting included.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

impl Common {
    pub fn json(&self) -> bool {
        self.output == Output::Json
    }
}
