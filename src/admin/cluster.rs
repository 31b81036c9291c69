//! DescribeCluster through librdkafka's C API: the cluster id, the broker the cluster names
//! as its controller, and every broker with its rack, which the metadata rust-rdkafka
//! exposes does not carry.

use std::time::Duration;

use rdkafka::bindings as rd;

use super::native::{self, text, NoAnswer};

/// One broker as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

/// The cluster as DescribeCluster answers.
#[derive(Debug, Clone)]
pub struct Description {
    pub id: Option<String>,
    pub controller: Option<i32>,
    pub brokers: Vec<Node>,
}

/// Asks the cluster to describe itself; waits up to `timeout`, giving up at `stop()`.
pub fn describe(
    client: *mut rd::rd_kafka_t,
    timeout: Duration,
    stop: impl Fn() -> bool,
) -> anyhow::Result<Result<Description, NoAnswer>> {
    let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER;
    let send = |queue, options| {
        // SAFETY: the options are copied by the call.
        unsafe { rd::rd_kafka_DescribeCluster(client, options, queue) }
    };
    native::request(client, op, timeout, stop, send, |event| {
        let result = event.result("DescribeCluster", rd::rd_kafka_event_DescribeCluster_result)?;
        // SAFETY: the result, its nodes and their strings live as long as `event`; every
        // string is copied before it drops.
        unsafe {
            let mut n = 0;
            let nodes = rd::rd_kafka_DescribeCluster_result_nodes(result, &mut n);
            let mut brokers: Vec<Node> = (0..n).map(|i| node(*nodes.add(i))).collect();
            brokers.sort_by_key(|b| b.id);
            let controller = rd::rd_kafka_DescribeCluster_result_controller(result);
            Ok(Description {
                id: text(rd::rd_kafka_DescribeCluster_result_cluster_id(result)),
                controller: (!controller.is_null()).then(|| rd::rd_kafka_Node_id(controller)),
                brokers,
            })
        }
    })
}

/// # Safety
/// `node` is a live node of a DescribeCluster result.
unsafe fn node(node: *const rd::rd_kafka_Node_t) -> Node {
    Node {
        id: rd::rd_kafka_Node_id(node),
        host: text(rd::rd_kafka_Node_host(node)).unwrap_or_default(),
        port: rd::rd_kafka_Node_port(node),
        rack: text(rd::rd_kafka_Node_rack(node)),
    }
}
