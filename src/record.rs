//! The one stock-tick record that every subcommand shares: its wire format (the JSON of the
//! original Python project), its validation rules, and the typed error a rejected payload
//! gets. Code past this boundary only ever sees a `ValidRecord`.

use std::fmt;
use std::io::Write as _;

use garde::{Unvalidated, Valid, Validate};
use serde::{Deserialize, Serialize};

mod fast;
mod tick;

#[cfg(test)]
pub use tick::MAX_EVENT_MILLIS;
pub use tick::{event_millis, now_millis, Limits, Tick};

/// A ticker symbol: the fixed set of stocks stockstream knows.
#[allow(clippy::upper_case_acronyms)] // tickers are spelled as on the exchange and the wire
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[value(rename_all = "UPPER")]
pub enum Symbol {
    AAPL,
    GOOGL,
    AMZN,
    MSFT,
    TSLA,
    META,
    NFLX,
}

impl Symbol {
    /// Every symbol, in a fixed order (the order of the original project).
    pub const ALL: [Symbol; 7] = [
        Symbol::AAPL,
        Symbol::GOOGL,
        Symbol::AMZN,
        Symbol::MSFT,
        Symbol::TSLA,
        Symbol::META,
        Symbol::NFLX,
    ];

    /// The ticker as it appears on the wire and as the record key.
    pub const fn as_str(self) -> &'static str {
        match self {
            Symbol::AAPL => "AAPL",
            Symbol::GOOGL => "GOOGL",
            Symbol::AMZN => "AMZN",
            Symbol::MSFT => "MSFT",
            Symbol::TSLA => "TSLA",
            Symbol::META => "META",
            Symbol::NFLX => "NFLX",
        }
    }

    /// A dense index (0..7), for fixed-size per-symbol state.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The symbol named by a record key or wire value, exactly as spelled there.
    pub fn from_wire(s: &str) -> Option<Symbol> {
        Symbol::from_bytes(s.as_bytes())
    }

    /// As `from_wire`, from raw bytes (a key or a JSON string's contents). Four-letter
    /// tickers are compared as one 32-bit word: this runs once per record read.
    pub fn from_bytes(b: &[u8]) -> Option<Symbol> {
        const fn word(s: &[u8; 4]) -> u32 {
            u32::from_le_bytes(*s)
        }
        const AAPL: u32 = word(b"AAPL");
        const AMZN: u32 = word(b"AMZN");
        const MSFT: u32 = word(b"MSFT");
        const TSLA: u32 = word(b"TSLA");
        const META: u32 = word(b"META");
        const NFLX: u32 = word(b"NFLX");
        if let Ok(four) = <[u8; 4]>::try_from(b) {
            return Some(match word(&four) {
                AAPL => Symbol::AAPL,
                AMZN => Symbol::AMZN,
                MSFT => Symbol::MSFT,
                TSLA => Symbol::TSLA,
                META => Symbol::META,
                NFLX => Symbol::NFLX,
                _ => return None,
            });
        }
        (<[u8; 5]>::try_from(b).ok()? == *b"GOOGL").then_some(Symbol::GOOGL)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One trade tick: `{"symbol":"AAPL","price":150.23,"volume":5234,"timestamp":1762080609.123}`.
///
/// Unknown extra fields are ignored; missing or wrongly typed fields are errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Validate)]
pub struct StockRecord {
    /// The type is the rule: only the known tickers deserialize.
    #[garde(skip)]
    pub symbol: Symbol,
    /// Trade price in dollars.
    #[garde(custom(finite_positive))]
    pub price: f64,
    /// Shares traded; the unsigned integer type rules out negatives and fractions.
    #[garde(skip)]
    pub volume: u64,
    /// Event time, Unix seconds, at most the end of year 9999.
    #[garde(custom(event_time))]
    pub timestamp: f64,
}

/// A record that has passed every rule. Only `decode` and `StockRecord::validated` make one.
pub type ValidRecord = Valid<StockRecord>;

#[allow(clippy::trivially_copy_pass_by_ref)] // garde's custom rules take the field by reference
fn finite_positive(value: &f64, _ctx: &()) -> garde::Result {
    if !value.is_finite() {
        return Err(garde::Error::new("must be a finite number"));
    }
    if *value <= 0.0 {
        return Err(garde::Error::new("must be greater than 0"));
    }
    Ok(())
}

#[allow(clippy::trivially_copy_pass_by_ref)] // as above
fn event_time(value: &f64, ctx: &()) -> garde::Result {
    finite_positive(value, ctx)?;
    if *value > tick::MAX_TIMESTAMP_SECONDS {
        return Err(garde::Error::new("is beyond the year 9999"));
    }
    Ok(())
}

/// Why a payload is not a valid record. The dead-letter topic carries `reason()` and the
/// message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("payload is empty")]
    Empty,
    #[error("payload is not valid UTF-8 (at byte {0})")]
    InvalidUtf8(usize),
    #[error("payload is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("payload is JSON but not an object (found {0})")]
    NotAnObject(&'static str),
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    #[error("field `{field}` {problem}")]
    InvalidField {
        field: &'static str,
        problem: String,
    },
    #[error("payload of {size} bytes is larger than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("{} does not match symbol {symbol} (the key must be the symbol)", describe_key(key.as_deref()))]
    KeyMismatch {
        /// The key as text (lossy, at most 40 characters); `None`: the record had none.
        key: Option<String>,
        symbol: Symbol,
    },
    #[error("event time is {} ahead of the wall clock (at most {} allowed: --max-future)", tick::span(*ahead_ms), tick::span(*limit_ms))]
    Future { ahead_ms: i64, limit_ms: i64 },
}

fn describe_key(key: Option<&str>) -> String {
    key.map_or_else(|| "no key".to_string(), |k| format!("key {k:?}"))
}

impl RecordError {
    /// A short, stable code for scripts and the dead-letter headers.
    pub fn reason(&self) -> &'static str {
        match self {
            RecordError::Empty | RecordError::InvalidJson(_) | RecordError::NotAnObject(_) => {
                "invalid_json"
            }
            RecordError::InvalidUtf8(_) => "invalid_utf8",
            RecordError::MissingField(_) | RecordError::InvalidField { .. } => "invalid_record",
            RecordError::TooLarge { .. } => "too_large",
            RecordError::KeyMismatch { .. } => "key_mismatch",
            RecordError::Future { .. } => "future",
        }
    }

    /// The field at fault, when one is.
    #[cfg(test)]
    pub fn field(&self) -> Option<&'static str> {
        match self {
            RecordError::MissingField(f) | RecordError::InvalidField { field: f, .. } => Some(f),
            _ => None,
        }
    }
}

