//! Data for standard output (tables, JSON, scripts): written so that a reader that has gone
//! (`stockstream topic list | head -1`) ends the program quietly instead of panicking, as
//! `println!` would. `main` turns the closed pipe into exit 0, as ripgrep does.

use std::io::{self, Write as _};

/// Writes `data` to stdout as it is (add the final newline yourself) and flushes it.
pub fn write(data: impl AsRef<[u8]>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(data.as_ref())?;
    out.flush()
}

/// Whether `err` comes from writing to a stdout whose reader has gone.
pub fn reader_gone(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Writes one JSON document to stdout, pretty-printed, with a final newline.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(write(text)?)
}
