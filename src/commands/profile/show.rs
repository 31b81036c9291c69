//! `profile show NAME`: one profile's brokers and settings; a reference is shown as written,
//! never resolved, and any other value of a key that may hold a secret is redacted.

use std::path::Path;

use serde_json::json;

use super::{Common, Output};
use crate::global::Global;
use crate::kafka::profile::{shown_value, ConfigFile};
use crate::table::Table;

const EXAMPLES: &str = "\
Examples:
  stockstream profile show prod                # secrets as their references (env:VAR, file:PATH)
  stockstream profile show prod -o json";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The profile's name.
    name: String,

    #[command(flatten)]
    common: Common,
}

pub fn run(args: &Args, file: &ConfigFile, path: &Path, global: &Global) -> anyhow::Result<()> {
    let profile = file.profile(&args.name, path)?;
    let settings: Vec<(&str, String)> = profile
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), shown_value(k, v)))
        .collect();
    if args.common.output == Output::Json {
        let map: serde_json::Map<String, serde_json::Value> = settings
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone().into()))
            .collect();
        let doc = json!({ "name": args.name, "brokers": profile.brokers, "settings": map });
        return crate::stdout::json(&doc);
    }
    let mut table = Table::new(vec!["SETTING", "VALUE"]);
    table.row(vec![
        "brokers".to_string(),
        profile.brokers.clone().unwrap_or_else(|| "-".to_string()),
    ]);
    for (k, v) in settings {
        table.row(vec![k.to_string(), v]);
    }
    Ok(crate::stdout::write(
        table.render(global.terminal.stdout_color),
    )?)
}
