//! `stockstream demo-partitions`: a guided walk through partitions, keys, offsets and
//! consumer groups on a real broker, where every claim it prints (this key goes to that
//! partition, at these offsets, with this lag) is checked against what the broker reports.

mod group;
mod placement;
mod read;
mod replay;
mod show;

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{anyhow, Context as _};

use crate::admin::{Admin, TopicInfo};
use crate::exit;
use crate::global::Global;
use crate::kafka::Kafka;
use crate::numbers::{count, thousands};
use crate::signals;
use crate::table::Table;
use crate::topic_name::TopicName;
use placement::Sender;
use show::Show;

/// The log target of every demo line.
pub const LOG: &str = "PartitionDemo";

/// Steps of the walk, for the "Step n/N" headings.
const STEPS: usize = 6;

const EXAMPLES: &str = "\
Examples:
  stockstream demo-partitions                  # 3 partitions, 3 records per symbol, then cleans up
  stockstream demo-partitions --step           # waits for Enter after each step
  stockstream demo-partitions --keep           # leaves the topic and the group, to look at afterwards";

/// The demo's own topic: made anew at each run.
const OWN_TOPIC: &str = "stockstream_demo_partitions";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Topic for the demo. The default is the demo's own: made anew at each run, so that its
    /// offsets start at 0 (one left by an earlier run, with --keep or cut short, is replaced).
    /// Another topic is created when missing, or used as it is when it exists (and then left
    /// in place). A topic the demo created is removed at the end unless --keep.
    #[arg(long, default_value = OWN_TOPIC)]
    topic: TopicName,

    /// Number of partitions when the demo creates its topic.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=1000))]
    partitions: i32,

    /// How many records each key (each of the seven symbols) gets.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    records_per_key: u32,

    /// Keep the topic and the demo's consumer group at the end, to look at them afterwards.
    #[arg(long)]
    keep: bool,

    /// Pause after each step until Enter is pressed (only when stdin is a terminal).
    #[arg(long)]
    step: bool,

    /// The longest any request or wait may take, connecting included.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    timeout: Duration,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let kafka = Kafka::new(&global.connection)?;
    // Ctrl+C and SIGTERM end the walk at the next step or wait, and it cleans up after
    // itself; a second one quits at once.
    signals::install()?;
    let admin = Admin::connect(&kafka, args.timeout)?;
    let mut walk = Walk::new(Show::new(global.terminal.stdout_color), args.step);
    // A fresh group per run, so that "nothing committed yet" is true at the start.
    let group = format!("stockstream-demo-{}", std::process::id());
    walk.begin("Partitions are lanes")?;
    let (topic, created) = prepare_topic(&admin, &args)?;
    let outcome = tour(&mut walk, &kafka, &admin, &topic, &group, &args).map_err(|e| {
        if matches!(e.downcast_ref(), Some(exit::Failure::Interrupted)) {
            e.context(format!(
                "demo-partitions cut short at step {}/{STEPS}",
                walk.done
            ))
        } else {
            e
        }
    });
    walk.begin_last("Clean-up");
    walk.show.say(if args.keep {
        "--keep: the topic and the consumer group stay, to be looked at with other tools."
    } else {
        "The demo removes its consumer group, and its topic if it made it (--keep keeps both)."
    });
    let cleaned = clean_up(&admin, &topic.name, created, &group, args.keep);
    match (outcome, cleaned) {
        (Err(e), Err(cleanup)) => {
            tracing::warn!(target: LOG, "cleaning up after the failure failed too: {cleanup:#}");
            Err(e)
        }
        (outcome, cleaned) => outcome.and(cleaned),
    }
}

