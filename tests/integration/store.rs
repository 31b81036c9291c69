//! `store` and `history` on the real broker and a real PostgreSQL: the table equals the bars
//! topic after a live run; SIGKILLed three times, or with PostgreSQL restarted under it,
//! `store` writes every final bar exactly once (a trigger counts every write) and its
//! offsets end at the topic's end; records that are not bars go to the dead-letter topic;
//! `history --resample` equals an independent computation; passwords are never printed.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::metrics::{sample, scrape};
use crate::support::kafka::{create_topic_on, produce_raw_on, read_all_on, Raw};
use crate::support::postgres::{postgres, psql, DedicatedPostgres};
use crate::support::{broker, free_port, http_get, run_for, stockstream, unique, Run, Running};

/// A bar's identity: (symbol, window start ms, window end ms).
type Key = (String, i64, i64);

/// A bar as compared here: every field, floats as their exact bits.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: i64,
    trades: i64,
    vwap: Option<f64>,
    avg_price: f64,
    is_final: bool,
}

fn ms(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"));
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn from_json(v: &Value) -> (Key, Stored) {
    let f = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    let i = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}"));
    (
        (
            v["symbol"].as_str().unwrap().to_string(),
            ms(v["window_start"].as_str().unwrap()),
            ms(v["window_end"].as_str().unwrap()),
        ),
        Stored {
            open: f("open"),
            high: f("high"),
            low: f("low"),
            close: f("close"),
            volume: i("volume"),
            trades: i("trades"),
            vwap: v["vwap"].as_f64(),
            avg_price: f("avg_price"),
            is_final: v["final"].as_bool().unwrap(),
        },
    )
}

/// What the table must hold after reading `topic` to its end: per window, its first final
/// bar, or else its last revision (in the order of its partition).
fn expected_table(bootstrap: &str, topic: &str) -> BTreeMap<Key, Stored> {
    let mut table: BTreeMap<Key, Stored> = BTreeMap::new();
    for record in read_to_end(bootstrap, topic) {
        let Ok(v) = serde_json::from_slice::<Value>(&record) else {
            continue;
        };
        if v.get("window_start").is_none() {
            continue;
        }
        let (key, bar) = from_json(&v);
        match table.get(&key) {
            Some(kept) if kept.is_final => {}
            _ => {
                table.insert(key, bar);
            }
        }
    }
    table
}

/// Every committed record of `topic`, read read_committed from the start to each
/// partition's end, in each partition's order.
fn read_to_end(bootstrap: &str, topic: &str) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("store-tests-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let ends = end_offsets(bootstrap, topic);
    let mut tpl = TopicPartitionList::new();
    for p in ends.keys() {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut open: Vec<i32> = ends
        .iter()
        .filter(|(_, e)| **e > 0)
        .map(|(p, _)| *p)
        .collect();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !open.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{topic} not read to its end within 60s"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.payload().unwrap_or_default().to_vec()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => open.retain(|o| *o != p),
            _ => {}
        }
    }
    out
}

fn end_offsets(bootstrap: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    md.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .expect("watermarks");
            (p.id(), high)
        })
        .collect()
}

/// The bars table, every row.
fn table(url: &str) -> BTreeMap<Key, Stored> {
    let out = psql(
        url,
        "SELECT symbol, (extract(epoch FROM window_start) * 1000)::int8,
                (extract(epoch FROM window_end) * 1000)::int8, open, high, low, close,
                volume, trades, coalesce(vwap::text, ''), avg_price, final
         FROM bars",
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let c: Vec<&str> = line.split('\t').collect();
            let f = |i: usize| c[i].parse::<f64>().unwrap();
            let i = |i: usize| c[i].parse::<i64>().unwrap();
            (
                (c[0].to_string(), i(1), i(2)),
                Stored {
                    open: f(3),
                    high: f(4),
                    low: f(5),
                    close: f(6),
                    volume: i(7),
                    trades: i(8),
                    vwap: (!c[9].is_empty()).then(|| f(9)),
                    avg_price: f(10),
                    is_final: c[11] == "t",
                },
            )
        })
        .collect()
}

