//! `group list`: every consumer group with its state, type and member count; with --topics,
//! also the topics each reads (assigned to a member, or with a committed offset).

use std::collections::BTreeSet;

use serde_json::json;

use super::Common;
use crate::admin::{Admin, Group};
use crate::global::Global;
use crate::kafka::Kafka;
use crate::table::Table;

const EXAMPLES: &str = "\
Examples:
  stockstream group list
  stockstream group list --topics -o json      # with the topics of each group, for a script";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Also show each group's topics: those assigned to its members and those it has
    /// committed offsets on (one more request per group).
    #[arg(long)]
    topics: bool,

    #[command(flatten)]
    common: Common,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let kafka = Kafka::new(&global.connection)?;
    let admin = Admin::connect(&kafka, args.common.timeout)?;
    let groups = admin.groups()?;
    let topics = if args.topics {
        groups
            .iter()
            .map(|g| topics_of(&admin, g).map(Some))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        vec![None; groups.len()]
    };

    if args.common.json() {
        let list: Vec<_> = groups
            .iter()
            .zip(&topics)
            .map(|(g, topics)| {
                let mut entry = json!({
                    "name": g.name,
                    "state": g.state,
                    "protocol_type": non_empty(&g.protocol_type),
                    "protocol": non_empty(&g.protocol),
                    "members": g.members.len(),
                });
                if let Some(topics) = topics {
                    entry["topics"] = json!(topics);
                }
                entry
            })
            .collect();
        return crate::stdout::json(&list);
    }
    let mut header = vec!["GROUP", "STATE", "TYPE", "MEMBERS"];
    if args.topics {
        header.push("TOPICS");
    }
    let mut table = Table::new(header);
    for (g, topics) in groups.iter().zip(&topics) {
        let mut row = vec![
            g.name.clone(),
            g.state.clone(),
            non_empty(&g.protocol_type).unwrap_or("-").to_string(),
            g.members.len().to_string(),
        ];
        if let Some(topics) = topics {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            row.push(if names.is_empty() {
                "-".to_string()
            } else {
                names.join(",")
            });
        }
        table.row(row);
    }
    Ok(crate::stdout::write(
        table.render(global.terminal.stdout_color),
    )?)
}

/// The topics assigned to the group's members and those it has committed offsets on.
fn topics_of(admin: &Admin, group: &Group) -> anyhow::Result<BTreeSet<String>> {
    let mut topics: BTreeSet<String> = admin
        .committed(&group.name)?
        .into_iter()
        .map(|c| c.topic)
        .collect();
    for m in &group.members {
        topics.extend(m.assignment.iter().flat_map(|a| a.keys().cloned()));
    }
    Ok(topics)
}

/// The broker's empty string as "none".
pub(super) fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}
