//! `stockstream aggregate` on the real broker: the bars it commits are exactly those an
//! independent computation expects, each once; every bad and late record is in the
//! dead-letter topic once with its reason and source; watermarks never stall.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::message::Message as _;

use crate::support::kafka::{create_topic, produce_raw, read_committed, subscriber, Raw};
use crate::support::model::{
    assert_bars_match, assert_dead_letters, expected, log_of, rfc3339_ms, DeadLetters, Logged,
};
use crate::support::{on_broker, unique, Run, Running};

/// 2026-01-01T00:00:00Z, in ms: the data set lives well in the past.
const T0: i64 = 1_767_225_600_000;

#[derive(Clone)]
enum Rec {
    Good {
        symbol: &'static str,
        at_ms: i64,
        price: f64,
        volume: u64,
    },
    Bad {
        payload: Option<Vec<u8>>,
        reason: &'static str,
    },
}

fn good(symbol: &'static str, at_s: f64, price: f64, volume: u64) -> Rec {
    Rec::Good {
        symbol,
        at_ms: (at_s * 1000.0) as i64,
        price,
        volume,
    }
}

fn bad(payload: &[u8], reason: &'static str) -> Rec {
    Rec::Bad {
        payload: Some(payload.to_vec()),
        reason,
    }
}

impl Rec {
    fn payload(&self) -> Option<Vec<u8>> {
        match self {
            Rec::Good {
                symbol,
                at_ms,
                price,
                volume,
            } => Some(
                format!(
                    r#"{{"symbol":"{symbol}","price":{price},"volume":{volume},"timestamp":{}}}"#,
                    (T0 + at_ms) as f64 / 1000.0
                )
                .into_bytes(),
            ),
            Rec::Bad { payload, .. } => payload.clone(),
        }
    }

    fn key(&self) -> Option<&'static str> {
        match self {
            Rec::Good { symbol, .. } => Some(symbol),
            Rec::Bad { .. } => Some("AAPL"),
        }
    }
}

/// Partition 0: AAPL and MSFT; partition 1: TSLA and META; partition 2: nothing at all.
fn data_set() -> Vec<(i32, Rec)> {
    let too_large = format!(r#"{{"symbol":"AAPL","pad":"{}"}}"#, "x".repeat(70_000));
    vec![
        (0, good("AAPL", 0.5, 100.0, 10)),
        (0, good("MSFT", 1.0, 400.0, 0)),
        (0, good("AAPL", 3.0, 101.0, 20)),
        (0, good("AAPL", 5.0, 102.0, 5)),
        (0, good("AAPL", 2.0, 99.0, 1)), // out of order, within the lateness
        (0, bad(b"this is not json", "invalid_json")),
        (0, good("AAPL", 9.0, 103.0, 7)),
        (0, good("AAPL", 1.5, 98.0, 3)),  // late
        (0, good("MSFT", 1.2, 401.0, 0)), // late
        (0, bad(b"{\"symbol\":\"AA\xffPL\"}", "invalid_utf8")),
        (
            0,
            bad(
                br#"{"symbol":"AAPL","price":0,"volume":1,"timestamp":1767225601}"#,
                "invalid_record",
            ),
        ),
        (0, good("AAPL", 10.0, 104.0, 1)),
        (0, good("MSFT", 10.5, 402.0, 0)),
        (1, good("TSLA", 0.1, 250.0, 100)),
        (1, good("META", 0.2, 500.0, 50)),
        (
            1,
            bad(
                br#"{"symbol":"TSLA","price":250.5,"timestamp":1767225601}"#,
                "invalid_record",
            ),
        ),
        (1, good("TSLA", 4.0, 251.0, 1)),
        (1, good("META", 12.0, 510.0, 5)),
        (1, good("TSLA", 6.0, 252.0, 2)), // late
        (1, bad(too_large.as_bytes(), "too_large")),
        (
            1,
            Rec::Bad {
                payload: None,
                reason: "invalid_json",
            },
        ),
        (1, good("TSLA", 13.0, 253.0, 3)),
        (1, good("META", 13.5, 505.5, 1)),
    ]
}

/// The model read the data set back from Kafka; its verdicts on the bad records must be the
/// ones the data set was written to exercise.
#[track_caller]
fn assert_reasons_as_designed(data: &[(i32, Rec)], dead: &DeadLetters) {
    let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, rec) in data {
        let offset = *offsets.entry(*p).and_modify(|o| *o += 1).or_insert(0);
        if let Rec::Bad { reason, .. } = rec {
            assert_eq!(dead.get(&(*p, offset)), Some(reason), "record {p}/{offset}");
        }
    }
}