const FIELDS: [&str; 4] = ["symbol", "price", "volume", "timestamp"];

impl StockRecord {
    /// Checks every rule and wraps the record as valid.
    pub fn validated(self) -> Result<ValidRecord, RecordError> {
        Unvalidated::new(self).validate().map_err(|report| {
            let (path, error) = report
                .iter()
                .next()
                .map(|(p, e)| (p.to_string(), e.message().to_string()))
                .unwrap_or_default();
            let field = FIELDS.into_iter().find(|f| *f == path).unwrap_or("record");
            RecordError::InvalidField {
                field,
                problem: error,
            }
        })
    }

    /// Appends the wire JSON to `out`: price with two decimals, timestamp with milliseconds.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail, and these four fields always serialize.
        let _ = write!(
            out,
            r#"{{"symbol":"{}","price":{:.2},"volume":{},"timestamp":{:.3}}}"#,
            self.symbol.as_str(),
            self.price,
            self.volume,
            self.timestamp
        );
    }
}

/// Decodes and validates one payload. Never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<ValidRecord, RecordError> {
    if bytes.is_empty() {
        return Err(RecordError::Empty);
    }
    if let Some(record) = fast::parse(bytes) {
        return record.validated();
    }
    // JSON is UTF-8 throughout. serde_json checks the strings it keeps, not those it skips
    // (an unknown field's value), so the whole payload is checked first.
    let text = std::str::from_utf8(bytes).map_err(|e| RecordError::InvalidUtf8(e.valid_up_to()))?;
    match serde_json::from_str::<StockRecord>(text) {
        Ok(record) => record.validated(),
        Err(_) => Err(explain(bytes)),
    }
}

/// The slow path for a payload that did not deserialize: find the precise reason.
fn explain(bytes: &[u8]) -> RecordError {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return RecordError::InvalidUtf8(e.valid_up_to()),
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return RecordError::InvalidJson(e.to_string()),
    };
    let Some(object) = value.as_object() else {
        return RecordError::NotAnObject(kind(&value));
    };
    for field in FIELDS {
        let Some(v) = object.get(field) else {
            return RecordError::MissingField(field);
        };
        if let Some(problem) = field_problem(field, v) {
            return RecordError::InvalidField { field, problem };
        }
    }
    // Every field looked right on its own yet the whole did not deserialize: report the
    // parser's own words rather than guess.
    match serde_json::from_str::<StockRecord>(text) {
        Err(e) => RecordError::InvalidJson(e.to_string()),
        Ok(_) => RecordError::InvalidJson("unexpected decoding failure".into()),
    }
}

