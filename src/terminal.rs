//! How the output looks, decided once at start for the whole program: whether stdout and
//! stderr get colour (from --color, NO_COLOR and whether each is a terminal), and whether
//! stderr gets live drawing (progress bars, the live bar table). Everything that colours or
//! draws asks this one value, so `--color never` holds everywhere.

use std::io::IsTerminal as _;

/// `--color`: when to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Color when writing to a terminal and NO_COLOR is not set.
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// The one decision about colour and live drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Terminal {
    /// Colour in the data on stdout (tables).
    pub stdout_color: bool,
    /// Colour on stderr: logs and the live tables.
    pub stderr_color: bool,
    /// stderr is a terminal: progress bars and the live bar table are drawn there, redrawn in
    /// place; elsewhere the same news comes as lines.
    pub live: bool,
}

impl Terminal {
    /// The decision for this process: `choice`, the NO_COLOR variable, and what stdout and
    /// stderr are.
    pub fn detect(choice: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Terminal::decide(
            choice,
            no_color,
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        )
    }

    /// The rules: `always` and `never` are obeyed as typed; `auto` colours a stream that is a
    /// terminal, unless NO_COLOR is set (https://no-color.org).
    fn decide(
        choice: ColorChoice,
        no_color: bool,
        stdout_terminal: bool,
        stderr_terminal: bool,
    ) -> Self {
        let color = |terminal: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color,
        };
        Terminal {
            stdout_color: color(stdout_terminal),
            stderr_color: color(stderr_terminal),
            live: stderr_terminal,
        }
    }
}

impl Terminal {
    /// Whether a question can be asked and answered: stdin is a terminal, and so is stderr,
    /// where the question goes.
    pub fn can_ask(&self) -> bool {
        self.live && std::io::stdin().is_terminal()
    }
}

/// Asks `question` (which ends in `[y/N] `) on stderr, progress bars held meanwhile, and
/// reads the answer from stdin: whether it was yes. Shared by the commands that destroy
/// (`topic delete`, `group delete`).
pub fn ask_yes(question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead as _, Write as _};
    crate::logging::progress().suspend(|| -> anyhow::Result<bool> {
        let mut err = std::io::stderr().lock();
        write!(err, "{question}")?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_and_always_are_obeyed_whatever_the_streams_are() {
        for (no_color, out, err) in [(false, true, true), (true, false, false)] {
            let never = Terminal::decide(ColorChoice::Never, no_color, out, err);
            assert!(!never.stdout_color && !never.stderr_color);
            let always = Terminal::decide(ColorChoice::Always, no_color, out, err);
            assert!(always.stdout_color && always.stderr_color);
        }
    }

    #[test]
    fn auto_colours_each_terminal_unless_no_color_is_set() {
        let t = Terminal::decide(ColorChoice::Auto, false, false, true);
        assert_eq!(
            t,
            Terminal {
                stdout_color: false,
                stderr_color: true,
                live: true
            }
        );
        let t = Terminal::decide(ColorChoice::Auto, true, true, true);
        assert!(!t.stdout_color && !t.stderr_color && t.live);
    }
}
