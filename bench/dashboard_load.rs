//! Load on `stockstream dashboard`: CLIENTS browser streams (/events) open at once while bars
//! are written to the bars topic at RATE a second. For every bar and every stream, the
//! delay from the moment the bar was handed to the producer to the moment the stream
//! delivered it; and the dashboard's memory (VmRSS, VmHWM) when its pid is given.
//!
//! First HISTORY bars per symbol are written (the page's history: every stream's first
//! event carries them), then the streams connect, then the live bars are written.
//!
//! Usage: dashboard-load BROKERS BARS_TOPIC DASHBOARD_ADDR CLIENTS RATE SECONDS [PID]
//! Prints the count of deliveries expected and received, p50, p99 and max of the delay,
//! and the dashboard's memory.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::ClientConfig;

const SYMBOLS: [&str; 7] = ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"];
/// 2026-01-01T00:00:00Z: bar number n is of symbol n % 7, window (n / 7) seconds after it.
const T0: i64 = 1_767_225_600_000;
/// Bars per symbol written before the streams open: as many as the page keeps.
const HISTORY: usize = 300;

fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("a time");
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formatted")
}

fn bar(n: usize) -> (String, &'static str) {
    let symbol = SYMBOLS[n % 7];
    let start = T0 + i64::try_from(n / 7).expect("small") * 1000;
    let price = 100.0 + (n % 13) as f64;
    let json = format!(
        r#"{{"symbol":"{symbol}","window_start":"{}","window_end":"{}","open":{price},"high":{},"low":{},"close":{},"volume":{},"trades":7,"vwap":{price},"avg_price":{price},"final":true}}"#,
        rfc3339(start),
        rfc3339(start + 1000),
        price + 1.0,
        price - 1.0,
        price + 0.5,
        1000 + n
    );
    (json, symbol)
}

/// The number of a bar read back from its JSON.
fn number(data: &str) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(data).ok()?;
    let symbol = SYMBOLS.iter().position(|s| v["symbol"] == *s)?;
    let t = time::OffsetDateTime::parse(
        v["window_start"].as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    let ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()?;
    Some(usize::try_from((ms - T0) / 1000).ok()? * 7 + symbol)
}

/// One browser stream: connects, says when its first event (the snapshot) is in, then notes
/// when each bar arrives, until `done`.
fn stream(address: &str, ready: &Barrier, done: &AtomicBool) -> Vec<(usize, Instant)> {
    let mut socket = TcpStream::connect(address).expect("connecting to the dashboard");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a read timeout");
    // HTTP/1.0: the body comes as it is, until the server closes.
    write!(
        socket,
        "GET /events HTTP/1.0\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("asking for the stream");
    let mut reader = BufReader::with_capacity(1 << 20, socket);
    let mut line = String::new();
    let mut arrived = Vec::new();
    let (mut kind, mut snapshot_in) = (String::new(), false);
    while !done.load(Ordering::Relaxed) {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => panic!("reading the stream: {e}"),
        }
        let at = Instant::now();
        if let Some(k) = line.strip_prefix("event: ") {
            kind = k.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            if kind == "snapshot" && !snapshot_in {
                snapshot_in = true;
                ready.wait();
            } else if kind == "bar" {
                if let Some(n) = number(data) {
                    arrived.push((n, at));
                }
            }
        }
    }
    arrived
}

