//! The rules a record must meet in its context, beyond its own fields: how big its bytes
//! may be, that its key names its symbol, and how far ahead of the wall clock its event
//! time may be. A `Tick` is a record that passed every rule; the aggregation engine takes
//! nothing else.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{decode, RecordError, StockRecord, Symbol, ValidRecord};

/// The latest event time a record may carry: the end of year 9999, in ms.
#[cfg(test)]
pub const MAX_EVENT_MILLIS: i64 = 253_402_300_799_999;

/// The same, in the wire format's Unix seconds.
pub const MAX_TIMESTAMP_SECONDS: f64 = 253_402_300_799.999;

/// Event time in whole milliseconds; saturates for absurdly large timestamps.
pub fn event_millis(timestamp_seconds: f64) -> i64 {
    let ms = (timestamp_seconds * 1000.0).round();
    if ms >= i64::MAX as f64 {
        i64::MAX
    } else {
        ms as i64
    }
}

/// The wall clock in Unix ms.
pub fn now_millis() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// The limits of the contextual rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A payload longer than this is not a tick (`too_large`).
    pub max_bytes: usize,
    /// How far an event time may be ahead of the wall clock when the record is read, ms
    /// (`future`).
    pub max_future_ms: i64,
}

impl Limits {
    /// A tick is under 100 bytes; 64 KiB leaves room for any extra fields a writer adds.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
    /// One minute: clocks of producers that drift further are broken.
    pub const DEFAULT_MAX_FUTURE_MS: i64 = 60_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: Limits::DEFAULT_MAX_BYTES,
            max_future_ms: Limits::DEFAULT_MAX_FUTURE_MS,
        }
    }
}

/// A record that passed every rule, with its event time in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    record: StockRecord,
    event_ms: i64,
}