fn stored_offsets(url: &str, group: &str) -> BTreeMap<i32, i64> {
    // Nothing before store has made its schema.
    if psql(url, "SELECT to_regclass('store_offsets') IS NULL").trim() == "t" {
        return BTreeMap::new();
    }
    psql(
        url,
        &format!(
            "SELECT partition, next_offset FROM store_offsets WHERE consumer_group = '{group}'"
        ),
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(|l| {
        let (p, o) = l.split_once('\t').unwrap();
        (p.parse().unwrap(), o.parse().unwrap_or(-1))
    })
    .collect()
}

/// Counts every insert and update of a bar, from inside the database.
fn audit(url: &str) {
    psql(
        url,
        "CREATE TABLE audit (symbol text, window_start timestamptz, window_end timestamptz, final boolean);
         CREATE FUNCTION audit_bars() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             INSERT INTO audit VALUES (NEW.symbol, NEW.window_start, NEW.window_end, NEW.final);
             RETURN NEW;
         END $$;
         CREATE TRIGGER audit AFTER INSERT OR UPDATE ON bars FOR EACH ROW EXECUTE FUNCTION audit_bars();",
    );
}

/// Final bars written more than once, as the trigger saw them.
fn finals_written_twice(url: &str) -> String {
    psql(
        url,
        "SELECT symbol, window_start, count(*) FROM audit WHERE final
         GROUP BY symbol, window_start, window_end HAVING count(*) > 1",
    )
}

/// A live pipeline: `produce` into `ticks` for `seconds`, and exactly-once `aggregate`
/// (1s windows, a revision of each open window every 500ms) into `ticks.bars`.
struct Pipeline {
    produce: Running,
    aggregate: Running,
    seconds: u64,
}

impl Pipeline {
    fn start(bootstrap: &str, ticks: &str, seconds: u64) -> Pipeline {
        let mut produce = stockstream();
        produce.args([
            "-b",
            bootstrap,
            "produce",
            "--topic",
            ticks,
            "--interval",
            "2ms",
        ]);
        let mut aggregate = stockstream();
        aggregate
            .args(["-b", bootstrap, "aggregate", "--topic", ticks])
            .args([
                "--output-topic",
                &format!("{ticks}.bars"),
                "--from",
                "earliest",
            ])
            .args(["--window", "1s", "--watermark", "500ms", "--emit", "update"])
            .args(["--update-interval", "500ms", "--idle-timeout", "3s"])
            .args([
                "--group",
                &unique("g-store-agg"),
                "--instance-id",
                &unique("agg"),
            ]);
        Pipeline {
            produce: Running::spawn(produce),
            aggregate: Running::spawn(aggregate),
            seconds,
        }
    }

    /// Stops the feed after its time, lets the idle partitions' windows close, and stops
    /// aggregate.
    fn finish(self, began: Instant) {
        let left = Duration::from_secs(self.seconds).saturating_sub(began.elapsed());
        std::thread::sleep(left);
        self.produce
            .signal_and_wait(libc::SIGINT, Duration::from_secs(30))
            .assert_code(0);
        std::thread::sleep(Duration::from_secs(5));
        self.aggregate
            .signal_and_wait(libc::SIGINT, Duration::from_secs(60))
            .assert_code(0);
    }
}

fn store(bootstrap: &str, url: &str, topic: &str, group: &str, extra: &[&str]) -> Running {
    let mut cmd = stockstream();
    cmd.args(["-b", bootstrap, "store", "--topic", topic, "--group", group])
        .args(["--batch-wait", "100ms", "--progress-interval", "2s"])
        .args(extra)
        .env("STOCKSTREAM_POSTGRES_URL", url);
    Running::spawn(cmd)
}

/// Waits until the stored offsets reach the end of every partition of `topic`.
#[track_caller]
fn wait_caught_up(bootstrap: &str, url: &str, topic: &str, group: &str, limit: Duration) {
    let ends = end_offsets(bootstrap, topic);
    let deadline = Instant::now() + limit;
    loop {
        let stored = stored_offsets(url, group);
        if stored == ends {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stored offsets {stored:?} did not reach the topic's end {ends:?} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The table holds exactly what the topic says, and every final bar was written once.
#[track_caller]
fn assert_table_is_the_topic(bootstrap: &str, url: &str, topic: &str) {
    let want = expected_table(bootstrap, topic);
    let got = table(url);
    let finals = want.values().filter(|b| b.is_final).count();
    assert!(finals > 100, "a real load: {finals} final bars");
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(5)
        .collect();
    let differ: Vec<_> = want
        .iter()
        .filter(|(k, b)| got.get(*k).is_some_and(|g| g != *b))
        .take(5)
        .map(|(k, b)| format!("{k:?}: topic {b:?}, table {:?}", got[k]))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "table ({} rows) != topic ({} bars): missing {missing:?}, extra {extra:?}, differ {differ:#?}",
        got.len(),
        want.len()
    );
}

fn database(prefix: &str) -> String {
    postgres().database(&unique(prefix).replace('-', "_"))
}

/// Runs `store` once against an empty topic: the schema is there afterwards.
fn create_schema(bootstrap: &str, url: &str) {
    let empty = unique("store-empty");
    create_topic_on(bootstrap, &empty, 1);
    let run =
        store(bootstrap, url, &empty, "schema", &["--stop-at-end"]).wait(Duration::from_secs(60));
    run.assert_code(0);
}

/// A live run under way: the pipeline feeding `bars`, and the database `url` with its
/// schema and the audit trigger in place.
struct Live {
    bootstrap: String,
    url: String,
    bars: String,
    group: String,
    pipeline: Pipeline,
    began: Instant,
}

impl Live {
    fn start(url: String, name: &str, seconds: u64) -> Live {
        let bootstrap = broker().bootstrap.clone();
        create_schema(&bootstrap, &url);
        audit(&url);
        let ticks = unique(name);
        create_topic_on(&bootstrap, &ticks, 3);
        let began = Instant::now();
        let pipeline = Pipeline::start(&bootstrap, &ticks, seconds);
        // The bars topic appears when aggregate starts.
        std::thread::sleep(Duration::from_secs(3));
        Live {
            bootstrap,
            url,
            bars: format!("{ticks}.bars"),
            group: unique("g-store"),
            pipeline,
            began,
        }
    }

    fn store(&self) -> Running {
        store(&self.bootstrap, &self.url, &self.bars, &self.group, &[])
    }

    /// Ends the pipeline, waits for `job` to store all of it and stops it; then the table
    /// must equal the topic, each final bar written once.
    fn settle(self, job: Running) -> Run {
        self.pipeline.finish(self.began);
        let (b, url) = (&self.bootstrap, &self.url);
        wait_caught_up(b, url, &self.bars, &self.group, Duration::from_secs(90));
        let run = job.signal_and_wait(libc::SIGINT, Duration::from_secs(30));
        run.assert_code(0);
        assert_table_is_the_topic(b, url, &self.bars);
        assert_eq!(finals_written_twice(url), "", "{}", run.stderr);
        run
    }
}

#[test]
fn the_table_equals_the_bars_topic_after_a_live_run() {
    let live = Live::start(database("store_live"), "store-live", 15);
    let job = live.store();
    let url = live.url.clone();
    let run = live.settle(job);
    // Revisions came and were replaced by their final bars.
    let revisions: i64 = psql(&url, "SELECT count(*) FROM audit WHERE NOT final")
        .trim()
        .parse()
        .unwrap();
    assert!(
        revisions > 0,
        "aggregate sent revisions and store wrote them"
    );
    assert!(run.stderr.contains("📋 Summary"), "{}", run.stderr);
}

#[test]
fn sigkilled_three_times_no_bar_is_missing_or_written_twice() {
    let live = Live::start(database("store_kill"), "store-kill", 20);
    let mut job = live.store();
    let mut seed = u64::try_from(crate::support::now_ms()).unwrap() | 1;
    eprintln!("kill seed: {seed}");
    for _ in 0..3 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(2_000 + seed % 3_000));
        let killed = job.signal_and_wait(libc::SIGKILL, Duration::from_secs(30));
        assert_eq!(killed.code, None, "killed by the signal: {}", killed.stderr);
        job = live.store();
    }
    live.settle(job);
}

#[test]
fn postgres_restarted_mid_run_store_rides_it_out() {
    let mut pg = DedicatedPostgres::start();
    let live = Live::start(pg.url.clone(), "store-pg-restart", 20);
    let job = live.store();
    std::thread::sleep(Duration::from_secs(5));
    pg.stop();
    std::thread::sleep(Duration::from_secs(5));
    pg.resume();
    let run = live.settle(job);
    assert!(run.stderr.contains("trying again"), "{}", run.stderr);
    assert!(run.stderr.contains("is back"), "{}", run.stderr);
}

/// How PostgreSQL goes away under a running store, for longer than its patience.
enum Away {
    /// Stopped (its connections closed).
    Stopped,
    /// Frozen (SIGSTOP): the connections stay open and nothing is answered.
    Frozen,
}

/// store has caught up on 200 bars; PostgreSQL goes away for good while 100 more come. store
/// must stop by itself with exit 7, naming the server and saying nothing is lost, once; back,
/// a new run stores all 300 bars once, with the offsets at the topic's end. Returns the
/// first run.
fn postgres_goes_away_for_longer_than_the_patience(away: Away, extra: &[&str]) -> Run {
    let bootstrap = broker().bootstrap.clone();
    let mut pg = DedicatedPostgres::start();
    let url = pg.url.clone();
    let topic = unique("store-pg-away");
    create_topic_on(&bootstrap, &topic, 2);
    let first: Vec<Raw> = (0..200).map(|i| bar_record(i, i % 2)).collect();
    produce_raw_on(&bootstrap, &topic, &first);
    let group = unique("g-store");
    let mut args = vec!["--postgres-patience", "3s"];
    args.extend_from_slice(extra);
    let job = store(&bootstrap, &url, &topic, &group, &args);
    wait_caught_up(&bootstrap, &url, &topic, &group, Duration::from_secs(60));
    let frozen = match away {
        Away::Stopped => {
            pg.stop();
            None
        }
        Away::Frozen => Some(pg.freeze()),
    };
    let more: Vec<Raw> = (200..300).map(|i| bar_record(i, i % 2)).collect();
    produce_raw_on(&bootstrap, &topic, &more);
    let run = job.wait(Duration::from_secs(60));
    match frozen {
        Some(frozen) => drop(frozen),
        None => pg.resume(),
    }
    assert_eq!(run.code, Some(7), "{}", run.stderr);
    assert!(
        run.stderr.contains("longer than --postgres-patience (3s)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("writing bars on postgres://").count(),
        1,
        "the failure said once, not again while letting the partitions go:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("start `store` again"), "{}", run.stderr);
    let again = store(&bootstrap, &url, &topic, &group, &["--stop-at-end"]);
    again.wait(Duration::from_secs(60)).assert_code(0);
    assert_eq!(
        stored_offsets(&url, &group),
        end_offsets(&bootstrap, &topic)
    );
    assert_eq!(table(&url).len(), 300);
    run
}

#[test]
fn postgres_away_longer_than_the_patience_stops_store_with_a_clear_error_then_it_resumes() {
    postgres_goes_away_for_longer_than_the_patience(Away::Stopped, &[]);
}

/// PostgreSQL stops answering without closing the connection (SIGSTOP: a frozen machine, or
/// a network that drops everything): the write in flight is not waited for without end. It
/// counts as away after 10 s (the least a write may wait, above the 3 s patience), a new
/// connection (`--timeout 5s`) gets no answer either, and store stops.
#[test]
fn postgres_frozen_mid_run_stops_store_within_its_bound_then_it_resumes() {
    let run = postgres_goes_away_for_longer_than_the_patience(Away::Frozen, &["--timeout", "5s"]);
    assert!(
        run.stderr
            .contains("did not answer within 10s; trying again"),
        "{}",
        run.stderr
    );
}

/// A final bar of AAPL's `i`-th one-second window, for the given partition.
fn bar_record(i: i64, partition: i64) -> Raw {
    let start = 1_764_460_800_000 + i * 1000;
    let text = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let symbol = if partition == 0 { "AAPL" } else { "TSLA" };
    let value = serde_json::json!({
        "symbol": symbol, "window_start": text(start), "window_end": text(start + 1000),
        "open": 100.0 + i as f64, "high": 101.5 + i as f64, "low": 99.25 + i as f64,
        "close": 100.5 + i as f64, "volume": 1000 + i, "trades": 3 + i % 5,
        "vwap": 100.25 + i as f64, "avg_price": 100.3 + i as f64, "final": true
    });
    Raw {
        partition: i32::try_from(partition).unwrap(),
        key: Some(symbol.as_bytes().to_vec()),
        value: Some(serde_json::to_vec(&value).unwrap()),
    }
}

#[test]
fn records_that_are_not_bars_go_to_the_dead_letter_topic_with_their_reasons() {
    let bootstrap = broker().bootstrap.clone();
    let url = database("store_dlq");
    let topic = unique("store-dlq");
    create_topic_on(&bootstrap, &topic, 1);
    let mut records = vec![bar_record(0, 0)];
    let junk: [&[u8]; 4] = [
        b"not json at all",
        br#"{"symbol":"AAPL","price":1.0}"#,
        br#"{"symbol":"ZZZZ","window_start":"2026-11-30T00:00:00Z","window_end":"2026-11-30T00:00:01Z","open":1,"high":1,"low":1,"close":1,"volume":1,"trades":1,"vwap":1,"avg_price":1,"final":true}"#,
        br#"{"symbol":"AAPL","window_start":"2026-11-30T00:00:01Z","window_end":"2026-11-30T00:00:00Z","open":1,"high":1,"low":1,"close":1,"volume":1,"trades":1,"vwap":1,"avg_price":1,"final":true}"#,
    ];
    for j in junk {
        records.push(Raw {
            partition: 0,
            key: Some(b"AAPL".to_vec()),
            value: Some(j.to_vec()),
        });
    }
    records.push(bar_record(1, 0));
    produce_raw_on(&bootstrap, &topic, &records);
    let group = unique("g-store");
    let run =
        store(&bootstrap, &url, &topic, &group, &["--stop-at-end"]).wait(Duration::from_secs(60));
    run.assert_code(0);
    assert_eq!(table(&url).len(), 2, "the two bars are stored");
    assert_eq!(
        stored_offsets(&url, &group),
        end_offsets(&bootstrap, &topic)
    );
    let dead = read_all_on(&bootstrap, &format!("{topic}.dlq"));
    assert_eq!(dead.len(), 4, "{dead:?}");
    let header = |r: &crate::support::kafka::Read, k: &str| {
        r.headers
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut offsets: Vec<String> = dead
        .iter()
        .map(|r| header(r, "stockstream.source.offset"))
        .collect();
    offsets.sort();
    assert_eq!(offsets, ["1", "2", "3", "4"]);
    let reasons: HashMap<String, String> = dead
        .iter()
        .map(|r| {
            (
                header(r, "stockstream.source.offset"),
                header(r, "stockstream.error.reason"),
            )
        })
        .collect();
    assert_eq!(reasons["1"], "invalid_json");
    assert_eq!(reasons["2"], "invalid_bar");
    assert_eq!(reasons["3"], "invalid_bar");
    assert_eq!(reasons["4"], "invalid_bar");
    for r in &dead {
        assert_eq!(header(r, "stockstream.source.topic"), topic);
        assert_eq!(header(r, "stockstream.source.partition"), "0");
        assert!(!header(r, "stockstream.error.message").is_empty());
    }
    assert_eq!(dead[0].payload, b"not json at all");
}

#[test]
fn a_schema_newer_than_this_build_is_refused() {
    let bootstrap = broker().bootstrap.clone();
    let url = database("store_newer");
    create_schema(&bootstrap, &url);
    psql(&url, "INSERT INTO stockstream_schema (version) VALUES (99)");
    let topic = unique("store-newer");
    create_topic_on(&bootstrap, &topic, 1);
    let run =
        store(&bootstrap, &url, &topic, "g", &["--stop-at-end"]).wait(Duration::from_secs(60));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("schema version 99"), "{}", run.stderr);
    assert!(run.stderr.contains("upgrade stockstream"), "{}", run.stderr);
}

#[test]
fn the_password_is_never_printed() {
    let pg = postgres();
    let password = crate::support::postgres::PASSWORD;
    assert!(
        pg.url.contains(password),
        "the test URL carries the password"
    );
    // A wrong password: refused, and the URL shown with *** in its place.
    let wrong = pg.url.replace(password, "Wr0ng-pass-word");
    let run = run_for(
        history_cmd(&wrong, &["--since", "1h"]),
        Duration::from_secs(60),
    );
    assert_eq!(run.code, Some(7), "{}", run.stderr);
    assert!(!run.stderr.contains("Wr0ng-pass-word"), "{}", run.stderr);
    assert!(run.stderr.contains(":***@"), "{}", run.stderr);
    assert!(
        run.stderr.contains("password authentication failed"),
        "{}",
        run.stderr
    );
    // Unreachable: the same.
    let nowhere = format!(
        "postgres://stockstream:{password}@127.0.0.1:{}/x",
        crate::support::free_port()
    );
    let run = run_for(
        history_cmd(&nowhere, &["--since", "1h"]),
        Duration::from_secs(60),
    );
    assert_eq!(run.code, Some(7), "{}", run.stderr);
    assert!(!run.stderr.contains(password), "{}", run.stderr);
    assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
    // Nor in --help, where the environment's URL would otherwise be shown.
    let mut help = stockstream();
    help.args(["store", "--help"])
        .env("STOCKSTREAM_POSTGRES_URL", &pg.url);
    let run = run_for(help, Duration::from_secs(30));
    assert!(!run.stdout.contains(password), "{}", run.stdout);
}

fn history_cmd(url: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = stockstream();
    cmd.arg("history")
        .args(args)
        .env("STOCKSTREAM_POSTGRES_URL", url);
    cmd
}

#[test]
fn tls_as_the_url_says_verify_full_against_the_servers_ca() {
    let bootstrap = broker().bootstrap.clone();
    let pg = postgres();
    let ca = pg.ca.as_ref().expect("the test PostgreSQL serves TLS");
    let url = database("store_tls");
    create_schema(&bootstrap, &url);
    let with = |mode: &str| {
        let base = url.split('?').next().unwrap();
        format!("{base}?sslmode={mode}&sslrootcert={}", ca.display())
    };
    run_for(
        history_cmd(&with("verify-full"), &["--since", "1h"]),
        Duration::from_secs(60),
    )
    .assert_code(0);
    run_for(
        history_cmd(&with("require"), &["--since", "1h"]),
        Duration::from_secs(60),
    )
    .assert_code(0);
    // A CA that did not sign the server's certificate: refused.
    let stranger = broker().secure().ca.clone();
    let base = url.split('?').next().unwrap();
    let wrong = format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        stranger.display()
    );
    let run = run_for(
        history_cmd(&wrong, &["--since", "1h"]),
        Duration::from_secs(60),
    );
    assert_eq!(run.code, Some(7), "{}", run.stderr);
    assert!(run.stderr.contains("hint: sslrootcert"), "{}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "{}",
        run.stderr
    );
}

#[test]
fn history_resamples_as_an_independent_computation_does() {
    let bootstrap = broker().bootstrap.clone();
    let url = database("store_history");
    let topic = unique("store-history");
    create_topic_on(&bootstrap, &topic, 2);
    // 300 one-second bars per symbol with varied prices, and one revision left unfinished.
    let mut records: Vec<Raw> = (0..600).map(|i| bar_record(i / 2, i % 2)).collect();
    let mut open = bar_record(400, 0);
    let text = String::from_utf8(open.value.take().unwrap())
        .unwrap()
        .replace("\"final\":true", "\"final\":false");
    open.value = Some(text.into_bytes());
    records.push(open);
    produce_raw_on(&bootstrap, &topic, &records);
    let group = unique("g-store");
    store(&bootstrap, &url, &topic, &group, &["--stop-at-end"])
        .wait(Duration::from_secs(60))
        .assert_code(0);
    let stored = table(&url);
    assert_eq!(stored.len(), 601);

    let resample_ms = 7_000;
    let run = run_for(
        history_cmd(
            &url,
            &[
                "--from",
                "2025-11-30T00:00:00Z",
                "--resample",
                "7s",
                "-o",
                "json",
            ],
        ),
        Duration::from_secs(60),
    );
    run.assert_code(0);
    let got: BTreeMap<Key, Stored> = run
        .stdout
        .lines()
        .map(|l| from_json(&serde_json::from_str(l).unwrap()))
        .collect();

    // The same merge, computed here from the rows.
    let mut groups: BTreeMap<Key, Vec<(&Key, &Stored)>> = BTreeMap::new();
    for (k, b) in &stored {
        let bucket = k.1.div_euclid(resample_ms) * resample_ms;
        groups
            .entry((k.0.clone(), bucket, bucket + resample_ms))
            .or_default()
            .push((k, b));
    }
    let round4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let want: BTreeMap<Key, Stored> = groups
        .into_iter()
        .map(|(key, mut bars)| {
            bars.sort_by_key(|(k, _)| (k.1, k.2));
            let volume: i64 = bars.iter().map(|(_, b)| b.volume).sum();
            let trades: i64 = bars.iter().map(|(_, b)| b.trades).sum();
            let pv: f64 = bars
                .iter()
                .map(|(_, b)| b.vwap.unwrap() * b.volume as f64)
                .sum();
            let pt: f64 = bars
                .iter()
                .map(|(_, b)| b.avg_price * b.trades as f64)
                .sum();
            let merged = Stored {
                open: bars[0].1.open,
                high: bars.iter().map(|(_, b)| b.high).fold(f64::MIN, f64::max),
                low: bars.iter().map(|(_, b)| b.low).fold(f64::MAX, f64::min),
                close: bars[bars.len() - 1].1.close,
                volume,
                trades,
                vwap: Some(round4(pv / volume as f64)),
                avg_price: round4(pt / trades as f64),
                is_final: bars.iter().all(|(_, b)| b.is_final),
            };
            (key, merged)
        })
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, w) in &want {
        let g = &got[k];
        let close = |a: f64, b: f64| (a - b).abs() < 1.5e-4;
        assert!(
            g.open == w.open
                && g.high == w.high
                && g.low == w.low
                && g.close == w.close
                && g.volume == w.volume
                && g.trades == w.trades
                && g.is_final == w.is_final
                && close(g.vwap.unwrap(), w.vwap.unwrap())
                && close(g.avg_price, w.avg_price),
            "{k:?}: history {g:?}, computed {w:?}"
        );
    }
    assert!(
        want.values().any(|b| !b.is_final),
        "the bucket with the revision is not final"
    );

    // One symbol, a range, and an empty answer that says so.
    let run = run_for(
        history_cmd(
            &url,
            &[
                "-s",
                "TSLA",
                "--from",
                "2025-11-30T00:00:10Z",
                "--to",
                "2025-11-30T00:00:20Z",
                "-o",
                "csv",
            ],
        ),
        Duration::from_secs(60),
    );
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "symbol,window_start,window_end,open,high,low,close,volume,trades,vwap,avg_price,final"
    );
    assert_eq!(lines.len(), 11, "{}", run.stdout);
    assert!(
        lines[1..].iter().all(|l| l.starts_with("TSLA,")),
        "{}",
        run.stdout
    );
    let run = run_for(
        history_cmd(
            &url,
            &[
                "--from",
                "2001-01-01T00:00:00Z",
                "--to",
                "2001-01-02T00:00:00Z",
            ],
        ),
        Duration::from_secs(60),
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("No bars stored"), "{}", run.stderr);
}