/// The reference: a plain consumer of the bars topic on the same broker, read committed as
/// the dashboard reads, noting when each bar arrives, until `done`.
fn plain_consumer(brokers: &str, topic: &str, done: &AtomicBool) -> Vec<(usize, Instant)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "dashboard-load-reference")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribing");
    let mut arrived = Vec::new();
    while !done.load(Ordering::Relaxed) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let at = Instant::now();
            if let Some(n) = m
                .payload()
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(number)
            {
                arrived.push((n, at));
            }
        }
    }
    arrived
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn memory(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or("?".to_string(), |kb| format!("{:.1} MB", kb / 1024.0))
    };
    format!(
        "VmRSS {}, VmHWM (peak) {}",
        field("VmRSS:"),
        field("VmHWM:")
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, address, clients, rate, seconds, rest @ ..] = &args[..] else {
        eprintln!(
            "usage: dashboard-load BROKERS BARS_TOPIC DASHBOARD_ADDR CLIENTS RATE SECONDS [PID]"
        );
        std::process::exit(2);
    };
    let pid = rest.first();
    let clients: usize = clients.parse().expect("CLIENTS: a number");
    let rate: f64 = rate.parse().expect("RATE: bars per second");
    let seconds: f64 = seconds.parse().expect("SECONDS: a number");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .create()
        .expect("a producer");
    let send = |n: usize| {
        let (json, symbol) = bar(n);
        let at = Instant::now();
        producer
            .send(BaseRecord::to(topic).key(symbol).payload(&json))
            .map_err(|(e, _)| e)
            .expect("sending a bar");
        producer.poll(Duration::ZERO);
        at
    };

    // The history, read by the dashboard before the streams open.
    let history = HISTORY * SYMBOLS.len();
    for n in 0..history {
        send(n);
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("the history written");
    std::thread::sleep(Duration::from_secs(3));

    let ready = Arc::new(Barrier::new(clients + 1));
    let done = Arc::new(AtomicBool::new(false));
    let opened = Instant::now();
    let streams: Vec<_> = (0..clients)
        .map(|_| {
            let (address, ready, done) = (address.clone(), Arc::clone(&ready), Arc::clone(&done));
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || stream(&address, &ready, &done))
                .expect("a stream thread")
        })
        .collect();
    let reference = {
        let (brokers, topic, done) = (brokers.clone(), topic.clone(), Arc::clone(&done));
        std::thread::spawn(move || plain_consumer(&brokers, &topic, &done))
    };
    ready.wait();
    let took = opened.elapsed();
    // The reference consumer's group settles meanwhile.
    std::thread::sleep(Duration::from_secs(5));
    println!(
        "{clients} streams open, each with its snapshot ({history} bars), in {:.2}s; after: {}",
        took.as_secs_f64(),
        pid.map_or("(no pid)".to_string(), |p| memory(p))
    );

    // The live bars, at `rate` a second.
    let live = (rate * seconds) as usize;
    let sent: Mutex<Vec<Instant>> = Mutex::new(Vec::with_capacity(live));
    let started = Instant::now();
    let mut peak_rss = String::new();
    for i in 0..live {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        while Instant::now() < due {
            producer.poll(Duration::from_millis(1));
        }
        let at = send(history + i);
        sent.lock().expect("sent").push(at);
        if i % (rate as usize).max(1) == 0 {
            if let Some(p) = pid {
                peak_rss = memory(p);
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("the live bars written");
    std::thread::sleep(Duration::from_secs(2));
    done.store(true, Ordering::Relaxed);

    let sent = sent.into_inner().expect("sent");
    let mut delays = Vec::new();
    // Per live bar, its first arrival on any stream: what the path through Kafka and the
    // dashboard's reader took, before the fan-out to the streams.
    let mut first: Vec<Option<Instant>> = vec![None; sent.len()];
    let mut arrivals = Vec::new();
    for s in streams {
        for (n, at) in s.join().expect("a stream") {
            if let Some(i) = n.checked_sub(history).filter(|i| *i < sent.len()) {
                delays.push(at.saturating_duration_since(sent[i]).as_secs_f64() * 1000.0);
                first[i] = Some(first[i].map_or(at, |f| f.min(at)));
                arrivals.push((i, at));
            }
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut path: Vec<f64> = first
        .iter()
        .zip(&sent)
        .filter_map(|(f, s)| Some(ms(f.as_ref()?.saturating_duration_since(*s))))
        .collect();
    let mut fan_out: Vec<f64> = arrivals
        .iter()
        .filter_map(|(i, at)| Some(ms(at.saturating_duration_since(first[*i]?))))
        .collect();
    let mut plain: Vec<f64> = reference
        .join()
        .expect("the reference consumer")
        .into_iter()
        .filter_map(|(n, at)| {
            let i = n.checked_sub(history)?;
            Some(ms(at.saturating_duration_since(*sent.get(i)?)))
        })
        .collect();
    plain.sort_by(f64::total_cmp);
    path.sort_by(f64::total_cmp);
    fan_out.sort_by(f64::total_cmp);
    delays.sort_by(f64::total_cmp);
    let expected = clients * live;
    println!(
        "{live} bars at {rate}/s to {clients} streams: {} of {expected} deliveries; delay from produce to receipt p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delays.len(),
        percentile(&delays, 50.0),
        percentile(&delays, 99.0),
        delays.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  of which: produce to the first stream p50 {:.1} ms, p99 {:.1} ms; first to each other stream p50 {:.1} ms, p99 {:.1} ms",
        percentile(&path, 50.0),
        percentile(&path, 99.0),
        percentile(&fan_out, 50.0),
        percentile(&fan_out, 99.0)
    );
    println!(
        "  reference, a plain read_committed consumer of the same topic in the same run: {} bars, produce to receipt p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        plain.len(),
        percentile(&plain, 50.0),
        percentile(&plain, 99.0),
        plain.last().copied().unwrap_or(f64::NAN)
    );
    if let Some(p) = pid {
        println!(
            "dashboard memory during the live bars: {peak_rss}; at the end: {}",
            memory(p)
        );
    }
    if delays.len() < expected {
        std::process::exit(1);
    }
}
