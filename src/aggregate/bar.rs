//! One bar: the OHLC, VWAP, volume and trade count of one symbol in one window, built up
//! record by record in fixed-size state, and its JSON output form.

use serde::{Deserialize, Serialize};

use crate::record::{StockRecord, Symbol};

/// Running totals of one (symbol, window). Fixed size: no per-record allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Acc {
    pub trades: u64,
    /// (event ms, offset, price) of the record with the smallest timestamp; ties: lower offset.
    open: (i64, i64, f64),
    /// (event ms, offset, price) of the record with the largest timestamp; ties: higher offset.
    close: (i64, i64, f64),
    high: f64,
    low: f64,
    volume: u64,
    price_volume: f64,
    price_sum: f64,
    /// The lowest input offset that contributed: where a replay must start to rebuild it.
    pub first_offset: i64,
}

impl Acc {
    pub fn new(event_ms: i64, offset: i64, r: &StockRecord) -> Self {
        Acc {
            trades: 1,
            open: (event_ms, offset, r.price),
            close: (event_ms, offset, r.price),
            high: r.price,
            low: r.price,
            volume: r.volume,
            price_volume: r.price * r.volume as f64,
            price_sum: r.price,
            first_offset: offset,
        }
    }

    pub fn add(&mut self, event_ms: i64, offset: i64, r: &StockRecord) {
        self.trades += 1;
        if (event_ms, offset) < (self.open.0, self.open.1) {
            self.open = (event_ms, offset, r.price);
        }
        if (event_ms, offset) >= (self.close.0, self.close.1) {
            self.close = (event_ms, offset, r.price);
        }
        self.high = self.high.max(r.price);
        self.low = self.low.min(r.price);
        self.volume = self.volume.saturating_add(r.volume);
        self.price_volume += r.price * r.volume as f64;
        self.price_sum += r.price;
        self.first_offset = self.first_offset.min(offset);
    }

    pub fn bar(&self, symbol: Symbol, start_ms: i64, end_ms: i64, is_final: bool) -> Bar {
        Bar {
            symbol,
            window_start: start_ms,
            window_end: end_ms,
            open: self.open.2,
            high: self.high,
            low: self.low,
            close: self.close.2,
            volume: self.volume,
            trades: self.trades,
            vwap: (self.volume > 0).then(|| round4(self.price_volume / self.volume as f64)),
            avg_price: round4(self.price_sum / self.trades as f64),
            is_final,
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// An emitted bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub symbol: Symbol,
    /// Window bounds, Unix milliseconds; `[start, end)`.
    pub window_start: i64,
    pub window_end: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: u64,
    pub trades: u64,
    /// Σ price·volume / Σ volume; none when the volume is 0.
    pub vwap: Option<f64>,
    pub avg_price: f64,
    /// No later revision of this window will follow.
    pub is_final: bool,
}

/// A bar on the wire, as `aggregate` writes it and `consume` reads it back (`S`: how the
/// symbol is held).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Wire<S> {
    pub symbol: S,
    pub window_start: String,
    pub window_end: String,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: u64,
    pub trades: u64,
    pub vwap: Option<f64>,
    pub avg_price: f64,
    #[serde(rename = "final")]
    pub is_final: bool,
}

impl Bar {
    /// A record of the bars topic read back (the inverse of `to_json`); `None` for anything
    /// that is not one.
    pub fn from_json(payload: &[u8]) -> Option<Bar> {
        let w: Wire<String> = serde_json::from_slice(payload).ok()?;
        Bar::from_wire(&w).ok()
    }