#[test]
fn the_dashboard_loads_its_history_from_the_store() {
    let bootstrap = broker().bootstrap.clone();
    let url = database("store_dashboard");
    let topic = unique("store-dash");
    create_topic_on(&bootstrap, &topic, 2);
    let records: Vec<Raw> = (0..40).map(|i| bar_record(i / 2, i % 2)).collect();
    produce_raw_on(&bootstrap, &topic, &records);
    store(
        &bootstrap,
        &url,
        &topic,
        &unique("g-store"),
        &["--stop-at-end"],
    )
    .wait(Duration::from_secs(60))
    .assert_code(0);
    // The dashboard reads another bars topic, empty: whatever it shows came from PostgreSQL.
    let empty = unique("store-dash-empty");
    create_topic_on(&bootstrap, &empty, 1);
    let port = crate::support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = stockstream();
    cmd.args([
        "-b",
        &bootstrap,
        "dashboard",
        "--listen",
        &listen,
        "--topic",
        &empty,
    ])
    .env("STOCKSTREAM_POSTGRES_URL", &url);
    let dashboard = Running::spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = loop {
        if let Ok((200, body)) = http_get(&listen, "/api/state") {
            let state: Value = serde_json::from_str(&body).unwrap_or_default();
            if state["candles"]["TSLA"]
                .as_array()
                .is_some_and(|c| c.len() == 20)
            {
                break state;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no history on the page within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let aapl = state["candles"]["AAPL"].as_array().unwrap();
    assert_eq!(aapl.len(), 20);
    let stored = table(&url);
    for candle in aapl {
        let (key, bar) = from_json(candle);
        assert_eq!(stored.get(&key), Some(&bar), "{candle}");
    }
    let run = dashboard.signal_and_wait(libc::SIGINT, Duration::from_secs(30));
    run.assert_code(0);
    assert!(
        run.stderr.contains("40 bars of history from PostgreSQL"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(crate::support::postgres::PASSWORD),
        "{}",
        run.stderr
    );
}

/// Two instances of one group share the partitions; one is frozen (SIGSTOP) with bars read
/// but not written, past its session timeout, so the other takes its partitions over and
/// writes on. Thawed, the first finds the stored offsets moved: it writes nothing of what
/// it held and reads on from the database, and its metrics count each takeover.
#[test]
fn a_frozen_instance_writes_nothing_its_successor_already_wrote() {
    let live = Live::start(database("store_zombie"), "store-zombie", 25);
    let instance = |wait: &str, extra: &[&str]| {
        let mut cmd = stockstream();
        cmd.args([
            "-X",
            "session.timeout.ms=6000",
            "-b",
            &live.bootstrap,
            "store",
        ])
        .args(["--topic", &live.bars, "--group", &live.group])
        .args(["--batch-wait", wait, "--progress-interval", "2s"])
        .args(extra)
        .env("STOCKSTREAM_POSTGRES_URL", &live.url);
        Running::spawn(cmd)
    };
    // The one to freeze holds its bars for 4 s before writing them.
    let metrics = format!("127.0.0.1:{}", free_port());
    let zombie = instance("4s", &["--metrics-addr", &metrics]);
    let other = instance("100ms", &[]);
    std::thread::sleep(Duration::from_secs(8));
    zombie.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(14));
    zombie.signal(libc::SIGCONT);
    let run = live.settle(other);
    let takeovers = sample(&scrape(&metrics), "stockstream_store_takeovers_total");
    let zombie = zombie.signal_and_wait(libc::SIGINT, Duration::from_secs(30));
    zombie.assert_code(0);
    let moved = zombie.stderr.matches("moved under this instance").count();
    assert!(
        moved > 0,
        "the thawed instance noticed: {}\n--- the other\n{}",
        zombie.stderr,
        run.stderr
    );
    assert_eq!(
        takeovers,
        Some(moved as f64),
        "each takeover counted: {}",
        zombie.stderr
    );
}
