//! The engine's rules, on plain data, including an independent model of the whole
//! computation and a crash-and-replay property.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::aggregate::window::WindowSpec;
use crate::record::StockRecord;

const S: i64 = 1_000;

fn rules(size_s: u64, slide_s: Option<u64>, lateness_s: i64) -> Rules {
    Rules {
        windows: WindowSpec::new(
            Duration::from_secs(size_s),
            slide_s.map(Duration::from_secs),
        )
        .unwrap(),
        lateness: lateness_s * S,
        idle_timeout: 10 * S,
        updates: true,
    }
}

fn tick(symbol: Symbol, price: f64, volume: u64) -> StockRecord {
    StockRecord {
        symbol,
        price,
        volume,
        timestamp: 1.0,
    }
}

fn engine(r: Rules, partitions: &[i32]) -> Engine {
    let mut e = Engine::new(r);
    for p in partitions {
        e.assign(*p, None, 0);
    }
    e
}

#[test]
fn a_window_is_final_once_the_watermark_passes_its_end() {
    let mut e = engine(rules(10, None, 5), &[0]);
    let aapl = tick(Symbol::AAPL, 100.0, 10);
    assert_eq!(e.process(0, 0, &Tick::at(aapl, S), 0), Outcome::Aggregated);
    assert_eq!(
        e.process(0, 1, &Tick::at(aapl, 9 * S), 0),
        Outcome::Aggregated
    );
    // Watermark 14s − 5s = 9s < 10s: still open.
    assert_eq!(
        e.process(0, 2, &Tick::at(aapl, 14 * S), 0),
        Outcome::Aggregated
    );
    assert!(e.take_finals().is_empty());
    // Watermark 15s − 5s = 10s ≥ end 10s: final.
    e.process(0, 3, &Tick::at(aapl, 15 * S), 0);
    let finals = e.take_finals();
    assert_eq!(finals.len(), 1);
    assert_eq!(
        (
            finals[0].window_start,
            finals[0].window_end,
            finals[0].trades
        ),
        (0, 10 * S, 2)
    );
    assert!(finals[0].is_final);
}

#[test]
fn out_of_order_within_lateness_counts_and_later_is_late() {
    let mut e = engine(rules(10, None, 5), &[0]);
    let r = tick(Symbol::MSFT, 400.0, 1);
    e.process(0, 0, &Tick::at(r, 12 * S), 0); // watermark 7s
    assert_eq!(
        e.process(0, 1, &Tick::at(r, 8 * S), 0),
        Outcome::Aggregated,
        "window [0,10) still open"
    );
    e.process(0, 2, &Tick::at(r, 16 * S), 0); // watermark 11s: [0,10) final
    assert_eq!(e.take_finals().len(), 1);
    assert_eq!(e.process(0, 3, &Tick::at(r, 9 * S), 0), Outcome::Late);
    assert_eq!(e.open_windows(), 1, "the late record opened nothing");
}

#[test]
fn hopping_windows_each_get_the_record() {
    let mut e = engine(rules(10, Some(5), 0), &[0]);
    let r = tick(Symbol::TSLA, 250.0, 3);
    e.process(0, 0, &Tick::at(r, 7 * S), 0);
    assert_eq!(e.open_windows(), 2); // [0,10) and [5,15)
    e.process(0, 1, &Tick::at(r, 20 * S), 0);
    let finals = e.take_finals();
    let starts: Vec<i64> = finals.iter().map(|b| b.window_start).collect();
    assert_eq!(
        starts,
        vec![0, 5 * S],
        "the windows of 7s are final; those of 20s are open"
    );
    assert_eq!(e.open_windows(), 2);
}

#[test]
fn a_partition_without_data_holds_nobody_back() {
    let mut e = engine(rules(10, None, 0), &[0, 1, 2]);
    let r = tick(Symbol::AAPL, 1.0, 1);
    e.process(0, 0, &Tick::at(r, S), 0);
    e.process(0, 1, &Tick::at(r, 11 * S), 0);
    assert_eq!(
        e.take_finals().len(),
        1,
        "partitions 1 and 2 never saw a record"
    );
}

#[test]
fn an_idle_caught_up_partition_follows_the_wall_clock() {
    let mut e = engine(rules(10, None, 5), &[0]);
    let r = tick(Symbol::NFLX, 650.0, 1);
    e.process(0, 0, &Tick::at(r, 3 * S), 1_000);
    e.set_caught_up(0, true);
    e.tick(1_000 + 9 * S, |_| true);
    assert!(
        e.take_finals().is_empty(),
        "not idle before the idle timeout"
    );
    // Idle at 10s of silence: watermark 3 − 5 + 10 = 8s < 10s.
    e.tick(1_000 + 10 * S, |_| true);
    assert!(e.take_finals().is_empty());
    // At 12s of silence: 3 − 5 + 12 = 10s ≥ end: the last window is emitted.
    e.tick(1_000 + 12 * S, |_| true);
    assert_eq!(e.take_finals().len(), 1);
}

