//! The settings of every client stockstream makes, the only place that builds a librdkafka
//! `ClientConfig`, and the one way clients are created (refusals as usage errors, without
//! secrets).

use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::KafkaError;

use super::library;
use super::setting::{self, Setting, PASSWORD_ENV};
use crate::exit::Failure;

/// Connection settings shared by every client a command makes.
#[derive(Debug, Clone)]
pub struct Kafka {
    brokers: String,
    overrides: Vec<Setting>,
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
    /// Settings for `brokers` with the `given` client settings (a profile's and -X, or -X
    /// alone on the demo's embedded cluster). STOCKSTREAM_SASL_PASSWORD gives
    /// `sasl.password` unless one of them does.
    pub fn with_brokers(brokers: &str, given: &[Setting]) -> Self {
        let env_password = std::env::var(PASSWORD_ENV).ok();
        Kafka {
            brokers: brokers.to_string(),
            overrides: setting::with_env_password(env_password, given),
        }
    }

    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    fn base(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers)
            .set("client.id", "stockstream")
            // Info: librdkafka reports a dropped connection at this level, and its reason
            // is the cause a failed connection attempt should name.
            .set_log_level(RDKafkaLogLevel::Info);
        cfg
    }

    /// `-X key=value` wins over stockstream's own choices, as in kcat.
    fn finish(&self, mut cfg: ClientConfig) -> ClientConfig {
        for s in &self.overrides {
            cfg.set(s.key(), s.value());
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
            // Bounds the prefetched backlog held in memory, whatever the partition count. A
            // small queue is also faster: what is fetched is still in the cache when it is
            // read, and freed memory is reused at once (docs/BENCHMARKS.md).
            .set("queued.max.messages.kbytes", "1024")
            // …and a full queue is re-checked after 1ms, not librdkafka's default second,
            // which would leave a fast consumer waiting with nothing to do.
            .set("fetch.queue.backoff.ms", "1");
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
            .set("message.timeout.ms", "10000")
            // A transaction begun right after a commit is refused (CONCURRENT_TRANSACTIONS)
            // until the broker has written the commit's markers; librdkafka asks again after
            // this backoff, doubling up to the maximum. Its defaults (100 ms, doubling up to
            // 1 s) would add 100 ms or more to every commit of back-to-back transactions
            // (Kafka's Java client asks again every 20 ms here).
            .set("retry.backoff.ms", "5")
            .set("retry.backoff.max.ms", "20");
        if let Some(id) = transactional_id {
            cfg.set("transactional.id", id).set(
                "transaction.timeout.ms",
                TRANSACTION_TIMEOUT.as_millis().to_string(),
            );
        }
        self.finish(cfg)
    }

    /// A client used only for metadata and admin requests.
    pub fn admin_config(&self) -> ClientConfig {
        self.finish(self.base())
    }
}

/// Creating a client with an error that never quotes a secret: librdkafka's message for a
/// refused setting holds its value (`-X sasl.pasword=…`, a typo, would show the password).
/// A refusal is a usage error (exit 2): each `-X` was checked alone as it was parsed, so what
/// is left is a profile's setting or a combination (`acks=1` with idempotence, a missing
/// certificate file).
pub trait CreateClient {
    fn create_client<C, T>(&self, context: C) -> anyhow::Result<T>
    where
        C: ClientContext,
        T: FromClientConfigAndContext<C>;
}

impl CreateClient for ClientConfig {
    fn create_client<C, T>(&self, context: C) -> anyhow::Result<T>
    where
        C: ClientContext,
        T: FromClientConfigAndContext<C>,
    {
        self.create_with_context(context).map_err(|e| {
            let (what, cause) = match e {
                KafkaError::ClientConfig(_, description, key, value) => (
                    format!(
                        "librdkafka refused the setting `{:?}`",
                        Setting::new(&key, &value)
                    ),
                    description,
                ),
                KafkaError::ClientCreation(cause) => {
                    ("librdkafka refused the client settings".to_string(), cause)
                }
                other => return anyhow::Error::new(other),
            };
            let settings = self
                .config_map()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()));
            Failure::Setting {
                what,
                cause: setting::without_secrets(settings, cause.trim()),
                hint: format!(
                    "check the -X settings and the profile's (-v shows the whole client \
                     configuration); {}",
                    library::settings_hint()
                ),
            }
            .into()
        })
    }
}

/// The configuration as text with every secret replaced, safe for logs.
pub fn redacted(cfg: &ClientConfig) -> String {
    let mut pairs: Vec<_> = cfg.config_map().iter().collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{:?}", Setting::new(k, v)))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Kafka {
    /// The reader of `consume`: partitions assigned, never subscribed, so there is no group
    /// membership and no rebalance; offsets committed only when told to, and only for a
    /// named `group` (the client needs a group id to be assigned partitions at all; without
    /// one it gets a fixed id that nothing ever commits under). The end of each partition
    /// is reported, and fetches are sized for draining a backlog.
    pub fn reader_config(&self, group: Option<&str>, isolation: &str) -> ClientConfig {
        let mut cfg = self.base();
        cfg.set("group.id", group.unwrap_or("stockstream-consume"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Offsets are chosen before assigning; one out of range (deleted meanwhile by
            // retention) starts at the earliest record left.
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", isolation)
            .set("enable.partition.eof", "true")
            // A new record is seen within 100 ms when following.
            .set("fetch.wait.max.ms", "100")
            // Large fetches for a backlog: fewer round trips per record…
            .set("max.partition.fetch.bytes", "4194304")
            // …into a small prefetch queue, re-checked after 1 ms when full: as for
            // aggregate, what is fetched is still in the cache when it is written out.
            .set("queued.max.messages.kbytes", "1024")
            .set("fetch.queue.backoff.ms", "1");
        self.finish(cfg)
    }

    /// A consumer that only looks (the dashboard): partitions assigned by hand, so never a
    /// member of `group` and never committing to it (librdkafka assigns only in a group; the
    /// group's committed offsets can be read), topics never created by asking for them.
    /// `committed_only`: read only what committed transactions wrote (bars, dead letters).
    pub fn looking_consumer_config(&self, group: &str, committed_only: bool) -> ClientConfig {
        let mut cfg = self.base();
        cfg.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", "100")
            // A broker that comes back is found again within seconds, not librdkafka's
            // default of up to ten.
            .set("reconnect.backoff.max.ms", "2000")
            .set(
                "isolation.level",
                if committed_only {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            );
        self.finish(cfg)
    }
}

/// How long a transaction of `aggregate` may stay open before its coordinator aborts it.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The transaction timeout a producer configuration asks for (`-X transaction.timeout.ms`
/// wins over the default).
pub fn transaction_timeout(config: &ClientConfig) -> Duration {
    config
        .get("transaction.timeout.ms")
        .and_then(|ms| ms.parse().ok())
        .map_or(TRANSACTION_TIMEOUT, Duration::from_millis)
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
            overrides: vec![Setting::new("linger.ms", "7")],
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