impl Tick {
    /// Checks one record as read from a topic: its size, its fields, its key against its
    /// symbol (a missing key is a mismatch), and its event time against the earlier of
    /// `read_ms` (the wall clock when read) and `written_ms` (the record's Kafka timestamp).
    /// The first rule broken is the reason.
    ///
    /// The Kafka timestamp makes the verdict the same when a record is read again after a
    /// restart, and catches a record dated ahead of when it was written in a replay of old
    /// data too; the read clock covers records whose timestamp is missing or ahead of it.
    pub fn check(
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        read_ms: i64,
        written_ms: Option<i64>,
        limits: &Limits,
    ) -> Result<Tick, RecordError> {
        let now_ms = written_ms
            .filter(|w| *w > 0)
            .map_or(read_ms, |w| w.min(read_ms));
        let bytes = payload.unwrap_or_default();
        if bytes.len() > limits.max_bytes {
            return Err(RecordError::TooLarge {
                size: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        let record = decode(bytes)?;
        if key.and_then(Symbol::from_bytes) != Some(record.symbol) {
            return Err(RecordError::KeyMismatch {
                key: key.map(|k| String::from_utf8_lossy(k).chars().take(40).collect()),
                symbol: record.symbol,
            });
        }
        let tick = Tick::from(record);
        let ahead = tick.event_ms.saturating_sub(now_ms);
        if ahead > limits.max_future_ms {
            return Err(RecordError::Future {
                ahead_ms: ahead,
                limit_ms: limits.max_future_ms,
            });
        }
        Ok(tick)
    }

    pub fn record(&self) -> &StockRecord {
        &self.record
    }

    #[cfg(test)]
    pub fn symbol(&self) -> super::Symbol {
        self.record.symbol
    }

    /// Event time, Unix ms.
    pub fn event_ms(&self) -> i64 {
        self.event_ms
    }

    /// A tick at a chosen event time, for tests of code that takes ticks.
    #[cfg(test)]
    pub fn at(record: StockRecord, event_ms: i64) -> Tick {
        Tick { record, event_ms }
    }
}

impl From<ValidRecord> for Tick {
    /// A valid record's own fields are checked; its context (key, size, clock) is not.
    fn from(record: ValidRecord) -> Self {
        let record = record.into_inner();
        Tick {
            event_ms: event_millis(record.timestamp),
            record,
        }
    }
}

/// "3m 20s", "1d 2h": how far ahead, for people.
pub fn span(ms: i64) -> String {
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn payload(symbol: &str, at_ms: i64) -> Vec<u8> {
        format!(
            r#"{{"symbol":"{symbol}","price":10.5,"volume":3,"timestamp":{}}}"#,
            at_ms as f64 / 1000.0
        )
        .into_bytes()
    }

    fn check(key: Option<&[u8]>, payload: &[u8]) -> Result<Tick, RecordError> {
        Tick::check(key, Some(payload), NOW, None, &Limits::default())
    }

    #[test]
    fn a_good_tick_keyed_by_its_symbol_passes() {
        let t = check(Some(b"AAPL"), &payload("AAPL", NOW - 5_000)).unwrap();
        assert_eq!(t.symbol(), super::super::Symbol::AAPL);
        assert_eq!(t.event_ms(), NOW - 5_000);
    }

    #[test]
    fn a_key_naming_another_symbol_is_a_mismatch() {
        let e = check(Some(b"MSFT"), &payload("AAPL", NOW)).unwrap_err();
        assert_eq!(e.reason(), "key_mismatch");
        assert_eq!(
            e.to_string(),
            "key \"MSFT\" does not match symbol AAPL (the key must be the symbol)"
        );
    }

    #[test]
    fn a_missing_key_is_a_mismatch() {
        let e = check(None, &payload("AAPL", NOW)).unwrap_err();
        assert_eq!(e.reason(), "key_mismatch");
        assert!(e.to_string().contains("no key"), "{e}");
    }

    #[test]
    fn the_key_is_compared_exactly() {
        for key in [&b"aapl"[..], b"AAPL ", b"", b"\xff"] {
            let e = check(Some(key), &payload("AAPL", NOW)).unwrap_err();
            assert_eq!(e.reason(), "key_mismatch", "{key:?}");
        }
    }

    #[test]
    fn an_event_time_past_the_limit_is_future() {
        let limit = Limits::DEFAULT_MAX_FUTURE_MS;
        assert!(check(Some(b"AAPL"), &payload("AAPL", NOW + limit)).is_ok());
        let e = check(Some(b"AAPL"), &payload("AAPL", NOW + limit + 1)).unwrap_err();
        assert_eq!(e.reason(), "future");
        let e = check(Some(b"AAPL"), &payload("AAPL", NOW + 86_400_000)).unwrap_err();
        assert!(e.to_string().contains("1day ahead"), "{e}");
    }

    #[test]
    fn the_time_a_record_was_written_judges_it_when_earlier_than_the_read() {
        let day = 86_400_000;
        let p = payload("AAPL", NOW + day);
        // Read a week later, but written at NOW: a day ahead of its writing.
        let e = Tick::check(
            Some(b"AAPL"),
            Some(&p),
            NOW + 7 * day,
            Some(NOW),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.reason(), "future");
        // A timestamp ahead of the read clock (or none at all) counts for nothing.
        for written in [Some(NOW + 2 * day), None, Some(0), Some(-1)] {
            let e =
                Tick::check(Some(b"AAPL"), Some(&p), NOW, written, &Limits::default()).unwrap_err();
            assert_eq!(e.reason(), "future", "{written:?}");
            // Read a day later, it is on time.
            assert!(
                Tick::check(
                    Some(b"AAPL"),
                    Some(&p),
                    NOW + day,
                    written,
                    &Limits::default()
                )
                .is_ok(),
                "{written:?}"
            );
        }
    }

    #[test]
    fn a_payload_over_the_size_limit_is_too_large_whatever_it_holds() {
        let limits = Limits {
            max_bytes: 100,
            ..Limits::default()
        };
        let mut big = payload("AAPL", NOW);
        big.truncate(big.len() - 1);
        big.extend_from_slice(br#","pad":""#);
        big.resize(101, b'x');
        let e = Tick::check(Some(b"AAPL"), Some(&big), NOW, None, &limits).unwrap_err();
        assert_eq!(e.reason(), "too_large");
        assert_eq!(
            e.to_string(),
            "payload of 101 bytes is larger than the limit of 100"
        );
    }

    #[test]
    fn a_record_bad_in_several_ways_gets_the_first_reason() {
        // Not JSON and unkeyed: the payload is judged before the key.
        let e = check(None, b"not json").unwrap_err();
        assert_eq!(e.reason(), "invalid_json");
        // Mis-keyed and in the future: the key first.
        let e = check(Some(b"MSFT"), &payload("AAPL", NOW + 86_400_000)).unwrap_err();
        assert_eq!(e.reason(), "key_mismatch");
    }

    #[test]
    fn beyond_year_9999_is_an_invalid_record() {
        let p = br#"{"symbol":"AAPL","price":1,"volume":1,"timestamp":253402300800}"#;
        let e =
            Tick::check(Some(b"AAPL"), Some(p), i64::MAX, None, &Limits::default()).unwrap_err();
        assert_eq!(e.reason(), "invalid_record");
        assert_eq!(e.field(), Some("timestamp"));
    }

    #[test]
    fn event_millis_saturates() {
        assert_eq!(event_millis(1e300), i64::MAX);
        assert_eq!(event_millis(1.2345), 1_235);
    }
}
