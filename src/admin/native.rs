//! The plumbing of admin requests made through librdkafka's C API (where rust-rdkafka
//! drops the broker's own words or lacks the request): one reply queue per request, a wait
//! bounded by `--timeout` that gives up at a stop, and the answer's event freed on every path.

use std::ffi::{c_char, CStr, CString};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;

/// How the wait for an answer ended without one.
pub enum NoAnswer {
    TimedOut,
    Stopped,
}

/// The request's own failure (librdkafka's or the broker's), with its code, so that a caller
/// can tell a passing one (a coordinator still loading) from a final one.
#[derive(Debug, thiserror::Error)]
#[error("{words}")]
pub struct Failed {
    pub code: RDKafkaErrorCode,
    pub words: String,
}

impl Failed {
    pub fn passing(&self) -> bool {
        passing(self.code)
    }
}

/// The coordinator is moving or loading its state: asking again soon works.
pub fn passing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::CoordinatorLoadInProgress
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::NotCoordinator
    )
}

/// A broker's answer for one topic or resource: its error code, and its words when it sent any.
pub struct Refusal {
    pub code: RDKafkaErrorCode,
    pub message: Option<String>,
}

impl Refusal {
    /// `Ok` when the code says no error, else the refusal with the broker's words.
    ///
    /// # Safety
    /// `message` is null or a valid NUL-terminated string.
    pub unsafe fn check(
        code: rd::rd_kafka_resp_err_t,
        message: *const c_char,
    ) -> Result<(), Refusal> {
        let code = RDKafkaErrorCode::from(code);
        if code == RDKafkaErrorCode::NoError {
            return Ok(());
        }
        Err(Refusal {
            code,
            message: text(message),
        })
    }

    /// "the broker refused to {what}: {its words} ({code})".
    pub fn explain(&self, what: &str) -> String {
        match &self.message {
            Some(words) => format!("the broker refused to {what}: {words} ({:?})", self.code),
            None => format!("the broker refused to {what}: {}", self.code),
        }
    }
}

/// Sends one request with `send` (given the reply queue and the options it must use),
/// waits up to `timeout` for its answer, giving up as soon as `stop()` says so, and reads
/// the answer with `read`. The answer's own failure (not a per-resource one) is an error.
pub fn request<T>(
    client: *mut rd::rd_kafka_t,
    op: rd::rd_kafka_admin_op_t,
    timeout: Duration,
    stop: impl Fn() -> bool,
    send: impl FnOnce(*mut rd::rd_kafka_queue_t, *const rd::rd_kafka_AdminOptions_t),
    read: impl FnOnce(&Event) -> anyhow::Result<T>,
) -> anyhow::Result<Result<T, NoAnswer>> {
    let queue = Queue::new(client);
    {
        let options = Options::new(client, op, timeout);
        send(queue.0, options.0);
    }
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: the queue lives until `queue` drops; a short poll keeps the stop prompt.
        let event = Event(unsafe { rd::rd_kafka_queue_poll(queue.0, 50) });
        if !event.0.is_null() {
            event.check()?;
            return read(&event).map(Ok);
        }
        if stop() {
            return Ok(Err(NoAnswer::Stopped));
        }
        if Instant::now() >= deadline {
            return Ok(Err(NoAnswer::TimedOut));
        }
    }
}

/// A C string for librdkafka; a NUL inside is an error naming the value.
pub fn c_string(value: &str) -> anyhow::Result<CString> {
    CString::new(value).map_err(|_| anyhow!("`{value}` contains a NUL character"))
}

/// A buffer for librdkafka's error strings.
pub struct ErrBuf([c_char; 512]);

impl ErrBuf {
    pub fn new() -> ErrBuf {
        ErrBuf([0; 512])
    }

