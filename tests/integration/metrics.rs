//! `--metrics-addr` as a monitoring system sees it: a real Prometheus scrapes `aggregate`,
//! and its query API must report exactly what the run did (records read, dead letters by
//! reason, bars in the output topic); `store`'s metrics equal what it wrote to PostgreSQL
//! and to its dead-letter topic; `promtool check metrics` accepts what `produce`,
//! `aggregate`, `store` and the dashboard serve; a taken or malformed address is a clear
//! error before Kafka is asked.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::compose::{dashboard_queries, metric_names};
use crate::support::kafka::{create_topic, produce_raw, read_all, read_committed, Raw, Read};
use crate::support::model::{expected, log_of};
use crate::support::postgres::{postgres, psql};
use crate::support::{http_get, on_broker, run_for, stockstream, unique, Running};

/// 2026-01-01T00:00:00Z in Unix seconds: the ticks live well in the past.
const T0: f64 = 1_767_225_600.0;

/// How long Prometheus may take to show what the job has published.
const SETTLE: Duration = Duration::from_secs(60);

/// A free port on the loopback interface (bound, then let go).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free loopback port")
}

/// The Debian package's binary `name`, or a failure that says how to get it.
fn tool(name: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: these tests run a real Prometheus; install it with \
         `apt-get install prometheus` (it brings prometheus and promtool)",
        path.display()
    );
    path
}

