//! `-o json`: one object per record and line, with fields a script can rely on:
//!
//! `{"topic":…,"partition":0,"offset":7,"timestamp":"2026-01-01T09:30:00.125Z",
//!   "timestamp_ms":1767259800125,"key":"AAPL","key_encoding":"text",
//!   "headers":[{"key":…,"value":…,"value_encoding":"text"}],"value":{…},"value_encoding":"json"}`
//!
//! A key or value is embedded as JSON when it is one JSON document, else as a string when it
//! is UTF-8, else as base64; its `_encoding` field says which (`null` for a missing one).
//! A value that is JSON is checked and copied as it is (only line breaks between tokens are
//! taken out), never parsed into a tree and printed again: numbers keep their digits.

use serde::de::IgnoredAny;

use super::record::Rec;
use super::stamp::Stamp;

/// How a key, value or header value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Text,
    Base64,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Text => "text",
            Encoding::Base64 => "base64",
        }
    }
}

/// The encoding of `bytes`: JSON if they are one JSON document, else text if UTF-8.
#[cfg(test)]
pub fn encoding_of(bytes: &[u8]) -> Encoding {
    if json_document(bytes).is_some() {
        Encoding::Json
    } else if std::str::from_utf8(bytes).is_ok() {
        Encoding::Text
    } else {
        Encoding::Base64
    }
}

/// The JSON text of `bytes` without the white space around it, if they are one JSON
/// document: UTF-8 throughout, and syntax serde_json accepts (checked without building a
/// tree: `IgnoredAny` only walks it).
fn json_document(bytes: &[u8]) -> Option<&str> {
    // A fast no for the usual text: a JSON document starts with one of these.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if !matches!(
        first,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    ) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    serde_json::from_str::<IgnoredAny>(text).ok()?;
    Some(text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r')))
}

/// The fields of one line, each after the other.
pub struct Lines {
    /// `{"topic":"<name>","partition":`, made once.
    prefix: Vec<u8>,
    stamp: Stamp,
}

impl Lines {
    pub fn new(topic: &str) -> Self {
        let mut prefix = b"{\"topic\":".to_vec();
        string(&mut prefix, topic);
        prefix.extend_from_slice(b",\"partition\":");
        Lines {
            prefix,
            stamp: Stamp::default(),
        }
    }

    /// Appends the record's line, newline included.
    pub fn write(&mut self, out: &mut Vec<u8>, rec: &Rec<'_>) {
        out.extend_from_slice(&self.prefix);
        integer(out, i64::from(rec.partition));
        out.extend_from_slice(b",\"offset\":");
        integer(out, rec.offset);
        out.extend_from_slice(b",\"timestamp\":");
        match rec.timestamp {
            Some(ms) => {
                out.push(b'"');
                self.stamp.write(out, ms);
                out.extend_from_slice(b"\",\"timestamp_ms\":");
                integer(out, ms);
            }
            None => out.extend_from_slice(b"null,\"timestamp_ms\":null"),
        }
        out.extend_from_slice(b",\"key\":");
        bytes_field(out, rec.key, b"key_encoding");
        out.extend_from_slice(b",\"headers\":[");
        for (i, (key, value)) in rec.headers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Header keys are text in Kafka's protocol; any byte that is not is replaced.
            out.extend_from_slice(b"{\"key\":");
            string(out, &String::from_utf8_lossy(key));
            out.extend_from_slice(b",\"value\":");
            text_field(out, *value, b"value_encoding");
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"value\":");
        bytes_field(out, rec.value, b"value_encoding");
        out.extend_from_slice(b"}\n");
    }
}

/// `<value>,"<name>":"<encoding>"`, the value embedded as JSON, text or base64.
fn bytes_field(out: &mut Vec<u8>, bytes: Option<&[u8]>, name: &[u8]) {
    let encoding = match bytes {
        None => {
            out.extend_from_slice(b"null");
            None
        }
        Some(b) => Some(match json_document(b) {
            Some(doc) => {
                embed(out, doc);
                Encoding::Json
            }
            None => text_or_base64(out, b),
        }),
    };
    encoding_field(out, name, encoding);
}

/// As `bytes_field`, for header values: text or base64, never embedded JSON (headers carry
/// short strings; a number-like header stays a string).
fn text_field(out: &mut Vec<u8>, bytes: Option<&[u8]>, name: &[u8]) {
    let encoding = match bytes {
        None => {
            out.extend_from_slice(b"null");
            None
        }
        Some(b) => Some(text_or_base64(out, b)),
    };
    encoding_field(out, name, encoding);
}

fn text_or_base64(out: &mut Vec<u8>, bytes: &[u8]) -> Encoding {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            string(out, text);
            Encoding::Text
        }
        Err(_) => {
            out.push(b'"');
            base64(out, bytes);
            out.push(b'"');
            Encoding::Base64
        }
    }
}

fn encoding_field(out: &mut Vec<u8>, name: &[u8], encoding: Option<Encoding>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name);
    out.extend_from_slice(b"\":");
    match encoding {
        Some(e) => {
            out.push(b'"');
            out.extend_from_slice(e.as_str().as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON document as it is, on one line: white space between tokens that breaks a line is
/// dropped (inside strings a line break is always escaped, so only those between tokens
/// can be there).
fn embed(out: &mut Vec<u8>, doc: &str) {
    let bytes = doc.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b'\n' | b'\r')) {
        out.extend_from_slice(bytes);
        return;
    }
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b'\n' | b'\r') {
            continue;
        }
        out.push(b);
    }
}

