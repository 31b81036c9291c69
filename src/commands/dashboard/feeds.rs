//! The three threads that read Kafka for the page, each with a blocking librdkafka client of
//! its own (never on the async runtime): the bars, the input topic (ticks/s, the last tick
//! per symbol, the aggregate group's lag) and the dead letters. Each keeps going whatever
//! happens: no broker, no topic, a topic that appears later, a broker that comes back.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};

use super::board::{Feed, FeedState, HISTORY};
use super::hub::{Hub, Source};
use super::source::{pause, Ends, Seen, Topic};
use crate::aggregate::bar::Bar;
use crate::signals::Stop;

/// How soon a missing topic or a silent cluster is asked again.
const RETRY: Duration = Duration::from_secs(1);
/// How often a topic being read is looked at again for new partitions (or its loss).
const LOOK_AGAIN: Duration = Duration::from_secs(5);
/// How often the input topic's offsets and the group's are read.
const SAMPLE: Duration = Duration::from_secs(1);

/// Records read back per partition of the bars topic at start: the last `HISTORY` bars of
/// every symbol the partition may hold, with as many offsets again for transaction markers.
const BAR_LOOKBACK: i64 = (HISTORY * 7 * 2) as i64;
/// The newest records of a partition of ticks read for the last tick of its symbols.
const TICK_LOOKBACK: i64 = 100;

/// The dead-letter header that says why.
const REASON: &str = "stockstream.error.reason";

/// Reads the bars topic: its recent history, then every bar as it is committed.
pub fn bars(topic: &Topic, hub: &Hub, stop: &Stop) {
    const MISSING: &str = "`stockstream aggregate` creates it with its first bars";
    while !stop.requested() {
        let Some(ends) = assigned(topic, hub, Source::Bars, MISSING, stop, |e| {
            (e.high - BAR_LOOKBACK).max(e.low)
        }) else {
            continue;
        };
        let mut take = |m: Option<&BorrowedMessage<'_>>| {
            if let Some(bar) = m.and_then(|m| m.payload()).and_then(Bar::from_json) {
                hub.bar(&bar);
                super::metrics::bar();
            }
        };
        read_while_unchanged(topic, &ends, hub, Source::Bars, MISSING, stop, &mut take);
    }
}

/// Reads the dead-letter topic from its start, counting its records by reason.
pub fn dead_letters(topic: &Topic, hub: &Hub, stop: &Stop) {
    const MISSING: &str = "no dead letters yet (`stockstream aggregate` creates it with the first)";
    while !stop.requested() {
        hub.health(|h| h.dead_letters.clear());
        let Some(ends) = assigned(topic, hub, Source::DeadLetters, MISSING, stop, |e| e.low) else {
            continue;
        };
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let (mut shown, mut changed) = (Instant::now(), false);
        let mut take = |m: Option<&BorrowedMessage<'_>>| {
            if let Some(m) = m {
                *counts.entry(reason(m)).or_default() += 1;
                changed = true;
            }
            // At most a few updates a second while a backlog is counted.
            if changed && (m.is_none() || shown.elapsed() >= Duration::from_millis(200)) {
                hub.health(|h| h.dead_letters.clone_from(&counts));
                (shown, changed) = (Instant::now(), false);
            }
        };
        read_while_unchanged(
            topic,
            &ends,
            hub,
            Source::DeadLetters,
            MISSING,
            stop,
            &mut take,
        );
    }
}

fn reason(m: &BorrowedMessage<'_>) -> String {
    m.headers()
        .and_then(|h| h.iter().find(|h| h.key == REASON))
        .and_then(|h| h.value)
        .map_or_else(
            || "unknown".to_string(),
            |v| String::from_utf8_lossy(v).into_owned(),
        )
}

/// Looks for the topic and assigns its partitions from `start`, reporting on the way.
/// `None`: not now (the feed says why), after a pause.
fn assigned(
    topic: &Topic,
    hub: &Hub,
    source: Source,
    missing: &str,
    stop: &Stop,
    start: impl Fn(&Ends) -> i64,
) -> Option<Vec<Ends>> {
    let seen = topic.look();
    hub.feed(source, topic.feed(&seen, missing));
    let answer = match seen {
        Seen::Partitions(partitions) => topic.ends(&partitions).and_then(|ends| {
            topic.assign(ends.iter().map(|e| (e.partition, start(e))))?;
            Ok(ends)
        }),
        _ => Err(String::new()),
    };
    match answer {
        Ok(ends) => Some(ends),
        Err(cause) => {
            if !cause.is_empty() {
                hub.feed(source, topic.unreachable(&cause));
            }
            pause(stop, RETRY);
            None
        }
    }
}

