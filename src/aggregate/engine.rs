//! The windowing engine: (partition, offset, record) in; bars, late records and replay
//! offsets out. It knows nothing of Kafka and does no I/O: the caller passes the wall
//! clock in, so every rule here is tested with plain data.
//!
//! Each partition has its own watermark (largest event time seen − allowed lateness), and
//! its windows become final when that watermark passes their end: a symbol lives in one
//! partition, so a partition without data holds nobody back. A caught-up partition that has
//! been silent for the idle timeout moves its watermark forward with the wall clock, so the
//! last windows are emitted when a stream stops.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use super::bar::{Acc, Bar};
use super::window::WindowSpec;
use crate::record::{Symbol, Tick};

/// The settings of one engine.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub windows: WindowSpec,
    /// Allowed lateness, ms.
    pub lateness: i64,
    /// Silence after which a caught-up partition's watermark follows the wall clock, ms.
    pub idle_timeout: i64,
    /// Whether revisions of open windows are wanted (`take_updates`); tracking them costs.
    pub updates: bool,
}

/// What a partition's state must be restored from after a restart: carried in the
/// commit metadata of the partition's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The earliest offset still needed by an open window.
    pub replay_from: i64,
    /// The next offset to process (what is committed).
    pub resume_at: i64,
    /// The partition's watermark, ms (`i64::MIN` when it has none yet).
    pub watermark: i64,
    /// The largest event time seen, ms (`i64::MIN` when none).
    pub max_event: i64,
}

impl Checkpoint {
    /// Compact text for Kafka's commit metadata (far below its 4 KB limit).
    pub fn encode(&self) -> String {
        format!(
            "stockstream/1 replay={} watermark={} max_event={}",
            self.replay_from, self.watermark, self.max_event
        )
    }

    /// Reads what `encode` wrote, with the committed offset as `resume_at`.
    pub fn decode(text: &str, resume_at: i64) -> Option<Checkpoint> {
        let mut parts = text.split(' ');
        if parts.next()? != "stockstream/1" {
            return None;
        }
        let mut field = |name: &str| -> Option<i64> {
            parts
                .next()?
                .strip_prefix(name)?
                .strip_prefix('=')?
                .parse()
                .ok()
        };
        let replay_from = field("replay")?;
        let watermark = field("watermark")?;
        let max_event = field("max_event")?;
        (replay_from <= resume_at).then_some(Checkpoint {
            replay_from,
            resume_at,
            watermark,
            max_event,
        })
    }
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Added to at least one open window.
    Aggregated,
    /// Every window containing it was already final: count it and dead-letter it.
    Late,
    /// Seen before a restart and already accounted for: rebuilt state only, nothing to report.
    Replayed,
}

#[derive(Debug, Default)]
struct Partition {
    /// Open windows, ordered by window start so the oldest close first.
    open: BTreeMap<(i64, Symbol), Acc>,
    /// Windows changed since the last `take_updates`.
    dirty: BTreeMap<(i64, Symbol), ()>,
    max_event: Option<i64>,
    watermark: Option<i64>,
    /// Offsets below this were processed before a restart: rebuild only.
    resume_at: i64,
    next_offset: Option<i64>,
    /// The first offset read since the partition was taken on.
    first_seen: Option<i64>,
    caught_up: bool,
    last_record_wall: i64,
}

/// Partition ids are small integers picked by Kafka, not by an attacker: a multiply is hash
/// enough, where the default SipHash was a visible share of the per-record cost.
#[derive(Default)]
pub struct PartitionHasher(u64);

impl Hasher for PartitionHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i32(&mut self, n: i32) {
        self.0 = u64::from(u32::from_ne_bytes(n.to_ne_bytes())).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by partition id.
pub type ByPartition<V> = HashMap<i32, V, BuildHasherDefault<PartitionHasher>>;

pub struct Engine {
    rules: Rules,
    partitions: ByPartition<Partition>,
    finals: Vec<Bar>,
}

impl Engine {
    pub fn new(rules: Rules) -> Self {
        Engine {
            rules,
            partitions: ByPartition::default(),
            finals: Vec::new(),
        }
    }

