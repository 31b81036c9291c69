//! `profile list`: every profile of the file and its brokers.

use std::path::Path;

use serde_json::json;

use super::{Common, Output};
use crate::kafka::profile::ConfigFile;
use crate::table::Table;
use crate::terminal::Terminal;

const EXAMPLES: &str = "\
Examples:
  stockstream profile list
  stockstream profile list -o json
  stockstream --config-file ./clusters.toml profile list";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    common: Common,
}

pub fn run(args: &Args, file: &ConfigFile, path: &Path, terminal: Terminal) -> anyhow::Result<()> {
    if args.common.output == Output::Json {
        let list: Vec<_> = file
            .profiles
            .iter()
            .map(|(name, p)| json!({ "name": name, "brokers": p.brokers, "settings": p.settings.len() }))
            .collect();
        return crate::stdout::json(&list);
    }
    if file.profiles.is_empty() {
        tracing::info!(target: "stockstream", "No profiles in {}", path.display());
        return Ok(());
    }
    let mut table = Table::new(vec!["PROFILE", "BROKERS", "SETTINGS"]);
    for (name, p) in &file.profiles {
        table.row(vec![
            name.clone(),
            p.brokers.clone().unwrap_or_else(|| "-".to_string()),
            p.settings.len().to_string(),
        ]);
    }
    Ok(crate::stdout::write(table.render(terminal.stdout_color))?)
}
