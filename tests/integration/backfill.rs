//! Backfills with `stockstream produce` on the real broker: generated history dated from
//! `--start` at `--event-rate` while the sending pace stays `--rate`, and recorded ticks
//! from `--input`, each line checked and the bad ones named by line number.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::kafka::{create_topic, read_all, Read};
use crate::support::model::rfc3339_ms;
use crate::support::{now_ms, on_broker, run_for, summary_count, unique, wait_for, Run};

/// The record format, decoded here independently of stockstream's own decoder.
#[derive(serde::Deserialize)]
struct Tick {
    symbol: String,
    price: f64,
    timestamp: f64,
}

const SYMBOLS: [&str; 7] = ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"];

/// The records of `topic` (of one partition) in the order they were sent, with their ticks.
fn ticks_of(topic: &str) -> Vec<(Read, Tick)> {
    let mut records = read_all(topic);
    records.sort_by_key(|r| (r.partition, r.offset));
    records
        .into_iter()
        .map(|r| {
            let tick = serde_json::from_slice(&r.payload).expect("every payload is a tick");
            (r, tick)
        })
        .collect()
}

/// A new topic of one partition: it keeps the order in which records were sent.
fn new_topic(prefix: &str) -> String {
    let topic = unique(prefix);
    create_topic(&topic, 1);
    topic
}

/// `stockstream produce --topic TOPIC FLAGS…` on the test broker, run to its end.
fn produce(topic: &str, flags: &[&str]) -> Run {
    let mut args = vec!["produce", "--topic", topic];
    args.extend_from_slice(flags);
    run_for(on_broker(&args), Duration::from_secs(120))
}

/// `stockstream produce --topic TOPIC --input FILE FLAGS…`, with `text` in FILE.
fn produce_input(topic: &str, text: &str, flags: &[&str]) -> Run {
    let dir = std::env::temp_dir().join(unique("stockstream-input"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ticks.jsonl");
    std::fs::write(&file, text).unwrap();
    let mut args = vec!["--input", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    let run = produce(topic, &args);
    std::fs::remove_dir_all(&dir).unwrap();
    run
}

fn event_ms(tick: &Tick) -> i64 {
    (tick.timestamp * 1000.0).round() as i64
}

#[test]
fn a_backfill_dates_ticks_from_the_start_at_the_event_rate_and_stamps_them_when_sent() {
    let topic = new_topic("backfill-dates");
    let before_ms = now_ms();
    let run = produce(
        &topic,
        &[
            "--start",
            "2026-11-01T09:30:00Z",
            "--event-rate",
            "500/s",
            "--count",
            "5000",
            "--rate",
            "max",
            "--seed",
            "4",
        ],
    );
    run.assert_code(0);
    assert_eq!(summary_count(&run.stderr, "generated"), 5_000);
    assert_eq!(summary_count(&run.stderr, "delivered"), 5_000);

    let ticks = ticks_of(&topic);
    assert_eq!(ticks.len(), 5_000);
    let start_ms = rfc3339_ms("2026-11-01T09:30:00Z");
    let mut last_of: HashMap<&str, (i64, f64)> = HashMap::new();
    for (k, (record, tick)) in ticks.iter().enumerate() {
        // Tick k at start + k/500 s: 2 ms apart, across all symbols.
        assert_eq!(event_ms(tick), start_ms + 2 * k as i64, "tick {k}");
        assert_eq!(record.key.as_deref(), Some(tick.symbol.as_bytes()));
        // The Kafka timestamp is the send time, so retention keeps the backfill.
        let sent = record.timestamp.expect("a Kafka timestamp");
        assert!(
            sent >= before_ms && sent <= now_ms(),
            "timestamp {sent} of tick {k}"
        );
        let symbol = SYMBOLS
            .iter()
            .find(|s| **s == tick.symbol)
            .unwrap_or_else(|| panic!("unknown symbol {}", tick.symbol));
        if let Some((last_ms, last_price)) = last_of.insert(symbol, (event_ms(tick), tick.price)) {
            assert!(event_ms(tick) > last_ms, "{symbol} went back in event time");
            // 10 s of event time moves a price by hundredths of a percent, not percents.
            assert!(
                (tick.price / last_price - 1.0).abs() < 0.01,
                "{symbol}: {last_price} → {}",
                tick.price
            );
        }
    }
    assert_eq!(last_of.len(), 7, "all seven symbols appear");
    assert_eq!(event_ms(&ticks[4_999].1), start_ms + 9_998);
}

#[test]
fn the_sending_pace_stays_the_rate_while_event_time_runs_faster() {
    let topic = new_topic("backfill-pace");
    let started = Instant::now();
    let run = produce(
        &topic,
        &[
            "--start",
            "2026-01-01T00:00:00Z",
            "--event-rate",
            "1000",
            "--count",
            "200",
            "--rate",
            "100",
            "--symbols",
            "AAPL,TSLA",
        ],
    );
    let took = started.elapsed();
    run.assert_code(0);
    assert_eq!(summary_count(&run.stderr, "delivered"), 200);
    // 200 records at 100 a second take about 2 s to send (loosely: the machine may be busy).
    assert!(took >= Duration::from_millis(1_500), "took {took:?}");
    let ticks = ticks_of(&topic);
    assert_eq!(ticks.len(), 200);
    // … and cover 0.2 s of event time.
    let first = event_ms(&ticks[0].1);
    let last = event_ms(&ticks[199].1);
    assert_eq!(first, rfc3339_ms("2026-01-01T00:00:00Z"));
    assert_eq!(last - first, 199);
    assert!(ticks
        .iter()
        .all(|(_, t)| t.symbol == "AAPL" || t.symbol == "TSLA"));
}

#[test]
fn bad_backfill_flags_are_usage_errors_naming_the_flag() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--start", "2026-11-01 09:30", "--event-rate", "500/s"],
            "--start",
        ),
        (
            &["--start", "2026-11-01T09:30:00Z", "--event-rate", "0"],
            "--event-rate",
        ),
        (&["--start", "2026-11-01T09:30:00Z"], "--event-rate"),
        (&["--event-rate", "500/s"], "--start"),
        (
            &["--start", "2999-01-01T00:00:00Z", "--event-rate", "500/s"],
            "after the wall clock",
        ),
    ];
    for (flags, named) in cases {
        let mut args = vec!["produce", "--count", "1"];
        args.extend_from_slice(flags);
        let run = run_for(on_broker(&args), Duration::from_secs(30));
        run.assert_code(2);
        assert!(run.stderr.contains(named), "{flags:?}: {}", run.stderr);
    }
    let run = run_for(
        on_broker(&["produce", "--start", "nine thirty", "--event-rate", "5"]),
        Duration::from_secs(30),
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("2026-11-01T09:30:00Z"),
        "an example: {}",
        run.stderr
    );
}

