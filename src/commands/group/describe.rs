//! `group describe`: a group's state and members (each with its assigned partitions), and
//! per partition of every topic it reads its committed offset, end offset and lag. For
//! stockstream's `aggregate` groups, the checkpoint each commit carries: the replay offset
//! (the earliest record an open window still needs) and the partition's watermark.

use std::collections::{BTreeMap, BTreeSet};

use nu_ansi_term::Style;
use serde_json::{json, Value};

use super::list::non_empty;
use super::{existing, group_name, Common};
use crate::admin::{Admin, Commit, Group, Member};
use crate::aggregate::bar::rfc3339;
use crate::aggregate::Checkpoint;
use crate::global::Global;
use crate::kafka::Kafka;
use crate::numbers::{count, thousands};
use crate::table::Table;

const EXAMPLES: &str = "\
Examples:
  stockstream group describe stockstream-aggregate   # aggregate's default group
  stockstream group describe replay -o json > replay.json";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Name of the consumer group.
    #[arg(value_parser = group_name)]
    group: String,

    #[command(flatten)]
    common: Common,
}

/// One partition of a topic the group reads.
struct Row {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    /// The end offset (high watermark); `None` when the topic is gone or had no leader.
    end: Option<i64>,
    metadata: String,
    checkpoint: Option<Checkpoint>,
    /// The member the partition is assigned to.
    member: Option<String>,
}

impl Row {
    /// Records still to read; only where the group has committed.
    fn lag(&self) -> Option<i64> {
        Some((self.end? - self.committed?).max(0))
    }
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let kafka = Kafka::new(&global.connection)?;
    let admin = Admin::connect(&kafka, args.common.timeout)?;
    let (group, committed) = existing(&admin, &args.group)?;
    let rows = rows(&admin, &group, &committed)?;
    let lag: i64 = rows.iter().filter_map(Row::lag).sum();
    if args.common.json() {
        return crate::stdout::json(&as_json(&group, &rows, lag));
    }
    Ok(crate::stdout::write(as_text(
        &group,
        &rows,
        lag,
        global.terminal.stdout_color,
    ))?)
}

/// Every partition of every topic the group reads (assigned to a member, or committed to):
/// those without a commit too, so that what the group has never read shows.
fn rows(admin: &Admin, group: &Group, committed: &[Commit]) -> anyhow::Result<Vec<Row>> {
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    for m in &group.members {
        for (topic, partitions) in m.assignment.iter().flatten() {
            for p in partitions {
                owners.insert((topic.clone(), *p), m.member_id.clone());
            }
        }
    }
    let commits: BTreeMap<(String, i32), &Commit> = committed
        .iter()
        .map(|c| ((c.topic.clone(), c.partition), c))
        .collect();
    let names: BTreeSet<&String> = commits
        .keys()
        .chain(owners.keys())
        .map(|(t, _)| t)
        .collect();
    let topics: Vec<_> = admin
        .topics()?
        .into_iter()
        .filter(|t| names.contains(&t.name))
        .collect();
    let refs: Vec<_> = topics.iter().collect();
    let ends = admin.offsets(&refs)?;
    let mut keys: BTreeSet<(String, i32)> = commits.keys().chain(owners.keys()).cloned().collect();
    for t in &topics {
        keys.extend(t.partitions.iter().map(|p| (t.name.clone(), p.id)));
    }
    Ok(keys
        .into_iter()
        .map(|key| {
            let commit = commits.get(&key);
            let offset = commit.map(|c| c.offset).filter(|o| *o >= 0);
            let metadata = commit.map(|c| c.metadata.clone()).unwrap_or_default();
            Row {
                checkpoint: offset.and_then(|o| Checkpoint::decode(&metadata, o)),
                end: ends.get(&key).map(|o| o.latest),
                member: owners.get(&key).cloned(),
                committed: offset,
                metadata,
                topic: key.0,
                partition: key.1,
            }
        })
        .collect())
}

/// A time of the checkpoint (Unix ms, `i64::MIN` for none yet) as RFC 3339.
fn time_of(ms: i64) -> Option<String> {
    (ms != i64::MIN).then(|| rfc3339(ms))
}