/// Hands each record read to `take` (and `None` when a poll found nothing), until a stop,
/// or until a look finds the topic's partitions changed or the cluster silent. The looks
/// (a metadata request every few seconds) run on a thread of their own: the reader never
/// stops polling for one, so no bar waits behind a slow answer.
fn read_while_unchanged(
    topic: &Topic,
    ends: &[Ends],
    hub: &Hub,
    source: Source,
    missing: &str,
    stop: &Stop,
    take: &mut impl FnMut(Option<&BorrowedMessage<'_>>),
) {
    let partitions: Vec<i32> = ends.iter().map(|e| e.partition).collect();
    let over = AtomicBool::new(false);
    let watch = || {
        let mut looked = Instant::now();
        while !over.load(Ordering::Relaxed) && !stop.requested() {
            std::thread::sleep(Duration::from_millis(50));
            if looked.elapsed() >= LOOK_AGAIN {
                looked = Instant::now();
                let seen = topic.look();
                hub.feed(source, topic.feed(&seen, missing));
                if seen != Seen::Partitions(partitions.clone()) {
                    over.store(true, Ordering::Relaxed);
                }
            }
        }
    };
    std::thread::scope(|scope| {
        let watching = std::thread::Builder::new()
            .name("dashboard-look".into())
            .spawn_scoped(scope, watch);
        if watching.is_err() {
            return;
        }
        while !over.load(Ordering::Relaxed) && !stop.requested() {
            match topic.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => take(Some(&m)),
                Some(Err(e)) if Topic::gone(&e) => break,
                Some(Err(e)) => {
                    tracing::debug!(target: super::LOG, "reading `{}`: {e}", topic.name);
                    take(None);
                }
                None => take(None),
            }
        }
        over.store(true, Ordering::Relaxed);
    });
}

/// Samples the input topic every second: ticks/s from its end offsets, the aggregate group's
/// lag from its committed offsets, and the last tick per symbol from the newest records.
pub fn input(input: &Topic, group: &Topic, hub: &Hub, stop: &Stop) {
    const MISSING: &str = "`stockstream topic create` or `stockstream produce` makes it";
    let mut previous: Option<(Instant, i64)> = None;
    let mut sampled: HashMap<i32, i64> = HashMap::new();
    while !stop.requested() {
        let started = Instant::now();
        let seen = input.look();
        hub.feed(Source::Input, input.feed(&seen, MISSING));
        let ends = match &seen {
            Seen::Partitions(partitions) => input.ends(partitions).map_err(|cause| {
                hub.feed(Source::Input, input.unreachable(&cause));
            }),
            _ => Err(()),
        };
        match ends {
            Ok(ends) => {
                let total: i64 = ends.iter().map(|e| e.high).sum();
                let now = Instant::now();
                let rate = previous.and_then(|(at, before)| {
                    let seconds = now.duration_since(at).as_secs_f64();
                    (total >= before && seconds > 0.0).then(|| (total - before) as f64 / seconds)
                });
                previous = Some((now, total));
                let lag = lag(group, &ends, hub);
                hub.health(|h| {
                    h.ticks_total = Some(total);
                    h.ticks_per_second = rate.or(h.ticks_per_second);
                    h.lag = lag;
                });
                sample_ticks(input, &ends, &mut sampled, hub, stop);
            }
            Err(()) => {
                previous = None;
                hub.health(|h| {
                    h.ticks_per_second = None;
                    h.lag = None;
                });
                hub.feed(
                    Source::Group,
                    Feed::new(FeedState::Missing, "no lag without the input topic"),
                );
            }
        }
        pause(stop, SAMPLE.saturating_sub(started.elapsed()));
    }
}

/// The group's lag on the partitions it has committed offsets for.
fn lag(group: &Topic, ends: &[Ends], hub: &Hub) -> Option<i64> {
    let partitions: Vec<i32> = ends.iter().map(|e| e.partition).collect();
    let committed = match group.committed(&partitions) {
        Ok(c) => c,
        Err(cause) => {
            hub.feed(Source::Group, group.unreachable(&cause));
            return None;
        }
    };
    let high: HashMap<i32, i64> = ends.iter().map(|e| (e.partition, e.high)).collect();
    let behind: Vec<i64> = committed
        .iter()
        .filter_map(|(p, offset)| Some((high.get(p)? - (*offset)?).max(0)))
        .collect();
    let group_name = &hub.about().group;
    let feed = if behind.is_empty() {
        Feed::new(
            FeedState::Missing,
            format!(
                "group `{group_name}` has committed no offsets on `{}` yet: is `stockstream aggregate --group {group_name}` running?",
                group.name
            ),
        )
    } else {
        Feed::new(
            FeedState::Ok,
            format!(
                "group `{group_name}`: committed offsets on {} of {} partitions",
                behind.len(),
                partitions.len()
            ),
        )
    };
    hub.feed(Source::Group, feed);
    (!behind.is_empty()).then(|| behind.iter().sum())
}

/// Reads the newest few records of each partition that grew since the last look: the last
/// tick per symbol at a bounded cost, whatever the tick rate.
fn sample_ticks(
    input: &Topic,
    ends: &[Ends],
    sampled: &mut HashMap<i32, i64>,
    hub: &Hub,
    stop: &Stop,
) {
    let mut left: HashMap<i32, i64> = HashMap::new();
    let mut starts = Vec::new();
    for e in ends {
        let from = sampled
            .get(&e.partition)
            .copied()
            .unwrap_or(0)
            .max(e.high - TICK_LOOKBACK)
            .max(e.low);
        if from < e.high {
            starts.push((e.partition, from));
            left.insert(e.partition, e.high);
        }
    }
    if starts.is_empty() || input.assign(starts).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut ticks = Vec::new();
    while !left.is_empty() && Instant::now() < deadline && !stop.requested() {
        let Some(Ok(m)) = input.consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        if let Ok(record) = crate::record::decode(m.payload().unwrap_or_default()) {
            ticks.push(record.into_inner());
        }
        let next = m.offset() + 1;
        sampled.insert(m.partition(), next);
        if left.get(&m.partition()).is_some_and(|high| next >= *high) {
            left.remove(&m.partition());
        }
    }
    // Until the next look: else librdkafka would go on fetching every new tick meanwhile.
    let _ = input.consumer.unassign();
    hub.ticks(ticks);
}
