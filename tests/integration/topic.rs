//! `stockstream topic …` on the real broker: JSON a script can trust, exact offsets and
//! counts, distinct exit codes, and no accidental deletes.

use std::time::Duration;

use serde_json::Value;

use crate::support::assert_unreachable;
use crate::support::kafka::create_topic;
use crate::support::terminal::Terminal;
use crate::support::{on_broker, run_for, stockstream, unique, Run};

fn topic(args: &[&str]) -> Run {
    let mut full = vec!["topic"];
    full.extend_from_slice(args);
    run_for(on_broker(&full), Duration::from_secs(60))
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        )
    })
}

#[test]
fn create_list_describe_count_and_delete() {
    let name = unique("topic-life");
    let created = topic(&[
        "create",
        &name,
        "--config",
        "retention.ms=3600000",
        "-o",
        "json",
    ]);
    created.assert_code(0);
    assert_eq!(json(&created)["created"], true);
    assert_eq!(json(&created)["partitions"], 5);

    let list = topic(&["list", "-o", "json"]);
    list.assert_code(0);
    let entry = json(&list)
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{name} not listed:\n{}", list.stdout));
    assert_eq!(entry["partitions"], 5);
    assert_eq!(entry["replication_factor"], 1);
    assert_eq!(entry["messages"], 0);

    let produce = run_for(
        on_broker(&[
            "produce", "--topic", &name, "--count", "777", "--rate", "max",
        ]),
        Duration::from_secs(60),
    );
    produce.assert_code(0);

    let described = topic(&["describe", &name, "-o", "json"]);
    described.assert_code(0);
    let d = json(&described);
    assert_eq!(d["name"], name.as_str());
    assert_eq!(d["replication_factor"], 1);
    assert_eq!(d["messages"], 777);
    assert_eq!(d["configs"]["retention.ms"], "3600000");
    let partitions = d["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 5);
    let mut sum = 0;
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!(p["partition"], i);
        assert_eq!(p["leader"], 1);
        assert_eq!(p["replicas"], serde_json::json!([1]));
        assert_eq!(p["isr"], serde_json::json!([1]));
        assert_eq!(p["earliest_offset"], 0);
        assert_eq!(p["messages"], p["latest_offset"]);
        sum += p["messages"].as_i64().unwrap();
    }
    assert_eq!(sum, 777);
    let listed = json(&topic(&["list", "-o", "json"]));
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["messages"], 777);

    topic(&["delete", &name, "--yes"]).assert_code(0);
    let after = json(&topic(&["list", "-o", "json"]));
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != name.as_str()),
        "{after}"
    );
    topic(&["describe", &name]).assert_code(4);
}

#[test]
fn table_output_is_aligned_and_colorless_off_a_terminal() {
    let name = unique("topic-table");
    create_topic(&name, 3);
    let run = topic(&["describe", &name]);
    run.assert_code(0);
    assert!(!run.stdout.contains('\x1b'));
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].contains(&format!("Topic {name}")) && lines[0].contains("3 partitions"),
        "{}",
        run.stdout
    );
    assert!(lines[1].starts_with("PARTITION  LEADER"), "{}", run.stdout);
    // Three partition rows, each as wide as the header.
    for row in &lines[2..5] {
        assert_eq!(row.len(), lines[1].len(), "{}", run.stdout);
    }
    let list = topic(&["list"]);
    assert!(
        list.stdout.lines().any(|l| l.starts_with(&name)),
        "{}",
        list.stdout
    );
}

#[test]
fn an_existing_topic_has_its_own_exit_code_unless_if_not_exists() {
    let name = unique("topic-exists");
    create_topic(&name, 2);
    let run = topic(&["create", &name]);
    run.assert_code(5);
    assert!(
        run.stderr.contains("already exists") && run.stderr.contains("--if-not-exists"),
        "{}",
        run.stderr
    );
    let run = topic(&["create", &name, "--if-not-exists", "-o", "json"]);
    run.assert_code(0);
    assert_eq!(json(&run)["created"], false);
    assert_eq!(
        json(&run)["partitions"],
        2,
        "the existing topic is left as it was"
    );
}

#[test]
fn a_missing_topic_has_its_own_exit_code_unless_if_exists() {
    let name = unique("topic-missing");
    let run = topic(&["describe", &name]);
    run.assert_code(4);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    topic(&["delete", &name, "--yes"]).assert_code(4);
    let run = topic(&["delete", &name, "--yes", "--if-exists", "-o", "json"]);
    run.assert_code(0);
    assert_eq!(json(&run)["deleted"], false);
}