#[test]
fn silence_counts_again_after_consumer_trouble() {
    let mut e = engine(rules(10, None, 5), &[0]);
    e.process(0, 0, &Tick::at(tick(Symbol::NFLX, 650.0, 1), 3 * S), 1_000);
    e.set_caught_up(0, true);
    // The broker was unreachable until 1s + 11s: the 11s before prove no idleness.
    e.restart_silence(1_000 + 11 * S);
    e.tick(1_000 + 12 * S, |_| true);
    assert!(
        e.take_finals().is_empty(),
        "1s of silence since the trouble"
    );
    // 12s of silence after the trouble: 3 − 5 + 12 = 10s ≥ end.
    e.tick(1_000 + 23 * S, |_| true);
    assert_eq!(e.take_finals().len(), 1);
}

#[test]
fn silence_without_the_brokers_word_that_nothing_waits_is_not_idleness() {
    let mut e = engine(rules(10, None, 5), &[0]);
    e.process(0, 0, &Tick::at(tick(Symbol::NFLX, 650.0, 1), 3 * S), 1_000);
    e.set_caught_up(0, true);
    let mut asked = Vec::new();
    // 20s of silence, but the broker does not confirm the end (unreachable, or records
    // waiting): nothing moves, and the silence counts again from then.
    e.tick(1_000 + 20 * S, |p| {
        asked.push(p);
        false
    });
    assert_eq!(asked, vec![0]);
    assert!(e.take_finals().is_empty());
    e.tick(1_000 + 29 * S, |_| panic!("not silent long enough to ask"));
    // 12s after the refusal, confirmed: 3 − 5 + 12 = 10s ≥ end.
    e.tick(1_000 + 32 * S, |_| true);
    assert_eq!(e.take_finals().len(), 1);
}

#[test]
fn a_partition_still_reading_its_backlog_is_never_idle() {
    let mut e = engine(rules(10, None, 5), &[0]);
    e.process(0, 0, &Tick::at(tick(Symbol::NFLX, 1.0, 1), 3 * S), 0);
    e.tick(3_600 * S, |_| true);
    assert!(e.take_finals().is_empty());
}

#[test]
fn updates_are_revisions_of_changed_windows_only() {
    let mut e = engine(rules(10, None, 5), &[0]);
    let r = tick(Symbol::META, 500.0, 2);
    e.process(0, 0, &Tick::at(r, S), 0);
    let ups = e.take_updates();
    assert_eq!(ups.len(), 1);
    assert!(!ups[0].is_final);
    assert!(e.take_updates().is_empty(), "nothing changed since");
    e.process(0, 1, &Tick::at(r, 2 * S), 0);
    assert_eq!(e.take_updates()[0].trades, 2);
}

#[test]
fn checkpoints_round_trip_through_commit_metadata() {
    let c = Checkpoint {
        replay_from: 10,
        resume_at: 42,
        watermark: -5,
        max_event: i64::MIN,
    };
    assert_eq!(Checkpoint::decode(&c.encode(), 42), Some(c));
    assert!(c.encode().len() < 4096);
    assert_eq!(Checkpoint::decode("garbage", 1), None);
    assert_eq!(
        Checkpoint::decode(&c.encode(), 5),
        None,
        "replay past the commit is nonsense"
    );
}

/// The independent model: for every (record, window) pair, the record counts in the window
/// when the window was not yet final at the record's arrival (per partition watermark).
fn model(
    r: Rules,
    slide: i64,
    input: &[(i32, i64, i64, StockRecord)],
) -> BTreeMap<(Symbol, i64), (u64, u64, f64, f64)> {
    let mut wm: BTreeMap<i32, i64> = BTreeMap::new();
    let mut max: BTreeMap<i32, i64> = BTreeMap::new();
    let mut out: BTreeMap<(Symbol, i64), (u64, u64, f64, f64)> = BTreeMap::new();
    for (p, _offset, t, rec) in input {
        let w = wm.get(p).copied();
        let mut start = r.windows.last_start(*t);
        while r.windows.end(start) > *t {
            let end = r.windows.end(start);
            if w.is_none_or(|w| w < end) {
                let e = out
                    .entry((rec.symbol, start))
                    .or_insert((0, 0, f64::MIN, f64::MAX));
                e.0 += 1;
                e.1 += rec.volume;
                e.2 = e.2.max(rec.price);
                e.3 = e.3.min(rec.price);
            }
            start -= slide;
        }
        let m = max.entry(*p).or_insert(i64::MIN);
        *m = (*m).max(*t);
        wm.insert(*p, *m - r.lateness);
    }
    out
}

