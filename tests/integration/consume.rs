//! `stockstream consume` on the real broker: what a user reads (ticks, bars and dead letters
//! shown as what they are; JSON lines a script can rely on; raw values), where reading
//! starts and stops, transactions, consumer groups, and the exits.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use serde_json::Value;

use crate::support::kafka::{create_topic, produce_raw, Raw};
use crate::support::{
    assert_unreachable, broker, exit_within, now_ms, on_broker, run_for, send_signal, unique,
    wait_for, Run,
};

/// 2026-01-01T00:00:00Z, in ms.
const T0: i64 = 1_767_225_600_000;

fn consume(args: &[&str]) -> Run {
    let mut full = vec!["consume"];
    full.extend_from_slice(args);
    run_for(on_broker(&full), Duration::from_secs(60))
}

/// `consume ARGS -o json`, exit 0, each line parsed.
#[track_caller]
fn json(args: &[&str]) -> Vec<Value> {
    let mut full = args.to_vec();
    full.extend_from_slice(&["-o", "json"]);
    let run = consume(&full);
    run.assert_code(0);
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// (partition, offset) of each line.
fn places(lines: &[Value]) -> Vec<(i64, i64)> {
    lines
        .iter()
        .map(|v| {
            (
                v["partition"].as_i64().unwrap(),
                v["offset"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// One record to write, with what `produce_raw` cannot set.
#[derive(Default)]
struct Rec {
    partition: i32,
    key: Option<&'static [u8]>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: Vec<(&'static str, Option<&'static [u8]>)>,
}

fn producer(extra: &[(&str, &str)]) -> BaseProducer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &broker().bootstrap)
        .set("linger.ms", "0");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create().expect("producer")
}

fn send(producer: &BaseProducer, topic: &str, r: &Rec) {
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).partition(r.partition);
    if let Some(k) = r.key {
        record = record.key(k);
    }
    if let Some(v) = &r.value {
        record = record.payload(v.as_slice());
    }
    if let Some(t) = r.timestamp {
        record = record.timestamp(t);
    }
    if !r.headers.is_empty() {
        let headers = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header { key: k, value: *v })
        });
        record = record.headers(headers);
    }
    producer
        .send(record)
        .map_err(|(e, _)| e)
        .expect("queueing a test record");
}

/// Writes the records in order and waits for every acknowledgement.
fn write(topic: &str, records: &[Rec]) {
    let p = producer(&[("enable.idempotence", "true")]);
    for r in records {
        send(&p, topic, r);
    }
    p.flush(Duration::from_secs(30)).expect("flushing");
}

/// `n` text values `v0`, `v1`, … into partition 0.
fn values(topic: &str, n: usize) {
    let records: Vec<Raw> = (0..n)
        .map(|i| Raw {
            partition: 0,
            key: None,
            value: Some(format!("v{i}").into_bytes()),
        })
        .collect();
    produce_raw(topic, &records);
}

fn tick(symbol: &str, at_ms: i64, price: f64, volume: u64) -> Vec<u8> {
    format!(
        r#"{{"symbol":"{symbol}","price":{price},"volume":{volume},"timestamp":{}}}"#,
        at_ms as f64 / 1000.0
    )
    .into_bytes()
}

