//! `stockstream completions SHELL`: the shell's completion script for every subcommand and
//! flag, on stdout, to be saved where the shell looks for completions.

use clap_complete::Shell;

const EXAMPLES: &str = "\
Examples:
  stockstream completions bash > ~/.local/share/bash-completion/completions/stockstream
  stockstream completions zsh > ~/.zfunc/_stockstream     # with fpath+=~/.zfunc in ~/.zshrc
  stockstream completions fish > ~/.config/fish/completions/stockstream.fish";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// `cli`: the whole command line's definition, as `--help` shows it.
pub fn run(args: &Args, mut cli: clap::Command) -> anyhow::Result<()> {
    // Rendered into memory first: the generator panics on a failed write, and a closed
    // stdout must end the program quietly.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "stockstream", &mut script);
    Ok(crate::stdout::write(script)?)
}