/// A JSON string.
pub fn string(out: &mut Vec<u8>, text: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// A decimal integer.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

/// Standard base64 (RFC 4648) with padding.
pub fn base64(out: &mut Vec<u8>, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32, shift: u32| ALPHABET[((n >> shift) & 63) as usize];
    let chunks = bytes.chunks_exact(3);
    let tail = chunks.remainder();
    for c in chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), sextet(n, 0)]);
    }
    match *tail {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), b'=', b'=']);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), b'=']);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn line(rec: &Rec<'_>) -> Value {
        let mut out = Vec::new();
        Lines::new("stock_prices").write(&mut out, rec);
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        assert!(out.ends_with(b"\n"));
        serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out));
        })
    }

    #[test]
    fn encodings_are_json_then_text_then_base64() {
        assert_eq!(encoding_of(br#"{"a":1}"#), Encoding::Json);
        assert_eq!(encoding_of(b" [1, 2] \n"), Encoding::Json);
        assert_eq!(encoding_of(b"42"), Encoding::Json);
        assert_eq!(encoding_of(b"\"quoted\""), Encoding::Json);
        assert_eq!(encoding_of(b"null"), Encoding::Json);
        assert_eq!(encoding_of(b"AAPL"), Encoding::Text);
        assert_eq!(encoding_of(b"this is not json"), Encoding::Text);
        assert_eq!(encoding_of(br#"{"a":1} {"b":2}"#), Encoding::Text);
        assert_eq!(encoding_of(b"{\"a\":"), Encoding::Text);
        assert_eq!(encoding_of(b""), Encoding::Text);
        assert_eq!(encoding_of(b"\xff\xfe"), Encoding::Base64);
        assert_eq!(encoding_of(b"{\"symbol\":\"AA\xffPL\"}"), Encoding::Base64);
    }

    #[test]
    fn a_line_has_every_field_in_a_stable_shape() {
        let tick = br#"{"symbol":"AAPL","price":150.23,"volume":5234,"timestamp":1762080609.123}"#;
        let rec = Rec {
            partition: 3,
            offset: 17,
            timestamp: Some(1_762_080_609_123),
            key: Some(b"AAPL"),
            value: Some(tick),
            headers: vec![
                (b"a".as_slice(), Some(b"1".as_slice())),
                (b"a".as_slice(), Some(b"\xff".as_slice())),
                (b"n".as_slice(), None),
            ],
        };
        let v = line(&rec);
        assert_eq!(
            v,
            json!({
                "topic": "stock_prices",
                "partition": 3,
                "offset": 17,
                "timestamp": "2025-11-02T10:50:09.123Z",
                "timestamp_ms": 1_762_080_609_123_i64,
                "key": "AAPL",
                "key_encoding": "text",
                "headers": [
                    {"key": "a", "value": "1", "value_encoding": "text"},
                    {"key": "a", "value": "/w==", "value_encoding": "base64"},
                    {"key": "n", "value": null, "value_encoding": null},
                ],
                "value": {"symbol": "AAPL", "price": 150.23, "volume": 5234, "timestamp": 1_762_080_609.123},
                "value_encoding": "json",
            })
        );
    }

    #[test]
    fn json_values_are_copied_as_written() {
        let mut out = Vec::new();
        let rec = Rec {
            value: Some(b"{\"n\": 123456789012345678901234567890,\n \"s\": \"a\\nb\"}\r\n"),
            ..Rec::default()
        };
        Lines::new("t").write(&mut out, &rec);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""value":{"n": 123456789012345678901234567890, "s": "a\nb"}"#),
            "{text}"
        );
    }

    #[test]
    fn missing_keys_values_and_timestamps_are_null() {
        let v = line(&Rec {
            partition: 0,
            offset: 0,
            ..Rec::default()
        });
        assert_eq!(v["key"], Value::Null);
        assert_eq!(v["key_encoding"], Value::Null);
        assert_eq!(v["value"], Value::Null);
        assert_eq!(v["value_encoding"], Value::Null);
        assert_eq!(v["timestamp"], Value::Null);
        assert_eq!(v["timestamp_ms"], Value::Null);
        assert_eq!(v["headers"], json!([]));
    }

    #[test]
    fn text_and_binary_values_are_strings() {
        let v = line(&Rec {
            key: Some(b"\x00\x01"),
            value: Some(b"line one\nline \"two\""),
            ..Rec::default()
        });
        assert_eq!(v["value"], "line one\nline \"two\"");
        assert_eq!(v["value_encoding"], "text");
        assert_eq!(
            v["key"], "\u{0}\u{1}",
            "control characters are valid UTF-8 text"
        );
        let v = line(&Rec {
            value: Some(b"\xde\xad\xbe\xef\x00"),
            ..Rec::default()
        });
        assert_eq!(v["value"], "3q2+7wA=");
        assert_eq!(v["value_encoding"], "base64");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            base64(&mut out, plain.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap(), encoded, "{plain}");
        }
    }

    #[test]
    fn integers_are_written_in_full() {
        for n in [0, 7, -7, 10, 1_234_567, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            integer(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }
}
