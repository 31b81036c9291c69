//! CreateTopics through librdkafka's C API, because rust-rdkafka's `create_topics` keeps
//! only the error code and drops the broker's own explanation (the CreateTopics response's
//! error message), which is what tells a user why a topic was refused.

use std::ffi::{c_char, CStr, CString};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;

/// The topic to create, as the broker will be asked for it.
pub struct Spec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub replication: i32,
    pub configs: &'a [(String, String)],
}

/// The broker's answer for the topic: its error code, and its words when it sent any.
pub struct Refusal {
    pub code: RDKafkaErrorCode,
    pub message: Option<String>,
}

/// How the wait for the answer ended without one.
pub enum NoAnswer {
    TimedOut,
    Stopped,
}

/// Sends one CreateTopics request on `client` and waits up to `timeout` for its answer,
/// giving up as soon as `stop()` says so. `Ok(Ok(()))`: created; `Ok(Err(refusal))`: the
/// broker refused; `Err`: no answer, or librdkafka refused the request itself.
pub fn create(
    client: *mut rd::rd_kafka_t,
    spec: &Spec,
    timeout: Duration,
    stop: impl Fn() -> bool,
) -> anyhow::Result<Result<Result<(), Refusal>, NoAnswer>> {
    let queue = Queue::new(client);
    send(client, spec, timeout, queue.0)?;
    match wait(&queue, timeout, stop) {
        Ok(event) => event.topic_result().map(Ok),
        Err(no) => Ok(Err(no)),
    }
}

/// Waits up to `timeout` for the answer on `queue`, giving up as soon as `stop()` says so.
/// Shared with the consumer-group requests (`groups::offsets`).
pub(super) fn wait(
    queue: &Queue,
    timeout: Duration,
    stop: impl Fn() -> bool,
) -> Result<Event, NoAnswer> {
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: the queue lives until `queue` drops; a short poll keeps the stop prompt.
        let event = Event(unsafe { rd::rd_kafka_queue_poll(queue.0, 50) });
        if !event.0.is_null() {
            return Ok(event);
        }
        if stop() {
            return Err(NoAnswer::Stopped);
        }
        if Instant::now() >= deadline {
            return Err(NoAnswer::TimedOut);
        }
    }
}

