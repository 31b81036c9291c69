//! The only place that builds a librdkafka `ClientConfig`, and the place where "Kafka is
//! unreachable" becomes one clear error naming the brokers and the real cause.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer as _, ProducerContext};

use crate::cli::GlobalArgs;
use crate::exit::Failure;

/// Connection settings shared by every client a command makes.
#[derive(Debug, Clone)]
pub struct Kafka {
    brokers: String,
    overrides: Vec<(String, String)>,
}

/// What a producer is tuned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerProfile {
    /// A few records per second: send each at once.
    Latency,
    /// As many records per second as the broker takes: batch.
    Throughput,
}

impl Kafka {
    pub fn new(global: &GlobalArgs) -> Self {
        Kafka::with_brokers(&global.brokers, global.config.clone())
    }

    /// Settings for `brokers` other than the command line's (the demo's embedded cluster).
    pub fn with_brokers(brokers: &str, overrides: Vec<(String, String)>) -> Self {
        Kafka {
            brokers: brokers.to_string(),
            overrides,
        }
    }

    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    fn base(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers)
            .set("client.id", "stockstream")
            .set_log_level(RDKafkaLogLevel::Warning);
        cfg
    }

    /// `-X key=value` wins over stockstream's own choices, as in kcat.
    fn finish(&self, mut cfg: ClientConfig) -> ClientConfig {
        for (k, v) in &self.overrides {
            cfg.set(k, v);
        }
        tracing::debug!(config = %redacted(&cfg), "client configuration");
        cfg
    }

    /// An idempotent producer with acks=all that places keys as the Java client does.
    pub fn producer_config(
        &self,
        profile: ProducerProfile,
        delivery_timeout: Duration,
    ) -> ClientConfig {
        let mut cfg = self.base();
        cfg.set("enable.idempotence", "true")
            .set("acks", "all")
            // murmur2 so a key lands where the Java client and kafka-python put it.
            .set("partitioner", "murmur2_random")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            );
        match profile {
            ProducerProfile::Latency => {
                cfg.set("linger.ms", "0");
            }
            ProducerProfile::Throughput => {
                cfg.set("linger.ms", "20")
                    .set("batch.num.messages", "100000")
                    .set("batch.size", "1000000")
                    .set("queue.buffering.max.messages", "1000000")
                    .set("queue.buffering.max.kbytes", "1048576");
            }
        }
        self.finish(cfg)
    }

    /// A consumer in `group` that commits only when told to, and that starts a partition
    /// with no committed offset at its earliest record.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut cfg = self.base();
        cfg.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        self.finish(cfg)
    }

    /// The consumer of `aggregate`: offsets committed only by the job (with its checkpoint in
    /// the metadata), only committed transactions read, end of partition reported (an idle
    /// partition must be caught up first), and static membership under a stable instance id
    /// so a restarted instance gets its partitions back without a rebalance.
    pub fn stream_consumer_config(&self, group: &str, start: &str, instance: &str) -> ClientConfig {
        let mut cfg = self.base();
        cfg.set("group.id", group)
            .set("group.instance.id", instance)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", start)
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", "10000")
            .set("fetch.wait.max.ms", "100")
            // Bounds the prefetched backlog held in memory, whatever the partition count.
            .set("queued.max.messages.kbytes", "4096")
            // …and a full queue is re-checked after 5ms, not librdkafka's default second,
            // which would leave a fast consumer waiting with nothing to do.
            .set("fetch.queue.backoff.ms", "5");
        self.finish(cfg)
    }

    /// The producer of `aggregate`: idempotent, and transactional under `transactional_id`
    /// when given. A short transaction timeout lets a crashed instance's open transaction
    /// abort quickly, so whoever takes its partitions over is not held up.
    pub fn stream_producer_config(&self, transactional_id: Option<&str>) -> ClientConfig {
        let mut cfg = self.base();
        cfg.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "10000");
        if let Some(id) = transactional_id {
            cfg.set("transactional.id", id)
                .set("transaction.timeout.ms", "10000");
        }
        self.finish(cfg)
    }

    /// A client used only for metadata and admin requests.
    pub fn admin_config(&self) -> ClientConfig {
        self.finish(self.base())
    }
}

