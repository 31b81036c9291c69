//! CreatePartitions and IncrementalAlterConfigs through librdkafka's C API: rust-rdkafka
//! keeps only the error code of the first and offers only the older AlterConfigs, which
//! replaces every setting of the topic at once instead of changing the ones named.

use std::time::Duration;

use anyhow::bail;
use rdkafka::bindings as rd;

use super::native::{self, c_string, take_error, ErrBuf, NoAnswer, Refusal};

/// One change to a topic's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set(String, String),
    Delete(String),
}

type Answer = anyhow::Result<Result<Result<(), Refusal>, NoAnswer>>;

/// Raises `topic`'s partition count to `total`.
pub fn add_partitions(
    client: *mut rd::rd_kafka_t,
    topic: &str,
    total: usize,
    timeout: Duration,
    stop: impl Fn() -> bool,
) -> Answer {
    let name = c_string(topic)?;
    let mut err = ErrBuf::new();
    // SAFETY: the name is copied; the object is destroyed below on every path.
    let parts =
        unsafe { rd::rd_kafka_NewPartitions_new(name.as_ptr(), total, err.ptr(), err.len()) };
    if parts.is_null() {
        bail!("{}", err.message());
    }
    let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEPARTITIONS;
    let send = |queue, options| {
        let mut all = [parts];
        // SAFETY: the request and the options are copied by the call.
        unsafe { rd::rd_kafka_CreatePartitions(client, all.as_mut_ptr(), 1, options, queue) }
    };
    let answer = native::request(client, op, timeout, stop, send, |event| {
        let result = event.result(
            "CreatePartitions",
            rd::rd_kafka_event_CreatePartitions_result,
        )?;
        let mut n = 0;
        // SAFETY: the result and its topics live as long as `event`.
        unsafe {
            let topics = rd::rd_kafka_CreatePartitions_result_topics(result, &mut n);
            event.single_topic(topics, n, "CreatePartitions")
        }
    });
    // SAFETY: created above, destroyed once; librdkafka holds its own copy.
    unsafe { rd::rd_kafka_NewPartitions_destroy(parts) };
    answer
}

/// Sets and deletes the named settings of `topic`, leaving the others as they are.
pub fn alter_configs(
    client: *mut rd::rd_kafka_t,
    topic: &str,
    changes: &[Change],
    timeout: Duration,
    stop: impl Fn() -> bool,
) -> Answer {
    let resource = Resource::topic(topic)?;
    for change in changes {
        resource.add(change)?;
    }
    let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS;
    let send = |queue, options| {
        let mut all = [resource.0];
        // SAFETY: the resource and the options are copied by the call.
        unsafe { rd::rd_kafka_IncrementalAlterConfigs(client, all.as_mut_ptr(), 1, options, queue) }
    };
    native::request(client, op, timeout, stop, send, |event| {
        let result = event.result(
            "IncrementalAlterConfigs",
            rd::rd_kafka_event_IncrementalAlterConfigs_result,
        )?;
        let mut n = 0;
        // SAFETY: the result and its resources live as long as `event`.
        unsafe {
            let resources = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut n);
            if resources.is_null() || n == 0 {
                bail!("the broker's IncrementalAlterConfigs answer named no topic");
            }
            let first = *resources;
            Ok(Refusal::check(
                rd::rd_kafka_ConfigResource_error(first),
                rd::rd_kafka_ConfigResource_error_string(first),
            ))
        }
    })
}

/// A topic's settings to change, destroyed on drop.
struct Resource(*mut rd::rd_kafka_ConfigResource_t);

impl Resource {
    fn topic(name: &str) -> anyhow::Result<Resource> {
        let name = c_string(name)?;
        // SAFETY: the name is copied.
        let resource = unsafe {
            rd::rd_kafka_ConfigResource_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                name.as_ptr(),
            )
        };
        if resource.is_null() {
            bail!(
                "librdkafka refused a config resource for topic `{}`",
                name.to_string_lossy()
            );
        }
        Ok(Resource(resource))
    }

    fn add(&self, change: &Change) -> anyhow::Result<()> {
        use rd::rd_kafka_AlterConfigOpType_t as Op;
        let (key, value, op) = match change {
            Change::Set(k, v) => (k, Some(v), Op::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET),
            Change::Delete(k) => (k, None, Op::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE),
        };
        let k = c_string(key)?;
        let v = value.map(|v| c_string(v)).transpose()?;
        let v_ptr = v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
        // SAFETY: the resource is live; the strings are copied; the error is taken over.
        unsafe {
            take_error(rd::rd_kafka_ConfigResource_add_incremental_config(
                self.0,
                k.as_ptr(),
                op,
                v_ptr,
            ))
        }
        .map_err(|e| anyhow::anyhow!("topic setting `{key}`: {e}"))
    }
}

impl Drop for Resource {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_ConfigResource_new and destroyed once.
        unsafe { rd::rd_kafka_ConfigResource_destroy(self.0) }
    }
}