#[test]
fn pretty_shows_ticks_bars_and_dead_letters_as_what_they_are() {
    let topic = unique("consume-kinds");
    create_topic(&topic, 1);
    // AAPL every second for 20 s of event time, and two bad records among them.
    let mut records: Vec<Raw> = (0..20)
        .map(|s| Raw {
            partition: 0,
            key: Some(b"AAPL".to_vec()),
            value: Some(tick("AAPL", T0 + s * 1000, 100.0 + s as f64, 10)),
        })
        .collect();
    records.insert(
        5,
        Raw {
            partition: 0,
            key: Some(b"AAPL".to_vec()),
            value: Some(b"this is not json".to_vec()),
        },
    );
    records.insert(
        9,
        Raw {
            partition: 0,
            key: Some(b"MSFT".to_vec()),
            value: Some(tick("AAPL", T0 + 7_500, 107.5, 1)),
        },
    );
    produce_raw(&topic, &records);
    let bars = format!("{topic}.bars");
    run_for(
        on_broker(&[
            "aggregate",
            "--topic",
            &topic,
            "--group",
            &unique("g-kinds"),
            "--from",
            "earliest",
            "--window",
            "10s",
            "--watermark",
            "1s",
            "--output-topic",
            &bars,
            "--output-retention",
            "forever",
            "--stop-at-end",
            "--no-console",
        ]),
        Duration::from_secs(120),
    )
    .assert_code(0);

    let ticks = consume(&[&topic]);
    ticks.assert_code(0);
    let first = ticks.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(
            "📈 AAPL   | $100.00 | Vol:     10 | ⏱  2026-01-01T00:00:00.000Z | \
             📍 Partition: 0 | 📌 Offset: 0 | 🕒 20"
        ),
        "{}",
        ticks.stdout
    );
    assert!(!ticks.stdout.contains('\x1b'), "no colour off a terminal");
    let other = ticks.stdout.lines().nth(5).unwrap_or_default();
    assert!(
        other.starts_with(
            "📦 key: AAPL | value: this is not json | 📍 Partition: 0 | 📌 Offset: 5 |"
        ),
        "{other}"
    );
    assert_eq!(ticks.stdout.lines().count(), 22, "{}", ticks.stdout);

    // The first window, [0 s, 10 s): AAPL at 100..109 (the record keyed MSFT is a dead letter).
    let shown = consume(&[&bars]);
    shown.assert_code(0);
    let bar = shown.stdout.lines().next().unwrap_or_default();
    assert!(
        bar.starts_with(
            "📊 AAPL   | 2026-01-01T00:00:00Z → 2026-01-01T00:00:10Z | \
             O 100.00 H 109.00 L 100.00 C 109.00 | VWAP 104.5000 | Vol: 100 | 10 trades | final | \
             📍 Partition: 0 | 📌 Offset: 0 | 🕒 2026-01-01T00:00:10.000Z"
        ),
        "{}",
        shown.stdout
    );

    let dead = consume(&[&format!("{topic}.dlq"), "--color", "always"]);
    dead.assert_code(0);
    let plain: String = strip_colour(&dead.stdout);
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 2, "{plain}");
    assert!(
        lines[0].starts_with("💀 invalid_json payload is not valid JSON")
            && lines[0].contains(&format!("| from {topic}/0@5 | value: this is not json |")),
        "{plain}"
    );
    assert!(
        lines[1].starts_with("💀 key_mismatch key \"MSFT\" does not match symbol AAPL")
            && lines[1].contains(&format!(
                "| from {topic}/0@9 | value: {{\"symbol\":\"AAPL\""
            )),
        "{plain}"
    );
    assert!(
        dead.stdout.contains('\x1b'),
        "--color always colours stdout"
    );
}

