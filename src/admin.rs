//! Cluster-side operations shared by the `topic` commands and `demo-partitions`: topic
//! metadata, offsets, configs, create and delete. Every call is bounded by the command's
//! `--timeout`, and every per-topic result the admin API returns is checked.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, ConfigEntry, ConfigSource, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{self, CreateClient as _, Kafka, Observer};
use crate::signals;

mod alter_topic;
mod cluster;
mod create_topic;
mod groups;
mod native;

pub use alter_topic::Change;
pub use cluster::Description as ClusterDescription;
pub use groups::{Commit, Group, Member};

/// One partition as the cluster describes it.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub id: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// One topic as the cluster describes it.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }

    /// Kafka's internal topics (`__consumer_offsets`, `__transaction_state`, …).
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

/// The earliest and latest (high watermark) offsets of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub earliest: i64,
    pub latest: i64,
}

impl Offsets {
    /// Records between the two offsets (transaction markers, if any, take offsets too).
    pub fn messages(self) -> i64 {
        (self.latest - self.earliest).max(0)
    }
}

/// What a secret setting's value shows as.
const REDACTED: &str = "[redacted]";

pub struct Admin {
    kafka: Kafka,
    client: AdminClient<Observer>,
    /// Shared with the thread each of its blocking requests runs on.
    offsets: Arc<BaseConsumer<Observer>>,
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
    /// How many brokers the cluster had when we connected.
    broker_count: usize,
}

impl Admin {
    /// Connects, or fails within `timeout` naming the brokers and the cause.
    pub fn connect(kafka: &Kafka, timeout: Duration) -> anyhow::Result<Self> {
        let metadata = kafka::reach(kafka, timeout)?;
        let client = kafka
            .admin_config()
            .create_client(Observer::default())
            .context("creating the Kafka admin client")?;
        let offsets = kafka
            .admin_config()
            .create_client(Observer::default())
            .context("creating the Kafka offsets client")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .context("starting the async runtime")?;
        Ok(Admin {
            kafka: kafka.clone(),
            client,
            offsets: Arc::new(offsets),
            runtime,
            timeout,
            broker_count: metadata.brokers().len(),
        })
    }

    pub fn brokers(&self) -> &str {
        self.kafka.brokers()
    }

