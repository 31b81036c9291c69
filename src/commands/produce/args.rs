//! `produce`'s flags as typed, checked together once clap has parsed them (a usage error
//! exits with 2), and the validated settings a run uses.

use std::str::FromStr;
use std::time::Duration;

use anyhow::bail;

use super::backfill::{Backfill, EventRate, Start};
use super::input::Input;
use super::pace::Pace;
use super::source::Origin;
use crate::flags::{invalid_value, positive_duration, Checked, CrossCheck};
use crate::record::{now_millis, Symbol};
use crate::topic_name::TopicName;

const EXAMPLES: &str = "\
Examples:
  stockstream produce --rate 100 --count 1000
  # A backfill: 5,000,000 ticks dated from 09:30 at 500 a second of event time (10,000 s),
  # sent as fast as the broker takes them
  stockstream produce --start 2026-11-01T09:30:00Z --event-rate 500/s --count 5000000 --rate max
  # Recorded ticks, one JSON line each; bad lines are reported by number and not sent
  stockstream produce --input ticks.jsonl --rate max
  zcat ticks.jsonl.gz | stockstream produce --input - --rate max";

/// `stockstream produce`'s flags, checked together.
pub type Args = Checked<Flags>;

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Flags {
    /// Topic to write to. It must exist: stockstream never relies on broker auto-creation.
    #[arg(long, default_value = "stock_prices")]
    topic: TopicName,

    /// Time between two records, e.g. 1s or 250ms.
    #[arg(long, value_parser = positive_duration, conflicts_with = "rate", default_value = "1s")]
    interval: Duration,

    /// Records per second, or `max` for as many as the broker takes (instead of --interval).
    /// Fractions are kept: 1.5 is three records every two seconds, 0.5 one every 2s.
    #[arg(long, value_name = "N|max")]
    rate: Option<Rate>,

    /// Stop after this many records.
    #[arg(long)]
    count: Option<u64>,

    /// Stop after this long, e.g. 30s or 5m.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,

    /// Only these symbols, comma-separated (default: all seven).
    #[arg(long, value_delimiter = ',', ignore_case = true)]
    symbols: Vec<Symbol>,

    /// Seed for the price and volume generator, for a reproducible sequence.
    #[arg(long)]
    seed: Option<u64>,

    /// A backfill: date the ticks from this time on (RFC 3339, e.g. 2026-11-01T09:30:00Z)
    /// instead of the wall clock, --event-rate ticks per second of event time, whatever the
    /// sending pace. No tick is dated after the wall clock: a start or a --count that would
    /// reach the future is refused, and without --count the run stops on reaching the
    /// present. Needs --event-rate.
    #[arg(long, value_name = "TIME", requires = "event_rate")]
    start: Option<Start>,

    /// With --start: ticks per second of event time, all symbols together, e.g. 500/s (tick k
    /// is dated start + k/N). --rate or --interval still set how fast they are sent.
    #[arg(long, value_name = "N/s", requires = "start")]
    event_rate: Option<EventRate>,

    /// Send recorded ticks instead of generated ones: the JSON lines of FILE (`-`: standard
    /// input), one tick each in the wire format, sent as written and keyed by its symbol. Each line is
    /// checked as aggregate checks records; a bad one is reported by its line number and not
    /// sent, and the exit status is then 1. Blank lines are skipped.
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["start", "event_rate", "symbols", "seed"])]
    input: Option<Input>,

    /// How long to wait for the broker to answer at start.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    timeout: Duration,

    /// How long to retry a record before it counts as failed (librdkafka's message.timeout.ms).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2m")]
    delivery_timeout: Duration,

    /// On stop, how long to wait for records still in flight before giving them up as failed.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    flush_timeout: Duration,

    /// Put each record's number in this run (1, 2, 3, …) in a `stockstream.seq` header, so a
    /// consumer can check that none is missing or doubled. Failure reports use the same
    /// numbers.
    #[arg(long)]
    sequence: bool,

    #[command(flatten)]
    metrics: crate::metrics::Flag,
}

impl CrossCheck for Flags {
    /// The checks that span several flags and the wall clock.
    fn check(&self) -> Result<(), clap::Error> {
        if let Some(b) = self.backfill() {
            b.check(self.count, now_millis())
                .map_err(|why| invalid_value("--start <TIME>", why))?;
        }
        Ok(())
    }
}

impl Flags {
    fn backfill(&self) -> Option<Backfill> {
        Some(Backfill::new(self.start?, self.event_rate?))
    }
}

/// Seconds in a day: the slowest --rate is one record a day.
const DAY_SECS: f64 = 86_400.0;

/// `--rate`: a number of records per second (fractions kept), or `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rate {
    PerSecond(f64),
    Max,
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        match s.parse::<f64>() {
            Ok(n) if n.is_finite() && n * DAY_SECS >= 1.0 && n <= 1e9 => Ok(Rate::PerSecond(n)),
            Ok(n) if n > 0.0 && n * DAY_SECS < 1.0 => Err(format!(
                "`{s}` is less than one record a day: give so slow a pace as --interval (e.g. --interval 2d)"
            )),
            _ => Err(format!(
                "expected a number of records per second above 0 (fractions too, e.g. 0.5), or `max`; got `{s}`"
            )),
        }
    }
}

