//! `-o pretty`: one line per record for people. stockstream's own three kinds of record are
//! shown as what they are (a tick as `produce` logs it, a bar as an OHLC line, a dead letter
//! with why and where from, out of its headers); any other record as its key, value and
//! headers. Every line ends with where the record is: partition, offset and timestamp.

use nu_ansi_term::{Color, Style};

use super::json::base64;
use super::record::Rec;
use super::stamp::Stamp;
use crate::numbers::thousands;
use crate::record::{self, StockRecord};

/// The dead-letter headers `aggregate` writes.
const REASON: &str = "stockstream.error.reason";
const MESSAGE: &str = "stockstream.error.message";
const SOURCE_TOPIC: &str = "stockstream.source.topic";
const SOURCE_PARTITION: &str = "stockstream.source.partition";
const SOURCE_OFFSET: &str = "stockstream.source.offset";
const TRUNCATED: &str = "stockstream.error.truncated";

/// At most this many characters of a value or key are shown; `-o json` and `-o raw` show
/// them whole.
const SHOWN: usize = 200;

/// What a record is, as far as stockstream knows.
#[derive(Debug, PartialEq)]
pub enum Kind {
    Tick(StockRecord),
    Bar(Bar),
    DeadLetter,
    Other,
}

/// A bar as `aggregate` writes it.
pub type Bar = crate::aggregate::bar::Wire<String>;

/// Dead letters by their headers first: their value may well be a valid tick (a late one).
pub fn kind(rec: &Rec<'_>) -> Kind {
    if rec.header(REASON).is_some() {
        return Kind::DeadLetter;
    }
    let Some(value) = rec.value else {
        return Kind::Other;
    };
    if let Ok(tick) = record::decode(value) {
        return Kind::Tick(tick.into_inner());
    }
    match serde_json::from_slice::<Bar>(value) {
        Ok(bar) => Kind::Bar(bar),
        Err(_) => Kind::Other,
    }
}

/// Writes lines, coloured or not.
pub struct Pretty {
    color: bool,
    stamp: Stamp,
}

impl Pretty {
    pub fn new(color: bool) -> Self {
        Pretty {
            color,
            stamp: Stamp::default(),
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            style.paint(text).to_string()
        } else {
            text.to_string()
        }
    }

    /// Appends the record's line, newline included.
    pub fn write(&mut self, out: &mut Vec<u8>, rec: &Rec<'_>) {
        let body = match kind(rec) {
            Kind::Tick(t) => self.tick(&t),
            Kind::Bar(b) => self.bar(&b),
            Kind::DeadLetter => self.dead_letter(rec),
            Kind::Other => self.other(rec),
        };
        let at = rec
            .timestamp
            .map_or_else(|| "no timestamp".to_string(), |ms| self.stamp.text(ms));
        let place = format!(
            "📍 Partition: {} | 📌 Offset: {} | 🕒 {at}",
            rec.partition, rec.offset
        );
        out.extend_from_slice(body.as_bytes());
        out.extend_from_slice(b" | ");
        out.extend_from_slice(self.paint(Style::new().dimmed(), &place).as_bytes());
        out.push(b'\n');
    }

    /// As `produce` logs a tick it sent, with the tick's own event time.
    fn tick(&mut self, t: &StockRecord) -> String {
        let symbol = self.paint(Color::Cyan.bold(), &format!("{:<6}", t.symbol));
        let event = self.stamp.text(record::event_millis(t.timestamp));
        format!(
            "📈 {symbol} | ${:.2} | Vol: {:>6} | ⏱  {event}",
            t.price,
            thousands(t.volume)
        )
    }