fn field_problem(field: &str, v: &serde_json::Value) -> Option<String> {
    match field {
        "symbol" => match v.as_str() {
            None => Some(format!("must be a string, found {}", kind(v))),
            Some(s) if Symbol::from_wire(s).is_none() => Some(format!(
                "must be one of AAPL GOOGL AMZN MSFT TSLA META NFLX, found {s:?}"
            )),
            Some(_) => None,
        },
        "volume" => match v {
            serde_json::Value::Number(n) if n.is_u64() => None,
            serde_json::Value::Number(n) => Some(format!("must be an integer >= 0, found {n}")),
            _ => Some(format!("must be an integer >= 0, found {}", kind(v))),
        },
        _ => match v {
            serde_json::Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => None,
            serde_json::Value::Number(n) => Some(format!("must be a finite number, found {n}")),
            _ => Some(format!("must be a number, found {}", kind(v))),
        },
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str =
        r#"{"symbol":"AAPL","price":150.23,"volume":5234,"timestamp":1762080609.123}"#;

    fn with(field: &str, raw: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        v[field] = serde_json::from_str(raw).unwrap_or(serde_json::Value::Null);
        v.to_string()
    }

    fn without(field: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        v.as_object_mut().unwrap().remove(field);
        v.to_string()
    }

    fn field_error(payload: &str) -> (&'static str, String) {
        match decode(payload.as_bytes()) {
            Err(e @ RecordError::InvalidField { .. }) => (e.field().unwrap(), e.to_string()),
            other => panic!("expected an invalid field for {payload}, got {other:?}"),
        }
    }

    #[test]
    fn decodes_the_original_wire_format() {
        let r = decode(GOOD.as_bytes()).unwrap();
        assert_eq!(r.symbol, Symbol::AAPL);
        assert!((r.price - 150.23).abs() < 1e-9);
        assert_eq!(r.volume, 5234);
        assert!((r.timestamp - 1_762_080_609.123).abs() < 1e-6);
    }

    #[test]
    fn ignores_unknown_fields() {
        let payload = r#"{"symbol":"MSFT","price":1,"volume":0,"timestamp":1,"exchange":"NASDAQ","x":[1,{}]}"#;
        assert_eq!(decode(payload.as_bytes()).unwrap().symbol, Symbol::MSFT);
    }

    #[test]
    fn integer_price_and_timestamp_are_numbers_too() {
        let r =
            decode(br#"{"symbol":"TSLA","price":250,"volume":1,"timestamp":1762080609}"#).unwrap();
        assert!((r.price - 250.0).abs() < f64::EPSILON);
    }

    #[test]
    fn encode_round_trips_with_two_decimal_prices() {
        let rec = StockRecord {
            symbol: Symbol::NFLX,
            price: 650.126_7,
            volume: 42,
            timestamp: 1_762_080_609.123_4,
        };
        let mut out = Vec::new();
        rec.encode_into(&mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"symbol":"NFLX","price":650.13,"volume":42,"timestamp":1762080609.123}"#
        );
        let back = decode(&out).unwrap();
        assert_eq!(back.symbol, Symbol::NFLX);
        assert!((back.price - 650.13).abs() < 1e-9);
    }

    #[test]
    fn rejects_empty_payload() {
        assert_eq!(decode(b"").unwrap_err(), RecordError::Empty);
        assert_eq!(decode(b"").unwrap_err().reason(), "invalid_json");
    }

    #[test]
    fn rejects_non_json() {
        let e = decode(b"hello, world").unwrap_err();
        assert!(matches!(e, RecordError::InvalidJson(_)), "{e:?}");
        assert_eq!(e.reason(), "invalid_json");
    }

    #[test]
    fn rejects_invalid_utf8() {
        let e = decode(b"{\"symbol\":\"AA\xffPL\"}").unwrap_err();
        assert_eq!(e, RecordError::InvalidUtf8(13));
        assert_eq!(e.reason(), "invalid_utf8");
    }

    #[test]
    fn rejects_invalid_utf8_in_a_field_it_would_ignore() {
        let payload =
            b"{\"symbol\":\"AAPL\",\"price\":1,\"volume\":1,\"timestamp\":1,\"note\":\"caf\xe9\"}";
        let e = decode(payload).unwrap_err();
        assert_eq!(e.reason(), "invalid_utf8", "{e:?}");
    }

    #[test]
    fn rejects_a_json_array() {
        let e = decode(format!("[{GOOD}]").as_bytes()).unwrap_err();
        assert_eq!(e, RecordError::NotAnObject("an array"));
    }

    #[test]
    fn rejects_each_missing_field_by_name() {
        for field in FIELDS {
            let e = decode(without(field).as_bytes()).unwrap_err();
            assert_eq!(e, RecordError::MissingField(field));
            assert_eq!(e.reason(), "invalid_record");
        }
    }

    #[test]
    fn rejects_price_as_a_string() {
        let (field, msg) = field_error(&with("price", r#""150.23""#));
        assert_eq!(field, "price");
        assert!(msg.contains("must be a number, found a string"), "{msg}");
    }

    #[test]
    fn rejects_zero_and_negative_price() {
        for raw in ["0", "0.0", "-1.5"] {
            let (field, msg) = field_error(&with("price", raw));
            assert_eq!(field, "price");
            assert!(msg.contains("greater than 0"), "{raw}: {msg}");
        }
    }

    #[test]
    fn rejects_overflowing_price() {
        let payload = GOOD.replace("150.23", "1e999");
        let e = decode(payload.as_bytes()).unwrap_err();
        // serde_json refuses numbers beyond f64 at the parser; either way the record is out.
        assert!(
            matches!(e, RecordError::InvalidJson(_)) || e.field() == Some("price"),
            "{e:?}"
        );
    }

    #[test]
    fn rejects_null_price() {
        let (field, msg) = field_error(&with("price", "null"));
        assert_eq!(field, "price");
        assert!(msg.contains("found null"), "{msg}");
    }

    #[test]
    fn rejects_negative_and_fractional_volume() {
        for raw in ["-1", "1.5"] {
            let (field, msg) = field_error(&with("volume", raw));
            assert_eq!(field, "volume");
            assert!(msg.contains("integer >= 0"), "{raw}: {msg}");
        }
    }

    #[test]
    fn rejects_unknown_and_lowercase_symbols() {
        for raw in [r#""IBM""#, r#""aapl""#, "7"] {
            let (field, _) = field_error(&with("symbol", raw));
            assert_eq!(field, "symbol", "{raw}");
        }
    }

    #[test]
    fn rejects_bad_timestamps() {
        for raw in ["0", "-3", r#""now""#] {
            let (field, _) = field_error(&with("timestamp", raw));
            assert_eq!(field, "timestamp", "{raw}");
        }
    }

    #[test]
    fn rejects_non_finite_values_built_in_code() {
        let rec = StockRecord {
            symbol: Symbol::AAPL,
            price: f64::NAN,
            volume: 1,
            timestamp: 1.0,
        };
        assert_eq!(rec.validated().unwrap_err().field(), Some("price"));
        let rec = StockRecord {
            timestamp: f64::INFINITY,
            price: 1.0,
            ..rec
        };
        assert_eq!(rec.validated().unwrap_err().field(), Some("timestamp"));
    }

    #[test]
    fn symbol_wire_names_are_exact() {
        for s in Symbol::ALL {
            assert_eq!(Symbol::from_wire(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(Symbol::from_wire("aapl"), None);
        for other in [
            "", "AAP", "AAPLX", "GOOG", "GOOGLE", "GOOGl", "AAPL ", " AAPL", "IBM",
        ] {
            assert_eq!(Symbol::from_bytes(other.as_bytes()), None, "{other:?}");
        }
    }

    proptest! {
        /// The word-wise lookup answers exactly what comparing the names one by one does.
        #[test]
        fn symbol_lookup_matches_the_names(bytes in proptest::collection::vec(prop_oneof![Just(b'A'), Just(b'G'), Just(b'L'), Just(b'O'), any::<u8>()], 0..7)) {
            let by_name = Symbol::ALL.into_iter().find(|s| s.as_str().as_bytes() == bytes.as_slice());
            prop_assert_eq!(Symbol::from_bytes(&bytes), by_name);
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn never_panics_on_json_like_text(s in r#"[{}\[\]":,0-9a-zA-Z.eE+\- ]{0,120}"#) {
            let _ = decode(s.as_bytes());
        }

        #[test]
        fn every_valid_record_round_trips(
            sym in 0usize..7,
            cents in 1u64..10_000_000,
            volume in any::<u64>(),
            millis in 1u64..4_000_000_000_000,
        ) {
            let rec = StockRecord {
                symbol: Symbol::ALL[sym],
                price: cents as f64 / 100.0,
                volume,
                timestamp: millis as f64 / 1000.0,
            };
            let mut out = Vec::new();
            rec.encode_into(&mut out);
            let back = decode(&out).unwrap();
            prop_assert_eq!(back.symbol, rec.symbol);
            prop_assert_eq!(back.volume, rec.volume);
            prop_assert!((back.price - rec.price).abs() < 1e-6);
            prop_assert!((back.timestamp - rec.timestamp).abs() < 1e-6);
        }
    }
}
