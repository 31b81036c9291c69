//! `aggregate` against hostile input on the real broker: a record larger than the
//! dead-letter topic takes, keys that do not name the record's symbol, a tick dated a day
//! ahead, and an output topic that refuses every bar. Each time every input record ends up
//! in exactly one place, each (symbol, window) has at most one final bar, and nothing
//! loops or stalls.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};

use crate::support::kafka::read_committed;
use crate::support::model::{
    assert_bars_match, assert_dead_letters, expected, log_of, DeadLetters, Logged, Tick,
};
use crate::support::{broker, on_broker, run_for, summary_count, unique, Run, Running};

/// 2026-01-01T00:00:00Z, in ms: the data set lives well in the past.
const T0: i64 = 1_767_225_600_000;

/// One input record: its partition, key and value.
struct In {
    partition: i32,
    key: Option<&'static str>,
    value: Vec<u8>,
}

/// A tick `at_s` seconds after T0, keyed by its symbol.
fn tick(partition: i32, symbol: &'static str, at_s: f64, price: f64) -> In {
    tick_at(
        partition,
        Some(symbol),
        symbol,
        T0 as f64 / 1000.0 + at_s,
        price,
    )
}

fn tick_at(partition: i32, key: Option<&'static str>, symbol: &str, unix_s: f64, price: f64) -> In {
    In {
        partition,
        key,
        value: format!(
            r#"{{"symbol":"{symbol}","price":{price},"volume":10,"timestamp":{unix_s:.3}}}"#
        )
        .into_bytes(),
    }
}

/// A steady stream of AAPL (partition 0) and TSLA (partition 1) over `seconds`.
fn steady(from_s: u32, seconds: u32) -> Vec<In> {
    let mut out = Vec::new();
    for s in from_s..from_s + seconds {
        out.push(tick(0, "AAPL", f64::from(s) + 0.2, 100.0 + f64::from(s)));
        out.push(tick(1, "TSLA", f64::from(s) + 0.5, 250.0 - f64::from(s)));
    }
    out
}

/// Creates `topic` with 3 partitions and `configs` through stockstream itself.
fn create(topic: &str, configs: &[&str]) {
    let mut args = vec!["topic", "create", topic, "--partitions", "3"];
    for c in configs {
        args.extend_from_slice(&["--config", c]);
    }
    run_for(on_broker(&args), Duration::from_secs(60)).assert_code(0);
}