    /// How many brokers the cluster has (the ones alive when we connected).
    pub fn broker_count(&self) -> usize {
        self.broker_count
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// Runs an admin future to completion, or fails after `--timeout`, or once Ctrl+C or
    /// SIGTERM asked for a stop `signals::PATIENCE` ago.
    fn block<F: Future>(&self, what: &str, fut: F) -> anyhow::Result<F::Output> {
        let timeout = self.timeout;
        let stopped = async {
            while !signals::out_of_patience() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let answer = self.runtime.block_on(async {
            tokio::select! {
                answer = tokio::time::timeout(timeout, fut) => answer.ok(),
                () = stopped => return Err(self.given_up(what)),
            }
            .ok_or_else(|| self.no_answer(what))
        })?;
        Ok(answer)
    }

    fn no_answer(&self, what: &str) -> anyhow::Error {
        anyhow!(
            "the broker at {} did not answer within {} while {what}",
            self.brokers(),
            humantime::format_duration(self.timeout)
        )
    }

    /// Runs a blocking request of the offsets client (bounded by `--timeout` itself), or
    /// fails once Ctrl+C or SIGTERM asked for a stop `signals::PATIENCE` ago.
    fn ask<T: Send + 'static>(
        &self,
        what: &str,
        request: impl FnOnce(&BaseConsumer<Observer>, Duration) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (client, timeout) = (Arc::clone(&self.offsets), self.timeout);
        signals::patiently(move || request(&client, timeout)).ok_or_else(|| self.given_up(what))
    }

    fn given_up(&self, what: &str) -> anyhow::Error {
        anyhow!(
            "the broker at {} did not answer within {} of the stop while {what}",
            self.brokers(),
            humantime::format_duration(signals::PATIENCE)
        )
    }

    fn metadata(&self) -> anyhow::Result<Metadata> {
        self.ask("reading the cluster metadata", |c, timeout| {
            c.fetch_metadata(None, timeout)
        })?
        .with_context(|| format!("reading the cluster metadata from {}", self.brokers()))
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> anyhow::Result<Vec<TopicInfo>> {
        let metadata = self.metadata()?;
        let mut topics: Vec<TopicInfo> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| {
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions()
                    .iter()
                    .map(|p| PartitionInfo {
                        id: p.id(),
                        leader: p.leader(),
                        replicas: p.replicas().to_vec(),
                        isr: p.isr().to_vec(),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.id);
                TopicInfo {
                    name: t.name().to_string(),
                    partitions,
                }
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    pub fn topic(&self, name: &str) -> anyhow::Result<Option<TopicInfo>> {
        Ok(self.topics()?.into_iter().find(|t| t.name == name))
    }

    /// Earliest and latest offsets of every partition of `topics` that has a leader, in two
    /// batched requests.
    pub fn offsets(
        &self,
        topics: &[&TopicInfo],
    ) -> anyhow::Result<HashMap<(String, i32), Offsets>> {
        let earliest = self.list_offsets(topics, Offset::Beginning)?;
        let latest = self.list_offsets(topics, Offset::End)?;
        Ok(earliest
            .into_iter()
            .filter_map(|(key, e)| {
                latest.get(&key).map(|l| {
                    (
                        key,
                        Offsets {
                            earliest: e,
                            latest: *l,
                        },
                    )
                })
            })
            .collect())
    }

    /// The offsets, asked again while a leader is still taking over its partitions (right
    /// after a topic was made, or a broker came or went), until `--timeout` is spent.
    fn list_offsets(
        &self,
        topics: &[&TopicInfo],
        which: Offset,
    ) -> anyhow::Result<HashMap<(String, i32), i64>> {
        const PAUSE: Duration = Duration::from_millis(100);
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.list_offsets_once(topics, which, left) {
                Err(e) if leader_moving(&e) && Instant::now() + PAUSE < deadline => {
                    tracing::debug!("listing offsets: {e:#}; asking again");
                    std::thread::sleep(PAUSE);
                }
                answer => return answer,
            }
        }
    }

    /// One ListOffsets request, answered within `limit`.
    fn list_offsets_once(
        &self,
        topics: &[&TopicInfo],
        which: Offset,
        limit: Duration,
    ) -> anyhow::Result<HashMap<(String, i32), i64>> {
        let mut tpl = TopicPartitionList::new();
        for t in topics {
            // A partition without a leader (its brokers are down) has no one to answer; its
            // offsets stay unknown rather than failing the whole request.
            for p in t.partitions.iter().filter(|p| p.leader >= 0) {
                // ListOffsets by "timestamp": -2 is the earliest offset, -1 the latest.
                tpl.add_partition_offset(&t.name, p.id, which)?;
            }
        }
        if tpl.count() == 0 {
            return Ok(HashMap::new());
        }
        let timeout = self.timeout;
        let answer = self
            .ask("listing offsets", move |c, _| c.offsets_for_times(tpl, limit))?
            .map_err(|e| {
                // Each partition's leader is asked: one that just died answers nothing until
                // the controllers notice (Kafka's broker.session.timeout.ms, 9 s by default)
                // and give its partitions to other brokers.
                let hint = if e == KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut) {
                    format!(
                        " (a partition's leader did not answer within {}: if a broker just went down, its partitions move to the others within about 10 s; try again, or raise --timeout)",
                        humantime::format_duration(timeout)
                    )
                } else {
                    String::new()
                };
                anyhow::Error::new(e).context(format!("listing offsets on {}{hint}", self.brokers()))
            })?;
        let mut out = HashMap::new();
        for e in answer.elements() {
            if let Err(err) = e.error() {
                let at = format!("listing offsets of {}/{}", e.topic(), e.partition());
                return Err(anyhow::Error::new(err).context(at));
            }
            let offset = e.offset().to_raw().unwrap_or(0).max(0);
            out.insert((e.topic().to_string(), e.partition()), offset);
        }
        Ok(out)
    }

    /// Every setting of the topic with its value, whatever its source (defaults included).
    pub fn configs_of(&self, topic: &str) -> anyhow::Result<BTreeMap<String, String>> {
        Ok(self
            .configs(topic)?
            .into_iter()
            .filter_map(|e| Some((e.name, e.value?)))
            .collect())
    }

    /// Every setting of the topic, as the broker describes it.
    fn configs(&self, topic: &str) -> anyhow::Result<Vec<ConfigEntry>> {
        let spec = ResourceSpecifier::Topic(topic);
        let results = self
            .block(
                "describing configs",
                self.client.describe_configs([&spec], &self.options()),
            )?
            .with_context(|| format!("describing the configs of `{topic}`"))?;
        let mut entries = Vec::new();
        for result in results {
            let resource =
                result.map_err(|e| anyhow!("describing the configs of `{topic}`: {e}"))?;
            entries.extend(resource.entries);
        }
        Ok(entries)
    }

    /// The topic's `min.insync.replicas`, whatever its source (`None`: not described).
    pub fn min_insync_replicas(&self, topic: &str) -> anyhow::Result<Option<usize>> {
        Ok(self
            .configs_of(topic)?
            .get("min.insync.replicas")
            .and_then(|v| v.parse().ok()))
    }

    /// The topic's settings that differ from the broker's defaults; secrets redacted.
    pub fn custom_configs(&self, topic: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for entry in self.configs(topic)? {
            if matches!(entry.source, ConfigSource::DynamicTopic) {
                let value = if entry.is_sensitive {
                    REDACTED.to_string()
                } else {
                    entry.value.unwrap_or_default()
                };
                out.insert(entry.name, value);
            }
        }
        Ok(out)
    }

    /// Creates a topic and waits until its metadata shows every partition with a leader that
    /// answers offset requests. `Ok(false)` when it already existed.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
        configs: &[(String, String)],
    ) -> anyhow::Result<bool> {
        let spec = create_topic::Spec {
            name,
            partitions,
            replication,
            configs,
        };
        let answer =
            create_topic::create(self.native(), &spec, self.timeout, signals::out_of_patience);
        match self
            .answered("creating the topic", answer)
            .with_context(|| format!("creating topic `{name}`"))?
        {
            Ok(()) => {}
            Err(refusal) if refusal.code == RDKafkaErrorCode::TopicAlreadyExists => {
                return Ok(false)
            }
            Err(refusal) => {
                // Only for the hint: the refusal is the news even when this fails.
                let brokers = self.metadata().ok().map(|m| m.brokers().len());
                return Err(anyhow!(create_topic::explain(&refusal, name, brokers)));
            }
        }
        self.wait_for_partitions(name, partitions)?;
        Ok(true)
    }

    /// Waits until the metadata shows `name` with `partitions` partitions, each with a leader
    /// that answers offset requests.
    fn wait_for_partitions(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        let want = usize::try_from(partitions).unwrap_or(0);
        self.wait_until(
            &format!(
                "`{name}` to show {}",
                crate::numbers::count(want as u64, "partition", "partitions")
            ),
            |topics| {
                topics.iter().any(|t| {
                    t.name == name
                        && t.partitions.len() == want
                        && t.partitions.iter().all(|p| p.leader >= 0)
                        // A new leader may refuse offset requests for a moment after the
                        // metadata shows it; the topic is ready when its offsets answer.
                        && self.offsets(&[t]).is_ok()
                })
            },
        )
    }

    /// The client handle for requests made through librdkafka's C API.
    fn native(&self) -> *mut rdkafka::bindings::rd_kafka_t {
        self.client.inner().native_ptr()
    }

    /// The answer of a request made through the C API, or the error of its missing answer.
    fn answered<T>(
        &self,
        what: &str,
        answer: anyhow::Result<Result<T, native::NoAnswer>>,
    ) -> anyhow::Result<T> {
        match answer? {
            Ok(answer) => Ok(answer),
            Err(native::NoAnswer::TimedOut) => Err(self.no_answer(what)),
            Err(native::NoAnswer::Stopped) => Err(self.given_up(what)),
        }
    }

    /// The cluster's id, its controller as the brokers name it, and its brokers.
    pub fn describe_cluster(&self) -> anyhow::Result<ClusterDescription> {
        let what = "describing the cluster";
        let answer = cluster::describe(self.native(), self.timeout, signals::out_of_patience);
        self.answered(what, answer)
            .with_context(|| format!("describing the cluster at {}", self.brokers()))
    }

    /// Raises the partition count of `name` to `total` and waits until every new partition
    /// has a leader that answers.
    pub fn add_partitions(&self, name: &str, total: i32) -> anyhow::Result<()> {
        let count = usize::try_from(total).unwrap_or(0);
        let answer = alter_topic::add_partitions(
            self.native(),
            name,
            count,
            self.timeout,
            signals::out_of_patience,
        );
        self.answered("adding partitions", answer)
            .with_context(|| format!("adding partitions to `{name}`"))?
            .map_err(|refusal| anyhow!(refusal.explain(&format!("add partitions to `{name}`"))))?;
        self.wait_for_partitions(name, total)
    }

    /// Sets and deletes settings of topic `name`, leaving the others as they are.
    pub fn alter_configs(&self, name: &str, changes: &[Change]) -> anyhow::Result<()> {
        let answer = alter_topic::alter_configs(
            self.native(),
            name,
            changes,
            self.timeout,
            signals::out_of_patience,
        );
        self.answered("changing settings", answer)
            .with_context(|| format!("changing the settings of `{name}`"))?
            .map_err(|refusal| {
                anyhow!(refusal.explain(&format!("change the settings of `{name}`")))
            })?;
        // The controller has the change; the broker that answers describes may show it a
        // moment later.
        self.wait_for(&format!("the new settings of `{name}` to show"), || {
            let now = self.custom_configs(name)?;
            Ok(changes.iter().all(|c| match c {
                // A secret's value is not shown; that it is set is all there is to see.
                Change::Set(k, v) => now.get(k).is_some_and(|x| x == v || x == REDACTED),
                Change::Delete(k) => !now.contains_key(k),
            }))
        })
    }

    /// Creates a topic that must be new. One of that name still being deleted is waited for,
    /// at most `--timeout`.
    pub fn create_anew(&self, name: &str, partitions: i32, replication: i32) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.timeout;
        while !self.create(name, partitions, replication, &[])? {
            if Instant::now() >= deadline {
                return Err(anyhow!(
                    "topic `{name}` still exists on {} after {}; remove it with `stockstream topic delete {name}`",
                    self.brokers(),
                    humantime::format_duration(self.timeout)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Deletes a topic and waits until it is gone. `Ok(false)` when it did not exist.
    pub fn delete(&self, name: &str) -> anyhow::Result<bool> {
        let results = self
            .block(
                "deleting the topic",
                self.client.delete_topics(&[name], &self.options()),
            )?
            .with_context(|| format!("deleting topic `{name}`"))?;
        if !all_succeeded(results, RDKafkaErrorCode::UnknownTopicOrPartition, "delete")? {
            return Ok(false);
        }
        self.wait_until(&format!("`{name}` to disappear"), |topics| {
            topics.iter().all(|t| t.name != name)
        })?;
        Ok(true)
    }

    /// Deletes a consumer group with its committed offsets. `Ok(false)` when it did not
    /// exist. A group with members still connected is refused by the broker.
    pub fn delete_group(&self, group: &str) -> anyhow::Result<bool> {
        const PAUSE: Duration = Duration::from_millis(100);
        let deadline = Instant::now() + self.timeout;
        let results = loop {
            let results = self
                .block(
                    "deleting the consumer group",
                    self.client.delete_groups(&[group], &self.options()),
                )?
                .with_context(|| format!("deleting consumer group `{group}`"))?;
            // The group's coordinator may still be loading (a broker just started) or moving.
            let passing = results
                .iter()
                .any(|r| r.as_ref().is_err_and(|(_, code)| native::passing(*code)));
            if !passing || Instant::now() + PAUSE >= deadline {
                break results;
            }
            std::thread::sleep(PAUSE);
        };
        all_succeeded(
            results,
            RDKafkaErrorCode::GroupIdNotFound,
            "delete the consumer group",
        )
    }

    fn wait_until(&self, what: &str, done: impl Fn(&[TopicInfo]) -> bool) -> anyhow::Result<()> {
        self.wait_for(what, || Ok(done(&self.topics()?)))
    }

    /// Asks `done` every 100 ms until it says yes, at most `--timeout`.
    fn wait_for(
        &self,
        what: &str,
        mut done: impl FnMut() -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if done()? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(anyhow!(
                    "waited {} for {what} on {}; the broker accepted the request but has not finished",
                    humantime::format_duration(self.timeout),
                    self.brokers()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether `e` says a partition's leader is changing: asking again soon finds the new one.
fn leader_moving(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<KafkaError>())
        .filter_map(KafkaError::rdkafka_error_code)
        .any(|code| {
            matches!(
                code,
                RDKafkaErrorCode::NotLeaderForPartition
                    | RDKafkaErrorCode::LeaderNotAvailable
                    | RDKafkaErrorCode::UnknownLeaderEpoch
                    | RDKafkaErrorCode::FencedLeaderEpoch
            )
        })
}

/// Checks every per-topic (or per-group: the same type) result: `Ok(false)` when one failed
/// with `nothing_to_do` (it already exists, or is already gone), an error naming it for any
/// other failure.
fn all_succeeded(
    results: Vec<rdkafka::admin::TopicResult>,
    nothing_to_do: RDKafkaErrorCode,
    verb: &str,
) -> anyhow::Result<bool> {
    let mut all = true;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, code)) if code == nothing_to_do => all = false,
            Err((t, code)) => return Err(anyhow!("the broker refused to {verb} `{t}`: {code}")),
        }
    }
    Ok(all)
}

impl Admin {
    /// Each partition's offset for `at` (a time as `Offset::Offset(ms)`, or
    /// `Offset::Beginning` / `Offset::End`) as `client` sees it: its isolation level decides
    /// where the end is while a transaction is open. `None`: the broker has none (no record
    /// at or after that time).
    pub fn offsets_seen_by<C: rdkafka::consumer::ConsumerContext + 'static>(
        &self,
        client: &Arc<BaseConsumer<C>>,
        topic: &str,
        partitions: &[i32],
        at: Offset,
    ) -> anyhow::Result<BTreeMap<i32, Option<i64>>> {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition_offset(topic, p, at)?;
        }
        let client = Arc::clone(client);
        let timeout = self.timeout;
        let answer = signals::patiently(move || client.offsets_for_times(tpl, timeout))
            .ok_or_else(|| self.given_up("listing offsets"))?
            .with_context(|| format!("listing the offsets of `{topic}` on {}", self.brokers()))?;
        Self::per_partition(&answer, "listing the offsets of")
    }

    /// The offsets `client`'s consumer group has committed for `partitions` (`None`: none).
    pub fn committed_by<C: rdkafka::consumer::ConsumerContext + 'static>(
        &self,
        client: &Arc<BaseConsumer<C>>,
        topic: &str,
        partitions: &[i32],
    ) -> anyhow::Result<BTreeMap<i32, Option<i64>>> {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition(topic, p);
        }
        let client = Arc::clone(client);
        let timeout = self.timeout;
        let answer = signals::patiently(move || client.committed_offsets(tpl, timeout))
            .ok_or_else(|| self.given_up("reading the committed offsets"))?
            .with_context(|| {
                format!(
                    "reading the group's committed offsets of `{topic}` on {}",
                    self.brokers()
                )
            })?;
        Self::per_partition(&answer, "reading the committed offsets of")
    }

    fn per_partition(
        answer: &TopicPartitionList,
        doing: &str,
    ) -> anyhow::Result<BTreeMap<i32, Option<i64>>> {
        let mut out = BTreeMap::new();
        for e in answer.elements() {
            if let Err(err) = e.error() {
                return Err(anyhow!("{doing} {}/{}: {err}", e.topic(), e.partition()));
            }
            out.insert(e.partition(), e.offset().to_raw().filter(|o| *o >= 0));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_taking_over_is_asked_again_and_other_failures_are_not() {
        let moving = anyhow::Error::new(KafkaError::MetadataFetch(
            RDKafkaErrorCode::NotLeaderForPartition,
        ))
        .context("listing offsets on b:9092");
        assert!(leader_moving(&moving));
        let partition = anyhow::Error::new(KafkaError::OffsetFetch(
            RDKafkaErrorCode::LeaderNotAvailable,
        ))
        .context("listing offsets of t/0");
        assert!(leader_moving(&partition));
        let timeout = anyhow::Error::new(KafkaError::MetadataFetch(
            RDKafkaErrorCode::OperationTimedOut,
        ));
        assert!(!leader_moving(&timeout));
        assert!(!leader_moving(&anyhow!("something else")));
    }
}
