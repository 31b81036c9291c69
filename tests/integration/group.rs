//! `stockstream group …` on the real broker: the groups, members, offsets, lag and aggregate
//! checkpoints it shows are the broker's (read back with a plain client); a reset changes
//! nothing without --execute and exactly its plan with it; nothing is reset or deleted under
//! a live member; missing things have their exit codes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::support::kafka::{create_topic, produce_raw, Raw};
use crate::support::terminal::Terminal;
use crate::support::{assert_unreachable, broker, on_broker, run_for, summary_count, unique, Run};

fn group(args: &[&str]) -> Run {
    let mut full = vec!["group"];
    full.extend_from_slice(args);
    run_for(on_broker(&full), Duration::from_secs(60))
}

/// The JSON a successful run printed.
#[track_caller]
fn ok_json(run: &Run) -> Value {
    run.assert_code(0);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// A plain client of `group` that never joins it: for committing and reading offsets
/// independently of stockstream.
fn outsider(group_id: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// Commits `offsets` (partition, offset) of `topic` for the (empty) group.
fn commit(group_id: &str, topic: &str, offsets: &[(i32, i64)]) {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
            .unwrap();
    }
    outsider(group_id)
        .commit(&tpl, CommitMode::Sync)
        .expect("committing test offsets");
}

/// The group's committed offset on each of `partitions` of `topic` (`None`: nothing).
fn committed(group_id: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let answer = outsider(group_id)
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("reading committed offsets");
    (0..partitions)
        .map(
            |p| match answer.find_partition(topic, p).unwrap().offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            },
        )
        .collect()
}

/// `count` records into each partition (value `x`, no key), in one go.
fn fill(topic: &str, counts: &[usize]) {
    let records: Vec<Raw> = counts
        .iter()
        .enumerate()
        .flat_map(|(p, n)| {
            (0..*n).map(move |_| Raw {
                partition: i32::try_from(p).unwrap(),
                key: None,
                value: Some(b"x".to_vec()),
            })
        })
        .collect();
    produce_raw(topic, &records);
}

#[test]
fn list_shows_a_group_with_its_state_type_members_and_topics() {
    let topic = unique("group-list");
    create_topic(&topic, 2);
    let name = unique("g-list");
    commit(&name, &topic, &[(1, 0)]);
    let listed = ok_json(&group(&["list", "--topics", "-o", "json"]));
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not listed: {listed}"));
    assert_eq!(entry["state"], "Empty", "{entry}");
    assert_eq!(entry["members"], 0, "{entry}");
    assert!(entry["protocol_type"].is_null(), "offsets only: {entry}");
    assert_eq!(entry["topics"], serde_json::json!([topic]), "{entry}");
    let table = group(&["list"]);
    table.assert_code(0);
    assert!(table.stdout.starts_with("GROUP"), "{}", table.stdout);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with(&name) && l.contains("Empty")),
        "{}",
        table.stdout
    );
}

/// A tick of `symbol` at `T0 + at_s` seconds, keyed by its symbol.
fn tick(partition: i32, symbol: &str, at_s: i64) -> Raw {
    /// 2026-01-01T00:00:00Z, in s.
    const T0: i64 = 1_767_225_600;
    Raw {
        partition,
        key: Some(symbol.as_bytes().to_vec()),
        value: Some(
            format!(
                r#"{{"symbol":"{symbol}","price":100.5,"volume":3,"timestamp":{}}}"#,
                T0 + at_s
            )
            .into_bytes(),
        ),
    }
}

/// `aggregate` on `topic` in `group` until it has caught up, with hour-long windows (so
/// that they stay open and the checkpoint carries a replay offset) and 2 s of lateness.
fn aggregate_to_the_end(topic: &str, group_id: &str) -> Run {
    let output = format!("{topic}.bars");
    let run = run_for(
        on_broker(&[
            "aggregate",
            "--topic",
            topic,
            "--group",
            group_id,
            "--from",
            "earliest",
            "--stop-at-end",
            "--output-topic",
            &output,
            "--output-retention",
            "forever",
            "--window",
            "1h",
            "--watermark",
            "2s",
            "--idle-timeout",
            "10m",
            "--instance-id",
            "group-test",
        ]),
        Duration::from_secs(90),
    );
    run.assert_code(0);
    run
}

