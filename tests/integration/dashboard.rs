//! `stockstream dashboard` in a real browser: headless Chromium, driven over WebDriver by
//! chromedriver, which each test starts itself on a free port and stops at its end (also
//! on a failure). The page loads with no script error and fetches nothing from elsewhere;
//! the bars topic's history shows for every symbol, then new bars arrive without a reload,
//! a revised bar replaces its candle; the health panel matches the topics and the group of
//! a real `aggregate` run; a missing topic or broker is said plainly, never a blank page.
//! Each test saves a screenshot under target/dashboard/ for a person to look at.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::broker::repo_root;
use crate::support::kafka::{create_topic, produce_raw, read_committed, Raw};
use crate::support::{free_port, on_broker, run_for, stockstream, unique, Run, Running};

const SYMBOLS: [&str; 7] = ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"];

/// 2026-01-01T00:00:00Z, in ms: the bars and ticks of these tests live well in the past.
const T0: i64 = 1_767_225_600_000;

/// How long the browser may take to show what was written: the dashboard looks for a
/// missing topic every second and reads bars as they come; measured at 2–4 s on a loaded
/// machine (two cores shared with the other tests), so this is the bound with a margin.
const SHOWN_WITHIN: Duration = Duration::from_secs(20);

/// Headless Chromium under a chromedriver of the test's own. Dropped, it ends the session
/// and kills chromedriver's whole process group (Chromium included).
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<fantoccini::Client>,
    driver: Driver,
}

/// chromedriver, in a process group of its own so that the browsers it started go with it.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = i32::try_from(self.0.id()).expect("a pid");
        // SAFETY: signalling the process group of a child of this test.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// Where a program is on PATH, or a failure that says how to install it.
fn installed(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is not installed: the dashboard tests drive a real headless Chromium. \
                 Install it with `apt-get install -y chromium chromium-driver` (.ci/run does)"
            )
        })
}

impl Browser {
    fn start() -> Self {
        let chromium = installed("chromium");
        let chromedriver = installed("chromedriver");
        let port = free_port();
        let driver = Driver(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("starting chromedriver"),
        );
        wait_for_port(port, Duration::from_secs(30), "chromedriver");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    // As root in a container, Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1400,1000",
                ],
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = runtime
            .block_on(
                fantoccini::ClientBuilder::native()
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session from chromedriver");
        Browser {
            runtime,
            client: Some(client),
            driver,
        }
    }

    fn client(&self) -> &fantoccini::Client {
        self.client.as_ref().expect("a session")
    }

    fn open(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Runs `script` (a function body: it `return`s its answer) in the page.
    fn js(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("running {script}: {e}"))
    }

    /// Waits until `script` answers something other than false or null, at most `limit`;
    /// the answer. Fails with what the page shows.
    #[track_caller]
    fn wait_until(&self, what: &str, limit: Duration, script: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let answer = self.js(script);
            if !matches!(answer, Value::Bool(false) | Value::Null) {
                return answer;
            }
            if Instant::now() >= deadline {
                self.screenshot(&format!("failed-{}.png", std::process::id()));
                panic!(
                    "{what}: not within {limit:?}\n--- the page shows\n{}",
                    self.js("return document.body.innerText")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Saves a screenshot as target/dashboard/NAME.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .expect("a screenshot");
        let dir = repo_root().join("target/dashboard");
        std::fs::create_dir_all(&dir).expect("creating target/dashboard");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("writing the screenshot");
        path
    }

    /// No script error, no console.error, and nothing fetched from another origin.
    #[track_caller]
    fn assert_clean(&self) {
        let errors = self.js("return window.dashboardErrors");
        assert_eq!(errors, json!([]), "errors in the page");
        let elsewhere = self.js("return performance.getEntriesByType('resource')
                .map(r => r.name)
                .filter(n => !n.startsWith(location.origin))");
        assert_eq!(elsewhere, json!([]), "fetched from elsewhere");
    }

    /// Candles drawn per symbol.
    fn drawn(&self) -> BTreeMap<String, u64> {
        serde_json::from_value(self.js(
            "return Object.fromEntries([...document.querySelectorAll('.chart')]
                .map(c => [c.dataset.symbol, Number(c.dataset.candles)]))",
        ))
        .expect("a count per symbol")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), client.close()).await
            });
        }
        let _ = &self.driver;
    }
}

