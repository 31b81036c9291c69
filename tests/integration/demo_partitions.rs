//! `stockstream demo-partitions` on the real broker: it runs to the end without anyone at
//! the keyboard, and every "key → partition" it prints is where a consumer finds the records.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::assert_unreachable;
use crate::support::kafka::{create_topic, murmur2_partition, read_all};
use crate::support::terminal::Terminal;
use crate::support::{on_broker, run_for, unique, Run};

const SYMBOLS: [&str; 7] = ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"];

fn demo(args: &[&str]) -> Run {
    let mut full = vec!["demo-partitions"];
    full.extend_from_slice(args);
    run_for(on_broker(&full), Duration::from_secs(120))
}

/// One printed claim: `key` is in `partition`, and (from the order lines) at these offsets.
#[derive(Debug)]
struct Claim {
    key: String,
    partition: i32,
    offsets: Option<Vec<i64>>,
}

/// Every key-to-partition claim in the output: the rows of the murmur2 table (the computed
/// partition and the broker's, which must agree) and the "KEY → partition N at offsets …"
/// lines.
fn claims(stdout: &str) -> Vec<Claim> {
    let mut out = Vec::new();
    let mut in_table = false;
    for line in stdout.lines().map(str::trim) {
        if line.starts_with("KEY") && line.contains("MURMUR2(KEY)") {
            in_table = true;
            continue;
        }
        if in_table {
            let cells: Vec<&str> = line.split_whitespace().collect();
            if cells.len() >= 5 && SYMBOLS.contains(&cells[0]) {
                let computed: i32 = cells[3].parse().expect("computed partition");
                let broker: i32 = cells[4].parse().expect("broker's partition");
                assert_eq!(computed, broker, "the demo printed a mismatch: {line}");
                out.push(Claim {
                    key: cells[0].to_string(),
                    partition: computed,
                    offsets: None,
                });
                continue;
            }
            in_table = false;
        }
        if let Some((key, rest)) = line.split_once(" → partition ") {
            let (partition, rest) = rest.split_once(" at offset").expect("offsets follow");
            let offsets = rest
                .trim_start_matches('s')
                .trim_start()
                .split("  ")
                .next()
                .unwrap()
                .split(" < ")
                .map(|o| o.parse().expect("an offset"))
                .collect();
            out.push(Claim {
                key: key.trim().to_string(),
                partition: partition.parse().expect("a partition number"),
                offsets: Some(offsets),
            });
        }
    }
    out
}

/// Where each key's records really are: partition → offsets, read back by a plain consumer.
fn placement(topic: &str) -> BTreeMap<String, BTreeMap<i32, Vec<i64>>> {
    let mut out: BTreeMap<String, BTreeMap<i32, Vec<i64>>> = BTreeMap::new();
    for r in read_all(topic) {
        let key = String::from_utf8(r.key.expect("every record has a key")).unwrap();
        out.entry(key)
            .or_default()
            .entry(r.partition)
            .or_default()
            .push(r.offset);
    }
    for partitions in out.values_mut() {
        for offsets in partitions.values_mut() {
            offsets.sort_unstable();
        }
    }
    out
}

/// Checks every claim against the records read back, and that every key was claimed in
/// both the table and the order lines.
#[track_caller]
fn assert_claims_hold(run: &Run, topic: &str, partitions: u32) {
    let claims = claims(&run.stdout);
    let actual = placement(topic);
    for claim in &claims {
        let places = actual
            .get(&claim.key)
            .unwrap_or_else(|| panic!("no {} records in {topic}", claim.key));
        assert_eq!(
            places.keys().copied().collect::<Vec<_>>(),
            [claim.partition],
            "{claim:?}: the records are in {places:?}\n{}",
            run.stdout
        );
        // Checked independently of stockstream's own murmur2.
        assert_eq!(
            claim.partition,
            murmur2_partition(claim.key.as_bytes(), partitions),
            "{claim:?}"
        );
        if let Some(offsets) = &claim.offsets {
            assert_eq!(offsets, &places[&claim.partition], "{claim:?}");
        }
    }
    for key in SYMBOLS {
        let table = claims
            .iter()
            .filter(|c| c.key == key && c.offsets.is_none())
            .count();
        let order = claims
            .iter()
            .filter(|c| c.key == key && c.offsets.is_some())
            .count();
        assert_eq!((table, order), (1, 1), "{key} claims\n{}", run.stdout);
    }
}