#[test]
fn a_count_that_would_reach_the_future_is_refused_before_anything_is_sent() {
    let topic = new_topic("backfill-future");
    // An hour ago at 10 ticks a second: 36,000 ticks reach now, a million do not fit.
    let start = time_ago(time::Duration::hours(1));
    let run = produce(
        &topic,
        &[
            "--start",
            &start,
            "--event-rate",
            "10/s",
            "--count",
            "1000000",
            "--rate",
            "max",
        ],
    );
    run.assert_code(2);
    assert!(run.stderr.contains("--count"), "{}", run.stderr);
    assert!(read_all(&topic).is_empty(), "nothing was sent");
}

/// RFC 3339 for `ago` before now.
fn time_ago(ago: time::Duration) -> String {
    (time::OffsetDateTime::now_utc() - ago)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn a_backfill_without_a_count_stops_on_reaching_the_present() {
    let topic = new_topic("backfill-present");
    let run = produce(
        &topic,
        &[
            "--start",
            &time_ago(time::Duration::seconds(5)),
            "--event-rate",
            "100/s",
            "--rate",
            "max",
        ],
    );
    run.assert_code(0);
    assert!(run.stderr.contains("reached the present"), "{}", run.stderr);
    let ticks = ticks_of(&topic);
    // About 5 s of ticks at 100 a second (more when the start took a while).
    assert!(ticks.len() >= 400, "{} ticks", ticks.len());
    assert_eq!(summary_count(&run.stderr, "delivered"), ticks.len() as u64);
    for (record, tick) in &ticks {
        assert!(
            event_ms(tick) <= record.timestamp.unwrap(),
            "a tick dated after it was sent"
        );
    }
}

const GOOD: [&str; 3] = [
    r#"{"symbol":"AAPL","price":190.5,"volume":100,"timestamp":1762080609.123}"#,
    r#"{"symbol":"MSFT","price":420.25,"volume":7,"timestamp":1762080609.5,"venue":"X"}"#,
    r#"{"symbol":"AAPL","price":190.75,"volume":300,"timestamp":1762080610}"#,
];

/// Good lines 1, 3 and 7; a malformed line 2, a negative price on 4, a blank line 5 and an
/// unknown symbol on 6.
fn recording() -> String {
    [
        GOOD[0],
        r#"{"symbol":"AAPL","price":1"#,
        GOOD[1],
        r#"{"symbol":"MSFT","price":-3,"volume":1,"timestamp":1762080611}"#,
        "",
        r#"{"symbol":"IBM","price":150,"volume":1,"timestamp":1762080612}"#,
        GOOD[2],
    ]
    .join("\n")
        + "\n"
}

/// Checks what an `--input` run of `recording()` did: the good lines in the topic, in
/// order and keyed by symbol; the bad ones named by line and reason; exit 1.
#[track_caller]
fn assert_recording_sent(run: &Run, topic: &str) {
    run.assert_code(1);
    assert_eq!(
        summary_count(&run.stderr, "lines read"),
        6,
        "{}",
        run.stderr
    );
    assert_eq!(summary_count(&run.stderr, "bad"), 3);
    assert_eq!(summary_count(&run.stderr, "delivered"), 3);
    assert_eq!(summary_count(&run.stderr, "failed"), 0);
    for (line, reason) in [
        (2, "invalid_json"),
        (4, "invalid_record"),
        (6, "invalid_record"),
    ] {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.contains(&format!("line {line} of ")) && l.contains(reason)),
            "line {line} ({reason}) reported:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("must be greater than 0"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("\"IBM\""), "{}", run.stderr);
    assert!(!run.stderr.contains("line 5 "), "the blank line is skipped");
    assert!(
        run.stderr.contains("2,4,6"),
        "the bad lines' numbers: {}",
        run.stderr
    );
    assert!(run.stderr.contains("3 bad lines"), "{}", run.stderr);

    // Each good line is sent as it was recorded (an unknown field too), keyed by its symbol.
    let sent: Vec<(String, String)> = ticks_of(topic)
        .iter()
        .map(|(r, tick)| {
            assert_eq!(r.key.as_deref(), Some(tick.symbol.as_bytes()));
            (
                tick.symbol.clone(),
                String::from_utf8(r.payload.clone()).unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = GOOD
        .iter()
        .zip(["AAPL", "MSFT", "AAPL"])
        .map(|(line, symbol)| (symbol.to_string(), line.to_string()))
        .collect();
    assert_eq!(sent, expected);
}

#[test]
fn input_sends_the_good_lines_in_order_and_names_the_bad_ones() {
    let topic = new_topic("backfill-input");
    let run = produce_input(&topic, &recording(), &["--rate", "max"]);
    assert_recording_sent(&run, &topic);
}

#[test]
fn input_dash_reads_standard_input() {
    let topic = new_topic("backfill-stdin");
    let mut cmd = on_broker(&[
        "produce", "--topic", &topic, "--input", "-", "--rate", "max",
    ]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("starting stockstream");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(recording().as_bytes()).unwrap();
    drop(stdin);
    let run = wait_for(child, Duration::from_secs(60));
    assert_recording_sent(&run, &topic);
}

#[test]
fn input_counts_stop_at_count_and_a_clean_file_exits_0() {
    let topic = new_topic("backfill-count");
    let lines: String = (0..50)
        .map(|i| {
            format!(
                "{{\"symbol\":\"NFLX\",\"price\":650.5,\"volume\":{i},\"timestamp\":1762080609.{i:03}}}\n"
            )
        })
        .collect();
    let run = produce_input(&topic, &lines, &["--rate", "max", "--count", "20"]);
    run.assert_code(0);
    assert_eq!(summary_count(&run.stderr, "delivered"), 20);
    assert_eq!(summary_count(&run.stderr, "bad"), 0);
    let volumes: Vec<u64> = read_all(&topic)
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.payload).unwrap()["volume"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        volumes,
        (0..20).collect::<Vec<_>>(),
        "the first 20 lines, in order"
    );
}