/// Waits until something listens on 127.0.0.1:`port`.
#[track_caller]
fn wait_for_port(port: u16, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET path` on 127.0.0.1:`port`: the status line and the body.
fn get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("reading the answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

/// A dashboard on a free port, with `args` (and `-b` the test broker unless `brokers`).
struct Dashboard {
    running: Running,
    port: u16,
}

impl Dashboard {
    fn start(brokers: Option<&str>, args: &[&str]) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut all = vec!["dashboard", "--listen", &listen];
        all.extend_from_slice(args);
        let cmd = match brokers {
            Some(b) => {
                let mut cmd = stockstream();
                cmd.args(["-b", b]).args(&all);
                cmd
            }
            None => on_broker(&all),
        };
        let running = Running::spawn(cmd);
        wait_for_port(port, Duration::from_secs(30), "the dashboard");
        Dashboard { running, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Ctrl+C, with a browser's stream still open: a clean stop within a bound.
    fn stop(self) -> Run {
        let run = self
            .running
            .signal_and_wait(libc::SIGINT, Duration::from_secs(15));
        run.assert_code(0);
        assert!(run.stderr.contains("Dashboard stopped"), "{}", run.stderr);
        run
    }
}

/// A bar of `symbol` for the window starting `i` × 10 s after T0.
fn bar(symbol: &str, i: i64, close: f64, is_final: bool) -> Raw {
    let iso = |ms: i64| {
        let t =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let start = T0 + i * 10_000;
    let open = 100.0 + (i % 7) as f64;
    let payload = json!({
        "symbol": symbol,
        "window_start": iso(start),
        "window_end": iso(start + 10_000),
        "open": open,
        "high": open.max(close) + 1.0,
        "low": open.min(close) - 1.0,
        "close": close,
        "volume": 1000 + i,
        "trades": 10,
        "vwap": (open + close) / 2.0,
        "avg_price": (open + close) / 2.0,
        "final": is_final,
    });
    let index = SYMBOLS.iter().position(|s| *s == symbol).unwrap();
    Raw {
        partition: i32::try_from(index % 3).unwrap(),
        key: Some(symbol.as_bytes().to_vec()),
        value: Some(payload.to_string().into_bytes()),
    }
}

/// The candle of `symbol`'s window `i` as the page holds it.
fn candle(browser: &Browser, symbol: &str, i: i64) -> Value {
    browser.js(&format!(
        "return window.stockstream.candles('{symbol}').find(c => c.start === {}) || null",
        T0 + i * 10_000
    ))
}

#[test]
fn the_page_shows_the_history_then_live_bars_and_a_revision_replaces_its_candle() {
    let bars = unique("dash-bars");
    let dashboard = Dashboard::start(
        None,
        &[
            "--topic",
            &bars,
            "--input",
            &unique("dash-no-ticks"),
            "--group",
            &unique("dash-g"),
        ],
    );
    let browser = Browser::start();
    browser.open(&dashboard.url());
    // Before the topic exists: said on the page, in words.
    browser.wait_until(
        "the page says the bars topic does not exist",
        SHOWN_WITHIN,
        &format!(
            "return document.querySelector('#banner').textContent
                .includes('topic `{bars}` does not exist yet')"
        ),
    );

    // The topic appears with a history of 20 bars per symbol.
    create_topic(&bars, 3);
    let history: Vec<Raw> = (0..20)
        .flat_map(|i| SYMBOLS.map(|s| bar(s, i, 101.0 + (i % 5) as f64, true)))
        .collect();
    produce_raw(&bars, &history);
    browser.wait_until(
        "20 candles drawn for every symbol",
        SHOWN_WITHIN,
        "return [...document.querySelectorAll('.chart')].every(c => c.dataset.candles === '20')",
    );
    assert_eq!(browser.drawn().len(), 7);
    assert!(browser.js("return document.querySelector('#banner').hidden") == json!(true));

    // A bar of a new window, not final yet: one candle more, without a reload.
    browser.js("window.notReloaded = true; return true");
    produce_raw(&bars, &[bar("AAPL", 20, 110.0, false)]);
    browser.wait_until(
        "the new bar drawn",
        SHOWN_WITHIN,
        "return document.querySelector('.chart[data-symbol=AAPL]').dataset.candles === '21'",
    );
    assert_eq!(candle(&browser, "AAPL", 20)["final"], json!(false));
    // Its final revision replaces it.
    produce_raw(&bars, &[bar("AAPL", 20, 111.5, true)]);
    browser.wait_until(
        "the final revision in place of the open window",
        SHOWN_WITHIN,
        &format!(
            "return window.stockstream.candles('AAPL').some(c => c.start === {} && c.final)",
            T0 + 20 * 10_000
        ),
    );
    let revised = candle(&browser, "AAPL", 20);
    assert_eq!(revised["close"], json!(111.5), "{revised}");
    assert_eq!(browser.drawn()["AAPL"], 21);
    assert_eq!(browser.js("return window.notReloaded"), json!(true));

    // The input topic and its dead letters are missing: said so, not left blank.
    let feeds = browser.js("return document.querySelector('#feeds').innerText");
    assert!(
        feeds.as_str().unwrap().contains("does not exist yet"),
        "{feeds}"
    );
    browser.assert_clean();
    let shot = browser.screenshot("screenshot.png");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    // Stopped with the page's stream open.
    dashboard.stop();
}

#[test]
fn without_a_broker_the_page_says_so_and_the_server_keeps_answering() {
    let dashboard = Dashboard::start(Some("127.0.0.1:1"), &[]);
    let browser = Browser::start();
    browser.open(&dashboard.url());
    let banner = browser.wait_until(
        "the page says Kafka does not answer",
        SHOWN_WITHIN,
        "const b = document.querySelector('#banner');
         return !b.hidden && b.textContent.includes('does not answer') && b.textContent",
    );
    assert!(
        banner.as_str().unwrap().contains("Kafka at 127.0.0.1:1"),
        "{banner}"
    );
    let charts = browser.js("return document.querySelector('#charts').innerText");
    assert_eq!(
        charts.as_str().unwrap().matches("AAPL").count(),
        1,
        "every chart is there, empty: {charts}"
    );
    browser.assert_clean();
    browser.screenshot("no-broker.png");
    let (status, body) = get(dashboard.port, "/api/state");
    assert!(status.contains("200"), "{status}");
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state["health"]["bars"]["state"], "unreachable", "{state}");
    dashboard.stop();
}

#[test]
fn a_taken_address_is_a_clear_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut cmd = stockstream();
    cmd.args(["-b", "127.0.0.1:1", "dashboard", "--listen", &address]);
    let run = run_for(cmd, Duration::from_secs(15));
    run.assert_code(1);
    assert!(
        run.stderr
            .contains(&format!("cannot serve the dashboard on {address}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--listen"), "{}", run.stderr);
}

/// Ticks of every symbol over 12 seconds of 2026-01-01, in time order (a partition's
/// watermark follows its newest tick), and bad records of two kinds.
fn ticks_and_bad_records() -> Vec<Raw> {
    let mut out = Vec::new();
    for s in 0..12 {
        for (index, symbol) in SYMBOLS.iter().enumerate() {
            let tick = json!({
                "symbol": symbol,
                "price": price(index, s),
                "volume": 10 + s,
                "timestamp": (T0 + i64::from(s) * 1000) as f64 / 1000.0,
            });
            out.push(Raw {
                partition: i32::try_from(index % 3).unwrap(),
                key: Some(symbol.as_bytes().to_vec()),
                value: Some(tick.to_string().into_bytes()),
            });
        }
    }
    for (partition, payload) in [
        (0, &b"not json"[..]),
        (1, b"{also not json"),
        (
            2,
            br#"{"symbol":"AAPL","price":-1,"volume":1,"timestamp":1767225601}"#,
        ),
    ] {
        out.push(Raw {
            partition,
            key: Some(b"AAPL".to_vec()),
            value: Some(payload.to_vec()),
        });
    }
    out
}

/// The price of the tick of symbol number `index` at second `s`.
fn price(index: usize, s: i32) -> f64 {
    100.0 + index as f64 * 10.0 + f64::from(s) / 4.0
}

#[test]
fn the_health_panel_and_the_candles_match_a_real_aggregate_run() {
    let topic = unique("dash-ticks");
    let group = unique("dash-agg");
    create_topic(&topic, 3);
    produce_raw(&topic, &ticks_and_bad_records());
    let output = format!("{topic}.bars");
    let aggregate = Running::spawn(on_broker(&[
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
        "1s",
        "--idle-timeout",
        "2s",
        "--instance-id",
        "dash",
        "--no-console",
    ]));
    // The dead-letter topic is the default one: <input>.dlq, as aggregate names it.
    let dashboard = Dashboard::start(
        None,
        &["--topic", &output, "--input", &topic, "--group", &group],
    );
    let browser = Browser::start();
    browser.open(&dashboard.url());

    // What the topics hold: 3 bars per symbol (12 s in windows of 4 s), 3 dead letters.
    let bars = read_committed(&output, 21, Duration::from_secs(60), Duration::from_secs(1));
    let dead = read_committed(
        &format!("{topic}.dlq"),
        3,
        Duration::from_secs(30),
        Duration::from_secs(1),
    );
    let reasons = crate::support::kafka::dead_letters_by_reason(&dead);
    let per_symbol = bars.len() as u64 / 7;
    assert_eq!(bars.len(), 21);

    browser.wait_until(
        "the bars of every symbol drawn",
        SHOWN_WITHIN,
        &format!(
            "return [...document.querySelectorAll('.chart')]
                .every(c => c.dataset.candles === '{per_symbol}')"
        ),
    );
    browser.wait_until(
        "the dead letters counted",
        SHOWN_WITHIN,
        &format!(
            "return document.querySelector('#dead-total').dataset.count === '{}'",
            dead.len()
        ),
    );
    let shown: BTreeMap<String, u64> = serde_json::from_value(browser.js(
        "return Object.fromEntries([...document.querySelectorAll('#dead-letters tr')]
            .map(r => [r.dataset.reason, Number(r.dataset.count)]))",
    ))
    .unwrap();
    assert_eq!(shown, reasons);
    // Every tick read: no lag. The last tick of each symbol is its last in the topic.
    browser.wait_until(
        "a lag of 0",
        SHOWN_WITHIN,
        "return document.querySelector('#lag').textContent === '0'",
    );
    for (index, symbol) in SYMBOLS.iter().enumerate() {
        let shown = browser.js(&format!(
            "const r = document.querySelector('#ticks tr[data-symbol={symbol}]');
             return r && Number(r.dataset.price)"
        ));
        assert_eq!(shown.as_f64(), Some(price(index, 11)), "{symbol}");
    }
    assert_eq!(
        browser.js("return document.querySelector('#ticks-total').textContent"),
        json!((7 * 12 + 3).to_string())
    );
    browser.assert_clean();
    browser.screenshot("health.png");
    dashboard.stop();
    aggregate
        .signal_and_wait(libc::SIGINT, Duration::from_secs(60))
        .assert_code(0);
}

#[test]
fn the_demo_serves_the_dashboard_of_its_embedded_cluster() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = stockstream();
    cmd.args(["demo", "--dashboard", &listen, "--duration", "15s"])
        .args(["--interval", "20ms", "--window", "1s"]);
    let demo = Running::spawn(cmd);
    wait_for_port(port, Duration::from_secs(30), "the demo's dashboard");
    let deadline = Instant::now() + SHOWN_WITHIN;
    let state = loop {
        let (status, body) = get(port, "/api/state");
        assert!(status.contains("200"), "{status}");
        let state: Value = serde_json::from_str(&body).expect("the board as JSON");
        let bars_of_all = SYMBOLS.iter().all(|s| {
            state["candles"][s]
                .as_array()
                .is_some_and(|bars| !bars.is_empty())
        });
        if bars_of_all && state["ticks"].as_array().map(Vec::len) == Some(7) {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "no bars and ticks of every symbol within {SHOWN_WITHIN:?}: {state}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(state["about"]["topic"], "stock_aggregates");
    assert_eq!(state["about"]["group"], "stockstream-demo");
    assert_eq!(state["health"]["input"]["state"], "ok", "{state}");
    let (_, page) = get(port, "/");
    assert!(page.contains(r#"<script src="/app.js">"#), "{page}");
    let run = demo.wait(Duration::from_secs(60));
    run.assert_code(0);
    assert!(
        run.stderr
            .contains(&format!("Dashboard on http://{listen}/")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Dashboard stopped"), "{}", run.stderr);
}