/// The LAG column of the last lag table.
fn final_lags(stdout: &str) -> Vec<i64> {
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let header = lines
        .iter()
        .rposition(|l| l.starts_with("PARTITION") && l.ends_with("LAG"))
        .unwrap_or_else(|| panic!("no lag table in\n{stdout}"));
    lines[header + 1..]
        .iter()
        .map_while(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells.len() == 5)
                .then(|| cells[4].replace(',', "").parse().ok())
                .flatten()
        })
        .collect()
}

#[test]
fn every_key_is_where_the_demo_says_and_the_group_ends_with_no_lag() {
    let topic = unique("demo-claims");
    // --step without a terminal must not wait for anyone.
    let run = demo(&["--topic", &topic, "--keep", "--step"]);
    run.assert_code(0);
    assert!(
        run.stderr.contains("stdin is not a terminal"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains('\x1b'), "no color off a terminal");
    assert_claims_hold(&run, &topic, 3);
    let records = read_all(&topic);
    assert_eq!(records.len(), 21, "3 records for each of the 7 keys");
    assert!(
        run.stdout.matches("✅ same as sent").count() >= 2,
        "{}",
        run.stdout
    );
    assert_eq!(final_lags(&run.stdout), [0, 0, 0], "{}", run.stdout);
    // The key skew of 3 partitions, and of stock_prices' 5.
    assert_eq!(
        skew_row(&run.stdout, 0)[1..],
        ["AAPL", "MSFT", "META", "9", "42.9%"]
    );
    assert!(
        run.stdout.contains(
            "`stock_prices`, as `stockstream topic create` makes it, has 5 partitions:\n  4 keys on partition 1"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn an_existing_topic_is_reused_as_it_is_and_kept() {
    let topic = unique("demo-reuse");
    create_topic(&topic, 2);
    let run = demo(&[
        "--topic",
        &topic,
        "--partitions",
        "4",
        "--records-per-key",
        "2",
    ]);
    run.assert_code(0);
    assert!(run.stderr.contains("reusing it"), "{}", run.stderr);
    assert_claims_hold(&run, &topic, 2);
    assert_eq!(
        read_all(&topic).len(),
        14,
        "2 records for each of the 7 keys"
    );
    assert_eq!(final_lags(&run.stdout), [0, 0], "{}", run.stdout);
}

#[test]
fn without_keep_the_demo_removes_the_topic_it_made() {
    let topic = unique("demo-clean");
    let run = demo(&["--topic", &topic, "--records-per-key", "1"]);
    run.assert_code(0);
    assert!(run.stderr.contains("Removed topic"), "{}", run.stderr);
    assert_topic_gone(&topic);
}

#[test]
fn a_key_placed_by_another_partitioner_fails_loudly_and_still_cleans_up() {
    // librdkafka's own default (CRC32) puts five of the seven symbols elsewhere.
    let topic = unique("demo-mismatch");
    let run = demo(&["-X", "partitioner=consistent_random", "--topic", &topic]);
    run.assert_code(1);
    assert!(run.stdout.contains("❌ MISMATCH"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("did not land where Kafka's murmur2 partitioner puts it"),
        "{}",
        run.stderr
    );
    assert_topic_gone(&topic);
}

#[track_caller]
fn assert_topic_gone(topic: &str) {
    let describe = run_for(
        on_broker(&["topic", "describe", topic]),
        Duration::from_secs(30),
    );
    describe.assert_code(4);
}

#[test]
fn an_unreachable_broker_gives_the_clear_message_and_exit_3() {
    assert_unreachable(&["demo-partitions", "--timeout", "2s"]);
}

#[test]
fn claims_are_read_from_both_the_table_and_the_order_lines() {
    // The parser above decides what the acceptance test checks; make sure it sees claims.
    let out = "\
  KEY    MURMUR2(KEY)  & 0x7fffffff  % PARTITIONS  BROKER SAYS  CHECK
  AAPL     1691292177    1691292177             0            0  ✅ match

  AAPL  → partition 0 at offsets 0 < 3 < 6  ✅ in the order sent
  NFLX  → partition 1 at offset 7  ✅ in the order sent
";
    let c = claims(out);
    assert_eq!(c.len(), 3, "{c:?}");
    assert_eq!((c[0].key.as_str(), c[0].partition), ("AAPL", 0));
    assert_eq!(c[1].offsets.as_deref(), Some(&[0, 3, 6][..]));
    assert_eq!((c[2].key.as_str(), c[2].partition), ("NFLX", 1));
    assert_eq!(c[2].offsets.as_deref(), Some(&[7][..]));
}

/// Runs the walk with `--step` on a terminal, pressing Enter `enters` times, then sends
/// `signal` at the next pause: the demo must stop there, remove its topic and exit 130.
fn stopped_at_a_pause(signal: i32, enters: usize) {
    let topic = unique("demo-stop");
    let mut cmd = on_broker(&["demo-partitions", "--topic", &topic, "--step"]);
    cmd.stdout(Stdio::null());
    let mut terminal = Terminal::spawn(cmd);
    for pressed in 0..enters {
        terminal.wait_for_times("Press Enter", pressed + 1, Duration::from_secs(60));
        terminal.type_text("\n");
    }
    terminal.wait_for_times("Press Enter", enters + 1, Duration::from_secs(60));
    let at = enters + 1;
    // The topic is there while the demo waits.
    run_for(
        on_broker(&["topic", "describe", &topic]),
        Duration::from_secs(30),
    )
    .assert_code(0);
    let sent = Instant::now();
    terminal.signal(signal);
    let (code, shown) = terminal.wait(Duration::from_secs(60));
    let took = sent.elapsed();
    assert_eq!(code, Some(130), "{shown}");
    assert!(
        shown.contains(&format!(
            "demo-partitions cut short at step {at}/6: stopped by Ctrl+C or SIGTERM"
        )),
        "{shown}"
    );
    assert!(shown.contains("Removed topic"), "{shown}");
    assert!(!shown.contains("CRITICAL"), "{shown}");
    // Removing the topic and the group takes a few requests, not a timeout.
    assert!(took < Duration::from_secs(5), "took {took:?}:\n{shown}");
    assert_topic_gone(&topic);
}

#[test]
fn ctrl_c_at_a_pause_removes_the_topic_and_exits_130() {
    stopped_at_a_pause(libc::SIGINT, 0);
}

#[test]
fn sigterm_after_records_were_sent_removes_the_topic_and_exits_130() {
    stopped_at_a_pause(libc::SIGTERM, 2);
}

#[test]
fn the_demos_own_topic_left_behind_is_made_anew_with_offsets_from_0() {
    // The one test that uses the default topic: as a run cut short by a second Ctrl+C
    // leaves it, with other partitions and records at offsets past 0.
    const OWN: &str = "stockstream_demo_partitions";
    create_topic(OWN, 2);
    run_for(
        on_broker(&["produce", "--topic", OWN, "--count", "20", "--rate", "max"]),
        Duration::from_secs(60),
    )
    .assert_code(0);
    let run = demo(&["--records-per-key", "1", "--keep"]);
    run.assert_code(0);
    assert!(
        run.stderr.contains("was left by an earlier run"),
        "{}",
        run.stderr
    );
    assert_claims_hold(&run, OWN, 3);
    let offsets: Vec<i64> = read_all(OWN).iter().map(|r| r.offset).collect();
    assert_eq!(offsets.len(), 7, "one record per key, nothing older");
    assert!(offsets.contains(&0), "{offsets:?}");
    // And without --keep the next run removes it.
    let run = demo(&["--records-per-key", "1"]);
    run.assert_code(0);
    assert_topic_gone(OWN);
}

/// The row of `partition` in the key skew table: its cells.
fn skew_row(stdout: &str, partition: usize) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("PARTITION  KEYS"))
        .unwrap_or_else(|| panic!("no key skew table in\n{stdout}"));
    let row = lines[header + 1 + partition];
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[0], partition.to_string(), "{row}");
    cells.iter().map(ToString::to_string).collect()
}

#[test]
fn five_partitions_for_seven_keys_show_key_skew() {
    let topic = unique("demo-skew");
    let run = demo(&[
        "--topic",
        &topic,
        "--partitions",
        "5",
        "--records-per-key",
        "2",
    ]);
    run.assert_code(0);
    assert!(
        run.stdout.contains(
            "7 keys over 5 partitions: 4 keys on partition 1, 2 on partition 2, 1 on partition 4;\n  none on partitions 0 and 3, which stay empty for ever."
        ),
        "{}",
        run.stdout
    );
    for empty in [0, 3] {
        assert_eq!(skew_row(&run.stdout, empty)[1..], ["-", "0", "0.0%"]);
    }
    assert_eq!(
        skew_row(&run.stdout, 1)[1..],
        ["GOOGL", "AMZN", "TSLA", "NFLX", "8", "57.1%"]
    );
    assert_eq!(skew_row(&run.stdout, 4)[1..], ["META", "2", "14.3%"]);
    // This is stock_prices' own spread: said once, not again for stock_prices.
    assert!(!run.stdout.contains("`stock_prices`"), "{}", run.stdout);
}
