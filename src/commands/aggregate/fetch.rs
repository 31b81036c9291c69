//! Reading input records in batches. Polling the consumer once per record costs four clock
//! reads inside librdkafka and rust-rdkafka, which on a small VM was a fifth of the CPU
//! time of a backlog replay. Instead, each assigned partition's fetch queue is forwarded to
//! one queue of our own, drained up to a whole batch per call; the consumer itself is still
//! polled (for rebalances and errors) once per batch.

use std::collections::HashMap;
use std::ffi::CString;
use std::ptr::NonNull;
use std::time::Duration;

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message as _};

/// One input record, whichever way it was read.
pub struct Input<'a> {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub timestamp: Option<i64>,
}

impl<'a> Input<'a> {
    pub fn from_message(m: &'a BorrowedMessage<'_>) -> Self {
        Input {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key(),
            payload: m.payload(),
            timestamp: m.timestamp().to_millis(),
        }
    }
}

/// What one read from the batch queue gave.
pub enum Event<'a> {
    Record(Input<'a>),
    /// The partition has been read to its end.
    End(i32),
    /// A consumer error, as librdkafka words it.
    Error(String),
}

/// An owned librdkafka queue handle.
struct Queue(NonNull<rdsys::rd_kafka_queue_t>);

// SAFETY: librdkafka queues are thread-safe; the handle is only a reference count.
unsafe impl Send for Queue {}
// SAFETY: as above.
unsafe impl Sync for Queue {}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: the pointer came from librdkafka and is destroyed exactly once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0.as_ptr()) };
    }
}

/// An owned fetched message.
struct Fetched(NonNull<rdsys::rd_kafka_message_t>);

impl Drop for Fetched {
    fn drop(&mut self) {
        // SAFETY: each message returned by a batch consume is destroyed exactly once.
        unsafe { rdsys::rd_kafka_message_destroy(self.0.as_ptr()) };
    }
}

impl Fetched {
    fn event(&self) -> Event<'_> {
        // SAFETY: the message stays valid until `self` is dropped; slices borrow `self`.
        unsafe {
            let m = self.0.as_ref();
            if m.err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                if m.err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    return Event::End(m.partition);
                }
                let text = std::ffi::CStr::from_ptr(rdsys::rd_kafka_err2str(m.err));
                return Event::Error(text.to_string_lossy().into_owned());
            }
            let slice = |ptr: *mut std::ffi::c_void, len: usize| {
                (!ptr.is_null()).then(|| std::slice::from_raw_parts(ptr.cast::<u8>(), len))
            };
            let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
            let ts = rdsys::rd_kafka_message_timestamp(self.0.as_ptr(), &raw mut kind);
            Event::Record(Input {
                partition: m.partition,
                offset: m.offset,
                key: slice(m.key, m.key_len),
                payload: slice(m.payload, m.len),
                timestamp: (ts >= 0).then_some(ts),
            })
        }
    }
}

/// Must be dropped before its consumer: librdkafka cannot shut a client down while queue
/// handles on it are alive.
pub struct Fetcher {
    shared: Queue,
    topic: CString,
    partitions: HashMap<i32, Queue>,
    batch: Vec<*mut rdsys::rd_kafka_message_t>,
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        let partitions: Vec<i32> = self.partitions.keys().copied().collect();
        for p in partitions {
            self.detach(p);
        }
    }
}

// SAFETY: the raw message pointers in `batch` are only scratch space, empty between calls.
unsafe impl Send for Fetcher {}

impl Fetcher {
    pub fn new<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        topic: &str,
        batch: usize,
    ) -> Option<Self> {
        // SAFETY: a new queue on a live client; NonNull checks the result.
        let shared =
            NonNull::new(unsafe { rdsys::rd_kafka_queue_new(consumer.client().native_ptr()) })?;
        Some(Fetcher {
            shared: Queue(shared),
            topic: CString::new(topic).ok()?,
            partitions: HashMap::new(),
            batch: vec![std::ptr::null_mut(); batch],
        })
    }

    /// Routes a partition's records to the batch queue. Called before the partition is
    /// assigned, so none of its records ever takes the consumer's own queue.
    pub fn attach<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, partition: i32) {
        // SAFETY: topic is a valid C string; the call creates the partition's queue if needed.
        let raw = unsafe {
            rdsys::rd_kafka_queue_get_partition(
                consumer.client().native_ptr(),
                self.topic.as_ptr(),
                partition,
            )
        };
        if let Some(q) = NonNull::new(raw) {
            // SAFETY: both queues are live handles.
            unsafe { rdsys::rd_kafka_queue_forward(q.as_ptr(), self.shared.0.as_ptr()) };
            self.partitions.insert(partition, Queue(q));
        }
    }

    /// Stops routing a partition that was let go.
    pub fn detach(&mut self, partition: i32) {
        if let Some(q) = self.partitions.remove(&partition) {
            // SAFETY: a live handle; forwarding to null restores the default.
            unsafe { rdsys::rd_kafka_queue_forward(q.0.as_ptr(), std::ptr::null_mut()) };
        }
    }

    /// Takes what is waiting, or waits up to `wait` for the first record and then takes
    /// what came with it; calls `handle` on each, in order.
    pub fn drain(
        &mut self,
        wait: Duration,
        mut handle: impl FnMut(Event<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<usize> {
        let mut n = self.consume(0, self.batch.len(), 0);
        if n == 0 {
            let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
            // A batch of one returns as soon as one record is there; then take the rest.
            n = self.consume(ms, 1, 0);
            if n > 0 {
                n += self.consume(0, self.batch.len() - 1, 1);
            }
        }
        // Own every message first, so each is destroyed even if `handle` fails midway.
        let owned: Vec<Fetched> = self.batch[..n]
            .iter()
            .filter_map(|p| NonNull::new(*p).map(Fetched))
            .collect();
        for m in &owned {
            handle(m.event())?;
        }
        Ok(n)
    }

    fn consume(&mut self, timeout_ms: i32, size: usize, at: usize) -> usize {
        // SAFETY: `batch[at..at + size]` is writable space for `size` message pointers.
        let got = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.shared.0.as_ptr(),
                timeout_ms,
                self.batch.as_mut_ptr().add(at),
                size,
            )
        };
        usize::try_from(got).unwrap_or(0)
    }
}
