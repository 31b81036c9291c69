//! `stockstream aggregate`: event-time windowed bars per symbol (OHLC, VWAP, volume, trades)
//! from the tick topic to an output topic, with watermarks that never stall, a dead-letter
//! topic for every bad or late record, and exactly-once output through Kafka transactions.

mod context;
mod fetch;
mod metrics;
mod output;
mod pipeline;
mod progress;
mod sink;
mod txn;

use std::collections::BTreeMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::ValueEnum;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::admin::Admin;
use crate::aggregate::window::WindowSpec;
use crate::aggregate::{Engine, Rules};
use crate::exit::Failure;
use crate::flags::{invalid_value, positive_duration, Checked, CrossCheck};
use crate::global::Global;
use crate::kafka::{CreateClient as _, Kafka};
use crate::numbers::count;
use crate::record::Limits;
use crate::signals;
use crate::terminal::Terminal;
use crate::topic_name::TopicName;
use context::JobContext;
use fetch::{Fetcher, Input};
use output::Console;
pub use pipeline::Counters;
use pipeline::Pipeline;
use sink::Sink;

/// The log target of every aggregate line.
pub const LOG: &str = "StockAggregator";

/// `stockstream aggregate`'s flags, checked together.
pub type Args = Checked<Flags>;

const EXAMPLES: &str = "\
Examples:
  stockstream aggregate --window 10s              # tumbling 10-second bars, exactly-once
  stockstream aggregate --window 1m --slide 10s   # hopping: a 1-minute bar every 10 seconds
  # All of the topic's history into a topic of its own, stopping once caught up
  stockstream aggregate --from earliest --group replay --stop-at-end \\
    --output-topic bars_replay --output-retention forever
  # A revision of each open window every second, as JSON lines on stdout
  stockstream aggregate --emit update --update-interval 1s 2>aggregate.log";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Flags {
    /// Topic to read ticks from.
    #[arg(long, default_value = "stock_prices")]
    topic: TopicName,

    /// Consumer group; instances in one group share the partitions.
    #[arg(long, default_value = "stockstream-aggregate")]
    group: String,

    /// Where to start a partition the group has no committed offset for.
    #[arg(long, value_enum, default_value_t = From::Latest)]
    from: From,

    /// Window length, e.g. 10s or 1m.
    #[arg(long, value_parser = positive_duration, default_value = "10s")]
    window: Duration,

    /// Hop between window starts for overlapping (hopping) windows; at most --window.
    #[arg(long, value_parser = positive_duration)]
    slide: Option<Duration>,

    /// Allowed lateness: the watermark trails the largest event time by this much.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    watermark: Duration,

    /// Silence after which a caught-up partition's watermark follows the wall clock.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    idle_timeout: Duration,

    /// How far a tick's event time may be ahead of when it was written or read (the earlier
    /// of the two); one further ahead goes to the dead-letter topic as `future`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1m")]
    max_future: Duration,

    /// What to do with a record whose windows are all final already.
    #[arg(long, value_enum, default_value_t = LatePolicy::DeadLetter)]
    late: LatePolicy,

    /// Dead-letter topic for bad and late records (default: <topic>.dlq).
    #[arg(long)]
    dlq_topic: Option<TopicName>,

    /// Topic the bars are written to.
    #[arg(long, default_value = "stock_aggregates")]
    output_topic: TopicName,

    /// retention.ms of the output topic when aggregate creates it: a duration, or `forever`
    /// (for a replay of old data: bars carry their window end as timestamp, so bars older
    /// than the retention are deleted by the broker within minutes). Default: the broker's.
    #[arg(long, value_parser = parse_retention)]
    output_retention: Option<i64>,

    /// `final`: each window once, when final. `update`: a revision whenever it changed (at
    /// most once per --update-interval), the last one marked final.
    #[arg(long, value_enum, default_value_t = EmitMode::Final)]
    emit: EmitMode,

    /// With `--emit update`: how often a window that changed sends a revision. Shorter means
    /// fresher bars and more output records; exactly-once makes them readable at the next
    /// commit.
    #[arg(long, value_parser = positive_duration, default_value = "10ms")]
    update_interval: Duration,

    /// Delivery guarantee of the output: transactions (exactly-once) or plain commits.
    #[arg(long, value_enum, default_value_t = Guarantee::ExactlyOnce)]
    guarantee: Guarantee,

    /// How often output and input offsets are committed (one transaction each). The job
    /// reads on while a commit runs; one slower than this delays the next.
    #[arg(long, value_parser = positive_duration, default_value = "100ms")]
    commit_interval: Duration,

    /// This instance's stable identity (transactional id and static group membership).
    /// Instances of one group must each have their own. Default: the host name.
    #[arg(long, value_name = "ID", env = "STOCKSTREAM_INSTANCE_ID")]
    instance_id: Option<String>,

    /// Do not show the bars on the console.
    #[arg(long)]
    no_console: bool,

    /// How often to report progress (rates, lag, watermarks, counts).
    #[arg(long, value_parser = positive_duration, default_value = "10s")]
    progress_interval: Duration,

    /// Print progress as JSON lines on stdout.
    #[arg(long)]
    progress_json: bool,

    /// Stop (after a final commit) once every assigned partition has been read to its end,
    /// e.g. to work through a backlog; open windows are kept for the next run.
    #[arg(long)]
    stop_at_end: bool,

    /// How long to wait for the broker at start, and for each commit.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    timeout: Duration,

    #[command(flatten)]
    metrics: crate::metrics::Flag,
}

