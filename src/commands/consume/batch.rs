//! Records taken from librdkafka a batch at a time. A poll per record costs a queue lock
//! and several clock reads in librdkafka and rust-rdkafka: in a drain to /dev/null that
//! was a third of stockstream's CPU time (perf, docs/BENCHMARKS.md). So each partition's
//! fetch queue is forwarded to one queue of our own, read a whole batch per call; the
//! consumer's own queue is left with errors and logs only.

use std::ffi::CString;
use std::ptr::NonNull;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};

use super::record::Rec;

/// What one message of a batch is.
pub enum Taken<'a> {
    Record(Rec<'a>),
    /// The partition has been read to its end as the broker knows it.
    End(i32),
    /// A consumer error, as librdkafka words it.
    Error(String),
}

/// Must be dropped before its consumer: librdkafka cannot shut a client down while
/// handles on its queues are alive.
pub struct Batches {
    shared: NonNull<rdsys::rd_kafka_queue_t>,
    routed: Vec<NonNull<rdsys::rd_kafka_queue_t>>,
    slots: Vec<*mut rdsys::rd_kafka_message_t>,
    /// Whether records are read with their headers (not for `-o raw`).
    headers: bool,
}

impl Batches {
    /// Routes `partitions` of `topic` to one queue; call before they are assigned, so that
    /// none of their records takes the consumer's own queue.
    pub fn route<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        topic: &str,
        partitions: impl Iterator<Item = i32>,
        size: usize,
        headers: bool,
    ) -> anyhow::Result<Self> {
        let rk = consumer.client().native_ptr();
        // SAFETY: a new queue on a live client; NonNull checks the result.
        let shared = NonNull::new(unsafe { rdsys::rd_kafka_queue_new(rk) })
            .context("creating the consumer's batch queue")?;
        let mut batches = Batches {
            shared,
            routed: Vec::new(),
            slots: vec![std::ptr::null_mut(); size.max(1)],
            headers,
        };
        let topic = CString::new(topic).context("a topic name without NUL")?;
        for p in partitions {
            // SAFETY: a valid C string; librdkafka creates the partition's queue if needed.
            let queue = unsafe { rdsys::rd_kafka_queue_get_partition(rk, topic.as_ptr(), p) };
            let queue = NonNull::new(queue).context("routing a partition's records")?;
            // SAFETY: both are live queue handles.
            unsafe { rdsys::rd_kafka_queue_forward(queue.as_ptr(), shared.as_ptr()) };
            batches.routed.push(queue);
        }
        Ok(batches)
    }

    /// Takes what is waiting, or waits up to `wait` for a first message and takes what came
    /// with it; hands each to `each` in order until it says stop (`true`). Returns how many
    /// were taken; every one is released, handed out or not.
    pub fn take(
        &mut self,
        wait: Duration,
        mut each: impl FnMut(Taken<'_>) -> anyhow::Result<bool>,
    ) -> anyhow::Result<usize> {
        let mut n = self.consume(0, self.slots.len(), 0);
        if n == 0 && !wait.is_zero() {
            let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
            // A batch of one returns as soon as one message is there; then the rest.
            n = self.consume(ms, 1, 0);
            if n > 0 {
                n += self.consume(0, self.slots.len() - 1, 1);
            }
        }
        let owned: Vec<Owned> = self.slots[..n]
            .iter()
            .filter_map(|p| NonNull::new(*p).map(Owned))
            .collect();
        for m in &owned {
            if each(m.taken(self.headers))? {
                break;
            }
        }
        Ok(n)
    }

    fn consume(&mut self, timeout_ms: i32, size: usize, at: usize) -> usize {
        // SAFETY: `slots[at..at + size]` is room for `size` message pointers.
        let got = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.shared.as_ptr(),
                timeout_ms,
                self.slots.as_mut_ptr().add(at),
                size,
            )
        };
        usize::try_from(got).unwrap_or(0)
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        for queue in self.routed.drain(..) {
            // SAFETY: live handles, each released once; forwarding to null restores the
            // partition's own queue.
            unsafe {
                rdsys::rd_kafka_queue_forward(queue.as_ptr(), std::ptr::null_mut());
                rdsys::rd_kafka_queue_destroy(queue.as_ptr());
            }
        }
        // SAFETY: released once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.shared.as_ptr()) };
    }
}

/// A message of a batch, released when dropped.
struct Owned(NonNull<rdsys::rd_kafka_message_t>);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: each message a batch returned is released exactly once.
        unsafe { rdsys::rd_kafka_message_destroy(self.0.as_ptr()) };
    }
}

impl Owned {
    fn taken(&self, headers: bool) -> Taken<'_> {
        // SAFETY: the message stays valid while `self` lives; what is borrowed borrows it.
        let m = unsafe { self.0.as_ref() };
        match m.err {
            rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => {
                // SAFETY: as above.
                Taken::Record(unsafe { Rec::of_raw(self.0.as_ptr(), headers) })
            }
            rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => Taken::End(m.partition),
            err => {
                // SAFETY: librdkafka's static description of the code.
                let text = unsafe { std::ffi::CStr::from_ptr(rdsys::rd_kafka_err2str(err)) };
                Taken::Error(text.to_string_lossy().into_owned())
            }
        }
    }
}
