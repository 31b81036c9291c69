//! `--input`: recorded ticks, one JSON line each (the wire format), read as a stream so a
//! file of any size needs one line of memory. Each line passes the record rules before it
//! is sent; a bad one is reported by its line number and reason, and not sent.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;

use anyhow::Context as _;

use super::deliveries::LOG;
use crate::numbers::{count, thousands};
use crate::record::{decode, event_millis, Limits, RecordError, ValidRecord};

/// Where the lines come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl From<&OsStr> for Input {
    fn from(s: &OsStr) -> Self {
        if s == "-" {
            Input::Stdin
        } else {
            Input::File(PathBuf::from(s))
        }
    }
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Stdin => f.write_str("standard input"),
            Input::File(path) => write!(f, "`{}`", path.display()),
        }
    }
}

/// How many bad lines are logged with their reason; the rest are named by number at the end.
const LOG_BAD_IN_FULL: u64 = 20;

/// The lines of one input, checked one by one.
pub struct Lines {
    reader: Box<dyn BufRead + Send>,
    name: String,
    buf: Vec<u8>,
    /// The number of the last line read (blank ones included, as an editor counts them).
    line: u64,
    /// Lines that held something, good or bad.
    read: u64,
    bad: BadLines,
}

/// The lines that were not sent, as runs of line numbers.
#[derive(Debug, Default, PartialEq)]
pub struct BadLines {
    pub count: u64,
    pub runs: Vec<(u64, u64)>,
}

impl BadLines {
    fn add(&mut self, line: u64) {
        self.count += 1;
        match self.runs.last_mut() {
            Some((_, end)) if *end + 1 == line => *end = line,
            _ => self.runs.push((line, line)),
        }
    }
}

impl Lines {
    pub fn open(input: &Input) -> anyhow::Result<Self> {
        let reader: Box<dyn BufRead + Send> = match input {
            Input::Stdin => Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
            Input::File(path) => Box::new(BufReader::with_capacity(
                1 << 16,
                File::open(path).with_context(|| format!("opening --input {input}"))?,
            )),
        };
        Ok(Lines::new(reader, input.to_string()))
    }

    fn new(reader: Box<dyn BufRead + Send>, name: String) -> Self {
        Lines {
            reader,
            name,
            buf: Vec::with_capacity(256),
            line: 0,
            read: 0,
            bad: BadLines::default(),
        }
    }

    /// The next good record, reporting and skipping bad lines and skipping blank ones;
    /// `None` at the end of the input. `now_ms` is the wall clock, for the `future` rule.
    pub fn next_record(&mut self, now_ms: i64) -> anyhow::Result<Option<ValidRecord>> {
        loop {
            self.buf.clear();
            let Some(length) = read_line(&mut self.reader, &mut self.buf, MAX_LINE)
                .with_context(|| format!("reading line {} of {}", self.line + 1, self.name))?
            else {
                return Ok(None);
            };
            self.line += 1;
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.read += 1;
            match check(&self.buf, length, now_ms) {
                Ok(record) => return Ok(Some(record)),
                Err(e) => self.reject(&e),
            }
        }
    }

    fn reject(&mut self, e: &RecordError) {
        self.bad.add(self.line);
        if self.bad.count <= LOG_BAD_IN_FULL {
            tracing::error!(target: LOG, "❌ line {} of {}: {}: {e}; not sent", self.line, self.name, e.reason());
            if self.bad.count == LOG_BAD_IN_FULL {
                tracing::error!(target: LOG, "❌ more bad lines; the summary names them all");
            }
        }
    }

