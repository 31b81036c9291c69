//! Waiting for a producer's records to be acknowledged, promptly.
//!
//! rust-rdkafka's `flush` asks librdkafka without waiting, then polls for a fixed 100 ms
//! before it asks again: every flush that does not find everything acknowledged at once
//! takes at least 100 ms. An exactly-once commit flushes its output first, so that floor
//! was added to every commit whose output was still in flight.

use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Partitioner, Producer as _, ProducerContext};

/// Waits up to `timeout` until every record sent is acknowledged (or failed), serving the
/// delivery reports on this thread meanwhile.
pub fn flush<C, Part>(producer: &BaseProducer<C, Part>, timeout: Duration) -> KafkaResult<()>
where
    Part: Partitioner,
    C: ProducerContext<Part>,
{
    flush_unless(producer, timeout, || false).map(|_| ())
}

/// As `flush`, but waits no more once `give_up` says so (it is asked about every
/// millisecond): `Ok(true)` when everything was answered, `Ok(false)` when given up.
pub fn flush_unless<C, Part>(
    producer: &BaseProducer<C, Part>,
    timeout: Duration,
    mut give_up: impl FnMut() -> bool,
) -> KafkaResult<bool>
where
    Part: Partitioner,
    C: ProducerContext<Part>,
{
    let deadline = Instant::now() + timeout;
    loop {
        // While the call lasts, librdkafka sends what lingers at once. Delivery reports
        // arrive as events that only a poll serves, so each call waits at most 1 ms and
        // the loop polls between calls.
        // SAFETY: a live producer handle.
        let err = unsafe { rdsys::rd_kafka_flush(producer.client().native_ptr(), 1) };
        match err {
            rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => return Ok(true),
            rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__TIMED_OUT => {
                if Instant::now() >= deadline {
                    return Err(KafkaError::Flush(RDKafkaErrorCode::from(err)));
                }
                if give_up() {
                    return Ok(false);
                }
                producer.poll(Duration::ZERO);
            }
            other => return Err(KafkaError::Flush(RDKafkaErrorCode::from(other))),
        }
    }
}
