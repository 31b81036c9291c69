//! `stockstream produce` on the real broker: every record lands, validated, keyed and placed
//! as the Java client would place it; Ctrl+C loses nothing; failures are loud and bounded.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::support::kafka::{create_topic, murmur2_partition, read_all};
use crate::support::{on_broker, run_for, stockstream, summary_count, unique, Running};

/// The record format, decoded here independently of stockstream's own decoder.
#[derive(serde::Deserialize)]
struct Tick {
    symbol: String,
    price: f64,
    volume: u64,
    timestamp: f64,
}

const SYMBOLS: [&str; 7] = ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"];

#[test]
fn ten_thousand_records_land_valid_keyed_and_placed_like_the_java_client() {
    let topic = unique("produce-10k");
    create_topic(&topic, 5);
    let run = run_for(
        on_broker(&[
            "produce", "--topic", &topic, "--count", "10000", "--rate", "max",
        ]),
        Duration::from_secs(120),
    );
    run.assert_code(0);
    assert_eq!(summary_count(&run.stderr, "delivered"), 10_000);
    assert_eq!(summary_count(&run.stderr, "failed"), 0);

    let records = read_all(&topic);
    assert_eq!(records.len(), 10_000, "records in the topic");
    let mut partition_of: HashMap<String, HashSet<i32>> = HashMap::new();
    let mut last_ts: HashMap<String, f64> = HashMap::new();
    let mut by_position = records.clone();
    by_position.sort_by_key(|r| (r.partition, r.offset));
    for r in &by_position {
        let tick: Tick = serde_json::from_slice(&r.payload).expect("every payload is a tick");
        assert!(SYMBOLS.contains(&tick.symbol.as_str()), "{}", tick.symbol);
        assert!(tick.price.is_finite() && tick.price > 0.0);
        assert!(tick.timestamp.is_finite() && tick.timestamp > 1.7e9);
        assert!(tick.volume < 10_000_000);
        assert_eq!(
            r.key.as_deref(),
            Some(tick.symbol.as_bytes()),
            "key == symbol"
        );
        // Two decimals on the wire.
        assert!(((tick.price * 100.0).round() - tick.price * 100.0).abs() < 1e-6);
        partition_of
            .entry(tick.symbol.clone())
            .or_default()
            .insert(r.partition);
        let last = last_ts.entry(tick.symbol.clone()).or_insert(0.0);
        assert!(
            tick.timestamp >= *last,
            "timestamps of {} went back",
            tick.symbol
        );
        *last = tick.timestamp;
    }
    assert_eq!(partition_of.len(), 7, "all seven symbols appear");
    for (symbol, partitions) in partition_of {
        assert_eq!(partitions.len(), 1, "{symbol} is in one partition");
        let expected = murmur2_partition(symbol.as_bytes(), 5);
        assert!(
            partitions.contains(&expected),
            "{symbol} in {partitions:?}, murmur2 says {expected}"
        );
    }
}

