//! Entry point: parse, install logging, dispatch, and map the outcome to an exit code.

mod admin;
mod aggregate;
mod cli;
mod commands;
mod dead_letter;
mod exit;
mod flags;
mod global;
mod kafka;
mod logging;
mod market;
mod metrics;
mod numbers;
mod partitioner;
mod postgres;
mod record;
mod signals;
mod stdout;
mod table;
mod terminal;
mod timing;
mod topic_name;

use std::process::ExitCode;

/// mimalloc for Rust and, through its `override` feature, for librdkafka's C code too:
/// librdkafka allocates each fetched record on its fetch thread and the job frees it on the
/// main thread, which glibc's allocator serves with a lock per free (see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let (global, command) = cli::Cli::parse_args();
    logging::init(global.verbosity, global.terminal.stderr_color);
    let result = match command {
        cli::Command::Produce(args) => commands::produce::run(args, &global),
        cli::Command::Aggregate(args) => commands::aggregate::run(args, &global),
        cli::Command::Topic(command) => commands::topic::run(command, &global),
        cli::Command::Cluster(command) => commands::cluster::run(command, &global),
        cli::Command::Group(command) => commands::group::run(command, &global),
        cli::Command::Consume(args) => commands::consume::run(args, &global),
        cli::Command::DemoPartitions(args) => commands::demo_partitions::run(args, &global),
        cli::Command::Demo(args) => commands::demo::run(args, &global),
        cli::Command::Dashboard(args) => commands::dashboard::run(args, &global),
        cli::Command::Store(args) => commands::store::run(args, &global),
        cli::Command::History(args) => commands::history::run(args, &global),
        cli::Command::Profile(command) => commands::profile::run(command, &global),
        cli::Command::Completions(args) => {
            commands::completions::run(&args, cli::Cli::definition())
        }
        cli::Command::Man(args) => commands::man::run(&args, cli::Cli::definition()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout has gone (`| head`): nothing more to say, and no failure.
        Err(err) if stdout::reader_gone(&err) => ExitCode::SUCCESS,
        // The user's own choice (a stop before anything was done, a "no"): said plainly.
        Err(err) if exit::chosen(&err) => {
            tracing::warn!(target: "stockstream", "{err:#}");
            exit::code_for(&err)
        }
        Err(err) => {
            tracing::error!(target: "stockstream", critical = true, "{err:#}");
            exit::code_for(&err)
        }
    }
}
