//! Step 6 of the walk-through: a consumer group's committed offsets (its bookmarks, kept by
//! the broker) and its lag (records still to read), before it reads, halfway, and after a
//! new member of the group has picked up where the first left off.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use super::read::{self, Consumer, Stretch};
use super::show::Show;
use super::LOG;
use crate::admin::{Admin, Offsets, TopicInfo};
use crate::exit::Failure;
use crate::kafka::Kafka;
use crate::numbers;
use crate::table::Table;

/// Each partition's committed offset, `None` where the group has committed nothing.
type Committed = BTreeMap<i32, Option<i64>>;

/// What the group step needs from the rest of the demo.
pub struct Ctx<'a> {
    pub show: &'a Show,
    pub kafka: &'a Kafka,
    pub admin: &'a Admin,
    pub topic: &'a TopicInfo,
    pub group: &'a str,
    pub timeout: Duration,
}

pub fn walk(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let show = ctx.show;
    let ends = log_ends(ctx)?;
    let first = read::consumer(ctx.kafka, ctx.group)?;
    let before = committed(ctx, &first)?;
    show.say(&format!(
        "A consumer group keeps one bookmark per partition on the broker: its committed offset.\n\
         Group `{}` has read nothing yet: nothing committed (-), so it starts\n\
         at the earliest record, and its lag (high watermark − committed) is every record.",
        ctx.group
    ));
    show_lag(show, &ends, &before);

    let halfway: BTreeMap<i32, i64> = ends
        .iter()
        .map(|(p, o)| (*p, o.earliest + (o.messages() + 1) / 2))
        .collect();
    let mut count = 0;
    consume(ctx, &first, &ends, &before, &halfway, |_, _| count += 1)?;
    let middle = commit(ctx, &first, &halfway)?;
    drop(first);
    tracing::info!(target: LOG, "📥 Group `{}` read {} and committed its offsets", ctx.group, numbers::count(count, "record", "records"));
    show.say(
        "It reads about half of each partition and commits: the committed offset is the next\n\
         offset to read, and the lag is what is left.",
    );
    show_lag(show, &ends, &middle);

    // A new consumer stands for a restarted or second instance: all it has is the bookmark.
    let second = read::consumer(ctx.kafka, ctx.group)?;
    let latest: BTreeMap<i32, i64> = ends.iter().map(|(p, o)| (*p, o.latest)).collect();
    let mut resumed: BTreeMap<i32, i64> = BTreeMap::new();
    consume(ctx, &second, &ends, &middle, &latest, |p, o| {
        resumed.entry(p).or_insert(o);
    })?;
    show.say("A new consumer in the same group starts from the bookmark, not from the start:");
    for (p, at) in &resumed {
        let bookmark = middle.get(p).copied().flatten();
        if bookmark != Some(*at) {
            bail!("partition {p}: the new consumer started at offset {at}, not at the committed offset {bookmark:?}");
        }
        show.line(&format!(
            "partition {p}: first read offset {at} = committed offset {at}  {}",
            show.good("✅")
        ));
    }
    let after = commit(ctx, &second, &latest)?;
    drop(second);
    show.say("It reads the rest and commits: lag 0, the group is caught up.");
    let now = log_ends(ctx)?;
    show_lag(show, &now, &after);
    show.say(&format!(
        "The same for any group, with its members: `stockstream group describe {}`.\n\
         To move a group's bookmarks (replay, or skip ahead): `stockstream group reset`.",
        ctx.group
    ));
    if now
        .iter()
        .all(|(p, o)| lag(*o, after.get(p).copied().flatten()) == 0)
    {
        tracing::info!(target: LOG, "✅ Group `{}` has lag 0 on every partition", ctx.group);
    } else {
        tracing::warn!(target: LOG, "another producer wrote to `{}` meanwhile, so the group has lag again", ctx.topic.name);
    }
    Ok(())
}

/// Records the group has still to read: high watermark − committed offset. With nothing
/// committed the group starts at the earliest record, so everything there is counts.
fn lag(offsets: Offsets, committed: Option<i64>) -> i64 {
    (offsets.latest - committed.unwrap_or(offsets.earliest)).max(0)
}

