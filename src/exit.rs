//! Exit codes a script can rely on, and the typed failures that map to them. Everything
//! else is an `anyhow` error with context, printed once by `main` and mapped to 1.

use std::process::ExitCode;

/// Any failure without a more specific code (including undelivered records).
pub const FAILURE: u8 = 1;
/// A usage error: a flag's value is refused, or librdkafka refuses a client setting (from
/// -X or a profile) or their combination.
pub const USAGE: u8 = 2;
/// No broker answered within the timeout, or the connection was refused (TLS, authentication).
pub const UNREACHABLE: u8 = 3;
/// The topic does not exist.
pub const TOPIC_MISSING: u8 = 4;
/// The topic already exists.
pub const TOPIC_EXISTS: u8 = 5;
/// The consumer group does not exist (no members and no committed offsets).
pub const GROUP_MISSING: u8 = 6;
/// PostgreSQL did not answer (within the timeout, or for `store` within its patience), or
/// refused the connection (authentication, TLS).
pub const POSTGRES_UNREACHABLE: u8 = 7;
/// A second Ctrl+C cut the graceful stop short, a stop came before Kafka answered, the
/// brokers did not answer within a second of a stop, or a stop cut a walk-through
/// (`demo-partitions`) short.
pub const INTERRUPTED: u8 = 130;

/// Every exit code and what it means, as `stockstream --help` lists them.
pub const MEANINGS: [(u8, &str); 9] = [
    (
        0,
        "success, also after a graceful stop (Ctrl+C, SIGTERM) and when the reader of stdout \
         has gone (`| head`)",
    ),
    (
        FAILURE,
        "failure: for produce, records not delivered or bad --input lines; for topic delete \
         and group delete, no yes to its question; for group reset and group delete, a group \
         that has members",
    ),
    (
        USAGE,
        "usage error: a bad flag or value, or a client setting librdkafka refuses",
    ),
    (
        UNREACHABLE,
        "Kafka unreachable within --timeout, or the connection refused (authentication, TLS)",
    ),
    (TOPIC_MISSING, "the topic does not exist"),
    (
        TOPIC_EXISTS,
        "the topic already exists (topic create without --if-not-exists)",
    ),
    (
        GROUP_MISSING,
        "the consumer group does not exist: no members and no committed offsets",
    ),
    (
        POSTGRES_UNREACHABLE,
        "PostgreSQL unreachable (within --timeout; for store, within --postgres-patience), or \
         the connection refused (authentication, TLS)",
    ),
    (
        INTERRUPTED,
        "a second Ctrl+C cut the graceful stop short, or a stop came before Kafka answered",
    ),
];

/// The exit codes as a help section, each meaning wrapped under itself to fit 80 columns.
pub fn help() -> String {
    const INDENT: &str = "       ";
    const WIDTH: usize = 80 - INDENT.len();
    let mut text = String::from("Exit codes:");
    for (code, meaning) in MEANINGS {
        let mut lines = vec![String::new()];
        for word in meaning.split(' ') {
            let line = lines.last_mut().expect("one line at least");
            if line.is_empty() {
                line.push_str(word);
            } else if line.len() + 1 + word.len() > WIDTH {
                lines.push(word.to_string());
            } else {
                line.push(' ');
                line.push_str(word);
            }
        }
        text.push_str(&format!(
            "\n  {code:>3}  {}",
            lines.join(&format!("\n{INDENT}"))
        ));
    }
    text
}

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
    /// librdkafka refused a client setting, or the combination of them, when the client was
    /// built: a usage error.
    #[error("{what}: {cause}\n  hint: {hint}")]
    Setting {
        what: String,
        cause: String,
        hint: String,
    },
    /// PostgreSQL did not answer, or refused the connection.
    #[error("{what}: {cause}\n  hint: {hint}")]
    PostgresUnreachable {
        what: String,
        cause: String,
        hint: String,
    },
    #[error("consumer group `{group}` does not exist on {brokers}\n  hint: `stockstream group list` shows the groups there are")]
    GroupMissing { group: String, brokers: String },
    /// The user answered no to `group delete`'s question.
    #[error("consumer group `{group}` not deleted: the answer was not yes")]
    GroupDeclined { group: String },
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
            Failure::GroupMissing { .. } => GROUP_MISSING,
            Failure::PostgresUnreachable { .. } => POSTGRES_UNREACHABLE,
            Failure::Stopped { .. } | Failure::Interrupted => INTERRUPTED,
            Failure::Declined { .. } | Failure::GroupDeclined { .. } => FAILURE,
            Failure::Setting { .. } => USAGE,
        }
    }
}

/// Whether the error is the user's own choice (a stop by Ctrl+C or SIGTERM, a "no" to a
/// question) rather than a fault: it is said plainly, with its exit code.
pub fn chosen(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(
            e.downcast_ref::<Failure>(),
            Some(
                Failure::Stopped { .. }
                    | Failure::Interrupted
                    | Failure::Declined { .. }
                    | Failure::GroupDeclined { .. }
            )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_explained_once() {
        let codes: Vec<u8> = MEANINGS.iter().map(|(code, _)| *code).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted, "in order, each once");
        for code in [
            0,
            FAILURE,
            USAGE,
            UNREACHABLE,
            TOPIC_MISSING,
            TOPIC_EXISTS,
            GROUP_MISSING,
            POSTGRES_UNREACHABLE,
            INTERRUPTED,
        ] {
            assert!(codes.contains(&code), "{code}");
        }
        assert!(help().contains("\n  130  a second Ctrl+C"), "{}", help());
    }
}
