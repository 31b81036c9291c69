//! `group reset`: moves a group's committed offsets on one topic. It always shows the plan
//! (partition, from, to) and changes nothing unless --execute; it never touches a group that
//! has members, whose consumers would overwrite the new offsets with their next commit.
//!
//! The commit of each moved partition carries no metadata: the checkpoint of an
//! `aggregate` group (its replay offset and watermark) describes the old place, and kept,
//! it would make aggregate rebuild windows from the old replay offset (forward) or judge
//! the re-read records against the old watermark (backward). Without it, aggregate starts
//! exactly at the new offset with fresh windows. A partition whose offset stays keeps its
//! metadata.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use serde_json::json;

use super::plan::{self, Move, Now, Target, When};
use super::{group_name, without_members, Common, LOG};
use crate::admin::{Admin, Commit, Offsets};
use crate::aggregate::Checkpoint;
use crate::exit::Failure;
use crate::global::Global;
use crate::kafka::Kafka;
use crate::numbers::{count, noun};
use crate::table::Table;
use crate::topic_name::TopicName;

const EXAMPLES: &str = "\
Examples:
  stockstream group reset replay --topic stock_prices --to-earliest   # the plan only
  stockstream group reset replay --topic stock_prices --to-earliest --execute
  stockstream group reset replay --topic stock_prices --to-time -1h --execute
  stockstream group reset replay --topic stock_prices --to-time 2026-01-01T09:30:00Z
  stockstream group reset replay --topic stock_prices --shift-by -100 -p 0,1 -o json";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Name of the consumer group (one that does not exist yet is created by --execute).
    #[arg(value_parser = group_name)]
    group: String,

    /// The topic whose committed offsets move.
    #[arg(long)]
    topic: TopicName,

    /// Only these partitions (comma-separated or repeated); default: all of the topic's.
    #[arg(short, long, value_delimiter = ',', value_name = "PARTITION")]
    partition: Vec<i32>,

    #[command(flatten)]
    to: To,

    /// Commit the planned offsets; without it, the plan is only shown.
    #[arg(long)]
    execute: bool,

    #[command(flatten)]
    common: Common,
}

/// Where to: exactly one.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct To {
    /// To each partition's earliest offset (everything still kept is read again).
    #[arg(long)]
    to_earliest: bool,

    /// To each partition's end (everything there is counts as read).
    #[arg(long)]
    to_latest: bool,

    /// To this offset on each partition (kept within the partition's earliest and end).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,

    /// To each partition's first record at or after this time: RFC 3339
    /// (2026-01-01T09:30:00Z) or a span before now (-1h, -30m). Past the last record: the end.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = plan::parse_when)]
    to_time: Option<When>,

    /// Forward (or back, when negative) by this many offsets from the committed one (kept
    /// within the partition's earliest and end).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
}

impl To {
    /// The target, times resolved against `now_ms`.
    fn target(&self, now_ms: i64) -> Target {
        if self.to_earliest {
            Target::Earliest
        } else if self.to_latest {
            Target::Latest
        } else if let Some(o) = self.to_offset {
            Target::Offset(o)
        } else if let Some(w) = self.to_time {
            Target::Time(w.resolve(now_ms))
        } else {
            Target::ShiftBy(self.shift_by.unwrap_or(0))
        }
    }
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let target = args.to.target(crate::record::now_millis());
    let kafka = Kafka::new(&global.connection)?;
    let admin = Admin::connect(&kafka, args.common.timeout)?;
    let name = args.group.as_str();
    let topic_name = args.topic.as_str();
    let Some(topic) = admin.topic(topic_name)? else {
        return Err(Failure::TopicMissing {
            topic: topic_name.to_string(),
            brokers: kafka.brokers().to_string(),
            hint: "`stockstream topic list` shows the topics there are".into(),
        }
        .into());
    };
    let partitions = chosen(&args.partition, topic.partitions.iter().map(|p| p.id))?;
    let group = admin.group(name)?;
    without_members(&group, "reset the offsets of")?;