    /// Takes a partition on, fresh or restored from its checkpoint.
    pub fn assign(&mut self, partition: i32, restore: Option<Checkpoint>, wall_ms: i64) {
        let mut p = Partition {
            last_record_wall: wall_ms,
            ..Partition::default()
        };
        if let Some(c) = restore {
            p.resume_at = c.resume_at;
            p.watermark = (c.watermark != i64::MIN).then_some(c.watermark);
            p.max_event = (c.max_event != i64::MIN).then_some(c.max_event);
        }
        self.partitions.insert(partition, p);
    }

    /// Lets a partition go; its open windows are rebuilt by whoever takes it next.
    pub fn revoke(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// The first offset read of `partition` since it was taken on.
    pub fn first_seen(&self, partition: i32) -> Option<i64> {
        self.partitions.get(&partition).and_then(|p| p.first_seen)
    }

    pub fn owns(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    pub fn partitions(&self) -> impl Iterator<Item = i32> + '_ {
        self.partitions.keys().copied()
    }

    /// Whether `offset` of `partition` was read already since the partition was taken on.
    /// A consumer whose position is reset (librdkafka does so on some fetch errors after a
    /// broker restart) hands out records again; taking them twice would count them twice.
    pub fn already_read(&self, partition: i32, offset: i64) -> bool {
        self.partitions
            .get(&partition)
            .and_then(|p| p.next_offset)
            .is_some_and(|next| offset < next)
    }

    /// Whether `offset` of `partition` was already processed before a restart.
    pub fn is_replay(&self, partition: i32, offset: i64) -> bool {
        self.partitions
            .get(&partition)
            .is_some_and(|p| offset < p.resume_at)
    }

    /// Notes an offset that carried no usable record (a bad record), so the checkpoint moves
    /// past it.
    pub fn skip(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.next_offset = Some(offset + 1);
            p.first_seen.get_or_insert(offset);
        }
    }

    /// Applies one tick.
    pub fn process(&mut self, partition: i32, offset: i64, tick: &Tick, wall_ms: i64) -> Outcome {
        let rules = self.rules;
        let (event_ms, record) = (tick.event_ms(), tick.record());
        let p = self.partitions.entry(partition).or_default();
        p.next_offset = Some(offset + 1);
        p.first_seen.get_or_insert(offset);
        p.last_record_wall = wall_ms;
        let replay = offset < p.resume_at;
        let mut aggregated = false;
        for start in rules.windows.starts(event_ms) {
            let end = rules.windows.end(start);
            if p.watermark.is_some_and(|w| w >= end) {
                continue; // already final
            }
            aggregated = true;
            p.open
                .entry((start, record.symbol))
                .and_modify(|acc| acc.add(event_ms, offset, record))
                .or_insert_with(|| Acc::new(event_ms, offset, record));
            if rules.updates && !replay {
                p.dirty.insert((start, record.symbol), ());
            }
        }
        if p.max_event.is_none_or(|m| event_ms > m) {
            p.max_event = Some(event_ms);
        }
        let candidate = p
            .max_event
            .unwrap_or(i64::MIN)
            .saturating_sub(rules.lateness);
        if p.watermark.is_none_or(|w| candidate > w) {
            p.watermark = Some(candidate);
        }
        finalize(rules, p, &mut self.finals);
        match (replay, aggregated) {
            (true, _) => Outcome::Replayed,
            (false, true) => Outcome::Aggregated,
            (false, false) => Outcome::Late,
        }
    }

