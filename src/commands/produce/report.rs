//! The end-of-run reports that name records one by one: the failed deliveries by their
//! number in the run, and the bad input lines by their line number. Long lists are cut
//! short on the terminal and written in full to a file.

use std::path::{Path, PathBuf};

use super::deliveries::{ranges, runs, Deliveries, LOG};
use super::SEQUENCE_HEADER;
use crate::numbers::{count, thousands};

/// At most this many runs of numbers on a log line; the full lists go to a file.
const RUNS_ON_A_LINE: usize = 100;

/// Names every failed record by its number in this run, as ranges (`--sequence` puts the
/// same numbers in the records' headers).
pub fn failures(deliveries: &Deliveries, topic: &str, sequence: bool, unaccounted: u64) {
    let failures = deliveries.failures();
    let numbering = if sequence {
        format!("numbers as in the `{SEQUENCE_HEADER}` header")
    } else {
        "numbers are positions in this run".to_string()
    };
    let not_delivered = runs(&failures.not_delivered);
    let possibly = runs(&failures.possibly_delivered);
    let full_list = (not_delivered.len().max(possibly.len()) > RUNS_ON_A_LINE)
        .then(|| {
            write_full_list(
                "failed",
                &format!(
                    "records of `stockstream produce` to `{topic}` that failed, by number in the run"
                ),
                &[
                    ("not_delivered", &not_delivered),
                    ("possibly_delivered", &possibly),
                ],
            )
        })
        .flatten();
    if !not_delivered.is_empty() {
        tracing::error!(
            target: LOG,
            "❌ Not delivered ({}; {numbering}): {}",
            thousands(failures.not_delivered.len() as u64),
            shown(&not_delivered, full_list.as_deref())
        );
    }
    if !possibly.is_empty() {
        tracing::error!(
            target: LOG,
            "❓ Possibly delivered, unconfirmed ({}; sent, but the broker's answer was lost, \
             so they may be in the topic; {numbering}): {}",
            thousands(failures.possibly_delivered.len() as u64),
            shown(&possibly, full_list.as_deref())
        );
    }
    if unaccounted > 0 {
        tracing::error!(
            target: LOG,
            "❓ {} no delivery report at all: they may or may not be in the topic",
            count(unaccounted, "record got", "records got")
        );
    }
}

/// Names every bad line of the input by its number, as ranges.
pub fn bad_lines(name: &str, runs: &[(u64, u64)], count: u64) {
    let full_list = (runs.len() > RUNS_ON_A_LINE)
        .then(|| {
            write_full_list(
                "bad-lines",
                &format!("lines of {name} that `stockstream produce` did not send"),
                &[("bad_lines", runs)],
            )
        })
        .flatten();
    tracing::error!(
        target: LOG,
        "❌ Bad lines, not sent ({}; line numbers of {name}): {}",
        thousands(count),
        shown(runs, full_list.as_deref())
    );
}

/// The first runs as ranges, and where the rest are when there are more.
fn shown(runs: &[(u64, u64)], full_list: Option<&Path>) -> String {
    let head = ranges(&runs[..runs.len().min(RUNS_ON_A_LINE)]);
    match (full_list, runs.len() > RUNS_ON_A_LINE) {
        (Some(path), true) => format!("{head},… (all of them in {})", path.display()),
        (None, true) => format!("{head},… (the full list could not be written to a file)"),
        (_, false) => head,
    }
}

/// Writes lists of numbers to a file in the temporary folder; returns its path.
fn write_full_list(kind: &str, heading: &str, lists: &[(&str, &[(u64, u64)])]) -> Option<PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "stockstream-produce-{}-{kind}.txt",
        std::process::id()
    ));
    let mut text = format!("# {heading}\n");
    for (name, runs) in lists {
        text.push_str(&format!("{name}: {}\n", ranges(runs)));
    }
    match std::fs::write(&path, text) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(target: LOG, "could not write the list to {}: {e}", path.display());
            None
        }
    }
}
