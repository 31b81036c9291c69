//! "Is Kafka there?": the first request of every command, which turns "unreachable" into
//! one clear error naming the brokers, librdkafka's cause and what to check.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::metadata::Metadata;
use rdkafka::producer::{BaseProducer, Producer as _};

use super::client::{CreateClient as _, Kafka};
use super::observer::Observer;
use crate::exit::Failure;

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
}
