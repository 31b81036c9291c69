//! The broker fails under a running `stockstream`: killed and restarted, frozen, or gone for
//! longer than the delivery timeout. Each record carries its number (`produce --sequence`),
//! so the topic can be checked record by record: nothing lost, nothing doubled, order kept
//! per partition, and every failure named exactly.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::support::broker::Dedicated;
use crate::support::kafka::{create_topic_on, end_offsets_on, read_all_on, Read};
use crate::support::{run_for, stockstream, summary_count, Run, Running};

pub(crate) const RECORDS: u64 = 1_000_000;

/// `produce --rate max --count RECORDS --sequence` on `bootstrap`.
fn produce(bootstrap: &str, topic: &str, extra: &[&str]) -> Running {
    let mut cmd = stockstream();
    cmd.args([
        "-b", bootstrap, "produce", "--topic", topic, "--rate", "max",
    ])
    .args(["--count", &RECORDS.to_string(), "--sequence"])
    .args(extra);
    Running::spawn(cmd)
}

/// Waits until `topic` holds at least `records`, and checks that the producer is not done
/// yet (the fault must hit it mid-run).
pub(crate) fn wait_until_landed(bootstrap: &str, topic: &str, records: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let landed = end_offsets_on(bootstrap, topic);
        if landed >= records {
            assert!(
                landed < i64::try_from(RECORDS).unwrap(),
                "the producer finished before the fault; raise RECORDS"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {landed} records landed in 60s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each record's number from its `stockstream.seq` header.
fn number(r: &Read) -> u64 {
    let (_, value) = r
        .headers
        .iter()
        .find(|(k, _)| k == "stockstream.seq")
        .unwrap_or_else(|| panic!("a record without stockstream.seq: {:?}", r.headers));
    value.parse().expect("a number in stockstream.seq")
}

/// The numbers in the topic, checked to be unique and rising with the offset in every
/// partition (what the producer sent first to a partition comes first in it).
fn numbers_in(records: &[Read], count: u64) -> BTreeSet<u64> {
    let mut by_partition: HashMap<i32, Vec<(i64, u64)>> = HashMap::new();
    let mut all = BTreeSet::new();
    for r in records {
        let n = number(r);
        assert!((1..=count).contains(&n), "record number {n} out of range");
        assert!(all.insert(n), "record #{n} is in the topic twice");
        by_partition
            .entry(r.partition)
            .or_default()
            .push((r.offset, n));
    }
    for (partition, mut seen) in by_partition {
        seen.sort_unstable();
        for w in seen.windows(2) {
            assert!(
                w[0].1 < w[1].1,
                "partition {partition}: #{} at offset {} before #{} at offset {}",
                w[0].1,
                w[0].0,
                w[1].1,
                w[1].0
            );
        }
    }
    all
}

/// The numbers a failure line lists as ranges (`1-3,7`), or none without that line. A
/// long list is cut short on the line and written in full to the file the line names.
fn listed(stderr: &str, label: &str, key_in_file: &str) -> BTreeSet<u64> {
    let Some(line) = stderr.lines().find(|l| l.contains(label)) else {
        return BTreeSet::new();
    };
    let list = match line.split_once("(all of them in ") {
        Some((_, rest)) => {
            let path = rest.trim_end().trim_end_matches(')');
            let text = std::fs::read_to_string(path).expect("the file of failed records");
            text.lines()
                .find_map(|l| l.strip_prefix(key_in_file))
                .expect("the list in the file")
                .trim()
                .to_string()
        }
        None => line.rsplit("): ").next().unwrap().trim().to_string(),
    };
    let mut out = BTreeSet::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        out.extend(a..=b);
    }
    out
}

/// The run time in the summary line ("… in 12.34s (…").
fn summary_seconds(stderr: &str) -> f64 {
    let line = stderr.lines().find(|l| l.contains("Summary:")).unwrap();
    let after = line.rsplit(" in ").next().unwrap();
    after.split('s').next().unwrap().parse().unwrap()
}

fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The producer rode the fault out: exit 0, the summary counts every record as delivered,
/// and the topic holds each of them exactly once, in order per partition.
fn assert_all_delivered_once(run: &Run, bootstrap: &str, topic: &str) {
    assert_delivered_once(run, bootstrap, topic, RECORDS);
}

/// `assert_all_delivered_once` for a run that numbered `records` records.
pub(crate) fn assert_delivered_once(run: &Run, bootstrap: &str, topic: &str, records: u64) {
    run.assert_code(0);
    assert_eq!(summary_count(&run.stderr, "delivered"), records);
    assert_eq!(summary_count(&run.stderr, "failed"), 0);
    let numbers = numbers_in(&read_all_on(bootstrap, topic), records);
    assert_eq!(numbers.len() as u64, records, "records in the topic");
}

/// A broker of the test's own, with `produce … EXTRA` running against `topic` on it and
/// at least 50,000 records landed: the moment to inject a fault.
fn produce_mid_run(topic: &str, extra: &[&str]) -> (Dedicated, String, Running) {
    let kafka = Dedicated::start();
    let bootstrap = kafka.bootstrap.clone();
    create_topic_on(&bootstrap, topic, 3);
    let job = produce(&bootstrap, topic, extra);
    wait_until_landed(&bootstrap, topic, 50_000);
    (kafka, bootstrap, job)
}

/// `stockstream -b BOOTSTRAP ARGS --timeout 3s` against a broker that is down: exit 3,
/// naming the broker, within `bound`.
#[track_caller]
pub(crate) fn assert_reported_down(bootstrap: &str, args: &[&str], bound: Duration) {
    let started = Instant::now();
    let mut cmd = stockstream();
    cmd.args(["-b", bootstrap])
        .args(args)
        .args(["--timeout", "3s"]);
    let run = run_for(cmd, bound * 2);
    run.assert_code(3);
    assert!(
        run.stderr
            .contains(&format!("could not reach Kafka at {bootstrap}")),
        "{args:?}: {}",
        run.stderr
    );
    assert!(
        started.elapsed() < bound,
        "{args:?} took {:?}",
        started.elapsed()
    );
}

#[test]
fn produce_rides_out_a_broker_killed_and_restarted() {
    let topic = "faults-kill";
    let (mut kafka, bootstrap, job) = produce_mid_run(topic, &[]);
    kafka.kill();
    std::thread::sleep(Duration::from_secs(2));
    kafka.resume();
    let run = job.wait(Duration::from_secs(180));
    assert!(
        run.stderr.contains("Disconnected") || run.stderr.contains("Connection refused"),
        "the producer never noticed the broker go:\n{}",
        tail(&run.stderr)
    );
    assert_all_delivered_once(&run, &bootstrap, topic);
}

#[test]
fn produce_rides_out_a_broker_frozen_for_20_seconds() {
    let topic = "faults-freeze";
    let (kafka, bootstrap, job) = produce_mid_run(topic, &[]);
    kafka.freeze();
    std::thread::sleep(Duration::from_secs(20));
    kafka.thaw();
    let run = job.wait(Duration::from_secs(180));
    assert_all_delivered_once(&run, &bootstrap, topic);
    // The producer waited out the freeze (unfrozen, it needs a few seconds at most).
    let seconds = summary_seconds(&run.stderr);
    assert!(
        seconds >= 20.0,
        "the run took {seconds}s, less than the freeze"
    );
}

#[test]
fn a_broker_gone_past_the_delivery_timeout_is_reported_record_by_record() {
    let topic = "faults-gone";
    let (mut kafka, bootstrap, job) = produce_mid_run(topic, &["--delivery-timeout", "5s"]);
    kafka.kill();
    let run = job.wait(Duration::from_secs(120));
    kafka.resume();

    run.assert_code(1);
    let not_delivered = listed(&run.stderr, "Not delivered (", "not_delivered: ");
    let possibly = listed(
        &run.stderr,
        "Possibly delivered, unconfirmed (",
        "possibly_delivered: ",
    );
    assert!(
        !not_delivered.is_empty(),
        "no record reported as not delivered:\n{}",
        tail(&run.stderr)
    );
    assert!(not_delivered.is_disjoint(&possibly));
    if let Some((_, rest)) = run.stderr.split_once("(all of them in ") {
        let _ = std::fs::remove_file(rest.split(')').next().unwrap());
    }
    let delivered = summary_count(&run.stderr, "delivered");
    let failed = summary_count(&run.stderr, "failed");
    assert_eq!(delivered + failed, RECORDS, "every record is counted once");
    assert_eq!(
        failed,
        (not_delivered.len() + possibly.len()) as u64,
        "every failed record is named"
    );

    let in_topic = numbers_in(&read_all_on(&bootstrap, topic), RECORDS);
    assert!(
        in_topic.is_disjoint(&not_delivered),
        "a record reported as not delivered is in the topic"
    );
    // Every record is in the topic, or named as failed; the delivered ones are all there.
    let confirmed: BTreeSet<u64> = in_topic.difference(&possibly).copied().collect();
    assert_eq!(
        confirmed.len() as u64,
        delivered,
        "delivered records in the topic"
    );
    for n in 1..=RECORDS {
        assert!(
            in_topic.contains(&n) || not_delivered.contains(&n) || possibly.contains(&n),
            "record #{n} is neither in the topic nor reported"
        );
    }
}

#[test]
fn topic_commands_report_a_broker_that_is_down_or_restarting_within_their_timeout() {
    let mut kafka = Dedicated::start();
    let bootstrap = kafka.bootstrap.clone();
    create_topic_on(&bootstrap, "faults-admin", 2);
    kafka.kill();
    let commands: [&[&str]; 4] = [
        &["topic", "list"],
        &["topic", "describe", "faults-admin"],
        &["topic", "create", "faults-admin-2"],
        &["topic", "delete", "faults-admin", "--yes"],
    ];
    for args in commands {
        assert_reported_down(&bootstrap, args, Duration::from_secs(10));
    }

    // While the broker starts again, each command either answers or reports, in time.
    let restart = std::thread::spawn(move || {
        kafka.resume();
        kafka
    });
    let mut answered = false;
    let deadline = Instant::now() + Duration::from_secs(150);
    while !answered {
        assert!(Instant::now() < deadline, "the broker never answered again");
        let mut cmd = stockstream();
        cmd.args(["-b", &bootstrap, "topic", "describe", "faults-admin"])
            .args(["--timeout", "2s", "-o", "json"]);
        let run = run_for(cmd, Duration::from_secs(20));
        assert!(
            matches!(run.code, Some(0 | 3)),
            "exit {:?}: {}",
            run.code,
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        answered = run.code == Some(0);
        if answered {
            let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
            assert_eq!(v["partitions"].as_array().map(Vec::len), Some(2), "{v}");
        }
    }
    drop(restart.join().unwrap());
}

#[test]
fn aggregate_against_a_broker_that_is_down_reports_it_within_its_timeout() {
    let mut kafka = Dedicated::start();
    let bootstrap = kafka.bootstrap.clone();
    create_topic_on(&bootstrap, "faults-agg", 2);
    kafka.kill();
    assert_reported_down(
        &bootstrap,
        &["aggregate", "--topic", "faults-agg"],
        Duration::from_secs(15),
    );
}