fn flush_all(e: &mut Engine, parts: &[i32]) -> Vec<Bar> {
    for p in parts {
        e.set_caught_up(*p, true);
    }
    e.tick(i64::MAX / 4, |_| true);
    e.take_finals()
}

fn summarize(bars: &[Bar]) -> BTreeMap<(Symbol, i64), (u64, u64, f64, f64)> {
    let mut out = BTreeMap::new();
    for b in bars {
        assert!(b.is_final);
        let prev = out.insert(
            (b.symbol, b.window_start),
            (b.trades, b.volume, b.high, b.low),
        );
        assert!(
            prev.is_none(),
            "window {:?} {} emitted twice",
            b.symbol,
            b.window_start
        );
    }
    out
}

/// Every bar one engine emits over the whole input, the last windows closed at the end.
fn uninterrupted(r: Rules, input: &[(i32, i64, i64, StockRecord)]) -> Vec<Bar> {
    let parts = [0, 1, 2];
    let mut e = engine(r, &parts);
    let mut bars = Vec::new();
    for (p, o, t, rec) in input {
        e.process(*p, *o, &Tick::at(*rec, *t), 0);
        bars.extend(e.take_finals());
    }
    bars.extend(flush_all(&mut e, &parts));
    bars
}

prop_compose! {
    fn stream()(events in proptest::collection::vec((0usize..7, 0i64..60_000, 1u32..1000, 0u64..500), 1..120))
        -> Vec<(i32, i64, i64, StockRecord)> {
        let mut offsets = BTreeMap::new();
        events.into_iter().map(|(sym, t, cents, vol)| {
            // A symbol lives in one partition (the key is the symbol).
            let p = i32::try_from(sym % 3).unwrap();
            let o = offsets.entry(p).or_insert(0i64);
            *o += 1;
            (p, *o - 1, t, tick(Symbol::ALL[sym], f64::from(cents) / 100.0, vol))
        }).collect()
    }
}

proptest! {
    #[test]
    fn tumbling_bars_match_the_independent_model(input in stream()) {
        let r = rules(10, None, 3);
        let bars = uninterrupted(r, &input);
        prop_assert_eq!(summarize(&bars), model(r, 10 * S, &input));
    }

    #[test]
    fn hopping_bars_match_the_independent_model(input in stream()) {
        let r = rules(10, Some(5), 2);
        let bars = uninterrupted(r, &input);
        prop_assert_eq!(summarize(&bars), model(r, 5 * S, &input));
    }

    /// Crash after any record: a new engine restored from the checkpoint and fed the log
    /// again from the replay offset emits exactly the bars the first one had not emitted.
    #[test]
    fn replay_from_a_checkpoint_neither_loses_nor_repeats(input in stream(), cut in 0usize..120) {
        let r = rules(10, Some(5), 2);
        let parts = [0, 1, 2];
        let cut = cut.min(input.len());
        let mut first = engine(r, &parts);
        let mut before = Vec::new();
        for (p, o, t, rec) in &input[..cut] {
            first.process(*p, *o, &Tick::at(*rec, *t), 0);
            before.extend(first.take_finals());
        }
        let mut second = Engine::new(r);
        for p in parts {
            second.assign(p, first.checkpoint(p), 0);
        }
        let mut after = Vec::new();
        for (p, o, t, rec) in &input {
            let from = first.checkpoint(*p).map_or(0, |c| c.replay_from);
            if *o < from {
                continue;
            }
            let outcome = second.process(*p, *o, &Tick::at(*rec, *t), 0);
            if second.is_replay(*p, *o) {
                prop_assert_eq!(outcome, Outcome::Replayed);
            }
            after.extend(second.take_finals());
        }
        after.extend(flush_all(&mut second, &parts));
        let mut all = before;
        all.extend(after);

        prop_assert_eq!(summarize(&all), summarize(&uninterrupted(r, &input)));
    }
}

#[test]
fn an_offset_read_before_in_this_assignment_is_known_until_the_partition_is_taken_on_again() {
    let mut e = engine(rules(10, None, 5), &[0, 1]);
    let aapl = tick(Symbol::AAPL, 100.0, 10);
    assert!(!e.already_read(0, 0), "nothing read yet");
    e.process(0, 7, &Tick::at(aapl, S), 0);
    e.skip(0, 8);
    for offset in [0, 7, 8] {
        assert!(e.already_read(0, offset), "offset {offset} was read");
    }
    assert!(!e.already_read(0, 9));
    assert!(
        !e.already_read(1, 0),
        "another partition's offsets are its own"
    );
    // Taken on again (a rebalance, or a rebuild after a failed commit): read afresh.
    e.assign(0, None, 0);
    assert!(!e.already_read(0, 7));
}