/// The rest of step 1, and steps 2 to 6, on a topic that is there.
fn tour(
    walk: &mut Walk,
    kafka: &Kafka,
    admin: &Admin,
    topic: &TopicInfo,
    group: &str,
    args: &Args,
) -> anyhow::Result<()> {
    show_topic(&walk.show, admin, topic)?;
    let partitions = topic.partitions.len();
    let mut sender = Sender::new(kafka, &topic.name, args.timeout)?;

    walk.begin("A key picks its lane: murmur2(key) % partitions")?;
    walk.show.say(&format!(
        "Each tick is sent with its symbol as the key. The producer hashes the key with murmur2,\n\
         clears the sign bit and takes the rest modulo the partition count ({partitions}): the same\n\
         key always lands in the same partition. Worked out here first, then compared with the\n\
         partition in the broker's delivery report:"
    ));
    let mut sent = sender.send(1)?;
    placement::check_placement(&walk.show, &sent, partitions)?;

    walk.begin("Offsets grow per partition")?;
    sent.extend(sender.send(args.records_per_key - 1)?);
    tracing::info!(target: LOG, "📤 Sent {} to `{}`, all delivered", count(sent.len() as u64, "record", "records"), topic.name);
    walk.show.say(&format!(
        "Each partition numbers its records 0, 1, 2, … as it appends them: the offset. Every\n\
         lane counts on its own. The {} sent ({} per key), as offset:key in their lane:",
        count(sent.len() as u64, "record", "records"),
        thousands(args.records_per_key as u64)
    ));
    placement::show_lanes(&walk.show, &sent, partitions);
    placement::show_skew(&walk.show, &sent, partitions);

    walk.begin("Order is kept per key")?;
    walk.show.say(
        "A key's records are all in one lane, one after another, so a consumer sees each symbol's\n\
         ticks in the order they were sent. Between lanes there is no order at all.",
    );
    placement::check_order(&walk.show, &sent)?;

    walk.begin("Offsets are bookmarks: replay")?;
    walk.show.say(
        "Reading removes nothing. A consumer may go back to any offset still there and read\n\
         again. Records leave a topic through retention (retention.ms, 7 days by default;\n\
         retention.bytes) or compaction, whether anyone read them or not.",
    );
    let reader = read::consumer(kafka, group)?;
    replay::replay(&walk.show, &reader, &topic.name, &sent, args.timeout)?;
    drop(reader);

    walk.begin("Consumer groups: committed offsets and lag")?;
    group::walk(&group::Ctx {
        show: &walk.show,
        kafka,
        admin,
        topic,
        group,
        timeout: args.timeout,
    })
}

/// Step 1: the topic, created with `--partitions` or reused as it is; true when created.
/// The demo's own topic is made anew when an earlier run left it behind.
fn prepare_topic(admin: &Admin, args: &Args) -> anyhow::Result<(TopicInfo, bool)> {
    let name = args.topic.as_str();
    let existing = admin.topic(name)?;
    if let Some(t) = &existing {
        if name != OWN_TOPIC {
            tracing::info!(
                target: LOG,
                "♻️ Topic `{name}` exists already ({}): reusing it as it is",
                count(t.partitions.len() as u64, "partition", "partitions")
            );
            return Ok((t.clone(), false));
        }
        tracing::info!(
            target: LOG,
            "♻️ Topic `{name}` was left by an earlier run (--keep, or cut short): replacing it, so that its offsets start at 0"
        );
        admin
            .delete(name)
            .with_context(|| format!("removing the old topic `{name}` on {}", admin.brokers()))?;
    }
    // -1: the broker's default replication factor, right for any cluster size.
    admin
        .create_anew(name, args.partitions, -1)
        .with_context(|| format!("creating topic `{name}` on {}", admin.brokers()))?;
    tracing::info!(target: LOG, "🆕 Created topic `{name}` with {}", count(args.partitions as u64, "partition", "partitions"));
    let topic = admin
        .topic(name)?
        .ok_or_else(|| anyhow!("topic `{name}` vanished from {}", admin.brokers()))?;
    Ok((topic, true))
}