/// The configuration as text with every secret replaced, safe for logs.
pub fn redacted(cfg: &ClientConfig) -> String {
    let mut pairs: Vec<_> = cfg.config_map().iter().collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| {
            if is_secret(k) {
                format!("{k}=[redacted]")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_secret(key: &str) -> bool {
    ["password", "secret", "ssl.key.pem", "sasl.jaas", "token"]
        .iter()
        .any(|s| key.contains(s))
}

/// A client context that remembers librdkafka's last error, so that a failed request can
/// name the real cause (connection refused, DNS, TLS, authentication) instead of a timeout.
///
/// Until the first successful request its messages stay at debug level (the one clear
/// error at the end says it all); after that, trouble such as a lost broker is a warning.
#[derive(Default)]
pub struct Observer {
    last_error: Mutex<Option<String>>,
    connected: AtomicBool,
}

impl Observer {
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// From now on, librdkafka's errors are logged as warnings.
    pub fn connected(&self) {
        self.connected.store(true, Ordering::Relaxed);
    }

    /// Records an error from librdkafka; logs it once per distinct message.
    pub fn record(&self, reason: &str) {
        let Ok(mut last) = self.last_error.lock() else {
            return;
        };
        if last.as_deref() == Some(reason) {
            return;
        }
        // "n/n brokers are down" follows the specific cause; keep the cause.
        if last.is_some() && reason.contains("brokers are down") {
            return;
        }
        if self.connected.load(Ordering::Relaxed) {
            tracing::warn!(target: "librdkafka", "{reason}");
        } else {
            tracing::debug!(target: "librdkafka", "{reason}");
        }
        *last = Some(reason.to_string());
    }

    /// librdkafka's log callback (called from its own threads).
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            // Drop librdkafka's "[thrd:…]: " prefix: the message names the broker itself.
            let message = match message.split_once("]: ") {
                Some((prefix, rest)) if prefix.starts_with("[thrd:") => rest,
                _ => message,
            };
            self.record(message);
        } else {
            tracing::debug!(target: "librdkafka", "{facility}: {message}");
        }
    }
}

/// Implements `ClientContext` for a context type with an `observer: Observer` field, so its
/// client reports librdkafka's errors and logs the one way stockstream does.
macro_rules! observed_context {
    ($context:ty) => {
        impl rdkafka::client::ClientContext for $context {
            fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
                self.observer.log(level, fac, log_message);
            }

            fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
                rdkafka::client::ClientContext::error(&self.observer, error, reason);
            }
        }
    };
}
pub(crate) use observed_context;

impl ConsumerContext for Observer {}

impl ProducerContext for Observer {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, (): ()) {}
}

impl ClientContext for Observer {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        Observer::log(self, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::trace!(target: "librdkafka", "{error}");
        self.record(reason);
    }
}

/// Asks the cluster for its metadata within `timeout`, or explains who could not be
/// reached and why (connection refused, unknown host, TLS, authentication).
///
/// A client of its own, polled while it waits: librdkafka reports the cause of a failed
/// connection only as an event, which a blocking metadata request alone never serves.
pub fn reach(kafka: &Kafka, timeout: Duration) -> anyhow::Result<Metadata> {
    let probe: BaseProducer<Observer> = kafka
        .admin_config()
        .create_with_context(Observer::default())
        .context("creating a Kafka client (check the -X settings)")?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match probe
            .client()
            .fetch_metadata(None, left.min(Duration::from_millis(250)))
        {
            Ok(metadata) => return Ok(metadata),
            Err(err) => {
                probe.poll(Duration::ZERO);
                if Instant::now() >= deadline {
                    let cause = probe
                        .context()
                        .last_error()
                        .unwrap_or_else(|| err.to_string());
                    return Err(Failure::Unreachable {
                        brokers: kafka.brokers().to_string(),
                        timeout: humantime::format_duration(timeout).to_string(),
                        cause,
                    }
                    .into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_the_text() {
        let mut cfg = ClientConfig::new();
        cfg.set("sasl.password", "hunter2")
            .set("ssl.key.password", "s3cret")
            .set("sasl.username", "alice");
        let text = redacted(&cfg);
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(text.contains("sasl.username=alice"), "{text}");
    }

    #[test]
    fn overrides_win() {
        let kafka = Kafka {
            brokers: "b:1".into(),
            overrides: vec![("linger.ms".into(), "7".into())],
        };
        let cfg = kafka.producer_config(ProducerProfile::Throughput, Duration::from_secs(5));
        assert_eq!(cfg.get("linger.ms"), Some("7"));
        assert_eq!(cfg.get("partitioner"), Some("murmur2_random"));
        assert_eq!(cfg.get("message.timeout.ms"), Some("5000"));
    }

    #[test]
    fn a_consumer_commits_only_when_told_and_starts_at_the_earliest_record() {
        let kafka = Kafka {
            brokers: "b:1".into(),
            overrides: vec![],
        };
        let cfg = kafka.consumer_config("g");
        assert_eq!(cfg.get("group.id"), Some("g"));
        assert_eq!(cfg.get("enable.auto.commit"), Some("false"));
        assert_eq!(cfg.get("auto.offset.reset"), Some("earliest"));
    }
}
