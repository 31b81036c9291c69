//! `stockstream man`: the manual page in roff, on stdout (`stockstream man | man -l -`), or
//! with --dir one page per command and subcommand, as packagers install them.

use std::path::PathBuf;

use anyhow::Context as _;

const EXAMPLES: &str = "\
Examples:
  stockstream man | man -l -
  stockstream man --dir /usr/local/share/man/man1   # stockstream.1, stockstream-produce.1, …";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Write stockstream.1 and one page per subcommand (stockstream-topic-create.1, …) into
    /// this directory instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// `cli`: the whole command line's definition, as `--help` shows it.
pub fn run(args: &Args, cli: clap::Command) -> anyhow::Result<()> {
    match &args.dir {
        Some(dir) => clap_mangen::generate_to(cli, dir)
            .with_context(|| format!("writing manual pages into {}", dir.display())),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cli).render(&mut page)?;
            Ok(crate::stdout::write(page)?)
        }
    }
}
