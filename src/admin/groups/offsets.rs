//! A group's committed offsets, read and written through librdkafka's C API
//! (ListConsumerGroupOffsets, AlterConsumerGroupOffsets), which rust-rdkafka does not wrap.
//!
//! Why these rather than a consumer of the group calling `committed()` and `commit()`:
//! reading asks for every partition the group has committed to, with each commit's metadata,
//! without knowing its topics first (a consumer must name every partition); writing is the
//! broker's own admin request, which it refuses while the group has members, so a reset
//! cannot overwrite the offsets of a consumer that joined after stockstream looked. Neither
//! joins the group.

use std::ffi::CStr;
use std::time::Duration;

use anyhow::{anyhow, bail};
use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::admin::native::{self, c_string, text, Event, Failed, NoAnswer};

/// One partition's committed offset and the metadata committed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub metadata: String,
}

/// What to ask of the group's offsets.
pub enum Request<'a> {
    /// Every committed offset.
    List,
    /// Commit exactly these (offset and metadata each).
    Alter(&'a [Commit]),
}

/// Sends one request for `group` on `client` and waits up to `timeout` for the answer,
/// giving up as soon as `stop()` says so. `Ok(Ok(commits))`: the offsets the broker
/// returned (for `Alter`, the ones it accepted); `Ok(Err(_))`: no answer; `Err`: refused
/// (a `Failed`, whose code tells a passing refusal).
pub fn call(
    client: *mut rd::rd_kafka_t,
    group: &str,
    request: &Request,
    timeout: Duration,
    stop: impl Fn() -> bool,
) -> anyhow::Result<Result<Vec<Commit>, NoAnswer>> {
    let group = c_string(group)?;
    let (op, partitions) = match request {
        Request::List => (
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
            None,
        ),
        Request::Alter(commits) => (
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
            Some(partition_list(commits)?),
        ),
    };
    let send = |queue, options| {
        // SAFETY: every pointer is valid for the call; librdkafka copies the request (and
        // the partition list inside it), so the request is destroyed here.
        unsafe {
            match &partitions {
                None => {
                    let mut asks = [rd::rd_kafka_ListConsumerGroupOffsets_new(
                        group.as_ptr(),
                        std::ptr::null(),
                    )];
                    rd::rd_kafka_ListConsumerGroupOffsets(
                        client,
                        asks.as_mut_ptr(),
                        1,
                        options,
                        queue,
                    );
                    rd::rd_kafka_ListConsumerGroupOffsets_destroy(asks[0]);
                }
                Some(tpl) => {
                    let mut asks = [rd::rd_kafka_AlterConsumerGroupOffsets_new(
                        group.as_ptr(),
                        tpl.ptr(),
                    )];
                    rd::rd_kafka_AlterConsumerGroupOffsets(
                        client,
                        asks.as_mut_ptr(),
                        1,
                        options,
                        queue,
                    );
                    rd::rd_kafka_AlterConsumerGroupOffsets_destroy(asks[0]);
                }
            }
        }
    };
    native::request(client, op, timeout, stop, send, group_offsets)
}

/// The commits as librdkafka's partition list, each with its offset and metadata.
fn partition_list(commits: &[Commit]) -> anyhow::Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for c in commits {
        tpl.add_partition_offset(&c.topic, c.partition, Offset::Offset(c.offset))?;
        tpl.find_partition(&c.topic, c.partition)
            .ok_or_else(|| anyhow!("{}/{} vanished from its list", c.topic, c.partition))?
            .set_metadata(&c.metadata);
    }
    Ok(tpl)
}

/// The group's failure, a partition's, or every partition's offset.
fn group_offsets(event: &Event) -> anyhow::Result<Vec<Commit>> {
    // SAFETY: the event is live until drop; everything is copied before it is destroyed.
    unsafe {
        let mut n = 0;
        let listed = rd::rd_kafka_event_ListConsumerGroupOffsets_result(event.ptr());
        let groups = if listed.is_null() {
            let altered = rd::rd_kafka_event_AlterConsumerGroupOffsets_result(event.ptr());
            if altered.is_null() {
                bail!("librdkafka answered with an event of another type");
            }
            rd::rd_kafka_AlterConsumerGroupOffsets_result_groups(altered, &mut n)
        } else {
            rd::rd_kafka_ListConsumerGroupOffsets_result_groups(listed, &mut n)
        };
        if n == 0 {
            bail!("the broker's answer named no group");
        }
        let group = *groups;
        let error = rd::rd_kafka_group_result_error(group);
        if !error.is_null() {
            let code = RDKafkaErrorCode::from(rd::rd_kafka_error_code(error));
            let words = text(rd::rd_kafka_error_string(error)).unwrap_or_default();
            return Err(Failed { code, words }.into());
        }
        let list = rd::rd_kafka_group_result_partitions(group);
        if list.is_null() {
            return Ok(Vec::new());
        }
        let count = usize::try_from((*list).cnt).unwrap_or(0);
        let elems = if count == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts((*list).elems, count)
        };
        let mut out = Vec::with_capacity(count);
        for e in elems {
            let topic = CStr::from_ptr(e.topic).to_string_lossy().into_owned();
            let code = RDKafkaErrorCode::from(e.err);
            if code != RDKafkaErrorCode::NoError {
                let words = format!("{topic}/{}: {code}", e.partition);
                return Err(Failed { code, words }.into());
            }
            let metadata = if e.metadata.is_null() || e.metadata_size == 0 {
                String::new()
            } else {
                let bytes = std::slice::from_raw_parts(e.metadata.cast::<u8>(), e.metadata_size);
                String::from_utf8_lossy(bytes).into_owned()
            };
            out.push(Commit {
                topic,
                partition: e.partition,
                offset: e.offset,
                metadata,
            });
        }
        Ok(out)
    }
}
