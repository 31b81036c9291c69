//! `stockstream group list|describe|reset|delete`: consumer groups, their members, committed
//! offsets and lag, and the checkpoints stockstream's own groups keep in their commits;
//! moving a group's offsets (planned first, committed only with --execute) and deleting a
//! group, never while it has members. The same manner as `topic`: JSON alone on stdout for
//! scripts, tables for people, bounded waits, distinct exit codes.

mod delete;
mod describe;
mod list;
mod plan;
mod reset;

use anyhow::anyhow;
use clap::Subcommand;

use crate::admin::{Admin, Commit, Group};
use crate::exit::Failure;
use crate::global::Global;
use crate::numbers::count;

/// The flags every group command shares with the topic commands: -o and --timeout.
pub use super::common::Common;

/// The log target of the group commands.
const LOG: &str = "GroupAdmin";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List consumer groups with their state, type and member count.
    List(list::Args),
    /// Show a group's members and assignments, and per partition its committed offset, end
    /// offset and lag (with the checkpoint of stockstream's aggregate groups).
    Describe(describe::Args),
    /// Move a group's committed offsets on a topic (a plan only, unless --execute).
    Reset(reset::Args),
    /// Delete a group and its committed offsets (asks first on a terminal; --yes in scripts).
    Delete(delete::Args),
}

pub fn run(command: Command, global: &Global) -> anyhow::Result<()> {
    match command {
        Command::List(args) => list::run(args, global),
        Command::Describe(args) => describe::run(args, global),
        Command::Reset(args) => reset::run(args, global),
        Command::Delete(args) => delete::run(args, global),
    }
}

/// A consumer group's name: not empty.
fn group_name(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("a group name cannot be empty".into());
    }
    Ok(text.to_string())
}

/// The group and every offset it has committed; `GroupMissing` when the broker knows
/// nothing of it (no members, no committed offsets).
fn existing(admin: &Admin, name: &str) -> anyhow::Result<(Group, Vec<Commit>)> {
    let group = admin.group(name)?;
    let committed = admin.committed(name)?;
    if group.is_dead() && group.members.is_empty() && committed.is_empty() {
        return Err(Failure::GroupMissing {
            group: name.to_string(),
            brokers: admin.brokers().to_string(),
        }
        .into());
    }
    Ok((group, committed))
}

/// Refuses to `verb` a group while it has members, naming each (client id, host, member id).
fn without_members(group: &Group, verb: &str) -> anyhow::Result<()> {
    if group.members.is_empty() {
        return Ok(());
    }
    Err(anyhow!(
        "refusing to {verb} consumer group `{}`: it has {} ({}): {}\n  \
         hint: stop its consumers first. A stopped `stockstream aggregate` (a static member) \
         stays in the group until its session times out, 10 s after it stopped; \
         `stockstream group describe {}` shows the members",
        group.name,
        count(group.members.len() as u64, "member", "members"),
        group.state,
        group.member_names(),
        group.name,
    ))
}
