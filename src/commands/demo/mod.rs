//! `stockstream demo`: the real `produce` and `aggregate`, side by side in one process, at a
//! pace a person can follow: on an embedded cluster (no Kafka to install), or on a real
//! one with --brokers.

mod cluster;
mod drain;

use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};

use super::{aggregate, dashboard, produce};
use crate::flags::positive_duration;
use crate::global::Global;
use crate::numbers::{count, thousands};
use crate::signals::{self, Stop};
use crate::terminal::Terminal;
use cluster::Cluster;
use drain::{drain, wait_until};

/// The log target of the demo's own lines.
pub const LOG: &str = "StockDemo";

/// The topic the ticks go to, and the aggregate's consumer group.
const TOPIC: &str = "stock_prices";
const GROUP: &str = "stockstream-demo";

const EXAMPLES: &str = "\
Examples:
  stockstream demo                             # on an embedded cluster; Ctrl+C stops
  stockstream demo --duration 30s --seed 7     # a reproducible 30-second run
  stockstream demo -b localhost:9092           # on a real Kafka, exactly-once
  stockstream demo --dashboard                 # and live candlesticks on http://127.0.0.1:8050/";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Time between two ticks; at 50ms or slower each delivered tick gets a line.
    #[arg(long, value_parser = positive_duration, default_value = "100ms")]
    interval: Duration,

    /// Length of the bars' windows.
    #[arg(long, value_parser = positive_duration, default_value = "2s")]
    window: Duration,

    /// Stop producing after this long, e.g. 30s (else at Ctrl+C); the last windows then
    /// close, which takes a window or so more.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,

    /// Seed for the price and volume generator, for a reproducible sequence.
    #[arg(long)]
    seed: Option<u64>,

    /// With --brokers: how long to wait for the cluster to answer at start.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    timeout: Duration,

    /// Also serve the dashboard (live candlesticks, last ticks, health) of the demo's topics
    /// on this address (IP:PORT) while it runs.
    #[arg(
        long,
        value_name = "IP:PORT",
        num_args = 0..=1,
        default_missing_value = "127.0.0.1:8050"
    )]
    dashboard: Option<std::net::SocketAddr>,
}

/// Allowed lateness and idle timeout of the demo's aggregate: short, so bars come soon and
/// the last ones close soon after the producer stops. Ticks of one symbol arrive in order,
/// so little lateness is needed.
const WATERMARK: &str = "500ms";
const IDLE_TIMEOUT: &str = "1s";

/// The two commands the demo runs, as a user would type them.
struct Plan {
    produce: Vec<String>,
    aggregate: Vec<String>,
}

