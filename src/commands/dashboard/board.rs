//! What the page shows, kept in memory without any I/O: the recent candles per symbol (a
//! revised bar replaces the candle of its window), the last tick per symbol, and the
//! pipeline's health. The feeds write it; every new browser stream starts from a snapshot.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aggregate::bar::Bar;
use crate::record::{StockRecord, Symbol};

/// Candles kept per symbol: the page's history, and a bound on memory (7 × 300 small
/// records, whatever the topic holds).
pub const HISTORY: usize = 300;

/// How one source of the page is doing, said so a person knows what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feed {
    pub state: FeedState,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// Not asked yet.
    Starting,
    /// Read and up to date.
    Ok,
    /// The topic (or the group's offsets) is not there yet; it is looked for again.
    Missing,
    /// No broker answers; asked again.
    Unreachable,
}

impl Feed {
    pub fn new(state: FeedState, message: impl Into<String>) -> Self {
        Feed {
            state,
            message: message.into(),
        }
    }
}

/// The pipeline's health, from the topics and the group themselves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// Ticks written to the input topic per second, from its end offsets.
    pub ticks_per_second: Option<f64>,
    /// Records in the input topic (sum of its end offsets).
    pub ticks_total: Option<i64>,
    /// The aggregate group's lag on the input topic.
    pub lag: Option<i64>,
    /// Records of the dead-letter topic by their `stockstream.error.reason` header.
    pub dead_letters: BTreeMap<String, u64>,
    pub bars: Feed,
    pub input: Feed,
    pub group: Feed,
    pub dead_letter_feed: Feed,
}

impl Default for Health {
    fn default() -> Self {
        let starting = || Feed::new(FeedState::Starting, "connecting to Kafka");
        Health {
            ticks_per_second: None,
            ticks_total: None,
            lag: None,
            dead_letters: BTreeMap::new(),
            bars: starting(),
            input: starting(),
            group: starting(),
            dead_letter_feed: starting(),
        }
    }
}

/// What the dashboard reads, shown on the page.
#[derive(Debug, Clone, Serialize)]
pub struct About {
    pub brokers: String,
    pub topic: String,
    pub input: String,
    pub group: String,
    pub dead_letters: String,
}

/// Everything the page shows.
#[derive(Debug, Default)]
pub struct Board {
    candles: [BTreeMap<i64, Bar>; 7],
    ticks: [Option<StockRecord>; 7],
    pub health: Health,
}

impl Board {
    /// Takes a bar in: a new window adds a candle, a revision replaces its window's. A
    /// non-final revision after the final one is an old one replayed: kept out. Whether the
    /// page must hear of it.
    pub fn bar(&mut self, bar: &Bar) -> bool {
        let kept = &mut self.candles[bar.symbol.index()];
        let start = bar.window_start;
        if kept
            .get(&start)
            .is_some_and(|old| old == bar || (old.is_final && !bar.is_final))
        {
            return false;
        }
        if kept.len() >= HISTORY && kept.first_key_value().is_some_and(|(s, _)| start < *s) {
            return false;
        }
        kept.insert(start, bar.clone());
        while kept.len() > HISTORY {
            kept.pop_first();
        }
        true
    }

    /// Takes a tick in if it is the symbol's newest; whether it was.
    pub fn tick(&mut self, record: StockRecord) -> bool {
        let last = &mut self.ticks[record.symbol.index()];
        if last.is_some_and(|l| l.timestamp >= record.timestamp) {
            return false;
        }
        *last = Some(record);
        true
    }

    /// The last tick of each symbol that has one.
    pub fn ticks(&self) -> Vec<StockRecord> {
        self.ticks.iter().flatten().copied().collect()
    }

    pub fn candles(&self, symbol: Symbol) -> impl Iterator<Item = &Bar> {
        self.candles[symbol.index()].values()
    }

