//! What librdkafka says while a client works: its errors and logs, kept so that a failed
//! request can name the real cause, and a refusal that no retry can fix recognised at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryResult, ProducerContext};

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