    pub fn ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn message(&self) -> String {
        // SAFETY: librdkafka writes a NUL-terminated string, and the buffer starts zeroed.
        unsafe { CStr::from_ptr(self.0.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
}

/// An `rd_kafka_error_t` librdkafka handed over: `Ok` when null, else its words (freed).
///
/// # Safety
/// `error` is null or an error object the caller owns.
pub unsafe fn take_error(error: *mut rd::rd_kafka_error_t) -> anyhow::Result<()> {
    if error.is_null() {
        return Ok(());
    }
    let words = text(rd::rd_kafka_error_string(error));
    rd::rd_kafka_error_destroy(error);
    bail!("{}", words.unwrap_or_else(|| "refused".into()))
}

/// A request's options: its timeouts, destroyed on drop (librdkafka copies them).
struct Options(*mut rd::rd_kafka_AdminOptions_t);

impl Options {
    fn new(client: *mut rd::rd_kafka_t, op: rd::rd_kafka_admin_op_t, timeout: Duration) -> Options {
        let mut err = ErrBuf::new();
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `client` is a live handle; the options are destroyed once, on drop. The
        // operation timeout is refused by requests that have none; the request timeout
        // then still bounds them.
        unsafe {
            let options = rd::rd_kafka_AdminOptions_new(client, op);
            rd::rd_kafka_AdminOptions_set_request_timeout(options, millis, err.ptr(), err.len());
            rd::rd_kafka_AdminOptions_set_operation_timeout(options, millis, err.ptr(), err.len());
            Options(options)
        }
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_AdminOptions_new and destroyed once.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
    }
}

/// A reply queue of the client's, destroyed on drop (librdkafka keeps it alive for a
/// request still in flight).
struct Queue(*mut rd::rd_kafka_queue_t);

impl Queue {
    fn new(client: *mut rd::rd_kafka_t) -> Queue {
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

/// An answer polled from the reply queue, destroyed on drop.
pub struct Event(*mut rd::rd_kafka_event_t);

impl Event {
    pub fn ptr(&self) -> *mut rd::rd_kafka_event_t {
        self.0
    }

    /// The typed result `result_of` finds in the event: an error when it is of another type.
    pub fn result<R>(
        &self,
        request: &str,
        result_of: unsafe extern "C" fn(*mut rd::rd_kafka_event_t) -> *const R,
    ) -> anyhow::Result<*const R> {
        // SAFETY: the event is live; the result lives as long as it does.
        let result = unsafe { result_of(self.0) };
        if result.is_null() {
            bail!("librdkafka answered {request} with an event of another type");
        }
        Ok(result)
    }

    /// The request's own failure (a timeout, an unreachable broker), in librdkafka's words.
    fn check(&self) -> Result<(), Failed> {
        // SAFETY: the event is live until drop; strings are copied before it is destroyed.
        unsafe {
            let code = RDKafkaErrorCode::from(rd::rd_kafka_event_error(self.0));
            if code != RDKafkaErrorCode::NoError {
                let words = text(rd::rd_kafka_event_error_string(self.0));
                let words = words.unwrap_or_else(|| code.to_string());
                return Err(Failed { code, words });
            }
        }
        Ok(())
    }

    /// The one result of a request about one topic (CreateTopics, CreatePartitions).
    ///
    /// # Safety
    /// `topics` is the result's topic array of `n` entries, living as long as the event.
    pub unsafe fn single_topic(
        &self,
        topics: *mut *const rd::rd_kafka_topic_result_t,
        n: usize,
        request: &str,
    ) -> anyhow::Result<Result<(), Refusal>> {
        if topics.is_null() || n == 0 {
            bail!("the broker's {request} answer named no topic");
        }
        let topic = *topics;
        Ok(Refusal::check(
            rd::rd_kafka_topic_result_error(topic),
            rd::rd_kafka_topic_result_error_string(topic),
        ))
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
pub unsafe fn text(s: *const c_char) -> Option<String> {
    if s.is_null() {
        return None;
    }
    let s = CStr::from_ptr(s).to_string_lossy().trim().to_string();
    (!s.is_empty()).then_some(s)
}
