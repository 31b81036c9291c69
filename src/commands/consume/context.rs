//! The consumer's client context: librdkafka's errors and logs go where every client's go
//! (the `Observer`), except the end-of-partition news, which librdkafka also sends as an
//! error event and which is not trouble here: the reading loop acts on it.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::kafka::Observer;

#[derive(Default)]
pub struct Reader {
    pub observer: Observer,
}

impl ClientContext for Reader {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.observer.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            ClientContext::error(&self.observer, error, reason);
        }
    }
}

impl ConsumerContext for Reader {}
