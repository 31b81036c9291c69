//! Measures end-to-end latency of `stockstream aggregate --emit update`: for every input tick,
//! the time from its timestamp to the first revision of its bar that includes it becoming
//! readable (read_committed) in the output topic.
//!
//! A revision of (symbol, window) with `trades = n` includes exactly the first n ticks of
//! that symbol in that window (a symbol lives in one partition and is read in order), so
//! the input log tells which ticks each revision made visible, and when they were stamped.
//!
//! It also measures the final bars: a window can close once its partition's stream reaches
//! its end plus the allowed lateness in event time, that is, when the first tick of that
//! partition dated at or past that moment was stamped. A final bar's latency is the time
//! from that stamp to the final bar being readable.
//!
//! Usage: latency BROKERS INPUT_TOPIC OUTPUT_TOPIC SECONDS [LATENESS_MS]
//! Reads the output live for SECONDS, then the input, then prints count, p50, p99 and max,
//! of the ticks and of the final bars. LATENESS_MS is aggregate's --watermark (default 5000).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

type Key = (String, i64);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn consumer(brokers: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("a consumer")
}

fn rfc3339_ms(text: &str) -> i64 {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time");
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, input, output, seconds, lateness) = match &args[..] {
        [_, b, i, o, s] => (b, i, o, s, "5000"),
        [_, b, i, o, s, l] => (b, i, o, s, l.as_str()),
        _ => {
            eprintln!("usage: latency BROKERS INPUT_TOPIC OUTPUT_TOPIC SECONDS [LATENESS_MS]");
            std::process::exit(2);
        }
    };
    let seconds: u64 = seconds.parse().expect("SECONDS");
    let lateness: i64 = lateness.parse().expect("LATENESS_MS");
    let pid = std::process::id();

    // Revisions as they become readable: (symbol, window start) → [(trades, arrival ms)].
    let out = consumer(brokers, &format!("latency-out-{pid}"));
    out.subscribe(&[output]).expect("subscribe");
    let mut revisions: HashMap<Key, Vec<(u64, i64)>> = HashMap::new();
    // Final bars as they become readable: (symbol, window end, arrival ms).
    let mut finals: Vec<(String, i64, i64)> = Vec::new();
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        if let Some(Ok(m)) = out.poll(Duration::from_millis(50)) {
            let arrived = now_ms();
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_default();
            let (Some(symbol), Some(start), Some(trades)) = (
                v["symbol"].as_str(),
                v["window_start"].as_str(),
                v["trades"].as_u64(),
            ) else {
                continue;
            };
            revisions
                .entry((symbol.to_string(), rfc3339_ms(start)))
                .or_default()
                .push((trades, arrived));
            if let (Some(true), Some(end)) = (v["final"].as_bool(), v["window_end"].as_str()) {
                finals.push((symbol.to_string(), rfc3339_ms(end), arrived));
            }
        }
    }

    // Every tick's timestamp, per (symbol, window), in log order.
    let window_ms = guess_window(&revisions);
    let Input { ticks, partitions } = read_ticks(brokers, input, window_ms);

    let mut latencies = Vec::new();
    let mut by_second: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for (key, revs) in &revisions {
        let Some(stamps) = ticks.get(key) else {
            continue;
        };
        let mut seen = 0usize;
        for (trades, arrived) in revs {
            let n = usize::try_from(*trades).unwrap_or(0).min(stamps.len());
            for stamp in &stamps[seen.min(n)..n] {
                latencies.push(arrived - stamp);
                by_second
                    .entry(stamp / 1000)
                    .or_default()
                    .push(arrived - stamp);
            }
            seen = seen.max(n);
        }
    }
    if latencies.is_empty() {
        println!("no revisions were read");
        std::process::exit(1);
    }
    println!("ticks {}", summary(latencies));
    if std::env::var_os("LATENCY_WORST").is_some() {
        // The seconds (by tick stamp) with the slowest ticks: where the tail comes from.
        let mut worst: Vec<(i64, i64, usize)> = by_second
            .iter()
            .map(|(s, l)| (*l.iter().max().unwrap_or(&0), *s, l.len()))
            .collect();
        worst.sort_unstable_by(|a, b| b.cmp(a));
        for (max, second, n) in worst.iter().take(10) {
            let first = by_second.keys().next().copied().unwrap_or(*second);
            println!(
                "    second {:>3}: max {max} ms over {n} ticks",
                second - first
            );
        }
    }

    // Final bars: from the stamp of the first tick that let the window close.
    let mut closing = Vec::new();
    for (symbol, end, arrived) in &finals {
        let Some(stream) = partitions.values().find(|p| p.symbols.contains(symbol)) else {
            continue;
        };
        if let Some(stamp) = stream.stamps.iter().find(|ms| **ms >= end + lateness) {
            closing.push(arrived - stamp);
        }
    }
    if closing.is_empty() {
        println!("final bars: none was read");
    } else {
        println!("final bars {}", summary(closing));
    }
}

/// "N p50 … ms p99 … ms max … ms".
fn summary(mut latencies: Vec<i64>) -> String {
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    format!(
        "{} p50 {} ms p99 {} ms max {} ms",
        latencies.len(),
        pick(0.50),
        pick(0.99),
        latencies[latencies.len() - 1]
    )
}

/// One input partition: its symbols, and its ticks' stamps in log order.
#[derive(Default)]
struct Partition {
    symbols: Vec<String>,
    stamps: Vec<i64>,
}

/// The input log: every tick's stamp per (symbol, window), and per partition.
struct Input {
    ticks: HashMap<Key, Vec<i64>>,
    partitions: HashMap<i32, Partition>,
}

/// The window length, from the bars themselves (the smallest gap between window starts).
fn guess_window(revisions: &HashMap<Key, Vec<(u64, i64)>>) -> i64 {
    let mut starts: Vec<i64> = revisions.keys().map(|(_, s)| *s).collect();
    starts.sort_unstable();
    starts.dedup();
    starts
        .windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .unwrap_or(10_000)
}

fn read_ticks(brokers: &str, topic: &str, window_ms: i64) -> Input {
    let c = consumer(brokers, &format!("latency-in-{}", std::process::id()));
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    let mut left = 0i64;
    for p in md.topics()[0].partitions() {
        let (low, high) = c
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .expect("watermarks");
        left += high - low;
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .expect("partition");
    }
    c.assign(&tpl).expect("assign");
    let mut ticks: HashMap<Key, Vec<i64>> = HashMap::new();
    let mut partitions: HashMap<i32, Partition> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while left > 0 && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            left -= 1;
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_default();
            if let (Some(symbol), Some(ts)) = (v["symbol"].as_str(), v["timestamp"].as_f64()) {
                let ms = (ts * 1000.0).round() as i64;
                let start = ms.div_euclid(window_ms) * window_ms;
                ticks
                    .entry((symbol.to_string(), start))
                    .or_default()
                    .push(ms);
                let p = partitions.entry(m.partition()).or_default();
                if !p.symbols.iter().any(|s| s == symbol) {
                    p.symbols.push(symbol.to_string());
                }
                p.stamps.push(ms);
            }
        }
    }
    Input { ticks, partitions }
}