#[test]
fn human_pace_logs_one_line_per_record_with_partition_and_offset() {
    let topic = unique("produce-human");
    create_topic(&topic, 5);
    let run = run_for(
        on_broker(&[
            "produce",
            "--topic",
            &topic,
            "--count",
            "12",
            "--interval",
            "50ms",
            "--symbols",
            "aapl,MSFT",
            "--seed",
            "1",
        ]),
        Duration::from_secs(60),
    );
    run.assert_code(0);
    let lines: Vec<&str> = run.stderr.lines().filter(|l| l.contains("✅")).collect();
    assert_eq!(lines.len(), 12, "{}", run.stderr);
    for line in &lines {
        assert!(line.contains(" - StockProducer - ✨ INFO - ✅ "), "{line}");
        assert!(line.contains("AAPL") || line.contains("MSFT"), "{line}");
        assert!(
            line.contains("📍 Partition: ") && line.contains("📌 Offset: "),
            "{line}"
        );
    }
    assert!(
        run.stderr.contains("📊 Stats: 10 delivered"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\x1b'),
        "no escape codes with NO_COLOR"
    );
    assert!(run.stdout.is_empty(), "logs stay off stdout");
    // Each logged offset is the record's real place in the topic.
    let read = read_all(&topic);
    assert_eq!(read.len(), 12);
    for line in lines {
        let partition: i32 = field_after(line, "Partition: ");
        let offset: i64 = field_after(line, "Offset: ");
        assert!(
            read.iter()
                .any(|r| r.partition == partition && r.offset == offset),
            "{line}"
        );
    }
}

fn field_after<T: std::str::FromStr>(line: &str, label: &str) -> T {
    let rest = &line[line.find(label).unwrap() + label.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().unwrap()
}

#[test]
fn sigint_at_high_rate_stops_cleanly_and_loses_nothing() {
    let topic = unique("produce-sigint");
    create_topic(&topic, 5);
    let child = Running::spawn(on_broker(&["produce", "--topic", &topic, "--rate", "max"]));
    std::thread::sleep(Duration::from_secs(4));
    let run = child.signal_and_wait(libc::SIGINT, Duration::from_secs(60));
    run.assert_code(0);
    let delivered = summary_count(&run.stderr, "delivered");
    assert!(delivered > 0, "{}", run.stderr);
    assert_eq!(summary_count(&run.stderr, "failed"), 0);
    assert_eq!(summary_count(&run.stderr, "generated"), delivered);
    assert_eq!(
        read_all(&topic).len() as u64,
        delivered,
        "topic holds what the summary says"
    );
}

#[test]
fn unreachable_broker_fails_within_the_timeout_naming_it() {
    let mut cmd = stockstream();
    cmd.args([
        "-b",
        "127.0.0.1:1",
        "produce",
        "--count",
        "5",
        "--timeout",
        "3s",
    ]);
    let started = Instant::now();
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(3);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(run.stderr.contains("127.0.0.1:1"), "{}", run.stderr);
    assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
}

#[test]
fn missing_topic_fails_with_the_hint() {
    let topic = unique("produce-missing");
    let run = run_for(
        on_broker(&["produce", "--topic", &topic, "--count", "1"]),
        Duration::from_secs(30),
    );
    run.assert_code(4);
    assert!(
        run.stderr
            .contains(&format!("topic `{topic}` does not exist")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: create it"), "{}", run.stderr);
}

#[test]
fn a_second_ctrl_c_quits_at_once_with_130() {
    // Nothing listens on port 1, so produce waits for the broker (up to --timeout): the
    // first Ctrl+C asks for a graceful stop, the second must not wait for anything.
    let mut cmd = stockstream();
    cmd.args(["-b", "127.0.0.1:1", "produce", "--timeout", "20s"]);
    let child = Running::spawn(cmd);
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(i32::try_from(child.pid()).unwrap(), libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let run = child.signal_and_wait(libc::SIGINT, Duration::from_secs(10));
    run.assert_code(130);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("Ctrl+C again"), "{}", run.stderr);
}

#[test]
fn a_fractional_rate_sets_the_pace_it_says() {
    // (rate, how the start line says it, records, seconds from the first to the last)
    for (rate, said, count, span) in [
        ("2.5", "2.5 records/s", "6", 2.0),
        ("0.5", "one every 2s", "2", 2.0),
    ] {
        let topic = unique("produce-fractional");
        create_topic(&topic, 1);
        let run = run_for(
            on_broker(&[
                "produce", "--topic", &topic, "--rate", rate, "--count", count,
            ]),
            Duration::from_secs(60),
        );
        run.assert_code(0);
        assert!(
            run.stderr
                .contains(&format!("({said}; stops after {count} records)")),
            "--rate {rate}: {}",
            run.stderr
        );
        let times: Vec<f64> = read_all(&topic)
            .iter()
            .map(|r| {
                let tick: Tick = serde_json::from_slice(&r.payload).expect("a tick");
                tick.timestamp
            })
            .collect();
        assert_eq!(times.len().to_string(), count);
        let first = times.iter().copied().fold(f64::INFINITY, f64::min);
        let last = times.iter().copied().fold(0.0, f64::max);
        // Rounded to a whole rate, 2.5/s would take 2.5 s (2/s) or 1.7 s (3/s), and 0.5/s
        // 1 s (1/s). Each record is due at a fixed time from the start; a busy machine may
        // send one a little late, never early.
        assert!(
            last - first > span - 0.15 && last - first < span + 0.4,
            "--rate {rate}: {count} records spread over {:.3}s, expected {span}s",
            last - first
        );
    }
}

/// The progress bar on a terminal counts like the rest of the output: "4,096/10,000".
#[test]
fn the_progress_bar_separates_thousands() {
    use crate::support::terminal::Terminal;
    let topic = unique("produce-bar");
    create_topic(&topic, 1);
    let cmd = on_broker(&[
        "produce", "--topic", &topic, "--rate", "2000", "--count", "10000",
    ]);
    let (code, shown) = Terminal::spawn(cmd).wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains("/10,000 "),
        "no count of 10,000 in:\n{shown}"
    );
    assert!(!shown.contains("/10000"), "{shown}");
    assert!(shown.contains("stops after 10,000 records)"), "{shown}");
}