#[test]
fn bad_names_and_numbers_are_usage_errors_before_any_broker_is_contacted() {
    // Pointed at a port where nothing listens: a usage error must come first, at once.
    for args in [
        &["topic", "create", "bad name"][..],
        &["topic", "create", ".."],
        &["topic", "create", "ok", "--partitions", "0"],
        &["topic", "create", "ok", "--replication-factor", "0"],
        &["topic", "create", "ok", "--config", "no-equals"],
        &["topic", "describe", "slash/no"],
    ] {
        let mut cmd = stockstream();
        cmd.args(["-b", "127.0.0.1:1"]).args(args);
        let run = run_for(cmd, Duration::from_secs(5));
        run.assert_code(2);
        assert!(run.stderr.contains("error"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn an_unreachable_broker_gives_one_clear_message_and_exit_3() {
    for args in [
        &["topic", "list"][..],
        &["topic", "create", "x"],
        &["topic", "describe", "x"],
        &["topic", "delete", "x", "--yes"],
    ] {
        let mut with_timeout = args.to_vec();
        with_timeout.extend_from_slice(&["--timeout", "2s"]);
        assert_unreachable(&with_timeout);
    }
}

#[test]
fn delete_without_a_terminal_and_without_yes_refuses_and_deletes_nothing() {
    let name = unique("topic-keep");
    create_topic(&name, 1);
    let run = topic(&["delete", &name]);
    run.assert_code(1);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    let d = topic(&["describe", &name, "-o", "json"]);
    d.assert_code(0);
    assert_eq!(json(&d)["name"], name.as_str());
}

#[test]
fn internal_topics_only_with_internal() {
    // A consumer group makes sure __consumer_offsets exists.
    let name = unique("topic-internal");
    create_topic(&name, 1);
    crate::support::kafka::read_all(&name);
    let _ = crate::support::kafka::commit_something(&name);
    let plain = json(&topic(&["list", "-o", "json"]));
    assert!(
        plain
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t["name"].as_str().unwrap().starts_with("__")),
        "{plain}"
    );
    let all = json(&topic(&["list", "-o", "json", "--internal"]));
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "__consumer_offsets"),
        "{all}"
    );
}

/// Runs `topic delete NAME` on a terminal, answers its question with `answer`, and
/// returns the exit code and what the terminal showed.
fn delete_answering(name: &str, answer: &str) -> (Option<i32>, String) {
    let mut cmd = on_broker(&["topic", "delete", name]);
    cmd.stdout(std::process::Stdio::null());
    let mut terminal = Terminal::spawn(cmd);
    terminal.wait_for_text("[y/N]", Duration::from_secs(60));
    terminal.type_text(answer);
    terminal.wait(Duration::from_secs(60))
}

#[test]
fn a_no_at_the_prompt_keeps_the_topic_and_says_so_plainly() {
    let name = unique("topic-ask");
    create_topic(&name, 1);
    let (code, shown) = delete_answering(&name, "n\n");
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains(&format!(
            "topic `{name}` not deleted: the answer was not yes"
        )),
        "{shown}"
    );
    assert!(!shown.contains("CRITICAL"), "{shown}");
    let d = topic(&["describe", &name, "-o", "json"]);
    d.assert_code(0);
    // A yes deletes it.
    let (code, shown) = delete_answering(&name, "y\n");
    assert_eq!(code, Some(0), "{shown}");
    topic(&["describe", &name]).assert_code(4);
}

#[test]
fn describe_shows_each_partitions_share_and_the_empty_ones() {
    // Five partitions for seven symbols: murmur2 leaves partitions 0 and 3 without one.
    let name = unique("topic-share");
    create_topic(&name, 5);
    let produce = run_for(
        on_broker(&[
            "produce", "--topic", &name, "--count", "700", "--rate", "max",
        ]),
        Duration::from_secs(60),
    );
    produce.assert_code(0);

    let text = topic(&["describe", &name]);
    text.assert_code(0);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(lines[1].ends_with("MESSAGES  SHARE"), "{}", text.stdout);
    let mut total = 0.0;
    for (partition, row) in lines[2..7].iter().enumerate() {
        let cells: Vec<&str> = row.split_whitespace().collect();
        let share: f64 = cells[7]
            .trim_end_matches('%')
            .parse()
            .expect("a percentage");
        if partition == 0 || partition == 3 {
            assert_eq!((cells[6], cells[7]), ("0", "0.0%"), "{}", text.stdout);
        } else {
            assert!(share > 0.0, "{}", text.stdout);
        }
        total += share;
    }
    assert!((total - 100.0).abs() < 0.3, "{}", text.stdout);

    let d = json(&topic(&["describe", &name, "-o", "json"]));
    let shares: Vec<f64> = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["share_percent"].as_f64().expect("a share"))
        .collect();
    assert_eq!((shares[0], shares[3]), (0.0, 0.0), "{d}");
    // An empty topic has no shares.
    let empty = unique("topic-share-empty");
    create_topic(&empty, 2);
    let d = json(&topic(&["describe", &empty, "-o", "json"]));
    assert!(d["partitions"][0]["share_percent"].is_null(), "{d}");
}

/// The broker's own words for a refused topic, not only its error code, and a hint where one
/// helps; nothing is created.
#[test]
fn a_refused_create_shows_the_brokers_reason_and_a_hint() {
    let name = unique("topic-refused");
    let replicas = topic(&["create", &name, "--replication-factor", "3"]);
    replicas.assert_code(1);
    for words in [
        "the broker refused to create",
        "The target replication factor of 3 cannot be reached because only 1 broker(s) are registered",
        "(InvalidReplicationFactor)",
        "hint: the cluster has 1 broker, and each replica",
    ] {
        assert!(replicas.stderr.contains(words), "no {words:?} in:\n{}", replicas.stderr);
    }

    let partitions = topic(&["create", &name, "--partitions", "100000"]);
    partitions.assert_code(1);
    assert!(
        partitions
            .stderr
            .contains("Excessively large number of partitions per request. (PolicyViolation)"),
        "{}",
        partitions.stderr
    );
    topic(&["describe", &name]).assert_code(4);

    topic(&["create", &format!("{name}.a_b")]).assert_code(0);
    let twin = format!("{name}.a.b");
    let collision = topic(&["create", &twin]);
    collision.assert_code(1);
    for words in [
        format!("Topic '{twin}' collides with existing topic: {name}.a_b (InvalidTopic)"),
        "hint: Kafka counts `.` and `_` in topic names as the same character".to_string(),
    ] {
        assert!(
            collision.stderr.contains(&words),
            "no {words:?} in:\n{}",
            collision.stderr
        );
    }
    topic(&["delete", &format!("{name}.a_b"), "--yes"]).assert_code(0);
}
