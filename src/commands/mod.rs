//! One module per subcommand; each owns its clap `Args` and one `run`.

pub mod produce;
pub mod topic;
