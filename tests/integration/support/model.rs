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
            tick: classify(payload.as_deref()),
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

/// The record rules, from the README: which payloads are good ticks, and why the others
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
    let symbol = v["symbol"]
        .as_str()
        .filter(|s| ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"].contains(s));
    let price = v["price"].as_f64().filter(|p| p.is_finite() && *p > 0.0);
    let volume = v["volume"].as_u64();
    let ts = v["timestamp"]
        .as_f64()
        .filter(|t| t.is_finite() && *t > 0.0);
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

#[track_caller]
pub fn assert_bars_match(read: &[Read], want: &BTreeMap<(String, i64), Expected>, size_ms: i64) {
    let mut seen = BTreeMap::new();
    for r in read {
        let v: serde_json::Value = serde_json::from_slice(&r.payload).expect("bar JSON");
        let symbol = v["symbol"].as_str().unwrap().to_string();
        assert_eq!(r.key.as_deref(), Some(symbol.as_bytes()), "key = symbol");
        let start = rfc3339_ms(v["window_start"].as_str().unwrap());
        assert_eq!(
            rfc3339_ms(v["window_end"].as_str().unwrap()),
            start + size_ms
        );
        assert_eq!(v["final"], true);
        let previous = seen.insert((symbol.clone(), start), v.clone());
        assert!(previous.is_none(), "bar {symbol} {start} emitted twice");
        let e = want
            .get(&(symbol.clone(), start))
            .unwrap_or_else(|| panic!("unexpected bar {v}"));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
        assert_eq!(v["trades"], e.trades, "{v}");
        assert_eq!(v["volume"], e.volume, "{v}");
        assert!(
            close(v["open"].as_f64().unwrap(), e.open.2),
            "open {v} {e:?}"
        );
        assert!(
            close(v["close"].as_f64().unwrap(), e.close.2),
            "close {v} {e:?}"
        );
        assert!(close(v["high"].as_f64().unwrap(), e.high), "high {v}");
        assert!(close(v["low"].as_f64().unwrap(), e.low), "low {v}");
        assert!(
            close(v["avg_price"].as_f64().unwrap(), e.sum / e.trades as f64),
            "avg {v}"
        );
        if e.volume == 0 {
            assert!(v["vwap"].is_null(), "zero volume has no vwap: {v}");
        } else {
            assert!(
                close(v["vwap"].as_f64().unwrap(), e.pv / e.volume as f64),
                "vwap {v}"
            );
        }
    }
    let missing: Vec<_> = want.keys().filter(|k| !seen.contains_key(*k)).collect();
    assert!(missing.is_empty(), "bars never emitted: {missing:?}");
}

#[track_caller]
pub fn assert_dead_letters(read: &[Read], want: &DeadLetters, source: &str, log: &[Logged]) {
    let mut seen = BTreeMap::new();
    for r in read {
        let h: BTreeMap<&str, &str> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(h.get("stockstream.source.topic"), Some(&source));
        let p: i32 = h["stockstream.source.partition"].parse().unwrap();
        let o: i64 = h["stockstream.source.offset"].parse().unwrap();
        assert!(!h["stockstream.error.message"].is_empty());
        let previous = seen.insert((p, o), h["stockstream.error.reason"].to_string());
        assert!(previous.is_none(), "dead letter {p}/{o} written twice");
        // The original bytes and key, unchanged.
        let original = log
            .iter()
            .find(|l| l.partition == p && l.offset == o)
            .unwrap_or_else(|| panic!("a dead letter for {p}/{o}, which is not in the input"));
        assert_eq!(
            Some(&r.payload).filter(|p| !p.is_empty()),
            original.payload.as_ref(),
            "payload of {p}/{o}"
        );
        assert_eq!(r.key, original.key, "key of {p}/{o}");
    }
    let got: BTreeMap<(i32, i64), &str> = seen.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(&got, want);
}
