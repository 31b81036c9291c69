//! The command line as the user typed it: global flags shared by every subcommand and the
//! subcommand enum. The global flags become the program's `Global` settings here; each
//! subcommand turns its own flags into settings itself.

use clap::parser::ValueSource;
use clap::{ArgAction, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::commands::{
    aggregate, cluster, completions, consume, dashboard, demo, group, history, man, produce,
    profile, store, topic,
};
use crate::global::Global;
use crate::kafka::{Connection, Setting, SettingParser};
use crate::terminal::{ColorChoice, Terminal};

const EXAMPLES: &str = "\
Examples:
  stockstream demo                       # all at once on an embedded cluster: no Kafka needed
  stockstream topic create               # stock_prices, 5 partitions, on localhost:9092
  stockstream produce                    # one tick a second into it
  stockstream aggregate --window 10s     # 10-second bars into stock_aggregates
  stockstream consume stock_aggregates   # read them back
  stockstream dashboard                  # live candlesticks on http://127.0.0.1:8050
  stockstream --profile prod topic list  # a named cluster from the profiles file";

/// Real-time stock-tick streaming on Apache Kafka.
#[derive(Debug, Parser)]
#[command(
    name = "stockstream",
    version,
    long_version = long_version(),
    about,
    max_term_width = 100,
    after_long_help = long_help_end()
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line as it is parsed and shown (help, completions, man pages): the
    /// derived definition, with `demo`'s -b told as the demo reads it. Only a typed -b
    /// leaves the demo's embedded cluster, so neither STOCKSTREAM_BROKERS nor the default
    /// belongs there. A subcommand's own flag of a global flag's name takes that flag's
    /// place in it; the value still reaches `GlobalArgs`.
    pub fn definition() -> clap::Command {
        let cmd = Cli::command();
        let brokers = cmd
            .get_arguments()
            .find(|a| a.get_id() == "brokers")
            .expect("-b is defined")
            .clone()
            .env(None)
            .default_value(None)
            .help(DEMO_BROKERS)
            .long_help(DEMO_BROKERS);
        cmd.mut_subcommand("demo", |demo| demo.arg(brokers))
    }

    /// Parses the process's arguments (exiting on a usage error, as `Cli::parse` does) into
    /// the global settings and the command to run.
    pub fn parse_args() -> (Global, Command) {
        let matches = Cli::definition().get_matches();
        let cli = Cli::from_arg_matches(&matches)
            .unwrap_or_else(|e| e.format(&mut Cli::definition()).exit());
        (cli.global.settle(brokers_typed(&matches)), cli.command)
    }
}

/// `demo -b`: what it means there.
const DEMO_BROKERS: &str = "Run on the Kafka cluster at these bootstrap servers (host:port,…) \
    instead of the embedded one. Only a -b typed on the command line counts here (or \
    --profile): STOCKSTREAM_BROKERS does not";

/// `--version`: stockstream's and the librdkafka it was built with, and that one's features.
fn long_version() -> &'static str {
    static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{}\n{}",
            env!("CARGO_PKG_VERSION"),
            crate::kafka::library::describe()
        )
    });
    &TEXT
}

/// The end of `stockstream --help`: examples, then the exit codes.
fn long_help_end() -> String {
    format!("{EXAMPLES}\n\n{}", crate::exit::help())
}

/// Whether -b/--brokers was on the command line (not from STOCKSTREAM_BROKERS or the default).
fn brokers_typed(matches: &clap::ArgMatches) -> bool {
    matches.value_source("brokers") == Some(ValueSource::CommandLine)
}