    /// The last line read, without its line ending.
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    pub fn bad(&self) -> &BadLines {
        &self.bad
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// "1,000 lines read, 3 bad": the summary's first words.
    pub fn describe_counts(&self) -> String {
        format!(
            "{} read, {} bad",
            count(self.read, "line", "lines"),
            thousands(self.bad.count)
        )
    }
}

/// A line longer than a tick can be (`aggregate`'s default --max-bytes) is `too_large`.
const MAX_LINE: usize = Limits::DEFAULT_MAX_BYTES;

/// The record rules, as `aggregate` applies them to what it reads: size, fields, and an
/// event time at most a minute ahead of the record's Kafka timestamp (its send time, now).
fn check(line: &[u8], length: usize, now_ms: i64) -> Result<ValidRecord, RecordError> {
    if length > MAX_LINE {
        return Err(RecordError::TooLarge {
            size: length,
            limit: MAX_LINE,
        });
    }
    let record = decode(line)?;
    let ahead = event_millis(record.timestamp).saturating_sub(now_ms);
    if ahead > Limits::DEFAULT_MAX_FUTURE_MS {
        return Err(RecordError::Future {
            ahead_ms: ahead,
            limit_ms: Limits::DEFAULT_MAX_FUTURE_MS,
        });
    }
    Ok(record)
}

/// Reads one line into `buf` without its line ending, keeping at most `limit + 1` of its
/// bytes (a longer line is bad anyway, and must not fill the memory); returns the line's
/// full length, or `None` at the end of the input.
fn read_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<usize>> {
    let mut length = 0;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let part = &available[..newline.unwrap_or(available.len())];
        let room = (limit + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&part[..part.len().min(room)]);
        length += part.len();
        let used = newline.map_or(part.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            break;
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
        length -= 1;
    }
    Ok(any.then_some(length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Symbol;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn lines(text: &[u8]) -> Lines {
        Lines::new(Box::new(io::Cursor::new(text.to_vec())), "test".into())
    }

    fn all(lines: &mut Lines) -> Vec<Symbol> {
        let mut out = Vec::new();
        while let Some(r) = lines.next_record(NOW).unwrap() {
            out.push(r.symbol);
        }
        out
    }

    #[test]
    fn good_lines_come_out_in_order_bad_ones_are_counted_by_number() {
        let text = b"{\"symbol\":\"AAPL\",\"price\":1.5,\"volume\":1,\"timestamp\":1762080609.1}\n\
            not json\n\
            \n\
            {\"symbol\":\"MSFT\",\"price\":-1,\"volume\":1,\"timestamp\":1762080609.2}\n\
            {\"symbol\":\"IBM\",\"price\":1,\"volume\":1,\"timestamp\":1762080609.3}\r\n\
            {\"symbol\":\"TSLA\",\"price\":2,\"volume\":3,\"timestamp\":1762080609.4}\r\n\
            {\"symbol\":\"META\",\"price\":2,\"volume\":3,\"timestamp\":1762080609.5}";
        let mut l = lines(text);
        assert_eq!(all(&mut l), [Symbol::AAPL, Symbol::TSLA, Symbol::META]);
        assert_eq!(
            l.bad(),
            &BadLines {
                count: 3,
                runs: vec![(2, 2), (4, 5)]
            }
        );
        // The blank line is skipped, not counted as read.
        assert_eq!(l.describe_counts(), "6 lines read, 3 bad");
    }

    #[test]
    fn a_tick_dated_more_than_a_minute_ahead_is_bad() {
        let at = |ms: i64| {
            format!(
                "{{\"symbol\":\"AAPL\",\"price\":1,\"volume\":1,\"timestamp\":{}}}\n",
                ms as f64 / 1000.0
            )
        };
        let text = at(NOW + 60_000) + &at(NOW + 61_000);
        let mut l = lines(text.as_bytes());
        assert_eq!(all(&mut l), [Symbol::AAPL]);
        assert_eq!(l.bad().runs, [(2, 2)]);
    }

    #[test]
    fn a_line_longer_than_a_tick_can_be_is_too_large_and_not_kept_whole() {
        let mut text = vec![b'x'; MAX_LINE * 3];
        text.extend_from_slice(b"\nnext\n");
        let mut reader = io::Cursor::new(text);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut buf, MAX_LINE).unwrap(),
            Some(MAX_LINE * 3)
        );
        assert_eq!(buf.len(), MAX_LINE + 1);
        assert_eq!(
            check(&buf, MAX_LINE * 3, NOW).unwrap_err().reason(),
            "too_large"
        );
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf, MAX_LINE).unwrap(), Some(4));
        assert_eq!(buf, b"next");
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf, MAX_LINE).unwrap(), None);
    }

    #[test]
    fn lines_are_read_across_small_buffers() {
        let text = b"{\"symbol\":\"NFLX\",\"price\":1,\"volume\":1,\"timestamp\":1}\n".repeat(3);
        let reader = BufReader::with_capacity(7, io::Cursor::new(text));
        let mut l = Lines::new(Box::new(reader), "test".into());
        assert_eq!(all(&mut l), [Symbol::NFLX; 3]);
    }

    #[test]
    fn dash_is_standard_input() {
        assert_eq!(Input::from(OsStr::new("-")), Input::Stdin);
        assert_eq!(
            Input::from(OsStr::new("ticks.jsonl")),
            Input::File("ticks.jsonl".into())
        );
    }
}
