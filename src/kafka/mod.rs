//! The only place that builds a librdkafka `ClientConfig`, and the place where "Kafka is
//! unreachable" becomes one clear error naming the brokers and the real cause.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer as _, ProducerContext};

use crate::cli::GlobalArgs;
use crate::exit::Failure;

pub mod library;
pub mod profile;
mod setting;
pub use setting::{Setting, SettingParser, PASSWORD_ENV};

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
    /// The cluster the global flags name: `-b` typed on the command line, else the
    /// profile's brokers, else STOCKSTREAM_BROKERS or the default; the profile's settings,
    /// then STOCKSTREAM_SASL_PASSWORD, then `-X` (a later one wins).
    pub fn new(global: &GlobalArgs) -> anyhow::Result<Self> {
        let Some(name) = &global.profile else {
            return Ok(Kafka::with_brokers(&global.brokers, &global.config));
        };
        let path = profile::config_path(global.config_file.as_deref())?;
        let resolved = profile::ConfigFile::load(&path)?
            .profile(name, &path)?
            .resolve(name)?;
        let brokers = match resolved.brokers {
            Some(b) if !global.brokers_typed => b,
            _ => global.brokers.clone(),
        };
        let mut given = resolved.settings;
        given.extend(global.config.iter().cloned());
        Ok(Kafka::with_brokers(&brokers, &given))
    }

    /// Settings for `brokers` other than the command line's (the demo's embedded cluster).
    /// STOCKSTREAM_SASL_PASSWORD gives `sasl.password` unless `-X` does.
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
            // this backoff, doubling. Its default of 100 ms would add 100 ms to every commit
            // of back-to-back transactions (Kafka's Java client uses 20 ms here).
            .set("retry.backoff.ms", "5");
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

/// A client context that remembers librdkafka's last error, so that a failed request can
/// name the real cause (connection refused, DNS, TLS, authentication) instead of a timeout.
///
/// Until the first successful request its messages stay at debug level (the one clear
/// error at the end says it all); after that, trouble such as a lost broker is a warning.
#[derive(Default)]
pub struct Observer {
    last_error: Mutex<Option<Cause>>,
    rejection: Mutex<Option<(Rejection, String)>>,
    connected: AtomicBool,
}

/// librdkafka's last word on what went wrong.
struct Cause {
    text: String,
    /// Only an info-level note (a dropped connection), which an error may replace.
    note: bool,
}

/// A connection the broker or the client refused for a reason that retrying cannot fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// SASL: wrong user, password or mechanism.
    Authentication,
    /// TLS: an untrusted certificate, a name mismatch, or TLS against a plaintext port.
    Tls,
    /// Mutual TLS: the broker refused this client's certificate, or wanted one.
    ClientCertificate,
}

impl Rejection {
    /// A refusal that retrying cannot fix. librdkafka also reports a handshake cut short
    /// (a timeout, a dropped connection) as an authentication or TLS error: not those.
    fn of(error: &KafkaError, reason: &str) -> Option<Rejection> {
        // The broker's TLS alert about our certificate: bad_certificate (42), unknown_ca
        // (48), certificate_required (116). librdkafka words it as a failed receive.
        let refused_ours = [
            "alert bad certificate",
            "alert unknown ca",
            "alert certificate required",
        ];
        if refused_ours.iter().any(|a| reason.contains(a)) {
            return Some(Rejection::ClientCertificate);
        }
        let transient = ["Timed out", "Disconnected", "transport", "closed", "n/a"];
        if transient.iter().any(|t| reason.contains(t)) {
            return None;
        }
        match error.rdkafka_error_code()? {
            RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
                Some(Rejection::Authentication)
            }
            RDKafkaErrorCode::SSL => Some(Rejection::Tls),
            _ => None,
        }
    }

    /// What to check, given librdkafka's own words.
    pub fn hint(self, cause: &str) -> &'static str {
        match self {
            Rejection::Authentication => {
                "the broker refused the credentials: check -X sasl.mechanism (SCRAM users exist \
                 per mechanism), -X sasl.username, and the password \
                 (STOCKSTREAM_SASL_PASSWORD or -X sasl.password=@FILE)"
            }
            Rejection::Tls if cause.contains("certificate verify failed") => {
                "the broker's certificate is not trusted: give the CA that signed it with \
                 -X ssl.ca.location=CA.pem, and connect by a name the certificate holds"
            }
            Rejection::Tls => {
                "the TLS handshake failed: is this a TLS listener (security.protocol SSL or \
                 SASL_SSL only there)? Check the ssl.* settings"
            }
            Rejection::ClientCertificate => {
                "the broker refused this client's certificate (mutual TLS): give one signed by \
                 a CA the broker trusts, with -X ssl.certificate.location=CERT.pem and \
                 -X ssl.key.location=KEY.pem (-X ssl.key.password for an encrypted key)"
            }
        }
    }
}