/// Flags every subcommand accepts, under a heading of their own in every --help.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Kafka bootstrap servers, comma-separated (host:port,…). Typed here, they win over
    /// --profile; from STOCKSTREAM_BROKERS, the profile's win.
    #[arg(
        short,
        long,
        global = true,
        env = "STOCKSTREAM_BROKERS",
        default_value = "localhost:9092",
        value_parser = parse_brokers
    )]
    brokers: String,

    /// A librdkafka setting passed straight to the client, e.g. -X linger.ms=20 or
    /// -X security.protocol=SASL_SSL. Repeatable; applied after stockstream's own settings.
    /// A secret may come from a file: -X sasl.password=@FILE (or STOCKSTREAM_SASL_PASSWORD).
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true, action = ArgAction::Append, value_parser = SettingParser)]
    config: Vec<Setting>,

    /// A named cluster from the profiles file: its brokers and librdkafka settings, secrets
    /// by reference (see `stockstream profile`). -b and -X on the command line win.
    #[arg(long, global = true, env = "STOCKSTREAM_PROFILE", value_name = "NAME")]
    profile: Option<String>,

    /// The profiles file (default: $XDG_CONFIG_HOME/stockstream/config.toml, else
    /// ~/.config/stockstream/config.toml).
    #[arg(long, global = true, env = "STOCKSTREAM_CONFIG", value_name = "FILE")]
    config_file: Option<std::path::PathBuf>,

    /// When to color logs, tables and the live bar table (`auto`: where the output is a
    /// terminal, unless NO_COLOR is set).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, env = "STOCKSTREAM_COLOR")]
    color: ColorChoice,

    /// More log detail (-v debug, -vv trace and librdkafka's own messages).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,

    /// Less log detail (-q warnings and errors only, -qq errors only).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    quiet: u8,
}

impl GlobalArgs {
    /// The settings the program uses. `brokers_typed`: whether -b was on the command line
    /// (the demo leaves its embedded cluster only then), which only the parse can tell.
    pub fn settle(self, brokers_typed: bool) -> Global {
        Global {
            verbosity: self.verbosity(),
            terminal: Terminal::detect(self.color),
            connection: Connection {
                brokers: self.brokers,
                brokers_typed,
                settings: self.config,
                profile: self.profile,
                profiles_file: self.config_file,
            },
        }
    }