    /// A bar read back as its wire form, or what is not valid in it (its symbol or times).
    pub fn from_wire(w: &Wire<String>) -> Result<Bar, String> {
        let time = |field: &str, value: &str| {
            unix_ms(value).ok_or_else(|| format!("{field} {value:?} is not an RFC 3339 time"))
        };
        Ok(Bar {
            symbol: Symbol::from_wire(&w.symbol)
                .ok_or_else(|| format!("unknown symbol {:?}", w.symbol))?,
            window_start: time("window_start", &w.window_start)?,
            window_end: time("window_end", &w.window_end)?,
            open: w.open,
            high: w.high,
            low: w.low,
            close: w.close,
            volume: w.volume,
            trades: w.trades,
            vwap: w.vwap,
            avg_price: w.avg_price,
            is_final: w.is_final,
        })
    }

    /// The output record: `{"symbol":"AAPL","window_start":"2026-11-26T10:50:00Z",…,"final":true}`.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = Wire {
            symbol: self.symbol.as_str(),
            window_start: rfc3339(self.window_start),
            window_end: rfc3339(self.window_end),
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            trades: self.trades,
            vwap: self.vwap,
            avg_price: self.avg_price,
            is_final: self.is_final,
        };
        // A struct of numbers and strings always serializes.
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

/// Unix milliseconds as RFC 3339 UTC; milliseconds only when the time has them.
/// An RFC 3339 time as Unix milliseconds: the inverse of `rfc3339`.
pub fn unix_ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

pub fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return ms.to_string();
    };
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    let milli = t.millisecond();
    if milli == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(price: f64, volume: u64) -> StockRecord {
        StockRecord {
            symbol: Symbol::AAPL,
            price,
            volume,
            timestamp: 1.0,
        }
    }

    #[test]
    fn open_and_close_follow_event_time_then_offset() {
        let mut acc = Acc::new(5_000, 10, &rec(100.0, 1));
        acc.add(3_000, 11, &rec(99.0, 1)); // earlier event, later offset: new open
        acc.add(7_000, 12, &rec(101.0, 1)); // latest event: close
        acc.add(7_000, 13, &rec(102.0, 1)); // same time, higher offset: close wins
        acc.add(3_000, 9, &rec(98.0, 1)); // same time as open, lower offset: new open
        let b = acc.bar(Symbol::AAPL, 0, 10_000, true);
        assert!((b.open - 98.0).abs() < 1e-9);
        assert!((b.close - 102.0).abs() < 1e-9);
        assert!((b.high - 102.0).abs() < 1e-9);
        assert!((b.low - 98.0).abs() < 1e-9);
        assert_eq!(b.trades, 5);
        assert_eq!(acc.first_offset, 9);
    }

    #[test]
    fn vwap_is_volume_weighted_and_null_without_volume() {
        let mut acc = Acc::new(0, 0, &rec(10.0, 1));
        acc.add(1, 1, &rec(20.0, 3));
        let b = acc.bar(Symbol::AAPL, 0, 10, true);
        assert_eq!(b.vwap, Some(17.5));
        assert!((b.avg_price - 15.0).abs() < 1e-9);
        assert_eq!(b.volume, 4);
        let zero = Acc::new(0, 0, &rec(10.0, 0)).bar(Symbol::AAPL, 0, 10, false);
        assert_eq!(zero.vwap, None);
        let json = String::from_utf8(zero.to_json()).unwrap();
        assert!(json.contains(r#""vwap":null"#), "{json}");
        assert!(json.contains(r#""final":false"#), "{json}");
    }

    #[test]
    fn json_has_the_documented_shape() {
        let b = Acc::new(0, 0, &rec(150.1, 52_340)).bar(
            Symbol::AAPL,
            1_795_517_400_000,
            1_795_517_410_000,
            true,
        );
        let v: serde_json::Value = serde_json::from_slice(&b.to_json()).unwrap();
        assert_eq!(v["symbol"], "AAPL");
        assert_eq!(v["window_start"], "2026-11-24T10:50:00Z");
        assert_eq!(v["window_end"], "2026-11-24T10:50:10Z");
        assert_eq!(v["final"], true);
        for key in [
            "open",
            "high",
            "low",
            "close",
            "volume",
            "trades",
            "vwap",
            "avg_price",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn rfc3339_shows_milliseconds_only_when_present() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.500Z");
    }
}
