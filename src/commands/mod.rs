//! One module per subcommand; each owns its clap `Args` and one `run`.

pub mod aggregate;
pub mod cluster;
pub mod common;
pub mod completions;
pub mod consume;
pub mod dashboard;
pub mod demo;
pub mod demo_partitions;
pub mod group;
pub mod history;
pub mod man;
pub mod produce;
pub mod profile;
pub mod store;
pub mod topic;