    fn bar(&self, b: &Bar) -> String {
        let symbol = self.paint(Color::Cyan.bold(), &format!("{:<6}", b.symbol));
        let vwap = b
            .vwap
            .map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        let state = if b.is_final { "final" } else { "update" };
        let direction = if b.close >= b.open {
            Color::Green
        } else {
            Color::Red
        };
        let ohlc = self.paint(
            direction.normal(),
            &format!(
                "O {:.2} H {:.2} L {:.2} C {:.2}",
                b.open, b.high, b.low, b.close
            ),
        );
        format!(
            "📊 {symbol} | {} → {} | {ohlc} | VWAP {vwap} | Vol: {} | {} | {state}",
            b.window_start,
            b.window_end,
            thousands(b.volume),
            crate::numbers::count(b.trades, "trade", "trades")
        )
    }

    fn dead_letter(&self, rec: &Rec<'_>) -> String {
        let header = |name| rec.header(name).map(String::from_utf8_lossy);
        let reason = header(REASON).unwrap_or_default();
        let message = header(MESSAGE).unwrap_or_default();
        let source = format!(
            "from {}/{}@{}",
            header(SOURCE_TOPIC).unwrap_or("?".into()),
            header(SOURCE_PARTITION).unwrap_or("?".into()),
            header(SOURCE_OFFSET).unwrap_or("?".into())
        );
        let truncated = if header(TRUNCATED).is_some_and(|t| t == "true") {
            " (truncated)"
        } else {
            ""
        };
        format!(
            "💀 {} {message} | {source} | value{truncated}: {}",
            self.paint(Color::Red.bold(), &reason),
            shown(rec.value)
        )
    }

    fn other(&self, rec: &Rec<'_>) -> String {
        let mut text = format!("📦 key: {} | value: {}", shown(rec.key), shown(rec.value));
        if !rec.headers.is_empty() {
            let headers: Vec<String> = rec
                .headers
                .iter()
                .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), shown(*v)))
                .collect();
            text.push_str(&format!(" | headers: {}", headers.join(", ")));
        }
        text
    }
}

