//! Exit codes a script can rely on, and the typed failures that map to them. Everything
//! else is an `anyhow` error with context, printed once by `main` and mapped to 1.

use std::process::ExitCode;

/// Any failure without a more specific code (including undelivered records).
pub const FAILURE: u8 = 1;
/// No broker answered within the timeout, or the connection was refused (TLS, authentication).
pub const UNREACHABLE: u8 = 3;
/// The topic does not exist.
pub const TOPIC_MISSING: u8 = 4;
/// The topic already exists.
pub const TOPIC_EXISTS: u8 = 5;
/// A second Ctrl+C cut the graceful stop short, a stop came before Kafka answered, the
/// brokers did not answer within a second of a stop, or a stop cut a walk-through
/// (`demo-partitions`) short.
pub const INTERRUPTED: u8 = 130;

/// Failures a script may want to tell apart, each with its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("could not reach Kafka at {brokers} within {timeout}: {cause}\n  hint: {hint}")]
    Unreachable {
        brokers: String,
        timeout: String,
        cause: String,
        hint: String,
    },
    /// The connection was refused for good: authentication or TLS.
    #[error("could not connect to Kafka at {brokers}: {cause}\n  hint: {hint}")]
    Rejected {
        brokers: String,
        cause: String,
        hint: String,
    },
    #[error("topic `{topic}` does not exist on {brokers}\n  hint: {hint}")]
    TopicMissing {
        topic: String,
        brokers: String,
        hint: String,
    },
    #[error("topic `{topic}` already exists on {brokers}\n  hint: pass --if-not-exists to accept an existing topic")]
    TopicExists { topic: String, brokers: String },
    /// The user answered no to `topic delete`'s question.
    #[error("topic `{topic}` not deleted: the answer was not yes")]
    Declined { topic: String },
    /// Ctrl+C or SIGTERM while waiting for the first answer: nothing was done.
    #[error("stopped before Kafka at {brokers} answered; nothing was done")]
    Stopped { brokers: String },
    /// Ctrl+C or SIGTERM cut work short: a task that has an end (`demo-partitions`, which
    /// cleans up after itself), or a last step the brokers did not answer in time.
    #[error("stopped by Ctrl+C or SIGTERM")]
    Interrupted,
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Unreachable { .. } | Failure::Rejected { .. } => UNREACHABLE,
            Failure::TopicMissing { .. } => TOPIC_MISSING,
            Failure::TopicExists { .. } => TOPIC_EXISTS,
            Failure::Stopped { .. } | Failure::Interrupted => INTERRUPTED,
            Failure::Declined { .. } => FAILURE,
        }
    }
}

/// Whether the error is the user's own choice (a stop by Ctrl+C or SIGTERM, a "no" to a
/// question) rather than a fault: it is said plainly, with its exit code.
pub fn chosen(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(
            e.downcast_ref::<Failure>(),
            Some(Failure::Stopped { .. } | Failure::Interrupted | Failure::Declined { .. })
        )
    })
}

/// The exit code for an error: the first typed failure in its chain decides.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    let code = err
        .chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(FAILURE, Failure::code);
    ExitCode::from(code)
}