impl Plan {
    /// `fresh`: the input topic was made for this demo, so every tick in it is the demo's.
    fn new(args: &Args, embedded: bool, fresh: bool) -> Self {
        let text = |d: Duration| humantime::format_duration(d).to_string();
        let mut produce = vec!["--topic".into(), TOPIC.into()];
        produce.extend(["--interval".into(), text(args.interval)]);
        produce.extend(["--timeout".into(), text(args.timeout)]);
        if let Some(seed) = args.seed {
            produce.extend(["--seed".into(), seed.to_string()]);
        }
        // The mock's transactions are only a shell.
        let guarantee = if embedded {
            "at-least-once"
        } else {
            "exactly-once"
        };
        // An older topic may hold a long history: then only new ticks (and a returning demo
        // resumes where it stopped, from its group's committed offsets).
        let from = if fresh { "earliest" } else { "latest" };
        let aggregate = [
            ("--topic", TOPIC.to_string()),
            ("--group", GROUP.to_string()),
            ("--from", from.to_string()),
            ("--window", text(args.window)),
            ("--watermark", WATERMARK.to_string()),
            ("--idle-timeout", IDLE_TIMEOUT.to_string()),
            ("--guarantee", guarantee.to_string()),
            ("--progress-interval", "5s".to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect();
        Plan { produce, aggregate }
    }
}

/// A subcommand's clap arguments from `flags`, so that the demo runs `produce` and
/// `aggregate` with exactly the defaults and checks those commands have.
fn parse<A: clap::Args + clap::FromArgMatches>(
    name: &'static str,
    flags: &[String],
) -> anyhow::Result<A> {
    let argv = std::iter::once(name.to_string()).chain(flags.iter().cloned());
    let matches = A::augment_args(clap::Command::new(name))
        .try_get_matches_from(argv)
        .with_context(|| format!("the demo's `{name}` flags"))?;
    Ok(A::from_arg_matches(&matches)?)
}

fn settings(plan: &Plan) -> anyhow::Result<(produce::Settings, aggregate::Settings)> {
    Ok((
        produce::Settings::from_args(parse("produce", &plan.produce)?)?,
        aggregate::Settings::from_args(parse("aggregate", &plan.aggregate)?)?,
    ))
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let embedded = !global.connection.names_a_cluster();
    // The flags are checked before any cluster is touched, and settled once the cluster
    // has said whether the input topic is new.
    let (_, checked) = settings(&Plan::new(&args, embedded, embedded))?;
    // A taken address fails the demo before anything starts.
    let listener = args.dashboard.map(dashboard::listen).transpose()?;
    let ctrl_c = signals::install()?;
    let cluster = if embedded {
        let topics = [&checked.topic, &checked.output_topic, &checked.dlq_topic];
        Cluster::embedded(global, &topics.map(String::as_str))?
    } else {
        Cluster::real(global, &checked.topic, args.timeout)?
    };
    let plan = Plan::new(&args, embedded, cluster.fresh());
    let (produce, mut aggregate) = settings(&plan)?;
    aggregate.read_topic_configs = !embedded;
    tracing::info!(target: LOG, "▶️ stockstream produce {}", plan.produce.join(" "));
    tracing::info!(target: LOG, "▶️ stockstream aggregate {}", plan.aggregate.join(" "));
    tracing::info!(
        target: LOG,
        "⏱️ {}",
        match args.duration {
            Some(d) => format!(
                "Producing for {}, then closing the last windows; Ctrl+C stops earlier",
                humantime::format_duration(d)
            ),
            None => "Ctrl+C to stop".to_string(),
        }
    );
    let started = Instant::now();
    let outcome = side_by_side(
        &cluster,
        &produce,
        &aggregate,
        global.terminal,
        &ctrl_c,
        args.duration,
        listener.map(|l| (board_of(&aggregate), l)),
    );
    // Every client is gone by now: the embedded cluster may stop.
    drop(cluster);
    let (sent, counters) = outcome?;
    tracing::info!(
        target: LOG,
        "📋 Demo summary: {} produced, {} delivered; {} aggregated into {} ({} late, {} bad) in {:.1}s",
        count(sent.generated, "tick", "ticks"),
        thousands(sent.delivered),
        thousands(counters.processed),
        count(counters.bars, "bar", "bars"),
        thousands(counters.late),
        thousands(counters.bad),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The dashboard of the demo's own topics and group.
fn board_of(aggregate: &aggregate::Settings) -> dashboard::Settings {
    dashboard::Settings {
        topic: aggregate.output_topic.clone(),
        input: aggregate.topic.clone(),
        group: aggregate.group.clone(),
        dead_letters: aggregate.dlq_topic.clone(),
        postgres: None,
    }
}

/// Runs the producer and the aggregate on threads of their own until `duration` or Ctrl+C
/// (or until one of them fails); then stops the producer, gives the aggregate the time its
/// last windows need to close (unless Ctrl+C came, or comes meanwhile), and stops it. The
/// dashboard, if asked for, serves meanwhile and stops last.
fn side_by_side(
    cluster: &Cluster,
    produce: &produce::Settings,
    aggregate: &aggregate::Settings,
    terminal: Terminal,
    ctrl_c: &Stop,
    duration: Option<Duration>,
    board: Option<(dashboard::Settings, std::net::TcpListener)>,
) -> anyhow::Result<(produce::Sent, aggregate::Counters)> {
    let kafka = cluster.kafka();
    let (stop_producer, stop_aggregate) = (Stop::default(), Stop::default());
    let stop_dashboard = Stop::default();
    std::thread::scope(|scope| {
        let serving = match board {
            Some((settings, listener)) => {
                let stop = &stop_dashboard;
                Some(
                    std::thread::Builder::new()
                        .name("dashboard".into())
                        .spawn_scoped(scope, move || {
                            dashboard::serve(kafka, &settings, listener, stop)
                        })
                        .context("starting the dashboard thread")?,
                )
            }
            None => None,
        };
        // However the demo ends, the dashboard ends with it.
        let _stops_the_dashboard = OnDrop(|| stop_dashboard.request());
        let aggregating = std::thread::Builder::new()
            .name("aggregate".into())
            .spawn_scoped(scope, || {
                aggregate::run_on(kafka, aggregate, terminal, &stop_aggregate)
            })
            .context("starting the aggregate thread")?;
        let producing = std::thread::Builder::new()
            .name("produce".into())
            .spawn_scoped(scope, || {
                produce::run_on(kafka, produce, terminal, &stop_producer)
            })
            // The scope waits for the aggregate thread: it must be told to stop.
            .inspect_err(|_| stop_aggregate.request())
            .context("starting the produce thread")?;
        let started = Instant::now();
        wait_until(|| {
            ctrl_c.requested()
                || duration.is_some_and(|d| started.elapsed() >= d)
                || producing.is_finished()
                || aggregating.is_finished()
        });
        stop_producer.request();
        // After Ctrl+C both stop at once: the user asked to be done, not to see the last
        // windows close (--duration waits for them).
        if ctrl_c.requested() {
            stop_aggregate.request();
        }
        let sent = joined(producing, "produce");
        if sent.is_ok() && !aggregating.is_finished() && !ctrl_c.requested() {
            drain(kafka, aggregate, || {
                aggregating.is_finished() || ctrl_c.requested()
            });
        }
        stop_aggregate.request();
        let counters = joined(aggregating, "aggregate");
        stop_dashboard.request();
        if let Some(serving) = serving {
            joined(serving, "dashboard")?;
        }
        Ok((sent?, counters?))
    })
}

/// Runs its closure when dropped: on every way out of a scope, `?` included.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn joined<T>(handle: ScopedJoinHandle<'_, anyhow::Result<T>>, what: &str) -> anyhow::Result<T> {
    handle
        .join()
        .map_err(|_| anyhow!("the {what} thread panicked"))?
        .with_context(|| format!("the demo's {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_runs_produce_and_aggregate_with_their_own_checks() {
        let args = Args {
            interval: Duration::from_millis(100),
            window: Duration::from_secs(2),
            duration: None,
            seed: Some(7),
            timeout: Duration::from_secs(10),
            dashboard: None,
        };
        for (embedded, fresh) in [(true, true), (false, true), (false, false)] {
            let (_, aggregate) = settings(&Plan::new(&args, embedded, fresh)).unwrap();
            assert_eq!(aggregate.topic, TOPIC);
            assert_eq!(
                aggregate.guarantee == aggregate::Guarantee::AtLeastOnce,
                embedded
            );
            assert_eq!(aggregate.from, if fresh { "earliest" } else { "latest" });
            assert_eq!(aggregate.rules.windows.size_ms(), 2_000);
        }
        let bad = Args {
            window: Duration::ZERO,
            ..args
        };
        assert!(settings(&Plan::new(&bad, true, true)).is_err());
    }
}
