//! CreateTopics through librdkafka's C API, because rust-rdkafka's `create_topics` keeps
//! only the error code and drops the broker's own explanation (the CreateTopics response's
//! error message), which is what tells a user why a topic was refused.

use std::time::Duration;

use anyhow::{anyhow, bail};
use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;

use super::native::{self, c_string, ErrBuf, NoAnswer, Refusal};

/// The topic to create, as the broker will be asked for it.
pub struct Spec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub replication: i32,
    pub configs: &'a [(String, String)],
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
    let topic = NewTopic::new(spec)?;
    let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATETOPICS;
    let send = |queue, options| {
        let mut topics = [topic.0];
        // SAFETY: the new topic and the options are copied by the call.
        unsafe { rd::rd_kafka_CreateTopics(client, topics.as_mut_ptr(), 1, options, queue) }
    };
    native::request(client, op, timeout, stop, send, |event| {
        let result = event.result("CreateTopics", rd::rd_kafka_event_CreateTopics_result)?;
        let mut n = 0;
        // SAFETY: the result and its topics live as long as `event`.
        unsafe {
            let topics = rd::rd_kafka_CreateTopics_result_topics(result, &mut n);
            event.single_topic(topics, n, "CreateTopics")
        }
    })
}

/// The request's topic, destroyed on drop.
struct NewTopic(*mut rd::rd_kafka_NewTopic_t);

impl NewTopic {
    fn new(spec: &Spec) -> anyhow::Result<NewTopic> {
        let mut err = ErrBuf::new();
        let name = c_string(spec.name)?;
        // SAFETY: every pointer passed is valid for the call.
        let topic = unsafe {
            rd::rd_kafka_NewTopic_new(
                name.as_ptr(),
                spec.partitions,
                spec.replication,
                err.ptr(),
                err.len(),
            )
        };
        if topic.is_null() {
            bail!("{}", err.message());
        }
        let topic = NewTopic(topic);
        for (key, value) in spec.configs {
            let (k, v) = (c_string(key)?, c_string(value)?);
            // SAFETY: the topic is live; the strings are copied.
            let code = RDKafkaErrorCode::from(unsafe {
                rd::rd_kafka_NewTopic_set_config(topic.0, k.as_ptr(), v.as_ptr())
            });
            if code != RDKafkaErrorCode::NoError {
                return Err(anyhow!("topic setting `{key}={value}`: {code}"));
            }
        }
        Ok(topic)
    }
}

impl Drop for NewTopic {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_NewTopic_new and destroyed once.
        unsafe { rd::rd_kafka_NewTopic_destroy(self.0) }
    }
}

/// The refusal to create `topic` in the broker's words, with a hint where one helps;
/// `brokers` is the cluster's size, when known.
pub fn explain(refusal: &Refusal, topic: &str, brokers: Option<usize>) -> String {
    let mut out = refusal.explain(&format!("create `{topic}`"));
    if let Some(hint) = hint(refusal, brokers) {
        out.push_str("\n  hint: ");
        out.push_str(&hint);
    }
    out
}

fn hint(refusal: &Refusal, brokers: Option<usize>) -> Option<String> {
    let words = refusal.message.as_deref().unwrap_or_default();
    match refusal.code {
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

#[cfg(test)]
mod tests {
    use super::{explain, Refusal};
    use rdkafka::error::RDKafkaErrorCode;

    #[test]
    fn the_brokers_words_come_first_with_a_hint_where_one_helps() {
        let refusal = Refusal {
            code: RDKafkaErrorCode::InvalidReplicationFactor,
            message: Some("Unable to replicate the partition 3 time(s)".into()),
        };
        assert_eq!(
            explain(&refusal, "t", Some(1)),
            "the broker refused to create `t`: Unable to replicate the partition 3 time(s) \
             (InvalidReplicationFactor)\n  hint: the cluster has 1 broker, and each replica \
             of a partition needs a broker of its own"
        );
        let collision = Refusal {
            code: RDKafkaErrorCode::InvalidTopic,
            message: Some("Topic 'a_b.c' collides with existing topic: a.b_c".into()),
        };
        assert!(explain(&collision, "a_b.c", Some(3)).contains("hint: Kafka counts `.` and `_`"));
    }

    #[test]
    fn without_the_brokers_words_the_code_is_described() {
        let refusal = Refusal {
            code: RDKafkaErrorCode::PolicyViolation,
            message: None,
        };
        assert_eq!(
            explain(&refusal, "t", Some(1)),
            "the broker refused to create `t`: PolicyViolation (Broker: Policy violation)"
        );
    }
}