/// Bytes for a person on one line: text with control characters escaped, else base64; at
/// most `SHOWN` characters, the size said when cut.
fn shown(bytes: Option<&[u8]>) -> String {
    let Some(bytes) = bytes else {
        return "(none)".to_string();
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text
            .chars()
            .flat_map(|c| {
                let escape = c.is_control();
                let plain = (!escape).then_some(c).into_iter();
                let escaped = escape.then(|| c.escape_default()).into_iter().flatten();
                plain.chain(escaped)
            })
            .collect::<String>(),
        Err(_) => {
            let mut out = b"base64:".to_vec();
            base64(&mut out, bytes);
            String::from_utf8(out).unwrap_or_default()
        }
    };
    if text.chars().count() <= SHOWN {
        return text;
    }
    let head: String = text.chars().take(SHOWN).collect();
    format!("{head}… ({} bytes)", thousands(bytes.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Symbol;

    const TICK: &[u8] =
        br#"{"symbol":"AAPL","price":150.23,"volume":5234,"timestamp":1762080609.123}"#;
    const BAR: &[u8] = br#"{"symbol":"MSFT","window_start":"2026-01-01T00:00:00Z","window_end":"2026-01-01T00:00:10Z","open":400.0,"high":402.5,"low":399.0,"close":401.0,"volume":1200,"trades":3,"vwap":400.8333,"avg_price":400.6667,"final":true}"#;

    fn rec<'a>(value: Option<&'a [u8]>, headers: Vec<(&'a [u8], Option<&'a [u8]>)>) -> Rec<'a> {
        Rec {
            partition: 2,
            offset: 17,
            timestamp: Some(1_762_080_609_500),
            key: Some(b"AAPL"),
            value,
            headers,
        }
    }

    fn dead_letter_headers() -> Vec<(&'static [u8], Option<&'static [u8]>)> {
        [
            ("stockstream.error.reason", "invalid_json"),
            (
                "stockstream.error.message",
                "payload is not valid JSON: expected value at line 1 column 1",
            ),
            ("stockstream.source.topic", "stock_prices"),
            ("stockstream.source.partition", "0"),
            ("stockstream.source.offset", "5"),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes(), Some(v.as_bytes())))
        .collect()
    }

    fn text(rec: &Rec<'_>) -> String {
        let mut out = Vec::new();
        Pretty::new(false).write(&mut out, rec);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_kind_is_told_apart() {
        assert!(
            matches!(kind(&rec(Some(TICK), vec![])), Kind::Tick(t) if t.symbol == Symbol::AAPL)
        );
        assert!(matches!(kind(&rec(Some(BAR), vec![])), Kind::Bar(b) if b.trades == 3));
        assert_eq!(
            kind(&rec(Some(TICK), dead_letter_headers())),
            Kind::DeadLetter
        );
        assert_eq!(kind(&rec(Some(b"hello"), vec![])), Kind::Other);
        assert_eq!(kind(&rec(None, vec![])), Kind::Other);
        let bad_tick = br#"{"symbol":"AAPL","price":-1,"volume":1,"timestamp":1}"#;
        assert_eq!(kind(&rec(Some(bad_tick), vec![])), Kind::Other);
        let not_a_bar = br#"{"symbol":"MSFT","open":1}"#;
        assert_eq!(kind(&rec(Some(not_a_bar), vec![])), Kind::Other);
    }

    #[test]
    fn a_tick_looks_like_produce_s_line_with_its_place() {
        assert_eq!(
            text(&rec(Some(TICK), vec![])),
            "📈 AAPL   | $150.23 | Vol:  5,234 | ⏱  2025-11-02T10:50:09.123Z | \
             📍 Partition: 2 | 📌 Offset: 17 | 🕒 2025-11-02T10:50:09.500Z\n"
        );
    }

    #[test]
    fn a_bar_is_an_ohlc_line() {
        let line = text(&rec(Some(BAR), vec![]));
        assert!(
            line.starts_with(
                "📊 MSFT   | 2026-01-01T00:00:00Z → 2026-01-01T00:00:10Z | \
                 O 400.00 H 402.50 L 399.00 C 401.00 | VWAP 400.8333 | Vol: 1,200 | 3 trades | final | "
            ),
            "{line}"
        );
    }

    #[test]
    fn a_dead_letter_says_why_and_where_from() {
        let line = text(&rec(Some(b"this is not json"), dead_letter_headers()));
        assert!(
            line.starts_with(
                "💀 invalid_json payload is not valid JSON: expected value at line 1 column 1 | \
                 from stock_prices/0@5 | value: this is not json | 📍 Partition: 2"
            ),
            "{line}"
        );
    }

    #[test]
    fn any_other_record_shows_key_value_and_headers_on_one_line() {
        let line = text(&rec(
            Some(b"two\nlines"),
            vec![
                (b"h".as_slice(), Some(b"v".as_slice())),
                (b"h".as_slice(), None),
            ],
        ));
        assert_eq!(
            line,
            "📦 key: AAPL | value: two\\nlines | headers: h=v, h=(none) | \
             📍 Partition: 2 | 📌 Offset: 17 | 🕒 2025-11-02T10:50:09.500Z\n"
        );
        let binary = text(&Rec {
            value: Some(b"\xff\x00"),
            ..Rec::default()
        });
        assert!(
            binary.starts_with("📦 key: (none) | value: base64:/wA= |"),
            "{binary}"
        );
        assert!(binary.contains("🕒 no timestamp"), "{binary}");
    }

    #[test]
    fn long_values_are_cut_and_their_size_said() {
        let long = "x".repeat(1000);
        let line = text(&rec(Some(long.as_bytes()), vec![]));
        assert!(
            line.contains(&format!("{}… (1,000 bytes)", "x".repeat(SHOWN))),
            "{line}"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let mut out = Vec::new();
        Pretty::new(true).write(&mut out, &rec(Some(TICK), vec![]));
        assert!(out.contains(&0x1b));
        assert!(!text(&rec(Some(TICK), vec![])).contains('\x1b'));
    }
}