/// Text without its ANSI colour sequences.
fn strip_colour(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn json_lines_have_stable_fields_and_say_how_each_value_is_encoded() {
    let topic = unique("consume-json");
    create_topic(&topic, 1);
    write(
        &topic,
        &[
            Rec {
                key: Some(b"AAPL".as_slice()),
                value: Some(tick("AAPL", T0, 150.25, 7)),
                timestamp: Some(T0 + 125),
                headers: vec![
                    ("h", Some(b"1".as_slice())),
                    ("h", Some(b"2".as_slice())),
                    ("bin", Some(b"\xff".as_slice())),
                ],
                ..Rec::default()
            },
            Rec {
                value: Some(b"plain text".to_vec()),
                timestamp: Some(T0),
                ..Rec::default()
            },
            Rec {
                key: Some(b"\x00\xff".as_slice()),
                value: Some(b"\xde\xad\xbe\xef".to_vec()),
                timestamp: Some(T0),
                ..Rec::default()
            },
            Rec {
                key: Some(b"k".as_slice()),
                timestamp: Some(T0),
                headers: vec![("empty", None)],
                ..Rec::default()
            },
        ],
    );
    let lines = json(&[&topic]);
    assert_eq!(lines.len(), 4);
    let expected = serde_json::json!({
        "topic": topic,
        "partition": 0,
        "offset": 0,
        "timestamp": "2026-01-01T00:00:00.125Z",
        "timestamp_ms": T0 + 125,
        "key": "AAPL",
        "key_encoding": "text",
        "headers": [
            {"key": "h", "value": "1", "value_encoding": "text"},
            {"key": "h", "value": "2", "value_encoding": "text"},
            {"key": "bin", "value": "/w==", "value_encoding": "base64"},
        ],
        // As written: `1767225600`, an integer, is not turned into `1767225600.0`.
        "value": {"symbol": "AAPL", "price": 150.25, "volume": 7, "timestamp": 1_767_225_600},
        "value_encoding": "json",
    });
    assert_eq!(lines[0], expected);
    assert_eq!(lines[1]["key"], Value::Null);
    assert_eq!(lines[1]["key_encoding"], Value::Null);
    assert_eq!(lines[1]["value"], "plain text");
    assert_eq!(lines[1]["value_encoding"], "text");
    assert_eq!(lines[2]["key"], "AP8=");
    assert_eq!(lines[2]["key_encoding"], "base64");
    assert_eq!(lines[2]["value"], "3q2+7w==");
    assert_eq!(lines[2]["value_encoding"], "base64");
    assert_eq!(lines[3]["value"], Value::Null);
    assert_eq!(lines[3]["value_encoding"], Value::Null);
    assert_eq!(
        lines[3]["headers"],
        serde_json::json!([{"key": "empty", "value": null, "value_encoding": null}])
    );
    assert_eq!(lines[3]["offset"], 3);
}

#[test]
fn raw_writes_each_value_alone_on_its_line() {
    let topic = unique("consume-raw");
    create_topic(&topic, 1);
    values(&topic, 3);
    let run = consume(&[&topic, "-o", "raw"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "v0\nv1\nv2\n");
    assert!(run.stderr.contains("3 records from"), "{}", run.stderr);
}

#[test]
fn from_earliest_latest_an_offset_and_the_last_n() {
    let topic = unique("consume-from");
    create_topic(&topic, 1);
    values(&topic, 10);
    let offsets = |from: &str| -> Vec<i64> {
        places(&json(&[&topic, "--from", from]))
            .into_iter()
            .map(|(_, o)| o)
            .collect()
    };
    assert_eq!(offsets("earliest"), (0..10).collect::<Vec<_>>());
    assert_eq!(offsets("latest"), Vec::<i64>::new());
    assert_eq!(offsets("7"), vec![7, 8, 9]);
    assert_eq!(offsets("-2"), vec![8, 9]);
    // Beyond the end: said, and nothing to read.
    let run = consume(&[&topic, "--from", "50"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains(
            "partition 0 ends at offset 10: offset 50 is beyond it, so reading starts at the end"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn an_offset_before_the_first_record_left_starts_at_it_and_says_so() {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let topic = unique("consume-gone");
    create_topic(&topic, 1);
    values(&topic, 6);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .create()
        .expect("admin");
    let mut before = rdkafka::TopicPartitionList::new();
    before
        .add_partition_offset(&topic, 0, rdkafka::Offset::Offset(4))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(admin.delete_records(&before, &AdminOptions::new()))
        .expect("deleting the first 4 records");
    let run = consume(&[&topic, "--from", "1", "-o", "raw"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "v4\nv5\n");
    assert!(
        run.stderr.contains("partition 0 starts at offset 4"),
        "{}",
        run.stderr
    );
}

#[test]
fn from_a_time_starts_each_partition_at_its_first_record_at_or_after_it() {
    let topic = unique("consume-time");
    create_topic(&topic, 2);
    // Partition 0 at T0 + 0, 1, 2, … s; partition 1 half a second later each.
    let mut records = Vec::new();
    for i in 0..6 {
        for p in 0..2 {
            records.push(Rec {
                partition: p,
                value: Some(format!("p{p}-{i}").into_bytes()),
                timestamp: Some(T0 + i * 1000 + i64::from(p) * 500),
                ..Rec::default()
            });
        }
    }
    write(&topic, &records);
    let first = |from: &str| {
        let lines = json(&[&topic, "--from", from]);
        let mut firsts = std::collections::BTreeMap::new();
        for (p, o) in places(&lines) {
            firsts.entry(p).or_insert(o);
        }
        (firsts, lines.len())
    };
    // 3 s: partition 0's record at 3 s, partition 1's at 3.5 s (its 2.5 s one is earlier).
    let (firsts, n) = first("2026-01-01T00:00:03Z");
    assert_eq!(firsts, [(0, 3), (1, 3)].into());
    assert_eq!(n, 6);
    // 3.2 s, in another zone: partition 0 from 4 s on.
    let (firsts, _) = first("2026-01-01T01:00:03.200+01:00");
    assert_eq!(firsts, [(0, 4), (1, 3)].into());
    // After the last record: nothing.
    assert_eq!(first("2026-01-01T00:00:06Z").1, 0);

    // A time ago: records written 50, 30 and 10 minutes ago; -20m starts at the last.
    let ago = unique("consume-ago");
    create_topic(&ago, 1);
    let now = now_ms();
    let recs: Vec<Rec> = [50, 30, 10]
        .iter()
        .map(|m| Rec {
            value: Some(format!("{m} minutes ago").into_bytes()),
            timestamp: Some(now - m * 60_000),
            ..Rec::default()
        })
        .collect();
    write(&ago, &recs);
    let run = consume(&[&ago, "--from", "-20m", "-o", "raw"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "10 minutes ago\n");
    let run = consume(&[&ago, "--from", "-40m", "-o", "raw"]);
    assert_eq!(run.stdout, "30 minutes ago\n10 minutes ago\n");
}

#[test]
fn partitions_count_and_key_choose_what_is_read() {
    let topic = unique("consume-choose");
    create_topic(&topic, 3);
    let mut records = Vec::new();
    for i in 0..4 {
        for (p, key) in [(0, "AAPL"), (1, "MSFT"), (2, "AAPL")] {
            records.push(Raw {
                partition: p,
                key: Some(key.as_bytes().to_vec()),
                value: Some(format!("{key}-{p}-{i}").into_bytes()),
            });
        }
    }
    produce_raw(&topic, &records);
    let only_1 = json(&[&topic, "-p", "1"]);
    assert_eq!(places(&only_1), (0..4).map(|o| (1, o)).collect::<Vec<_>>());
    let two = json(&[&topic, "-p", "0", "--partition", "2"]);
    assert_eq!(two.len(), 8);
    assert!(two.iter().all(|v| v["partition"] != 1));

    let counted = json(&[&topic, "--count", "5"]);
    assert_eq!(counted.len(), 5);

    let keyed = json(&[&topic, "--key", "MSFT"]);
    assert_eq!(keyed.len(), 4);
    assert!(keyed.iter().all(|v| v["key"] == "MSFT"), "{keyed:?}");
    let keyed = json(&[&topic, "--key", "AAPL", "--count", "3", "-p", "2"]);
    assert_eq!(places(&keyed), vec![(2, 0), (2, 1), (2, 2)]);

    let run = consume(&[&topic, "-p", "7"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!(
            "topic `{topic}` has no partition 7: it has 3 partitions (0 to 2)"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn without_follow_an_empty_topic_ends_at_once_and_a_busy_one_at_its_end_at_start() {
    let topic = unique("consume-empty");
    create_topic(&topic, 3);
    let started = Instant::now();
    let run = consume(&[&topic]);
    run.assert_code(0);
    assert_eq!(run.stdout, "");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // Records keep coming while it reads: it still ends, having read at least what was
    // there at start, in order and without gaps.
    let busy = unique("consume-busy");
    create_topic(&busy, 1);
    values(&busy, 200);
    let (stop, stopped) = mpsc::channel::<()>();
    let writer = {
        let busy = busy.clone();
        std::thread::spawn(move || {
            let p = producer(&[]);
            let mut n = 0;
            while stopped.try_recv().is_err() {
                send(
                    &p,
                    &busy,
                    &Rec {
                        value: Some(format!("more{n}").into_bytes()),
                        ..Rec::default()
                    },
                );
                p.poll(Duration::from_millis(5));
                n += 1;
            }
            p.flush(Duration::from_secs(10)).expect("flushing");
        })
    };
    let run = consume(&[&busy, "-o", "json"]);
    let _ = stop.send(());
    writer.join().unwrap();
    run.assert_code(0);
    let offsets: Vec<i64> = run
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["offset"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert!(offsets.len() >= 200, "{}", offsets.len());
    assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
}

/// Waits for a child whose stdout the test took: its exit code and stderr.
fn finish(mut child: std::process::Child, limit: Duration) -> (Option<i32>, String) {
    let mut err = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = exit_within(&mut child, limit, || {});
    let stderr = reader.join().unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("no exit within {limit:?}:\n{stderr}"));
    (status.code(), stderr)
}

/// `consume ARGS` with its stdout read line by line as it comes.
struct Live {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Live {
    fn spawn(args: &[&str]) -> Live {
        let mut full = vec!["consume"];
        full.extend_from_slice(args);
        let mut cmd = on_broker(&full);
        cmd.stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("starting stockstream");
        let out = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Live { child, lines }
    }

    #[track_caller]
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a line within 30 s")
    }
}

#[test]
fn follow_shows_records_written_after_it_started_and_stops_on_ctrl_c() {
    let topic = unique("consume-follow");
    create_topic(&topic, 2);
    values(&topic, 2);
    let live = Live::spawn(&[&topic, "--follow", "-o", "raw"]);
    assert_eq!(live.next_line(), "v0");
    assert_eq!(live.next_line(), "v1");
    // Written after it has read to the end.
    produce_raw(
        &topic,
        &[Raw {
            partition: 1,
            key: None,
            value: Some(b"later".to_vec()),
        }],
    );
    assert_eq!(live.next_line(), "later");
    let signalled = Instant::now();
    send_signal(live.child.id(), libc::SIGINT);
    let (code, stderr) = finish(live.child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "stopped {:?} after Ctrl+C",
        signalled.elapsed()
    );
    assert!(stderr.contains("3 records from"), "{stderr}");
}

#[test]
fn follow_with_count_ends_after_that_many_new_records() {
    let topic = unique("consume-follow-count");
    create_topic(&topic, 1);
    let mut cmd = on_broker(&[
        "consume", &topic, "--follow", "--from", "latest", "--count", "2", "-o", "raw",
    ]);
    cmd.stdout(Stdio::piped());
    let child = cmd.spawn().expect("starting stockstream");
    // Written after it started (once it reads from the end, only new records count).
    std::thread::sleep(Duration::from_secs(2));
    values(&topic, 3);
    let run = wait_for(child, Duration::from_secs(30));
    run.assert_code(0);
    assert_eq!(run.stdout, "v0\nv1\n");
}

#[test]
fn read_committed_hides_aborted_and_open_transactions_read_uncommitted_shows_them() {
    let topic = unique("consume-txn");
    create_topic(&topic, 1);
    let p = producer(&[
        ("transactional.id", &unique("consume-txn")),
        ("transaction.timeout.ms", "60000"),
    ]);
    let t = Duration::from_secs(30);
    p.init_transactions(t).expect("init_transactions");
    let txn = |values: &[&str], commit: Option<bool>| {
        p.begin_transaction().expect("begin");
        for v in values {
            send(
                &p,
                &topic,
                &Rec {
                    value: Some(v.as_bytes().to_vec()),
                    ..Rec::default()
                },
            );
        }
        p.flush(t).expect("flush");
        match commit {
            Some(true) => p.commit_transaction(t).expect("commit"),
            Some(false) => p.abort_transaction(t).expect("abort"),
            None => {}
        }
    };
    txn(&["committed-1", "committed-2"], Some(true));
    txn(&["aborted-1", "aborted-2"], Some(false));
    txn(&["committed-3"], Some(true));
    txn(&["open-1"], None);

    let committed = consume(&[&topic, "-o", "raw"]);
    committed.assert_code(0);
    assert_eq!(committed.stdout, "committed-1\ncommitted-2\ncommitted-3\n");
    let all = consume(&[&topic, "-o", "raw", "--isolation", "read_uncommitted"]);
    all.assert_code(0);
    assert_eq!(
        all.stdout,
        "committed-1\ncommitted-2\naborted-1\naborted-2\ncommitted-3\nopen-1\n"
    );
    p.abort_transaction(t).expect("abort the open one");
}

#[test]
fn a_group_commits_what_it_read_and_the_next_run_goes_on_from_there() {
    let topic = unique("consume-group");
    create_topic(&topic, 1);
    values(&topic, 10);
    let group = unique("consume-g");
    let read = |extra: &[&str]| {
        let mut args = vec![topic.as_str(), "--group", &group, "-o", "raw"];
        args.extend_from_slice(extra);
        let run = consume(&args);
        run.assert_code(0);
        run.stdout
    };
    assert_eq!(read(&["--count", "4"]), "v0\nv1\nv2\nv3\n");
    assert_eq!(read(&["--count", "3"]), "v4\nv5\nv6\n");
    assert_eq!(read(&[]), "v7\nv8\nv9\n");
    assert_eq!(read(&[]), "", "all read and committed");
    // --from wins over the committed offsets.
    assert_eq!(read(&["--from", "-1"]), "v9\n");
    // Without a group nothing was committed for anyone.
    assert_eq!(
        consume(&[&topic, "-o", "raw", "--count", "1"]).stdout,
        "v0\n"
    );
}

#[test]
fn unreachable_brokers_exit_3_and_a_missing_topic_exits_4_with_a_hint() {
    assert_unreachable(&["consume", "--timeout", "2s"]);
    let run = consume(&[&unique("consume-missing")]);
    run.assert_code(4);
    assert!(
        run.stderr.contains("does not exist") && run.stderr.contains("stockstream topic list"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn a_reader_that_goes_away_ends_it_quietly() {
    let topic = unique("consume-head");
    create_topic(&topic, 1);
    run_for(
        on_broker(&[
            "produce", "--topic", &topic, "--rate", "max", "--count", "5000",
        ]),
        Duration::from_secs(60),
    )
    .assert_code(0);
    let mut cmd = on_broker(&["consume", &topic, "-o", "json"]);
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("starting stockstream");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut first = [0u8; 100];
    out.read_exact(&mut first).expect("some output");
    drop(out);
    let (code, stderr) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(first.starts_with(b"{\"topic\":"));
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("CRITICAL") && !stderr.contains("panic"),
        "{stderr}"
    );
}
