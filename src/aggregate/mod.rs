//! The aggregation engine: event-time windows, per-partition watermarks and bars. Pure: no
//! Kafka, no clocks, no I/O; `commands::aggregate` wires it to Kafka.

pub mod bar;
pub mod engine;
pub mod window;

pub use bar::Bar;
pub use engine::{ByPartition, Checkpoint, Engine, Outcome, Rules};