/// Waits until the group has no member: a stopped aggregate is a static member, which the
/// broker keeps until its session times out (10 s).
fn until_without_members(group_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let d = ok_json(&group(&["describe", group_id, "-o", "json"]));
        if d["members"].as_array().unwrap().is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "the members never left: {d}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_aggregate_group_shows_its_lag_and_checkpoints_and_a_reset_drops_them() {
    let topic = unique("group-agg");
    create_topic(&topic, 3);
    // Partition 0: AAPL up to 9 s; partition 1: TSLA up to 5 s; partition 2: nothing.
    produce_raw(
        &topic,
        &[
            tick(0, "AAPL", 1),
            tick(0, "AAPL", 2),
            tick(0, "AAPL", 9),
            tick(1, "TSLA", 4),
            tick(1, "TSLA", 5),
        ],
    );
    let name = unique("g-agg");
    aggregate_to_the_end(&topic, &name);
    // Written after the run: lag.
    produce_raw(
        &topic,
        &[
            tick(0, "AAPL", 10),
            tick(0, "AAPL", 11),
            tick(1, "TSLA", 12),
        ],
    );

    let d = ok_json(&group(&["describe", &name, "-o", "json"]));
    assert_eq!(d["name"], name.as_str());
    assert_eq!(d["lag"], 3, "{d}");
    let rows = d["partitions"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "every partition, the unread one too: {d}");
    let expected = [
        (
            Some(3),
            5,
            Some(2),
            Some(("2026-01-01T00:00:07Z", "2026-01-01T00:00:09Z")),
        ),
        (
            Some(2),
            3,
            Some(1),
            Some(("2026-01-01T00:00:03Z", "2026-01-01T00:00:05Z")),
        ),
        (None, 0, None, None),
    ];
    for (p, (row, (at, end, lag, checkpoint))) in rows.iter().zip(expected).enumerate() {
        assert_eq!(row["topic"], topic.as_str(), "{row}");
        assert_eq!(row["partition"], p, "{row}");
        assert_eq!(row["committed_offset"].as_i64(), at, "{row}");
        assert_eq!(row["end_offset"], end, "{row}");
        assert_eq!(row["lag"].as_i64(), lag, "{row}");
        match checkpoint {
            Some((watermark, max_event)) => {
                let c = &row["checkpoint"];
                // Hour-long windows are all open: replay from the first record.
                assert_eq!(c["replay_offset"], 0, "{row}");
                assert_eq!(c["watermark"], watermark, "{row}");
                assert_eq!(c["max_event_time"], max_event, "{row}");
            }
            None => assert!(row["checkpoint"].is_null(), "{row}"),
        }
    }
    let table = group(&["describe", &name]);
    table.assert_code(0);
    for words in ["REPLAY FROM", "WATERMARK", "2026-01-01T00:00:07Z", "lag 3"] {
        assert!(table.stdout.contains(words), "no {words}: {}", table.stdout);
    }

    // Moved forward, the old checkpoint must not come along: aggregate would rebuild its
    // windows from the old replay offset. It starts at the new offsets with fresh windows.
    until_without_members(&name);
    let plan = ok_json(&group(&[
        "reset",
        &name,
        "--topic",
        &topic,
        "--to-latest",
        "--execute",
        "-o",
        "json",
    ]));
    let dropped: Vec<&Value> = plan["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["checkpoint_dropped"])
        .collect();
    assert_eq!(dropped, [true, true, false], "{plan}");
    assert_eq!(committed(&name, &topic, 3), [Some(5), Some(3), Some(0)]);
    let d = ok_json(&group(&["describe", &name, "-o", "json"]));
    assert!(
        d["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["checkpoint"].is_null()),
        "{d}"
    );
    let again = aggregate_to_the_end(&topic, &name);
    for start in ["0@5", "1@3", "2@0"] {
        assert!(
            again
                .stderr
                .contains(&format!("{start} (no checkpoint: fresh windows)")),
            "{start}: {}",
            again.stderr
        );
    }
    assert_eq!(
        summary_count(&again.stderr, "re-read"),
        0,
        "{}",
        again.stderr
    );
}

/// A consumer in a group of its own, subscribed to a topic and polled on a thread until
/// dropped (it then leaves the group).
struct Member {
    client_id: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    /// Joins `group_id` and returns once it has been assigned partitions of `topic`.
    fn join(group_id: &str, topic: &str) -> Member {
        let client_id = unique("member");
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &broker().bootstrap)
            .set("group.id", group_id)
            .set("client.id", &client_id)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let (assigned, joined) = mpsc::channel();
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
                if consumer.assignment().is_ok_and(|a| a.count() > 0) {
                    let _ = assigned.send(());
                }
            }
        });
        joined
            .recv_timeout(Duration::from_secs(30))
            .expect("the member was never assigned partitions");
        Member {
            client_id,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_live_group_shows_its_members_and_is_neither_reset_nor_deleted_under_them() {
    let topic = unique("group-live");
    create_topic(&topic, 3);
    let name = unique("g-live");
    let member = Member::join(&name, &topic);

    let d = ok_json(&group(&["describe", &name, "-o", "json"]));
    assert_eq!(d["state"], "Stable", "{d}");
    assert_eq!(d["protocol_type"], "consumer", "{d}");
    let members = d["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{d}");
    assert_eq!(members[0]["client_id"], member.client_id.as_str(), "{d}");
    assert_eq!(members[0]["host"], "127.0.0.1", "{d}");
    assert_eq!(
        members[0]["assignment"],
        serde_json::json!([{ "topic": topic, "partitions": [0, 1, 2] }]),
        "{d}"
    );
    let member_id = members[0]["member_id"].as_str().unwrap();
    for row in d["partitions"].as_array().unwrap() {
        assert!(row["committed_offset"].is_null(), "{row}");
        assert_eq!(row["member_id"], member_id, "{row}");
    }
    let table = group(&["describe", &name]);
    table.assert_code(0);
    assert!(
        table.stdout.contains(&member.client_id)
            && table.stdout.contains(&format!("{topic}:0,1,2")),
        "{}",
        table.stdout
    );

    for args in [
        &["reset", &name, "--topic", &topic, "--to-earliest"][..],
        &[
            "reset",
            &name,
            "--topic",
            &topic,
            "--to-earliest",
            "--execute",
        ],
        &["delete", &name, "--yes"],
    ] {
        let run = group(args);
        run.assert_code(1);
        assert!(
            run.stderr.contains("refusing")
                && run.stderr.contains(&member.client_id)
                && run.stderr.contains("127.0.0.1"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    assert_eq!(committed(&name, &topic, 3), [None, None, None]);
    drop(member);
}

/// `group reset … -o json` (with --execute or not): the plan, as partition → (from, to).
fn reset(name: &str, topic: &str, how: &[&str], execute: bool) -> BTreeMap<i64, (Value, i64)> {
    let mut args = vec!["reset", name, "--topic", topic, "-o", "json"];
    args.extend_from_slice(how);
    if execute {
        args.push("--execute");
    }
    let plan = ok_json(&group(&args));
    assert_eq!(plan["executed"], execute, "{plan}");
    plan["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                (p["from"].clone(), p["to"].as_i64().unwrap()),
            )
        })
        .collect()
}

/// The offset as an RFC 3339 time with milliseconds.
fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn a_reset_plans_without_changing_and_executes_exactly_its_plan() {
    let topic = unique("group-reset");
    create_topic(&topic, 3);
    fill(&topic, &[5, 3, 0]);
    // The records' own timestamps tell the two batches apart.
    std::thread::sleep(Duration::from_millis(1200));
    let between = rfc3339(crate::support::now_ms());
    std::thread::sleep(Duration::from_millis(1200));
    fill(&topic, &[2, 4, 3]);
    let name = unique("g-reset");
    commit(&name, &topic, &[(0, 2), (1, 1)]);
    let before = committed(&name, &topic, 3);
    assert_eq!(before, [Some(2), Some(1), None]);

    // Dry runs: each shows a plan and changes nothing.
    let far_future = ["--to-time", "2099-01-01T00:00:00Z"];
    for how in [
        &["--to-earliest"][..],
        &["--to-latest"],
        &["--to-offset", "4"],
        &["--to-time", &between],
        &["--to-time", "-1h"],
        &far_future,
    ] {
        let plan = reset(&name, &topic, how, false);
        assert_eq!(plan.len(), 3, "{how:?}: {plan:?}");
        assert_eq!(plan[&0].0, 2, "{how:?}: {plan:?}");
        assert!(plan[&2].0.is_null(), "never read: from none: {plan:?}");
        assert_eq!(committed(&name, &topic, 3), before, "{how:?}");
    }
    // --shift-by needs a committed offset on every partition it moves.
    let refused = group(&["reset", &name, "--topic", &topic, "--shift-by", "1"]);
    refused.assert_code(1);
    assert!(refused.stderr.contains("partition 2"), "{}", refused.stderr);

    // Executed: exactly the plan, and the numbers a person expects.
    let steps: [(&[&str], [i64; 3]); 6] = [
        (&["--to-earliest"], [0, 0, 0]),
        (&["--to-latest"], [7, 7, 3]),
        (&["--to-offset", "4"], [4, 4, 3]),
        (&["--to-time", &between], [5, 3, 0]),
        (&["--shift-by", "-4"], [1, 0, 0]),
        (&far_future, [7, 7, 3]),
    ];
    for (how, want) in steps {
        let was = committed(&name, &topic, 3);
        let plan = reset(&name, &topic, how, true);
        let now = committed(&name, &topic, 3);
        for (p, (from, to)) in &plan {
            let i = usize::try_from(*p).unwrap();
            assert_eq!(from.as_i64(), was[i], "{how:?} {p}: {plan:?}");
            assert_eq!(now[i], Some(*to), "{how:?} {p}: {plan:?}");
        }
        assert_eq!(now, want.map(Some), "{how:?}");
    }

    // Limited to partitions: the others stay as they were.
    let plan = reset(&name, &topic, &["--shift-by", "-100", "-p", "1"], true);
    assert_eq!(plan.keys().collect::<Vec<_>>(), [&1]);
    assert_eq!(committed(&name, &topic, 3), [Some(7), Some(0), Some(3)]);

    let table = group(&["reset", &name, "--topic", &topic, "--to-offset", "6"]);
    table.assert_code(0);
    assert!(table.stdout.starts_with("PARTITION"), "{}", table.stdout);
    assert!(table.stderr.contains("--execute"), "{}", table.stderr);
    assert_eq!(committed(&name, &topic, 3), [Some(7), Some(0), Some(3)]);
}

#[test]
fn missing_topics_and_groups_have_their_own_exit_codes_and_a_reset_creates_a_group() {
    let name = unique("g-missing");
    let topic = unique("group-missing");
    let run = group(&["describe", &name]);
    run.assert_code(6);
    assert!(
        run.stderr.contains("does not exist") && run.stderr.contains("stockstream group list"),
        "{}",
        run.stderr
    );
    group(&["delete", &name, "--yes"]).assert_code(6);
    let run = group(&["reset", &name, "--topic", &topic, "--to-earliest"]);
    run.assert_code(4);
    assert!(run.stderr.contains(&topic), "{}", run.stderr);

    // A reset of a group that does not exist yet plans it, and --execute creates it.
    create_topic(&topic, 1);
    let run = group(&["reset", &name, "--topic", &topic, "--to-earliest"]);
    run.assert_code(0);
    assert!(run.stderr.contains("does not exist yet"), "{}", run.stderr);
    group(&["describe", &name]).assert_code(6);
    let plan = reset(&name, &topic, &["--to-latest"], true);
    assert_eq!(plan[&0], (Value::Null, 0), "{plan:?}");
    assert_eq!(committed(&name, &topic, 1), [Some(0)]);
}

#[test]
fn delete_needs_a_yes_and_then_removes_the_group() {
    let topic = unique("group-delete");
    create_topic(&topic, 1);
    let name = unique("g-delete");
    commit(&name, &topic, &[(0, 0)]);
    let run = group(&["delete", &name]);
    run.assert_code(1);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    group(&["describe", &name]).assert_code(0);

    // On a terminal it asks: a no keeps the group, a yes deletes it.
    let answering = |answer: &str| {
        let mut cmd = on_broker(&["group", "delete", &name]);
        cmd.stdout(std::process::Stdio::null());
        let mut terminal = Terminal::spawn(cmd);
        terminal.wait_for_text("[y/N]", Duration::from_secs(60));
        terminal.type_text(answer);
        terminal.wait(Duration::from_secs(60))
    };
    let (code, shown) = answering("n\n");
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains("not deleted: the answer was not yes"),
        "{shown}"
    );
    assert_eq!(committed(&name, &topic, 1), [Some(0)]);
    let (code, shown) = answering("y\n");
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(committed(&name, &topic, 1), [None]);
    group(&["describe", &name]).assert_code(6);

    let again = unique("g-delete");
    commit(&again, &topic, &[(0, 0)]);
    let run = ok_json(&group(&["delete", &again, "--yes", "-o", "json"]));
    assert_eq!(run, serde_json::json!({ "name": again, "deleted": true }));
    group(&["describe", &again]).assert_code(6);
}

#[test]
fn an_unreachable_broker_gives_one_clear_message_and_exit_3() {
    for args in [
        &["group", "list"][..],
        &["group", "describe", "g"],
        &["group", "reset", "g", "--topic", "t", "--to-earliest"],
        &["group", "delete", "g", "--yes"],
    ] {
        let mut with_timeout = args.to_vec();
        with_timeout.extend_from_slice(&["--timeout", "2s"]);
        assert_unreachable(&with_timeout);
    }
}