/// Step 1: the lanes, and the offset each will give its next record.
fn show_topic(show: &Show, admin: &Admin, topic: &TopicInfo) -> anyhow::Result<()> {
    show.say(&format!(
        "Topic `{}` has {}: lanes, each an append-only log of\n\
         its own on a broker (its leader). Lanes are written and read in parallel.",
        topic.name,
        count(topic.partitions.len() as u64, "partition", "partitions")
    ));
    let offsets = admin.offsets(&[topic])?;
    let mut table = Table::new(vec!["PARTITION", "LEADER", "REPLICAS", "NEXT OFFSET"]);
    for p in &topic.partitions {
        table.row(vec![
            p.id.to_string(),
            p.leader.to_string(),
            p.replicas.len().to_string(),
            offsets
                .get(&(topic.name.clone(), p.id))
                .map_or(0, |o| o.latest)
                .to_string(),
        ]);
    }
    show.table(table);
    Ok(())
}

/// Removes what the demo made, unless `--keep`; a topic that was there before stays.
fn clean_up(
    admin: &Admin,
    topic: &str,
    created: bool,
    group: &str,
    keep: bool,
) -> anyhow::Result<()> {
    if keep {
        tracing::info!(
            target: LOG,
            "📌 --keep: topic `{topic}` and consumer group `{group}` stay; `stockstream topic describe {topic}` shows the topic, `stockstream group describe {group}` the group"
        );
        return Ok(());
    }
    // Each is tried, whatever became of the other.
    let group_removed = admin.delete_group(group).with_context(|| {
        format!("removing consumer group `{group}` (`stockstream group delete {group} --yes` removes it later)")
    });
    if let Ok(true) = group_removed {
        tracing::info!(target: LOG, "🗑️ Removed consumer group `{group}`");
    }
    let topic_removed = if created {
        admin
            .delete(topic)
            .map(|_| tracing::info!(target: LOG, "🗑️ Removed topic `{topic}`"))
            .with_context(|| {
                format!("removing topic `{topic}` (`stockstream topic delete {topic}` removes it later)")
            })
    } else {
        tracing::info!(target: LOG, "👍 Topic `{topic}` was there before the demo, so it stays");
        Ok(())
    };
    match (group_removed, topic_removed) {
        (Err(group), Err(topic)) => Err(anyhow!("{group:#}; {topic:#}")),
        (group, topic) => group.and(topic),
    }
}

/// The step headings, and the pauses between steps with `--step`.
struct Walk {
    show: Show,
    pause: bool,
    done: usize,
}

impl Walk {
    fn new(show: Show, step: bool) -> Self {
        // Without a terminal nobody can press Enter: waiting would only hang a script.
        let pause = step && std::io::stdin().is_terminal();
        if step && !pause {
            tracing::info!(target: LOG, "--step: stdin is not a terminal, so the demo runs on without pausing");
        }
        Walk {
            show,
            pause,
            done: 0,
        }
    }

    /// The next step, after the pause; fails instead when a stop was asked for.
    fn begin(&mut self, title: &str) -> anyhow::Result<()> {
        signals::unless_stopped()?;
        self.wait();
        signals::unless_stopped()?;
        self.done += 1;
        self.show
            .heading(&format!("Step {}/{STEPS} · {title}", self.done));
        Ok(())
    }

    fn begin_last(&mut self, title: &str) {
        if !signals::stop_requested() {
            self.wait();
        }
        self.show.heading(title);
    }

    /// Waits for Enter, or for Ctrl+C or SIGTERM. A terminal that cannot be read or
    /// written to ends the pause rather than the demo: the walk-through is still worth
    /// finishing (and cleaning up after).
    fn wait(&self) {
        if !self.pause || self.done == 0 {
            return;
        }
        let _ = std::io::stdout().flush();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "⏎  Press Enter for the next step ");
        let _ = err.flush();
        drop(err);
        // A read of stdin is not interrupted by the signal handler: it runs on a thread of
        // its own, which is left behind when a stop comes first.
        let (entered, pressed) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            let _ = entered.send(());
        });
        loop {
            match pressed.recv_timeout(Duration::from_millis(50)) {
                // The stop's own warning ends the prompt's line.
                Err(RecvTimeoutError::Timeout) if !signals::stop_requested() => {}
                Ok(()) | Err(_) => return,
            }
        }
    }
}