fn load(topic: &str, data: &[(i32, Rec)]) {
    create_topic(topic, 3);
    load_into(topic, data);
}

fn aggregate(topic: &str, group: &str, extra: &[&str]) -> Running {
    let output = format!("{topic}.bars");
    let mut args = vec![
        "aggregate",
        "--topic",
        topic,
        "--group",
        group,
        "--from",
        "earliest",
        "--output-topic",
        &output,
        // Bars of 2026-01-01: under the broker's default retention (7 days) they would be
        // deleted at its next retention check, within minutes.
        "--output-retention",
        "forever",
        "--progress-interval",
        "1s",
    ];
    args.extend_from_slice(extra);
    Running::spawn(on_broker(&args))
}

/// Reads `TOPIC.dlq` and checks it holds exactly the dead letters the model expects.
fn check_dead_letters(topic: &str, dead: &DeadLetters, log: &[Logged]) {
    let dlq = read_committed(
        &format!("{topic}.dlq"),
        dead.len(),
        Duration::from_secs(30),
        Duration::from_secs(1),
    );
    assert_dead_letters(&dlq, dead, topic, log);
}

fn stop(child: Running) -> Run {
    child.signal_and_wait(libc::SIGINT, Duration::from_secs(60))
}

fn check_data_set(size: &str, slide: Option<&str>, size_ms: i64, slide_ms: i64) {
    let topic = unique("agg-set");
    let data = data_set();
    load(&topic, &data);
    let log = log_of(&topic);
    let (bars, dead) = expected(&log, size_ms, slide_ms, 2_000);
    assert_reasons_as_designed(&data, &dead);
    let mut extra = vec![
        "--window",
        size,
        "--watermark",
        "2s",
        "--idle-timeout",
        "2s",
        "--instance-id",
        "solo",
    ];
    if let Some(s) = slide {
        extra.extend_from_slice(&["--slide", s]);
    }
    let child = aggregate(&topic, &unique("g"), &extra);
    let out = read_committed(
        &format!("{topic}.bars"),
        bars.len(),
        Duration::from_secs(90),
        Duration::from_secs(3),
    );
    let run = stop(child);
    run.assert_code(0);
    assert_bars_match(&out, &bars, size_ms);
    check_dead_letters(&topic, &dead, &log);
    // Off a terminal, each emitted bar is also one JSON line on stdout.
    let lines = run
        .stdout
        .lines()
        .filter(|l| l.contains("\"window_start\""))
        .count();
    assert_eq!(lines, bars.len(), "{}", run.stdout);
}

#[test]
fn tumbling_bars_and_dead_letters_match_an_independent_computation() {
    check_data_set("4s", None, 4_000, 4_000);
}

#[test]
fn hopping_bars_and_dead_letters_match_an_independent_computation() {
    check_data_set("4s", Some("2s"), 4_000, 2_000);
}