impl CrossCheck for Flags {
    fn check(&self) -> Result<(), clap::Error> {
        match self.slide {
            Some(slide) if slide > self.window => Err(invalid_value(
                "--slide <SLIDE>",
                format_args!(
                    "{} is longer than --window {}; a hop between windows is at most a window",
                    humantime::format_duration(slide),
                    humantime::format_duration(self.window)
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// A retention.ms for people, e.g. "7days".
pub fn retention_text(ms: i64) -> String {
    humantime::format_duration(Duration::from_secs(u64::try_from(ms / 1000).unwrap_or(0)))
        .to_string()
}

/// `forever` → -1, else a duration in ms.
fn parse_retention(text: &str) -> Result<i64, String> {
    if text == "forever" {
        return Ok(-1);
    }
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("{e} (a duration such as 30d, or `forever`)"))?;
    i64::try_from(d.as_millis())
        .ok()
        .filter(|ms| *ms > 0)
        .ok_or_else(|| "must be above 0 (or `forever`)".to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum From {
    Earliest,
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LatePolicy {
    /// Count it and write it to the dead-letter topic with reason `late`.
    DeadLetter,
    /// Only count it.
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmitMode {
    Final,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Guarantee {
    ExactlyOnce,
    AtLeastOnce,
}

/// The validated settings of one run.
pub struct Settings {
    pub topic: String,
    pub group: String,
    pub from: &'static str,
    pub rules: Rules,
    pub late: LatePolicy,
    pub dlq_topic: String,
    pub output_topic: String,
    pub output_retention: Option<i64>,
    pub limits: Limits,
    pub emit: EmitMode,
    pub guarantee: Guarantee,
    pub commit_interval: Duration,
    pub update_interval: Duration,
    pub instance_id: String,
    pub console: bool,
    pub progress_interval: Duration,
    pub progress_json: bool,
    pub stop_at_end: bool,
    pub timeout: Duration,
    /// Whether to read the output topics' settings (max.message.bytes, retention.ms); the
    /// demo's embedded cluster cannot describe them.
    pub read_topic_configs: bool,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics: Option<crate::metrics::Address>,
}

impl Settings {
    pub fn from_args(Checked(args): Args) -> anyhow::Result<Self> {
        let windows = WindowSpec::new(args.window, args.slide).map_err(anyhow::Error::msg)?;
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let topic = args.topic.to_string();
        let instance_id = match args.instance_id {
            Some(id) if !id.trim().is_empty() => id,
            _ => default_instance_id(),
        };
        Ok(Settings {
            dlq_topic: args
                .dlq_topic
                .map_or_else(|| format!("{topic}.dlq"), |t| t.to_string()),
            topic,
            group: args.group,
            from: match args.from {
                From::Earliest => "earliest",
                From::Latest => "latest",
            },
            rules: Rules {
                windows,
                lateness: millis(args.watermark),
                idle_timeout: millis(args.idle_timeout),
                updates: args.emit == EmitMode::Update,
            },
            late: args.late,
            output_topic: args.output_topic.to_string(),
            output_retention: args.output_retention,
            limits: Limits {
                max_future_ms: millis(args.max_future),
                ..Limits::default()
            },
            emit: args.emit,
            guarantee: args.guarantee,
            commit_interval: args.commit_interval,
            update_interval: args.update_interval,
            instance_id,
            console: !args.no_console,
            progress_interval: args.progress_interval,
            progress_json: args.progress_json,
            stop_at_end: args.stop_at_end,
            timeout: args.timeout,
            read_topic_configs: true,
            metrics: args.metrics.metrics_addr,
        })
    }

    fn transactional_id(&self) -> Option<String> {
        (self.guarantee == Guarantee::ExactlyOnce)
            .then(|| format!("stockstream-aggregate.{}.{}", self.group, self.instance_id))
    }
}

/// The host name, asked of the operating system (gethostname(2), or Windows' own call):
/// stable across restarts of the same machine's instance, and different on each machine,
/// so instances on several machines never fence each other by accident.
fn default_instance_id() -> String {
    let host = gethostname::gethostname();
    let host = host.to_string_lossy();
    match host.trim() {
        "" => "stockstream".to_string(),
        name => name.to_string(),
    }
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let settings = Settings::from_args(args)?;
    // Before Kafka is contacted: an address in use stops the job at once.
    if let Some(address) = &settings.metrics {
        crate::metrics::serve(address, metrics::HISTOGRAMS)?;
        tracing::info!(target: LOG, "📊 Metrics at {}", address.url());
    }
    let kafka = Kafka::new(&global.connection)?;
    let stop = signals::install()?;
    run_on(&kafka, &settings, global.terminal, &stop).map(|_| ())
}

/// Aggregates on `kafka` until `stop` (or the end, with --stop-at-end); returns the totals.
/// The bars are shown as `terminal` allows.
pub fn run_on(
    kafka: &Kafka,
    settings: &Settings,
    terminal: Terminal,
    stop: &signals::Stop,
) -> anyhow::Result<Counters> {
    let topics = prepare_topics(kafka, settings)?;

    if settings.guarantee == Guarantee::AtLeastOnce {
        tracing::warn!(target: LOG, "at-least-once: after a crash some bars and dead-letter records may be written twice");
    }
    let mut config = kafka.stream_producer_config(settings.transactional_id().as_deref());
    // The brokers judge a whole batch against a topic's max.message.bytes, and librdkafka
    // does not split a refused batch: no batch may be larger than the smaller topic takes
    // (unless -X batch.size says otherwise).
    if config.get("batch.size").is_none() {
        let smallest = topics.dlq_max_bytes.min(topics.output_max_bytes);
        let batch = smallest
            .saturating_sub(crate::dead_letter::RECORD_OVERHEAD)
            .max(1);
        config.set("batch.size", batch.min(1_000_000).to_string());
    }
    let sink = Sink::new(config, settings, topics.dlq_max_bytes, stop.clone())
        .with_context(|| format!("on {}", kafka.brokers()))?;
    let engine = Engine::new(settings.rules);
    let pipeline = Arc::new(Mutex::new(Pipeline::new(
        engine,
        sink,
        Console::new(settings.console, terminal),
        settings,
        topics.output_retention,
        stop.clone(),
    )));
    describe_start(kafka, settings);
    let mut restarts = Restarts::default();
    loop {
        let consumer = start_consumer(kafka, settings, Arc::clone(&pipeline))?;
        let ended = run_loop(&consumer, settings, stop);
        if let Ok(Ended::ConsumerFailed(code)) = &ended {
            // librdkafka's consumer cannot recover from a fatal error (e.g. its static
            // membership fenced after a broker restart): start a new one. The pipeline
            // forgets its partitions first; the new assignment restores them.
            consumer.context().with(Pipeline::abandon);
            drop(consumer);
            restarts.after(*code, Instant::now())?;
            tracing::warn!(target: LOG, "the consumer failed for good ({code}); starting a new one");
            continue;
        }
        let closing = consumer.context().with(|p| p.shutdown(&consumer));
        consumer.unsubscribe();
        let counters = consumer.context().with(|p| p.snapshot().counters);
        close(consumer, stop);
        return ended.and(closing).map(|()| counters);
    }
}

/// The input consumer. Dropping it removes the batch queue first, on every path (a panic
/// included): librdkafka cannot shut a client down while queue handles on it are alive.
struct JobConsumer(BaseConsumer<JobContext>);

impl std::ops::Deref for JobConsumer {
    type Target = BaseConsumer<JobContext>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for JobConsumer {
    fn drop(&mut self) {
        self.0.context().close_fetcher();
    }
}

/// Closes the consumer: it leaves its group once its last requests are answered. After a
/// stop, the brokers get until `signals::PATIENCE` after it: when they do not answer, the
/// job leaves without them (the closing goes on, on a thread of its own, until the process
/// ends).
fn close(consumer: JobConsumer, stop: &signals::Stop) {
    let (closed, done) = mpsc::channel::<()>();
    // A thread that cannot start drops the consumer here, as it would have.
    let _ = std::thread::Builder::new()
        .name("closing".to_string())
        .spawn(move || {
            drop(consumer);
            drop(closed);
        });
    while let Err(RecvTimeoutError::Timeout) = done.recv_timeout(Duration::from_millis(10)) {
        if stop.out_of_patience() {
            tracing::warn!(
                target: LOG,
                "the brokers did not answer the consumer's goodbye within {} of the stop; leaving without it (the group rebalances after its session timeout)",
                humantime::format_duration(signals::PATIENCE)
            );
            return;
        }
    }
}

/// A consumer subscribed to the input, reading through a batch queue, sharing `pipeline`.
fn start_consumer(
    kafka: &Kafka,
    settings: &Settings,
    pipeline: Arc<Mutex<Pipeline>>,
) -> anyhow::Result<JobConsumer> {
    let consumer: BaseConsumer<JobContext> = kafka
        .stream_consumer_config(&settings.group, settings.from, &settings.instance_id)
        .create_client(JobContext::new(pipeline))
        .context("creating the input consumer")?;
    let fetcher = Fetcher::new(&consumer, &settings.topic, BATCH)
        .context("creating the batch queue for input records")?;
    consumer.context().set_fetcher(fetcher);
    let consumer = JobConsumer(consumer);
    consumer
        .subscribe(&[&settings.topic])
        .with_context(|| format!("subscribing to `{}`", settings.topic))?;
    Ok(consumer)
}

/// Why the read loop ended.
enum Ended {
    /// A stop was asked for (Ctrl+C, SIGTERM, --stop-at-end).
    Stopped,
    /// The consumer hit a fatal error.
    ConsumerFailed(RDKafkaErrorCode),
}

/// How often a consumer that failed for good may be replaced. Fenced twice within
/// `Restarts::WINDOW`, the static membership is wanted by another instance with the same
/// --instance-id (once is a broker restart's doing); replaced `Restarts::MOST` times within
/// it, the failure will not go away by itself. Either way the job stops instead of looping.
#[derive(Default)]
struct Restarts {
    fenced: Option<Instant>,
    recent: std::collections::VecDeque<Instant>,
}

impl Restarts {
    const WINDOW: Duration = Duration::from_secs(60);
    const MOST: usize = 5;

    fn after(&mut self, code: RDKafkaErrorCode, now: Instant) -> anyhow::Result<()> {
        let within = |at: &Instant| now.duration_since(*at) < Self::WINDOW;
        if code == RDKafkaErrorCode::FencedInstanceId {
            if self.fenced.as_ref().is_some_and(within) {
                return Err(twin_fenced(&code.to_string()));
            }
            self.fenced = Some(now);
        }
        self.recent.retain(within);
        self.recent.push_back(now);
        if self.recent.len() > Self::MOST {
            anyhow::bail!(
                "the consumer failed for good {} times within {} (last: {code})\n  \
                 hint: the brokers' log says why; the job starts again from the committed \
                 offsets",
                self.recent.len(),
                humantime::format_duration(Self::WINDOW)
            );
        }
        Ok(())
    }
}

/// The stop of an instance whose identity another instance took: two instances with the same
/// --instance-id fence each other (the consumer's static membership, and the producer's
/// transactional id) without end.
fn twin_fenced(cause: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "this instance was fenced: another instance with the same --instance-id took over ({cause})\n  \
         hint: give every instance of a group its own --instance-id"
    )
}

/// What the job must know of its output topics.
struct Topics {
    /// The dead-letter topic's max.message.bytes.
    dlq_max_bytes: usize,
    /// The output topic's max.message.bytes.
    output_max_bytes: usize,
    /// The output topic's retention.ms (`None`: unlimited or unknown).
    output_retention: Option<i64>,
}

/// Checks the input topic and creates missing output and dead-letter topics with the input's
/// partition count, replication factor and min.insync.replicas.
fn prepare_topics(kafka: &Kafka, settings: &Settings) -> anyhow::Result<Topics> {
    let admin = Admin::connect(kafka, settings.timeout)?;
    let Some(input) = admin.topic(&settings.topic)? else {
        return Err(Failure::TopicMissing {
            topic: settings.topic.clone(),
            brokers: kafka.brokers().to_string(),
            hint: format!(
                "create it and produce to it: `stockstream topic create {}`",
                settings.topic
            ),
        }
        .into());
    };
    let partitions = i32::try_from(input.partitions.len()).unwrap_or(1);
    let replication = i32::try_from(input.replication_factor())
        .unwrap_or(1)
        .max(1);
    let mut durability = None;
    let mut created_output = false;
    for name in [&settings.output_topic, &settings.dlq_topic] {
        if admin.topic(name)?.is_some() {
            continue;
        }
        let mut configs = durability
            .get_or_insert_with(|| input_durability(&admin, settings))
            .clone();
        if let Some(ms) = settings
            .output_retention
            .filter(|_| name == &settings.output_topic)
        {
            configs.push(("retention.ms".to_string(), ms.to_string()));
        }
        if admin.create(name, partitions, replication, &configs)? {
            tracing::info!(target: LOG, "📦 Created topic `{name}` with {} (replication factor {replication})", count(partitions as u64, "partition", "partitions"));
            created_output |= name == &settings.output_topic;
        }
    }
    // Topic settings the job adapts to. A cluster that cannot describe them (no
    // DescribeConfigs, or not allowed to) gets Kafka's defaults.
    let described = |topic: &str| -> BTreeMap<String, String> {
        if !settings.read_topic_configs {
            return BTreeMap::new();
        }
        admin.configs_of(topic).unwrap_or_else(|e| {
            tracing::warn!(target: LOG, "{e:#}; assuming Kafka's defaults for `{topic}`");
            BTreeMap::new()
        })
    };
    let (output, dlq) = (
        described(&settings.output_topic),
        described(&settings.dlq_topic),
    );
    let number = |configs: &BTreeMap<String, String>, key: &str| -> Option<i64> {
        configs.get(key).and_then(|v| v.parse().ok())
    };
    let max_bytes = |configs: &BTreeMap<String, String>| -> usize {
        number(configs, "max.message.bytes")
            .and_then(|b| usize::try_from(b).ok())
            .unwrap_or(1_048_588)
    };
    let output_retention = number(&output, "retention.ms").filter(|ms| *ms >= 0);
    if let (true, Some(ms)) = (created_output, output_retention) {
        tracing::info!(
            target: LOG,
            "🗓️  `{}` keeps bars for {} (retention.ms): bars of older windows are deleted within minutes; to aggregate older data, use a new --output-topic with `--output-retention forever`",
            settings.output_topic,
            retention_text(ms)
        );
    }
    Ok(Topics {
        dlq_max_bytes: max_bytes(&dlq),
        output_max_bytes: max_bytes(&output),
        output_retention,
    })
}

/// The input topic's own `min.insync.replicas`, for the topics the job creates: they are
/// kept as safely as the input is. Nothing when the input has the broker's default, or when
/// its settings cannot be read (the job then says so and goes on).
fn input_durability(admin: &Admin, settings: &Settings) -> Vec<(String, String)> {
    if !settings.read_topic_configs {
        return Vec::new();
    }
    let configs = match admin.custom_configs(&settings.topic) {
        Ok(configs) => configs,
        Err(e) => {
            tracing::warn!(target: LOG, "{e:#}; the topics this job creates get the broker's default min.insync.replicas");
            return Vec::new();
        }
    };
    configs
        .into_iter()
        .filter(|(k, _)| k == "min.insync.replicas")
        .collect()
}

fn describe_start(kafka: &Kafka, s: &Settings) {
    let kind = if s.rules.windows.is_tumbling() {
        "tumbling"
    } else {
        "hopping"
    };
    tracing::info!(
        target: LOG,
        "🚀 Aggregating `{}` → `{}` on {} ({kind} windows of {}, lateness {}, {}, group `{}`, instance `{}`)",
        s.topic,
        s.output_topic,
        kafka.brokers(),
        humantime::format_duration(Duration::from_millis(u64::try_from(s.rules.windows.size_ms()).unwrap_or(0))),
        humantime::format_duration(Duration::from_millis(u64::try_from(s.rules.lateness).unwrap_or(0))),
        match s.guarantee {
            Guarantee::ExactlyOnce => "exactly-once",
            Guarantee::AtLeastOnce => "at-least-once",
        },
        s.group,
        s.instance_id
    );
}

/// Records handled between two looks at the clock.
const BATCH: usize = 2048;

/// The longest wait for input, and the one while a commit is under way.
const IDLE_WAIT: Duration = Duration::from_millis(100);
const COMMIT_CHECK: Duration = Duration::from_millis(2);

fn run_loop(
    consumer: &BaseConsumer<JobContext>,
    settings: &Settings,
    stop: &signals::Stop,
) -> anyhow::Result<Ended> {
    let started = Instant::now();
    let mut next_commit = started + settings.commit_interval;
    let mut progress = progress::Progress::new(settings, started);
    let mut published = settings
        .metrics
        .as_ref()
        .map(|_| metrics::Publisher::new(&settings.topic, started));
    let mut last_error: Option<String> = None;
    while !stop.requested() {
        let now = Instant::now();
        // Rebalances and errors arrive through the consumer itself; records (normally) not.
        match consumer.poll(Duration::ZERO) {
            Some(Ok(message)) => {
                consumer
                    .context()
                    .with(|p| p.on_message(&Input::from_message(&message), now))?;
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                consumer.context().with(|p| p.caught_up(partition));
            }
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                return Ok(Ended::ConsumerFailed(code));
            }
            Some(Err(err)) => {
                consumer.context().with(Pipeline::consumer_trouble);
                // The same error repeats while, say, the broker is down: say it once.
                let text = err.to_string();
                if last_error.as_ref() != Some(&text) {
                    tracing::warn!(target: LOG, "reading `{}`: {text}", settings.topic);
                    last_error = Some(text);
                }
            }
            None => {}
        }
        if let Some(why) = consumer.context().with(|p| p.failure().map(str::to_string)) {
            return Err(anyhow::Error::msg(why));
        }
        let committing = consumer.context().with(|p| p.committing());
        // While a commit runs, look for its end often: the next one waits for it.
        let mut wait = next_commit
            .saturating_duration_since(now)
            .min(if committing { COMMIT_CHECK } else { IDLE_WAIT });
        if settings.emit == EmitMode::Update {
            wait = wait.min(settings.update_interval);
        }
        consumer.context().drain(wait, now)?;
        let now = Instant::now();
        consumer.context().with(|p| -> anyhow::Result<()> {
            p.send_updates(now);
            p.poll_commit(consumer)?;
            if p.must_wait() {
                p.finish_commit(consumer)?;
            }
            if now >= next_commit && !p.committing() {
                p.start_commit(consumer)?;
                next_commit = now + settings.commit_interval;
            }
            Ok(())
        })?;
        if settings.stop_at_end && consumer.context().with(|p| p.all_caught_up()) {
            tracing::info!(target: LOG, "🏁 Every partition is read to its end; stopping (--stop-at-end)");
            break;
        }
        if progress.due(now) {
            let snapshot = consumer.context().with(|p| p.snapshot());
            progress.report(consumer, &snapshot, now);
        }
        if let Some(publisher) = published.as_mut().filter(|p| p.due(now)) {
            let snapshot = consumer.context().with(|p| p.snapshot());
            publisher.publish(consumer, &snapshot, now);
        }
    }
    Ok(Ended::Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_is_replaced_until_fenced_twice_or_failing_too_often_within_a_minute() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let fenced = RDKafkaErrorCode::FencedInstanceId;
        // Fenced once (a broker restart), and once more after the window: replaced both times.
        let mut restarts = Restarts::default();
        assert!(restarts.after(fenced, at(0)).is_ok());
        assert!(restarts.after(fenced, at(61)).is_ok());
        // Fenced twice within the window: a twin.
        let e = restarts.after(fenced, at(70)).unwrap_err().to_string();
        assert!(e.contains("same --instance-id"), "{e}");
        // Other fatal errors: up to MOST replacements within the window.
        let other = RDKafkaErrorCode::InconsistentGroupProtocol;
        let mut restarts = Restarts::default();
        for s in 0..Restarts::MOST as u64 {
            assert!(restarts.after(other, at(s)).is_ok());
        }
        let e = restarts.after(other, at(10)).unwrap_err().to_string();
        assert!(e.contains("6 times within 1m"), "{e}");
        // Spread out, never.
        let mut restarts = Restarts::default();
        for s in 0..20 {
            assert!(restarts.after(other, at(s * 15)).is_ok());
        }
    }
}
