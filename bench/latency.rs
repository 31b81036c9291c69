//! Measures end-to-end latency of `stockstream aggregate --emit update`: for every input tick,
//! the time from its timestamp to the first revision of its bar that includes it becoming
//! readable (read_committed) in the output topic.
//!
//! A revision of (symbol, window) with `trades = n` includes exactly the first n ticks of
//! that symbol in that window (a symbol lives in one partition and is read in order), so
//! the input log tells which ticks each revision made visible, and when they were stamped.
//!
//! Usage: latency BROKERS INPUT_TOPIC OUTPUT_TOPIC SECONDS
//! Reads the output live for SECONDS, then the input, then prints count, p50, p99 and max.

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
    let [_, brokers, input, output, seconds] = &args[..] else {
        eprintln!("usage: latency BROKERS INPUT_TOPIC OUTPUT_TOPIC SECONDS");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse().expect("SECONDS");
    let pid = std::process::id();

    // Revisions as they become readable: (symbol, window start) → [(trades, arrival ms)].
    let out = consumer(brokers, &format!("latency-out-{pid}"));
    out.subscribe(&[output]).expect("subscribe");
    let mut revisions: HashMap<Key, Vec<(u64, i64)>> = HashMap::new();
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
        }
    }

    // Every tick's timestamp, per (symbol, window), in log order.
    let window_ms = guess_window(&revisions);
    let ticks = read_ticks(brokers, input, window_ms);

    let mut latencies = Vec::new();
    for (key, revs) in &revisions {
        let Some(stamps) = ticks.get(key) else {
            continue;
        };
        let mut seen = 0usize;
        for (trades, arrived) in revs {
            let n = usize::try_from(*trades).unwrap_or(0).min(stamps.len());
            for stamp in &stamps[seen.min(n)..n] {
                latencies.push(arrived - stamp);
            }
            seen = seen.max(n);
        }
    }
    latencies.sort_unstable();
    if latencies.is_empty() {
        println!("no revisions were read");
        std::process::exit(1);
    }
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "ticks {} p50 {} ms p99 {} ms max {} ms",
        latencies.len(),
        pick(0.50),
        pick(0.99),
        latencies[latencies.len() - 1]
    );
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

fn read_ticks(brokers: &str, topic: &str, window_ms: i64) -> HashMap<Key, Vec<i64>> {
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
            }
        }
    }
    ticks
}