#[test]
fn two_instances_split_the_partitions_and_emit_the_same_bars_as_one() {
    let topic = unique("agg-two");
    let data = data_set();
    load(&topic, &data);
    let log = log_of(&topic);
    let (bars, dead) = expected(&log, 4_000, 4_000, 2_000);
    let group = unique("g2");
    let common = [
        "--window",
        "4s",
        "--watermark",
        "2s",
        "--idle-timeout",
        "2s",
    ];
    let mut a_args = common.to_vec();
    a_args.extend_from_slice(&["--instance-id", "a"]);
    let mut b_args = common.to_vec();
    b_args.extend_from_slice(&["--instance-id", "b"]);
    let a = aggregate(&topic, &group, &a_args);
    let b = aggregate(&topic, &group, &b_args);
    let read = std::panic::catch_unwind(|| {
        read_committed(
            &format!("{topic}.bars"),
            bars.len(),
            Duration::from_secs(90),
            Duration::from_secs(3),
        )
    });
    let (ra, rb) = (stop(a), stop(b));
    let Ok(out) = read else {
        panic!(
            "the bars did not come; instance a said:\n{}\ninstance b said:\n{}",
            ra.stderr, rb.stderr
        );
    };
    ra.assert_code(0);
    rb.assert_code(0);
    assert_bars_match(&out, &bars, 4_000);
    check_dead_letters(&topic, &dead, &log);
    // Both took part: each was assigned partitions.
    for run in [&ra, &rb] {
        assert!(
            run.stderr.contains("Partitions assigned: "),
            "{}",
            run.stderr
        );
    }
}