fn as_json(group: &Group, rows: &[Row], lag: i64) -> Value {
    let members: Vec<_> = group.members.iter().map(member_json).collect();
    let partitions: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "topic": r.topic,
                "partition": r.partition,
                "committed_offset": r.committed,
                "end_offset": r.end,
                "lag": r.lag(),
                "member_id": r.member,
                "metadata": r.metadata,
                "checkpoint": r.checkpoint.map(|c| json!({
                    "replay_offset": c.replay_from,
                    "watermark": time_of(c.watermark),
                    "max_event_time": time_of(c.max_event),
                })),
            })
        })
        .collect();
    json!({
        "name": group.name,
        "state": group.state,
        "protocol_type": non_empty(&group.protocol_type),
        "protocol": non_empty(&group.protocol),
        "members": members,
        "lag": lag,
        "partitions": partitions,
    })
}

fn member_json(m: &Member) -> Value {
    let assignment: Option<Vec<_>> = m.assignment.as_ref().map(|a| {
        a.iter()
            .map(|(topic, partitions)| json!({ "topic": topic, "partitions": partitions }))
            .collect()
    });
    json!({
        "member_id": m.member_id,
        "client_id": m.client_id,
        "host": m.host,
        "assignment": assignment,
    })
}

fn as_text(group: &Group, rows: &[Row], lag: i64, color: bool) -> String {
    let bold = |s: String| {
        if color {
            Style::new().bold().paint(s).to_string()
        } else {
            s
        }
    };
    let kind = match (non_empty(&group.protocol_type), non_empty(&group.protocol)) {
        (Some(t), Some(p)) => format!("{t} ({p})"),
        (Some(t), None) => t.to_string(),
        _ => "offsets only".to_string(),
    };
    let mut text = format!(
        "{}  {}, {}, {kind}, lag {}\n",
        bold(format!("Group {}", group.name)),
        group.state,
        count(group.members.len() as u64, "member", "members"),
        thousands(u64::try_from(lag).unwrap_or(0)),
    );
    if !group.members.is_empty() {
        let mut table = Table::new(vec!["CLIENT ID", "HOST", "MEMBER ID", "ASSIGNED"]);
        for m in &group.members {
            table.row(vec![
                m.client_id.clone(),
                m.host.clone(),
                m.member_id.clone(),
                assigned(m),
            ]);
        }
        text.push('\n');
        text.push_str(&table.render(color));
    }
    let checkpoints = rows.iter().any(|r| r.checkpoint.is_some());
    let mut header = vec!["TOPIC", "PARTITION", "COMMITTED", "END", "LAG"];
    if checkpoints {
        header.extend(["REPLAY FROM", "WATERMARK"]);
    }
    let mut table = Table::new(header);
    let dash = || "-".to_string();
    for r in rows {
        let mut row = vec![
            r.topic.clone(),
            r.partition.to_string(),
            r.committed.map_or_else(dash, |o| o.to_string()),
            r.end.map_or_else(dash, |o| o.to_string()),
            r.lag()
                .map_or_else(dash, |l| thousands(u64::try_from(l).unwrap_or(0))),
        ];
        if checkpoints {
            row.push(
                r.checkpoint
                    .map_or_else(dash, |c| c.replay_from.to_string()),
            );
            row.push(
                r.checkpoint
                    .and_then(|c| time_of(c.watermark))
                    .unwrap_or_else(dash),
            );
        }
        table.row(row);
    }
    text.push('\n');
    text.push_str(&table.render(color));
    if rows.iter().any(|r| r.committed.is_none()) {
        text.push_str(
            "-: nothing committed; a consumer of the group starts there by its own rule \
             (aggregate's --from)\n",
        );
    }
    text
}

/// A member's partitions, `topic:0,1,2` per topic.
fn assigned(m: &Member) -> String {
    let Some(a) = &m.assignment else {
        return "(not a consumer's assignment)".to_string();
    };
    if a.is_empty() {
        return "-".to_string();
    }
    a.iter()
        .map(|(topic, partitions)| {
            let ps: Vec<String> = partitions.iter().map(ToString::to_string).collect();
            format!("{topic}:{}", ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}