fn show_lag(show: &Show, ends: &BTreeMap<i32, Offsets>, committed: &Committed) {
    let mut table = Table::new(vec![
        "PARTITION",
        "LOG START",
        "HIGH WATERMARK",
        "COMMITTED",
        "LAG",
    ]);
    for (p, o) in ends {
        let c = committed.get(p).copied().flatten();
        table.row(vec![
            p.to_string(),
            o.earliest.to_string(),
            o.latest.to_string(),
            c.map_or("-".to_string(), |c| c.to_string()),
            numbers::thousands(u64::try_from(lag(*o, c)).unwrap_or(0)),
        ]);
    }
    show.table(table);
}

/// Each partition's log start and high watermark, as the broker has them now.
fn log_ends(ctx: &Ctx<'_>) -> anyhow::Result<BTreeMap<i32, Offsets>> {
    let offsets = ctx.admin.offsets(&[ctx.topic])?;
    Ok(offsets.into_iter().map(|((_, p), o)| (p, o)).collect())
}

/// Reads from the group's committed offsets (or the earliest) up to `until`, handing each
/// record's partition and offset to `each`.
fn consume(
    ctx: &Ctx<'_>,
    consumer: &Consumer,
    ends: &BTreeMap<i32, Offsets>,
    committed: &Committed,
    until: &BTreeMap<i32, i64>,
    mut each: impl FnMut(i32, i64),
) -> anyhow::Result<()> {
    let stretches: BTreeMap<i32, Stretch> = until
        .iter()
        .filter(|(p, until)| {
            let earliest = ends.get(p).map_or(0, |o| o.earliest);
            let start = committed.get(p).copied().flatten().unwrap_or(earliest);
            start.max(earliest) < **until
        })
        // Stored: the committed offset, as any member of a group starts.
        .map(|(p, until)| {
            (
                *p,
                Stretch {
                    from: Offset::Stored,
                    until: *until,
                },
            )
        })
        .collect();
    if stretches.is_empty() {
        return Ok(());
    }
    read::read(consumer, &ctx.topic.name, &stretches, ctx.timeout, |m| {
        each(m.partition(), m.offset());
    })
}

/// Commits `offsets` and waits, at most `--timeout`, until the broker reports them back (a
/// synchronous commit in librdkafka has no bound of its own); returns what it reports.
fn commit(
    ctx: &Ctx<'_>,
    consumer: &Consumer,
    offsets: &BTreeMap<i32, i64>,
) -> anyhow::Result<Committed> {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(&ctx.topic.name, *p, Offset::Offset(*o))?;
    }
    consumer
        .commit(&tpl, CommitMode::Async)
        .with_context(|| format!("committing the offsets of group `{}`", ctx.group))?;
    let deadline = Instant::now() + ctx.timeout;
    loop {
        crate::signals::unless_stopped()?;
        let got = committed(ctx, consumer)?;
        if offsets.iter().all(|(p, o)| got.get(p) == Some(&Some(*o))) {
            return Ok(got);
        }
        if Instant::now() >= deadline {
            let cause = consumer.context().last_error().unwrap_or_default();
            return Err(anyhow!(
                "the broker did not confirm the commit of group `{}` within {} {cause}",
                ctx.group,
                humantime::format_duration(ctx.timeout)
            ));
        }
        // Serves the commit's callback and any error it brought.
        consumer.poll(Duration::from_millis(50));
    }
}

/// The group's committed offsets, as the broker has them.
fn committed(ctx: &Ctx<'_>, consumer: &Consumer) -> anyhow::Result<Committed> {
    let mut tpl = TopicPartitionList::new();
    for p in &ctx.topic.partitions {
        tpl.add_partition(&ctx.topic.name, p.id);
    }
    let (client, timeout) = (Arc::clone(consumer), ctx.timeout);
    let got = crate::signals::patiently(move || client.committed_offsets(tpl, timeout))
        .ok_or(Failure::Interrupted)?
        .with_context(|| format!("reading the committed offsets of group `{}`", ctx.group))?;
    Ok(got
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => (e.partition(), Some(o)),
            _ => (e.partition(), None),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_what_is_left_after_the_committed_offset() {
        let o = Offsets {
            earliest: 10,
            latest: 25,
        };
        assert_eq!(lag(o, None), 15, "nothing committed: everything retained");
        assert_eq!(lag(o, Some(20)), 5);
        assert_eq!(lag(o, Some(25)), 0);
        assert_eq!(lag(o, Some(30)), 0, "never negative");
    }
}