/// Two instances with one --instance-id take the static membership from each other on every
/// join; at-least-once has no transactional id to end that, so the consumer's own fencing
/// must: exactly one stops, saying why, within a minute, and the other carries on.
#[test]
fn two_at_least_once_instances_with_one_instance_id_one_stops_and_says_why() {
    let topic = unique("alo-twins");
    load(&topic, &data_set());
    let group = unique("g-alo-twins");
    let args = ["--guarantee", "at-least-once", "--instance-id", "twin"];
    let mut a = aggregate(&topic, &group, &args);
    std::thread::sleep(Duration::from_secs(3));
    let mut b = aggregate(&topic, &group, &args);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !a.exited() && !b.exited() {
        assert!(
            Instant::now() < deadline,
            "neither twin stopped within a minute:\n{}\n---\n{}",
            stop(a).stderr,
            stop(b).stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (stopped, mut survivor) = if a.exited() { (a, b) } else { (b, a) };
    // The survivor is not fenced again: it still runs a while later.
    std::thread::sleep(Duration::from_secs(5));
    let alive = !survivor.exited();
    let stopped = stopped.wait(Duration::from_secs(10));
    let survivor = stop(survivor);
    let both = format!(
        "stopped:\n{}\n---\nsurvivor:\n{}",
        stopped.stderr, survivor.stderr
    );
    assert!(alive, "the second twin stopped too\n{both}");
    assert_ne!(stopped.code, Some(0), "{both}");
    assert!(
        stopped
            .stderr
            .contains("another instance with the same --instance-id took over"),
        "{both}"
    );
    assert!(
        stopped
            .stderr
            .contains("give every instance of a group its own --instance-id"),
        "{both}"
    );
    survivor.assert_code(0);
    let restarts = survivor.stderr.matches("starting a new one").count();
    assert!(
        restarts <= 1,
        "the survivor was fenced {restarts} times\n{both}"
    );
}

#[test]
fn a_partition_without_data_never_delays_the_others() {
    let topic = unique("agg-empty");
    create_topic(&topic, 3);
    // Thirty seconds of AAPL in partition 0 only; partitions 1 and 2 stay empty.
    let data: Vec<(i32, Rec)> = (0..30)
        .map(|s| (0, good("AAPL", f64::from(s), 100.0, 1)))
        .collect();
    load_into(&topic, &data);
    // No idle help at all: only partition 0's own watermark can close windows.
    let child = aggregate(
        &topic,
        &unique("g3"),
        &[
            "--window",
            "4s",
            "--watermark",
            "1s",
            "--idle-timeout",
            "1h",
            "--instance-id",
            "e",
        ],
    );
    // Watermark 29 − 1 = 28s: windows [0,4) … [24,28) are final.
    let out = read_committed(
        &format!("{topic}.bars"),
        7,
        Duration::from_secs(60),
        Duration::from_secs(2),
    );
    stop(child).assert_code(0);
    assert_eq!(out.len(), 7);
}

fn load_into(topic: &str, data: &[(i32, Rec)]) {
    let raw: Vec<Raw> = data
        .iter()
        .map(|(p, r)| Raw {
            partition: *p,
            key: r.key().map(|k| k.as_bytes().to_vec()),
            value: r.payload(),
        })
        .collect();
    produce_raw(topic, &raw);
}

#[test]
fn the_last_window_is_emitted_soon_after_the_producer_stops() {
    let topic = unique("agg-live");
    create_topic(&topic, 3);
    let group = unique("g4");
    let child = aggregate(
        &topic,
        &group,
        &[
            "--window",
            "2s",
            "--watermark",
            "1s",
            "--idle-timeout",
            "2s",
            "--instance-id",
            "live",
        ],
    );
    let reader = subscriber(&format!("{topic}.bars"));
    std::thread::sleep(Duration::from_secs(3));
    let produced = crate::support::run_for(
        on_broker(&[
            "produce",
            "--topic",
            &topic,
            "--rate",
            "50",
            "--duration",
            "3s",
            "--symbols",
            "AAPL",
        ]),
        Duration::from_secs(60),
    );
    produced.assert_code(0);
    let stopped = Instant::now();
    // The last tick's window: read the topic's newest tick time.
    let last_tick = crate::support::kafka::read_all(&topic)
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.payload).unwrap()["timestamp"]
                .as_f64()
                .unwrap()
        })
        .fold(0.0, f64::max);
    let last_window_end = ((last_tick * 1000.0) as i64).div_euclid(2_000) * 2_000 + 2_000;
    let deadline = stopped + Duration::from_secs(30);
    let arrived = loop {
        assert!(Instant::now() < deadline, "the last window never came");
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(50)) {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            if rfc3339_ms(v["window_end"].as_str().unwrap()) == last_window_end {
                break Instant::now();
            }
        }
    };
    stop(child).assert_code(0);
    // max(idle timeout 2s, window 2s + lateness 1s) = 3s, plus a margin for a busy machine.
    let took = arrived.duration_since(stopped);
    assert!(
        took <= Duration::from_secs(3) + Duration::from_secs(4),
        "took {took:?}"
    );
}

/// A backlog written by `produce --rate max PRODUCE…` into `topic`, and an aggregate with
/// windows of 1s and no lateness (and `EXTRA…`) working through it.
fn through_a_backlog(topic: &str, produce: &[&str], extra: &[&str]) -> Running {
    let mut args = vec!["produce", "--topic", topic, "--rate", "max"];
    args.extend_from_slice(produce);
    crate::support::run_for(on_broker(&args), Duration::from_secs(120)).assert_code(0);
    let mut args = vec!["--window", "1s", "--watermark", "0s"];
    args.extend_from_slice(extra);
    aggregate(topic, &unique("g-backlog"), &args)
}

