//! Value parsers and checks shared by the subcommands' flags: what a duration, a
//! `KEY=VALUE` or a set of flags that must agree may be, refused as usage errors (exit 2)
//! while clap parses, before anything is contacted.

use std::time::Duration;

use clap::Args;

/// A duration above zero, e.g. 250ms or 10s: the value of every flag that sets a pace, a
/// period or a window, where zero would mean a busy loop or no window at all.
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d >= Duration::from_millis(1) => Ok(d),
        Ok(_) => Err("must be at least 1ms".to_string()),
        Err(e) => Err(format!("{e} (a duration such as 250ms or 10s)")),
    }
}

/// A subcommand's flags that must also agree with each other: `check` runs once clap has
/// parsed them, so a disagreement is a usage error (exit 2) like any other, before anything
/// is contacted.
pub trait CrossCheck {
    fn check(&self) -> Result<(), clap::Error>;
}

/// `F`'s flags, checked together (see `CrossCheck`).
#[derive(Debug)]
pub struct Checked<F>(pub F);

impl<F: clap::FromArgMatches + CrossCheck> clap::FromArgMatches for Checked<F> {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let flags = F::from_arg_matches(matches)?;
        flags.check()?;
        Ok(Checked(flags))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)?;
        self.0.check()
    }
}

impl<F: Args + CrossCheck> Args for Checked<F> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        F::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        F::augment_args_for_update(cmd)
    }
}

/// A usage error about `flag`'s value, worded as clap words its own.
pub fn invalid_value(flag: &str, why: impl std::fmt::Display) -> clap::Error {
    clap::Error::raw(
        clap::error::ErrorKind::ValueValidation,
        format!("invalid value for '{flag}': {why}"),
    )
}

/// `KEY=VALUE` for settings that are not librdkafka's (a topic's configs).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_must_be_above_zero() {
        assert_eq!(positive_duration("250ms"), Ok(Duration::from_millis(250)));
        for zero in ["0", "0s", "0ms", "500us"] {
            assert_eq!(
                positive_duration(zero),
                Err("must be at least 1ms".into()),
                "{zero}"
            );
        }
        assert!(positive_duration("soon").unwrap_err().contains("250ms"));
    }
}