impl Observer {
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .ok()
            .and_then(|e| e.as_ref().map(|c| c.text.clone()))
    }

    /// The first refusal seen, with librdkafka's words for it.
    pub fn rejection(&self) -> Option<(Rejection, String)> {
        self.rejection.lock().ok().and_then(|r| r.clone())
    }

    /// Records an error event from librdkafka.
    fn error_event(&self, error: &KafkaError, reason: &str) {
        tracing::trace!(target: "librdkafka", "{error}");
        if let Some(kind) = Rejection::of(error, reason) {
            if let Ok(mut rejection) = self.rejection.lock() {
                rejection.get_or_insert_with(|| (kind, reason.to_string()));
            }
        }
        self.record(reason);
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
        if last.as_ref().is_some_and(|c| c.text == reason) {
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
        *last = Some(Cause {
            text: reason.to_string(),
            note: false,
        });
    }

    /// Keeps a cause without logging it beyond debug level, unless an error gave one.
    fn note(&self, reason: &str) {
        tracing::debug!(target: "librdkafka", "{reason}");
        if let Ok(mut last) = self.last_error.lock() {
            if last.as_ref().is_none_or(|c| c.note) {
                *last = Some(Cause {
                    text: reason.to_string(),
                    note: true,
                });
            }
        }
    }

    /// librdkafka's log callback (called from its own threads).
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // Drop librdkafka's "[thrd:…]: " prefix: the message names the broker itself.
        let text = match message.split_once("]: ") {
            Some((prefix, rest)) if prefix.starts_with("[thrd:") => rest,
            _ => message,
        };
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            self.record(text);
        } else if facility == "FAIL"
            && (level as i32) <= (RDKafkaLogLevel::Info as i32)
            && !self.connected.load(Ordering::Relaxed)
        {
            // A dropped connection is logged at info level only, yet before the first
            // answer it is the cause worth naming ("might be caused by incorrect
            // security.protocol configuration (connecting to a SSL listener?)").
            self.note(text);
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
        self.error_event(&error, reason);
    }
}