/// Writes the records in order, with a producer that takes records of several MB.
fn write(topic: &str, records: &[In]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("enable.idempotence", "true")
        .set("message.max.bytes", "5000000")
        .create()
        .expect("producer");
    for r in records {
        let mut record: BaseRecord<'_, str, [u8]> = BaseRecord::to(topic)
            .partition(r.partition)
            .payload(&r.value[..]);
        if let Some(k) = r.key {
            record = record.key(k);
        }
        producer.send(record).map_err(|(e, _)| e).expect("queueing");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flushing");
}

/// The input log with the verdicts the test expects (partition, index in the partition →
/// reason) laid over the model's, which knows only each record's bytes.
fn log_with(topic: &str, verdicts: &BTreeMap<(i32, i64), &'static str>) -> Vec<Logged> {
    let mut log = log_of(topic);
    for l in &mut log {
        if let Some(reason) = verdicts.get(&(l.partition, l.offset)) {
            l.tick = Tick::Bad(reason);
        }
    }
    log
}

/// Runs aggregate (window 2s, lateness 1s, idle 2s) from the start of `topic`.
fn aggregate(topic: &str, group: &str, extra: &[&str]) -> Running {
    let output = format!("{topic}.bars");
    let mut args = vec![
        "-v",
        "aggregate",
        "--topic",
        topic,
        "--group",
        group,
        "--from",
        "earliest",
        "--output-topic",
        &output,
        // Bars of 2026-01-01 outlive the broker's default retention (7 days).
        "--output-retention",
        "forever",
        "--window",
        "2s",
        "--watermark",
        "1s",
        "--idle-timeout",
        "2s",
        "--progress-interval",
        "1s",
        "--instance-id",
        "hostile",
    ];
    args.extend_from_slice(extra);
    Running::spawn(on_broker(&args))
}

/// Waits for every expected bar and dead letter, stops the job, and checks both topics.
#[track_caller]
fn check(topic: &str, job: Running, log: &[Logged]) -> (Run, Vec<crate::support::kafka::Read>) {
    let (bars, dead) = expected(log, 2_000, 2_000, 1_000);
    let out = read_committed(
        &format!("{topic}.bars"),
        bars.len(),
        Duration::from_secs(60),
        Duration::from_secs(2),
    );
    let run = job.signal_and_wait(libc::SIGINT, Duration::from_secs(60));
    run.assert_code(0);
    assert_bars_match(&out, &bars, 2_000);
    assert_eq!(out.len(), bars.len(), "each bar once");
    let dlq = dead_letters(topic, &dead);
    (run, dlq)
}

fn dead_letters(topic: &str, dead: &DeadLetters) -> Vec<crate::support::kafka::Read> {
    read_committed(
        &format!("{topic}.dlq"),
        dead.len(),
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
}

fn header<'a>(r: &'a crate::support::kafka::Read, key: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn an_oversized_record_gets_a_cut_dead_letter_and_the_job_goes_on() {
    let topic = unique("hostile-big");
    create(&topic, &["max.message.bytes=3000000"]);
    // 1 MiB, a valid tick apart from its size: only the size rule can reject it.
    let big = format!(
        r#"{{"symbol":"AAPL","price":1,"volume":1,"timestamp":1767225605,"pad":"{}"}}"#,
        "x".repeat(1 << 20)
    )
    .into_bytes();
    let big_len = big.len();
    let mut records = steady(0, 6);
    records.push(In {
        partition: 0,
        key: Some("AAPL"),
        value: big.clone(),
    });
    records.extend(steady(6, 6));
    write(&topic, &records);
    let total = records.len();

    // A backlog run stops at the end, having read each record once.
    let group = unique("g-big");
    let first = aggregate(&topic, &group, &["--stop-at-end"]).wait(Duration::from_secs(90));
    first.assert_code(0);
    assert_eq!(summary_count(&first.stderr, "records read"), total as u64);
    assert!(!first.stderr.contains("queueing"), "{}", first.stderr);

    // A second run of the same group closes the last windows; the two together wrote
    // each bar and the dead letter once.
    let log = log_of(&topic);
    let (_, dlq) = check(&topic, aggregate(&topic, &group, &[]), &log);
    assert_eq!(dlq.len(), 1, "one dead letter");
    let d = &dlq[0];
    assert_eq!(header(d, "stockstream.error.reason"), Some("too_large"));
    assert_eq!(header(d, "stockstream.error.truncated"), Some("true"));
    assert_eq!(
        header(d, "stockstream.source.size"),
        Some(big_len.to_string().as_str())
    );
    assert!(d.payload.len() < 1_048_588, "fits the default 1 MB topic");
    assert!(d.payload.len() > 990_000, "keeps what fits");
    assert!(big.starts_with(&d.payload), "a prefix of the original");
    assert_eq!(d.key.as_deref(), Some(&b"AAPL"[..]));
}

#[test]
fn bars_older_than_the_output_topics_retention_are_announced_once() {
    let topic = unique("hostile-old");
    create(&topic, &[]);
    write(&topic, &steady(0, 6));
    let output = format!("{topic}.bars");
    // The broker's default retention for the output topic (the other tests keep it
    // forever): the data set is from January, so its bars are older than that.
    let run = run_for(
        on_broker(&[
            "aggregate",
            "--topic",
            &topic,
            "--group",
            &unique("g-old"),
            "--from",
            "earliest",
            "--output-topic",
            &output,
            "--window",
            "2s",
            "--watermark",
            "1s",
            "--stop-at-end",
            "--no-console",
        ]),
        Duration::from_secs(90),
    );
    run.assert_code(0);
    // Said when aggregate creates the topic, and once at the first such bar.
    assert!(
        run.stderr.contains("keeps bars for 7days (retention.ms)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("older than `").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn a_key_that_is_not_the_symbol_is_a_dead_letter_and_no_bar_doubles() {
    let topic = unique("hostile-key");
    create(&topic, &[]);
    let mut records = steady(0, 10);
    // AAPL's ticks in partition 1, under TSLA's key and under no key: had they been
    // aggregated, partition 1 would emit its own AAPL bars for windows partition 0 has.
    let at = T0 as f64 / 1000.0 + 3.3;
    records.push(tick_at(1, Some("MSFT"), "AAPL", at, 999.0));
    records.push(tick_at(1, None, "AAPL", at, 999.0));
    records.push(tick_at(1, Some("aapl"), "AAPL", at, 999.0));
    records.extend(steady(10, 4));
    write(&topic, &records);
    let offsets = (10..13).map(|o| ((1, o), "key_mismatch")).collect();
    let log = log_with(&topic, &offsets);
    let (_, dlq) = check(&topic, aggregate(&topic, &unique("g-key"), &[]), &log);
    let (_, dead) = expected(&log, 2_000, 2_000, 1_000);
    assert_eq!(dead.len(), 3);
    assert_dead_letters(&dlq, &dead, &topic, &log);
    let no_key = dlq
        .iter()
        .find(|d| d.key.is_none())
        .expect("the unkeyed one");
    assert!(
        header(no_key, "stockstream.error.message").is_some_and(|m| m.contains("no key")),
        "{:?}",
        no_key.headers
    );
}

#[test]
fn a_tick_dated_a_day_ahead_is_a_dead_letter_and_moves_no_watermark() {
    let topic = unique("hostile-future");
    create(&topic, &[]);
    let mut records = steady(0, 5);
    let tomorrow = (crate::support::now_ms() + 86_400_000) as f64 / 1000.0;
    records.push(tick_at(0, Some("AAPL"), "AAPL", tomorrow, 1.0));
    records.extend(steady(5, 8));
    write(&topic, &records);
    let verdicts = [((0, 5), "future")].into_iter().collect();
    let log = log_with(&topic, &verdicts);
    let (run, dlq) = check(&topic, aggregate(&topic, &unique("g-fut"), &[]), &log);
    // The one dead letter is the future tick: nothing after it was judged late.
    assert_eq!(dlq.len(), 1, "{:?}", dlq);
    assert_eq!(header(&dlq[0], "stockstream.error.reason"), Some("future"));
    let message = header(&dlq[0], "stockstream.error.message").unwrap_or_default();
    assert!(message.contains("ahead of the wall clock"), "{message}");
    // A watermark far from today shows its date.
    assert!(
        run.stderr.contains("p0=2026-01-01 00:00:"),
        "{}",
        run.stderr
    );
}

/// Sets one config of a topic with a plain admin client.
fn alter(topic: &str, key: &str, value: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .create()
        .expect("admin client");
    let change = AlterConfig::new(ResourceSpecifier::Topic(topic)).set(key, value);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let results = rt
        .block_on(admin.alter_configs([&change], &AdminOptions::new()))
        .expect("alter_configs");
    for r in results {
        r.unwrap_or_else(|(_, e)| panic!("altering {topic}: {e}"));
    }
}

/// An output topic that refuses every bar (bars are ~250 bytes, it takes 100): the job
/// stops once, naming the bar and the cause, and commits nothing.
fn refused_run(topic: &str, group: &str, extra: &[&str]) {
    create(topic, &[]);
    create(&format!("{topic}.bars"), &["max.message.bytes=100"]);
    write(topic, &steady(0, 10));
    let failed = aggregate(topic, group, extra).wait(Duration::from_secs(60));
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    assert!(
        failed.stderr.contains("the brokers refused the ")
            && failed.stderr.contains("bar of window")
            && failed.stderr.contains("too large"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        failed.stderr.matches("the brokers refused").count(),
        1,
        "said once, not retried: {}",
        failed.stderr
    );
    let summary = failed
        .stderr
        .lines()
        .find(|l| l.contains("Summary:"))
        .unwrap_or_default();
    assert!(summary.contains("Summary: 20 records read"), "{summary}");
    // No input offset was committed: the group starts over.
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition(topic, p);
    }
    let committed =
        rdkafka::consumer::Consumer::committed_offsets(&consumer, tpl, Duration::from_secs(10))
            .expect("committed offsets");
    for e in committed.elements() {
        assert_eq!(
            e.offset(),
            rdkafka::Offset::Invalid,
            "partition {}",
            e.partition()
        );
    }
}

#[test]
fn a_bar_the_broker_refuses_for_good_stops_the_job_and_a_restart_carries_on() {
    let topic = unique("hostile-refused");
    let group = unique("g-ref");
    refused_run(&topic, &group, &[]);
    // Nothing of it was committed.
    let none = read_committed(
        &format!("{topic}.bars"),
        0,
        Duration::from_secs(10),
        Duration::from_secs(2),
    );
    assert!(none.is_empty(), "{none:?}");
    // Fixed, the next run carries on from the last commit: each bar once.
    alter(&format!("{topic}.bars"), "max.message.bytes", "1048588");
    let log = log_of(&topic);
    check(&topic, aggregate(&topic, &group, &[]), &log);
}

#[test]
fn at_least_once_a_refused_bar_stops_the_job_too() {
    let topic = unique("hostile-refused-alo");
    let group = unique("g-ref-alo");
    refused_run(&topic, &group, &["--guarantee", "at-least-once"]);
    // Fixed, the next run writes every bar (at least once: it starts over).
    alter(&format!("{topic}.bars"), "max.message.bytes", "1048588");
    let log = log_of(&topic);
    let (bars, _) = expected(&log, 2_000, 2_000, 1_000);
    let job = aggregate(&topic, &group, &["--guarantee", "at-least-once"]);
    let out = read_committed(
        &format!("{topic}.bars"),
        bars.len(),
        Duration::from_secs(60),
        Duration::from_secs(2),
    );
    job.signal_and_wait(libc::SIGINT, Duration::from_secs(60))
        .assert_code(0);
    assert_bars_match(&out, &bars, 2_000);
}