    /// -2 (errors only) to 2 (trace).
    fn verbosity(&self) -> i8 {
        let v = i8::try_from(self.verbose.min(2)).unwrap_or(2);
        let q = i8::try_from(self.quiet.min(2)).unwrap_or(2);
        v - q
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream realistic, validated stock ticks to a Kafka topic.
    Produce(produce::Args),
    /// Aggregate ticks into event-time windowed bars per symbol (OHLC, VWAP, volume, trades).
    Aggregate(aggregate::Args),
    /// Create, describe, list, alter and delete topics.
    #[command(subcommand)]
    Topic(topic::Command),
    /// The cluster: its id and brokers, and how many topics and partitions it holds.
    #[command(subcommand)]
    Cluster(cluster::Command),
    /// List, describe, reset and delete consumer groups: members, committed offsets, lag.
    #[command(subcommand)]
    Group(group::Command),
    /// Read a topic to stdout: ticks, bars and dead letters shown as what they are, or JSON
    /// lines, or raw values.
    Consume(consume::Args),
    /// A guided tour of partitions, keys, offsets and consumer-group lag on a real broker.
    DemoPartitions(crate::commands::demo_partitions::Args),
    /// Run produce and aggregate side by side in one process, on an embedded cluster: no
    /// Kafka needed (or on a real one with --brokers).
    Demo(demo::Args),
    /// A web page of live candlesticks per symbol, the last ticks and the pipeline's health.
    Dashboard(dashboard::Args),
    /// Keep every bar in PostgreSQL, exactly once: a table that outlives the topic.
    Store(store::Args),
    /// Bars stored in PostgreSQL: some symbols over a time range, as stored or resampled.
    History(history::Args),
    /// The named clusters of the profiles file (see --profile).
    #[command(subcommand)]
    Profile(profile::Command),
    /// Print the completion script for a shell (bash, zsh, fish, powershell, elvish).
    Completions(completions::Args),
    /// Print the manual page, or write one page per subcommand into a directory.
    Man(man::Args),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command line is read at the top only: `main` hands its settings down (`Global`),
    /// so no module below imports it, and `kafka` imports no command either.
    #[test]
    fn nothing_below_the_command_line_imports_it() {
        fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut all = Vec::new();
        files(&src, &mut all);
        for path in all {
            let name = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if name == "main.rs" || name == "cli.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains("crate::cli"),
                "{name} imports the command line"
            );
            if name.starts_with("kafka") {
                assert!(
                    !text.contains("crate::commands"),
                    "{name} imports a command"
                );
            }
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
        Cli::definition().debug_assert();
    }

    /// Every command without subcommands of its own, by its words (`["topic", "create"]`),
    /// built as `stockstream` runs it (global flags handed down).
    fn leaves() -> Vec<(Vec<String>, clap::Command)> {
        fn walk(cmd: &clap::Command, path: &[String], out: &mut Vec<(Vec<String>, clap::Command)>) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let mut words = path.to_vec();
                words.push(sub.get_name().to_string());
                if sub.has_subcommands() {
                    walk(sub, &words, out);
                } else {
                    out.push((words, sub.clone()));
                }
            }
        }
        let mut root = Cli::definition();
        root.build();
        let mut all = Vec::new();
        walk(&root, &[], &mut all);
        all
    }

    /// The `stockstream …` commands of a help text's examples, each as its words: a line
    /// continued with `\` joined, comments, pipes and redirections left out.
    fn example_commands(help: &str) -> Vec<Vec<String>> {
        let text = help.replace("\\\n", " ");
        let mut commands = Vec::new();
        for line in text.lines() {
            let line = line.split(" #").next().unwrap_or_default();
            for part in line.split(" | ").map(str::trim) {
                if let Some(rest) = part.strip_prefix("stockstream ") {
                    let words = rest
                        .split_whitespace()
                        .take_while(|w| !w.starts_with('>') && !w.starts_with("2>"));
                    let argv = std::iter::once("stockstream").chain(words);
                    commands.push(argv.map(str::to_string).collect());
                }
            }
        }
        commands
    }

    #[test]
    fn every_command_s_long_help_has_examples_that_parse() {
        let all = leaves();
        assert!(all.len() >= 12, "{}", all.len());
        for (words, cmd) in all {
            let help = cmd
                .get_after_long_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(help.starts_with("Examples:\n"), "{words:?}: {help}");
            let examples = example_commands(&help);
            assert!(!examples.is_empty(), "{words:?}: {help}");
            for argv in examples {
                assert!(
                    argv.windows(words.len()).any(|w| w == words.as_slice()),
                    "{words:?}: an example of another command: {argv:?}"
                );
                // clap's own parsing and every value parser; not the cross-flag checks,
                // which depend on the wall clock.
                if let Err(e) = Cli::definition().try_get_matches_from(&argv) {
                    panic!("{argv:?}: {e}");
                }
            }
        }
    }

    #[test]
    fn global_flags_have_their_own_heading_in_every_help() {
        let all = leaves();
        for (words, cmd) in all {
            let globals = cmd.get_arguments().filter(|a| a.is_global_set()).count();
            assert_eq!(globals, 7, "{words:?}");
            for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
                assert_eq!(
                    arg.get_help_heading(),
                    Some("Global options"),
                    "{words:?} {}",
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn repeated_x_flags_keep_their_order() {
        let cli = Cli::try_parse_from([
            "stockstream",
            "produce",
            "-X",
            "linger.ms=20",
            "-X",
            "client.id=a=b",
        ])
        .unwrap();
        assert_eq!(
            cli.global.config,
            vec![
                Setting::new("linger.ms", "20"),
                Setting::new("client.id", "a=b")
            ]
        );
    }

    #[test]
    fn x_without_equals_is_a_usage_error() {
        let err = Cli::try_parse_from(["stockstream", "produce", "-X", "linger.ms"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn verbosity_combines_v_and_q() {
        let cli = Cli::try_parse_from(["stockstream", "-vv", "produce"]).unwrap();
        assert_eq!(cli.global.verbosity(), 2);
        let cli = Cli::try_parse_from(["stockstream", "produce", "-q"]).unwrap();
        assert_eq!(cli.global.verbosity(), -1);
    }

    #[test]
    fn demo_s_brokers_flag_is_its_own_yet_reaches_the_global_settings() {
        let parse = |args: &[&str]| {
            let matches = Cli::definition().get_matches_from(args);
            Cli::from_arg_matches(&matches).unwrap().global.brokers
        };
        assert_eq!(parse(&["stockstream", "demo", "-b", "k:1"]), "k:1");
        assert_eq!(parse(&["stockstream", "-b", "k:2", "demo"]), "k:2");
        assert_eq!(parse(&["stockstream", "demo"]), "localhost:9092");
        let mut root = Cli::definition();
        root.build();
        let demo = root.find_subcommand("demo").unwrap();
        let brokers = demo.get_arguments().find(|a| a.get_id() == "brokers");
        let brokers = brokers.unwrap();
        assert_eq!(brokers.get_env(), None);
        assert!(brokers.get_default_values().is_empty());
    }

    #[test]
    fn only_a_typed_brokers_flag_counts_as_typed() {
        let typed = |args: &[&str]| brokers_typed(&Cli::definition().get_matches_from(args));
        assert!(typed(&["stockstream", "-b", "k:9092", "demo"]));
        assert!(typed(&["stockstream", "demo", "--brokers", "k:9092"]));
        assert!(!typed(&["stockstream", "demo"]));
    }
}

/// `-b`: a comma-separated list of `host:port` (or `host`, port 9092; `[v6]:port`; an
/// optional `SCHEME://` prefix, as librdkafka accepts), checked before any broker is asked.
fn parse_brokers(text: &str) -> Result<String, String> {
    const EXAMPLE: &str = "expected host:port, comma-separated, e.g. localhost:9092";
    if text.trim().is_empty() {
        return Err(format!("no broker given ({EXAMPLE})"));
    }
    for entry in text.split(',') {
        let entry = entry.trim();
        let address = entry.split_once("://").map_or(entry, |(_, rest)| rest);
        let (host, port) = match address.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once(']').ok_or_else(|| {
                    format!("`{entry}`: no `]` after an IPv6 address ({EXAMPLE})")
                })?;
                (host, rest.strip_prefix(':'))
            }
            None => match address.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (address, None),
            },
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("`{entry}`: no host name ({EXAMPLE})"));
        }
        if let Some(port) = port {
            if !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(format!(
                    "`{entry}`: the port `{port}` is not a number from 1 to 65535 ({EXAMPLE})"
                ));
            }
        }
    }
    Ok(text.trim().to_string())
}

#[cfg(test)]
mod broker_list_tests {
    use super::parse_brokers;

    #[test]
    fn broker_lists_librdkafka_takes_are_accepted() {
        for ok in [
            "localhost:9092",
            "a:1,b:2",
            "kafka-1",
            "SASL_SSL://broker.example.com:9093",
            "[::1]:9092",
            " 127.0.0.1:9092 ",
        ] {
            assert!(parse_brokers(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_malformed_broker_list_says_what_is_wrong() {
        for (bad, says) in [
            ("", "no broker given"),
            ("   ", "no broker given"),
            ("host:notaport", "the port `notaport`"),
            ("host:0", "the port `0`"),
            ("host:70000", "the port `70000`"),
            (":9092", "no host name"),
            ("a:1,,b:2", "no host name"),
            ("[::1:9092", "no `]`"),
        ] {
            let err = parse_brokers(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(err.contains("localhost:9092"), "{bad}: {err}");
        }
    }
}