    let all = admin.committed(name)?;
    let new_group = group.is_dead() && all.is_empty();
    let committed: BTreeMap<i32, Commit> = all
        .into_iter()
        .filter(|c| c.topic == topic_name && c.offset >= 0)
        .map(|c| (c.partition, c))
        .collect();
    let bounds = admin.offsets(&[&topic])?;
    let at_time = match target {
        Target::Time(ms) => admin.offsets_at(topic_name, &partitions, ms)?,
        _ => BTreeMap::new(),
    };
    let now: Vec<Now> = partitions
        .iter()
        .map(|p| {
            let bounds = bounds
                .get(&(topic_name.to_string(), *p))
                .copied()
                .ok_or_else(|| anyhow!("partition {p} of `{topic_name}` has no leader to ask for its offsets; try again"))?;
            Ok(Now {
                partition: *p,
                bounds,
                committed: committed.get(p).map(|c| c.offset),
                at_time: at_time.get(p).copied().flatten(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let moves = plan::plan(target, &now).map_err(|e| anyhow!(e))?;
    let dropped: Vec<i32> = moves
        .iter()
        .filter(|m| m.from != Some(m.to))
        .filter(|m| {
            committed
                .get(&m.partition)
                .is_some_and(|c| Checkpoint::decode(&c.metadata, c.offset).is_some())
        })
        .map(|m| m.partition)
        .collect();

    show(&args, &moves, &now, &dropped, global)?;
    if new_group {
        tracing::info!(target: LOG, "Group `{name}` does not exist yet: --execute creates it with these offsets");
    }
    if !dropped.is_empty() {
        tracing::info!(
            target: LOG,
            "The aggregate checkpoint of {} {} is dropped: aggregate starts there with fresh windows",
            noun(dropped.len() as u64, "partition", "partitions"),
            list(&dropped)
        );
    }
    if !args.execute {
        tracing::info!(target: LOG, "Dry run: nothing changed. Add --execute to commit these offsets");
        return Ok(());
    }
    let commits: Vec<Commit> = moves
        .iter()
        .map(|m| Commit {
            topic: topic_name.to_string(),
            partition: m.partition,
            offset: m.to,
            metadata: match committed.get(&m.partition) {
                Some(c) if c.offset == m.to => c.metadata.clone(),
                _ => String::new(),
            },
        })
        .collect();
    admin.commit_for(name, &commits).map_err(|e| {
        e.context(format!(
            "the broker refused the new offsets (if a consumer joined group `{name}` meanwhile, stop it and try again)"
        ))
    })?;
    tracing::info!(
        target: LOG,
        "✅ Committed {} for group `{name}` on `{topic_name}`",
        count(commits.len() as u64, "offset", "offsets")
    );
    Ok(())
}

/// The partitions asked for (all of the topic's when none), each checked to exist.
fn chosen(asked: &[i32], all: impl Iterator<Item = i32>) -> anyhow::Result<Vec<i32>> {
    let all: Vec<i32> = all.collect();
    if asked.is_empty() {
        return Ok(all);
    }
    let mut out = asked.to_vec();
    out.sort_unstable();
    out.dedup();
    if let Some(p) = out.iter().find(|p| !all.contains(p)) {
        bail!(
            "the topic has no partition {p} (it has {})",
            count(all.len() as u64, "partition", "partitions")
        );
    }
    Ok(out)
}

fn show(
    args: &Args,
    moves: &[Move],
    now: &[Now],
    dropped: &[i32],
    global: &Global,
) -> anyhow::Result<()> {
    let bounds: BTreeMap<i32, Offsets> = now.iter().map(|n| (n.partition, n.bounds)).collect();
    if args.common.json() {
        let partitions: Vec<_> = moves
            .iter()
            .map(|m| {
                let b = bounds[&m.partition];
                json!({
                    "partition": m.partition,
                    "from": m.from,
                    "to": m.to,
                    "earliest_offset": b.earliest,
                    "end_offset": b.latest,
                    "checkpoint_dropped": dropped.contains(&m.partition),
                })
            })
            .collect();
        return crate::stdout::json(&json!({
            "group": args.group,
            "topic": args.topic.as_str(),
            "executed": args.execute,
            "partitions": partitions,
        }));
    }
    let mut table = Table::new(vec!["PARTITION", "FROM", "TO", "MOVE", "EARLIEST", "END"]);
    for m in moves {
        let b = bounds[&m.partition];
        table.row(vec![
            m.partition.to_string(),
            m.from.map_or_else(|| "-".to_string(), |o| o.to_string()),
            m.to.to_string(),
            m.from
                .map_or_else(|| "-".to_string(), |from| format!("{:+}", m.to - from)),
            b.earliest.to_string(),
            b.latest.to_string(),
        ]);
    }
    Ok(crate::stdout::write(
        table.render(global.terminal.stdout_color),
    )?)
}

fn list(partitions: &[i32]) -> String {
    partitions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