#[test]
fn a_backlog_of_many_batches_is_counted_to_the_last_record() {
    let topic = unique("agg-backlog");
    create_topic(&topic, 5);
    let child = through_a_backlog(
        &topic,
        &["--count", "25000"],
        &["--idle-timeout", "1s", "--instance-id", "backlog"],
    );
    // Every tick lands in exactly one tumbling window, so the trades of all bars add up to
    // every record read: none skipped between batches, none counted twice.
    let reader = subscriber(&format!("{topic}.bars"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut trades = 0;
    let mut settled: Option<Instant> = None;
    while settled.is_none_or(|t| Instant::now() < t) {
        assert!(
            Instant::now() < deadline,
            "only {trades} of 25000 trades arrived"
        );
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            trades += v["trades"].as_u64().unwrap();
        }
        if trades >= 25_000 && settled.is_none() {
            settled = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    stop(child).assert_code(0);
    assert_eq!(trades, 25_000);
}

/// The host name as the operating system tells it.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into `buf`.
    assert_eq!(
        unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) },
        0
    );
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[test]
fn the_default_instance_id_is_the_host_name_the_system_gives() {
    let topic = unique("agg-host");
    create_topic(&topic, 1);
    let output = format!("{topic}.bars");
    let mut cmd = on_broker(&[
        "aggregate",
        "--topic",
        &topic,
        "--output-topic",
        &output,
        "--from",
        "earliest",
        "--stop-at-end",
    ]);
    // Not from the environment: $HOSTNAME is a shell's variable, often not exported.
    cmd.env("HOSTNAME", "not-the-host-name")
        .env_remove("STOCKSTREAM_INSTANCE_ID");
    let run = crate::support::run_for(cmd, Duration::from_secs(60));
    run.assert_code(0);
    let instance = format!("instance `{}`", host_name());
    assert!(
        run.stderr.contains(&instance),
        "no {instance} in\n{}",
        run.stderr
    );
}

#[test]
fn the_last_bars_stay_on_screen_after_ctrl_c() {
    use crate::support::terminal::{bars_table, screen, Terminal};
    let topic = unique("agg-screen");
    create_topic(&topic, 1);
    // One partition, its watermark at 2.6s: AAPL's window [1s, 2s) is its last final one,
    // MSFT's [0s, 1s).
    let data = [
        (0, good("MSFT", 0.2, 400.0, 1)),
        (0, good("AAPL", 0.5, 100.0, 1)),
        (0, good("AAPL", 1.5, 101.0, 1)),
        (0, good("AAPL", 2.5, 102.0, 1)),
        (0, good("MSFT", 2.6, 401.0, 1)),
    ];
    load_into(&topic, &data);
    let output = format!("{topic}.bars");
    let group = unique("g-screen");
    let args = [
        "aggregate",
        "--topic",
        &topic,
        "--group",
        &group,
        "--from",
        "earliest",
        "--output-topic",
        &output,
        "--window",
        "1s",
        "--watermark",
        "0s",
        // No partition goes idle: the two bars above stay the last.
        "--idle-timeout",
        "1h",
    ];
    let mut cmd = on_broker(&args);
    cmd.stdout(std::process::Stdio::null());
    let mut terminal = Terminal::spawn(cmd);
    terminal.wait_for_text("400.00", Duration::from_secs(60));
    terminal.wait_for_text("101.00", Duration::from_secs(30));
    terminal.signal(libc::SIGINT);
    let (code, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{shown}");
    let screen = screen(&shown);
    let rows = bars_table(&screen);
    assert_eq!(rows.len(), 2, "{}", screen.join("\n"));
    assert!(
        rows[0].starts_with("AAPL    2026-01-01T00:00:01Z +1s") && rows[0].contains("101.00"),
        "{}",
        screen.join("\n")
    );
    assert!(
        rows[1].starts_with("MSFT    2026-01-01T00:00:00Z +1s") && rows[1].contains("400.00"),
        "{}",
        screen.join("\n")
    );
    // Above the summary, which no redraw erases either.
    let summary = screen.iter().position(|l| l.contains("📋 Summary:"));
    let header = screen.iter().position(|l| l.starts_with("SYMBOL"));
    assert!(
        header < summary && header.is_some(),
        "{}",
        screen.join("\n")
    );
}

#[test]
fn ctrl_c_while_working_through_a_backlog_stops_within_seconds() {
    let topic = unique("agg-drain");
    create_topic(&topic, 5);
    let child = through_a_backlog(
        &topic,
        &[
            "--count",
            "1000000",
            "--start",
            "2026-01-01T00:00:00Z",
            "--event-rate",
            "100/s",
        ],
        // Nobody reads stdout until the end: bars written there would fill the pipe and
        // hold the job up. (`aggregate` keeps the bars of 2026-01-01 forever.)
        &["--instance-id", "drain", "--no-console"],
    );
    // Bars are coming: the job is in the middle of the backlog.
    let reader = subscriber(&format!("{topic}.bars"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(reader.poll(Duration::from_millis(100)), Some(Ok(_))) {
        if Instant::now() >= deadline {
            let where_it_was = crate::support::stacks(child.pid());
            let run = stop(child);
            panic!(
                "no bars within 60s; aggregate said:\n{}\n--- its threads\n{where_it_was}",
                run.stderr
            );
        }
    }
    // Ended within 5 s of the signal, or the wait fails.
    let run = child.signal_and_wait(libc::SIGINT, Duration::from_secs(5));
    run.assert_code(0);
    let read = crate::support::summary_count(&run.stderr, "records read");
    assert!(
        read < 1_000_000,
        "the backlog was done before the stop: {read}"
    );
}

/// Numbers in the summaries are for people: thousands separated, one of a thing in the
/// singular. Scripts read the same counts back with `summary_count`.
#[test]
fn summaries_separate_thousands_and_say_one_record_in_the_singular() {
    let topic = unique("agg-grammar");
    create_topic(&topic, 1);
    let produce = |count: &str| {
        let run = crate::support::run_for(
            on_broker(&[
                "produce", "--topic", &topic, "--rate", "max", "--count", count,
            ]),
            Duration::from_secs(120),
        );
        run.assert_code(0);
        run
    };
    let drain = || {
        let run = crate::support::run_for(
            on_broker(&[
                "aggregate",
                "--topic",
                &topic,
                "--group",
                &unique("g-grammar"),
                "--from",
                "earliest",
                "--output-topic",
                &format!("{topic}.bars"),
                "--output-retention",
                "forever",
                "--stop-at-end",
                "--no-console",
            ]),
            Duration::from_secs(120),
        );
        run.assert_code(0);
        run.stderr
            .lines()
            .find(|l| l.contains("📋 Summary:"))
            .unwrap_or_else(|| panic!("no summary:\n{}", run.stderr))
            .to_string()
    };

    let said = |text: &str, words: &[&str]| {
        for w in words {
            assert!(text.contains(w), "no {w:?} in:\n{text}");
        }
    };

    let one = produce("1").stderr;
    said(
        &one,
        &[
            "stops after 1 record)",
            "Summary: 1 generated, 1 delivered, 0 failed",
        ],
    );
    let summary = drain();
    said(
        &summary,
        &["Summary: 1 record read, 1 aggregated, 0 late, 0 bad"],
    );
    assert_singular_for_one(&summary);

    let many = produce("1500").stderr;
    said(
        &many,
        &[
            "stops after 1,500 records)",
            "Summary: 1,500 generated, 1,500 delivered, 0 failed",
        ],
    );
    assert_eq!(crate::support::summary_count(&many, "delivered"), 1_500);
    let summary = drain();
    said(&summary, &["Summary: 1,501 records read, 1,501 aggregated"]);
    assert_eq!(
        crate::support::summary_count(&summary, "records read"),
        1_501
    );
    assert_singular_for_one(&summary);
}

/// No "1 records", "1 bars", "1 commits" or "(1 records/s)" anywhere in `line`.
#[track_caller]
fn assert_singular_for_one(line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    for pair in words.windows(2) {
        if pair[0].trim_start_matches('(') == "1" {
            let noun = pair[1].trim_end_matches([',', ';', ')']);
            assert!(
                !["records", "bars", "commits", "records/s"].contains(&noun),
                "`1 {noun}` in {line}"
            );
        }
    }
}
