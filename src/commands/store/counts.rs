//! What a `store` run did: the writer keeps these totals, the progress lines, the summary
//! and the metrics read them.

use std::collections::BTreeMap;

use crate::timing::CommitTimes;

/// What the job did, for its progress lines and summary.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub read: u64,
    pub bars_written: u64,
    pub finals_written: u64,
    pub transactions: u64,
    pub dead_letters: u64,
    /// The dead letters by their reason.
    pub dead_letters_by_reason: BTreeMap<&'static str, u64>,
    /// Writes refused because another instance had moved the stored offsets.
    pub takeovers: u64,
    /// How long the transactions took.
    pub write_times: CommitTimes,
}