/// The /metrics text at `address`, once it answers (at most 30 s).
pub fn scrape(address: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http_get(address, "/metrics") {
            Ok((200, body)) => return body,
            other if Instant::now() > deadline => {
                panic!("no metrics at http://{address}/metrics: {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `promtool check metrics` on `text`: the Prometheus project's own linter of the format
/// and its naming conventions (units, `_total` counters, help text).
#[track_caller]
fn assert_promtool_accepts(text: &str) {
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting promtool");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("feeding promtool");
    let out = child.wait_with_output().expect("running promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n--- the metrics\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every metric the repository's Grafana dashboard (deploy/grafana) shows of this command
/// (names beginning with `prefix`) or of the process is in `text`, what a real run served.
#[track_caller]
fn assert_dashboard_metrics_served(prefix: &str, text: &str) {
    let names: BTreeSet<String> = dashboard_queries()
        .iter()
        .flat_map(|q| metric_names(q))
        .filter(|n| n.starts_with(prefix) || n.starts_with("process_"))
        .collect();
    assert!(
        !names.is_empty(),
        "the dashboard shows nothing of {prefix}…"
    );
    for name in names {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{"))),
            "the dashboard queries {name}, which is not served:\n{text}"
        );
    }
}

/// The value of a metric without labels in /metrics text, if it is there.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (n, value) = line.split_once(' ')?;
        (n == name).then(|| value.trim().parse().ok())?
    })
}

/// Each series of a metric with one label in /metrics text: that label's value → the
/// sample's value.
fn by_label(text: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let head = format!("{name}{{{label}=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&head)?;
            let (key, value) = rest.split_once("\"} ")?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Dead letters counted by their `stockstream.error.reason` header, as metric values.
#[track_caller]
fn by_reason(dead_letters: &[Read]) -> BTreeMap<String, f64> {
    crate::support::kafka::dead_letters_by_reason(dead_letters)
        .into_iter()
        .map(|(reason, n)| (reason, n as f64))
        .collect()
}

/// Stops `job` with Ctrl+C: it exits 0, and its log said where its metrics were.
#[track_caller]
fn stop_having_announced(job: Running, metrics: &str) {
    let run = job.signal_and_wait(libc::SIGINT, Duration::from_secs(30));
    run.assert_code(0);
    assert!(
        run.stderr
            .contains(&format!("Metrics at http://{metrics}/metrics")),
        "{}",
        run.stderr
    );
}

/// A Prometheus server of the test's own: free port, data in a temporary folder, scraping
/// `targets` every second. Stopped (and its folder removed) when dropped, a failed
/// assertion included.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    address: String,
}

impl Prometheus {
    /// Starts it, scraping each (job, host:port) of `targets`; returns once it is ready.
    fn start(targets: &[(&str, &str)]) -> Prometheus {
        let binary = tool("prometheus");
        let dir = std::env::temp_dir().join(unique("stockstream-prometheus"));
        std::fs::create_dir_all(&dir).expect("a folder for Prometheus");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        for (job, target) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).expect("writing prometheus.yml");
        let address = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("a log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        let prometheus = Prometheus {
            child,
            dir,
            address,
        };
        prometheus.wait_ready();
        prometheus
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(http_get(&self.address, "/-/ready"), Ok((200, _))) {
            assert!(
                Instant::now() < deadline,
                "Prometheus was not ready within 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: each series' labels and value.
    fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encoded(promql));
        let (status, body) = http_get(&self.address, &path).expect("asking Prometheus");
        assert_eq!(status, 200, "{promql}: {body}");
        let doc: serde_json::Value = serde_json::from_str(&body).expect("Prometheus' JSON");
        let result = doc["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        result
            .iter()
            .map(|series| {
                let labels = series["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = series["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect()
    }

    /// The one value of a query that gives one series (`None`: none yet).
    fn value(&self, promql: &str) -> Option<f64> {
        self.query(promql).first().map(|(_, v)| *v)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A tick in the wire format, `at` seconds after T0.
fn tick(symbol: &str, at: f64, price: f64, volume: u64) -> Raw {
    Raw {
        partition: 0,
        key: Some(symbol.as_bytes().to_vec()),
        value: Some(
            format!(
                r#"{{"symbol":"{symbol}","price":{price},"volume":{volume},"timestamp":{}}}"#,
                T0 + at
            )
            .into_bytes(),
        ),
    }
}

/// A bar of `symbol`'s ten-second window that starts `minute` minutes after 10:00.
fn bar(partition: i32, symbol: &str, minute: u32, is_final: bool) -> Raw {
    Raw {
        partition,
        key: Some(symbol.as_bytes().to_vec()),
        value: Some(
            format!(
                r#"{{"symbol":"{symbol}","window_start":"2026-11-30T10:{minute:02}:00Z","window_end":"2026-11-30T10:{minute:02}:10Z","open":1.0,"high":2.0,"low":0.5,"close":1.5,"volume":10,"trades":2,"vwap":1.25,"avg_price":1.25,"final":{is_final}}}"#
            )
            .into_bytes(),
        ),
    }
}

fn on(partition: i32, raw: Raw) -> Raw {
    Raw { partition, ..raw }
}

fn bad(partition: i32, key: &str, value: Option<&[u8]>) -> Raw {
    Raw {
        partition,
        key: Some(key.as_bytes().to_vec()),
        value: value.map(<[u8]>::to_vec),
    }
}

/// Good ticks across several 4-second windows in three partitions, late ticks, and bad
/// records of five kinds.
fn data_set() -> Vec<Raw> {
    vec![
        on(0, tick("AAPL", 0.5, 100.0, 10)),
        on(0, tick("MSFT", 1.0, 400.0, 3)),
        on(0, tick("AAPL", 3.0, 101.0, 20)),
        bad(0, "AAPL", Some(b"this is not json")),
        on(0, tick("AAPL", 9.0, 103.0, 7)),
        on(0, tick("AAPL", 1.5, 98.0, 3)), // late
        bad(0, "AAPL", Some(b"{\"symbol\":\"AA\xffPL\"}")),
        on(0, tick("AAPL", 10.0, 104.0, 1)),
        on(1, tick("TSLA", 0.1, 250.0, 100)),
        on(1, tick("TSLA", 4.0, 251.0, 1)),
        bad(
            1,
            "TSLA",
            Some(br#"{"symbol":"TSLA","price":0,"volume":1,"timestamp":1767225601}"#),
        ),
        on(1, tick("TSLA", 13.0, 253.0, 3)),
        on(1, tick("TSLA", 6.0, 252.0, 2)), // late
        bad(1, "TSLA", None),
        on(2, tick("GOOGL", 2.0, 170.0, 5)),
        on(2, tick("GOOGL", 5.0, 171.0, 6)),
        bad(
            2,
            "AAPL",
            Some(br#"{"symbol":"GOOGL","price":171.5,"volume":1,"timestamp":1767225605}"#),
        ),
        on(2, tick("GOOGL", 11.0, 172.0, 7)),
    ]
}

#[test]
fn prometheus_scraping_aggregate_sees_exactly_what_the_run_did() {
    // Before anything else: without Prometheus this test cannot say anything.
    tool("prometheus");
    tool("promtool");
    let topic = unique("metrics-agg");
    create_topic(&topic, 3);
    produce_raw(&topic, &data_set());
    let log = log_of(&topic);
    let (bars, dead) = expected(&log, 4_000, 4_000, 2_000);
    let metrics = format!("127.0.0.1:{}", free_port());
    let output = format!("{topic}.bars");
    let group = unique("g");
    let job = Running::spawn(on_broker(&[
        "aggregate",
        "--topic",
        &topic,
        "--group",
        &group,
        "--from",
        "earliest",
        "--output-topic",
        &output,
        "--output-retention",
        "forever",
        "--window",
        "4s",
        "--watermark",
        "2s",
        "--idle-timeout",
        "2s",
        "--instance-id",
        "metrics",
        "--no-console",
        "--metrics-addr",
        &metrics,
    ]));
    let prometheus = Prometheus::start(&[("aggregate", &metrics)]);

    // What the run did, read back from its topics as a read_committed consumer.
    let written = read_committed(
        &output,
        bars.len(),
        Duration::from_secs(90),
        Duration::from_secs(2),
    );
    let dlq = read_committed(
        &format!("{topic}.dlq"),
        dead.len(),
        Duration::from_secs(30),
        Duration::from_secs(1),
    );
    let held = by_reason(&dlq);
    assert!(
        held.len() >= 5,
        "the data set exercises five reasons: {held:?}"
    );

    // Prometheus' view, once its scrapes have caught up with the job's last publish.
    let read = || prometheus.value("stockstream_aggregate_records_read_total");
    let emitted = || prometheus.value("stockstream_aggregate_bars_emitted_total");
    let served_by_reason = || -> BTreeMap<String, f64> {
        prometheus
            .query("sum by (reason) (stockstream_aggregate_dead_letters_total)")
            .into_iter()
            .map(|(labels, v)| (labels.get("reason").cloned().unwrap_or_default(), v))
            .collect()
    };
    let want_read = Some(log.len() as f64);
    let want_bars = Some(written.len() as f64);
    let deadline = Instant::now() + SETTLE;
    while (read() != want_read || emitted() != want_bars || served_by_reason() != held)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(read(), want_read, "records read = records in the topic");
    assert_eq!(emitted(), want_bars, "bars emitted = bars in {output}");
    assert_eq!(
        served_by_reason(),
        held,
        "dead letters by reason = what {topic}.dlq holds"
    );
    let late = prometheus.value("stockstream_aggregate_records_late_total");
    assert_eq!(
        late,
        held.get("late").copied(),
        "late ticks are the `late` dead letters"
    );
    let committed =
        prometheus.value(r#"sum(stockstream_aggregate_transactions_total{outcome="committed"})"#);
    assert!(committed.is_some_and(|n| n >= 1.0), "{committed:?}");
    let commits = prometheus.value("stockstream_aggregate_commit_duration_seconds_count");
    assert!(commits.is_some_and(|n| n >= 1.0), "{commits:?}");
    let watermarks = prometheus.query("stockstream_aggregate_watermark_seconds");
    assert_eq!(
        watermarks.len(),
        3,
        "one watermark per partition: {watermarks:?}"
    );
    for (labels, at) in &watermarks {
        // As Unix seconds: at least the first tick's time.
        assert!(*at >= T0, "{labels:?}: {at}");
    }
    let lag = prometheus.query("stockstream_aggregate_consumer_lag_records");
    assert_eq!(lag.len(), 3, "{lag:?}");
    assert!(lag.iter().all(|(_, n)| *n == 0.0), "all read: {lag:?}");
    assert!(prometheus
        .value("process_resident_memory_bytes")
        .is_some_and(|b| b > 0.0));

    let text = scrape(&metrics);
    assert_promtool_accepts(&text);
    assert_dashboard_metrics_served("stockstream_aggregate_", &text);
    job.signal_and_wait(libc::SIGINT, Duration::from_secs(60))
        .assert_code(0);
}

#[test]
fn produce_serves_metrics_that_promtool_accepts() {
    tool("promtool");
    let topic = unique("metrics-produce");
    create_topic(&topic, 3);
    let metrics = format!("127.0.0.1:{}", free_port());
    let job = Running::spawn(on_broker(&[
        "produce",
        "--topic",
        &topic,
        "--rate",
        "200",
        "--metrics-addr",
        &metrics,
    ]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = scrape(&metrics);
        if sample(&text, "stockstream_produce_delivery_latency_seconds_count")
            .is_some_and(|n| n > 0.0)
            && sample(&text, "stockstream_produce_records_delivered_total").is_some_and(|n| n > 0.0)
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "nothing delivered within 30 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_promtool_accepts(&text);
    assert_dashboard_metrics_served("stockstream_produce_", &text);
    let generated = sample(&text, "stockstream_produce_records_generated_total").unwrap_or(0.0);
    let delivered = sample(&text, "stockstream_produce_records_delivered_total").unwrap_or(0.0);
    assert!(
        generated >= delivered,
        "{generated} generated, {delivered} delivered"
    );
    stop_having_announced(job, &metrics);
}

/// The commands with --metrics-addr that run a job, each with what else it needs to start.
/// Nothing listens at 127.0.0.1:1: a command that asked Kafka or PostgreSQL would say so.
const JOBS: [&[&str]; 3] = [
    &["produce"],
    &["aggregate"],
    &[
        "store",
        "--postgres",
        "postgres://stockstream@127.0.0.1:1/stockstream",
    ],
];

#[test]
fn a_taken_metrics_port_stops_the_command_before_kafka_is_asked() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let address = taken.local_addr().expect("its address").to_string();
    for command in JOBS {
        // Had Kafka been asked, the exit would be 3.
        let mut cmd = stockstream();
        cmd.args(["-b", "127.0.0.1:1"])
            .args(command)
            .args(["--metrics-addr", &address]);
        let run = run_for(cmd, Duration::from_secs(30));
        run.assert_code(1);
        assert!(
            run.stderr
                .contains(&format!("cannot serve metrics on {address}"))
                && run.stderr.contains("in use"),
            "{command:?}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("Kafka") && !run.stderr.contains("PostgreSQL"),
            "{command:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_malformed_metrics_address_is_a_usage_error() {
    for command in JOBS {
        for bad in ["9464", "localhost:port", "127.0.0.1:0"] {
            let mut cmd = stockstream();
            cmd.args(["-b", "127.0.0.1:1"])
                .args(command)
                .args(["--metrics-addr", bad]);
            let run = run_for(cmd, Duration::from_secs(30));
            run.assert_code(2);
            assert!(
                run.stderr.contains("--metrics-addr") && run.stderr.contains(bad),
                "{command:?} {bad}: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn the_compose_prometheus_configuration_passes_promtool() {
    let config = crate::support::broker::repo_root().join("deploy/prometheus/prometheus.yml");
    let out = Command::new(tool("promtool"))
        .args(["check", "config"])
        .arg(&config)
        .output()
        .expect("running promtool");
    assert!(
        out.status.success(),
        "promtool check config {}: {}{}",
        config.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_dashboard_serves_its_streams_and_bars_as_metrics_that_promtool_accepts() {
    tool("promtool");
    let bars = unique("metrics-dash-bars");
    create_topic(&bars, 1);
    let records: Vec<Raw> = (0..5).map(|i| bar(0, "AAPL", i, true)).collect();
    produce_raw(&bars, &records);
    let (page, metrics) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let job = Running::spawn(on_broker(&[
        "dashboard",
        "--listen",
        &page,
        "--topic",
        &bars,
        "--metrics-addr",
        &metrics,
    ]));
    // A browser's stream, held open.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        match TcpStream::connect(&page) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "the page did not listen: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    write!(stream, "GET /events HTTP/1.1\r\nHost: {page}\r\n\r\n").unwrap();
    let text = loop {
        let text = scrape(&metrics);
        if sample(&text, "stockstream_dashboard_streams") == Some(1.0)
            && sample(&text, "stockstream_dashboard_bars_total") == Some(5.0)
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "one stream and five bars not seen within 30 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_promtool_accepts(&text);
    assert!(
        text.contains("process_resident_memory_bytes"),
        "the process metrics too:\n{text}"
    );
    drop(stream);
    loop {
        let text = scrape(&metrics);
        if sample(&text, "stockstream_dashboard_streams") == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream still counted:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    job.signal_and_wait(libc::SIGINT, Duration::from_secs(30))
        .assert_code(0);
}

#[test]
fn store_serves_what_it_wrote_as_metrics_that_promtool_accepts() {
    tool("promtool");
    let topic = unique("metrics-store");
    create_topic(&topic, 2);
    // Ten bars in two partitions, one of them a revision (not final), and two records that
    // are not bars.
    let mut records: Vec<Raw> = (0..6).map(|m| bar(0, "AAPL", m, m != 3)).collect();
    records.push(bad(0, "AAPL", Some(b"this is not json")));
    records.push(bar(0, "ZZZZ", 7, true));
    records.extend((0..4).map(|m| bar(1, "TSLA", m, true)));
    produce_raw(&topic, &records);
    let url = postgres().database(&unique("metrics_store").replace('-', "_"));
    let metrics = format!("127.0.0.1:{}", free_port());
    let group = unique("g-store");
    let mut cmd = on_broker(&[
        "store",
        "--topic",
        &topic,
        "--group",
        &group,
        "--batch-wait",
        "100ms",
        "--metrics-addr",
        &metrics,
    ]);
    cmd.env("STOCKSTREAM_POSTGRES_URL", &url);
    let job = Running::spawn(cmd);

    // Until every record is read and written, each write's duration is in the histogram,
    // and the lag of both partitions is published.
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = scrape(&metrics);
        let transactions = sample(&text, "stockstream_store_transactions_total");
        let lag = by_label(&text, "stockstream_store_consumer_lag_records", "partition");
        if sample(&text, "stockstream_store_records_read_total") == Some(records.len() as f64)
            && sample(&text, "stockstream_store_bars_written_total") == Some(10.0)
            && transactions.is_some_and(|n| n > 0.0)
            && sample(
                &text,
                "stockstream_store_transaction_duration_seconds_count",
            ) == transactions
            && lag.len() == 2
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the run not published within 60 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // What the run did, read back from PostgreSQL and the dead-letter topic.
    let count = |sql: &str| -> f64 { psql(&url, sql).trim().parse().expect("a count") };
    assert_eq!(
        count("SELECT count(*) FROM bars"),
        10.0,
        "every bar is stored"
    );
    assert_eq!(count("SELECT count(*) FROM bars WHERE final"), 9.0);
    assert_eq!(
        sample(&text, "stockstream_store_final_bars_written_total"),
        Some(9.0),
        "final bars written = final rows in the table"
    );
    let held = by_reason(&read_all(&format!("{topic}.dlq")));
    let want: BTreeMap<String, f64> = [("invalid_bar".into(), 1.0), ("invalid_json".into(), 1.0)]
        .into_iter()
        .collect();
    assert_eq!(
        held, want,
        "the two records that are not bars are dead letters"
    );
    assert_eq!(
        by_label(&text, "stockstream_store_dead_letters_total", "reason"),
        held,
        "dead letters by reason = what {topic}.dlq holds"
    );
    assert_eq!(
        sample(&text, "stockstream_store_takeovers_total"),
        Some(0.0)
    );
    let lag = by_label(&text, "stockstream_store_consumer_lag_records", "partition");
    let read_to_the_end: BTreeMap<String, f64> =
        [("0".into(), 0.0), ("1".into(), 0.0)].into_iter().collect();
    assert_eq!(lag, read_to_the_end, "both partitions read to their end");
    assert!(
        sample(&text, "process_resident_memory_bytes").is_some_and(|b| b > 0.0),
        "the process metrics too:\n{text}"
    );
    assert_promtool_accepts(&text);
    assert_dashboard_metrics_served("stockstream_store_", &text);

    stop_having_announced(job, &metrics);
}
