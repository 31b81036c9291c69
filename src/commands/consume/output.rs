//! Where the records go: stdout, through one buffer that is written out when it fills and
//! whenever reading would wait, so a drain makes few large writes and a follow shows each
//! record as it comes. A closed stdout (`| head`) surfaces as a BrokenPipe error, which
//! `main` turns into a quiet exit 0.

use std::io::{self, Write as _};

use super::json::Lines;
use super::pretty::Pretty;
use super::record::Rec;

/// `-o`: how each record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per record for people: ticks, bars and dead letters shown as what they are.
    Pretty,
    /// One JSON object per record and line, with stable fields (see the README).
    Json,
    /// The value's bytes alone, then a newline.
    Raw,
}

/// Written out once this much is waiting.
const CHUNK: usize = 128 * 1024;

pub struct Output {
    format: Format,
    buf: Vec<u8>,
    json: Lines,
    pretty: Pretty,
}

impl Output {
    pub fn new(format: Format, topic: &str, color: bool) -> Self {
        Output {
            format,
            buf: Vec::with_capacity(CHUNK + 4096),
            json: Lines::new(topic),
            pretty: Pretty::new(color),
        }
    }

    /// Whether records must be read with their headers: not for raw values.
    pub fn wants_headers(&self) -> bool {
        self.format != Format::Raw
    }

    pub fn write(&mut self, rec: &Rec<'_>) -> io::Result<()> {
        match self.format {
            Format::Pretty => self.pretty.write(&mut self.buf, rec),
            Format::Json => self.json.write(&mut self.buf, rec),
            Format::Raw => {
                self.buf.extend_from_slice(rec.value.unwrap_or_default());
                self.buf.push(b'\n');
            }
        }
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out what is waiting.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        out.write_all(&self.buf)?;
        out.flush()?;
        self.buf.clear();
        Ok(())
    }
}
