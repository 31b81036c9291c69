//! The global flags as the program uses them: built once in `main` from what was typed, and
//! handed to every command. Where Kafka is, how the output looks, how much to log.

use crate::kafka::Connection;
use crate::terminal::Terminal;

/// The settings every command shares.
#[derive(Debug, Clone)]
pub struct Global {
    /// The cluster and the client settings chosen (-b, -X, --profile, --config-file).
    pub connection: Connection,
    /// Colour and live drawing (--color, NO_COLOR, the streams).
    pub terminal: Terminal,
    /// -2 (errors only) to 2 (trace), from -v and -q.
    pub verbosity: i8,
}
