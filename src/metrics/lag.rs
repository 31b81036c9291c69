//! Consumer lag per partition for the jobs that read a topic: each owned partition's records
//! between the job's position and the partition's end as librdkafka last heard it from a
//! fetch, so publishing it sends no request to the broker.

use std::ffi::CString;

use metrics::gauge;
use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::Offset;

/// The lag gauge `name` of the partitions of `topic` a consumer owns.
pub struct Lag {
    name: &'static str,
    topic: CString,
}

impl Lag {
    pub fn new(name: &'static str, topic: &str) -> Self {
        Lag {
            name,
            // A topic name has no NUL (TopicName's rules); an empty name finds no partition.
            topic: CString::new(topic).unwrap_or_default(),
        }
    }

    /// Sets the gauge of every partition `consumer` has a position in.
    pub fn publish<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let Ok(positions) = consumer.position() else {
            return;
        };
        for e in positions.elements() {
            let Offset::Offset(at) = e.offset() else {
                continue;
            };
            if let Some(end) = self.cached_end(consumer, e.partition()) {
                gauge!(self.name, "partition" => e.partition().to_string())
                    .set((end - at).max(0) as f64);
            }
        }
    }

    fn cached_end<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        partition: i32,
    ) -> Option<i64> {
        let (mut low, mut high) = (0_i64, 0_i64);
        // SAFETY: the client outlives the call, the topic is a NUL-terminated string, and
        // librdkafka only writes the two offsets.
        let err = unsafe {
            rdsys::rd_kafka_get_watermark_offsets(
                consumer.client().native_ptr(),
                self.topic.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        (err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
    }
}
