//! Where the demo runs: by default an embedded Kafka-protocol cluster (librdkafka's mock,
//! in this process, in memory), or the real cluster named with --brokers.

use anyhow::Context as _;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use super::LOG;
use crate::admin::Admin;
use crate::global::Global;
use crate::kafka::Kafka;

/// Partitions of every topic the demo creates, as `topic create` makes them.
pub const PARTITIONS: i32 = 5;

/// The cluster and the connection settings of every client the demo makes on it.
pub struct Cluster {
    kafka: Kafka,
    /// The embedded cluster, if that is where the demo runs. Its brokers stop when it is
    /// dropped, so it must outlive every client on it.
    _embedded: Option<MockCluster<'static, DefaultProducerContext>>,
    /// Whether the input topic was created for this demo.
    fresh: bool,
}

impl Cluster {
    /// An embedded cluster of one broker with `topics` created. The mock has no admin API
    /// (CreateTopics, DescribeConfigs), so its topics are made through its own interface.
    pub fn embedded(global: &Global, topics: &[&str]) -> anyhow::Result<Self> {
        let mock = MockCluster::new(1).context("starting the embedded Kafka cluster")?;
        for topic in topics {
            mock.create_topic(topic, PARTITIONS, 1)
                .with_context(|| format!("creating `{topic}` on the embedded cluster"))?;
        }
        let kafka = Kafka::with_brokers(&mock.bootstrap_servers(), &global.connection.settings);
        tracing::info!(
            target: LOG,
            "🧪 Embedded Kafka-protocol cluster (librdkafka's mock) listening on {}; topics {} ({PARTITIONS} partitions each), in memory, gone when the demo ends",
            kafka.brokers(),
            topics.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
        );
        tracing::info!(
            target: LOG,
            "ℹ️ The embedded cluster has no real transactions, so here the aggregate is at-least-once, not exactly-once; `stockstream demo -b HOST:PORT` runs the same demo on a real Kafka, exactly-once"
        );
        Ok(Cluster {
            kafka,
            _embedded: Some(mock),
            fresh: true,
        })
    }

    /// The cluster of --brokers, with `input` created if it is missing (the aggregate
    /// creates its own output topics there).
    pub fn real(
        global: &Global,
        input: &str,
        timeout: std::time::Duration,
    ) -> anyhow::Result<Self> {
        let kafka = Kafka::new(&global.connection)?;
        let admin = Admin::connect(&kafka, timeout)?;
        let fresh = admin.topic(input)?.is_none() && admin.create(input, PARTITIONS, 1, &[])?;
        if fresh {
            tracing::info!(target: LOG, "📦 Created topic `{input}` with {PARTITIONS} partitions");
        }
        tracing::info!(
            target: LOG,
            "🌐 On the Kafka cluster at {} (from --brokers): the aggregate is exactly-once, and the topics stay after the demo",
            kafka.brokers()
        );
        Ok(Cluster {
            kafka,
            _embedded: None,
            fresh,
        })
    }

    pub fn kafka(&self) -> &Kafka {
        &self.kafka
    }

    /// Whether the input topic was created for this demo, so every tick in it is the demo's.
    pub fn fresh(&self) -> bool {
        self.fresh
    }
}