/// The validated settings of one run.
pub struct Settings {
    pub(super) topic: TopicName,
    pub(super) pace: Pace,
    pub(super) count: Option<u64>,
    pub(super) duration: Option<Duration>,
    pub(super) origin: Origin,
    pub(super) timeout: Duration,
    pub(super) delivery_timeout: Duration,
    pub(super) flush_timeout: Duration,
    pub(super) sequence: bool,
    pub(super) metrics: Option<crate::metrics::Address>,
}

impl Settings {
    pub fn from_args(Checked(args): Args) -> anyhow::Result<Self> {
        let pace = match args.rate {
            Some(Rate::Max) => Pace::Max,
            Some(Rate::PerSecond(n)) => Pace::Every(Duration::from_secs_f64(1.0 / n)),
            None => Pace::Every(args.interval),
        };
        if args.count == Some(0) {
            bail!("--count must be at least 1");
        }
        let origin = match args.input.clone() {
            Some(input) => Origin::Input(input),
            None => Origin::Generate {
                backfill: args.backfill(),
                symbols: args.symbols,
                seed: args.seed,
            },
        };
        Ok(Settings {
            topic: args.topic,
            pace,
            count: args.count,
            duration: args.duration,
            origin,
            timeout: args.timeout,
            delivery_timeout: args.delivery_timeout,
            flush_timeout: args.flush_timeout,
            sequence: args.sequence,
            metrics: args.metrics.metrics_addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Produce {
        #[command(flatten)]
        args: Args,
    }

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        let argv = std::iter::once("produce").chain(args.iter().copied());
        let produce = Produce::try_parse_from(argv)?;
        Ok(Settings::from_args(produce.args).expect("valid settings"))
    }

    fn usage_error(args: &[&str]) -> String {
        match parse(args) {
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{e}");
                e.to_string()
            }
            Ok(_) => panic!("{args:?} should be a usage error"),
        }
    }

    #[test]
    fn rate_parses_numbers_and_max() {
        assert_eq!("max".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!("MAX".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!("2000".parse::<Rate>(), Ok(Rate::PerSecond(2000.0)));
        assert_eq!("0.5".parse::<Rate>(), Ok(Rate::PerSecond(0.5)));
        assert_eq!("1.5".parse::<Rate>(), Ok(Rate::PerSecond(1.5)));
        for bad in ["0", "-1", "fast", "inf", "NaN", "1e10"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        // Slower than one a day: an interval says it better (and 1e-300 would not fit).
        for slow in ["0.00001", "1e-300"] {
            let e = slow.parse::<Rate>().unwrap_err();
            assert!(e.contains("--interval"), "{slow}: {e}");
        }
        assert!((1.0 / DAY_SECS).to_string().parse::<Rate>().is_ok());
    }

    #[test]
    fn a_fractional_rate_is_its_interval() {
        let s = parse(&["--rate", "0.5"]).unwrap();
        assert_eq!(s.pace, Pace::Every(Duration::from_secs(2)));
        let s = parse(&["--rate", "2.5"]).unwrap();
        assert_eq!(s.pace, Pace::Every(Duration::from_millis(400)));
    }

    #[test]
    fn a_backfill_needs_both_start_and_event_rate() {
        let e = usage_error(&["--start", "2026-01-01T00:00:00Z"]);
        assert!(e.contains("--event-rate"), "{e}");
        let e = usage_error(&["--event-rate", "500/s"]);
        assert!(e.contains("--start"), "{e}");
        let s = parse(&["--start", "2026-01-01T00:00:00Z", "--event-rate", "500/s"]).unwrap();
        assert!(matches!(
            s.origin,
            Origin::Generate {
                backfill: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn bad_backfill_values_name_their_flag() {
        let e = usage_error(&["--start", "yesterday", "--event-rate", "5"]);
        assert!(
            e.contains("--start") && e.contains("2026-11-01T09:30:00Z"),
            "{e}"
        );
        let e = usage_error(&["--start", "2026-01-01T00:00:00Z", "--event-rate", "0/s"]);
        assert!(e.contains("--event-rate"), "{e}");
    }

    #[test]
    fn a_backfill_reaching_the_future_is_a_usage_error() {
        let e = usage_error(&["--start", "2999-01-01T00:00:00Z", "--event-rate", "5"]);
        assert!(
            e.contains("--start") && e.contains("after the wall clock"),
            "{e}"
        );
        let e = usage_error(&[
            "--start",
            "2001-01-01T00:00:00Z",
            "--event-rate",
            "0.001",
            "--count",
            "10000000",
        ]);
        assert!(e.contains("--count 10000000"), "{e}");
    }

    #[test]
    fn input_replaces_the_generator() {
        for other in [
            &["--start", "2026-01-01T00:00:00Z", "--event-rate", "5"][..],
            &["--symbols", "AAPL"],
            &["--seed", "1"],
        ] {
            let mut args = vec!["--input", "ticks.jsonl"];
            args.extend_from_slice(other);
            let e = usage_error(&args);
            assert!(e.contains("cannot be used with"), "{e}");
        }
        let s = parse(&["--input", "-", "--count", "3"]).unwrap();
        assert_eq!(s.origin, Origin::Input(Input::Stdin));
        assert_eq!(s.count, Some(3));
    }
}