    /// The whole board as the page's first event; the bars in their wire format.
    pub fn snapshot(&self, about: &About) -> serde_json::Value {
        let candles: BTreeMap<&str, Vec<serde_json::Value>> = Symbol::ALL
            .iter()
            .map(|s| (s.as_str(), self.candles(*s).map(wire).collect()))
            .collect();
        serde_json::json!({
            "about": about,
            "candles": candles,
            "ticks": self.ticks(),
            "health": self.health,
        })
    }
}

/// A bar as the page gets it: the wire format of the bars topic.
pub fn wire(bar: &Bar) -> serde_json::Value {
    serde_json::from_slice(&bar.to_json()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(symbol: &str, start: &str, close: f64, is_final: bool) -> Vec<u8> {
        format!(
            r#"{{"symbol":"{symbol}","window_start":"{start}","window_end":"2026-01-01T00:00:10Z","open":1.5,"high":3.0,"low":1.0,"close":{close:?},"volume":10,"trades":2,"vwap":2.25,"avg_price":2.0,"final":{is_final}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_bar_read_from_the_wire_is_the_bar_written() {
        let payload = bar("AAPL", "2026-01-01T00:00:00.500Z", 2.0, true);
        let b = Bar::from_json(&payload).unwrap();
        assert_eq!(b.symbol, Symbol::AAPL);
        assert_eq!(b.window_start, 1_767_225_600_500);
        assert_eq!(b.window_end, 1_767_225_610_000);
        assert_eq!(b.vwap, Some(2.25));
        assert!(b.is_final);
        let written: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(wire(&b), written);
    }

    #[test]
    fn what_is_not_a_bar_is_skipped() {
        for payload in [
            &b"not json"[..],
            br#"{"symbol":"AAPL","price":1,"volume":1,"timestamp":1}"#,
            &bar("XXXX", "2026-01-01T00:00:00Z", 1.0, true),
            &bar("AAPL", "yesterday", 1.0, true),
        ] {
            assert_eq!(Bar::from_json(payload), None);
        }
    }

    #[test]
    fn a_revision_replaces_the_candle_of_its_window() {
        let mut board = Board::default();
        let first = Bar::from_json(&bar("TSLA", "2026-01-01T00:00:00Z", 2.0, false)).unwrap();
        let last = Bar::from_json(&bar("TSLA", "2026-01-01T00:00:00Z", 2.5, true)).unwrap();
        assert!(board.bar(&first));
        assert!(board.bar(&last));
        // The same final bar again (at least once) and an older revision change nothing.
        assert!(!board.bar(&last));
        assert!(!board.bar(&first));
        let kept: Vec<_> = board.candles(Symbol::TSLA).collect();
        assert_eq!(kept, vec![&last]);
    }

    #[test]
    fn only_the_newest_history_is_kept() {
        let mut board = Board::default();
        let base = Bar::from_json(&bar("META", "2026-01-01T00:00:00Z", 2.0, true)).unwrap();
        for i in (0..HISTORY as i64 + 50).rev() {
            board.bar(&Bar {
                window_start: base.window_start + i * 10_000,
                ..base.clone()
            });
        }
        let starts: Vec<i64> = board
            .candles(Symbol::META)
            .map(|c| c.window_start)
            .collect();
        assert_eq!(starts.len(), HISTORY);
        assert_eq!(starts[0], base.window_start + 50 * 10_000);
        assert!(board.candles(Symbol::AAPL).next().is_none());
    }

    #[test]
    fn the_last_tick_is_the_newest_by_event_time() {
        let mut board = Board::default();
        let tick = |price, timestamp| StockRecord {
            symbol: Symbol::NFLX,
            price,
            volume: 1,
            timestamp,
        };
        assert!(board.tick(tick(10.0, 5.0)));
        assert!(!board.tick(tick(11.0, 4.0)));
        assert!(board.tick(tick(12.0, 6.0)));
        assert_eq!(board.ticks(), vec![tick(12.0, 6.0)]);
    }
}