/// Asks the cluster for its metadata within `timeout`, or explains who could not be
/// reached and why (connection refused, unknown host, TLS, authentication). A refused
/// authentication or TLS handshake fails at once: waiting would not change it.
///
/// A client of its own, polled while it waits: librdkafka reports the cause of a failed
/// connection only as an event, which a blocking metadata request alone never serves.
pub fn reach(kafka: &Kafka, timeout: Duration) -> anyhow::Result<Metadata> {
    let probe: BaseProducer<Observer> = kafka
        .admin_config()
        .create_client(Observer::default())
        .context("creating a Kafka client (check the -X settings)")?;
    let started = Instant::now();
    let deadline = started + timeout;
    let mut said_waiting = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match probe
            .client()
            .fetch_metadata(None, left.min(Duration::from_millis(250)))
        {
            Ok(metadata) => return Ok(metadata),
            Err(err) => {
                // Serves every event queued meanwhile (each poll of zero serves only one):
                // the cause of a failure arrives as an error or log event.
                probe.poll(left.min(Duration::from_millis(50)));
                if let Some((kind, cause)) = probe.context().rejection() {
                    return Err(Failure::Rejected {
                        brokers: kafka.brokers().to_string(),
                        hint: kind.hint(&cause).to_string(),
                        cause,
                    }
                    .into());
                }
                // Each try lasts at most 250 ms, so a Ctrl+C is heard within about that.
                if crate::signals::stop_requested() {
                    return Err(Failure::Stopped {
                        brokers: kafka.brokers().to_string(),
                    }
                    .into());
                }
                if !said_waiting && started.elapsed() >= Duration::from_secs(1) {
                    said_waiting = true;
                    tracing::info!(
                        target: "stockstream",
                        "⏳ Waiting for Kafka at {} (up to {}; Ctrl+C stops)",
                        kafka.brokers(),
                        humantime::format_duration(timeout)
                    );
                }
                if Instant::now() >= deadline {
                    let cause = probe
                        .context()
                        .last_error()
                        .unwrap_or_else(|| err.to_string());
                    return Err(Failure::Unreachable {
                        brokers: kafka.brokers().to_string(),
                        timeout: humantime::format_duration(timeout).to_string(),
                        hint: unreachable_hint(&cause),
                        cause,
                    }
                    .into());
                }
            }
        }
    }
}

/// What to check when no broker answered, given librdkafka's last word on why.
fn unreachable_hint(cause: &str) -> String {
    let hint = if cause.contains("PLAINTEXT broker listener") {
        // A TLS client on a plaintext listener.
        "this looks like a plaintext listener: leave out -X security.protocol=SSL / SASL_SSL, \
         or connect to the broker's TLS port"
    } else if cause.contains("security.protocol") || cause.contains("in state APIVERSION_QUERY") {
        // A plaintext client on a TLS listener: the broker answers the first request with
        // a TLS alert and hangs up, while the client waits for the ApiVersion answer.
        "the broker hung up before it answered: is this a TLS listener? Then set \
         -X security.protocol=SSL (or SASL_SSL, with the sasl.* settings) and \
         -X ssl.ca.location=CA.pem"
    } else if cause.contains("might require SASL")
        || (cause.contains("Disconnected") && cause.contains("in state UP"))
    {
        // Connected, then dropped at the first request: the listener wants SASL.
        "the broker hung up right after the connection was made: does it require SASL? Then \
         set -X security.protocol=SASL_SSL (or SASL_PLAINTEXT), -X sasl.mechanism, \
         -X sasl.username and the password (STOCKSTREAM_SASL_PASSWORD)"
    } else {
        "is the broker running (`just up`, or `scripts/kafka-local start`)? \
         Are --brokers / STOCKSTREAM_BROKERS right?"
    };
    hint.to_string()
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
    fn the_hint_follows_librdkafka_s_words_for_a_wrong_security_protocol() {
        let plaintext_on_tls = "127.0.0.1:9093/bootstrap: Disconnected: connection closed by \
             peer: receive 0 after POLLIN (after 1ms in state APIVERSION_QUERY)";
        assert!(unreachable_hint(plaintext_on_tls).contains("TLS listener"));
        let tls_on_plaintext = "ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: \
             Disconnected: SSL connection closed by peer: connecting to a PLAINTEXT broker \
             listener? (after 2ms in state SSL_HANDSHAKE)";
        assert!(unreachable_hint(tls_on_plaintext).contains("plaintext listener"));
        let no_sasl = "ssl://127.0.0.1:9093/bootstrap: Disconnected: SSL connection closed by \
             peer (after 4ms in state UP)";
        assert!(unreachable_hint(no_sasl).contains("SASL"));
        let refused = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection \
             refused (after 0ms in state CONNECT)";
        assert!(unreachable_hint(refused).contains("is the broker running"));
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
