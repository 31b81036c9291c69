//! `stockstream dashboard`: a web page of live candlesticks, served by the binary itself.
//! The bars topic's recent history, then each bar as it is committed; the last tick per
//! symbol; and the pipeline's health (ticks/s, the aggregate group's lag, dead letters by
//! reason) read from the topics and the group themselves. It waits out a missing broker or
//! topic, saying so on the page, and carries on when they come.

mod board;
mod feeds;
mod history;
mod hub;
mod metrics;
mod server;
mod source;

use std::net::SocketAddr;

use anyhow::Context as _;

use crate::global::Global;
use crate::kafka::Kafka;
use crate::postgres::Postgres;
use crate::signals::{self, Stop};
use crate::topic_name::TopicName;
use board::About;
use hub::Hub;
use source::Topic;

/// The log target of the dashboard's lines.
pub const LOG: &str = "StockDashboard";

/// The group id of the dashboard's own consumers, which librdkafka needs to assign
/// partitions by hand. They never join it nor commit to it.
const READER_GROUP: &str = "stockstream-dashboard";

const EXAMPLES: &str = "\
Examples:
  stockstream dashboard                          # http://127.0.0.1:8050/, Ctrl+C stops
  stockstream dashboard --listen 0.0.0.0:8080    # for other machines too (no login!)
  stockstream dashboard --topic bars_replay --group replay";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Address to serve the page on, IP:PORT (port 0: any free port, logged at start).
    #[arg(long, default_value = "127.0.0.1:8050")]
    listen: SocketAddr,

    /// Topic of the bars (aggregate's --output-topic), read committed.
    #[arg(long, default_value = "stock_aggregates")]
    topic: TopicName,

    /// Topic of the ticks (aggregate's --topic): ticks/s and the last tick per symbol.
    #[arg(long, default_value = "stock_prices")]
    input: TopicName,

    /// The aggregate's consumer group, whose lag on --input is shown (aggregate's --group).
    #[arg(long, default_value = "stockstream-aggregate")]
    group: String,

    /// Dead-letter topic, counted by reason (aggregate's --dlq-topic; default: <input>.dlq).
    #[arg(long)]
    dead_letters: Option<TopicName>,

    #[command(flatten)]
    postgres: crate::postgres::OptionalFlag,

    #[command(flatten)]
    metrics: crate::metrics::Flag,
}

/// What the dashboard reads.
#[derive(Debug, Clone)]
pub struct Settings {
    pub topic: String,
    pub input: String,
    pub group: String,
    pub dead_letters: String,
    /// Where `store` keeps bars, for the history.
    pub postgres: Option<Postgres>,
}

impl Settings {
    pub fn from_args(args: Args) -> anyhow::Result<Self> {
        let input = args.input.to_string();
        Ok(Settings {
            topic: args.topic.to_string(),
            dead_letters: args
                .dead_letters
                .map_or_else(|| format!("{input}.dlq"), |t| t.to_string()),
            input,
            group: args.group,
            postgres: args.postgres.postgres(POSTGRES_TIMEOUT)?,
        })
    }
}

/// The longest connecting to PostgreSQL and reading the history may take.
const POSTGRES_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Dashboard metrics' histograms: none (streams and bars are counted, not timed).
const HISTOGRAMS: &[crate::metrics::Buckets] = &[];

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let listener = listen(args.listen)?;
    // Before Kafka is contacted: an address in use stops the dashboard at once.
    if let Some(address) = &args.metrics.metrics_addr {
        crate::metrics::serve(address, HISTOGRAMS)?;
        metrics::describe();
        tracing::info!(target: LOG, "📊 Metrics at {}", address.url());
    }
    let settings = Settings::from_args(args)?;
    let kafka = Kafka::new(&global.connection)?;
    let stop = signals::install()?;
    serve(&kafka, &settings, listener, &stop)
}

/// Takes the address to serve on; a refusal names it and says what to do.
pub fn listen(address: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(address).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "another program (another dashboard?) serves there: stop it, or pick another port with --listen"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "that is not an address of this machine: 127.0.0.1 serves this machine, 0.0.0.0 every network"
            }
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges: pick a port above 1024 with --listen"
            }
            _ => "pick another address with --listen",
        };
        anyhow::anyhow!("cannot serve the dashboard on {address}: {e}\n  hint: {hint}")
    })
}