    /// Whether a partition has reached the end of its log (then silence means idle).
    pub fn set_caught_up(&mut self, partition: i32, caught_up: bool) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.caught_up = caught_up;
        }
    }

    /// Whether the engine owns partitions and every one has reached the end of its log.
    pub fn all_caught_up(&self) -> bool {
        !self.partitions.is_empty() && self.partitions.values().all(|p| p.caught_up)
    }

    /// The consumer reported trouble (the broker unreachable, a failed fetch): records may
    /// be waiting that it could not read, so silence up to `wall_ms` proves nothing and
    /// counts again from there.
    pub fn restart_silence(&mut self, wall_ms: i64) {
        for p in self.partitions.values_mut() {
            p.last_record_wall = p.last_record_wall.max(wall_ms);
        }
    }

    /// Moves the watermarks of idle partitions forward with the wall clock. A partition is
    /// idle when it has reached the end of its log, been silent for the idle timeout, and
    /// `at_end(partition)` confirms that nothing is waiting for it now (the caller asks the
    /// broker). Without that confirmation — the broker unreachable, records waiting — the
    /// silence proves nothing and counts again from `wall_ms`.
    pub fn tick(&mut self, wall_ms: i64, mut at_end: impl FnMut(i32) -> bool) {
        let rules = self.rules;
        for (id, p) in &mut self.partitions {
            let silent = wall_ms.saturating_sub(p.last_record_wall);
            let Some(max_event) = p.max_event else {
                continue;
            };
            if !p.caught_up || silent < rules.idle_timeout {
                continue;
            }
            let candidate = max_event
                .saturating_sub(rules.lateness)
                .saturating_add(silent);
            if p.watermark.is_some_and(|w| candidate <= w) {
                continue;
            }
            if !at_end(*id) {
                p.last_record_wall = p.last_record_wall.max(wall_ms);
                continue;
            }
            p.watermark = Some(candidate);
            finalize(rules, p, &mut self.finals);
        }
    }

    /// The bars that became final since the last call, oldest window first.
    pub fn take_finals(&mut self) -> Vec<Bar> {
        std::mem::take(&mut self.finals)
    }

    /// A revision (`final: false`) of every open window changed since the last call.
    pub fn take_updates(&mut self) -> Vec<Bar> {
        let windows = self.rules.windows;
        let mut out = Vec::new();
        for p in self.partitions.values_mut() {
            for (key, ()) in std::mem::take(&mut p.dirty) {
                if let Some(acc) = p.open.get(&key) {
                    out.push(acc.bar(key.1, key.0, windows.end(key.0), false));
                }
            }
        }
        out.sort_by_key(|b| (b.window_start, b.symbol));
        out
    }

    /// Where a restart of `partition` must begin, and what it must know.
    pub fn checkpoint(&self, partition: i32) -> Option<Checkpoint> {
        let p = self.partitions.get(&partition)?;
        let next = p.next_offset?;
        let replay_from = p
            .open
            .values()
            .map(|a| a.first_offset)
            .min()
            .unwrap_or(next)
            .min(next);
        Some(Checkpoint {
            replay_from,
            resume_at: next.max(p.resume_at),
            watermark: p.watermark.unwrap_or(i64::MIN),
            max_event: p.max_event.unwrap_or(i64::MIN),
        })
    }

    /// The watermark of each partition, ms (none until it has seen a record).
    pub fn watermarks(&self) -> Vec<(i32, Option<i64>)> {
        let mut w: Vec<_> = self
            .partitions
            .iter()
            .map(|(id, p)| (*id, p.watermark))
            .collect();
        w.sort_unstable();
        w
    }

    /// How many (symbol, window) states are open.
    pub fn open_windows(&self) -> usize {
        self.partitions.values().map(|p| p.open.len()).sum()
    }
}

/// Moves every window whose end the watermark has passed out of the open set, as a final bar.
fn finalize(rules: Rules, p: &mut Partition, out: &mut Vec<Bar>) {
    let Some(watermark) = p.watermark else { return };
    while let Some(entry) = p.open.first_entry() {
        let (start, symbol) = *entry.key();
        let end = rules.windows.end(start);
        if end > watermark {
            break;
        }
        let acc = entry.remove();
        p.dirty.remove(&(start, symbol));
        // Windows final before a restart were skipped while replaying (their end is at or
        // below the restored watermark), so every window reaching here is emitted once.
        out.push(acc.bar(symbol, start, end, true));
    }
}

#[cfg(test)]
mod tests;
