//! One record as read, borrowed from librdkafka's message: what every output format shows.
//! Header keys are read as bytes, not as Rust strings: a record written by any client may
//! carry a key that is not UTF-8, and reading it must not fail.

use std::ffi::CStr;

use rdkafka::bindings as rdsys;

/// One header: its key and its value (`None`: a null value).
pub type Header<'a> = (&'a [u8], Option<&'a [u8]>);

/// A record of the topic being read.
#[derive(Debug, Clone, Default)]
pub struct Rec<'a> {
    pub partition: i32,
    pub offset: i64,
    /// The record's Kafka timestamp, Unix ms (`None`: it has none).
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// In the order written, duplicates kept.
    pub headers: Vec<Header<'a>>,
}

impl<'a> Rec<'a> {
    /// The record of a message librdkafka handed out, its headers read only if asked for.
    ///
    /// # Safety
    /// `m` must point to a live message without error that outlives `'a`.
    pub unsafe fn of_raw(m: *mut rdsys::rd_kafka_message_t, with_headers: bool) -> Self {
        // SAFETY: the caller's promise; the slices borrow the message's own memory.
        unsafe {
            let msg = &*m;
            let slice = |ptr: *mut std::ffi::c_void, len: usize| {
                (!ptr.is_null()).then(|| std::slice::from_raw_parts(ptr.cast::<u8>(), len))
            };
            let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
            let ts = rdsys::rd_kafka_message_timestamp(m, &raw mut kind);
            Rec {
                partition: msg.partition,
                offset: msg.offset,
                timestamp: (ts >= 0).then_some(ts),
                key: slice(msg.key, msg.key_len),
                value: slice(msg.payload, msg.len),
                headers: if with_headers { headers(m) } else { Vec::new() },
            }
        }
    }

    /// The value of the first header named `name`, if there is one.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(k, _)| *k == name.as_bytes())
            .and_then(|(_, v)| *v)
    }
}

/// # Safety
/// As `Rec::of_raw`.
unsafe fn headers<'a>(m: *mut rdsys::rd_kafka_message_t) -> Vec<Header<'a>> {
    let mut out = Vec::new();
    let mut hdrs: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: a live message; librdkafka keeps its headers with it.
    let err = unsafe { rdsys::rd_kafka_message_headers(m, &raw mut hdrs) };
    if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || hdrs.is_null() {
        return out;
    }
    for idx in 0.. {
        let mut name: *const std::ffi::c_char = std::ptr::null();
        let mut value: *const std::ffi::c_void = std::ptr::null();
        let mut size = 0usize;
        // SAFETY: a live header list; out-of-range indexes return an error.
        let err = unsafe {
            rdsys::rd_kafka_header_get_all(hdrs, idx, &raw mut name, &raw mut value, &raw mut size)
        };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            break;
        }
        // SAFETY: librdkafka gives a NUL-terminated name and `size` bytes of value, both
        // owned by the message.
        let (key, value) = unsafe {
            (
                CStr::from_ptr(name).to_bytes(),
                (!value.is_null()).then(|| std::slice::from_raw_parts(value.cast::<u8>(), size)),
            )
        };
        out.push((key, value));
    }
    out
}
