//! Entry point: parse, install logging, dispatch, and map the outcome to an exit code.

mod admin;
mod aggregate;
mod cli;
mod commands;
mod exit;
mod kafka;
mod logging;
mod market;
mod partitioner;
mod record;
mod signals;
mod table;
mod topic_name;

use std::process::ExitCode;

/// mimalloc for Rust and, through its `override` feature, for librdkafka's C code too:
/// librdkafka allocates each fetched record on its fetch thread and the job frees it on the
/// main thread, which glibc's allocator serves with a lock per free (see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (libmimalloc-sys is pinned, so the
/// enum cannot move under us).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system after 5 ms instead of mimalloc's 10, so that a fast
/// drain holds less memory it no longer uses (docs/BENCHMARKS.md).
fn tune_allocator() {
    // SAFETY: setting a documented mimalloc option; any value is valid.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 5) };
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = cli::Cli::parse_args();
    logging::init(cli.global.verbosity(), cli.global.color_stderr());
    let result = match cli.command {
        cli::Command::Produce(args) => commands::produce::run(args, &cli.global),
        cli::Command::Aggregate(args) => commands::aggregate::run(args, &cli.global),
        cli::Command::Topic(command) => commands::topic::run(command, &cli.global),
        cli::Command::DemoPartitions(args) => commands::demo_partitions::run(args, &cli.global),
        cli::Command::Demo(args) => commands::demo::run(args, &cli.global),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(target: "stockstream", critical = true, "{err:#}");
            exit::code_for(&err)
        }
    }
}