fn send(
    client: *mut rd::rd_kafka_t,
    spec: &Spec,
    timeout: Duration,
    queue: *mut rd::rd_kafka_queue_t,
) -> anyhow::Result<()> {
    let mut err = [0 as c_char; 512];
    let name = CString::new(spec.name)?;
    let configs = spec
        .configs
        .iter()
        .map(|(k, v)| Ok((CString::new(k.as_str())?, CString::new(v.as_str())?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // SAFETY: every pointer passed is valid for the call; the new topic and the options are
    // copied by rd_kafka_CreateTopics and destroyed here on every path.
    unsafe {
        let topic = rd::rd_kafka_NewTopic_new(
            name.as_ptr(),
            spec.partitions,
            spec.replication,
            err.as_mut_ptr(),
            err.len(),
        );
        if topic.is_null() {
            bail!("{}", CStr::from_ptr(err.as_ptr()).to_string_lossy());
        }
        let options = rd::rd_kafka_AdminOptions_new(
            client,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATETOPICS,
        );
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        rd::rd_kafka_AdminOptions_set_request_timeout(options, millis, err.as_mut_ptr(), err.len());
        rd::rd_kafka_AdminOptions_set_operation_timeout(
            options,
            millis,
            err.as_mut_ptr(),
            err.len(),
        );
        let mut configured = Ok(());
        for ((k, v), (key, value)) in configs.iter().zip(spec.configs) {
            let code = RDKafkaErrorCode::from(rd::rd_kafka_NewTopic_set_config(
                topic,
                k.as_ptr(),
                v.as_ptr(),
            ));
            if code != RDKafkaErrorCode::NoError {
                configured = Err(anyhow!("topic setting `{key}={value}`: {code}"));
                break;
            }
        }
        if configured.is_ok() {
            let mut topics = [topic];
            rd::rd_kafka_CreateTopics(client, topics.as_mut_ptr(), 1, options, queue);
        }
        rd::rd_kafka_AdminOptions_destroy(options);
        rd::rd_kafka_NewTopic_destroy(topic);
        configured
    }
}

/// A reply queue of the client's, destroyed on drop (librdkafka keeps it alive for a
/// request still in flight).
pub(super) struct Queue(pub(super) *mut rd::rd_kafka_queue_t);

impl Queue {
    pub(super) fn new(client: *mut rd::rd_kafka_t) -> Queue {
        // SAFETY: `client` is a live client handle.
        Queue(unsafe { rd::rd_kafka_queue_new(client) })
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_queue_new and destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

/// An event polled from the reply queue, destroyed on drop.
pub(super) struct Event(pub(super) *mut rd::rd_kafka_event_t);

impl Event {
    /// The request's own failure, or the one topic's result with the broker's words.
    fn topic_result(&self) -> anyhow::Result<Result<(), Refusal>> {
        // SAFETY: the event is live until drop; strings are copied before it is destroyed.
        unsafe {
            let code = RDKafkaErrorCode::from(rd::rd_kafka_event_error(self.0));
            if code != RDKafkaErrorCode::NoError {
                let words = text(rd::rd_kafka_event_error_string(self.0));
                bail!("{}", words.unwrap_or_else(|| code.to_string()));
            }
            let result = rd::rd_kafka_event_CreateTopics_result(self.0);
            if result.is_null() {
                bail!("librdkafka answered CreateTopics with an event of another type");
            }
            let mut n = 0;
            let topics = rd::rd_kafka_CreateTopics_result_topics(result, &mut n);
            if n == 0 {
                bail!("the broker's CreateTopics answer named no topic");
            }
            let topic = *topics;
            let code = RDKafkaErrorCode::from(rd::rd_kafka_topic_result_error(topic));
            if code == RDKafkaErrorCode::NoError {
                return Ok(Ok(()));
            }
            let message = text(rd::rd_kafka_topic_result_error_string(topic));
            Ok(Err(Refusal { code, message }))
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: polled from the queue and destroyed once.
            unsafe { rd::rd_kafka_event_destroy(self.0) }
        }
    }
}

/// A C string librdkafka owns, copied; `None` when null or empty.
///
/// # Safety
/// `s` is null or a valid NUL-terminated string.
pub(super) unsafe fn text(s: *const c_char) -> Option<String> {
    if s.is_null() {
        return None;
    }
    let s = CStr::from_ptr(s).to_string_lossy().trim().to_string();
    (!s.is_empty()).then_some(s)
}

impl Refusal {
    /// The refusal in the broker's words, with a hint where one helps; `brokers` is the
    /// cluster's size, when known.
    pub fn explain(&self, topic: &str, brokers: Option<usize>) -> String {
        let code = format!("{:?}", self.code);
        let mut out = match &self.message {
            Some(words) => format!("the broker refused to create `{topic}`: {words} ({code})"),
            None => format!("the broker refused to create `{topic}`: {}", self.code),
        };
        if let Some(hint) = self.hint(brokers) {
            out.push_str("\n  hint: ");
            out.push_str(&hint);
        }
        out
    }

    fn hint(&self, brokers: Option<usize>) -> Option<String> {
        let words = self.message.as_deref().unwrap_or_default();
        match self.code {
            RDKafkaErrorCode::InvalidReplicationFactor => brokers.map(|n| {
                format!(
                    "the cluster has {}, and each replica of a partition needs a broker of its own",
                    crate::numbers::count(n as u64, "broker", "brokers")
                )
            }),
            RDKafkaErrorCode::InvalidTopic if words.contains("collides") => Some(
                "Kafka counts `.` and `_` in topic names as the same character (its metric \
                 names replace one by the other), so names that differ only there collide"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Refusal;
    use rdkafka::error::RDKafkaErrorCode;

    #[test]
    fn the_brokers_words_come_first_with_a_hint_where_one_helps() {
        let refusal = Refusal {
            code: RDKafkaErrorCode::InvalidReplicationFactor,
            message: Some("Unable to replicate the partition 3 time(s)".into()),
        };
        assert_eq!(
            refusal.explain("t", Some(1)),
            "the broker refused to create `t`: Unable to replicate the partition 3 time(s) \
             (InvalidReplicationFactor)\n  hint: the cluster has 1 broker, and each replica \
             of a partition needs a broker of its own"
        );
        let collision = Refusal {
            code: RDKafkaErrorCode::InvalidTopic,
            message: Some("Topic 'a_b.c' collides with existing topic: a.b_c".into()),
        };
        assert!(collision
            .explain("a_b.c", Some(3))
            .contains("hint: Kafka counts `.` and `_`"));
    }

    #[test]
    fn without_the_brokers_words_the_code_is_described() {
        let refusal = Refusal {
            code: RDKafkaErrorCode::PolicyViolation,
            message: None,
        };
        assert_eq!(
            refusal.explain("t", Some(1)),
            "the broker refused to create `t`: PolicyViolation (Broker: Policy violation)"
        );
    }
}