/// Serves the dashboard of `settings` on `listener` until `stop`, reading Kafka on threads
/// of its own.
pub fn serve(
    kafka: &Kafka,
    settings: &Settings,
    listener: std::net::TcpListener,
    stop: &Stop,
) -> anyhow::Result<()> {
    let hub = Hub::new(About {
        brokers: kafka.brokers().to_string(),
        topic: settings.topic.clone(),
        input: settings.input.clone(),
        group: settings.group.clone(),
        dead_letters: settings.dead_letters.clone(),
    });
    let bars = Topic::new(kafka, &settings.topic, READER_GROUP, true)?;
    let input = Topic::new(kafka, &settings.input, READER_GROUP, false)?;
    let group = Topic::new(kafka, &settings.input, &settings.group, false)?;
    let dead = Topic::new(kafka, &settings.dead_letters, READER_GROUP, true)?;
    let address = listener.local_addr().context("the dashboard's address")?;
    tracing::info!(target: LOG, "📈 Dashboard on {} (Ctrl+C stops)", url(address));
    std::thread::scope(|scope| {
        // The stored history first: the topic's bars then replace what they overlap.
        if let Some(pg) = &settings.postgres {
            history::load(pg, &hub);
        }
        let started = [
            spawn(scope, "dashboard-bars", || feeds::bars(&bars, &hub, stop)),
            spawn(scope, "dashboard-input", || {
                feeds::input(&input, &group, &hub, stop);
            }),
            spawn(scope, "dashboard-dlq", || {
                feeds::dead_letters(&dead, &hub, stop)
            }),
        ];
        let served = match started.into_iter().find_map(Result::err) {
            Some(err) => Err(err),
            None => server::run(listener, std::sync::Arc::clone(&hub), stop),
        };
        // The feeds end with the server, however it ended.
        stop.request();
        served
    })?;
    let_go([bars, input, group, dead]);
    tracing::info!(target: LOG, "👋 Dashboard stopped");
    Ok(())
}

/// Closes the consumers, waiting at most `signals::PATIENCE`: a consumer of a group closes
/// only once the brokers answer, and the dashboard may have none to talk to. One not closed
/// by then is left to close on its own (or to end with the process).
fn let_go(topics: [Topic; 4]) {
    let (closed, done) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name("dashboard-close".into())
        .spawn(move || {
            drop(topics);
            let _ = closed.send(());
        });
    if closing.is_ok() {
        let _ = done.recv_timeout(signals::PATIENCE);
    }
}

fn spawn<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    feed: impl FnOnce() + Send + 'scope,
) -> anyhow::Result<std::thread::ScopedJoinHandle<'scope, ()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, feed)
        .with_context(|| format!("starting the {name} thread"))
}

/// The page's address for a person: a wildcard address is reached as localhost.
pub fn url(address: SocketAddr) -> String {
    if address.ip().is_unspecified() {
        format!("http://localhost:{}/", address.port())
    } else {
        format!("http://{address}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed<A: clap::Args + clap::FromArgMatches>(name: &'static str, flags: &[&str]) -> A {
        let matches = A::augment_args(clap::Command::new(name))
            .try_get_matches_from(std::iter::once(name).chain(flags.iter().copied()))
            .unwrap();
        A::from_arg_matches(&matches).unwrap()
    }

    /// Out of the box, the dashboard shows what `aggregate` writes out of the box.
    #[test]
    fn the_defaults_are_those_of_aggregate() {
        let dashboard = Settings::from_args(parsed("dashboard", &[])).unwrap();
        let aggregate =
            crate::commands::aggregate::Settings::from_args(parsed("aggregate", &[])).unwrap();
        assert_eq!(dashboard.topic, aggregate.output_topic);
        assert_eq!(dashboard.input, aggregate.topic);
        assert_eq!(dashboard.group, aggregate.group);
        assert_eq!(dashboard.dead_letters, aggregate.dlq_topic);
        let other = Settings::from_args(parsed("dashboard", &["--input", "ticks"])).unwrap();
        assert_eq!(other.dead_letters, "ticks.dlq");
    }

    #[test]
    fn a_taken_address_is_named_with_what_to_do() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let err = listen(address).unwrap_err().to_string();
        assert!(err.contains(&address.to_string()), "{err}");
        assert!(err.contains("--listen"), "{err}");
    }

    #[test]
    fn a_wildcard_address_is_shown_as_localhost() {
        assert_eq!(
            url("0.0.0.0:8050".parse().unwrap()),
            "http://localhost:8050/"
        );
        assert_eq!(url("127.0.0.1:1".parse().unwrap()), "http://127.0.0.1:1/");
    }
}
