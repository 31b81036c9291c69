//! An independent model of what `aggregate` must output for a given input log: written
//! from the rules in the README, sharing no code with stockstream, so tests compare the
//! real output with it.

use std::collections::BTreeMap;

use super::kafka::Read;

/// One input record as the model sees it.
#[derive(Debug, Clone)]
pub enum Tick {
    Good {
        symbol: String,
        at_ms: i64,
        price: f64,
        volume: u64,
    },
    Bad(&'static str),
}

/// A record of the input log, in its partition's offset order.
#[derive(Debug, Clone)]
pub struct Logged {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub tick: Tick,
}

impl Logged {
    pub fn from_read(r: &Read) -> Self {
        let payload = (!r.payload.is_empty()).then(|| r.payload.clone());
        Logged {
            partition: r.partition,
            offset: r.offset,
            key: r.key.clone(),
            tick: judge(r.key.as_deref(), payload.as_deref(), r.timestamp),
            payload,
        }
    }
}

/// The whole input log of `topic`, each partition in offset order.
pub fn log_of(topic: &str) -> Vec<Logged> {
    log_on(&super::broker().bootstrap, topic)
}

pub fn log_on(bootstrap: &str, topic: &str) -> Vec<Logged> {
    let mut log: Vec<Logged> = super::kafka::read_all_on(bootstrap, topic)
        .iter()
        .map(Logged::from_read)
        .collect();
    log.sort_by_key(|l| (l.partition, l.offset));
    log
}

/// `--max-future`'s default: how far an event time may be ahead of when its record was
/// written, ms.
const MAX_FUTURE_MS: i64 = 60_000;

/// The end of year 9999 in Unix seconds: the latest timestamp a tick may carry.
const MAX_TIMESTAMP_S: f64 = 253_402_300_799.999;

/// Every record rule, from the README, in the order that decides the reason: the payload
/// (`classify`), then the key (exactly the symbol's bytes; none is a mismatch), then the
/// event time against `written_ms`, the record's Kafka timestamp (the reader's clock is
/// later still, so the timestamp is the earlier of the two). Without a timestamp the
/// model cannot judge `future` and calls the tick good.
pub fn judge(key: Option<&[u8]>, payload: Option<&[u8]>, written_ms: Option<i64>) -> Tick {
    let tick = classify(payload);
    let Tick::Good { symbol, at_ms, .. } = &tick else {
        return tick;
    };
    if key != Some(symbol.as_bytes()) {
        return Tick::Bad("key_mismatch");
    }
    if written_ms.is_some_and(|w| w > 0 && at_ms - w > MAX_FUTURE_MS) {
        return Tick::Bad("future");
    }
    tick
}

/// The rules a payload meets on its own: which payloads are good ticks, and why the others
/// are not.
pub fn classify(payload: Option<&[u8]>) -> Tick {
    let Some(bytes) = payload.filter(|b| !b.is_empty()) else {
        return Tick::Bad("invalid_json");
    };
    if bytes.len() > 64 * 1024 {
        return Tick::Bad("too_large");
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Tick::Bad("invalid_utf8");
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Tick::Bad("invalid_json");
    };
    if !v.is_object() {
        return Tick::Bad("invalid_json");
    }
    let symbol = v["symbol"]
        .as_str()
        .filter(|s| ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"].contains(s));
    let price = v["price"].as_f64().filter(|p| p.is_finite() && *p > 0.0);
    let volume = v["volume"].as_u64();
    let ts = v["timestamp"]
        .as_f64()
        .filter(|t| t.is_finite() && *t > 0.0 && *t <= MAX_TIMESTAMP_S);
    match (symbol, price, volume, ts) {
        (Some(s), Some(price), Some(volume), Some(ts)) => Tick::Good {
            symbol: s.to_string(),
            at_ms: (ts * 1000.0).round() as i64,
            price,
            volume,
        },
        _ => Tick::Bad("invalid_record"),
    }
}

/// What an exact aggregation gives: (symbol, window start ms) → bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    trades: u64,
    volume: u64,
    open: (i64, i64, f64),
    close: (i64, i64, f64),
    high: f64,
    low: f64,
    pv: f64,
    sum: f64,
}

/// Bars by (symbol, window start ms).
pub type Bars = BTreeMap<(String, i64), Expected>;
/// Dead-letter reasons by (partition, offset).
pub type DeadLetters = BTreeMap<(i32, i64), &'static str>;

/// The bars and dead letters an exact aggregation gives for `log` (each partition's
/// records in offset order), with per-partition watermarks and every window closed at
/// the end.
pub fn expected(
    log: &[Logged],
    size_ms: i64,
    slide_ms: i64,
    lateness_ms: i64,
) -> (Bars, DeadLetters) {
    let mut bars: Bars = BTreeMap::new();
    let mut dead = BTreeMap::new();
    let mut max_seen: BTreeMap<i32, i64> = BTreeMap::new();
    for rec in log {
        let (p, offset) = (rec.partition, rec.offset);
        let (symbol, at, price, volume) = match &rec.tick {
            Tick::Bad(reason) => {
                dead.insert((p, offset), *reason);
                continue;
            }
            Tick::Good {
                symbol,
                at_ms,
                price,
                volume,
            } => (symbol, *at_ms, *price, *volume),
        };
        let watermark = max_seen.get(&p).map(|m| m - lateness_ms);
        let mut counted = false;
        let mut start = at.div_euclid(slide_ms) * slide_ms;
        while start + size_ms > at {
            if watermark.is_none_or(|w| w < start + size_ms) {
                counted = true;
                let e = bars.entry((symbol.clone(), start)).or_insert(Expected {
                    trades: 0,
                    volume: 0,
                    open: (i64::MAX, 0, 0.0),
                    close: (i64::MIN, 0, 0.0),
                    high: f64::MIN,
                    low: f64::MAX,
                    pv: 0.0,
                    sum: 0.0,
                });
                e.trades += 1;
                e.volume += volume;
                if (at, offset) < (e.open.0, e.open.1) {
                    e.open = (at, offset, price);
                }
                if (at, offset) >= (e.close.0, e.close.1) {
                    e.close = (at, offset, price);
                }
                e.high = e.high.max(price);
                e.low = e.low.min(price);
                e.pv += price * volume as f64;
                e.sum += price;
            }
            start -= slide_ms;
        }
        if !counted {
            dead.insert((p, offset), "late");
        }
        let m = max_seen.entry(p).or_insert(i64::MIN);
        *m = (*m).max(at);
    }
    (bars, dead)
}

pub fn rfc3339_ms(text: &str) -> i64 {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// A window start (ms) as people read it.
fn at(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Every way the bars `read` differ from `want`: a bar that is malformed, not final,
/// unexpected, emitted twice for its (symbol, window) or with other numbers, and every
/// expected bar never emitted. Empty when they match exactly.
pub fn bar_problems(read: &[Read], want: &Bars, size_ms: i64) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    for r in read {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.payload) else {
            problems.push(format!(
                "not a JSON bar: {}",
                String::from_utf8_lossy(&r.payload)
            ));
            continue;
        };
        let (Some(symbol), Some(start), Some(end)) = (
            v["symbol"].as_str(),
            v["window_start"].as_str(),
            v["window_end"].as_str(),
        ) else {
            problems.push(format!("a bar without symbol or window: {v}"));
            continue;
        };
        let (symbol, start, end) = (symbol.to_string(), rfc3339_ms(start), rfc3339_ms(end));
        if r.key.as_deref() != Some(symbol.as_bytes()) {
            problems.push(format!("key is not the symbol: {v}"));
        }
        if end != start + size_ms {
            problems.push(format!("window is not {size_ms} ms long: {v}"));
        }
        if v["final"] != true {
            problems.push(format!("not final: {v}"));
        }
        if let Some(previous) = seen.insert((symbol.clone(), start), v.clone()) {
            problems.push(format!(
                "bar {symbol} {} emitted twice: {previous} and {v}",
                at(start)
            ));
            continue;
        }
        let Some(e) = want.get(&(symbol.clone(), start)) else {
            problems.push(format!("unexpected bar {v}"));
            continue;
        };
        let number = |field: &str| v[field].as_f64().unwrap_or(f64::NAN);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
        let mut wrong = Vec::new();
        if v["trades"] != e.trades {
            wrong.push(format!("trades (expected {})", e.trades));
        }
        if v["volume"] != e.volume {
            wrong.push(format!("volume (expected {})", e.volume));
        }
        for (field, expected) in [
            ("open", e.open.2),
            ("close", e.close.2),
            ("high", e.high),
            ("low", e.low),
            ("avg_price", e.sum / e.trades as f64),
        ] {
            if !close(number(field), expected) {
                wrong.push(format!("{field} (expected {expected})"));
            }
        }
        if e.volume == 0 {
            if !v["vwap"].is_null() {
                wrong.push("vwap (zero volume has none)".to_string());
            }
        } else if !close(number("vwap"), e.pv / e.volume as f64) {
            wrong.push(format!("vwap (expected {})", e.pv / e.volume as f64));
        }
        if !wrong.is_empty() {
            problems.push(format!("wrong {}: {v}", wrong.join(", ")));
        }
    }
    for ((symbol, start), e) in want {
        if !seen.contains_key(&(symbol.clone(), *start)) {
            problems.push(format!(
                "bar never emitted: {symbol} {} ({} trades, volume {})",
                at(*start),
                e.trades,
                e.volume
            ));
        }
    }
    problems
}

#[track_caller]
pub fn assert_bars_match(read: &[Read], want: &Bars, size_ms: i64) {
    let problems = bar_problems(read, want, size_ms);
    assert!(
        problems.is_empty(),
        "{} problems with the bars:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// How a dead letter's bytes must relate to the original's. Whole when it fit the
/// dead-letter topic; otherwise `stockstream.error.truncated: true`, the value a prefix of
/// the original with `stockstream.source.size` its full length, and a key over 1 KiB cut
/// to 1 KiB with `stockstream.source.key_size` its full length. `None` when it does.
fn bytes_problem(r: &Read, h: &BTreeMap<&str, &str>, original: &Logged) -> Option<String> {
    let value = original.payload.as_deref().unwrap_or_default();
    let key = original.key.as_deref();
    let got_key = r.key.as_deref();
    if h.get("stockstream.error.truncated") != Some(&"true") {
        let stray = ["stockstream.source.size", "stockstream.source.key_size"]
            .into_iter()
            .find(|k| h.contains_key(k));
        return if r.payload != value {
            Some(format!(
                "value differs from the original ({} bytes, not {}), and no truncated header",
                r.payload.len(),
                value.len()
            ))
        } else if got_key != key {
            Some("key differs from the original, and no truncated header".to_string())
        } else {
            stray.map(|k| format!("{k} header without the truncated one"))
        };
    }
    if h.get("stockstream.source.size") != Some(&value.len().to_string().as_str()) {
        return Some(format!(
            "truncated, but stockstream.source.size is {:?}, not {}",
            h.get("stockstream.source.size"),
            value.len()
        ));
    }
    if !value.starts_with(&r.payload) {
        return Some("truncated value is not a prefix of the original".to_string());
    }
    let key_cut = match (h.get("stockstream.source.key_size"), key) {
        (None, _) if got_key == key => false,
        (None, _) => return Some("key differs from the original, no key_size".to_string()),
        (Some(size), Some(k)) if *size == k.len().to_string() && k.len() > 1024 => {
            if got_key != Some(&k[..1024]) {
                return Some("key cut, but not to its first 1 KiB".to_string());
            }
            true
        }
        (Some(size), _) => {
            return Some(format!(
                "stockstream.source.key_size {size}, for a key of {:?} bytes",
                key.map(<[u8]>::len)
            ))
        }
    };
    (r.payload.len() == value.len() && !key_cut)
        .then(|| "marked truncated, but value and key are whole".to_string())
}

/// Every way the dead letters `read` differ from `want`: a wrong or missing header, a
/// source not in the input `log`, bytes that are not the original's (or its announced
/// cut), one written twice, a wrong reason, and every expected one never written. Empty
/// when they match exactly.
pub fn dead_letter_problems(
    read: &[Read],
    want: &DeadLetters,
    source: &str,
    log: &[Logged],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<(i32, i64), String> = BTreeMap::new();
    for r in read {
        let h: BTreeMap<&str, &str> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let source_of = (
            h.get("stockstream.source.partition")
                .and_then(|p| p.parse::<i32>().ok()),
            h.get("stockstream.source.offset")
                .and_then(|o| o.parse::<i64>().ok()),
        );
        let (Some(p), Some(o)) = source_of else {
            problems.push(format!("a dead letter without its source: {:?}", r.headers));
            continue;
        };
        if h.get("stockstream.source.topic") != Some(&source) {
            problems.push(format!(
                "{p}/{o}: source topic {:?}",
                h.get("stockstream.source.topic")
            ));
        }
        if h.get("stockstream.error.message")
            .is_none_or(|m| m.is_empty())
        {
            problems.push(format!("{p}/{o}: no error message"));
        }
        let reason = h
            .get("stockstream.error.reason")
            .copied()
            .unwrap_or("(none)");
        if seen.insert((p, o), reason.to_string()).is_some() {
            problems.push(format!("dead letter {p}/{o} written twice"));
        }
        match log.iter().find(|l| l.partition == p && l.offset == o) {
            None => problems.push(format!(
                "a dead letter for {p}/{o}, which is not in the input"
            )),
            Some(original) => {
                if let Some(problem) = bytes_problem(r, &h, original) {
                    problems.push(format!("{p}/{o} ({reason}): {problem}"));
                }
            }
        }
    }
    let preview = |p: i32, o: i64| {
        log.iter()
            .find(|l| l.partition == p && l.offset == o)
            .map(|l| {
                let bytes = l.payload.as_deref().unwrap_or_default();
                String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned()
            })
            .unwrap_or_default()
    };
    for ((p, o), reason) in &seen {
        match want.get(&(*p, *o)) {
            None => problems.push(format!(
                "unexpected dead letter {p}/{o} ({reason}): {}",
                preview(*p, *o)
            )),
            Some(expected) if expected != reason => problems.push(format!(
                "dead letter {p}/{o} says {reason}, expected {expected}: {}",
                preview(*p, *o)
            )),
            Some(_) => {}
        }
    }
    for ((p, o), reason) in want {
        if !seen.contains_key(&(*p, *o)) {
            problems.push(format!(
                "dead letter never written: {p}/{o} ({reason}): {}",
                preview(*p, *o)
            ));
        }
    }
    problems
}

#[track_caller]
pub fn assert_dead_letters(read: &[Read], want: &DeadLetters, source: &str, log: &[Logged]) {
    let problems = dead_letter_problems(read, want, source, log);
    assert!(
        problems.is_empty(),
        "{} problems with the dead letters:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
