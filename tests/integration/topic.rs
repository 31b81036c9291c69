//! `stockstream topic …` on the real broker: JSON a script can trust, exact offsets and
//! counts, distinct exit codes, and no accidental deletes.

use std::time::Duration;

use serde_json::Value;

use crate::support::assert_unreachable;
use crate::support::kafka::{create_topic, read_all};
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
        &["topic", "alter", "x", "--partitions", "9"],
        &["cluster", "info"],
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

/// Each record's key (a symbol) and partition.
fn placed(records: &[crate::support::kafka::Read]) -> Vec<(String, i32, i64)> {
    records
        .iter()
        .map(|r| {
            let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default());
            (key.into_owned(), r.partition, r.offset)
        })
        .collect()
}

#[test]
fn alter_adds_partitions_and_names_the_symbols_whose_records_then_land_elsewhere() {
    let name = unique("alter-parts");
    create_topic(&name, 3);
    let produce = |count: &str| {
        run_for(
            on_broker(&[
                "produce", "--topic", &name, "--count", count, "--rate", "max",
            ]),
            Duration::from_secs(60),
        )
        .assert_code(0);
    };
    produce("200");
    let alter = topic(&["alter", &name, "--partitions", "6", "-o", "json"]);
    alter.assert_code(0);
    let answer = json(&alter);
    assert_eq!(answer["partitions"]["before"], 3);
    assert_eq!(answer["partitions"]["after"], 6);
    let keys = answer["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 7, "{answer}");
    let place = |symbol: &str, when: &str| -> i32 {
        let entry = keys.iter().find(|k| k["symbol"] == symbol).unwrap();
        i32::try_from(entry[when].as_i64().unwrap()).unwrap()
    };
    let movers: Vec<&str> = keys
        .iter()
        .filter(|k| k["moves"] == true)
        .map(|k| k["symbol"].as_str().unwrap())
        .collect();
    assert!(!movers.is_empty(), "3 -> 6 moves some symbols: {answer}");
    assert!(
        alter
            .stderr
            .contains(&format!("{} now go to other partitions", movers.join(", "))),
        "the warning names exactly the symbols that move: {}",
        alter.stderr
    );

    let old = placed(&read_all(&name));
    assert_eq!(old.len(), 200);
    for (symbol, partition, _) in &old {
        assert_eq!(
            *partition,
            place(symbol, "before"),
            "{symbol} before the change"
        );
    }
    produce("300");
    let all = placed(&read_all(&name));
    assert_eq!(all.len(), 500);
    let new: Vec<_> = all
        .iter()
        .filter(|r| !old.iter().any(|o| o.1 == r.1 && o.2 == r.2))
        .collect();
    assert_eq!(new.len(), 300);
    for (symbol, partition, _) in &new {
        assert_eq!(
            *partition,
            place(symbol, "after"),
            "{symbol} after the change"
        );
    }
    for symbol in &movers {
        assert!(
            new.iter()
                .any(|(s, p, _)| s == symbol && *p == place(symbol, "after")),
            "{symbol}'s new records are in its new partition"
        );
    }

    let shrink = topic(&["alter", &name, "--partitions", "2"]);
    shrink.assert_code(1);
    assert!(
        shrink.stderr.contains("Kafka cannot take partitions away"),
        "{}",
        shrink.stderr
    );
    topic(&["delete", &name, "--yes"]).assert_code(0);
}

#[test]
fn alter_sets_and_removes_settings_one_by_one_and_shows_before_and_after() {
    let name = unique("alter-config");
    let created = topic(&[
        "create",
        &name,
        "--partitions",
        "1",
        "--config",
        "retention.ms=3600000",
    ]);
    created.assert_code(0);
    let alter = topic(&[
        "alter",
        &name,
        "--config",
        "cleanup.policy=compact",
        "--config",
        "max.message.bytes=200000",
        "-o",
        "json",
    ]);
    alter.assert_code(0);
    let configs = json(&alter)["configs"].as_array().unwrap().clone();
    let entry = |key: &str| configs.iter().find(|c| c["key"] == key).cloned().unwrap();
    assert_eq!(entry("cleanup.policy")["before"], "delete");
    assert_eq!(entry("cleanup.policy")["before_is_default"], true);
    assert_eq!(entry("cleanup.policy")["after"], "compact");
    assert_eq!(entry("max.message.bytes")["after"], "200000");
    let described = json(&topic(&["describe", &name, "-o", "json"]));
    // The setting made at creation is kept: only the named settings change.
    assert_eq!(
        described["configs"]["retention.ms"], "3600000",
        "{described}"
    );
    assert_eq!(described["configs"]["cleanup.policy"], "compact");
    assert_eq!(described["configs"]["max.message.bytes"], "200000");

    let table = topic(&["alter", &name, "--delete-config", "retention.ms"]);
    table.assert_code(0);
    assert!(table.stdout.contains("SETTING"), "{}", table.stdout);
    assert!(
        table.stdout.lines().any(|l| l.starts_with("retention.ms")
            && l.contains("3600000")
            && l.contains("(default)")),
        "before and after on one line: {}",
        table.stdout
    );
    let described = json(&topic(&["describe", &name, "-o", "json"]));
    assert!(
        described["configs"].get("retention.ms").is_none(),
        "{described}"
    );
    assert_eq!(described["configs"]["cleanup.policy"], "compact");

    let unknown = topic(&["alter", &name, "--config", "no.such.setting=1"]);
    unknown.assert_code(1);
    assert!(
        unknown.stderr.contains("refused to change the settings")
            && unknown.stderr.contains("no.such.setting"),
        "the broker's words: {}",
        unknown.stderr
    );
    topic(&["alter", &unique("alter-missing"), "--partitions", "3"]).assert_code(4);
    topic(&["delete", &name, "--yes"]).assert_code(0);
}

#[test]
fn cluster_info_names_the_broker_and_counts_what_it_holds() {
    let name = unique("cluster-info");
    create_topic(&name, 4);
    let run = run_for(
        on_broker(&["cluster", "info", "-o", "json"]),
        Duration::from_secs(60),
    );
    run.assert_code(0);
    let info = json(&run);
    assert!(
        !info["cluster_id"].as_str().unwrap_or_default().is_empty(),
        "{info}"
    );
    let brokers = info["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "{info}");
    let port = crate::support::broker()
        .bootstrap
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(brokers[0]["port"].to_string(), port, "{info}");
    assert_eq!(info["controller"], brokers[0]["id"]);
    // One broker leads and holds every partition; other tests' topics come and go meanwhile.
    assert!(brokers[0]["leaders"].as_u64().unwrap() >= 4, "{info}");
    assert_eq!(brokers[0]["leaders"], brokers[0]["replicas"], "{info}");
    assert!(info["topics"].as_u64().unwrap() >= 1, "{info}");
    assert!(info["partitions"].as_u64().unwrap() >= 4, "{info}");

    let table = run_for(on_broker(&["cluster", "info"]), Duration::from_secs(60));
    table.assert_code(0);
    assert!(table
        .stdout
        .contains(&format!("Cluster {}", info["cluster_id"].as_str().unwrap())));
    assert!(
        table.stdout.contains(&format!("127.0.0.1:{port}")),
        "{}",
        table.stdout
    );
    topic(&["delete", &name, "--yes"]).assert_code(0);
}
